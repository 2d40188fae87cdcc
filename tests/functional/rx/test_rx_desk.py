"""The staff desk (web/pages rx-doctor, rx-hospital, rx-pharmacy): the system steps made with staff tokens
instead of signed requests, each limited to its role and organisation, and audited under the person."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.conftest import token_issuer
from tests.functional.rx.conftest import World, precheck_body, settlement_body


def code(response: Any) -> str:
    return response.json_body["error"]["code"]


@pytest.fixture
def desk(world: World) -> World:
    issuer = token_issuer()
    world.tokens["clerk"] = issuer.issue("C1", "staff", ["rx-clerk"], hospital="hospital-a")
    world.tokens["pharmacy-clerk"] = issuer.issue("C2", "staff", ["rx-clerk"], hospital="pharmacy-a")
    world.tokens["hospital-pharmacist"] = issuer.issue("Y9", "staff", ["pharmacist"], hospital="hospital-a")
    return world


def test_the_whole_path_from_the_desk(desk: World) -> None:
    from bianjie.rx import wiring

    pre = desk.ok("doctor", "POST", "/rx/precheck", precheck_body())
    rx_id = pre["rx_id"]
    assert desk.sign(rx_id).json_body["status"] == "signed"
    up = desk.call("doctor", "POST", "/rx/prescriptions", {"trace_code": pre["trace_code"], "hi_rxno": rx_id})
    assert up.status_code == 200 and up.json_body["status"] == "valid", up.body
    listed = desk.ok("clerk", "GET", "/rx/prescriptions", query="status=valid")
    assert [p["rx_id"] for p in listed["items"]] == [rx_id]
    released = desk.ok("clerk", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"})
    assert released["status"] == "released"
    auth = desk.ok("pharmacist", "POST", "/rx/authorizations", {"ec_token": desk.ec_token()})
    assert [p["rx_id"] for p in auth["prescriptions"]] == [rx_id]
    again = desk.ok("pharmacist", "GET", f"/rx/authorizations/{auth['authorization_id']}")
    assert [p["status"] for p in again["prescriptions"]] == ["authorized"]
    assert desk.ok("pharmacist", "GET", f"/rx/prescriptions/{rx_id}")["status"] == "authorized"
    assert desk.review(rx_id, auth["authorization_id"]).json_body["status"] == "reviewed"
    done = desk.dispense(rx_id, auth["authorization_id"], who="pharmacist")
    assert done.status_code == 200 and done.json_body["status"] == "dispensed", done.body

    audit = wiring.rx_audit()
    actions = {
        (r.actor, r.action)
        for chain in audit.chains("rx")
        for r in audit.records(chain)
        if r.resource == f"rx.prescription:{rx_id}"
    }
    assert {
        ("staff:hospital-a/D1", "rx.precheck"),
        ("staff:hospital-a/D1", "rx.upload"),
        ("staff:hospital-a/C1", "rx.release"),
        ("staff:pharmacy-a/Y1", "rx.authorize"),
        ("staff:pharmacy-a/Y1", "rx.dispense"),
    } <= actions
    view = desk.ok("hospital-a", "GET", f"/rx/prescriptions/{rx_id}")
    assert [h["by"] for h in view["history"]][:4] == [
        "staff:hospital-a/D1",
        "staff:hospital-a/D1",
        "staff:hospital-a/D1",
        "staff:hospital-a/C1",
    ]


def test_in_hospital_settlement_from_the_desk(desk: World) -> None:
    rx_id = desk.valid()
    body = settlement_body(None, "S-DESK-1")
    done = desk.call("clerk", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "in_hospital", **body})
    assert done.status_code == 200 and done.json_body["status"] == "dispensed", done.body


def test_each_desk_step_needs_its_role_and_organisation(desk: World) -> None:
    # a doctor issues only in their own name, and a pharmacist cannot issue at all
    body = precheck_body()
    body["doctor"] = {**body["doctor"], "code": "D2"}
    other = desk.call("doctor", "POST", "/rx/precheck", body)
    assert (other.status_code, code(other)) == (403, "NOT_ISSUING_DOCTOR")
    wrong_role = desk.call("pharmacist", "POST", "/rx/precheck", precheck_body())
    assert (wrong_role.status_code, code(wrong_role)) == (403, "ROLE_REQUIRED")
    patient = desk.call("patient", "POST", "/rx/precheck", precheck_body())
    assert patient.status_code == 403
    # only the issuing doctor uploads from the desk
    pre = desk.precheck()
    desk.sign(pre["rx_id"])
    body = {"trace_code": pre["trace_code"], "hi_rxno": pre["hi_rxno"]}
    by_other = desk.call("other-doctor", "POST", "/rx/prescriptions", body)
    assert (by_other.status_code, code(by_other)) == (403, "NOT_ISSUING_DOCTOR")
    # another hospital's doctor does not see it
    foreign = desk.call("foreign-doctor", "POST", "/rx/prescriptions", body)
    assert foreign.status_code in (403, 404) and code(foreign) in ("NOT_A_HOSPITAL", "RX_NOT_FOUND")
    assert desk.call("doctor", "POST", "/rx/prescriptions", body).status_code == 200
    # a doctor does not confirm; a clerk of a pharmacy is no hospital
    rx_id = pre["rx_id"]
    by_doctor = desk.call("doctor", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"})
    assert (by_doctor.status_code, code(by_doctor)) == (403, "ROLE_REQUIRED")
    by_pharmacy = desk.call("pharmacy-clerk", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"})
    assert (by_pharmacy.status_code, code(by_pharmacy)) == (403, "NOT_A_HOSPITAL")
    desk.ok("clerk", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"})
    # a pharmacist of a hospital is no pharmacy; a doctor does not read e-credentials
    hosp = desk.call("hospital-pharmacist", "POST", "/rx/authorizations", {"ec_token": desk.ec_token()})
    assert (hosp.status_code, code(hosp)) == (403, "NOT_A_PHARMACY")
    doc = desk.call("doctor", "POST", "/rx/authorizations", {"ec_token": desk.ec_token()})
    assert (doc.status_code, code(doc)) == (403, "ROLE_REQUIRED")
    # the other pharmacy's pharmacist cannot read what pharmacy-a holds
    auth = desk.ok("pharmacist", "POST", "/rx/authorizations", {"ec_token": desk.ec_token()})
    assert desk.call("pharmacist-b", "GET", f"/rx/prescriptions/{rx_id}").status_code == 404
    theirs = desk.call("pharmacist-b", "GET", f"/rx/authorizations/{auth['authorization_id']}")
    assert (theirs.status_code, code(theirs)) == (403, "AUTHORIZATION_INVALID")
    # a broken token is refused as a token, not taken for a signature
    bad = desk.client.http.post(
        "/rx/precheck", headers={"Authorization": "Bearer nope", "Content-Type": "application/json"}, body=b"{}"
    )
    assert bad.status_code == 401 and code(bad).startswith("TOKEN_")


def test_the_patient_chooses_outside_purchase(desk: World) -> None:
    rx_id = desk.valid()
    # another patient cannot, and a staff token is not a patient's
    stranger = desk.call("stranger", "POST", f"/rx/me/prescriptions/{rx_id}/release")
    assert (stranger.status_code, code(stranger)) == (404, "RX_NOT_FOUND")
    staff = desk.call("doctor", "POST", f"/rx/me/prescriptions/{rx_id}/release")
    assert staff.status_code == 403
    done = desk.ok("patient", "POST", f"/rx/me/prescriptions/{rx_id}/release")
    assert done["status"] == "released"
    assert desk.ok("patient", "POST", f"/rx/me/prescriptions/{rx_id}/release")["status"] == "released"  # by state
    view = desk.ok("hospital-a", "GET", f"/rx/prescriptions/{rx_id}")
    assert view["history"][-1]["op"] == "release" and view["history"][-1]["by"].startswith("patient:")
    # a prescription kept in the hospital (no circulation flag) cannot be taken outside
    kept = desk.valid(circulation=False, hosp_rxno="HRX-KEPT-1")
    refused = desk.call("patient", "POST", f"/rx/me/prescriptions/{kept}/release")
    assert refused.status_code in (409, 422) and code(refused) == "RX_NOT_FOR_CIRCULATION"
