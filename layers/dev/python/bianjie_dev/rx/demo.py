"""Demo data for ``make run``: the drug catalogue, demo-hospital as an e-prescription hospital with one
doctor's signing key, a demo pharmacy partner, and a doctor, a pharmacist and a patient with tokens.

Written to ``.local/rx/`` (mode 0600): ``demo-doctor.json`` (token and SM2 private key),
``demo-pharmacist.json``, ``demo-patient.json`` (ID number, name, token); the pharmacy's partner key
goes to ``.local/partners/demo-pharmacy.json`` like the other partners, so ``bianjie request --app
demo-pharmacy`` works. ``bianjie rx walkthrough`` walks the whole path with them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bianjie.rx.rules import _ID_CHECK, _ID_WEIGHTS

HOSPITAL = "demo-hospital"
PHARMACY = "demo-pharmacy"
PHARMACY_NAME = "演示大药房 (demo designated pharmacy)"
DOCTOR = {"code": "D310001", "name": "王医生", "dept_code": "NFM01", "dept_name": "内分泌科"}
PHARMACIST = {"code": "Y310001", "name": "李药师"}
PATIENT_NAME = "张三"


def with_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + _ID_CHECK[total % 11]


PATIENT_ID = with_check_digit("31010119800101001")  # fictional: Shanghai Huangpu, born 1980-01-01


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    os.chmod(path, 0o600)


def seed(stack: Any) -> None:
    from bianjie.kit import deps
    from bianjie.kit.crypto import sm2_generate_key
    from bianjie.kit.tokens import MAX_TTL
    from bianjie.rx.catalogue import DEMO_CATALOGUE, drug_item

    store = deps.documents()
    table = deps.table("RX_CATALOGUE_TABLE")
    for drug in DEMO_CATALOGUE:
        store.put(table, drug_item(drug))

    registry = deps.partner_registry()
    local = stack.options.local_dir
    doctor_key = sm2_generate_key()
    for name, value in {
        "role": "hospital",
        "fixmedins_code": "H31010100001",
        "doctor_keys": {DOCTOR["code"]: doctor_key.public_key.to_hex()},
        "require_pharmacist_review": False,
    }.items():
        registry.set_setting(HOSPITAL, "rx", name, value)

    pharmacy_key = sm2_generate_key()
    cidrs = ["127.0.0.0/8", "::1/128"]
    serial = registry.add(
        PHARMACY,
        PHARMACY_NAME,
        pharmacy_key.public_key.to_hex(),
        cidrs,
        settings={"rx": {"role": "pharmacy", "fixmedins_code": "P31010100001"}},
    )
    _write(
        local / "partners" / f"{PHARMACY}.json",
        {
            "app_id": PHARMACY,
            "name": PHARMACY_NAME,
            "key_serial": serial,
            "private_key_pem": pharmacy_key.to_pem(),
            "public_key": pharmacy_key.public_key.to_hex(),
            "gateway_url": stack.gateway_url,
            "allowed_cidrs": cidrs,
        },
    )

    from bianjie_dev.cli.tokens import issue_token, via_stack

    issuer = via_stack(stack)
    _write(
        local / "rx" / "demo-doctor.json",
        {
            **DOCTOR,
            "hospital": HOSPITAL,
            "private_key_pem": doctor_key.to_pem(),
            "token": issue_token(
                issuer,
                DOCTOR["code"],
                "staff",
                ["doctor"],
                ttl_seconds=MAX_TTL,
                hospital=HOSPITAL,
                requested_by="system:demo",
            ),
        },
    )
    _write(
        local / "rx" / "demo-pharmacist.json",
        {
            **PHARMACIST,
            "pharmacy": PHARMACY,
            "token": issue_token(
                issuer,
                PHARMACIST["code"],
                "staff",
                ["pharmacist"],
                ttl_seconds=MAX_TTL,
                hospital=PHARMACY,
                requested_by="system:demo",
            ),
        },
    )
    id_ref = deps.blind_index().digest(PATIENT_ID, "id_number")
    _write(
        local / "rx" / "demo-patient.json",
        {
            "id_number": PATIENT_ID,
            "patient_name": PATIENT_NAME,
            "id_ref": id_ref,
            "token": issue_token(
                issuer, "demo-patient", "patient", ttl_seconds=MAX_TTL, requested_by="system:demo", id_ref=id_ref
            ),
        },
    )
    if hasattr(stack, "demo_urls"):
        stack.demo_urls.append(f"{local / 'rx'}  (rx demo doctor, pharmacist, patient; try `bianjie rx walkthrough`)")
