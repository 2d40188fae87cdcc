"""SMS through Aliyun dysms (SendSms, API version 2017-05-25): the client and a local stand-in.

Protocol: an RPC-style POST to https://dysmsapi.aliyuncs.com/ with form parameters
``Action=SendSms, Version, PhoneNumbers, SignName, TemplateCode, TemplateParam (JSON), OutId`` plus the
common ones (AccessKeyId, Timestamp, SignatureNonce, SignatureMethod=HMAC-SHA1, SignatureVersion=1.0)
and ``Signature`` = base64(HMAC-SHA1(secret + "&", "POST&%2F&" + pct(canonical query))).
Answer: ``{"Code": "OK", "Message": "OK", "BizId": "...", "RequestId": "..."}`` or an error code such as
``isv.MOBILE_NUMBER_ILLEGAL``, ``isv.BUSINESS_LIMIT_CONTROL`` (flow control), ``isv.SMS_TEMPLATE_ILLEGAL``,
``isv.SMS_SIGNATURE_ILLEGAL``, ``SignatureDoesNotMatch``.

HMAC-SHA1 is the provider's signature scheme, not a choice of ours; it authenticates us to Aliyun only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from bianjie.guide.adapters.outbox import OutboxRecorder
from bianjie.guide.delivery import ChannelUnavailable
from bianjie.guide.model import CST
from bianjie.guide.templates import SMS_SIGN, SMS_VARIABLE_LIMIT, TemplateBook, sms_text
from bianjie.kit.masking import mask_phone

Transport = Callable[[str, str, bytes | None], dict[str, Any]]
ENDPOINT = "https://dysmsapi.aliyuncs.com/"
PROVIDER_DAILY_LIMIT = 50  # notifications per signature + template + number per day


def pct(text: str) -> str:
    return quote(text, safe="~")


def rpc_signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    canonical = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{pct('/')}&{pct(canonical)}"
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def http_transport(method: str, url: str, body: bytes | None, timeout: float = 5.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # Aliyun answers 4xx with a JSON body carrying the code
        try:
            return json.loads(exc.read())
        except ValueError:
            raise ChannelUnavailable(f"SMS_HTTP_{exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise ChannelUnavailable(f"SMS_UNREACHABLE ({type(exc).__name__})") from None


class AliyunSmsClient:
    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        transport: Transport,
        endpoint: str = ENDPOINT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.transport = transport
        self.endpoint = endpoint
        self.clock = clock

    def __repr__(self) -> str:
        return f"AliyunSmsClient(access_key_id={self.access_key_id!r})"

    def send_sms(
        self, phone: str, sign_name: str, template_code: str, params: dict[str, str], out_id: str
    ) -> dict[str, Any]:
        form = {
            "Action": "SendSms",
            "Version": "2017-05-25",
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "AccessKeyId": self.access_key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": secrets.token_hex(16),
            "Timestamp": datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "PhoneNumbers": phone,
            "SignName": sign_name,
            "TemplateCode": template_code,
            "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
            "OutId": out_id[:256],
        }
        form["Signature"] = rpc_signature(form, self._secret)
        answer = self.transport("POST", self.endpoint, urlencode(form).encode())
        if str(answer.get("Code", "")).startswith(("isp.", "Throttling", "ServiceUnavailable", "InternalError")):
            raise ChannelUnavailable(f"SMS_PROVIDER ({answer.get('Code')})")
        return answer


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
