"""A local stand-in for Aliyun dysms as escort uses it (development tooling, never in the core layer):
the kit's client (``bianjie.kit.sms``) talks to it as a transport; it checks the signature, the number,
the sign and escort's templates, and records the text the phone would show in escort's table
(``standin-sms#<Beijing day>``, kept one day), which ``GET /escort/outbox`` lists. The text holds the
join link and the phone code, as the real SMS would: this table stands in for the companion's phone."""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from bianjie.escort.adapters.sms import SMS_SIGN
from bianjie.escort.service import SMS_INVITE, SMS_OTP
from bianjie.escort.store import EscortStore
from bianjie.kit.masking import mask_phone
from bianjie.kit.sms import rpc_signature
from bianjie.kit.timefmt import beijing_day, utc_iso

TEMPLATES = {
    SMS_INVITE: "您的亲友邀请您参加云陪诊，点击链接加入：${link} 邀请码请向患者本人索取。",
    SMS_OTP: "您的陪诊验证码为${code}，5分钟内有效，请勿告诉他人。",
}


def render(template: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: str(variables.get(m.group(1), "")), template)


class EscortSmsStandIn:
    access_key_id = "local-standin"
    secret = "local-standin-secret"

    def __init__(self, store: EscortStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def __call__(self, method: str, url: str, body: bytes | None) -> dict[str, Any]:
        form = dict(parse_qsl((body or b"").decode("utf-8"), keep_blank_values=True))
        request_id = str(uuid.uuid4()).upper()
        signature = form.pop("Signature", "")
        if form.get("AccessKeyId") != self.access_key_id:
            return {"Code": "InvalidAccessKeyId.NotFound", "RequestId": request_id}
        if not hmac.compare_digest(signature, rpc_signature(form, self.secret, method)):
            return {"Code": "SignatureDoesNotMatch", "RequestId": request_id}
        phone = form.get("PhoneNumbers", "")
        template = form.get("TemplateCode", "")
        if not re.fullmatch(r"(?:\+?86)?1[3-9]\d{9}", phone):
            return {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "RequestId": request_id}
        if form.get("SignName") != SMS_SIGN:
            return {"Code": "isv.SMS_SIGNATURE_ILLEGAL", "RequestId": request_id}
        if template not in TEMPLATES:
            return {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "RequestId": request_id}
        variables = json.loads(form.get("TemplateParam") or "{}")
        now = self.clock()
        self.store.put(
            {
                "pk": f"standin-sms#{beijing_day(now)}",
                "sk": f"{utc_iso(now, 'microseconds')}#{request_id[:8]}",
                "at": utc_iso(now),
                "to": mask_phone(phone),
                "template": template,
                "out_id": form.get("OutId", ""),
                "text": f"【{SMS_SIGN}】{render(TEMPLATES[template], variables)}",
                "expires_at": int(now) + 86400,
            }
        )
        return {"Code": "OK", "Message": "OK", "BizId": f"{secrets.randbelow(10**6):06d}", "RequestId": request_id}

    def messages(self, limit: int = 50) -> list[dict[str, Any]]:
        items = self.store.latest(f"standin-sms#{beijing_day(self.clock())}", None, limit)
        return [{k: i[k] for k in ("at", "to", "template", "out_id", "text") if k in i} for i in items]
