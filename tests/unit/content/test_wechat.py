"""The official account's message push checked against wechatpy as an independent client: signatures,
safe-mode AES both ways, deduplication of retries, refusals of bad signatures, entities and big bodies."""

from __future__ import annotations

import time

import pytest
from bianjie.content.store import ContentStore
from bianjie.content.wechat import Callback, CallbackRefused, MessageCrypto, WechatConfig, aes_key_of, signature
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.tables import table_spec
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature as wechatpy_check

APP_ID = "wx1234567890abcdef"
TOKEN = "test-token"
AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CONFIG = WechatConfig(APP_ID, TOKEN, aes_key_of(AES))
TEXT = (
    "<xml><ToUserName><![CDATA[gh_centre]]></ToUserName><FromUserName><![CDATA[oFollower1]]></FromUserName>"
    "<CreateTime>{t}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[中风]]></Content>"
    "<MsgId>{m}</MsgId></xml>"
)


@pytest.fixture
def callback() -> Callback:
    store = ContentStore(MemoryDocumentStore(table_spec("CONTENT_TABLE", "content")), "content")
    return Callback(CONFIG, store, lambda m: f"收到：{m.get('Content', '')}")


def signed(nonce: str = "n1") -> dict[str, str]:
    ts = str(int(time.time()))
    return {"timestamp": ts, "nonce": nonce, "signature": signature(TOKEN, ts, nonce)}


def test_signature_is_wechats(callback: Callback) -> None:
    params = signed()
    wechatpy_check(TOKEN, params["signature"], params["timestamp"], params["nonce"])  # raises if it differs
    assert callback.verify({**params, "echostr": "hello"}) == "hello"
    with pytest.raises(CallbackRefused) as bad:
        callback.verify({**params, "signature": "0" * 40, "echostr": "x"})
    assert bad.value.status == 403 and bad.value.code == "WECHAT_SIGNATURE"
    with pytest.raises(CallbackRefused):  # not ASCII: refused, not a TypeError
        callback.verify({**params, "signature": "签名", "echostr": "x"})


def test_plain_message_is_answered_once(callback: Callback) -> None:
    body = TEXT.format(t=int(time.time()), m=1001).encode()
    reply = callback.handle(signed(), body)
    assert "<Content><![CDATA[收到：中风]]></Content>" in reply and "<ToUserName><![CDATA[oFollower1]]>" in reply
    assert callback.handle(signed("n2"), body) == "success"  # WeChat's retry of MsgId 1001


def test_safe_mode_against_wechatpy(callback: Callback) -> None:
    wx = WeChatCrypto(TOKEN, AES, APP_ID)
    ts, nonce = str(int(time.time())), "n3"
    encrypted = wx.encrypt_message(TEXT.format(t=ts, m=1002), nonce, ts)
    import xmltodict

    msg_signature = xmltodict.parse(encrypted)["xml"]["MsgSignature"]
    params = {**signed(nonce), "timestamp": ts, "signature": signature(TOKEN, ts, nonce)}
    params.update(encrypt_type="aes", msg_signature=msg_signature)
    reply = callback.handle(params, encrypted.encode())
    parsed = xmltodict.parse(reply)["xml"]
    plain = wx.decrypt_message(reply, parsed["MsgSignature"], parsed["TimeStamp"], parsed["Nonce"])
    assert "收到：中风" in plain
    # and our encryption decrypts with theirs and back
    ours = MessageCrypto(CONFIG)
    assert ours.decrypt(ours.encrypt("往返".encode())) == "往返".encode()
    with pytest.raises(CallbackRefused):
        callback.handle({**params, "msg_signature": "0" * 40}, encrypted.encode())


def test_entities_and_big_bodies_are_refused(callback: Callback) -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Content>&a;</Content></xml>'
    with pytest.raises(CallbackRefused) as entity:
        callback.handle(signed(), bomb)
    assert entity.value.code == "WECHAT_XML_REFUSED"
    with pytest.raises(CallbackRefused) as big:
        callback.handle(signed(), b"<xml>" + b"a" * 70000 + b"</xml>")
    assert big.value.status == 413
    with pytest.raises(CallbackRefused) as broken:
        callback.handle(signed(), b"<xml><a></xml>")
    assert broken.value.code == "WECHAT_XML_INVALID"
    with pytest.raises(CallbackRefused) as unsigned:
        callback.handle({}, TEXT.encode())
    assert unsigned.value.code == "WECHAT_SIGNATURE"
