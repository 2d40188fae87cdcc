"""Message templates per kind: WeChat subscribe messages (订阅消息) and SMS, with the platforms' field rules.

WeChat checks each ``data`` value against its field type and answers errcode 47003 when one breaks the
rules, so we check first (``check_field``) and fit free text to its limit (``fit``):

    thing ≤20 chars · phrase ≤5 Chinese chars · name ≤10 Chinese chars (or ≤20 letters)
    character_string ≤32 ASCII · number ≤32 digits · amount currency + ≤10 digits (+2 decimals)
    time "15:01" / "2019年10月1日 15:01" · date "2019年10月1日" (optionally with a time)
    phone_number ≤17 digits and +-  · letter ≤32 letters

SMS (Aliyun dysms) templates take variables; a notification variable holds at most 35 characters.
Template ids and codes are per deployment (``GUIDE_WECHAT_TEMPLATES`` / ``GUIDE_SMS_TEMPLATES``, JSON
objects kind -> id); the defaults here name the local stand-ins' templates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bianjie.guide.kinds import Kind
from bianjie.guide.model import CST

# -- field rules ------------------------------------------------------------------------------------

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_TIME_RE = re.compile(r"^(?:\d{4}年\d{1,2}月\d{1,2}日 |\d{4}-\d{2}-\d{2} )?(?:[01]?\d|2[0-3]):[0-5]\d$")
_DATE_RE = re.compile(r"^(?:\d{4}年\d{1,2}月\d{1,2}日|\d{4}-\d{2}-\d{2})(?: (?:[01]?\d|2[0-3]):[0-5]\d)?$")
FIELD_RULES: dict[str, Callable[[str], bool]] = {
    "thing": lambda v: 0 < len(v) <= 20 and "\n" not in v,
    "phrase": lambda v: re.fullmatch(rf"[{_CJK}]{{1,5}}", v) is not None,
    "name": lambda v: (
        re.fullmatch(rf"[{_CJK}·]{{1,10}}", v) is not None or re.fullmatch(r"[A-Za-z .]{1,20}", v) is not None
    ),
    "character_string": lambda v: re.fullmatch(r"[\x21-\x7e]{1,32}", v) is not None,
    "number": lambda v: re.fullmatch(r"\d+(?:\.\d+)?", v) is not None and len(v) <= 32,
    "letter": lambda v: re.fullmatch(r"[A-Za-z]{1,32}", v) is not None,
    "amount": lambda v: re.fullmatch(r"[¥￥]?\d{1,10}(?:\.\d{1,2})?元?", v) is not None,
    "time": lambda v: _TIME_RE.fullmatch(v) is not None,
    "date": lambda v: _DATE_RE.fullmatch(v) is not None,
    "phone_number": lambda v: re.fullmatch(r"[0-9+\- ]{1,17}", v) is not None,
}
LIMITS = {"thing": 20, "name": 10, "character_string": 32}
SMS_VARIABLE_LIMIT = 35


class FieldInvalid(ValueError):
    """A value breaks its field type's rule; WeChat would answer 47003."""

    def __init__(self, key: str, field_type: str, value: str) -> None:
        super().__init__(f"data.{key}.value invalid for type {field_type} (length {len(value)})")
        self.key = key
        self.field_type = field_type


def field_type_of(key: str) -> str:
    """WeChat keys are the type plus a number: thing1, time2, character_string3."""
    return key.rstrip("0123456789")


def check_field(key: str, value: str) -> None:
    field_type = field_type_of(key)
    rule = FIELD_RULES.get(field_type)
    if rule is None:
        raise FieldInvalid(key, field_type, value)
    if not rule(value):
        raise FieldInvalid(key, field_type, value)


def fit(field_type: str, value: str) -> str:
    """Free text cut to its limit with an ellipsis (a cut department name still reads well)."""
    limit = LIMITS.get(field_type)
    value = " ".join(value.split())
    if limit and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


# -- formatting ---------------------------------------------------------------------------------------


def cn_time(iso: str | None) -> str:
    if not iso:
        return "--:--"
    at = datetime.fromisoformat(iso).astimezone(CST)
    return f"{at.year}年{at.month}月{at.day}日 {at.hour:02d}:{at.minute:02d}"


def cn_date(iso: str | None) -> str:
    at = datetime.fromisoformat(iso).astimezone(CST) if iso else datetime.now(CST)
    return f"{at.year}年{at.month}月{at.day}日"


def amount(fen: int | None) -> str:
    fen = fen or 0
    return f"¥{fen // 100}.{fen % 100:02d}"


# -- templates ------------------------------------------------------------------------------------------

Params = Mapping[str, Any]


@dataclass(frozen=True)
class WxField:
    key: str
    label: str
    value: Callable[[Params], str]


@dataclass(frozen=True)
class WxTemplate:
    kind: Kind
    template_id: str
    title: str
    page: str  # the mini-program / H5 page the message opens
    fields: tuple[WxField, ...]


def _p(name: str, default: str = "") -> Callable[[Params], str]:
    return lambda p: str(p.get(name) or default)


_DEPT = WxField("thing2", "就诊科室", _p("department", "门诊"))
_PLACE = WxField("thing4", "就诊地点", _p("place_name", "门诊大厅"))

WECHAT: dict[Kind, WxTemplate] = {
    Kind.REGISTRATION_SUCCESS: WxTemplate(
        Kind.REGISTRATION_SUCCESS,
        "local-wx-registration-success",
        "挂号成功通知",
        "/m/visit",
        (
            WxField("name1", "就诊人", _p("patient", "就诊人")),
            _DEPT,
            WxField("time3", "就诊时间", lambda p: cn_time(p.get("appointment_at"))),
            _PLACE,
            WxField("thing5", "温馨提示", lambda p: "请提前15分钟到院签到"),
        ),
    ),
    Kind.PENDING_PAYMENT: WxTemplate(
        Kind.PENDING_PAYMENT,
        "local-wx-pending-payment",
        "待缴费提醒",
        "/m/pay",
        (
            WxField("thing1", "就诊科室", _p("department", "门诊")),
            WxField("amount2", "待缴金额", lambda p: amount(p.get("amount_fen"))),
            WxField("character_string3", "订单编号", _p("order_id", "-")),
            WxField("thing4", "温馨提示", lambda p: "请尽快完成缴费，以免耽误检查取药"),
        ),
    ),
    Kind.MEDICINE_PICKUP: WxTemplate(
        Kind.MEDICINE_PICKUP,
        "local-wx-medicine-pickup",
        "取药通知",
        "/m/prescriptions",
        (
            WxField("thing1", "取药地点", _p("place_name", "门诊药房")),
            WxField("character_string2", "处方编号", _p("rx_id", "-")),
            WxField("time3", "通知时间", lambda p: cn_time(p.get("at"))),
            WxField("thing4", "温馨提示", _p("hint", "药品已备好，请当日取药")),
        ),
    ),
    Kind.REPORT_PUBLISHED: WxTemplate(
        Kind.REPORT_PUBLISHED,
        "local-wx-report-published",
        "报告发布通知",
        "/m/reports",
        (
            WxField("thing1", "报告名称", _p("report_name", "检查报告")),
            WxField("time2", "出具时间", lambda p: cn_time(p.get("at"))),
            WxField("thing3", "温馨提示", lambda p: "报告已出具，点击查看"),
        ),
    ),
    Kind.VISIT_REMINDER: WxTemplate(
        Kind.VISIT_REMINDER,
        "local-wx-visit-reminder",
        "就诊提醒",
        "/m/visit",
        (
            WxField("name1", "就诊人", _p("patient", "就诊人")),
            _DEPT,
            WxField("time3", "就诊时间", lambda p: cn_time(p.get("appointment_at"))),
            _PLACE,
            WxField("phrase5", "提醒类型", _p("when", "就诊提醒")),
        ),
    ),
    Kind.PRECONSULT_REMINDER: WxTemplate(
        Kind.PRECONSULT_REMINDER,
        "local-wx-preconsult-reminder",
        "预问诊提醒",
        "/m/preconsult",
        (
            WxField("thing1", "就诊科室", _p("department", "门诊")),
            WxField("time2", "就诊时间", lambda p: cn_time(p.get("appointment_at"))),
            WxField("thing3", "温馨提示", lambda p: "请在就诊前完成预问诊"),
        ),
    ),
    Kind.SURVEY: WxTemplate(
        Kind.SURVEY,
        "local-wx-survey",
        "满意度调查",
        "/m/survey",
        (
            WxField("thing1", "就诊科室", _p("department", "门诊")),
            WxField("date2", "就诊日期", lambda p: cn_date(p.get("appointment_at"))),
            WxField("thing3", "邀请内容", lambda p: "邀请您评价本次就诊体验"),
        ),
    ),
}


@dataclass(frozen=True)
class SmsTemplate:
    kind: Kind
    code: str
    content: str  # with ${variable} placeholders, as registered with the SMS provider
    variables: Callable[[Params], dict[str, str]]


SMS_SIGN = "便捷就医"
SMS: dict[Kind, SmsTemplate] = {
    Kind.REGISTRATION_SUCCESS: SmsTemplate(
        Kind.REGISTRATION_SUCCESS,
        "SMS_LOCAL_0001",
        "您已成功预约${dept}，就诊时间${time}，地点${place}，请提前15分钟签到。",
        lambda p: {
            "dept": str(p.get("department") or "门诊"),
            "time": cn_time(p.get("appointment_at")),
            "place": str(p.get("place_name") or "门诊大厅"),
        },
    ),
    Kind.PENDING_PAYMENT: SmsTemplate(
        Kind.PENDING_PAYMENT,
        "SMS_LOCAL_0002",
        "您有一笔${amount}的费用待缴（订单${order}），可在线缴费或到收费窗口缴费。",
        lambda p: {"amount": amount(p.get("amount_fen")), "order": str(p.get("order_id") or "-")},
    ),
    Kind.MEDICINE_PICKUP: SmsTemplate(
        Kind.MEDICINE_PICKUP,
        "SMS_LOCAL_0003",
        "您的药品已备好，请到${place}取药（处方${rx}）。",
        lambda p: {"place": str(p.get("place_name") or "门诊药房"), "rx": str(p.get("rx_id") or "-")},
    ),
    Kind.REPORT_PUBLISHED: SmsTemplate(
        Kind.REPORT_PUBLISHED,
        "SMS_LOCAL_0004",
        "您的${report}已出具，可在线查看。",
        lambda p: {"report": str(p.get("report_name") or "检查报告")},
    ),
    Kind.VISIT_REMINDER: SmsTemplate(
        Kind.VISIT_REMINDER,
        "SMS_LOCAL_0005",
        "${when}：您预约了${time}${dept}就诊，地点${place}，请准时到院签到。",
        lambda p: {
            "when": str(p.get("when") or "就诊提醒"),
            "time": cn_time(p.get("appointment_at")),
            "dept": str(p.get("department") or "门诊"),
            "place": str(p.get("place_name") or "门诊大厅"),
        },
    ),
}


def _override(env_json: str | None) -> dict[str, str]:
    if not env_json:
        return {}
    raw = json.loads(env_json)
    return {str(Kind(k)): str(v) for k, v in raw.items()}


class TemplateBook:
    """The deployment's template ids and codes (defaults: the stand-ins')."""

    def __init__(self, wechat_ids: str | None = None, sms_codes: str | None = None) -> None:
        wx = _override(wechat_ids)
        sms = _override(sms_codes)
        self.wechat = {k: replace(t, template_id=wx.get(k.value, t.template_id)) for k, t in WECHAT.items()}
        self.sms = {k: replace(t, code=sms.get(k.value, t.code)) for k, t in SMS.items()}

    def wechat_data(self, kind: Kind, params: Params) -> dict[str, dict[str, str]]:
        """The ``data`` of a subscribe-message send, every value fitted and checked."""
        data = {}
        for f in self.wechat[kind].fields:
            value = fit(field_type_of(f.key), f.value(params))
            check_field(f.key, value)
            data[f.key] = {"value": value}
        return data

    def sms_variables(self, kind: Kind, params: Params) -> dict[str, str]:
        variables = {k: v[:SMS_VARIABLE_LIMIT] for k, v in self.sms[kind].variables(params).items()}
        return variables

    def kind_of_wechat_template(self, template_id: str) -> Kind | None:
        for kind, t in self.wechat.items():
            if t.template_id == template_id:
                return kind
        return None


def sms_text(content: str, variables: Mapping[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), content)
