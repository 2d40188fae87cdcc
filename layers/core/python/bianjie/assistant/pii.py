"""Personal data redaction before the language model and before logs: resident ID numbers (with their
GB 11643 check digit), mobile numbers, medical record numbers, bank cards (Luhn) and names introduced
as such ("我叫张三", "患者李四"). What is not recognised is not claimed redacted: conversations are
stored encrypted whatever this finds."""

from __future__ import annotations

import re

_ID = re.compile(r"(?<![0-9])([1-9][0-9]{16}[0-9Xx])(?![0-9])")
_CARD = re.compile(r"(?<![0-9])([0-9](?:[ -]?[0-9]){11,18})(?![0-9])")
_PHONE = re.compile(r"(?<![0-9])(\+?86[- ]?)?(1[3-9][0-9](?:[- ]?[0-9]){8})(?![0-9])")
_MRN = re.compile(r"(病历号|病案号|住院号|门诊号|就诊卡号|mrn)[\s:：是为]*([a-z0-9-]{4,20})", re.IGNORECASE)
_NAME = re.compile(
    r"(我叫|我的名字是|名字叫|姓名[:：]?|患者|病人|家属)\s*([\u4e00-\u9fff]{2,3})(?=[，。,.\s]|$|的|今年|在|是|要|想)"
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_ok(number: str) -> bool:
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_ok(digits: str) -> bool:
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(text: str) -> str:
    """The text with personal data replaced by ``[身份证号]``, ``[手机号]``, ``[病历号]``, ``[银行卡号]``,
    ``[姓名]``."""
    text = _ID.sub(lambda m: "[身份证号]" if id_check_ok(m.group(1)) else m.group(0), text)
    text = _MRN.sub(lambda m: f"{m.group(1)}[病历号]", text)
    text = _CARD.sub(
        lambda m: "[银行卡号]" if luhn_ok(re.sub(r"[ -]", "", m.group(1))) else m.group(0),
        text,
    )
    text = _PHONE.sub("[手机号]", text)
    text = _NAME.sub(lambda m: f"{m.group(1)}[姓名]", text)
    return text
