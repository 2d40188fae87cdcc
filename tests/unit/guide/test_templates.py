"""WeChat field rules (what 47003 would reject) and how our templates fit text to them."""

from __future__ import annotations

import pytest
from bianjie.guide.kinds import Kind
from bianjie.guide.templates import SMS_VARIABLE_LIMIT, FieldInvalid, TemplateBook, check_field, fit


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("thing1", "门诊楼3楼心内科候诊区"),
        ("thing1", "一" * 20),
        ("phrase5", "明日就诊"),
        ("name1", "张三"),
        ("name1", "John Smith"),
        ("character_string3", "O-2025-0001"),
        ("amount2", "¥128.50"),
        ("time3", "2025年6月4日 09:30"),
        ("time3", "09:30"),
        ("date2", "2025年6月4日"),
        ("number1", "12"),
    ],
)
def test_valid_values(key: str, value: str) -> None:
    check_field(key, value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("thing1", "一" * 21),
        ("thing1", ""),
        ("phrase5", "即将就诊吧啊"),  # six characters
        ("phrase5", "明日9点"),  # digits are not a phrase
        ("name1", "欧阳" * 6),
        ("character_string3", "订单123"),  # not ASCII
        ("character_string3", "x" * 33),
        ("amount2", "128.50 RMB"),
        ("time3", "2025/06/04 9:30"),
        ("time3", "25:00"),
        ("date2", "June 4"),
        ("unknowntype1", "x"),
    ],
)
def test_invalid_values_raise(key: str, value: str) -> None:
    with pytest.raises(FieldInvalid):
        check_field(key, value)


def test_fit_cuts_long_text_with_an_ellipsis() -> None:
    assert fit("thing", "超" * 30) == "超" * 19 + "…"
    assert fit("thing", "  两个  空格 ") == "两个 空格"
    # phrases are fixed texts: no fitting, the check catches them
    assert fit("phrase", "太长的短语啊") == "太长的短语啊"


def test_every_template_renders_valid_data_even_with_long_inputs() -> None:
    book = TemplateBook()
    params = {
        "department": "心血管内科（高血压专病门诊）特需",
        "place_name": "门诊楼三楼东侧心血管内科诊区候诊大厅",
        "appointment_at": "2025-06-04T09:30:00+08:00",
        "amount_fen": 12850,
        "order_id": "O-1",
        "rx_id": "RX-1",
        "report_name": "心脏彩色多普勒超声检查报告（含左心功能测定）",
        "at": "2025-06-04T10:40:00+08:00",
        "when": "明日就诊",
        "patient": "张三",
    }
    for kind in Kind:
        data = book.wechat_data(kind, params)
        for key, value in data.items():
            check_field(key, value["value"])
        if kind in book.sms:
            assert all(len(v) <= SMS_VARIABLE_LIMIT for v in book.sms_variables(kind, params).values())


def test_a_patient_name_too_long_for_the_name_field_is_refused() -> None:
    with pytest.raises(FieldInvalid):
        TemplateBook().wechat_data(Kind.REGISTRATION_SUCCESS, {"patient": "Maximilian Alexander Fitzgerald"})


def test_deployment_template_ids_override_the_stand_in_ids() -> None:
    book = TemplateBook('{"survey": "tpl-real-123"}', '{"pending_payment": "SMS_999"}')
    assert book.wechat[Kind.SURVEY].template_id == "tpl-real-123"
    assert book.sms[Kind.PENDING_PAYMENT].code == "SMS_999"
    assert book.kind_of_wechat_template("tpl-real-123") is Kind.SURVEY
