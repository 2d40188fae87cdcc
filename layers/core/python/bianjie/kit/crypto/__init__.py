"""Commercial cryptography (商用密码): SM2, SM3, SM4 behind one provider interface.

Use the module-level helpers (``sm3``, ``sm2_sign`` ...); they go to the default backend
(``cryptography`` for SM3/SM4 and ``tongsuopy`` for SM2). ``backend("gmssl")`` gives the pure-Python
second implementation that cross-checks the first in tests.
"""

from bianjie.kit.crypto.provider import (
    DEFAULT_SM2_USER_ID,
    CryptoBackend,
    CryptoError,
    Sm2PrivateKey,
    Sm2PublicKey,
    backend,
    default_backend,
    hmac_sm3,
    sig_from_raw,
    sig_to_raw,
    sm2_decrypt,
    sm2_encrypt,
    sm2_generate_key,
    sm2_sign,
    sm2_verify,
    sm3,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

__all__ = [
    "DEFAULT_SM2_USER_ID",
    "CryptoBackend",
    "CryptoError",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "backend",
    "default_backend",
    "hmac_sm3",
    "sig_from_raw",
    "sig_to_raw",
    "sm2_decrypt",
    "sm2_encrypt",
    "sm2_generate_key",
    "sm2_sign",
    "sm2_verify",
    "sm3",
    "sm4_cbc_decrypt",
    "sm4_cbc_encrypt",
    "sm4_ecb_decrypt",
    "sm4_ecb_encrypt",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]
