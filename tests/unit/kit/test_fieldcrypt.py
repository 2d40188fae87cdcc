"""Field encryption (SM4-GCM under wrapped data keys) and the HMAC-SM3 blind index."""

from __future__ import annotations

import base64

import pytest
from bianjie.kit.errors import AppError
from bianjie.kit.fieldcrypt import BlindIndex, FieldCipher, is_field_token, normalise
from bianjie.kit.keys import DataKey, LocalKeyPort

from tests.fakes import Clock

MASTER = bytes(range(16))
CTX = "film/patient_name/rec-001"


class CountingPort:
    def __init__(self) -> None:
        self.inner = LocalKeyPort(MASTER)
        self.generated = 0

    def generate_data_key(self) -> DataKey:
        self.generated += 1
        return self.inner.generate_data_key()

    def unwrap(self, wrapped: bytes) -> bytes:
        return self.inner.unwrap(wrapped)

    def wrap(self, plaintext: bytes) -> bytes:
        return self.inner.wrap(plaintext)


def fails(cipher: FieldCipher, token: str, context: str = CTX) -> None:
    with pytest.raises(AppError) as err:
        cipher.decrypt(token, context)
    assert (err.value.status, err.value.code) == (500, "FIELD_DECRYPT_FAILED")
    assert token not in err.value.message


@pytest.mark.parametrize("text", ["张三", "", "310101199001011234", "O'Brien, Seán", "糖尿病 2 型 (E11.9)" * 50])
def test_roundtrip(text: str) -> None:
    cipher = FieldCipher(LocalKeyPort(MASTER))
    token = cipher.encrypt(text, CTX)
    assert is_field_token(token)
    assert text == "" or text not in token
    assert cipher.decrypt(token, CTX) == text
    # another process with the same master key reads it
    assert FieldCipher(LocalKeyPort(MASTER)).decrypt(token, CTX) == text


def test_token_format() -> None:
    token = FieldCipher(LocalKeyPort(MASTER)).encrypt("张三", CTX)
    prefix, wrapped, nonce, sealed = token.split(".")
    assert prefix == "sm4gcm1"
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    assert len(base64.urlsafe_b64decode(pad(nonce))) == 12
    assert len(base64.urlsafe_b64decode(pad(sealed))) == len("张三".encode()) + 16
    assert base64.urlsafe_b64decode(pad(wrapped))[:3] == b"BJK"
    assert "=" not in token


def test_same_plaintext_encrypts_differently() -> None:
    cipher = FieldCipher(LocalKeyPort(MASTER))
    assert cipher.encrypt("张三", CTX) != cipher.encrypt("张三", CTX)


def test_wrong_context_fails() -> None:
    cipher = FieldCipher(LocalKeyPort(MASTER))
    token = cipher.encrypt("张三", CTX)
    fails(cipher, token, "film/patient_name/rec-002")  # moved to another record
    fails(cipher, token, "film/phone/rec-001")  # moved to another field
    fails(cipher, token, "")


def test_tamper_fails() -> None:
    cipher = FieldCipher(LocalKeyPort(MASTER))
    token = cipher.encrypt("张三", CTX)
    prefix, wrapped, nonce, sealed = token.split(".")

    def flip(part: str) -> str:
        # not the last character: its low bits may be padding that decoding ignores
        return part[:1] + ("A" if part[1] != "A" else "B") + part[2:]

    fails(cipher, ".".join((prefix, wrapped, nonce, flip(sealed))))
    fails(cipher, ".".join((prefix, wrapped, flip(nonce), sealed)))
    fails(cipher, ".".join((prefix, flip(wrapped), nonce, sealed)))
    fails(cipher, ".".join(("sm4gcm2", wrapped, nonce, sealed)))
    fails(cipher, ".".join((prefix, wrapped, nonce)))
    fails(cipher, ".".join((prefix, wrapped, nonce, sealed[:10])))
    fails(cipher, ".".join((prefix, wrapped, nonce, sealed + "!")))
    fails(cipher, "plain text")
    # another master key
    fails(FieldCipher(LocalKeyPort(bytes(16))), token)


def test_data_key_rotation_by_uses_and_age() -> None:
    port = CountingPort()
    clock = Clock(0.0)
    cipher = FieldCipher(port, rotate_after_uses=3, rotate_after_seconds=60, clock=clock)
    tokens = [cipher.encrypt(f"v{i}", CTX) for i in range(7)]
    assert port.generated == 3  # uses 1-3, 4-6, 7
    assert len({t.split(".")[1] for t in tokens}) == 3
    clock.t = 61
    cipher.encrypt("later", CTX)
    assert port.generated == 4
    assert [cipher.decrypt(t, CTX) for t in tokens] == [f"v{i}" for i in range(7)]


def test_optional_helpers() -> None:
    cipher = FieldCipher(LocalKeyPort(MASTER))
    assert cipher.encrypt_optional(None, CTX) is None
    assert cipher.decrypt_optional(None, CTX) is None
    assert cipher.decrypt_optional(cipher.encrypt_optional("x", CTX), CTX) == "x"
    with pytest.raises(ValueError):
        cipher.encrypt("x", "")


# ------------------------------------------------------------------ blind index

KEY = b"blind-index-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        ("id_number", "31010119900101123x", "310101 19900101 123X"),
        ("id_number", "３１０１０１１９９００１０１１２３Ｘ", "31010119900101123X"),  # full-width
        ("id_number", "310101-19900101-123X", "31010119900101123X"),
        ("phone", "138-0013-8000", "13800138000"),
        ("phone", "+86 138 0013 8000", "13800138000"),
        ("phone", "0086 13800138000", "(138) 0013 8000"),
        ("phone", "１３８００１３８０００", "13800138000"),
        ("name", "  张三 ", "张三"),
        ("name", "Li  Ming", "li ming"),
        ("name", "Ｌｉ　Ｍｉｎｇ", "Li Ming"),  # full-width letters and ideographic space
    ],
)
def test_blind_index_normalises(kind: str, a: str, b: str) -> None:
    idx = BlindIndex(KEY)
    assert idx.digest(a, kind) == idx.digest(b, kind)


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        ("id_number", "31010119900101123X", "310101199001011234"),
        ("phone", "13800138000", "13800138001"),
        ("phone", "02161234567", "2161234567"),  # a landline keeps its leading 0
        ("name", "张三", "张 三"),
        ("name", "张三", "张叁"),
    ],
)
def test_blind_index_distinguishes(kind: str, a: str, b: str) -> None:
    idx = BlindIndex(KEY)
    assert idx.digest(a, kind) != idx.digest(b, kind)


def test_blind_index_kind_is_part_of_the_mac() -> None:
    idx = BlindIndex(KEY)
    digits = "13800138000"
    assert idx.digest(digits, "phone") != idx.digest(digits, "id_number")
    assert idx.digest(digits, "phone") != idx.digest(digits, "mobile")
    assert idx.digest(digits, "other") != idx.digest(digits, "other2")


def test_blind_index_shape_and_key() -> None:
    digest = BlindIndex(KEY).digest("张三", "name")
    assert len(digest) == 64 and digest == digest.lower() and int(digest, 16) >= 0
    assert BlindIndex(KEY).digest("张三", "name") == digest  # deterministic
    assert BlindIndex(b"another-key-0123456789abcdefghij").digest("张三", "name") != digest
    assert KEY.decode() not in repr(BlindIndex(KEY))
    with pytest.raises(ValueError):
        BlindIndex(b"short")
    with pytest.raises(ValueError):
        BlindIndex(KEY).digest("x", "Bad Kind")


def test_normalise_examples() -> None:
    assert normalise(" 31010119900101123x ", "id_number") == "31010119900101123X"
    assert normalise("+86 138-0013-8000", "phone") == "13800138000"
    assert normalise("  Wang   Xiao\tMing ", "name") == "wang xiao ming"
    assert normalise(" ＡＢ１ ", "agreement_no") == "AB1"
    assert normalise(" keep Case ", "other") == "keep Case"
