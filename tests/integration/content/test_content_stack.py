"""Content on the real local stack (``make run``'s code path, with the demo seeded): the demo's reviewed
articles and video reach the website through the queue and the publisher; the video plays from its
presigned HLS segments; search finds by initials and synonym; a new article sent through three reviews
with CLI tokens appears on the site and in the official-account stand-in's list; the WeChat push answers
over HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from bianjie.content.wechat import signature
from bianjie_dev.content import wechat_standin
from bianjie_dev.runtime.child import StackProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("content-stack"), env={"BIANJIE_RETRY_DELAY": "1"}, seed=["content"])
    yield s
    s.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def call(stack: StackProcess, method: str, path: str, body: Any, token: str) -> tuple[int, Any]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(stack.url + path, data=raw, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(fn: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def token(stack: StackProcess, subject: str, role: str) -> str:
    result = stack.cli("content", "token", subject, "--role", role, "--ttl", "3600")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_demo_reaches_the_website_and_the_video_plays(stack: StackProcess) -> None:
    home = wait_for(
        lambda: (lambda s: s[1].decode() if s[0] == 200 and "糖尿病患者的饮食管理" in s[1].decode() else None)(
            get(stack.url + "/content/site")
        )
    )
    assert home and "中风的早期识别" in home and "脑卒中后的居家康复训练" in home
    video_path = home.split('href="/content/site/videos/')[1].split('"')[0]
    # the home page lists what is public when it is rendered; each record's own page follows with its own job
    wait_for(lambda: get(f"{stack.url}/content/site/videos/{video_path}")[0] == 200)
    status, page, headers = get(f"{stack.url}/content/site/videos/{video_path}")
    assert status == 200 and b'data-src="/content/media/' in page
    assert "media-src 'self' blob: http://127.0.0.1" in headers["Content-Security-Policy"]
    status, master, _ = get(f"{stack.url}/content/media/{video_path}/master.m3u8")
    assert status == 200 and b"720p.m3u8" in master and b"360p.m3u8" in master
    _, variant, _ = get(f"{stack.url}/content/media/{video_path}/360p.m3u8")
    segment_url = next(line for line in variant.decode().splitlines() if line.startswith("http"))
    status, segment, _ = get(segment_url, {"Origin": stack.url})
    assert status == 200 and segment[:1] == b"\x47"  # an MPEG-TS sync byte, straight from storage


def test_search_by_initials_and_synonym(stack: StackProcess) -> None:
    def found(q: str) -> Any:
        status, body, _ = get(f"{stack.url}/content/search?q={urllib.parse.quote(q)}")
        return json.loads(body) if status == 200 else None

    tnb = wait_for(lambda: (lambda a: a if a and a["total"] else None)(found("tnb")))
    assert [h["title"] for h in tnb["hits"]] == ["糖尿病患者的饮食管理"]
    stroke = found("中风")
    assert {h["kind"] for h in stroke["hits"]} == {"article", "video"}


def test_three_reviews_with_cli_tokens_reach_site_and_official_account(stack: StackProcess) -> None:
    editor = token(stack, "ed-int", "editor")
    draft = {
        "column": "news",
        "hospital": "ruijin",
        "title": "瑞金医院开设慢阻肺专病门诊",
        "summary": "每周二、四下午",
        "body": "为方便慢阻肺患者就诊，瑞金医院呼吸科开设专病门诊。",
    }
    status, item = call(stack, "POST", "/content/articles", draft, editor)
    assert status == 201, item
    assert call(stack, "POST", f"/content/items/{item['id']}/submit", {}, editor)[0] == 200
    for who, role, stage in (
        ("rv-a", "reviewer", "review1"),
        ("rv-b", "reviewer", "review2"),
        ("ce-a", "chief-editor", "final"),
    ):
        status, done = call(
            stack,
            "POST",
            f"/content/items/{item['id']}/reviews",
            {"decision": "approve", "expected_status": stage},
            token(stack, who, role),
        )
        assert status == 200, done
    assert done["status"] == "published"
    page = wait_for(lambda: get(f"{stack.url}/content/site/articles/{item['id']}")[0] == 200)
    assert page
    listed = wait_for(lambda: "瑞金医院开设慢阻肺专病门诊" in stack.cli("content", "oa-published").stdout)
    assert listed
    verify = stack.cli("content", "verify", item["id"])
    assert verify.returncode == 0 and '"seals_intact": true' in verify.stdout


def test_the_aggregator_picks_up_the_two_new_items(stack: StackProcess) -> None:
    """The demo's stand-in hospital sites published two items after the seed's run: one scheduled run
    takes exactly those two, as drafts of their hospitals waiting for review."""
    chief = token(stack, "ce-agg", "chief-editor")
    before = {
        i["id"]
        for i in json.loads(get(f"{stack.url}/content/queue?status=draft", {"Authorization": f"Bearer {chief}"})[1])[
            "items"
        ]
    }
    fired = stack.cli("stack", "fire", "ContentAggregateFunction", "--stack", str(stack.state_dir / "stack.json"))
    assert fired.returncode == 0, fired.stderr
    after = json.loads(get(f"{stack.url}/content/queue?status=draft", {"Authorization": f"Bearer {chief}"})[1])["items"]
    new = [i for i in after if i["id"] not in before]
    assert sorted((i["hospital"], i["title"]) for i in new) == [
        ("renji", "仁济医院举办护士节表彰活动"),
        ("ruijin", "瑞金医院开展世界糖尿病日义诊"),
    ]
    assert all(i["created_by"] == "system:content-aggregator" for i in new)


def test_wechat_push_over_http(stack: StackProcess) -> None:
    ts, nonce = str(int(time.time())), "int-nonce"
    sig = signature(wechat_standin.TOKEN, ts, nonce)
    body = (
        "<xml><ToUserName><![CDATA[gh_c]]></ToUserName><FromUserName><![CDATA[oF-int]]></FromUserName>"
        f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[糖尿病]]></Content>"
        "<MsgId>42000001</MsgId></xml>"
    ).encode()
    request = urllib.request.Request(
        f"{stack.url}/content/wechat?signature={sig}&timestamp={ts}&nonce={nonce}",
        data=body,
        method="POST",
        headers={"Content-Type": "text/xml"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        reply = r.read().decode()
    assert "糖尿病患者的饮食管理" in reply and "<MsgType><![CDATA[text]]></MsgType>" in reply


def test_the_website_on_a_phone_in_chromium(stack: StackProcess) -> None:
    """Home, an article, search ("tnb"), the library and the video page in headless Chromium at 375 px:
    readable (no overlaps, nothing too wide, one h1, lang zh-CN), axe-clean, no script or CSP error,
    and the video plays through hls.js from the presigned segments."""
    import shutil
    import subprocess

    from bianjie_dev.runtime.child import project_root

    root = project_root()
    subprocess.run(["make", "-s", "web"], cwd=root, check=True, capture_output=True, timeout=600)
    # the stack seeded before this test built the player: put it where the site serves it from
    result = stack.cli("content", "publish-player")
    assert result.returncode == 0, result.stderr
    chromium = subprocess.run([str(root / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    home = wait_for(
        lambda: (lambda s: s[1].decode() if s[0] == 200 and "脑卒中后的居家康复训练" in s[1].decode() else None)(
            get(stack.url + "/content/site")
        )
    )
    video = home.split('href="/content/site/videos/')[1].split('"')[0]
    article = home.split('href="/content/site/articles/')[1].split('"')[0]
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (README: Node 20)"
    done = subprocess.run(
        [node, "site.mjs", "--base", stack.url, "--video", video, "--article", article,
         "--chromium", chromium.stdout.strip().splitlines()[-1]],
        cwd=root / "web" / "content" / "browser", capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ok"] and out["errors"] == [] and out["csp_violations"] == [], out
    for name, page in out["pages"].items():
        assert page["status"] == 200 and page["missing"] == [], (name, page)
        assert page["overlaps"] == 0 and not page["too_wide"] and page["axe_serious"] == [], (name, page)
        assert page["h1"] == 1 and page["lang"] == "zh-CN", (name, page)
    assert out["pages"]["search"]["results"] == ["糖尿病患者的饮食管理"]
    playback = out["pages"]["video"]["playback"]
    assert playback["engine"] == "hls.js" and playback["levels"] == 2 and playback["current_time"] >= 1, playback


def test_the_demo_member_signs_up(stack: StackProcess) -> None:
    staff = json.loads((stack.state_dir / "content" / "staff.json").read_text())
    member = staff["tokens"]["party_member"]
    request = urllib.request.Request(
        f"{stack.url}/content/party/activities", headers={"Authorization": f"Bearer {member}"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        [activity] = json.loads(r.read())["activities"]
    status, answer = call(stack, "POST", f"/content/party/activities/{activity['id']}/signups", {}, member)
    assert status == 201 and answer["mine"] is True and answer["signed_up"] == 1


def test_the_console_shows_yesterdays_views_as_a_chart(stack: StackProcess) -> None:
    """The banner's console link in headless Chromium (desktop): the demo's two weeks of counters and the
    datacube copy answer /content/stats; the chart is drawn on a non-empty canvas, the table beside it
    has yesterday's views as the API counts them, axe-core finds nothing serious, no CSP or script error."""
    import shutil
    import subprocess
    from datetime import date, timedelta

    from bianjie.kit.timefmt import beijing_day
    from bianjie_dev.runtime.child import project_root

    root = project_root()
    subprocess.run(["make", "-s", "web"], cwd=root, check=True, capture_output=True, timeout=600)
    assert stack.cli("content", "publish-player").returncode == 0
    chief = json.loads((stack.state_dir / "content" / "staff.json").read_text())["tokens"]["chief"]
    today = beijing_day(time.time())
    yesterday = (date.fromisoformat(today) - timedelta(days=1)).isoformat()
    first = (date.fromisoformat(today) - timedelta(days=13)).isoformat()
    status, body, _ = get(f"{stack.url}/content/stats?from={first}&to={today}", {"Authorization": f"Bearer {chief}"})
    assert status == 200, body
    report = json.loads(body)
    by_day = {d["day"]: d for d in report["days"]}
    assert by_day[yesterday]["views"] > 0 and by_day[yesterday]["oa"]["followers"] > 0
    assert report["top_terms"][0]["term"] == "中风"

    chromium = subprocess.run([str(root / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (README: Node 20)"
    done = subprocess.run(
        [node, "console.mjs", "--base", stack.url, "--token", chief, "--chromium",
         chromium.stdout.strip().splitlines()[-1]],
        cwd=root / "web" / "content" / "browser", capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ok"] and out["errors"] == [] and out["csp_violations"] == [], out
    assert out["status"] == 200 and "#token=" not in out["address"], out
    assert out["axe_serious"] == [] and out["h1"] == 1 and out["lang"] == "zh-CN", out
    charts = {c["id"]: c for c in out["charts"]}
    assert charts["chart-views"]["drawn"] == 14 and charts["chart-views"]["inked_pixels"] > 1000, charts
    assert charts["chart-oa"]["inked_pixels"] > 1000, charts
    views = {row[0]: row for row in out["tables"]["table-views"]}
    assert views[yesterday][1] == str(by_day[yesterday]["views"]), views
    assert f"昨日浏览 {by_day[yesterday]['views']} 次" in out["status_text"], out["status_text"]
    # Earlier tests in this module publish and read an article, so the top list is the API's, not the seed's.
    items = [[i["title"], str(i["views"])] for i in report["top_items"]]
    assert [[row[0], row[2]] for row in out["tables"]["table-items"]] == items, (out["tables"], items)
    assert len(items) >= 3 and out["tables"]["table-terms"][0][0] == "中风", out["tables"]
