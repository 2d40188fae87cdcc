"""SM2 signing keys in moto's KMS, as AWS KMS offers them in the China regions.

moto 5.2 accepts ``KeySpec=SM2`` and names ``SM2DSA`` as its signing algorithm, but backs the key with
an RSA key, so ``Sign`` fails and ``GetPublicKey`` answers an RSA key. The token issuer signs with an
SM2 KMS key (docs/security.md), so the local stack and the functional tier teach moto the real thing:
an SM2 key whose ``Sign`` with ``MessageType=RAW`` is SM2-with-SM3 under the default distinguishing id
``1234567812345678`` (what AWS KMS does for RAW messages) and whose public key is an SM2
SubjectPublicKeyInfo. ``MessageType=DIGEST`` is not emulated (moto ignores the message type); we never
send it.
"""

from __future__ import annotations

from typing import Any

_applied = False


def teach_kms_sm2() -> None:
    """Patch moto's KMS key factory (idempotent; call before any key is created)."""
    global _applied
    if _applied:
        return
    from bianjie.kit.crypto import sm2_generate_key, sm2_sign, sm2_verify
    from bianjie.kit.crypto.asn1 import encode_public_key
    from moto.kms import models, utils

    class Sm2KmsKey(utils.AbstractPrivateKey):
        def __init__(self) -> None:
            self.private_key = sm2_generate_key()

        def _check(self, signing_algorithm: str) -> None:
            utils.validate_signing_algorithm(signing_algorithm, [utils.SigningAlgorithm.SM2DSA.value])

        def sign(self, message: bytes, signing_algorithm: str) -> bytes:
            self._check(signing_algorithm)
            return sm2_sign(self.private_key, message)

        def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
            self._check(signing_algorithm)
            return sm2_verify(self.private_key.public_key, message, signature)

        def public_key(self) -> bytes:
            pub = self.private_key.public_key
            return encode_public_key(pub.x, pub.y)

    original = models.generate_private_key

    def generate_private_key(key_spec: str) -> Any:
        return Sm2KmsKey() if key_spec == utils.KeySpec.SM2 else original(key_spec)

    models.generate_private_key = generate_private_key  # type: ignore[assignment]
    _applied = True
