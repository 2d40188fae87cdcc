"""STAND-INS for consult's outside systems, local stage only (``bianjie.kit.standins``):

- ``consult.video``: LiveKit's access tokens are minted with a key derived from the deployment, for a
  server that does not exist locally (``url`` = ``standin://livekit``); ``webhook`` builds what a LiveKit
  server would post, signed the same way, so tests and the demo can finish a room.
- ``consult.signing``: the hospital CA's signing service (协同签名). Each doctor's SM2 key is derived
  from the deployment's key and the doctor's ``<org>/<code>``: every function of one deployment holds
  the same registry without storing a private key anywhere.
- ``consult.scanner``: a malware check that knows one virus, the EICAR test file.
"""

from __future__ import annotations

import json
from typing import Any

from bianjie.consult.rooms import LiveKitTokens
from bianjie.kit import deps
from bianjie.kit.crypto import Sm2PrivateKey, Sm2PublicKey, hmac_sm3, sm2_sign
from bianjie.kit.crypto.sm2_curve import N

STANDIN_URL = "standin://livekit"
KEY_ID = "standin-v1"
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def room_tokens() -> LiveKitTokens:
    return LiveKitTokens(url=STANDIN_URL, api_key="standin", api_secret=deps.derived_key(b"bianjie/consult/livekit/v1"))


def webhook(event: str, room: str, identity: str = "") -> tuple[bytes, str]:
    """A LiveKit webhook body and its Authorization header, as the server would send them."""
    body: dict[str, Any] = {"event": event, "room": {"name": room}, "id": f"EV_{event}_{room[-8:]}"}
    if identity:
        body["participant"] = {"identity": identity}
    raw = json.dumps(body).encode()
    return raw, room_tokens().sign_webhook(raw)


class StandInKeyRegistry:
    """Signs for a doctor and answers the doctor's public key (both halves of the CA stand-in)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _private(self, org: str, doctor_code: str) -> Sm2PrivateKey:
        seed = hmac_sm3(self._secret, f"consult-doctor-key\0{org}/{doctor_code}".encode())
        d = int.from_bytes(seed, "big") % (N - 2) + 1
        return Sm2PrivateKey.from_hex(f"{d:064x}")

    def sign(self, org: str, doctor_code: str, message: bytes) -> tuple[str, bytes]:
        return KEY_ID, sm2_sign(self._private(org, doctor_code), message)

    def public_key(self, org: str, doctor_code: str, key_id: str) -> Sm2PublicKey | None:
        if key_id != KEY_ID:
            return None
        return self._private(org, doctor_code).public_key


def key_registry() -> StandInKeyRegistry:
    return StandInKeyRegistry(deps.derived_key(b"bianjie/consult/doctor-keys/v1"))


class StandInScanner:
    def infected(self, data: bytes) -> bool:
        return EICAR in data
