"""Demo data for ``make run``: the content platform as an editor finds it. Two articles and one video
went through the three reviews (初审, 复审, 终审) and are on the website once the event pump has run the
publisher (a second after the banner); one article waits for its first review, for you to try. The video
is generated with ffmpeg's test source, uploaded through its presigned PUT as a hospital would, and
transcoded to HLS by ContentTranscodeFunction itself.

Everything goes through the functions (API Gateway events built here, since the gateway is not
listening yet while the stack seeds); nothing is written to content's tables directly. Staff tokens
(12 hours) are written to ``.local/content/staff.json`` (mode 0600) for curl and the CLI."""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HOSPITAL = "ruijin"
STAFF = {
    "editor": ("ed-demo", ["editor"]),
    "reviewer1": ("rv-demo-1", ["reviewer"]),
    "reviewer2": ("rv-demo-2", ["reviewer"]),
    "chief": ("ce-demo", ["chief-editor"]),
    "party_admin": ("pa-demo", ["party-admin"]),
    "party_member": ("m-demo", ["party-member"]),
}
ARTICLES = [
    {
        "column": "science",
        "hospital": "ruijin",
        "title": "中风的早期识别：记住“中风120”",
        "summary": "一看脸、二查臂、七聆听，发现异常立即拨打120",
        "body": "脑卒中（中风）起病急，早一分钟救治，多一分康复希望。\n\n"
        "“1”看一张脸是否不对称、口角歪斜；“2”查两只手臂是否单侧无力；“0”聆听说话是否口齿不清。\n\n"
        "出现任何一项，请立即拨打120，并记下发病时间。",
        "topic": "急救",
        "diseases": [{"code": "I63", "name": "脑卒中", "aliases": ["中风", "脑梗"]}],
    },
    {
        "column": "health",
        "hospital": "renji",
        "title": "糖尿病患者的饮食管理",
        "summary": "控制血糖从一日三餐开始",
        "body": "糖尿病患者应定时定量进餐，主食粗细搭配。\n\n少吃精制糖和油炸食品，多吃蔬菜，适量摄入优质蛋白。",
        "topic": "饮食",
        "diseases": [{"code": "E11", "name": "2型糖尿病", "aliases": ["糖尿病"]}],
    },
]
WAITING = {
    "column": "guides",
    "hospital": "ruijin",
    "title": "高血压患者居家测量血压指南",
    "summary": "每天固定时间测量，记录并复诊时带给医生",
    "body": "测量前安静休息5分钟，坐位，手臂与心脏同高。\n\n早晚各测一次，每次测两遍取平均值。",
    "diseases": [{"code": "I10", "name": "高血压", "aliases": ["血压高"]}],
}
VIDEO = {
    "hospital": "ruijin",
    "title": "脑卒中后的居家康复训练",
    "summary": "康复科医生示范三个简单的居家训练动作",
    "departments": ["康复医学科", "神经内科"],
    "diseases": [{"code": "I63", "name": "脑卒中", "aliases": ["中风"]}],
    "topic": "康复",
    "audience": "patients",
    "content_type": "video/mp4",
}


def _call(stack: Any, function_id: str, method: str, template: str, params: dict[str, str], body: Any,
          token: str) -> Any:  # fmt: skip
    """Invokes an HTTP function with the API Gateway event the local gateway would build for this request."""
    from bianjie.runtime.apigw import Route, build_event, response_parts

    path = template.format(**params)
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else b""
    # the function serving this route (one route per function; function_id names the service's area)
    fn = next(
        f
        for f in stack.functions
        if f.spec.logical_id.startswith(function_id.removesuffix("Function"))
        and any(e.method == method and e.path == template for e in f.spec.api_events())
    )
    function_id = fn.spec.logical_id
    event = build_event(
        method=method,
        path=path,
        raw_query="",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}.items(),
        body=raw,
        source_ip="127.0.0.1",
        route=Route.compile(method, template, function_id),
        path_params=params,
    )
    status, _, answer = response_parts(fn.invoke(event))
    if status not in (200, 201):
        raise RuntimeError(f"content demo: {method} {path} answered {status}: {answer[:300]!r}")
    return json.loads(answer)


def _reviews(stack: Any, tokens: dict[str, str], item_id: str) -> None:
    _call(stack, "ContentWorkflowFunction", "POST", "/content/items/{item_id}/submit", {"item_id": item_id}, {},
          tokens["editor"])  # fmt: skip
    for who, stage in (("reviewer1", "review1"), ("reviewer2", "review2"), ("chief", "final")):
        _call(stack, "ContentWorkflowFunction", "POST", "/content/items/{item_id}/reviews", {"item_id": item_id},
              {"decision": "approve", "expected_status": stage}, tokens[who])  # fmt: skip


SITES: Any = None  # the stand-in hospital sites live as long as the stack process


def _hospital_sites(stack: Any, tokens: dict[str, str]) -> str:
    """Starts the stand-in hospital sites, configures one source per site, takes what they hold now (as
    the schedule would), then lets two of them publish something new for the next run."""
    global SITES
    from bianjie_dev.content.sites import HospitalSites

    SITES = HospitalSites()
    base = SITES.start()
    SITES.add("ruijin", "瑞金医院提醒：及时接种流感疫苗", "入冬以来流感进入高发期，瑞金医院提醒市民及时接种流感疫苗。")
    SITES.add("renji", "仁济医院开设糖尿病足专病门诊", "仁济医院东院开设糖尿病足专病门诊，每周二、周四下午开诊。")
    sources = {
        "ruijin-feed": {"hospital": "ruijin", "name": "瑞金医院新闻", "kind": "feed", "url": f"{base}/ruijin/feed.xml"},
        "renji-news": {"hospital": "renji", "name": "仁济医院新闻", "kind": "list", "url": f"{base}/renji/news",
                       "link_pattern": r"/renji/news/\d+\.html$"},
        "chest-news": {"hospital": "chest", "name": "胸科医院新闻", "kind": "list", "url": f"{base}/chest/news",
                       "link_pattern": r"/chest/news/\d+\.html$"},
    }  # fmt: skip
    for source_id, config in sources.items():
        _call(stack, "ContentSourcesFunction", "PUT", "/content/sources/{source_id}", {"source_id": source_id}, config,
              tokens["chief"])  # fmt: skip
    SITES.add("chest", "胸科医院肺结节筛查门诊开诊", "胸科医院开设肺结节筛查门诊，低剂量螺旋CT当天可预约。")
    stack.invoke("ContentAggregateFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})
    SITES.add(
        "ruijin", "瑞金医院开展世界糖尿病日义诊", "11月14日，瑞金医院内分泌科在门诊大厅开展义诊，为市民免费测血糖。"
    )
    SITES.add("renji", "仁济医院举办护士节表彰活动", "仁济医院举办护士节表彰活动，表彰优秀护理团队和个人。")
    return base


def _party(stack: Any, tokens: dict[str, str]) -> str:
    """A registered member (m-demo) and an activity next week they have not signed up for yet."""
    from datetime import UTC, datetime, timedelta

    _call(stack, "ContentPartyFunction", "PUT", "/content/party/members/{member_id}", {"member_id": "m-demo"},
          {"branch": "centre-1", "name": "王小明", "phone": "13800138000"}, tokens["party_admin"])  # fmt: skip
    starts = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat()
    activity = _call(stack, "ContentPartyFunction", "POST", "/content/party/activities", {},
                     {"title": "主题党日：走进社区开展健康科普", "place": "申康中心3楼会议室", "starts_at": starts,
                      "capacity": 40, "summary": "支部党员走进社区，开展高血压、糖尿病防治宣讲"},
                     tokens["party_admin"])  # fmt: skip
    return str(activity["id"])


def publish_player(stack: Any) -> bool:
    """Puts the built scripts (web/content/dist: the player, the console and its style) into the site
    bucket's assets; False when not built."""
    from bianjie.kit import deps

    dist = stack.options.root / "web" / "content" / "dist"
    built = {
        "player.js": (dist / "assets" / "player.js", "text/javascript; charset=utf-8"),
        "console.js": (dist / "assets" / "console.js", "text/javascript; charset=utf-8"),
        "console.css": (dist / "console.css", "text/css; charset=utf-8"),
    }
    if not all(path.is_file() for path, _ in built.values()):
        return False
    bucket = stack.deployment.ref("ContentSiteBucket")
    for name, (path, kind) in built.items():
        deps.objects().put(bucket, f"assets/{name}", path.read_bytes(), content_type=kind)
    return True


# two weeks of site statistics, so that the console's charts have a history (yesterday's included)
HISTORY_DAYS = 14
TERMS = {"中风": 9, "糖尿病": 7, "tnb": 4, "高血压 饮食": 3, "流感疫苗": 2}


def seed_statistics(stack: Any, items: list[tuple[str, str, str, str]]) -> dict[str, int]:
    """Counters for the last two weeks (views of the demo's published items, column pages, visitors,
    search terms), written straight into the counters as the site functions would have, since nobody
    visited yesterday; then the nightly datacube copy from the stand-in. Answers yesterday's totals."""
    from datetime import date, timedelta

    from bianjie.content.stats import StatsStore
    from bianjie.kit import deps
    from bianjie.kit.timefmt import beijing_day

    store = StatsStore(deps.documents(), deps.table("CONTENT_TABLE"))
    today = date.fromisoformat(beijing_day(time.time()))
    yesterday: dict[str, int] = {}
    for back in range(HISTORY_DAYS, 0, -1):
        day = (today - timedelta(days=back)).isoformat()
        weekday = (today - timedelta(days=back)).weekday()
        total = 0
        for rank, (item_id, kind, column, title) in enumerate(items):
            views = (40 + 13 * ((back * 7 + rank * 5) % 9)) // (rank + 1) + (15 if weekday < 5 else 0)
            total += views

            def info(kind: str = kind, column: str = column, title: str = title) -> dict[str, Any]:
                return {"kind": kind, "column": column, "title": title}

            store.add(day, f"view#{item_id}", by=views, extra=info)
        for column, share in (("home", 3), ("science", 6), ("health", 8)):
            store.add(day, f"col#{column}", by=max(1, total // share))
        store.add(day, "vis", by=max(1, total * 3 // 5))
        for term, count in TERMS.items():
            store.add(day, f"q#{term}", by=count + back % 3)
        if back == 1:
            yesterday = {"views": total, "visitors": max(1, total * 3 // 5)}
    stack.invoke("ContentWechatStatsFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})
    return yesterday


def seed(stack: Any) -> None:
    from bianjie.kit.tokens import MAX_TTL

    from bianjie_dev.cli.tokens import issue_token, via_stack
    from bianjie_dev.content.videos import make_test_video

    issuer = via_stack(stack)
    tokens = {
        key: issue_token(
            issuer, sub, "staff", roles, ttl_seconds=MAX_TTL, hospital=HOSPITAL, requested_by="system:demo"
        )
        for key, (sub, roles) in STAFF.items()
    }
    stack.invoke("ContentWechatTokenFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})
    published = []
    for draft in ARTICLES:
        item = _call(stack, "ContentArticlesFunction", "POST", "/content/articles", {}, draft, tokens["editor"])
        _reviews(stack, tokens, item["id"])
        published.append(item["id"])
    waiting = _call(stack, "ContentArticlesFunction", "POST", "/content/articles", {}, WAITING, tokens["editor"])
    _call(stack, "ContentWorkflowFunction", "POST", "/content/items/{item_id}/submit", {"item_id": waiting["id"]}, {},
          tokens["editor"])  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_test_video(Path(tmp) / "demo.mp4", seconds=4, width=1280, height=720)
        data = clip.read_bytes()
    created = _call(stack, "ContentVideosFunction", "POST", "/content/videos", {}, {**VIDEO, "size_bytes": len(data)},
                    tokens["editor"])  # fmt: skip
    video_id = created["item"]["id"]
    put = urllib.request.Request(created["upload_url"], data=data, method="PUT", headers={"Content-Type": "video/mp4"})
    with urllib.request.urlopen(put, timeout=30) as answer:  # the local emulator's presigned URL
        answer.read()
    bucket = stack.deployment.ref("ContentUploadBucket")
    key = f"uploads/{video_id}/source"
    record = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                           "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": len(data)}}}]}  # fmt: skip
    message = {
        "messageId": "demo-upload",
        "body": json.dumps(record),
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
    }
    stack.invoke("ContentTranscodeFunction", {"Records": [message]})
    _reviews(stack, tokens, video_id)

    viewed = [(i, "article", str(ARTICLES[n]["column"]), str(ARTICLES[n]["title"])) for n, i in enumerate(published)]
    yesterday = seed_statistics(stack, [*viewed, (video_id, "video", "video", str(VIDEO["title"]))])
    sites_url = _hospital_sites(stack, tokens)
    activity = _party(stack, tokens)

    local = stack.options.local_dir / "content"
    local.mkdir(parents=True, exist_ok=True)
    path = local / "staff.json"
    path.write_text(json.dumps({"hospital": HOSPITAL, "tokens": tokens, "waiting": waiting["id"]}, indent=2))
    os.chmod(path, 0o600)
    player = publish_player(stack)
    url = stack.gateway_url
    stack.demo_urls.append(
        f"{url}/content/site   (申康医联 健康科普 website: 2 articles; the publisher renders them once the pump runs)"
    )
    stack.demo_urls.append(
        f"{url}/content/site/videos/{video_id}   (科普视频, HLS 720p/360p"
        + ("" if player else "; the hls.js player is missing: run `make web`")
        + ")"
    )
    stack.demo_urls.append(f"{url}/content/site/search?q=tnb   (search: pinyin initials; try 中风)")
    stack.demo_urls.append(
        f"{url}/content/console#token={tokens['chief']}   (内容统计 console: yesterday {yesterday.get('views', 0)} "
        "views as a chart, visitors, top items and search terms, the OA's followers/reads/shares; chief-editor)"
        + ("" if player else " [console.js missing: run `make web`]")
    )
    stack.demo_urls.append(
        f'curl -s -X POST -H "Authorization: Bearer $(jq -r .tokens.party_member {path})" '
        f"{url}/content/party/activities/{activity}/signups   (申康党建: m-demo signs up for 主题党日)"
    )
    stack.demo_urls.append(
        ".venv/bin/bianjie stack fire ContentAggregateFunction   (汇聚共享: picks up the two new items the stand-in "
        f"hospital sites at {sites_url} published since the seed; they wait as drafts: /content/queue?status=draft)"
    )
    stack.demo_urls.append(
        f"curl -s -H \"Authorization: Bearer $(jq -r .tokens.reviewer1 {path})\" '{url}/content/queue?status=review1'"
        "   (content: an article waiting for its first review)"
    )
