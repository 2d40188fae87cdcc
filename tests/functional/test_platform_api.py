"""GET /health and the partner signature scheme through the platform app (chalice.test.Client + moto)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from bianjie.kit.crypto import sm2_generate_key
from bianjie.kit.signing import sign_request
from chalice.test import Client

from tests.functional.conftest import DemoPartner, app_of, token_issuer


@pytest.fixture
def client(aws_stack: Any) -> Client:
    with Client(app_of("platform")) as c:
        yield c


def signed(
    partner: DemoPartner,
    method: str = "GET",
    path: str = "/partners/me",
    query: str = "",
    body: bytes = b"",
    **overrides: Any,
) -> dict[str, str]:
    key = overrides.pop("key", partner.key)
    return sign_request(
        key,
        method,
        path,
        query,
        body,
        overrides.pop("app_id", partner.app_id),
        overrides.pop("serial", partner.serial),
        **overrides,
    )


def error_code(response: Any) -> str:
    return response.json_body["error"]["code"]


def test_health_tells_the_public_only_that_it_is_up(client: Client) -> None:
    response = client.http.get("/health")
    assert (response.status_code, response.json_body) == (200, {"status": "ok"})


def test_health_detail_is_for_operators(client: Client) -> None:
    assert error_code(client.http.get("/health/detail")) == "TOKEN_MISSING"
    patient = token_issuer().issue("p-1", "patient", roles=["patient"])
    refused = client.http.get("/health/detail", headers={"Authorization": f"Bearer {patient}"})
    assert (refused.status_code, error_code(refused)) == (403, "TOKEN_KIND")
    doctor = token_issuer().issue("d-1", "staff", roles=["doctor"], hospital="test-hospital")
    refused = client.http.get("/health/detail", headers={"Authorization": f"Bearer {doctor}"})
    assert refused.status_code == 403
    operator = token_issuer().issue("ops-1", "staff", roles=["operator"], hospital="platform")
    response = client.http.get("/health/detail", headers={"Authorization": f"Bearer {operator}"})
    assert response.status_code == 200, response.body
    body = response.json_body
    assert body["status"] == "ok" and body["version"] and body["stage"]
    assert {"HealthFunction", "HealthDetailFunction", "PartnersMeFunction"} <= set(body["functions"])


def test_signed_request_identifies_partner(client: Client, partner: DemoPartner) -> None:
    response = client.http.get("/partners/me", headers=signed(partner))
    assert response.status_code == 200, response.body
    assert response.json_body == {"app_id": "test-hospital", "key_serial": "1", "name": "测试医院"}


def test_missing_signature(client: Client, partner: DemoPartner) -> None:
    response = client.http.get("/partners/me")
    assert response.status_code == 401 and error_code(response) == "SIGNATURE_MISSING"
    assert response.json_body["error"]["request_id"]


def test_wrong_key_is_signature_invalid(client: Client, partner: DemoPartner) -> None:
    response = client.http.get("/partners/me", headers=signed(partner, key=sm2_generate_key()))
    assert response.status_code == 401 and error_code(response) == "SIGNATURE_INVALID"


def test_tampered_path_is_signature_invalid(client: Client, partner: DemoPartner) -> None:
    response = client.http.get("/partners/me", headers=signed(partner, path="/partners/other"))
    assert response.status_code == 401 and error_code(response) == "SIGNATURE_INVALID"


def test_replayed_nonce(client: Client, partner: DemoPartner) -> None:
    headers = signed(partner, nonce="n0nce-for-replay-test")
    assert client.http.get("/partners/me", headers=headers).status_code == 200
    again = client.http.get("/partners/me", headers=headers)
    assert again.status_code == 401 and error_code(again) == "NONCE_REPLAYED"


def test_stale_and_future_timestamps(client: Client, partner: DemoPartner) -> None:
    for skew in (-301, 301):
        response = client.http.get("/partners/me", headers=signed(partner, timestamp=int(time.time()) + skew))
        assert response.status_code == 401 and error_code(response) == "TIMESTAMP_OUT_OF_WINDOW"


def test_unknown_app(client: Client, partner: DemoPartner) -> None:
    response = client.http.get("/partners/me", headers=signed(partner, app_id="nobody"))
    assert response.status_code == 401 and error_code(response) == "APP_UNKNOWN"


def test_disabled_app(client: Client, partner: DemoPartner) -> None:
    from bianjie.kit import deps

    deps.partner_registry().disable(partner.app_id)
    deps.partner_registry().invalidate()
    response = client.http.get("/partners/me", headers=signed(partner))
    assert response.status_code == 403 and error_code(response) == "APP_DISABLED"


def test_address_outside_allowlist(client: Client, partner: DemoPartner) -> None:
    from bianjie.kit import deps

    deps.partner_registry().set_cidrs(partner.app_id, ["10.0.0.0/8"])
    deps.partner_registry().invalidate()
    response = client.http.get("/partners/me", headers=signed(partner))  # the test client calls from 127.0.0.1
    assert response.status_code == 403 and error_code(response) == "IP_NOT_ALLOWED"


def test_key_rotation_overlap_then_retire(client: Client, partner: DemoPartner) -> None:
    from bianjie.kit import deps

    registry = deps.partner_registry()
    new_key = sm2_generate_key()
    serial = registry.rotate_key(partner.app_id, new_key.public_key.to_hex())
    registry.invalidate()
    assert client.http.get("/partners/me", headers=signed(partner)).status_code == 200
    response = client.http.get("/partners/me", headers=signed(partner, key=new_key, serial=serial))
    assert response.status_code == 200 and response.json_body["key_serial"] == serial
    registry.retire_key(partner.app_id, partner.serial)
    registry.invalidate()
    response = client.http.get("/partners/me", headers=signed(partner))
    assert response.status_code == 401 and error_code(response) == "KEY_UNKNOWN"
