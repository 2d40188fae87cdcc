"""SMS through Aliyun dysms (SendSms, API version 2017-05-25): the client every service sends SMS with
(guide's notifications, escort's invitations and phone codes). Local stand-ins play the provider as a
transport: ``bianjie_dev.guide.adapters.sms`` and ``bianjie_dev.escort.adapters.sms``.

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
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

Transport = Callable[[str, str, bytes | None], dict[str, Any]]
ENDPOINT = "https://dysmsapi.aliyuncs.com/"
PROVIDER_DAILY_LIMIT = 50  # notifications per signature + template + number per day


class ChannelUnavailable(Exception):
    """The platform could not be reached or answered with a transient error; retry later."""


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
