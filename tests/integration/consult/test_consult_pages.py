"""The MDT pages on the local stack as `make run` starts it, in headless Chromium
(web/consult/browser/flows.mjs): a doctor of A applies with two doctors of partner B (the form's Chinese
validation first), both accept, the case goes 待会诊 -> 会诊中 -> 待报告 -> 已完成 as they enter the room,
end the meeting and sign their reports; the applicant sees both; a doctor of C is told the case does not
exist; the admin page lists the agreement. axe-core, layout and CSP checks on every page looked at."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bianjie_dev.runtime.child import StackProcess, project_root

ROOT = project_root()
BROWSER = ROOT / "web" / "consult" / "browser"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    proc = StackProcess(tmp_path_factory.mktemp("consult-pages-stack"), seed=["consult"])
    try:
        yield proc
    finally:
        proc.stop()


def chromium() -> str:
    done = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_apply_accept_four_states_and_signed_reports_in_the_browser(stack: StackProcess, tmp_path: Path) -> None:
    demo = json.loads((stack.state_dir / "consult" / "demo.json").read_text())
    tokens = {**demo["tokens"], "admin": demo["admin_token"]}
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (README: Node 20)"
    done = subprocess.run(
        [
            node,
            "flows.mjs",
            "mdt",
            "--base",
            stack.url,
            "--tokens",
            json.dumps(tokens),
            "--chromium",
            chromium(),
            "--shots",
            str(tmp_path),
        ],
        cwd=BROWSER,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"], (result.get("failure"), result["errors"], done.stderr[-2000:])
    assert result["errors"] == [] and result["csp_violations"] == [], result
    for name, seen in result["looks"].items():
        assert seen["axe"] == [], (name, seen["axe"])
        assert seen["layout"]["overlaps"] == [], (name, seen["layout"])
        assert not seen["layout"]["too_wide"], (name, seen["layout"])
    steps = result["steps"]
    assert "错误：请填写患者姓名" in steps["empty_errors"] and "请至少选择一位参与会诊的医生" in steps["empty_summary"]
    assert "身份证号应为18位" in steps["id_error"]
    assert steps["after_apply"] == "scheduled" and steps["answers"] == ["accepted", "accepted"]
    assert steps["after_join"] == "in_progress" and steps["after_end"] == "awaiting_report"
    assert steps["b2_after_sign"] == "completed" and steps["final"] == "completed"
    assert sorted(steps["reports"]) == [["B001", "final"], ["B002", "final"]]
    assert steps["consultation_id"] in steps["records"]
    assert any(t.startswith("已完成") for t in steps["tabs"])
    assert "没有找到这次会诊" in steps["c_error"]
    assert steps["agreements"] >= 1
    verified = stack.cli("consult", "verify-report", steps["consultation_id"], "--doctor", "partner-hospital-b/B002")
    assert verified.returncode == 0 and json.loads(verified.stdout)["valid"], verified.stdout + verified.stderr
