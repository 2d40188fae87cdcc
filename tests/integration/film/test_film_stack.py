"""Cloud film on the local stack as `make run` starts it: CLI ingest of a folder, a partner-signed link,
presigned frames with CORS, refusals over HTTP, and the viewer in headless Chromium on a phone viewport."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bianjie_dev.runtime.child import StackProcess, project_root

ROOT = project_root()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    proc = StackProcess(tmp_path_factory.mktemp("film-stack"), env={"BIANJIE_FILM_DEMO_CT_SLICES": "20"}, seed=["film"])
    try:
        yield proc
    finally:
        proc.stop()


def http(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def mint(stack: StackProcess, body: dict[str, Any], app: str = "demo-hospital") -> tuple[int, dict[str, Any]]:
    done = stack.cli("request", "POST", "/film/links", "--app", app, "--data", json.dumps(body))
    status, _, payload = done.stdout.partition("\n")
    return int(status), json.loads(payload)


@pytest.fixture(scope="module")
def ingested(stack: StackProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("dicom")
    made = stack.cli("film", "testdata", str(folder), "--ct", "12", "--mr", "4", "--us", "5", "--report", "pdf")
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    sent = stack.cli("film", "ingest", str(folder), "--hospital", "demo-hospital")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["files"] == 12 + 4 + 1 + 1  # and the PDF report
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status, answer = mint(stack, {"study_uid": info["study_uid"]})
        if status == 201:
            _, _, body = http(f"{answer['url']}/manifest")
            manifest = json.loads(body)
            frames = sum(s["frame_count"] for s in manifest["study"]["series"])
            if frames == 12 + 4 + 5 and manifest["study"]["report"]:
                return {**info, "link": answer, "manifest": manifest}
        time.sleep(0.5)
    raise AssertionError(f"study not ingested in time:\n{stack.log_path.read_text()[-3000:]}")


def test_cli_ingest_then_partner_link_then_manifest(stack: StackProcess, ingested: dict[str, Any]) -> None:
    manifest = ingested["manifest"]
    assert [s["modality"] for s in manifest["study"]["series"]] == ["CT", "MR", "US"]
    assert manifest["patient"]["name"] == "张*"
    # a patient link from the 医联 platform sees this study and the demo study (same synthetic patient)
    status, answer = mint(stack, {"patient_id": ingested["patient_id_card"], "id_type": "id_card"}, app="demo-yilian")
    assert status == 201, answer
    assert answer["studies"] == 2


def test_frames_come_from_object_storage_with_cors(stack: StackProcess, ingested: dict[str, Any]) -> None:
    ct = ingested["manifest"]["study"]["series"][0]
    status, headers, body = http(ct["frames"][0], headers={"Origin": "http://127.0.0.1:1", "Accept-Encoding": "gzip"})
    assert status == 200
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["content-encoding"] == "gzip"
    assert headers["access-control-allow-origin"] in ("*", "http://127.0.0.1:1")
    import gzip

    assert len(gzip.decompress(body)) == 512 * 512 * 2


def test_bad_links_are_refused_with_their_codes(stack: StackProcess, ingested: dict[str, Any]) -> None:
    key = ingested["link"]["key"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    status, _, body = http(f"{stack.url}/film/v/{tampered}")
    assert status == 403 and "LINK_INVALID" in body.decode()
    status, _, body = http(f"{stack.url}/film/v/{tampered}/manifest")
    assert json.loads(body)["error"]["code"] == "LINK_INVALID"
    done = stack.cli("request", "DELETE", f"/film/links/{key}", "--app", "demo-yilian")
    assert done.stdout.startswith("403") and "LINK_NOT_YOURS" in done.stdout


def test_viewer_in_headless_chromium_on_a_phone(stack: StackProcess, ingested: dict[str, Any]) -> None:
    chromium = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    node = shutil.which("node")
    assert node, "node is needed for the browser test (README: Node 20)"
    done = subprocess.run(
        [node, "browser-check.mjs", ingested["link"]["url"], "--chromium", chromium.stdout.strip()],
        cwd=ROOT / "web" / "film",
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["url_ok"] and result["status"] == 200, result
    assert result["errors"] == [] and result["error"] is None, result
    assert result["csp_violations"] == [], result["csp_violations"]
    assert {"first_image", "tools_ready", "cornerstone_image", "series_loaded"} <= set(result["marks"]), result
    # every frame the page fetched while the bundle loaded went to Cornerstone from memory, none twice
    assert result["frames_handed_over"] == ingested["manifest"]["study"]["series"][0]["frame_count"], result
    assert result["before"]["std"] > 10, "the canvas is blank"
    assert result["after"]["hash"] != result["before"]["hash"], "dragging did not change window/level"
    assert result["overlay"].startswith("窗宽")
    assert {
        "窗宽窗位",
        "缩放",
        "平移",
        "放大镜",
        "测距",
        "角度",
        "矩形",
        "椭圆",
        "注释",
        "重置",
        "分享",
        "应急调阅",
        "说明",
    } <= set(result["tools"])
    # the PDF report opens in a new tab (phone browsers do not render a PDF inside a page)
    assert "胸部CT诊断报告" in result["report"], result
    assert result["report_links"] == [{"text": "打开报告（PDF）", "target": "_blank"}], result


def test_pdf_report_is_served_from_object_storage(stack: StackProcess, ingested: dict[str, Any]) -> None:
    report = ingested["manifest"]["study"]["report"]
    assert report["kind"] == "pdf"
    status, headers, body = http(report["url"])
    assert status == 200 and {k.lower(): v for k, v in headers.items()}["content-type"] == "application/pdf"
    assert body.startswith(b"%PDF-")


def test_demo_link_from_make_run_opens(stack: StackProcess) -> None:
    demo = json.loads((Path(stack.state_dir) / "film-demo.json").read_text())
    status, headers, body = http(demo["url"])
    assert status == 200 and {k.lower(): v for k, v in headers.items()}["content-type"].startswith("text/html")
    assert 'id="manifest"' in body.decode()
    # the demo study has a structured report, rendered to text at ingest
    report = json.loads(http(f"{demo['url']}/manifest")[2])["study"]["report"]
    assert report["kind"] == "sr" and report["title"] == "影像诊断报告"
    rendered = json.loads(http(report["url"])[2])
    assert [n["name"] for n in rendered["content"]] == ["检查所见", "诊断意见", "报告医生"]


def test_emergency_retrieval_pulls_a_study_from_the_imaging_cloud(stack: StackProcess) -> None:
    demo = json.loads((Path(stack.state_dir) / "film-demo.json").read_text())
    wanted = demo["archived_study_uid"]
    done = stack.cli(
        "request", "POST", "/film/emergency", "--app", "demo-yilian", "--data", json.dumps({"study_uid": wanted})
    )
    status, _, payload = done.stdout.partition("\n")
    assert status == "202", done.stdout
    request_id = json.loads(payload)["request_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = stack.cli("request", "GET", f"/film/emergency/{request_id}", "--app", "demo-yilian")
        answer = json.loads(got.stdout.partition("\n")[2])
        minted, _ = mint(stack, {"study_uid": wanted}, app="demo-yilian")
        if answer["status"] == "sent" and minted == 201:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"emergency retrieval did not complete: {answer}")
    # the request is visible to the viewer of that study
    _, link = mint(stack, {"study_uid": wanted}, app="demo-yilian")
    manifest = json.loads(http(f"{link['url']}/manifest")[2])
    assert manifest["emergency"][0]["request_id"] == request_id
    # from a link: only for the link's own studies
    request = urllib.request.Request(
        f"{link['url']}/emergency",
        data=json.dumps({"study_uid": demo["study_uid"]}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert json.loads(refused.value.read())["error"]["code"] == "STUDY_NOT_FOUND"


def test_cli_ingest_of_an_empty_file_answers_at_once(stack: StackProcess, tmp_path: Path) -> None:
    """boto3 sends ``Expect: 100-continue`` with ``Content-Length: 0`` for an empty file; the emulator
    used to leave it unanswered, and the CLI died after its 30 s read timeout (issue 21)."""
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    started = time.monotonic()
    sent = stack.cli("film", "ingest", str(empty), "--hospital", "demo-hospital")
    assert sent.returncode == 0, sent.stderr
    answer = json.loads(sent.stdout)
    # the empty file is reported and skipped (issue 16), at once
    assert answer["files"] == 0 and answer["skipped"] == [{"path": str(empty), "reason": "empty file"}]
    assert "skipped" in sent.stderr and "Traceback" not in sent.stderr and time.monotonic() - started < 20
