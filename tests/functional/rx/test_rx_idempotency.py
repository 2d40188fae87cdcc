"""Idempotency as a hospital or pharmacy meets it, through the documented API only.

Only the outcome of a step that ran is remembered; a refusal (validation or the record's state) is not,
so the same request succeeds once it is corrected or the state allows it. Every answer describes the
prescription as it is now."""

from __future__ import annotations

from typing import Any

from tests.functional.rx.conftest import World, settlement_body
from tests.unit.rx.data import precheck_body


def code(response: Any) -> str:
    return response.json_body["error"]["code"]


def test_a_refused_precheck_does_not_bind_the_hospital_prescription_number(world: World) -> None:
    bad = precheck_body(hosp_rxno="HRX-FIX", valid_days=5)
    refused = world.call("hospital-a", "POST", "/rx/precheck", bad)
    assert refused.status_code == 422 and code(refused) == "RX_PRECHECK_FAILED"
    corrected = world.call("hospital-a", "POST", "/rx/precheck", precheck_body(hosp_rxno="HRX-FIX"))
    assert corrected.status_code == 200, corrected.body
    assert corrected.json_body["hosp_rxno"] == "HRX-FIX" and corrected.json_body["status"] == "precheck"


def test_a_precheck_retry_describes_the_prescription_as_it_is(world: World) -> None:
    body = precheck_body(hosp_rxno="HRX-RETRY")
    first = world.ok("hospital-a", "POST", "/rx/precheck", body)
    assert world.sign(first["rx_id"]).status_code == 200
    again = world.call("hospital-a", "POST", "/rx/precheck", body)
    assert again.status_code == 200
    assert again.json_body["trace_code"] == first["trace_code"] and again.json_body["status"] == "signed"
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = world.call("hospital-a", "POST", "/rx/precheck", precheck_body(hosp_rxno="HRX-RETRY", valid_days=2))
    assert other.status_code == 409 and code(other) == "IDEMPOTENCY_KEY_REUSED"


def test_a_release_refused_before_upload_succeeds_after_it(world: World) -> None:
    pre = world.precheck(hosp_rxno="HRX-EARLY")
    assert world.sign(pre["rx_id"]).status_code == 200
    path = f"/rx/prescriptions/{pre['rx_id']}/confirmation"
    early = world.call("hospital-a", "POST", path, {"mode": "external"})
    assert early.status_code == 409 and code(early) == "RX_NOT_VALID"
    assert world.upload(pre).status_code == 200
    released = world.call("hospital-a", "POST", path, {"mode": "external"})
    assert released.status_code == 200, released.body
    assert released.json_body["status"] == "released"
    assert world.ok("hospital-a", "GET", f"/rx/prescriptions/{pre['rx_id']}")["status"] == "released"


def test_an_external_confirmation_of_a_dispensed_prescription_is_refused(world: World) -> None:
    rx_id = world.released(hosp_rxno="HRX-DISP")
    path = f"/rx/prescriptions/{rx_id}/confirmation"
    assert world.ok("hospital-a", "POST", path, {"mode": "external"})["status"] == "released"  # a retry: as it is
    auth = world.authorize()["authorization_id"]
    assert world.ok("hospital-a", "POST", path, {"mode": "external"})["status"] == "authorized"
    assert world.review(rx_id, auth).status_code == 200
    assert world.dispense(rx_id, auth).status_code == 200
    after = world.call("hospital-a", "POST", path, {"mode": "external"})
    assert after.status_code == 409 and code(after) == "RX_ALREADY_DISPENSED"
    assert world.ok("hospital-a", "GET", f"/rx/prescriptions/{rx_id}")["status"] == "dispensed"


def test_an_external_confirmation_of_a_revoked_prescription_is_refused(world: World) -> None:
    rx_id = world.released(hosp_rxno="HRX-REV")
    assert world.ok("doctor", "POST", f"/rx/prescriptions/{rx_id}/revoke", {"reason": "开错了"})["status"] == "revoked"
    after = world.call("hospital-a", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"})
    assert after.status_code == 409 and code(after) == "RX_REVOKED"


def test_an_in_hospital_settlement_retry_describes_the_record_and_a_refusal_is_not_kept(world: World) -> None:
    rx_id = world.valid(hosp_rxno="HRX-IN")
    path = f"/rx/prescriptions/{rx_id}/confirmation"
    body = {"mode": "in_hospital", **settlement_body(None, "S-IN-A")}
    too_many = {"mode": "in_hospital", **settlement_body(None, "S-IN-A", quantity=9)}
    refused = world.call("hospital-a", "POST", path, too_many)
    assert refused.status_code == 422 and code(refused) == "ITEM_QUANTITY_EXCEEDED"
    done = world.call("hospital-a", "POST", path, body)  # same settlement id, corrected body
    assert done.status_code == 200 and done.json_body["status"] == "dispensed"
    again = world.call("hospital-a", "POST", path, body)
    assert again.status_code == 200 and again.json_body == done.json_body
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_an_authorization_that_covers_nothing_is_refused(world: World) -> None:
    response = world.call("pharmacy-a", "POST", "/rx/authorizations", {"ec_token": world.ec_token()})
    assert response.status_code == 404 and code(response) == "NO_RELEASED_PRESCRIPTION"
    rx_id = world.released(hosp_rxno="HRX-AUTH")
    held = world.authorize("pharmacy-a")
    assert held["authorization_id"] and [p["rx_id"] for p in held["prescriptions"]] == [rx_id]
    taken = world.call("pharmacy-b", "POST", "/rx/authorizations", {"ec_token": world.ec_token()})
    assert taken.status_code == 404 and code(taken) == "NO_RELEASED_PRESCRIPTION"


def test_a_dispense_refused_for_its_state_is_not_kept(world: World) -> None:
    rx_id = world.released(hosp_rxno="HRX-DSP")
    auth = world.authorize()["authorization_id"]
    early = world.dispense(rx_id, auth, setl_id="S-EARLY")
    assert early.status_code == 409 and code(early) == "RX_NOT_REVIEWED"
    assert world.review(rx_id, auth).status_code == 200
    done = world.dispense(rx_id, auth, setl_id="S-EARLY")
    assert done.status_code == 200 and done.json_body["status"] == "dispensed"
