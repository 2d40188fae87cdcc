"""LOCAL STAND-IN of an OpenAI-compatible LLM server (development tooling, never production).

It speaks ``POST /v1/chat/completions`` as a transport of ``OpenAIChat`` and answers the way the grounded
prompt demands, without a model: it reads the numbered sources from the user message, picks the one
that shares most characters with the question, answers with that source's text and cites it, and
refuses when no source shares enough. It never writes anything that is not in a source.
"""

from __future__ import annotations

import json
import re

_SOURCE = re.compile(r"^\[(\d+)\] (.+)$", re.M)


class GroundedChatStandIn:
    calls = 0

    def __call__(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, bytes]:
        type(self).calls += 1
        if not url.endswith("/chat/completions"):
            return 404, b'{"error": "not found"}'
        request = json.loads(body)
        user = next(m["content"] for m in request["messages"] if m["role"] == "user")
        question = user.rsplit("患者问题：", 1)[-1]
        best, best_overlap = None, 0.0
        for number, text in _SOURCE.findall(user):
            overlap = len(set(question) & set(text)) / max(1, len(set(question)))
            if overlap > best_overlap:
                best, best_overlap = (int(number), text), overlap
        if best is None or best_overlap < 0.3:
            content = {"refuse": True, "answer": "", "citations": []}
        else:
            answer = best[1].split("：", 1)[-1]
            content = {"refuse": False, "answer": "根据医院资料：" + answer, "citations": [best[0]]}
        reply = {
            "id": "standin",
            "object": "chat.completion",
            "model": request.get("model"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": json.dumps(content, ensure_ascii=False)}}
            ],
        }
        return 200, json.dumps(reply, ensure_ascii=False).encode()
