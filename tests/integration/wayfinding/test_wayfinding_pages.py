"""The wayfinding pages on the local stack in headless Chromium (web/wayfinding/browser/flows.mjs): on a
phone-sized page located at the main entrance's kiosk, the 2.5D map draws, "B超" is found, an accessible
route is drawn with Chinese steps, the simulated walk advances, holds while paused, changes speed and
speaks each step; the admin page disables a POI and shows the operations alert. axe-core finds no
serious violation, nothing overlaps, no script error, nothing blocked by the CSP."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bianjie_dev.runtime.child import StackProcess, project_root

from tests.integration.pages.test_pages_stack import assert_clean, node

ROOT = project_root()
BROWSER = ROOT / "web" / "wayfinding" / "browser"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    proc = StackProcess(tmp_path_factory.mktemp("wayfinding-pages"), seed=["wayfinding", "guide"])
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def chromium() -> str:
    done = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def demo(stack: StackProcess) -> dict[str, Any]:
    return dict(json.loads((stack.state_dir / "wayfinding" / "demo.json").read_text()))


def flow(stack: StackProcess, chromium: str, name: str, shots: Path, **args: str) -> dict[str, Any]:
    extra = [x for k, v in args.items() for x in (f"--{k}", v)]
    done = subprocess.run(
        [node(), "flows.mjs", name, "--base", stack.url, "--chromium", chromium, "--shots", str(shots), *extra],
        cwd=BROWSER,
        capture_output=True,
        text=True,
        timeout=240,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_navigation_page_routes_and_plays_the_simulated_walk(
    stack: StackProcess, chromium: str, demo: dict[str, Any], tmp_path: Path
) -> None:
    result = flow(stack, chromium, "nav", tmp_path, kiosk=demo["kiosk"])
    assert_clean(result)
    steps = result["steps"]
    assert steps["units_drawn"] >= 1 and steps["map_pixels"] > 1000 and steps["levels"] == 11  # the plaza first
    assert steps["units_on_floor"] > 5
    assert steps["where"] == "当前位置：正门导航机（已扫码定位）"
    assert steps["level_switched"]
    assert steps["first_hit"].startswith("超声科（B超室）")
    assert "乘东侧电梯到2楼" in steps["steps"] and steps["steps"][-1] == "到达超声科（B超室）"
    assert steps["route_points"] >= 2 and "超声科（B超室）" in steps["summary"]
    p = steps["progress"]
    assert 0 < p["p1"] < 1 and p["held"] == p["still"] and p["p2"] > p["still"]
    assert steps["speed"] == "4"
    assert steps["spoken"] == steps["steps"]  # every step spoken once, in order, as the walker reached it
    assert steps["final_level"]  # the map followed the walker to the destination's level
    assert int(steps["real"]["after"]) == int(steps["real"]["before"]) + 1
    assert "卫生间" in steps["toilet"]


def test_the_admin_page_disables_a_poi_and_shows_the_alert(
    stack: StackProcess, chromium: str, demo: dict[str, Any], tmp_path: Path
) -> None:
    result = flow(stack, chromium, "admin", tmp_path, token=demo["admin_token"])
    assert_clean(result)
    steps = result["steps"]
    assert steps["rows"] > 30
    assert any("2楼自助机" in a and "故障" in a for a in steps["alerts"])
    assert "内镜中心" in steps["filtered"] and "已停用" in steps["after"]
    url = f"{stack.url}/wayfinding/search?venue={demo['venue_id']}&q=%E5%86%85%E9%95%9C"
    with urllib.request.urlopen(url, timeout=30) as r:
        assert [h["poi"]["name"] for h in json.loads(r.read())["hits"]] == []


def test_the_outpatient_day_routes_to_the_next_to_do(
    stack: StackProcess, chromium: str, demo: dict[str, Any], tmp_path: Path
) -> None:
    from bianjie_dev.cli.tokens import issue_token, via_gateway

    token = issue_token(via_gateway(stack.url), "p-demo-1", "patient", requested_by="system:test.wayfinding")
    result = flow(stack, chromium, "day", tmp_path, kiosk=demo["kiosk"], token=token)
    assert_clean(result)
    steps = result["steps"]
    # guide's demo visit: the next to-do is paying the medicine at 门诊楼1楼收费处 (rj.out.1f.cashier)
    assert "下一项：" in steps["next"] and "门诊楼1楼收费处" in steps["next"]
    assert len(steps["day"]) >= 5  # booked, checked in, ..., report, then the current to-do
    assert steps["steps"][-1] == "到达1楼收费窗口"
