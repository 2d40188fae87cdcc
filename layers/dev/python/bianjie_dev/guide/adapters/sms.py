"""A local stand-in for Aliyun dysms (development tooling, never in the core layer): the client in
``bianjie.guide.adapters.sms`` talks to it as a transport, and every request is recorded in the outbox."""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from bianjie.guide.model import CST
from bianjie.guide.templates import SMS_SIGN, SMS_VARIABLE_LIMIT, TemplateBook, sms_text
from bianjie.kit.masking import mask_phone
from bianjie.kit.sms import PROVIDER_DAILY_LIMIT, rpc_signature

from bianjie_dev.guide.adapters.outbox import OutboxRecorder


class AliyunSmsStandIn:
    """Plays dysmsapi.aliyuncs.com locally: checks the signature, number, sign, template and variable
    lengths and the provider's daily flow control, and records each request with the text it would send."""

    def __init__(
        self,
        recorder: OutboxRecorder,
        templates: TemplateBook,
        access_key_id: str = "local-standin",
        access_key_secret: str = "local-standin-secret",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.recorder = recorder
        self.templates = templates
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.clock = clock
        self._sent: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self._lock = threading.Lock()

    def __call__(self, method: str, url: str, body: bytes | None) -> dict[str, Any]:
        form = dict(parse_qsl((body or b"").decode("utf-8"), keep_blank_values=True))
        request_id = str(uuid.uuid4()).upper()
        signature = form.pop("Signature", "")
        if form.get("AccessKeyId") != self.access_key_id:
            return {
                "Code": "InvalidAccessKeyId.NotFound",
                "Message": "Specified access key is not found.",
                "RequestId": request_id,
            }
        if not hmac.compare_digest(signature, rpc_signature(form, self._secret, method)):
            return {
                "Code": "SignatureDoesNotMatch",
                "RequestId": request_id,
                "Message": "Specified signature is not matched with our calculation.",
            }
        answer = self._check(form)
        answer["RequestId"] = request_id
        out_id = form.get("OutId", "")
        parts = out_id.split("#")
        kind, visit = (parts[0], parts[1]) if len(parts) == 3 else (None, None)
        variables = json.loads(form.get("TemplateParam") or "{}")
        template = next((t for t in self.templates.sms.values() if t.code == form.get("TemplateCode")), None)
        self.recorder.record(
            "sms",
            visit_id=visit,
            kind=kind,
            dedup_key=out_id or None,
            to=mask_phone(form.get("PhoneNumbers", "")),
            template=form.get("TemplateCode", ""),
            content={
                "text": f"【{form.get('SignName')}】{sms_text(template.content, variables)}" if template else None,
                "variables": variables,
            },
            result=answer,
            accepted=answer["Code"] == "OK",
        )
        return answer

    def _check(self, form: dict[str, str]) -> dict[str, Any]:
        phone = form.get("PhoneNumbers", "")
        code = form.get("TemplateCode", "")
        if not re.fullmatch(r"(?:\+?86)?1[3-9]\d{9}", phone):
            return {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}
        if form.get("SignName") != SMS_SIGN:
            return {"Code": "isv.SMS_SIGNATURE_ILLEGAL", "Message": "签名不合法"}
        if code not in {t.code for t in self.templates.sms.values()}:
            return {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"}
        try:
            variables = json.loads(form.get("TemplateParam") or "{}")
        except ValueError:
            return {"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法"}
        if any(len(str(v)) > SMS_VARIABLE_LIMIT for v in variables.values()):
            return {"Code": "isv.PARAM_LENGTH_LIMIT", "Message": "参数超出长度限制"}
        day = datetime.fromtimestamp(self.clock(), CST).date().isoformat()
        key = (form["SignName"], code, phone, day)
        with self._lock:
            if self._sent[key] >= PROVIDER_DAILY_LIMIT:
                return {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发天级流控Permits:50"}
            self._sent[key] += 1
        return {"Code": "OK", "Message": "OK", "BizId": f"{secrets.randbelow(10**6):06d}^{secrets.randbelow(10**10)}"}
