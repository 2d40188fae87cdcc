"""escort's SMS sender: the kit's Aliyun dysms client (``bianjie.kit.sms``) with escort's sign and
templates. A provider refusal or outage is an unsent message (False), never an exception: the patient
still has the link and the QR code, and a phone code's answer must not differ by outcome."""

from __future__ import annotations

from typing import Any

from bianjie.kit.logging import get_logger
from bianjie.kit.sms import ChannelUnavailable

log = get_logger("bianjie.escort.sms")
SMS_SIGN = "便捷就医"


class AliyunSender:
    def __init__(self, client: Any, sign_name: str = SMS_SIGN) -> None:
        self.client = client
        self.sign_name = sign_name

    def send(self, phone: str, template: str, params: dict[str, str], out_id: str) -> bool:
        try:
            answer = self.client.send_sms(phone, self.sign_name, template, params, out_id)
        except ChannelUnavailable as exc:
            log.warning("escort sms not sent", extra={"template": template, "reason": str(exc)})
            return False
        ok = answer.get("Code") == "OK"
        if not ok:
            log.warning("escort sms refused", extra={"template": template, "reason": str(answer.get("Code"))})
        return ok
