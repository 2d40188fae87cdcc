"""Film management API (issue 16, 系统管理): roles per hospital, data access methods enforced by ingest,
STOW-RS and emergency pulls, partner apps' film settings, the change log with before/after."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit import deps
from chalice.test import Client

from tests.functional.conftest import DemoPartner, token_issuer
from tests.functional.film.conftest import FilmStack, signer
from tests.functional.film.test_dicomweb import stow

H = "test-hospital"


@pytest.fixture
def client(film: FilmStack) -> Client:
    with Client(film.app) as c:
        yield c


def token(sub: str, roles: list[str], hospital: str = H) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_issuer().issue(sub, 'staff', roles, hospital=hospital)}"}


def call(client: Client, method: str, path: str, who: dict[str, str], body: Any = None) -> Any:
    headers = dict(who)
    raw = b""
    if body is not None:
        raw = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    return getattr(client.http, method.lower())(path, headers=headers, **({"body": raw} if raw else {}))


def code(response: Any) -> str:
    return json.loads(response.body)["error"]["code"]


CENTRE_ADMIN = None


@pytest.fixture
def staff(client: Client, film: FilmStack) -> dict[str, dict[str, str]]:
    """The centre's admin grants a hospital admin, who grants an operator and an auditor."""
    centre = token("centre-admin", ["film-admin"], hospital="platform")
    admin = token("adm1", ["film-admin"])
    answer = call(client, "PUT", f"/film/admin/hospitals/{H}/staff/adm1", centre, {"roles": ["film-admin"]})
    assert answer.status_code == 200, answer.body
    for sub, role in (("op1", "film-operator"), ("aud1", "film-auditor")):
        granted = call(client, "PUT", f"/film/admin/hospitals/{H}/staff/{sub}", admin, {"roles": [role]})
        assert granted.status_code == 200, granted.body
    return {
        "centre": centre,
        "admin": admin,
        "operator": token("op1", ["film-operator"]),
        "auditor": token("aud1", ["film-auditor"]),
        "ungranted": token("adm2", ["film-admin"]),
        "elsewhere": token("adm1", ["film-admin"], hospital="other-hospital"),
    }


def test_roles_per_hospital(client: Client, staff: dict[str, dict[str, str]]) -> None:
    listed = call(client, "GET", f"/film/admin/hospitals/{H}/staff", staff["auditor"])
    assert listed.status_code == 200
    assert {(i["staff_id"], tuple(i["roles"])) for i in json.loads(listed.body)["items"]} == {
        ("adm1", ("film-admin",)),
        ("op1", ("film-operator",)),
        ("aud1", ("film-auditor",)),
    }
    # an auditor reads and changes nothing; an operator does not administer; a token's role counts only
    # where the registry grants it
    for who in ("auditor", "operator", "ungranted", "elsewhere"):
        refused = call(client, "PUT", f"/film/admin/hospitals/{H}/staff/x1", staff[who], {"roles": ["film-operator"]})
        assert refused.status_code == 403 and code(refused) == "FILM_PERMISSION_DENIED", who
        refused = call(client, "PUT", f"/film/admin/hospitals/{H}/access", staff[who], {"stow": False})
        assert refused.status_code == 403 and code(refused) == "FILM_PERMISSION_DENIED", who
    assert call(client, "GET", f"/film/admin/hospitals/{H}/staff", staff["operator"]).status_code == 403
    doctor = token("dr", ["doctor"])
    assert code(call(client, "GET", f"/film/admin/hospitals/{H}/staff", doctor)) == "ROLE_REQUIRED"
    # an admin cannot demote themselves
    own = call(client, "PUT", f"/film/admin/hospitals/{H}/staff/adm1", staff["admin"], {"roles": ["film-auditor"]})
    assert own.status_code == 409 and code(own) == "SELF_DEMOTION"
    bad = call(client, "PUT", f"/film/admin/hospitals/{H}/staff/x1", staff["admin"], {"roles": ["root"]})
    assert bad.status_code == 400
    # revoking takes effect at once, whatever the token says
    assert call(client, "DELETE", f"/film/admin/hospitals/{H}/staff/op1", staff["admin"]).status_code == 200
    gone = call(client, "GET", f"/film/admin/hospitals/{H}/access", staff["operator"])
    assert gone.status_code == 403
    again = call(client, "DELETE", f"/film/admin/hospitals/{H}/staff/op1", staff["admin"])
    assert again.status_code == 404 and code(again) == "STAFF_NOT_FOUND"


def test_access_methods_are_enforced(
    client: Client, staff: dict[str, dict[str, str]], partner: DemoPartner, film: FilmStack, small_study: Any
) -> None:
    _, paths = small_study
    assert json.loads(call(client, "GET", f"/film/admin/hospitals/{H}/access", staff["operator"]).body) == {
        "hospital": H,
        "s3_drop": True,
        "stow": True,
        "emergency": True,
        "updated_at": None,
        "updated_by": None,
    }
    changed = call(
        client,
        "PUT",
        f"/film/admin/hospitals/{H}/access",
        staff["admin"],
        {"s3_drop": False, "stow": False, "emergency": False},
    )
    assert changed.status_code == 200, changed.body
    refused = stow(client, partner, [("application/dicom", paths[0].read_bytes())])
    assert refused.status_code == 403 and code(refused) == "ACCESS_METHOD_DISABLED"
    raw = json.dumps({"accession": "ACC0001", "hospital": H}).encode()
    pull = client.http.post("/film/emergency", body=raw, headers=signer(partner)("POST", "/film/emergency", raw))
    assert pull.status_code == 403 and code(pull) == "ACCESS_METHOD_DISABLED"
    film.put(f"{H}/drop/one.dcm", paths[0].read_bytes())
    film.drain()
    [dead] = film.dead_letters()
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "ACCESS_METHOD_DISABLED"


def test_change_log_has_before_and_after_and_reads_are_audited(
    client: Client, staff: dict[str, dict[str, str]]
) -> None:
    call(client, "PUT", f"/film/admin/hospitals/{H}/access", staff["admin"], {"stow": False})
    day = dt.datetime.now(dt.UTC).date().isoformat()
    found = call(client, "GET", f"/film/admin/changes?day={day}&hospital={H}", staff["auditor"])
    assert found.status_code == 200, found.body
    items = json.loads(found.body)["items"]
    assert [(i["action"], i["resource"]) for i in items] == [
        ("film.admin.staff.put", f"film.staff:{H}/adm1"),
        ("film.admin.staff.put", f"film.staff:{H}/op1"),
        ("film.admin.staff.put", f"film.staff:{H}/aud1"),
        ("film.admin.access.put", f"film.access:{H}"),
    ]
    assert items[0]["actor"] == "staff:platform/centre-admin" and items[0]["before"] is None
    assert items[3]["before"] == {"s3_drop": True, "stow": True, "emergency": True}
    assert items[3]["after"] == {"s3_drop": True, "stow": False, "emergency": True}
    by_actor = call(client, "GET", f"/film/admin/changes?day={day}&hospital={H}&actor=staff:{H}/adm1", staff["auditor"])
    assert len(json.loads(by_actor.body)["items"]) == 3
    # every hospital's log is the centre's to read
    assert call(client, "GET", f"/film/admin/changes?day={day}", staff["auditor"]).status_code == 403
    assert call(client, "GET", f"/film/admin/changes?day={day}", staff["centre"]).status_code == 200
    log = deps.audit_log("film")
    import time

    reads = [r for r in log.records(log.chain_for(time.time())) if r.action == "film.admin.changes.read"]
    assert [r.actor for r in reads] == [f"staff:{H}/aud1", f"staff:{H}/aud1", "staff:platform/centre-admin"]


def test_partner_film_settings_by_the_centre(
    client: Client, staff: dict[str, dict[str, str]], partner: DemoPartner
) -> None:
    path = f"/film/admin/partners/{partner.app_id}"
    before = json.loads(call(client, "GET", path, staff["centre"]).body)
    assert before["hospitals"] == [partner.app_id] and before["max_ttl"] == 30 * 86400
    body = {"hospitals": [partner.app_id, "other-hospital"], "max_ttl": 86400, "default_ttl": 3600}
    assert call(client, "PUT", path, staff["admin"], body).status_code == 403  # a hospital's admin: no
    changed = call(client, "PUT", path, staff["centre"], body)
    assert changed.status_code == 200, changed.body
    after = json.loads(changed.body)
    assert after["hospitals"] == sorted([partner.app_id, "other-hospital"]) and after["max_ttl"] == 86400
    assert deps.partner_registry().get(partner.app_id).settings["film"]["max_ttl"] == 86400
    assert call(client, "PUT", path, staff["centre"], {"default_ttl": 7200, "max_ttl": 3600}).status_code == 422
    assert call(client, "PUT", path, staff["centre"], {"allowed_cidrs": ["not-a-cidr"]}).status_code == 422
    assert call(client, "PUT", path, staff["centre"], {"max_ttl": "86400"}).status_code == 400  # strict
    assert call(client, "PUT", path, staff["centre"], {}).status_code == 400
    missing = call(client, "GET", "/film/admin/partners/nobody", staff["centre"])
    assert missing.status_code == 404 and code(missing) == "PARTNER_NOT_FOUND"
    day = dt.datetime.now(dt.UTC).date().isoformat()
    [change] = [
        i
        for i in json.loads(call(client, "GET", f"/film/admin/changes?day={day}", staff["centre"]).body)["items"]
        if i["action"] == "film.admin.partner.put"
    ]
    assert change["before"]["max_ttl"] == 30 * 86400 and change["after"]["max_ttl"] == 86400


def test_problems_of_a_study_for_its_hospital(
    client: Client, staff: dict[str, dict[str, str]], film: FilmStack, tmp_path: Path
) -> None:
    from bianjie_dev.film import testdata

    from tests.functional.film.test_messy_files import mismatched

    spec = testdata.StudySpec(hospital=H)
    [one] = list(testdata.ct_series(spec, 1))
    film.put(f"{H}/messy/one.dcm", mismatched(one))
    film.drain()
    path = f"/film/admin/studies/{spec.study_uid}/problems"
    found = call(client, "GET", path, staff["auditor"])
    assert found.status_code == 200, found.body
    [item] = json.loads(found.body)["items"]
    assert item["sop_uid"] == one.SOPInstanceUID and item["problems"][0]["code"] == "TRANSFER_SYNTAX_MISMATCH"
    elsewhere = call(client, "GET", path, staff["elsewhere"])
    assert elsewhere.status_code == 404 and code(elsewhere) == "STUDY_NOT_FOUND"
