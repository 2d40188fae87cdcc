"""MDT consultation on the real local stack (make run's code path) over HTTP: the demo's doctors; an
attachment through the real presigned PUT and the S3-triggered check; the four states; signed reports
verified by ``bianjie consult verify-report``; hospital C kept out."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from bianjie.kit.timefmt import utc_iso
from bianjie_dev.runtime.child import StackProcess

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("consult-stack"), seed=["consult"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def demo(stack: StackProcess) -> dict[str, Any]:
    return json.loads((stack.state_dir / "consult" / "demo.json").read_text())  # type: ignore[no-any-return]


def http(
    stack: StackProcess, method: str, path: str, body: Any = None, token: str | None = None, **headers: str
) -> tuple[int, Any]:
    raw = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {"Content-Type": "application/json", **headers}
    if token:
        h["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(stack.url + path, data=raw, method=method, headers=h)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def apply_body(demo: dict[str, Any], invitees: list[str]) -> dict[str, Any]:
    return {
        "invitees": [{"org": demo["doctors"][c][0], "doctor_code": c} for c in invitees],
        "start": utc_iso(time.time() + 15 * 60, "seconds"),
        "duration_min": 30,
        "patient": {"name": "李四", "id_number": "31010119700202002X", "sex": "female"},
        "visits": [{"visit_id": "V-INT-1", "visit_date": "2026-11-30", "department": "肿瘤科", "summary": "乳腺肿物"}],
        "purpose": "乳腺肿物治疗方案",
        "location": {"kind": "video"},
        "symptoms": "左乳肿物2月",
        "difficulties": "是否新辅助化疗",
        "diagnosis": "左乳肿物，性质待定",
    }


def wait_for(check: Any, timeout: float = 60) -> Any:
    deadline = time.time() + timeout
    while True:
        value = check()
        if value or time.time() > deadline:
            return value
        time.sleep(0.5)


def test_a_b_consultation_with_a_pdf_through_the_four_states(stack: StackProcess, demo: dict[str, Any]) -> None:
    t = demo["tokens"]
    status, created = http(
        stack,
        "POST",
        "/consult/consultations",
        apply_body(demo, ["B001", "B002"]),
        t["A001"],
        **{"Idempotency-Key": "int-1"},
    )
    assert status == 201, created
    cid = created["consultation_id"]
    base = f"/consult/consultations/{cid}"

    status, upload = http(
        stack,
        "POST",
        f"{base}/attachments",
        {"file_name": "病理.pdf", "content_type": "application/pdf", "size": len(PDF)},
        t["A001"],
    )
    assert status == 201, upload
    put = urllib.request.Request(upload["upload_url"], data=PDF, method="PUT", headers=upload["headers"])
    with urllib.request.urlopen(put, timeout=30) as response:
        assert response.status == 200

    def checked() -> Any:
        _, view = http(stack, "GET", base, token=t["A001"])
        return view["attachments"][0] if view["attachments"][0]["status"] != "pending" else None

    attachment = wait_for(checked)
    assert attachment and attachment["status"] == "clean" and len(attachment["sha256"]) == 64
    with urllib.request.urlopen(attachment["download_url"], timeout=30) as response:
        assert response.read() == PDF

    assert http(stack, "POST", f"{base}/consent", {"method": "written", "reference": "INT-F1"}, t["A001"])[0] == 200
    assert http(stack, "POST", f"{base}/submit", None, t["A001"])[1]["status"] == "scheduled"
    for code in ("B001", "B002"):
        assert http(stack, "POST", f"{base}/response", {"answer": "accept"}, t[code])[0] == 200
    status, room = http(stack, "POST", f"{base}/join", None, t["B001"])
    assert status == 200 and room["status"] == "in_progress"
    body, auth = webhook_for(stack, room["room"])
    assert http(stack, "POST", "/consult/rooms/webhook", body, Authorization=auth)[1]["status"] == "awaiting_report"
    for code in ("B001", "B002"):
        assert (
            http(stack, "PUT", f"{base}/reports/mine", {"opinion": f"{code} 意见：建议新辅助化疗"}, t[code])[0] == 200
        )
        assert http(stack, "POST", f"{base}/reports/mine/signature", None, t[code])[1]["status"] == "final"
    status, view = http(stack, "GET", base, token=t["A001"])
    assert view["status"] == "completed" and len(view["reports"]) == 2

    result = stack.cli("consult", "verify-report", cid, "--doctor", "partner-hospital-b/B001")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["valid"] is True

    # hospital C: cannot be invited, cannot open the case
    status, refused = http(
        stack, "POST", "/consult/consultations", apply_body(demo, ["C001"]), t["A001"], **{"Idempotency-Key": "int-2"}
    )
    assert status == 422 and refused["error"]["code"] == "NOT_IN_SCOPE"
    status, hidden = http(stack, "GET", base, token=t["C001"])
    assert status == 404 and hidden["error"]["code"] == "CONSULT_NOT_FOUND"


def webhook_for(stack: StackProcess, room: str) -> tuple[bytes, str]:
    """The stand-in LiveKit server's webhook, signed with the deployment's derived key (the CLI's view)."""
    result = stack.cli("consult", "standin-webhook", "room_finished", room)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    return answer["body"].encode(), answer["authorization"]
