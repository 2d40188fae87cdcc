"""Content through its Chalice app and moto, each route and handler as the function the templates
declare for it: the three reviews, the publisher's pages, index and official-account stand-in, search,
the site pages and their refusals, the WeChat push, the video upload refused or transcoded and played."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from bianjie.content.wechat import signature
from bianjie.kit import aws
from bianjie.kit.config import function_scope
from bianjie.runtime.invoke import load_module
from bianjie_dev.content import wechat_standin
from bianjie_dev.content.videos import make_test_video
from chalice.test import Client

from tests import events as canned
from tests.conftest import ROOT
from tests.functional import conftest as fc
from tests.functional.conftest import app_of, token_issuer


@pytest.fixture
def content(aws_stack: Any) -> Any:
    return load_module(ROOT / "functions" / "content" / "app.py")


@pytest.fixture
def client(content: Any) -> Client:
    with Client(app_of("content")) as c:
        yield c


def staff(name: str, *roles: str, hospital: str = "ruijin") -> dict[str, str]:
    token = token_issuer().issue(name, "staff", roles=list(roles), hospital=hospital)
    return {"Authorization": "Bearer " + token, "Content-Type": "application/json"}


def as_function(name: str, handler: Any, event: Any) -> Any:
    with function_scope(fc._function_scopes[name]):
        return handler(event, None)


def post(client: Client, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.http.post(path, body=json.dumps(body, ensure_ascii=False).encode(), headers=headers)


ARTICLE = {
    "column": "science",
    "hospital": "ruijin",
    "title": "中风的早期识别",
    "summary": "记住“中风120”",
    "body": "脑卒中发病急。\n\n出现口角歪斜、肢体无力时立即拨打120。",
    "diseases": [{"code": "I63", "name": "脑卒中", "aliases": ["中风"]}],
}


def drain_publish_queue(deployment: Any, content: Any) -> list[Any]:
    sqs = aws.client("sqs")
    url = deployment.ref("ContentPublishQueue")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    bodies = [json.loads(m["Body"]) for m in got]
    if bodies:
        assert as_function("ContentPublishFunction", content.publish_worker, canned.sqs_batch(*bodies)) == {
            "batchItemFailures": []
        }
    return bodies


def three_reviews(client: Client, item_id: str) -> Any:
    assert post(client, f"/content/items/{item_id}/submit", {}, staff("ed1", "editor")).status_code == 200
    for who, role, stage in (
        ("rv1", "reviewer", "review1"),
        ("rv2", "reviewer", "review2"),
        ("ce1", "chief-editor", "final"),
    ):
        answer = post(
            client,
            f"/content/items/{item_id}/reviews",
            {"decision": "approve", "expected_status": stage},
            staff(who, role),
        )
        assert answer.status_code == 200, answer.body
    return json.loads(answer.body)


def test_article_through_three_reviews_to_site_search_and_official_account(
    client: Client, content: Any, aws_stack: Any
) -> None:
    as_function("ContentWechatTokenFunction", content.refresh_wechat_token, canned.scheduled())
    created = post(client, "/content/articles", ARTICLE, staff("ed1", "editor"))
    assert created.status_code == 201, created.body
    item_id = json.loads(created.body)["id"]
    # not public before the reviews
    assert client.http.get(f"/content/site/articles/{item_id}").status_code == 404
    done = three_reviews(client, item_id)
    assert done["status"] == "published" and len(done["history"]) == 4
    assert drain_publish_queue(aws_stack, content) == [{"id": item_id, "version": 1, "status": "published"}]
    page = client.http.get(f"/content/site/articles/{item_id}")
    assert page.status_code == 200 and "中风的早期识别" in page.body.decode()
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    home = client.http.get("/content/site")
    assert home.status_code == 200 and item_id in home.body.decode()
    found = json.loads(client.http.get("/content/search?q=%E4%B8%AD%E9%A3%8E").body)  # 中风
    assert [h["id"] for h in found["hits"]] == [item_id] and found["facets"]["hospital"][0]["label"] == "瑞金医院"
    assert json.loads(client.http.get("/content/search?q=naocuzhong").body)["total"] == 1
    site_search = client.http.get("/content/site/search?q=%E8%84%91%E5%8D%92%E4%B8%AD")
    assert item_id in site_search.body.decode()
    # the stand-in received draft/add + freepublish/submit
    from bianjie.kit import deps
    from bianjie_dev.content.wechat_standin import WechatApiStandIn

    with function_scope(fc._function_scopes["ContentPublishFunction"]):
        published = WechatApiStandIn(deps.documents(), deps.table("CONTENT_TABLE")).published()
    assert [p["articles"][0]["title"] for p in published] == ["中风的早期识别"]


def test_refusals_have_codes(client: Client) -> None:
    assert post(client, "/content/articles", ARTICLE, staff("x", "reviewer")).status_code == 403
    bad = post(client, "/content/articles", {**ARTICLE, "title": ""}, staff("ed1", "editor"))
    assert bad.status_code == 400 and json.loads(bad.body)["error"]["code"] == "VALIDATION_FAILED"
    item_id = json.loads(post(client, "/content/articles", ARTICLE, staff("ed1", "editor")).body)["id"]
    stale = post(
        client,
        f"/content/items/{item_id}/reviews",
        {"decision": "approve", "expected_status": "review1"},
        staff("rv1", "reviewer"),
    )
    assert stale.status_code == 409 and json.loads(stale.body)["error"]["code"] == "STATE_CONFLICT"
    missing = client.http.get("/content/items/a-0000000000000000", headers=staff("ed1", "editor"))
    assert missing.status_code == 404 and json.loads(missing.body)["error"]["code"] == "ITEM_NOT_FOUND"
    assert client.http.get("/content/items/" + item_id).status_code == 401
    assert client.http.get("/content/site/columns/nope").status_code == 404
    assert client.http.get("/content/media/v-0000000000000000/master.m3u8").status_code == 404
    queue = json.loads(client.http.get("/content/queue?status=draft", headers=staff("ed1", "editor")).body)
    assert item_id in [i["id"] for i in queue["items"]]


def test_wechat_push_verification_and_refusals(client: Client) -> None:
    ts, nonce = str(int(time.time())), "abc"
    sig = signature(wechat_standin.TOKEN, ts, nonce)
    ok = client.http.get(f"/content/wechat?signature={sig}&timestamp={ts}&nonce={nonce}&echostr=hello")
    assert ok.status_code == 200 and ok.body == b"hello"
    assert (
        client.http.get(f"/content/wechat?signature={'0' * 40}&timestamp={ts}&nonce={nonce}&echostr=x").status_code
        == 403
    )
    body = (
        "<xml><ToUserName><![CDATA[gh_c]]></ToUserName><FromUserName><![CDATA[oF1]]></FromUserName>"
        f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>"
    )
    query = f"/content/wechat?signature={sig}&timestamp={ts}&nonce={nonce}"
    reply = client.http.post(query, body=body.encode(), headers={"Content-Type": "text/xml"})
    assert reply.status_code == 200 and "欢迎关注" in reply.body.decode()
    again = client.http.post(query, body=body.encode(), headers={"Content-Type": "text/xml"})
    assert again.body == b"success"
    entity = client.http.post(query, body=b'<!DOCTYPE x [<!ENTITY a "b">]><xml/>', headers={"Content-Type": "text/xml"})
    assert entity.status_code == 400 and json.loads(entity.body)["error"]["code"] == "WECHAT_XML_REFUSED"


def test_video_refused_then_transcoded_reviewed_and_played(
    client: Client, content: Any, aws_stack: Any, tmp_path: Any
) -> None:
    uploader = staff("up1", "editor-video")
    s3 = aws.client("s3")
    bucket = aws_stack.ref("ContentUploadBucket")
    meta = {"hospital": "ruijin", "title": "脑卒中康复操", "content_type": "video/mp4", "departments": ["康复科"],
            "diseases": [{"code": "I63", "name": "脑卒中", "aliases": ["中风"]}]}  # fmt: skip
    # a file that is not what was declared: refused, removed, the reason on the record
    wrong = json.loads(post(client, "/content/videos", {**meta, "size_bytes": 5}, uploader).body)
    key = f"uploads/{wrong['item']['id']}/source"
    s3.put_object(Bucket=bucket, Key=key, Body=b"0123456789", ContentType="video/mp4")
    as_function("ContentTranscodeFunction", content.transcode, canned.s3_via_sqs(bucket, key, size=10))
    refused = json.loads(client.http.get(f"/content/items/{wrong['item']['id']}", headers=uploader).body)
    assert refused["media"]["state"] == "refused" and "大小" in refused["media"]["reason"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount") == 0
    # a real video
    clip = make_test_video(tmp_path / "clip.mp4", seconds=3, width=640, height=360)
    created = json.loads(post(client, "/content/videos", {**meta, "size_bytes": clip.stat().st_size}, uploader).body)
    video_id = created["item"]["id"]
    key = f"uploads/{video_id}/source"
    s3.put_object(Bucket=bucket, Key=key, Body=clip.read_bytes(), ContentType="video/mp4")
    as_function("ContentTranscodeFunction", content.transcode, canned.s3_via_sqs(bucket, key, size=clip.stat().st_size))
    ready = json.loads(client.http.get(f"/content/items/{video_id}", headers=uploader).body)
    assert ready["media"]["state"] == "ready" and [r["height"] for r in ready["media"]["renditions"]] == [360]
    assert client.http.get(f"/content/media/{video_id}/master.m3u8").status_code == 404  # not yet reviewed
    assert post(client, f"/content/items/{video_id}/submit", {}, uploader).status_code == 200
    for who, role, stage in (
        ("rv1", "reviewer", "review1"),
        ("rv2", "reviewer", "review2"),
        ("ce1", "chief-editor", "final"),
    ):
        assert (
            post(
                client,
                f"/content/items/{video_id}/reviews",
                {"decision": "approve", "expected_status": stage},
                staff(who, role),
            ).status_code
            == 200
        )
    as_function("ContentWechatTokenFunction", content.refresh_wechat_token, canned.scheduled())
    drain_publish_queue(aws_stack, content)
    master = client.http.get(f"/content/media/{video_id}/master.m3u8")
    assert master.status_code == 200 and "360p.m3u8" in master.body.decode()
    variant = client.http.get(f"/content/media/{video_id}/360p.m3u8").body.decode()
    assert "X-Amz-Signature=" in variant and "360p_000.ts" in variant
    page = client.http.get(f"/content/site/videos/{video_id}")
    assert page.status_code == 200 and 'data-src="/content/media/' in page.body.decode()
    library = client.http.get("/content/site/videos?disease=I63").body.decode()
    assert video_id in library and "脑卒中 1" in library
    assert json.loads(client.http.get("/content/search?q=tnb").body)["total"] == 0
    assert json.loads(client.http.get("/content/search?q=zhongfeng&kind=video").body)["total"] == 1


def test_sources_configured_by_the_chief_and_aggregated_on_schedule(client: Client, content: Any) -> None:
    from bianjie_dev.content.sites import HospitalSites

    sites = HospitalSites()
    base = sites.start()
    try:
        sites.add("renji", "仁济医院开设糖尿病足专病门诊", "仁济医院东院开设糖尿病足专病门诊，每周二、周四下午开诊。")
        config = {"hospital": "renji", "name": "仁济新闻", "kind": "list", "url": f"{base}/renji/news",
                  "link_pattern": r"/renji/news/\d+\.html$"}  # fmt: skip
        denied = client.http.put(
            "/content/sources/renji-news", body=json.dumps(config).encode(), headers=staff("ed1", "editor")
        )
        assert denied.status_code == 403
        chief = staff("ce1", "chief-editor")
        assert (
            client.http.put("/content/sources/renji-news", body=json.dumps(config).encode(), headers=chief).status_code
            == 200
        )
        bad = client.http.put("/content/sources/Bad_Id", body=json.dumps(config).encode(), headers=chief)
        assert bad.status_code == 422 and json.loads(bad.body)["error"]["code"] == "SOURCE_ID_INVALID"
        runs = as_function("ContentAggregateFunction", content.aggregate, canned.scheduled())["runs"]
        assert len(runs) == 1 and len(runs[0]["new"]) == 1
        draft = json.loads(client.http.get(f"/content/items/{runs[0]['new'][0]}", headers=staff("ed1", "editor")).body)
        assert (
            draft["status"] == "draft"
            and draft["hospital"] == "renji"
            and draft["created_by"] == "system:content-aggregator"
        )
        listed = json.loads(client.http.get("/content/sources", headers=chief).body)["sources"]
        assert listed[0]["id"] == "renji-news" and listed[0]["status"] == "ok"
    finally:
        sites.stop()


def test_party_member_signs_up_for_an_activity(client: Client) -> None:
    admin = staff("pa-1", "party-admin", hospital="centre")
    member = staff("m-alice", "party-member", hospital="centre")
    assert client.http.get("/content/party/activities", headers=member).status_code == 403  # not registered yet
    put = client.http.put(
        "/content/party/members/m-alice", body=json.dumps({"branch": "b1", "name": "张三"}).encode(), headers=admin
    )
    assert put.status_code == 200, put.body
    starts = "2030-01-01T09:00:00+08:00"
    activity = post(
        client,
        "/content/party/activities",
        {"title": "主题党日", "place": "3楼会议室", "starts_at": starts, "capacity": 30},
        admin,
    )
    assert activity.status_code == 201, activity.body
    activity_id = json.loads(activity.body)["id"]
    assert (
        post(
            client,
            "/content/party/activities",
            {"title": "x", "place": "y", "starts_at": starts, "capacity": 1},
            member,
        ).status_code
        == 403
    )
    listed = json.loads(client.http.get("/content/party/activities", headers=member).body)["activities"]
    assert [a["title"] for a in listed] == ["主题党日"]
    signed = post(client, f"/content/party/activities/{activity_id}/signups", {}, member)
    assert signed.status_code == 201 and json.loads(signed.body)["mine"] is True
    again = post(client, f"/content/party/activities/{activity_id}/signups", {}, member)
    assert again.status_code == 409 and json.loads(again.body)["error"]["code"] == "ALREADY_SIGNED_UP"
    attended = post(client, f"/content/party/activities/{activity_id}/attendance", {"member_id": "m-alice"}, admin)
    assert attended.status_code == 200 and json.loads(attended.body)["attended"] == 1
    assert json.loads(client.http.get("/content/party/members/m-alice", headers=member).body)["name"] == "张三"


def test_views_searches_and_oa_statistics_through_the_stats_route(client: Client, content: Any, aws_stack: Any) -> None:
    from bianjie.kit.timefmt import beijing_day

    as_function("ContentWechatTokenFunction", content.refresh_wechat_token, canned.scheduled())
    item_id = json.loads(post(client, "/content/articles", ARTICLE, staff("ed1", "editor")).body)["id"]
    three_reviews(client, item_id)
    drain_publish_queue(aws_stack, content)
    for _ in range(3):
        assert client.http.get(f"/content/site/articles/{item_id}").status_code == 200
    assert client.http.get("/content/site/articles/a-0000000000000000").status_code == 404  # not counted
    assert client.http.get("/content/site/columns/science").status_code == 200
    assert client.http.get("/content/search?q=%E4%B8%AD%E9%A3%8E").status_code == 200  # 中风
    assert client.http.get("/content/site/search?q=tnb").status_code == 200
    copied = as_function("ContentWechatStatsFunction", content.copy_wechat_stats, canned.scheduled())
    assert len(copied["days"]) == 7

    today = beijing_day(time.time())
    first = copied["days"][0]
    chief = staff("ce1", "chief-editor")
    answer = client.http.get(f"/content/stats?from={first}&to={today}", headers=chief)
    assert answer.status_code == 200, answer.body
    report = json.loads(answer.body)
    assert report["from"] == first and report["to"] == today and len(report["days"]) == 8
    assert report["days"][-1]["views"] == 3 and report["days"][-1]["visitors"] == 1
    assert report["top_items"][0] == {"id": item_id, "views": 3, "kind": "article", "column": "science",
                                      "title": "中风的早期识别"}  # fmt: skip
    assert report["top_columns"][0]["column"] == "science" and report["top_columns"][0]["page_views"] == 1
    assert {t["term"] for t in report["top_terms"]} == {"中风", "tnb"}
    assert all(d["oa"]["followers"] > 0 for d in report["days"][:7]) and report["days"][-1]["oa"] is None
    assert report["totals"]["reads"] > 0 and report["totals"]["shares"] > 0
    assert answer.headers["Cache-Control"] == "private, no-store"


def test_stats_refusals(client: Client) -> None:
    chief = staff("ce1", "chief-editor")
    assert client.http.get("/content/stats?from=2026-01-01&to=2026-01-02").status_code == 401
    editor = client.http.get("/content/stats?from=2026-01-01&to=2026-01-02", headers=staff("ed1", "editor"))
    assert editor.status_code == 403 and json.loads(editor.body)["error"]["code"] == "ROLE_REQUIRED"
    admin = client.http.get("/content/stats?from=2026-01-01&to=2026-01-02", headers=staff("ad1", "admin"))
    assert admin.status_code == 200
    for query, status, code in (
        ("from=2026-1-1&to=2026-01-02", 400, "VALIDATION_FAILED"),
        ("to=2026-01-02", 400, "VALIDATION_FAILED"),
        ("from=2026-01-05&to=2026-01-02", 422, "RANGE_INVALID"),
        ("from=2026-02-30&to=2026-03-02", 422, "RANGE_INVALID"),
        ("from=2025-01-01&to=2026-01-02", 422, "RANGE_TOO_LONG"),
    ):
        refused = client.http.get(f"/content/stats?{query}", headers=chief)
        assert refused.status_code == status and json.loads(refused.body)["error"]["code"] == code, (
            query,
            refused.body,
        )


def test_the_console_page_is_static_with_the_sites_policy(client: Client) -> None:
    page = client.http.get("/content/console")
    assert page.status_code == 200
    body = page.body.decode()
    assert "/content/site/assets/console.js" in body and "<table" in body and 'lang="zh-CN"' in body
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    home = client.http.get("/content/site")
    assert "console.js" not in home.body.decode()  # the chart library stays out of the public pages


def test_the_chief_pushes_the_menu_through_the_standin(client: Client, content: Any) -> None:
    from bianjie.content.menu import default_menu
    from bianjie.kit import deps
    from bianjie_dev.content.wechat_standin import WechatApiStandIn

    as_function("ContentWechatTokenFunction", content.refresh_wechat_token, canned.scheduled())
    menu = default_menu("http://127.0.0.1:3000").model_dump(exclude_none=True)
    editor = client.http.put("/content/wechat/menu", body=json.dumps(menu).encode(), headers=staff("ed1", "editor"))
    assert editor.status_code == 403
    too_many = {"button": [menu["button"][1]] * 4}
    refused = client.http.put("/content/wechat/menu", body=json.dumps(too_many).encode(),
                              headers=staff("ce1", "chief-editor"))  # fmt: skip
    assert refused.status_code == 400 and json.loads(refused.body)["error"]["code"] == "VALIDATION_FAILED"
    pushed = client.http.put(
        "/content/wechat/menu", body=json.dumps(menu).encode(), headers=staff("ce1", "chief-editor")
    )
    assert pushed.status_code == 200, pushed.body
    assert json.loads(pushed.body)["pushed_by"] == "ce1"
    with function_scope(fc._function_scopes["ContentWechatMenuFunction"]):
        held = WechatApiStandIn(deps.documents(), deps.table("CONTENT_TABLE")).menu()
    assert held is not None and held["button"][0]["sub_button"][2] == {"type": "click", "name": "科普知识",
                                                                      "key": "science"}  # fmt: skip


def test_a_follower_authorises_through_wechat_and_returns_to_the_page(client: Client) -> None:
    import urllib.parse

    from bianjie.kit import deps
    from bianjie_dev.content.wechat_standin import WechatApiStandIn

    refused = client.http.get("/content/wechat/oauth?next=https://evil.example/")
    assert refused.status_code == 422 and json.loads(refused.body)["error"]["code"] == "NEXT_INVALID"
    started = client.http.get("/content/wechat/oauth?next=/content/site/search")
    assert started.status_code == 302
    cookie = started.headers["Set-Cookie"]
    assert cookie.startswith("bj_oauth_state=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    location = urllib.parse.urlsplit(started.headers["Location"])
    query = urllib.parse.parse_qs(location.query)
    assert location.netloc == "open.weixin.qq.com" and query["redirect_uri"][0].endswith(
        "/content/wechat/oauth/callback"
    )
    with function_scope(fc._function_scopes["ContentWechatOauthCallbackFunction"]):
        back = WechatApiStandIn(deps.documents(), deps.table("CONTENT_TABLE")).authorize(
            "oFunctional1", query["redirect_uri"][0], query["state"][0]
        )
    path = "/content/wechat/oauth/callback?" + urllib.parse.urlsplit(back).query
    without = client.http.get(path)  # another browser: no state cookie
    assert without.status_code == 403 and json.loads(without.body)["error"]["code"] == "OAUTH_STATE"
    state_cookie = cookie.split(";")[0]
    done = client.http.get(path, headers={"Cookie": state_cookie})
    assert done.status_code == 302 and done.headers["Location"] == "/content/site/search"
    session = done.headers["Set-Cookie"]
    assert session.startswith("bj_follower=") and "oFunctional1" not in session and "HttpOnly" in session
    again = client.http.get(path, headers={"Cookie": state_cookie})
    assert again.status_code == 403  # the state was used
