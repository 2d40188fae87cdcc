"""The NHSA envelope (round trip, key derivation, sign string, tampering) and the adapter's contract,
run against the stand-in center that speaks the same envelope."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from bianjie.kit.crypto import sm2_generate_key, sm4_ecb_decrypt
from bianjie.rx.center import envelope, mapping
from bianjie.rx.center.client import OPERATIONS, NhsaCenterClient
from bianjie.rx.center.envelope import Credentials, EnvelopeError, derive_key, open_envelope, seal, sign_string
from bianjie.rx.center.port import CenterError
from bianjie.rx.models import DispensedItem, PrecheckRequest, Settlement
from bianjie_dev.rx.center.standin import InProcessTransport, StandInCenter, credential_pair

from tests.unit.rx.data import precheck_body


@pytest.fixture
def pair() -> tuple[Credentials, Credentials]:
    return credential_pair(b"unit-test-secret")


def test_key_derivation_matches_the_published_recipe() -> None:
    app_id, secret = "T98HPCGN5ZVVQBS8LZQNOAEXVI9GYHKQ", "NMVFVILMKT13GEMD3BKPKCTBOQBPZR2P"
    key = derive_key(app_id, secret)
    assert (len(key) == 16 and key.decode().isupper()) or key.decode().isdigit()
    assert all(c in "0123456789ABCDEF" for c in key.decode())
    # K is the first 16 hex characters of SM4-ECB_{appId[:16]}(appSecret), as ASCII bytes
    from bianjie.kit.crypto import sm4_ecb_encrypt

    assert key == sm4_ecb_encrypt(app_id[:16].encode(), secret.encode()).hex().upper()[:16].encode()


def test_sign_string_normalises_like_the_js_client() -> None:
    fields = {
        "appId": "A" * 16,
        "encType": "SM4",
        "signType": "SM2",
        "timestamp": 1700000000000,
        "version": "1.0.0",
        "encData": "XX",
        "signData": "YY",
        "extra": {"x": 1},
    }
    data = {"b": 2, "a": "", "c": [], "d": None, "e": True, "f": [{"z": 1, "y": "中"}], "g": "值"}
    text = sign_string(fields, data, "S3CRET").decode()
    assert text == (
        'appId=AAAAAAAAAAAAAAAA&data={"b":"2","e":"true","f":[{"y":"中","z":1}],"g":"值"}'
        "&encType=SM4&signType=SM2&timestamp=1700000000000&version=1.0.0&key=S3CRET"
    )


def test_round_trip_and_ciphertext_shape(pair: tuple[Credentials, Credentials]) -> None:
    ours, theirs = pair
    data = {"hiRxno": "31202601010000000001", "psnName": "张三", "n": 3}
    env = seal(ours, data)
    assert set(env) == {"appId", "encType", "signType", "timestamp", "version", "encData", "signData"}
    assert env["encData"] == env["encData"].upper() and len(base64.b64decode(env["signData"])) == 64
    plain = sm4_ecb_decrypt(derive_key(ours.app_id, ours.app_secret), bytes.fromhex(env["encData"]))
    assert b"\\u5f20\\u4e09" in plain  # non-ASCII travels \u-escaped
    assert open_envelope(theirs, env) == data


@pytest.mark.parametrize(
    "field,value,code",
    [
        ("signData", base64.b64encode(b"\x01" * 64).decode(), "ENVELOPE_SIGNATURE"),
        ("timestamp", 1, "ENVELOPE_STALE"),
        ("appId", "SOMEONEELSE00000000", "ENVELOPE_APP"),
        ("encType", "AES", "ENVELOPE_TYPE"),
        ("encData", "ZZ", "ENVELOPE_MALFORMED"),
    ],
)
def test_tampering_is_detected(pair: tuple[Credentials, Credentials], field: str, value: object, code: str) -> None:
    ours, theirs = pair
    env = {**seal(ours, {"hiRxno": "1"}), field: value}
    with pytest.raises(EnvelopeError) as err:
        open_envelope(theirs, env, max_skew_ms=300_000)
    assert err.value.code == code


def test_edited_ciphertext_or_foreign_key_fails(pair: tuple[Credentials, Credentials]) -> None:
    ours, theirs = pair
    env = seal(ours, {"hiRxno": "1", "fund_pay_sumamt": "10.00"})
    other = seal(ours, {"hiRxno": "1", "fund_pay_sumamt": "99.00"})
    with pytest.raises(EnvelopeError):
        open_envelope(theirs, {**env, "encData": other["encData"]})  # amount swapped, old signature
    impostor = Credentials(ours.app_id, ours.app_secret, sm2_generate_key(), ours.peer_public_key)
    with pytest.raises(EnvelopeError) as err:
        open_envelope(theirs, seal(impostor, {"hiRxno": "1"}))
    assert err.value.code == "ENVELOPE_SIGNATURE"
    wrong_secret = Credentials(ours.app_id, "X" * 32, ours.private_key, ours.peer_public_key)
    with pytest.raises(EnvelopeError):
        open_envelope(theirs, seal(wrong_secret, {"hiRxno": "1"}))


# -- the adapter's contract, against the stand-in


@pytest.fixture
def center(pair: tuple[Credentials, Credentials]) -> NhsaCenterClient:
    ours, theirs = pair
    return NhsaCenterClient(ours, InProcessTransport(StandInCenter(theirs)))


def reserved_and_uploaded(center: NhsaCenterClient) -> str:
    req = PrecheckRequest.model_validate(precheck_body())
    reserved = center.upload_check(mapping.upload_check(req, req.prescribed_at + timedelta(days=3), "H1"))
    assert len(reserved.trace_code) == 32 and reserved.hi_rxno.startswith("31")
    status = center.upload(
        mapping.upload(reserved.trace_code, reserved.hi_rxno, "MD1", "D1", None, None, b"%PDF", "ab" * 32)
    )
    assert status == "1"
    return reserved.hi_rxno


def test_contract_upload_use_revoke(center: NhsaCenterClient) -> None:
    hi_rxno = reserved_and_uploaded(center)
    now = datetime.now(UTC)
    center.review_result(mapping.review_result(hi_rxno, True, "", now))
    center.pay_status(mapping.pay_status(hi_rxno, now))
    s = Settlement(setl_id="S1", total_cents=100, fund_pay_cents=70, cash_pay_cents=30, settled_at=now)
    with pytest.raises(CenterError) as err:
        center.settlement(mapping.settlement(hi_rxno, s, []))  # a settlement without its items
    assert "seltdelts" in err.value.message
    items = [DispensedItem(med_code="XA10BAE024A001010100001", quantity=1, amount_cents=100)]
    center.settlement(mapping.settlement(hi_rxno, s, items))
    assert center.query(hi_rxno)["reptdCnt"] == 1
    with pytest.raises(CenterError) as err:
        center.revoke(mapping.revoke(hi_rxno, "D1", "重开", now))
    assert err.value.status == 422 and err.value.code == "CENTER_REJECTED"


def test_contract_refusals(center: NhsaCenterClient) -> None:
    hi_rxno = reserved_and_uploaded(center)
    with pytest.raises(CenterError) as err:
        center.upload(mapping.upload("0" * 32, hi_rxno, "MD1", "D1", None, None, b"%PDF", "ab" * 32))
    assert "rxTraceCode" in err.value.message
    with pytest.raises(CenterError):
        center.call("upload_check", {"hospRxno": "x"})  # required fields missing
    with pytest.raises(CenterError) as err:
        center.query("31000000000000000000")
    assert err.value.details["interface"] == OPERATIONS["query"].code
    assert center.revoke(mapping.revoke(hi_rxno, "D1", "重开", datetime.now(UTC))) == "3"


def test_a_forged_center_answer_is_refused(pair: tuple[Credentials, Credentials]) -> None:
    ours, theirs = pair
    forger = Credentials(theirs.app_id, theirs.app_secret, sm2_generate_key(), theirs.peer_public_key)

    class Forged:
        def post(self, path: str, body: bytes) -> bytes:
            return json.dumps(seal(forger, {"rxTraceCode": "X", "hiRxno": "Y"}, extra={"code": 0})).encode()

    with pytest.raises(CenterError) as err:
        NhsaCenterClient(ours, Forged()).upload_check({})
    assert err.value.code == "CENTER_PROTOCOL"


def test_envelope_module_documents_the_user_id() -> None:
    assert "user id = appSecret" in (envelope.__doc__ or "")
