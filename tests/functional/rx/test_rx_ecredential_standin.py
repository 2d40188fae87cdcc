"""The e-credential stand-in the patient pages show as a QR code (local stage only): a code for a person
the stand-in knows, refused for anyone else, and one a pharmacy's authorization accepts."""

from __future__ import annotations

from typing import Any

from bianjie_dev.rx.demo import PATIENT_ID as DEMO_PATIENT_ID

from tests.functional.conftest import token_issuer
from tests.functional.rx.conftest import World


def test_the_stand_in_shows_a_code_for_the_patient_it_knows_and_a_pharmacy_can_read_it(world: World) -> None:
    from bianjie.kit import deps

    world.tokens["demo"] = token_issuer().issue(
        "p-demo", "patient", id_ref=deps.blind_index().digest(DEMO_PATIENT_ID, "id_number")
    )
    code: dict[str, Any] = world.ok("demo", "POST", "/rx/standin/e-credential")
    assert code["ec_token"].startswith("ec1.") and code["ttl_seconds"] == 300 and code["expires_at"]
    # the pharmacy's scan resolves it (a token it could not open would be 401 EC_TOKEN_INVALID); this
    # person simply has no released prescription here
    scanned = world.call("pharmacy-a", "POST", "/rx/authorizations", {"ec_token": code["ec_token"]})
    assert scanned.status_code == 404 and scanned.json_body["error"]["code"] == "NO_RELEASED_PRESCRIPTION"


def test_the_stand_in_refuses_a_person_it_does_not_know_and_anyone_without_a_patient_token(world: World) -> None:
    unknown = world.call("stranger", "POST", "/rx/standin/e-credential")
    assert unknown.status_code == 404 and unknown.json_body["error"]["code"] == "EC_PERSON_UNKNOWN"
    staff = world.call("doctor", "POST", "/rx/standin/e-credential")
    assert staff.status_code in (401, 403) and staff.json_body["error"]["code"].startswith("TOKEN_")
    anonymous = world.call("anonymous", "POST", "/rx/standin/e-credential")
    assert anonymous.status_code == 401
