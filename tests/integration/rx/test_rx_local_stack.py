"""The e-prescription path on the real local stack (make run's code path) over HTTP, as a hospital HIS,
a doctor, a pharmacy, its pharmacist and the patient would use it; then revocation and expiry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from bianjie_dev.runtime.child import StackProcess
from bianjie_dev.rx.client import Demo, RxHttp, demo_prescription, settlement
from fhir.resources.R4B.bundle import Bundle


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("rx-stack"), seed=["rx"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def demo(stack: StackProcess) -> Demo:
    return Demo.load(stack.state_dir)


def ec_token(stack: StackProcess) -> str:
    result = stack.cli("rx", "e-credential")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def valid_rx(http: RxHttp, demo: Demo, hosp_rxno: str, prescribed: datetime) -> str:
    pre = http.send(
        "POST", "/rx/precheck", demo_prescription(demo, hosp_rxno, prescribed.isoformat()), partner=demo.hospital
    )
    assert pre.status == 200, pre.body
    assert http.sign(pre.body["rx_id"], demo.doctor["token"], demo.doctor_key).status == 200
    up = http.send(
        "POST",
        "/rx/prescriptions",
        {"trace_code": pre.body["trace_code"], "hi_rxno": pre.body["hi_rxno"]},
        partner=demo.hospital,
    )
    assert up.status == 200 and up.body["status"] == "valid", up.body
    return str(pre.body["rx_id"])


def test_whole_path_then_revoke_refused(stack: StackProcess, demo: Demo) -> None:
    http = RxHttp(stack.url)
    now = datetime.now(UTC)
    rx_id = valid_rx(http, demo, "INT-1", now)
    released = http.send("POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"}, partner=demo.hospital)
    assert released.status == 200 and released.body["status"] == "released"
    auth = http.send("POST", "/rx/authorizations", {"ec_token": ec_token(stack)}, partner=demo.pharmacy)
    assert auth.status == 200 and [p["rx_id"] for p in auth.body["prescriptions"]] == [rx_id]
    auth_id = auth.body["authorization_id"]
    reviewed = http.send(
        "POST",
        f"/rx/prescriptions/{rx_id}/review",
        {"authorization_id": auth_id, "result": "pass"},
        token=demo.pharmacist["token"],
    )
    assert reviewed.status == 200 and reviewed.body["status"] == "reviewed"
    done = http.send(
        "POST",
        f"/rx/prescriptions/{rx_id}/dispense",
        {"authorization_id": auth_id, **settlement("INT-SETL-1", now.isoformat())},
        partner=demo.pharmacy,
    )
    assert done.status == 200 and done.body["status"] == "dispensed", done.body
    refused = http.send("POST", f"/rx/prescriptions/{rx_id}/revoke", {"reason": "撤销"}, token=demo.doctor["token"])
    assert refused.status == 409 and refused.code == "RX_USED"
    twice = http.send(
        "POST",
        f"/rx/prescriptions/{rx_id}/dispense",
        {"authorization_id": auth_id, **settlement("INT-SETL-2", now.isoformat())},
        partner=demo.pharmacy,
    )
    assert twice.status in (403, 409)
    mine = http.send("GET", "/rx/me/prescriptions", token=demo.patient["token"])
    assert rx_id in [p["rx_id"] for p in mine.body["items"]]
    bundle = http.send("GET", f"/rx/prescriptions/{rx_id}/fhir", partner=demo.hospital)
    assert bundle.status == 200
    Bundle.model_validate(bundle.body)


def test_revoke_while_unused(stack: StackProcess, demo: Demo) -> None:
    http = RxHttp(stack.url)
    rx_id = valid_rx(http, demo, "INT-2", datetime.now(UTC))
    revoked = http.send("POST", f"/rx/prescriptions/{rx_id}/revoke", {"reason": "医师重开"}, token=demo.doctor["token"])
    assert revoked.status == 200 and revoked.body == {**revoked.body, "status": "revoked", "center_status": "3"}
    released = http.send("POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"}, partner=demo.hospital)
    assert released.status == 409 and released.code == "RX_REVOKED"


def test_expired_prescription_cannot_be_dispensed(stack: StackProcess, demo: Demo) -> None:
    http = RxHttp(stack.url)
    # written almost three days ago: its validity ends ten minutes from now; the sweep runs "as of" then
    prescribed = datetime.now(UTC) - timedelta(days=3) + timedelta(minutes=10)
    rx_id = valid_rx(http, demo, "INT-3", prescribed)
    http.send("POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"}, partner=demo.hospital)
    auth_id = http.send("POST", "/rx/authorizations", {"ec_token": ec_token(stack)}, partner=demo.pharmacy).body[
        "authorization_id"
    ]
    assert (
        http.send(
            "POST",
            f"/rx/prescriptions/{rx_id}/review",
            {"authorization_id": auth_id, "result": "pass"},
            token=demo.pharmacist["token"],
        ).status
        == 200
    )
    due = (prescribed + timedelta(days=3, seconds=1)).isoformat()
    fired = stack.cli("stack", "fire", "RxExpirySweepFunction", "--time", due)
    assert fired.returncode == 0, fired.stdout + fired.stderr
    view = http.send("GET", f"/rx/prescriptions/{rx_id}", partner=demo.hospital)
    assert view.body["status"] == "expired" and view.body["history"][-1]["op"] == "expire"
    late = http.send(
        "POST",
        f"/rx/prescriptions/{rx_id}/dispense",
        {"authorization_id": auth_id, **settlement("INT-SETL-3", datetime.now(UTC).isoformat())},
        partner=demo.pharmacy,
    )
    assert late.status == 409 and late.code == "RX_EXPIRED"


def test_walkthrough_and_audit(stack: StackProcess) -> None:
    walk = stack.cli("rx", "walkthrough")
    assert walk.returncode == 0, walk.stdout + walk.stderr
    assert "!! " not in walk.stdout
    verified = stack.cli("audit", "verify", "--service", "rx")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    reports = [json.loads(line) for line in verified.stdout.splitlines()]
    assert reports and all(r["ok"] for r in reports) and sum(r["records"] for r in reports) >= 20
