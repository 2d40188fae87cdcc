"""Diagnostic reports (诊断报告): the canonical bytes a doctor signs, and the signing ports.

A report version is signed with SM2 (``bianjie.kit.crypto``) by the doctor's own key over
``canonical(report)``: UTF-8 JSON with sorted keys and no whitespace, holding the case, the doctor,
the version, its status, the opinion, the time and the SM3 of the version it amends (so the chain of
versions is part of what is signed). ``verify`` recomputes it from what is stored and checks the
signature with the public key the key registry holds for that doctor, not a key stored beside the
report, so a swapped report or key is caught.

Ports: ``ReportSigner`` (the hospital CA's signing service (协同签名) holding each doctor's key; on the
local stage a stand-in key registry, ``bianjie_dev.consult.keys``) and ``KeyRegistry`` (public keys).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Protocol

from bianjie.kit.crypto import CryptoError, Sm2PublicKey, sm2_verify, sm3

SIGNED_FIELDS = (
    "consultation_id",
    "org",
    "doctor_code",
    "version",
    "status",
    "opinion",
    "recommendations",
    "signed_at",
    "previous_sm3",
)


class ReportSigner(Protocol):
    def sign(self, org: str, doctor_code: str, message: bytes) -> tuple[str, bytes]:
        """(key id, DER signature) with the doctor's key."""
        ...


class KeyRegistry(Protocol):
    def public_key(self, org: str, doctor_code: str, key_id: str) -> Sm2PublicKey | None: ...


def canonical(report: dict[str, Any]) -> bytes:
    body = {f: report.get(f) for f in SIGNED_FIELDS}
    body["version"] = int(report.get("version") or 0)  # the store may answer numbers as Decimal
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest(report: dict[str, Any]) -> str:
    return sm3(canonical(report)).hex()


def verify(report: dict[str, Any], signature_b64: str, key: Sm2PublicKey | None) -> tuple[bool, str]:
    if key is None:
        return False, "KEY_UNKNOWN"
    try:
        der = base64.b64decode(signature_b64, validate=True)
        ok = sm2_verify(key, canonical(report), der)
    except (ValueError, CryptoError):
        ok = False
    return (True, "") if ok else (False, "SIGNATURE_MISMATCH")
