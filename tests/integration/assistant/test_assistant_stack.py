"""The service bot on the local stack as `make run` starts it (the issue's 'done when'): over HTTP, and in
headless Chromium the patient's widget on a phone and the agent desk, the agent's reply reaching the
widget; axe-core with no serious violation, no script error, nothing the CSP blocked."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bianjie_dev.cli.tokens import issue_token, via_gateway
from bianjie_dev.runtime.child import StackProcess, project_root

ROOT = project_root()
BROWSER = ROOT / "web" / "assistant" / "browser"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    proc = StackProcess(tmp_path_factory.mktemp("assistant-stack"), seed=["assistant"])
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def chromium() -> str:
    done = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def post(stack: StackProcess, path: str, body: dict[str, Any], token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        stack.url + path, data=json.dumps(body, ensure_ascii=False).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def get(stack: StackProcess, path: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(stack.url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def agent_token(stack: StackProcess, code: str = "kf-test-1") -> str:
    return issue_token(
        via_gateway(stack.url),
        code,
        "staff",
        ["assistant-agent"],
        hospital="demo-hospital",
        requested_by="system:test.assistant",
    )


def assert_clean(result: dict[str, Any]) -> None:
    assert result["ok"], result["errors"]
    assert result["errors"] == [] and result["csp_violations"] == [], result
    for name, seen in result["looks"].items():
        assert seen["axe"] == [], (name, seen["axe"])
        assert seen["layout"]["overlaps"] == [] and not seen["layout"]["too_wide"], (name, seen["layout"])


def test_done_when_over_http(stack: StackProcess) -> None:
    status, nav = post(stack, "/assistant/messages", {"text": "b超在哪"})
    assert status == 200 and nav["intent"] == "svc.navigate"
    session = nav["session"]
    assert post(stack, "/assistant/messages", {"session": session, "text": "报告出来没"})[1]["intent"] == "svc.report"
    parking = post(stack, "/assistant/messages", {"session": session, "text": "停车怎么收费"})[1]
    assert parking["faq"] == "faq.parking" and parking["source"].startswith("kb:faq.parking")
    assert post(stack, "/assistant/messages", {"session": session, "text": "几点开门"})[1]["faq"] == "faq.hours"
    weekend = post(stack, "/assistant/messages", {"session": session, "text": "那周末呢"})[1]
    assert weekend["faq"] == "faq.hours" and "周六" in weekend["reply"]
    emergency = post(stack, "/assistant/messages", {"session": session, "text": "我胸口疼得厉害"})[1]
    assert emergency["kind"] == "emergency" and "120" in emergency["reply"]
    handoff = post(stack, "/assistant/messages", {"session": session, "text": "转人工"})[1]
    assert handoff["handoff"]["status"] == "waiting"
    # the demo's conversation waits too (seeded by bianjie_dev/assistant/demo.py)
    queue = get(stack, "/assistant/desk/queue", agent_token(stack))
    assert len([i for i in queue["items"] if i["status"] == "waiting"]) >= 2
    status, refused = post(stack, "/assistant/messages", {"text": "x" * 501})
    assert status == 400 and refused["error"]["code"] == "VALIDATION_FAILED"


def test_widget_and_desk_in_chromium(stack: StackProcess, chromium: str, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (README: Node 20)"
    chat = subprocess.Popen(
        [node, "flows.mjs", "chat", "--base", stack.url, "--chromium", chromium, "--shots", str(tmp_path)],
        cwd=BROWSER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert chat.stdout is not None and chat.stdin is not None
    first = chat.stdout.readline()
    assert json.loads(first).get("handoff"), first
    token = agent_token(stack, "kf-desk-1")
    # the desk takes the oldest waiting conversation first: take the demo's and every other one waiting, so
    # the widget's is answered by the desk page below
    queue = get(stack, "/assistant/desk/queue", token)
    waiting = [i["conversation"] for i in queue["items"] if i["status"] == "waiting"]
    for conv in waiting[:-1]:
        assert post(stack, f"/assistant/desk/conversations/{conv}/take", {}, agent_token(stack, "kf-other"))[0] == 200
    desk = subprocess.run(
        [
            node,
            "flows.mjs",
            "desk",
            "--base",
            stack.url,
            "--token",
            token,
            "--chromium",
            chromium,
            "--shots",
            str(tmp_path),
        ],
        cwd=BROWSER,
        capture_output=True,
        text=True,
        timeout=180,
    )
    desk_result = json.loads(desk.stdout.strip().splitlines()[-1])
    assert_clean(desk_result)
    assert "转人工" in desk_result["steps"]["transcript"] and desk_result["steps"]["suggestions"] >= 1
    assert desk_result["steps"]["filled"]
    chat.stdin.write("go\n")
    chat.stdin.flush()
    out, _ = chat.communicate(timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    assert_clean(result)
    steps = result["steps"]
    assert "院内导航" in steps["navigate"] and steps["navigate_card"]
    assert "元/小时" in steps["parking"] and "周六" in steps["weekend"]
    assert "120" in steps["emergency"] and steps["emergency_marked"] == 1
    assert "排队" in steps["status"]
    assert "已收到您的问题" in steps["agent_reply"] and "接待中" in steps["status_after"]
