"""PII redaction (properties over generated identifiers), the grounded-answer checks, and the LLM path
through the OpenAI-compatible client and the local stand-in."""

from __future__ import annotations

import json

import pytest
from bianjie.assistant import kb
from bianjie.assistant.adapters.openai_chat import OpenAIChat
from bianjie.assistant.api import MessageRequest
from bianjie.assistant.llm import Grounder, Rejected, check, messages_for
from bianjie.assistant.pii import _ID_CHECK, _ID_WEIGHTS, luhn_ok, redact
from bianjie_dev.assistant.llm_standin import GroundedChatStandIn
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.assistant.conftest import build

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def with_id_check(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + _ID_CHECK[total % 11]


def with_luhn(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


@given(st.from_regex(r"[1-9][0-9]{16}", fullmatch=True), st.sampled_from(["我的身份证是", "证件号", ""]))
def test_valid_id_numbers_are_always_redacted(first17: str, prefix: str) -> None:
    number = with_id_check(first17)
    out = redact(f"{prefix}{number}，帮我查报告")
    assert number not in out and "[身份证号]" in out


@given(st.from_regex(r"62[0-9]{14,16}", fullmatch=True))
def test_luhn_bank_cards_are_redacted(body: str) -> None:
    card = with_luhn(body)
    assert card not in redact(f"卡号 {card} 扣款失败")


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_mobiles_are_redacted(phone: str) -> None:
    assert phone not in redact(f"回电{phone}谢谢")


def test_names_and_record_numbers() -> None:
    out = redact("我叫王小明，病历号 A12345678，想问停车")
    assert "王小明" not in out and "A12345678" not in out and "停车" in out


def test_a_wrong_check_digit_is_not_called_an_id() -> None:
    valid = with_id_check("11010119900307123")
    wrong = valid[:17] + next(c for c in "0123456789X" if c != valid[17])
    assert "[身份证号]" in redact(valid) and "[身份证号]" not in redact(wrong)


BY_ID = {e.id: e for e in kb.base()}
SOURCES = [BY_ID["faq.parking"], BY_ID["faq.address"]]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("not json", "LLM_NOT_JSON"),
        ('{"refuse": false, "answer": "可以停车", "citations": []}', "LLM_NO_CITATIONS"),
        ('{"refuse": false, "answer": "可以停车", "citations": [3]}', "LLM_BAD_CITATION"),
        ('{"refuse": false, "answer": "每次服用 2 片", "citations": [1]}', "LLM_DOSE"),
        ('{"answer": "x"}', "LLM_SHAPE"),
    ],
)
def test_broken_replies_are_rejected(reply: str, reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        check(reply, SOURCES)
    assert exc.value.reason == reason


def test_a_refusal_and_a_grounded_answer() -> None:
    assert check('{"refuse": true, "answer": "", "citations": []}', SOURCES) is None
    grounded = check('```json\n{"refuse": false, "answer": "停车 10 元/小时", "citations": ["1"]}\n```', SOURCES)
    assert grounded is not None and grounded.citations == ("faq.parking",)


def test_the_prompt_carries_numbered_sources_and_no_pii() -> None:
    messages = messages_for("我叫李四，电话13800138000，停车多少钱", SOURCES)
    user = messages[1]["content"]
    assert "[1] 停车" in user and "[2] 医院地址" in user
    assert "李四" not in user and "13800138000" not in user


def test_the_standin_answers_only_from_sources_through_the_real_client() -> None:
    chat = OpenAIChat("http://llm-standin.local/v1", "qwen", None, GroundedChatStandIn())
    grounded = Grounder(chat).answer("车停哪里收费多少", SOURCES)
    assert grounded is not None and grounded.citations == ("faq.parking",)
    assert "10 元/小时" in grounded.answer
    assert Grounder(chat).answer("量子力学是什么", SOURCES) is None


def test_the_bot_uses_the_llm_only_when_unsure_and_cites() -> None:
    world = build(grounder=Grounder(OpenAIChat("http://x/v1", "qwen", None, GroundedChatStandIn())))
    exact = world.conversations.message(None, MessageRequest(text="停车怎么收费"))
    assert exact.kind == "faq"
    calls = GroundedChatStandIn.calls
    unsure = world.conversations.message(None, MessageRequest(text="急诊需要提前挂号吗"))
    assert GroundedChatStandIn.calls == calls + 1
    assert unsure.kind == "llm" and unsure.citations and unsure.source.startswith("llm:")
    assert json.dumps(unsure.citations)


def test_the_client_sends_the_openai_request_and_refuses_broken_answers() -> None:
    seen: dict[str, object] = {}

    def transport(url: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, bytes]:
        seen.update(url=url, headers=headers, body=json.loads(body))
        return 200, json.dumps({"choices": [{"message": {"content": "ok"}}]}).encode()

    chat = OpenAIChat("http://llm.hospital.internal:8000/v1/", "qwen2.5-7b-instruct", "k-1", transport)
    assert chat.complete([{"role": "user", "content": "hi"}]) == "ok"
    assert seen["url"] == "http://llm.hospital.internal:8000/v1/chat/completions"
    assert seen["headers"] == {"Content-Type": "application/json", "Authorization": "Bearer k-1"}
    body = seen["body"]
    assert isinstance(body, dict) and body["model"] == "qwen2.5-7b-instruct" and body["temperature"] == 0

    from bianjie.assistant.adapters.openai_chat import LlmUnavailable

    for status, raw in [(503, b"busy"), (200, b"{}"), (200, b'{"choices": [{"message": {"content": 5}}]}')]:
        with pytest.raises(LlmUnavailable):
            OpenAIChat("http://x/v1", "m", None, lambda *a, s=status, r=raw: (s, r)).complete([])


def test_a_failing_model_never_fails_the_patient() -> None:
    def down(*_: object) -> tuple[int, bytes]:
        return 503, b"down"

    world = build(grounder=Grounder(OpenAIChat("http://x/v1", "qwen", None, down)))
    answer = world.conversations.message(None, MessageRequest(text="急诊需要提前挂号吗"))
    assert answer.kind == "clarify"  # the bot's own reply, as without a model
