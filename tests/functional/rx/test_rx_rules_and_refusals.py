"""Every refusal of the rx API, with its code: pre-check problems, signatures, idempotency, roles, states."""

from __future__ import annotations

import base64
from typing import Any

from bianjie.kit.crypto import sig_to_raw, sm2_generate_key, sm2_sign

from tests.functional.rx.conftest import World, settlement_body
from tests.unit.rx.data import precheck_body


def code(response: Any) -> str:
    return response.json_body["error"]["code"]


def test_precheck_lists_every_problem_per_line(world: World) -> None:
    body = precheck_body(
        valid_days=5,
        insured={"cert_type": "01", "cert_no": "310101198001010010", "name": "张三"},
        drugs=[
            {"med_code": "XA10BAE024A001010100001", "quantity": 2, "dose": 1, "frequency": "bid", "days": 14},
            {"med_code": "X" + "0" * 22, "quantity": 1, "dose": 1, "frequency": "qd", "days": 3},
            {"med_code": "XN02AAM063A010010100014", "quantity": 1, "dose": 1, "frequency": "qd", "days": 3},
            {"med_code": "XA10ABM048B002010100013", "quantity": 1, "dose": 10, "frequency": "tid", "days": 7},
        ],
    )
    response = world.call("hospital-a", "POST", "/rx/precheck", body)
    assert response.status_code == 422 and code(response) == "RX_PRECHECK_FAILED"
    found = {(p["line"], p["code"]) for p in response.json_body["error"]["details"]}
    assert {
        (None, "VALIDITY_TOO_LONG"),
        (None, "CERT_NO_INVALID"),
        (1, "DAYS_SUPPLY_TOO_LONG"),
        (2, "DRUG_UNKNOWN"),
        (3, "DRUG_CONTROLLED"),
        (3, "DRUG_NOT_CIRCULABLE"),
        (4, "DRUG_NOT_CIRCULABLE"),
    } <= found


def test_precheck_callers(world: World) -> None:
    body = precheck_body()
    assert code(world.call("pharmacy-a", "POST", "/rx/precheck", body)) == "NOT_A_HOSPITAL"
    assert code(world.call("clinic", "POST", "/rx/precheck", body)) == "NOT_A_HOSPITAL"
    assert world.call("anonymous", "POST", "/rx/precheck", body).status_code == 401
    unknown_doctor = precheck_body(doctor={"code": "D9", "name": "x", "dept_code": "a", "dept_name": "b"})
    response = world.call("hospital-a", "POST", "/rx/precheck", unknown_doctor)
    assert {p["code"] for p in response.json_body["error"]["details"]} == {"DOCTOR_NOT_REGISTERED"}
    bad_shape = world.call("hospital-a", "POST", "/rx/precheck", {"hosp_rxno": "x"})
    assert bad_shape.status_code == 400 and code(bad_shape) == "VALIDATION_FAILED"


def test_precheck_retry_gets_the_same_trace_code(world: World) -> None:
    body = precheck_body()
    first = world.ok("hospital-a", "POST", "/rx/precheck", body)
    assert world.ok("hospital-a", "POST", "/rx/precheck", body) == first


def test_upload_is_idempotent_by_trace_code(world: World) -> None:
    pre = world.precheck()
    early = world.upload(pre)
    assert early.status_code == 409 and code(early) == "RX_NOT_SIGNED"
    world.sign(pre["rx_id"])
    # the refusal above did not bind the trace code: the hospital may upload with a different body
    body = {
        "trace_code": pre["trace_code"],
        "hi_rxno": pre["hi_rxno"],
        "pharmacist_code": "PH1",
        "pharmacist_checked_at": "2026-01-01T09:00:00+08:00",
    }
    first = world.call("hospital-a", "POST", "/rx/prescriptions", body)
    assert first.status_code == 200, first.body
    again = world.call("hospital-a", "POST", "/rx/prescriptions", body)
    assert again.status_code == 200 and again.json_body == first.json_body
    changed = world.call("hospital-a", "POST", "/rx/prescriptions", {**body, "pharmacist_code": "PH2"})
    assert changed.status_code == 409 and code(changed) == "IDEMPOTENCY_KEY_REUSED"
    other = world.call(
        "hospital-b", "POST", "/rx/prescriptions", {"trace_code": pre["trace_code"], "hi_rxno": pre["hi_rxno"]}
    )
    assert code(other) == "NOT_A_HOSPITAL" or other.status_code == 404


def test_upload_with_a_foreign_trace_code(world: World) -> None:
    a, b = world.precheck(hosp_rxno="A1"), world.precheck(hosp_rxno="B1")
    world.sign(a["rx_id"])
    response = world.call(
        "hospital-a", "POST", "/rx/prescriptions", {"trace_code": b["trace_code"], "hi_rxno": a["hi_rxno"]}
    )
    assert response.status_code == 409 and code(response) == "TRACE_CODE_MISMATCH"


def test_signature_refusals(world: World) -> None:
    pre = world.precheck()
    rx_id = pre["rx_id"]
    wrong_key = world.sign(rx_id, key=sm2_generate_key())
    assert wrong_key.status_code == 400 and code(wrong_key) == "RX_SIGNATURE_INVALID"
    assert code(world.call("other-doctor", "GET", f"/rx/prescriptions/{rx_id}/document")) == "NOT_ISSUING_DOCTOR"
    foreign = world.call("foreign-doctor", "GET", f"/rx/prescriptions/{rx_id}/document")
    assert foreign.status_code == 404
    assert code(world.call("pharmacist", "GET", f"/rx/prescriptions/{rx_id}/document")) == "ROLE_REQUIRED"
    assert code(world.call("patient", "GET", f"/rx/prescriptions/{rx_id}/document")) in ("TOKEN_KIND", "ROLE_REQUIRED")
    material = world.ok("doctor", "GET", f"/rx/prescriptions/{rx_id}/document")
    assert base64.b64decode(material["pdf_base64"]).startswith(b"%PDF-1.4")
    signature = base64.b64encode(sig_to_raw(sm2_sign(world.doctor_key, material["signing_input"].encode()))).decode()
    tampered = world.call(
        "doctor", "POST", f"/rx/prescriptions/{rx_id}/signature", {"pdf_sm3": "0" * 64, "signature": signature}
    )
    assert tampered.status_code == 409 and code(tampered) == "PDF_DIGEST_MISMATCH"
    other_text = base64.b64encode(sig_to_raw(sm2_sign(world.doctor_key, b"something else"))).decode()
    forged = world.call(
        "doctor",
        "POST",
        f"/rx/prescriptions/{rx_id}/signature",
        {"pdf_sm3": material["pdf_sm3"], "signature": other_text},
    )
    assert code(forged) == "RX_SIGNATURE_INVALID"
    ok = world.call(
        "doctor",
        "POST",
        f"/rx/prescriptions/{rx_id}/signature",
        {"pdf_sm3": material["pdf_sm3"], "signature": signature},
    )
    assert ok.status_code == 200
    twice = world.call(
        "doctor",
        "POST",
        f"/rx/prescriptions/{rx_id}/signature",
        {"pdf_sm3": material["pdf_sm3"], "signature": signature},
    )
    assert twice.status_code == 409 and code(twice) == "RX_NOT_PRECHECKED"


def test_in_hospital_purchase_then_revoke_is_refused(world: World) -> None:
    rx_id = world.valid()
    path = f"/rx/prescriptions/{rx_id}/confirmation"
    assert code(world.call("hospital-a", "POST", path, {"mode": "in_hospital"})) == "SETTLEMENT_REQUIRED"
    body = {"mode": "in_hospital", **settlement_body(None, "S-IN-1")}
    done = world.ok("hospital-a", "POST", path, body)
    assert done["status"] == "dispensed" and done["uses"] == 1
    assert world.ok("hospital-a", "POST", path, body) == done  # a retried settlement notice: same answer
    again = world.call("hospital-a", "POST", path, {"mode": "in_hospital", **settlement_body(None, "S-IN-2")})
    assert again.status_code == 409 and code(again) == "RX_ALREADY_DISPENSED"
    revoked = world.call("doctor", "POST", f"/rx/prescriptions/{rx_id}/revoke", {"reason": "开错了"})
    assert revoked.status_code == 409 and code(revoked) == "RX_USED"
    nothing = world.call("pharmacy-a", "POST", "/rx/authorizations", {"ec_token": world.ec_token()})
    assert nothing.status_code == 404 and code(nothing) == "NO_RELEASED_PRESCRIPTION"


def test_release_needs_the_circulation_flag(world: World) -> None:
    rx_id = world.valid(circulation=False)
    response = world.call("hospital-a", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"})
    assert response.status_code == 409 and code(response) == "RX_NOT_FOR_CIRCULATION"


def test_authorization_refusals_and_the_pharmacy_hold(world: World) -> None:
    rx_id = world.released()
    bad = world.call("pharmacy-a", "POST", "/rx/authorizations", {"ec_token": "ec1.forged-token-value"})
    assert bad.status_code == 401 and code(bad) == "EC_TOKEN_INVALID"
    assert (
        code(world.call("hospital-a", "POST", "/rx/authorizations", {"ec_token": world.ec_token()})) == "NOT_A_PHARMACY"
    )
    auth = world.authorize("pharmacy-a")
    assert [p["rx_id"] for p in auth["prescriptions"]] == [rx_id]
    # pharmacy B reads the same e-credential while A holds the prescription: there is nothing to take
    other = world.call("pharmacy-b", "POST", "/rx/authorizations", {"ec_token": world.ec_token()})
    assert other.status_code == 404 and code(other) == "NO_RELEASED_PRESCRIPTION"
    assert code(world.review(rx_id, auth["authorization_id"], who="pharmacist-b")) == "AUTHORIZATION_INVALID"
    assert code(world.dispense(rx_id, auth["authorization_id"], who="pharmacy-b")) == "AUTHORIZATION_INVALID"
    not_reviewed = world.dispense(rx_id, auth["authorization_id"])
    assert not_reviewed.status_code == 409 and code(not_reviewed) == "RX_NOT_REVIEWED"
    held = world.ok("pharmacy-a", "GET", f"/rx/authorizations/{auth['authorization_id']}")
    assert held["prescriptions"][0]["status"] == "authorized"
    assert world.call("pharmacy-b", "GET", f"/rx/prescriptions/{rx_id}").status_code == 404
    assert world.call("pharmacy-a", "GET", f"/rx/prescriptions/{rx_id}").status_code == 200
    # a doctor cannot revoke while the pharmacy is working on it
    assert code(world.call("doctor", "POST", f"/rx/prescriptions/{rx_id}/revoke", {"reason": "开错了"})) == "RX_IN_USE"


def test_review_reject_then_revoke(world: World) -> None:
    rx_id = world.released()
    auth = world.authorize()["authorization_id"]
    assert code(world.review(rx_id, auth, "reject")) == "REASON_REQUIRED"
    rejected = world.review(rx_id, auth, "reject", "剂量与诊断不符")
    assert rejected.json_body["status"] == "review_rejected"
    assert code(world.dispense(rx_id, auth)) == "RX_REVIEW_REJECTED"
    assert (
        code(world.call("other-doctor", "POST", f"/rx/prescriptions/{rx_id}/revoke", {"reason": "重开"}))
        == "NOT_ISSUING_DOCTOR"
    )
    revoked = world.ok("doctor", "POST", f"/rx/prescriptions/{rx_id}/revoke", {"reason": "重开"})
    assert revoked["status"] == "revoked" and revoked["center_status"] == "3"
    twice = world.call("doctor", "POST", f"/rx/prescriptions/{rx_id}/revoke", {"reason": "重开"})
    assert code(twice) == "RX_REVOKED"


def test_dispense_item_checks_and_idempotency(world: World) -> None:
    rx_id = world.released()
    auth = world.authorize()["authorization_id"]
    world.review(rx_id, auth)
    too_many = world.dispense(rx_id, auth, setl_id="S-X1", quantity=9)
    assert too_many.status_code == 422 and code(too_many) == "ITEM_QUANTITY_EXCEEDED"
    body = settlement_body(auth, "S-X2")
    body["items"][0]["med_code"] = "XC08CAA091A001010100002"
    response = world.call("pharmacy-a", "POST", f"/rx/prescriptions/{rx_id}/dispense", body)
    assert code(response) == "ITEM_NOT_PRESCRIBED"
    first = world.dispense(rx_id, auth, setl_id="S-OK")
    assert first.status_code == 200
    assert world.dispense(rx_id, auth, setl_id="S-OK").json_body == first.json_body
    second = world.dispense(rx_id, auth, setl_id="S-OK-2")
    assert second.status_code in (403, 409)
    assert code(second) in ("RX_ALREADY_DISPENSED", "RX_NOT_AUTHORIZED")


def test_reads_are_scoped(world: World) -> None:
    rx_id = world.valid()
    assert world.call("hospital-b", "GET", f"/rx/prescriptions/{rx_id}").status_code == 404
    assert world.ok("stranger", "GET", "/rx/me/prescriptions")["items"] == []
    assert [i["rx_id"] for i in world.ok("patient", "GET", "/rx/me/prescriptions")["items"]] == [rx_id]
    listed = world.ok("hospital-a", "GET", "/rx/prescriptions", query="status=valid")
    assert [i["rx_id"] for i in listed["items"]] == [rx_id]
    assert world.ok("hospital-a", "GET", "/rx/prescriptions", query="status=revoked")["items"] == []
    assert code(world.call("doctor", "GET", "/rx/me/prescriptions")) == "TOKEN_KIND"
