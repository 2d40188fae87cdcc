"""The official account's message push (消息推送), as WeChat documents it: the server URL verification
(GET: SHA1 of the sorted token, timestamp and nonce; echo ``echostr``), XML messages (``text/xml``), safe
mode (``encrypt_type=aes``: ``msg_signature`` over token, timestamp, nonce and the ciphertext; AES-256-CBC
with the key from EncodingAESKey, IV its first 16 bytes, PKCS#7 padded to 32, random(16) + length(4) +
message + appid), deduplication of WeChat's retries by MsgId (events by FromUserName + CreateTime), and a
passive reply within the 5 s WeChat waits. A body with a DOCTYPE or an entity, or over 64 KiB, is refused
before it is parsed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bianjie.kit.errors import AppError

MAX_BODY = 64 * 1024
MAX_SKEW_S = 300


class CallbackRefused(AppError):
    pass


@dataclass(frozen=True)
class WechatConfig:
    app_id: str
    token: str
    aes_key: bytes | None  # 32 bytes from the 43-character EncodingAESKey; None: plain mode only


def aes_key_of(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise ValueError("EncodingAESKey must be 43 characters (32 bytes)")
    return key


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _same(expected: str, given: str) -> bool:
    # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a refusal)
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def check_signature(config: WechatConfig, sig: str | None, timestamp: str | None, nonce: str | None) -> None:
    if not sig or not timestamp or not nonce:
        raise CallbackRefused("signature, timestamp and nonce are required", code="WECHAT_SIGNATURE", status=403)
    if not _same(signature(config.token, timestamp, nonce), sig):
        raise CallbackRefused("the signature does not match the configured token", code="WECHAT_SIGNATURE", status=403)


def parse_xml(body: bytes) -> dict[str, str]:
    """The message's top-level elements; refuses what could expand (DTDs, entities) or is too big."""
    if len(body) > MAX_BODY:
        raise CallbackRefused("the message is larger than 64 KiB", code="WECHAT_BODY_TOO_LARGE", status=413)
    lowered = body.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise CallbackRefused("XML with a DOCTYPE or entities is refused", code="WECHAT_XML_REFUSED", status=400)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise CallbackRefused(f"the message is not XML ({exc})", code="WECHAT_XML_INVALID", status=400) from None
    if root.tag != "xml":
        raise CallbackRefused("the message's root element is not <xml>", code="WECHAT_XML_INVALID", status=400)
    return {child.tag: (child.text or "") for child in root}


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(fields: dict[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        text = str(value) if isinstance(value, int) else _cdata(str(value))
        parts.append(f"<{key}>{text}</{key}>")
    return "<xml>" + "".join(parts) + "</xml>"


class MessageCrypto:
    """Safe mode's AES-256-CBC (an independent implementation; tests check it against wechatpy's)."""

    def __init__(self, config: WechatConfig, random: Callable[[int], bytes] = os.urandom) -> None:
        if config.aes_key is None:
            raise ValueError("safe mode needs an EncodingAESKey")
        self.config = config
        self.key = config.aes_key
        self.random = random

    def _cipher(self) -> Any:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def decrypt(self, encrypted: str) -> bytes:
        try:
            raw = base64.b64decode(encrypted, validate=True)
            decryptor = self._cipher().decryptor()
            plain = decryptor.update(raw) + decryptor.finalize()
            pad = plain[-1]
            if not 1 <= pad <= 32:
                raise ValueError("bad padding")
            plain = plain[:-pad]
            (length,) = struct.unpack(">I", plain[16:20])
            message, app_id = plain[20 : 20 + length], plain[20 + length :]
        except (ValueError, struct.error) as exc:
            raise CallbackRefused(
                "the encrypted message cannot be decrypted", code="WECHAT_DECRYPT", status=400
            ) from exc
        if app_id.decode("utf-8", "replace") != self.config.app_id:
            raise CallbackRefused("the message is for another app id", code="WECHAT_APPID", status=403)
        return message

    def encrypt(self, message: bytes) -> str:
        plain = self.random(16) + struct.pack(">I", len(message)) + message + self.config.app_id.encode()
        pad = 32 - len(plain) % 32
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def reply(self, xml: str, timestamp: str, nonce: str) -> str:
        encrypted = self.encrypt(xml.encode())
        return to_xml(
            {
                "Encrypt": encrypted,
                "MsgSignature": signature(self.config.token, timestamp, nonce, encrypted),
                "TimeStamp": timestamp,
                "Nonce": nonce,
            }
        )


class Dedup(Protocol):
    def claim_message(self, key: str, now: float, keep_s: int = 86400) -> bool: ...


class Answerer(Protocol):
    def __call__(self, message: dict[str, str]) -> str | None:
        """The text to reply to a follower's message (None: nothing but ``success``)."""
        ...


class Callback:
    def __init__(
        self, config: WechatConfig, dedup: Dedup, answer: Answerer, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.dedup = dedup
        self.answer = answer
        self.clock = clock

    def verify(self, params: dict[str, str]) -> str:
        """GET: the server URL check; answers ``echostr``."""
        check_signature(self.config, params.get("signature"), params.get("timestamp"), params.get("nonce"))
        return params.get("echostr", "")

    def handle(self, params: dict[str, str], body: bytes) -> str:
        """POST: one pushed message; the passive reply (XML) or ``success``."""
        timestamp, nonce = params.get("timestamp") or "", params.get("nonce") or ""
        check_signature(self.config, params.get("signature"), timestamp, nonce)
        outer = parse_xml(body)
        crypto: MessageCrypto | None = None
        if params.get("encrypt_type") == "aes":
            crypto = MessageCrypto(self.config)
            encrypted = outer.get("Encrypt", "")
            if not _same(signature(self.config.token, timestamp, nonce, encrypted), params.get("msg_signature") or ""):
                raise CallbackRefused("msg_signature does not match", code="WECHAT_SIGNATURE", status=403)
            message = parse_xml(crypto.decrypt(encrypted))
        else:
            message = outer
        key = message.get("MsgId") or f"{message.get('FromUserName', '')}#{message.get('CreateTime', '')}"
        if not self.dedup.claim_message(key, self.clock()):
            return "success"  # WeChat's retry of a message already answered
        text = self.answer(message)
        if text is None:
            return "success"
        reply = to_xml(
            {
                "ToUserName": message.get("FromUserName", ""),
                "FromUserName": message.get("ToUserName", ""),
                "CreateTime": int(self.clock()),
                "MsgType": "text",
                "Content": text,
            }
        )
        return crypto.reply(reply, timestamp, nonce) if crypto else reply
