"""The publisher: a record public only after three reviews reaches the site's pages, the index and the
official account stand-in (draft/add + freepublish); a withdrawal takes it off all of them; a queue job
for a record that is not public (forged, stale or unreviewed) renders nothing public."""

from __future__ import annotations

import json

from bianjie.content.adapters.sqlite_search import INDEX_KEY, SqliteSearch
from bianjie.content.search import tokenizer
from bianjie.kit.objects import ObjectNotFound

from tests.unit.content.conftest import CHIEF, EDITOR, Rig, article, three_reviews


def index(rig: Rig) -> SqliteSearch:
    return SqliteSearch(rig.objects.get("site", INDEX_KEY), tokenizer())


def page(rig: Rig, key: str) -> str | None:
    try:
        return rig.objects.get("site", key).decode()
    except ObjectNotFound:
        return None


def test_published_reaches_site_index_and_official_account(rig: Rig) -> None:
    rig.tokens.refresh()
    item = rig.service.create_article(EDITOR, article())
    three_reviews(rig.service, item.id)
    [outcome] = rig.run_jobs()
    assert outcome["outcome"] == "published" and outcome["oa"]["publish_id"]
    html = page(rig, f"pages/articles/{item.id}.html")
    assert html and "糖尿病患者的饮食管理" in html and 'lang="zh-CN"' in html and "SM3" in html
    assert item.id in (page(rig, "pages/columns/science.html") or "")
    assert item.id in (page(rig, "pages/home.html") or "")
    assert [h.id for h in index(rig).search("tnb").hits] == [item.id]
    [published] = rig.standin.published()
    assert published["articles"][0]["title"] == "糖尿病患者的饮食管理"
    assert "<p>糖尿病患者应定时定量进餐。</p>" in published["articles"][0]["content"]
    # once per version: a second job for the same version does not publish again
    rig.publisher.handle(item.id)
    assert len(rig.standin.published()) == 1


def test_withdrawn_leaves_site_and_index(rig: Rig) -> None:
    rig.tokens.refresh()
    item = rig.service.create_article(EDITOR, article())
    three_reviews(rig.service, item.id)
    rig.run_jobs()
    rig.service.withdraw(CHIEF, item.id, "过期")
    rig.run_jobs()
    assert page(rig, f"pages/articles/{item.id}.html") is None
    assert item.id not in (page(rig, "pages/home.html") or "")
    assert index(rig).search("糖尿病").total == 0


def test_no_path_makes_an_unreviewed_record_public(rig: Rig) -> None:
    item = rig.service.create_article(EDITOR, article())
    rig.service.submit(EDITOR, item.id)
    # a forged job for a record under review
    assert rig.publisher.handle(item.id)["outcome"] == "removed"
    # a record whose head was set to published without the reviews (a bad write, a restore)
    doc, rev = rig.store.head(item.id)  # type: ignore[misc]
    rig.store.save({**doc, "status": "published", "published_at": doc["updated_at"]}, rev)
    assert rig.publisher.handle(item.id)["outcome"] == "removed"
    assert page(rig, f"pages/articles/{item.id}.html") is None
    assert index(rig).search("糖尿病").total == 0
    assert rig.standin.published() == []
    assert item.id not in (page(rig, "pages/home.html") or "")


def test_stand_in_checks_the_documented_limits(rig: Rig) -> None:
    assert (
        rig.standin("POST", "/cgi-bin/stable_token", {}, {"grant_type": "client_credential", "appid": "x"})["errcode"]
        == 40013
    )
    assert rig.standin("POST", "/cgi-bin/draft/add", {"access_token": "forged"}, {"articles": []})["errcode"] == 40001
    rig.tokens.refresh()
    token = {"access_token": rig.tokens.current()}
    long_title = {"articles": [{"title": "长" * 33, "content": "<p>x</p>", "thumb_media_id": "m"}]}
    assert rig.standin("POST", "/cgi-bin/draft/add", token, long_title)["errcode"] == 45003
    # the stored token is SM4-encrypted, never in clear
    stored = json.dumps(rig.store.wechat_token())
    assert token["access_token"] not in stored
