"""Grounded answers from a language model (off by default): the model may only rephrase and combine the
retrieved, reviewed entries it is given as numbered sources, and must answer JSON
``{"refuse": bool, "answer": str, "citations": [source numbers]}``. The answer is rejected (and the bot
falls back to its own reply) when it is not that JSON, cites nothing or a source it was not given, or
states a drug dose. Personal data is redacted before the model sees the question.

The model is an outside system (an OpenAI-compatible chat API: vLLM, Ollama or llama.cpp serving a Qwen
model on the hospital's servers); ``ChatModel`` is its port.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bianjie.assistant.kb import Entry
from bianjie.assistant.pii import redact

SYSTEM_PROMPT = (
    "你是医院的在线客服。只能根据下面编号的资料回答患者的问题，可以改写和合并资料，不能添加资料里没有的事实。"
    "不做诊断，不给用药剂量，不解读检查结果。资料不足以回答时拒答。"
    '只输出一个 JSON 对象：{"refuse": true或false, "answer": "回答", "citations": [所用资料的编号]}。'
)
DOSE = re.compile(
    r"[0-9０-９一二三四五六七八九十半两]+\s*(mg|毫克|微克|μg|ug|g|克|ml|毫升|片|粒|丸|袋|支|滴|单位|iu)(?![a-z])", re.I
)


class ChatModel(Protocol):
    """One chat completion: messages in, the assistant message's text out."""

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int = 400) -> str: ...


@dataclass(frozen=True)
class Grounded:
    answer: str
    citations: tuple[str, ...]  # entry ids


class Rejected(Exception):
    """The model's reply broke a rule; ``reason`` is a stable code (logged, never the text)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def messages_for(question: str, sources: Sequence[Entry]) -> list[dict[str, str]]:
    lines = [f"[{i}] {e.question}：{e.answer}" for i, e in enumerate(sources, start=1)]
    user = "资料：\n" + "\n".join(lines) + "\n\n患者问题：" + redact(question)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def check(reply: str, sources: Sequence[Entry]) -> Grounded | None:
    """The grounded answer, ``None`` when the model refused; raises ``Rejected`` for a broken reply."""
    text = reply.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except ValueError:
        raise Rejected("LLM_NOT_JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("refuse"), bool):
        raise Rejected("LLM_SHAPE")
    if data["refuse"]:
        return None
    answer, citations = data.get("answer"), data.get("citations")
    if not isinstance(answer, str) or not answer.strip() or len(answer) > 1000:
        raise Rejected("LLM_SHAPE")
    if not isinstance(citations, list) or not citations:
        raise Rejected("LLM_NO_CITATIONS")
    ids = []
    for c in citations:
        if isinstance(c, bool) or not isinstance(c, int | str) or not str(c).isdigit():
            raise Rejected("LLM_BAD_CITATION")
        n = int(c)
        if not 1 <= n <= len(sources):
            raise Rejected("LLM_BAD_CITATION")
        ids.append(sources[n - 1].id)
    if DOSE.search(answer):
        raise Rejected("LLM_DOSE")
    return Grounded(answer.strip(), tuple(dict.fromkeys(ids)))


class Grounder:
    def __init__(self, model: ChatModel) -> None:
        self.model = model

    def answer(self, question: str, sources: Sequence[Entry]) -> Grounded | None:
        if not sources:
            return None
        return check(self.model.complete(messages_for(question, sources)), sources)
