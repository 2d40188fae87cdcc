"""A small HTTP client of the rx API, as a hospital HIS, a pharmacy system, a doctor's and a pharmacist's
workstation would call it. Used by ``bianjie rx walkthrough``, the integration test and the benchmark;
also a worked example for integrators (every call is an ordinary signed or bearer-token request).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bianjie.kit.crypto import Sm2PrivateKey, sig_to_raw, sm2_sign
from bianjie.kit.signing import sign_request


@dataclass
class Answer:
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        return (self.body.get("error") or {}).get("code") if isinstance(self.body, dict) else None


@dataclass
class Partner:
    app_id: str
    key: Sm2PrivateKey
    serial: str

    @classmethod
    def from_file(cls, path: Path) -> Partner:
        data = json.loads(path.read_text())
        return cls(data["app_id"], Sm2PrivateKey.from_pem(data["private_key_pem"]), str(data["key_serial"]))


class RxHttp:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        partner: Partner | None = None,
        token: str | None = None,
        query: str = "",
    ) -> Answer:
        raw = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if partner is not None:
            headers.update(sign_request(partner.key, method, path, query, raw, partner.app_id, partner.serial))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = self.base + path + (f"?{query}" if query else "")
        request = urllib.request.Request(url, data=raw or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Answer(response.status, json.loads(response.read() or b"null"))
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            return Answer(exc.code, json.loads(payload) if payload else None)

    def sign(self, rx_id: str, doctor_token: str, doctor_key: Sm2PrivateKey) -> Answer:
        """What a doctor's workstation does: fetch the document, sign its text with the doctor's key, send it."""
        material = self.send("GET", f"/rx/prescriptions/{rx_id}/document", token=doctor_token)
        if material.status != 200:
            return material
        signature = sig_to_raw(sm2_sign(doctor_key, material.body["signing_input"].encode("utf-8")))
        return self.send(
            "POST",
            f"/rx/prescriptions/{rx_id}/signature",
            token=doctor_token,
            body={"pdf_sm3": material.body["pdf_sm3"], "signature": base64.b64encode(signature).decode("ascii")},
        )


@dataclass
class Demo:
    """The demo actors ``bianjie_dev.rx.demo.seed`` wrote under a local stack's state directory."""

    hospital: Partner
    pharmacy: Partner
    doctor: dict[str, Any]
    pharmacist: dict[str, Any]
    patient: dict[str, Any]

    @classmethod
    def load(cls, state_dir: Path) -> Demo:
        rx = state_dir / "rx"
        return cls(
            hospital=Partner.from_file(state_dir / "partners" / "demo-hospital.json"),
            pharmacy=Partner.from_file(state_dir / "partners" / "demo-pharmacy.json"),
            doctor=json.loads((rx / "demo-doctor.json").read_text()),
            pharmacist=json.loads((rx / "demo-pharmacist.json").read_text()),
            patient=json.loads((rx / "demo-patient.json").read_text()),
        )

    @property
    def doctor_key(self) -> Sm2PrivateKey:
        return Sm2PrivateKey.from_pem(self.doctor["private_key_pem"])


def demo_prescription(demo: Demo, hosp_rxno: str, prescribed_at: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hosp_rxno": hosp_rxno,
        "rx_type": "1",
        "prescribed_at": prescribed_at,
        "valid_days": 3,
        "circulation": True,
        "doctor": {k: demo.doctor[k] for k in ("code", "name", "dept_code", "dept_name")},
        "insured": {"cert_type": "01", "cert_no": demo.patient["id_number"], "name": demo.patient["patient_name"]},
        "visit": {"visit_id": f"MD-{hosp_rxno}", "visit_time": prescribed_at, "biz_type": "01"},
        "diagnoses": [
            {"code": "E11.900", "name": "2型糖尿病", "main": True},
            {"code": "I10.X00", "name": "原发性高血压", "main": False},
        ],
        "drugs": [
            {"med_code": "XA10BAE024A001010100001", "quantity": 2, "dose": 1, "frequency": "bid", "days": 7},
            {"med_code": "XC08CAA091A001010100002", "quantity": 1, "dose": 1, "frequency": "qd", "days": 7},
        ],
    }
    body.update(overrides)
    return body


def settlement(setl_id: str, settled_at: str) -> dict[str, Any]:
    return {
        "settlement": {
            "setl_id": setl_id,
            "total_cents": 2960,
            "fund_pay_cents": 2072,
            "account_pay_cents": 0,
            "cash_pay_cents": 888,
            "settled_at": settled_at,
        },
        "items": [
            {"med_code": "XA10BAE024A001010100001", "quantity": 2, "amount_cents": 1700, "batch_no": "B2601"},
            {"med_code": "XC08CAA091A001010100002", "quantity": 1, "amount_cents": 1260, "batch_no": "A1102"},
        ],
    }
