"""An e-prescription world in moto: catalogue, a hospital with a doctor's signing key, a pharmacy, and
tokens for the doctor, a second doctor, the pharmacist and the patient."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from bianjie.kit.crypto import Sm2PrivateKey, sig_to_raw, sm2_generate_key, sm2_sign
from bianjie.kit.signing import sign_request
from chalice.test import Client

from tests.functional.conftest import app_of, token_issuer
from tests.unit.rx.data import PATIENT_ID, PATIENT_NAME, precheck_body

__all__ = ["PATIENT_ID", "PATIENT_NAME", "World", "precheck_body"]


@dataclass
class World:
    client: Client
    keys: dict[str, Sm2PrivateKey]
    tokens: dict[str, str]
    doctor_key: Sm2PrivateKey
    events: list[dict[str, Any]] = field(default_factory=list)

    def call(self, who: str, method: str, path: str, body: Any = None, query: str = "") -> Any:
        raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        if who in self.keys:
            headers = sign_request(self.keys[who], method, path, query, raw, who, "1")
        else:
            headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who != "anonymous" else {}
        headers["Content-Type"] = "application/json"
        url = path + (f"?{query}" if query else "")
        return getattr(self.client.http, method.lower())(url, headers=headers, body=raw or None)

    def ok(self, who: str, method: str, path: str, body: Any = None, query: str = "") -> dict[str, Any]:
        response = self.call(who, method, path, body, query)
        assert response.status_code == 200, response.body
        return response.json_body

    # -- the path, step by step

    def precheck(self, **overrides: Any) -> dict[str, Any]:
        return self.ok("hospital-a", "POST", "/rx/precheck", precheck_body(**overrides))

    def sign(self, rx_id: str, key: Sm2PrivateKey | None = None, who: str = "doctor") -> Any:
        material = self.ok(who, "GET", f"/rx/prescriptions/{rx_id}/document")
        signature = sig_to_raw(sm2_sign(key or self.doctor_key, material["signing_input"].encode()))
        return self.call(
            who,
            "POST",
            f"/rx/prescriptions/{rx_id}/signature",
            {"pdf_sm3": material["pdf_sm3"], "signature": base64.b64encode(signature).decode()},
        )

    def upload(self, pre: dict[str, Any]) -> Any:
        return self.call(
            "hospital-a", "POST", "/rx/prescriptions", {"trace_code": pre["trace_code"], "hi_rxno": pre["hi_rxno"]}
        )

    def valid(self, **overrides: Any) -> str:
        pre = self.precheck(**overrides)
        assert self.sign(pre["rx_id"]).status_code == 200
        response = self.upload(pre)
        assert response.status_code == 200, response.body
        return str(pre["rx_id"])

    def released(self, **overrides: Any) -> str:
        rx_id = self.valid(**overrides)
        self.ok("hospital-a", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"})
        return rx_id

    def ec_token(self, id_number: str = PATIENT_ID, name: str = PATIENT_NAME) -> str:
        from bianjie.rx import wiring
        from bianjie.rx.ecredential import Person

        return wiring.rx_ecredentials().issue(Person("01", id_number, name))

    def authorize(self, who: str = "pharmacy-a") -> dict[str, Any]:
        return self.ok(who, "POST", "/rx/authorizations", {"ec_token": self.ec_token()})

    def review(self, rx_id: str, auth_id: str, result: str = "pass", reason: str = "", who: str = "pharmacist") -> Any:
        return self.call(
            who,
            "POST",
            f"/rx/prescriptions/{rx_id}/review",
            {"authorization_id": auth_id, "result": result, "reason": reason},
        )

    def dispense(
        self, rx_id: str, auth_id: str, setl_id: str = "S0001", who: str = "pharmacy-a", quantity: int = 2
    ) -> Any:
        return self.call(
            who, "POST", f"/rx/prescriptions/{rx_id}/dispense", settlement_body(auth_id, setl_id, quantity)
        )


def settlement_body(auth_id: str | None, setl_id: str, quantity: int = 2) -> dict[str, Any]:
    body: dict[str, Any] = {
        "settlement": {
            "setl_id": setl_id,
            "total_cents": 1700,
            "fund_pay_cents": 1190,
            "account_pay_cents": 0,
            "cash_pay_cents": 510,
            "settled_at": "2026-01-01T10:00:00+08:00",
        },
        "items": [
            {"med_code": "XA10BAE024A001010100001", "quantity": quantity, "amount_cents": 1700, "batch_no": "B2401"}
        ],
    }
    if auth_id is not None:
        body["authorization_id"] = auth_id
    return body


@pytest.fixture
def world(aws_stack: Any) -> Iterator[World]:
    import os

    from bianjie.kit import deps
    from bianjie.rx.catalogue import DEMO_CATALOGUE, drug_item

    store = deps.documents()
    for drug in DEMO_CATALOGUE:
        store.put(os.environ["RX_CATALOGUE_TABLE"], drug_item(drug))
    registry = deps.partner_registry()
    keys = {name: sm2_generate_key() for name in ("hospital-a", "hospital-b", "pharmacy-a", "pharmacy-b", "clinic")}
    doctor_key, other_doctor_key = sm2_generate_key(), sm2_generate_key()
    roles = {"hospital-a": "hospital", "hospital-b": "hospital", "pharmacy-a": "pharmacy", "pharmacy-b": "pharmacy"}
    for app_id, key in keys.items():
        settings = {"rx": {"role": roles[app_id]}} if app_id in roles else {}
        if app_id == "hospital-a":
            settings["rx"]["doctor_keys"] = {
                "D1": doctor_key.public_key.to_hex(),
                "D2": other_doctor_key.public_key.to_hex(),
            }
        registry.add(app_id, app_id, key.public_key.to_hex(), ["127.0.0.0/8"], settings=settings)
    issuer = token_issuer()
    tokens = {
        "doctor": issuer.issue("D1", "staff", ["doctor"], hospital="hospital-a"),
        "other-doctor": issuer.issue("D2", "staff", ["doctor"], hospital="hospital-a"),
        "foreign-doctor": issuer.issue("D1", "staff", ["doctor"], hospital="hospital-b"),
        "pharmacist": issuer.issue("Y1", "staff", ["pharmacist"], hospital="pharmacy-a"),
        "pharmacist-b": issuer.issue("Y2", "staff", ["pharmacist"], hospital="pharmacy-b"),
        "patient": issuer.issue("p1", "patient", id_ref=deps.blind_index().digest(PATIENT_ID, "id_number")),
        "stranger": issuer.issue("p2", "patient", id_ref=deps.blind_index().digest("x", "id_number")),
    }
    with Client(app_of("rx")) as client:
        w = World(client, keys, tokens, doctor_key)
        w.other_doctor_key = other_doctor_key  # type: ignore[attr-defined]
        yield w
