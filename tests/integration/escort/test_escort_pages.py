"""云陪诊's pages on the local stack as `make run` starts it, in headless Chromium at a phone size
(web/escort/browser/flow.mjs): invite -> the link from the SMS outbox -> phone code and invitation code ->
the room, which moves by itself when a guidance event arrives and shows no report the patient did not
share -> the patient revokes and the open room says so. Each page is checked as a person sees it (text
present, nothing drawn over other text, nothing wider than the phone), with axe-core, and with no script
error or CSP violation."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.escort.cli import next_event
from bianjie_dev.runtime.child import StackProcess, project_root

ROOT = project_root()
BROWSER = ROOT / "web" / "escort" / "browser"
VISIT = "V-DEMO-TODAY"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    proc = StackProcess(tmp_path_factory.mktemp("escort-pages"), seed=["escort"])
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def chromium() -> str:
    done = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def post_guide_event(stack: StackProcess, body: dict[str, Any]) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
    key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
    headers = sign_request(key, "POST", "/guide/events", "", raw, "demo-hospital", partner["key_serial"])
    request = urllib.request.Request(
        stack.url + "/guide/events", data=raw, method="POST", headers={**headers, "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        assert json.loads(r.read())["accepted"] == 1


def wait_for_visit(stack: StackProcess, token: str) -> None:
    """guide's demo events reach escort through the topic and the queue a moment after the stack starts."""
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"{stack.url}/escort/visits/{VISIT}/companions", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                return
        except urllib.error.HTTPError as exc:
            assert exc.code == 404, exc.read()
        time.sleep(0.5)
    raise AssertionError("the demo visit never reached escort")


def test_invite_join_room_revoke_in_chromium(stack: StackProcess, chromium: str, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (README: Node 20)"
    demo = json.loads((stack.state_dir / "escort" / "demo.json").read_text())
    wait_for_visit(stack, demo["token"])
    proc = subprocess.Popen(
        [
            node,
            "flow.mjs",
            "--base",
            stack.url,
            "--token",
            demo["token"],
            "--operator",
            demo["operator_token"],
            "--visit",
            VISIT,
            "--chromium",
            chromium,
            "--shots",
            str(tmp_path),
        ],
        cwd=BROWSER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout
    first = proc.stdout.readline()
    if not first.startswith("READY"):
        proc.kill()
        raise AssertionError(first + proc.stdout.read() + (proc.stderr.read() if proc.stderr else ""))
    before = json.loads(first.split(" ", 1)[1])
    assert before["state"] and "检查检验报告" not in before["shared"], before  # the report was not shared
    post_guide_event(stack, next_event(VISIT, 2, "queue.updated"))
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"], result["errors"]
    assert result["errors"] == [] and result["csp_violations"] == [], result
    steps = result["steps"]
    assert steps["visit_selected"] == VISIT and steps["code_length"] == 8 and steps["qr_loaded"]
    assert steps["sms_has_link"] and steps["handle_left_address_bar"] and steps["resend_disabled"]
    assert steps["after"]["state"] == "候诊中" and "前面还有 2 人" in steps["after"]["queue"], steps["after"]
    assert steps["after"]["notice"].endswith("候诊中，前面还有2人") or "候诊中，前面还有2人" in steps["after"]["notice"]
    assert "检查检验报告" not in steps["after"]["shared"]
    assert steps["revoked"]["code"] == "GRANT_REVOKED" and "患者已撤销" in steps["revoked"]["text"], steps["revoked"]
    for name, seen in result["looks"].items():
        assert seen["axe"] == [], (name, seen["axe"])
        assert seen["layout"]["overlaps"] == [], (name, seen["layout"])
        assert not seen["layout"]["too_wide"], (name, seen["layout"])
    assert "邀请码" in result["looks"]["invite-result"]["text"]
    assert "获取验证码" in result["looks"]["join"]["text"]
    assert "当前环节" in result["looks"]["room"]["text"]
