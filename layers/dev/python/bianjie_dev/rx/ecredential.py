"""A local stand-in for the 医保电子凭证 platform (development tooling, never in the core layer).

It issues tokens shaped like the real ones: opaque, short-lived (the real app refreshes the code every
minute; we allow 5), single purpose. Format: ``ec1.`` + base64url(12-byte nonce || SM4-GCM(key, nonce,
JSON)), the JSON holding ``cert_type, cert_no, name, iat, exp``. GCM makes a forged or edited token
fail to open. The port it plays is ``bianjie.rx.ecredential.Ecredentials``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

from bianjie.kit.crypto import CryptoError, hmac_sm3, sm4_gcm_decrypt, sm4_gcm_encrypt
from bianjie.kit.encoding import b64url, b64url_decode
from bianjie.kit.errors import Unauthorized
from bianjie.rx.ecredential import Person

PREFIX = "ec1."
DEFAULT_TTL = 300


class StandInEcredentials:
    """Local stand-in for the 医保电子凭证 platform. The key is derived from a deployment secret so every
    process of one deployment agrees."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac_sm3(secret, b"bianjie rx e-credential stand-in v1")[:16]
        self._clock = clock

    def issue(self, person: Person, ttl: int = DEFAULT_TTL) -> str:
        now = int(self._clock())
        payload = json.dumps(
            {
                "cert_type": person.cert_type,
                "cert_no": person.cert_no,
                "name": person.name,
                "iat": now,
                "exp": now + ttl,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        nonce = secrets.token_bytes(12)
        return PREFIX + b64url(nonce + sm4_gcm_encrypt(self._key, nonce, payload, b"ec1"))

    def verify(self, token: str) -> Person:
        invalid = Unauthorized(
            "the e-credential token is not valid; scan the patient's code again", code="EC_TOKEN_INVALID"
        )
        if not token.startswith(PREFIX):
            raise invalid
        try:
            raw = b64url_decode(token[len(PREFIX) :])
            data = json.loads(sm4_gcm_decrypt(self._key, raw[:12], raw[12:], b"ec1"))
        except (ValueError, CryptoError):
            raise invalid from None
        if self._clock() >= data["exp"]:
            raise Unauthorized(
                "the e-credential token has expired; ask the patient to refresh the code", code="EC_TOKEN_EXPIRED"
            )
        return Person(cert_type=data["cert_type"], cert_no=data["cert_no"], name=data["name"])


# rx's demo patient (bianjie_dev.rx.demo.PATIENT_ID / PATIENT_NAME; tests/unit/pages keeps them equal),
# written out here: importing the demo module would make the production type-check follow its seeding
# into the CLI and the local stack
_DEMO_ID_FIRST17, _DEMO_NAME = "31010119800101001", "张三"


def demo_people() -> list[Person]:
    """The people the stand-in app knows (it would know them from its own sign-in): rx's demo patient."""
    from bianjie.rx.rules import _ID_CHECK, _ID_WEIGHTS

    total = sum(int(d) * w for d, w in zip(_DEMO_ID_FIRST17, _ID_WEIGHTS, strict=True))
    return [Person(cert_type="01", cert_no=_DEMO_ID_FIRST17 + _ID_CHECK[total % 11], name=_DEMO_NAME)]


def issue_for(
    ecredentials: StandInEcredentials,
    patient_ref: str | None,
    blind_digest: Callable[[str, str], str],
    ttl: int = DEFAULT_TTL,
) -> dict[str, object]:
    """The code the stand-in app shows the patient whose token carries ``patient_ref`` (their ID number's
    blind index), as ``bianjie.rx.models.EcredentialCode`` fields."""
    from datetime import UTC, datetime

    from bianjie.kit.errors import NotFound

    person = next(
        (p for p in demo_people() if patient_ref and blind_digest(p.cert_no, "id_number") == patient_ref), None
    )
    if person is None:
        raise NotFound("the e-credential stand-in does not know this patient", code="EC_PERSON_UNKNOWN")
    token = ecredentials.issue(person, ttl=ttl)
    expires = datetime.fromtimestamp(int(time.time()) + ttl, UTC)
    return {"ec_token": token, "expires_at": expires, "ttl_seconds": ttl}
