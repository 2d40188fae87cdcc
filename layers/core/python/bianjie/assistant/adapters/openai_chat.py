"""The OpenAI-compatible chat completions API (``POST {base}/chat/completions``), which vLLM, Ollama and
llama.cpp's server all speak: the on-premises model behind ``bianjie.assistant.llm.ChatModel``."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

Transport = Callable[[str, dict[str, str], bytes, float], tuple[int, bytes]]


class LlmUnavailable(Exception):
    pass


def http_transport(url: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise LlmUnavailable(type(exc).__name__) from None


class OpenAIChat:
    def __init__(
        self, base_url: str, model: str, api_key: str | None, transport: Transport, *, timeout: float = 8.0
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.transport = transport
        self.timeout = timeout

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int = 400) -> str:
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
            "response_format": {"type": "json_object"},
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        status, raw = self.transport(self.url, headers, json.dumps(body, ensure_ascii=False).encode(), self.timeout)
        if status != 200:
            raise LlmUnavailable(f"HTTP {status}")
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LlmUnavailable("malformed completion") from None
        if not isinstance(content, str):
            raise LlmUnavailable("malformed completion")
        return content
