"""Aggregation against stand-ins of hospital websites served on loopback: a feed and a list page yield new
drafts attributed to their hospitals; conditional requests answer 304 and add nothing; the same text twice
is one item; a cross-post is merged into the item it repeats; a malformed feed and a layout change fail
their source alone, with the reason recorded, never silently empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bianjie.content.adapters.extract import extract
from bianjie.content.adapters.http_fetch import HttpFetcher
from bianjie.content.aggregate import Aggregator, Candidate, SourceConfig, minhash, similarity
from bianjie.content.model import ArticleDraft
from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError
from bianjie_dev.content.sites import HospitalSites

from tests.unit.content.conftest import Rig

FLU = "入冬以来流感进入高发期，瑞金医院提醒市民及时接种流感疫苗。\n\n老年人、儿童和慢性病患者是重点人群。"
CLINIC = "仁济医院东院开设糖尿病足专病门诊，每周二、周四下午开诊。\n\n门诊由内分泌科、血管外科和创面修复科联合坐诊。"


@pytest.fixture
def sites() -> Iterator[tuple[HospitalSites, str]]:
    s = HospitalSites()
    base = s.start()
    yield s, base
    s.stop()


def aggregator(rig: Rig) -> Aggregator:
    actor = Actor.system("content-aggregator")

    def ingest(source_id: str, config: SourceConfig, c: Candidate) -> str:
        draft = ArticleDraft(
            column=config.column, hospital=config.hospital, title=c.title, body=c.text, source_url=c.url
        )
        return rig.service.ingest_article(actor, draft).id

    return Aggregator(rig.store, HttpFetcher(allow_private=True), extract, ingest, rig.clock)


def configure(agg: Aggregator, base: str) -> None:
    agg.configure(
        "ruijin-feed", SourceConfig(hospital="ruijin", name="瑞金新闻", kind="feed", url=f"{base}/ruijin/feed.xml")
    )
    agg.configure(
        "renji-news",
        SourceConfig(
            hospital="renji",
            name="仁济新闻",
            kind="list",
            url=f"{base}/renji/news",
            link_pattern=r"/renji/news/\d+\.html$",
        ),
    )
    agg.configure(
        "chest-news",
        SourceConfig(
            hospital="chest",
            name="胸科新闻",
            kind="list",
            url=f"{base}/chest/news",
            link_pattern=r"/chest/news/\d+\.html$",
        ),
    )


def test_new_items_become_drafts_of_their_hospitals(rig: Rig, sites: tuple[HospitalSites, str]) -> None:
    site, base = sites
    site.add("ruijin", "瑞金医院提醒：及时接种流感疫苗", FLU)
    site.add("renji", "仁济医院开设糖尿病足专病门诊", CLINIC)
    site.add("chest", "胸科医院肺结节筛查门诊开诊", "胸科医院开设肺结节筛查门诊。\n\n低剂量螺旋CT检查可在当天预约。")
    agg = aggregator(rig)
    configure(agg, base)
    runs = {r.source: r for r in agg.run_all()}
    assert [len(runs[s].new) for s in ("ruijin-feed", "renji-news", "chest-news")] == [1, 1, 1]
    renji = rig.store.head(runs["renji-news"].new[0])[0]  # type: ignore[index]
    assert renji["status"] == "draft" and renji["hospital"] == "renji" and renji["column"] == "news"
    assert renji["title"].startswith("仁济医院开设糖尿病足专病门诊")
    assert "联合坐诊" in renji["body"] and "版权所有" not in renji["body"] and "浏览次数" not in renji["body"]
    assert renji["created_by"] == "system:content-aggregator" and renji["source_url"].endswith("/renji/news/101.html")
    # the next run: nothing changed, conditional requests, nothing new
    again = {r.source: r for r in agg.run_all()}
    assert {r.outcome for r in again.values()} == {"unchanged"}
    assert any(etag for path, etag in site.requests if path == "/ruijin/feed.xml")
    # two new items appear on two sites: exactly two new drafts
    site.add(
        "ruijin", "瑞金医院开展世界糖尿病日义诊", "11月14日，瑞金医院内分泌科在门诊大厅开展义诊，为市民免费测血糖。"
    )
    site.add("chest", "胸科医院戒烟门诊延长服务时间", "自12月起，胸科医院戒烟门诊周六上午增设门诊。")
    third = {r.source: r for r in agg.run_all()}
    assert sum(len(r.new) for r in third.values()) == 2


def test_duplicates_and_crossposts_are_merged(rig: Rig, sites: tuple[HospitalSites, str]) -> None:
    site, base = sites
    site.add("ruijin", "瑞金医院提醒：及时接种流感疫苗", FLU)
    agg = aggregator(rig)
    configure(agg, base)
    [first] = agg.run("ruijin-feed").new
    # the same news reposted by another hospital, lightly edited: a cross-post, merged
    site.add("renji", "瑞金医院提醒：及时接种流感疫苗（转载）", FLU + "\n\n（转自瑞金医院）")
    run = agg.run("renji-news")
    assert run.new == [] and run.merged == [first]
    assert rig.store.head(first)[0]["crossposts"][0].endswith("/renji/news/101.html")  # type: ignore[index]
    assert similarity(minhash(FLU), minhash("完全无关的一段文字，讲的是医院停车场的开放时间调整。")) < 0.2


def test_bad_sources_fail_alone_with_the_reason(rig: Rig, sites: tuple[HospitalSites, str]) -> None:
    site, base = sites
    site.add("ruijin", "瑞金医院提醒：及时接种流感疫苗", FLU)
    site.add("chest", "胸科医院肺结节筛查门诊开诊", "胸科医院开设肺结节筛查门诊。")
    site.add("renji", "仁济医院开设糖尿病足专病门诊", CLINIC)
    agg = aggregator(rig)
    configure(agg, base)
    agg.run_all()
    site.break_feed("ruijin")
    site.change_layout("chest")
    site.add("chest", "胸科医院新闻二", "第二条新闻的正文。")
    site.add("ruijin", "瑞金新闻二", "第二条。")
    site.add("renji", "仁济医院举办护士节活动", "仁济医院举办护士节表彰活动，表彰优秀护理团队。")
    runs = {r.source: r for r in agg.run_all()}
    assert runs["ruijin-feed"].outcome == "failed" and "FEED_INVALID" in (runs["ruijin-feed"].reason or "")
    assert runs["chest-news"].outcome == "failed" and "LAYOUT_CHANGED" in (runs["chest-news"].reason or "")
    assert len(runs["renji-news"].new) == 1  # the healthy source is unaffected
    states = {s["id"]: s for s in agg.sources()}
    assert states["chest-news"]["status"] == "failing" and "版式" in states["chest-news"]["last_error"]["reason"]
    assert states["renji-news"]["status"] == "ok"


def test_rules_are_checked_when_configured(rig: Rig) -> None:
    agg = aggregator(rig)
    with pytest.raises(AppError) as missing:
        agg.configure("x", SourceConfig(hospital="renji", name="x", kind="list", url="https://example.org/news"))
    assert missing.value.code == "RULE_REQUIRED"
    with pytest.raises(AppError) as invalid:
        agg.configure(
            "x", SourceConfig(hospital="renji", name="x", kind="list", url="https://example.org/", link_pattern="(")
        )
    assert invalid.value.code == "RULE_INVALID"


def test_public_stage_refuses_private_addresses() -> None:
    from bianjie.content.aggregate import FetchFailed

    with pytest.raises(FetchFailed):
        HttpFetcher(allow_private=False)("http://127.0.0.1:9/")
    with pytest.raises(FetchFailed):
        HttpFetcher(allow_private=False)("file:///etc/passwd")
