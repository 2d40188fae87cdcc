"""The backend registry: lazy, cached, selectable, and invisible to cold start until used."""

from __future__ import annotations

import json
import subprocess
import sys

import bianjie.kit.crypto as crypto
import pytest
from bianjie.kit.crypto import provider


def test_backends_are_cached() -> None:
    assert crypto.backend("openssl") is crypto.backend("openssl")
    assert crypto.backend("gmssl") is crypto.backend("gmssl")
    assert crypto.backend("openssl").name == "openssl"
    assert crypto.backend("gmssl").name == "gmssl"


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown crypto backend"):
        crypto.backend("nope")


def test_default_is_openssl_and_env_can_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(provider.BACKEND_ENV, raising=False)
    assert crypto.default_backend() is crypto.backend("openssl")
    monkeypatch.setenv(provider.BACKEND_ENV, "gmssl")
    assert crypto.default_backend() is crypto.backend("gmssl")
    assert crypto.sm3(b"abc") == crypto.backend("openssl").sm3(b"abc")


def test_module_helpers_use_the_default_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(provider.BACKEND_ENV, raising=False)
    key = crypto.sm2_generate_key()
    signature = crypto.sm2_sign(key, b"m", b"id")
    assert crypto.sm2_verify(key.public_key, b"m", signature, b"id")
    assert crypto.sm2_decrypt(key, crypto.sm2_encrypt(key.public_key, b"m")) == b"m"
    k, iv, nonce = bytes(16), bytes(16), bytes(12)
    assert crypto.sm4_ecb_decrypt(k, crypto.sm4_ecb_encrypt(k, b"m")) == b"m"
    assert crypto.sm4_cbc_decrypt(k, iv, crypto.sm4_cbc_encrypt(k, iv, b"m")) == b"m"
    assert crypto.sm4_gcm_decrypt(k, nonce, crypto.sm4_gcm_encrypt(k, nonce, b"m", b"a"), b"a") == b"m"
    assert crypto.hmac_sm3(b"k", b"m") == crypto.backend("gmssl").hmac_sm3(b"k", b"m")


def test_import_does_not_load_native_or_gmssl_modules() -> None:
    code = (
        "import json, sys\n"
        "import bianjie.kit.crypto as c\n"
        "key = c.Sm2PrivateKey.from_hex('01')\n"
        "key.public_key.to_pem()\n"
        "heavy = ('gmssl', 'tongsuopy', 'cryptography')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []
