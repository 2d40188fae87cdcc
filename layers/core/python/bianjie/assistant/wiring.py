"""Builds the assistant's use cases from the environment (the template sets the variables), per function.

The LLM is off unless ``ASSISTANT_LLM=on``. Then, on the local stage
(``bianjie.kit.standins.use_standin("assistant.llm")``), the OpenAI-compatible client talks to the local
stand-in (development tooling that answers only from the passages it is given); elsewhere to the server at
``ASSISTANT_LLM_URL`` (vLLM, Ollama or llama.cpp serving a Qwen model on the hospital's servers).
"""

from __future__ import annotations

from bianjie.assistant.knowledge import Editor, Knowledge
from bianjie.assistant.llm import Grounder
from bianjie.assistant.service import Conversations, Limits
from bianjie.assistant.store import AssistantStore, Tables
from bianjie.kit import deps
from bianjie.kit.config import env, env_int, require_env
from bianjie.kit.standins import use_standin


@deps.singleton
def store() -> AssistantStore:
    """The conversation functions' tables (sessions, and the knowledge they answer from)."""
    tables = Tables(sessions=deps.table("ASSISTANT_SESSIONS_TABLE"), kb=deps.table("ASSISTANT_KB_TABLE"))
    return AssistantStore(deps.documents(), tables)


@deps.singleton
def kb_store() -> AssistantStore:
    """The editor functions' table: they hold no conversation and no permission on the sessions table."""
    return AssistantStore(deps.documents(), Tables(sessions="", kb=deps.table("ASSISTANT_KB_TABLE")))


@deps.singleton
def knowledge() -> Knowledge:
    return Knowledge(store())


@deps.singleton
def editor_knowledge() -> Knowledge:
    return Knowledge(kb_store())


@deps.singleton
def editor() -> Editor:
    return Editor(kb_store())


@deps.singleton
def grounder() -> Grounder | None:
    if (env("ASSISTANT_LLM", "off") or "off") != "on":
        return None
    from bianjie.assistant.adapters.openai_chat import OpenAIChat, http_transport

    model = env("ASSISTANT_LLM_MODEL", "qwen2.5-7b-instruct") or "qwen2.5-7b-instruct"
    if use_standin("assistant.llm"):
        from bianjie_dev.assistant.llm_standin import GroundedChatStandIn

        return Grounder(OpenAIChat("http://llm-standin.local/v1", model, None, GroundedChatStandIn()))
    return Grounder(OpenAIChat(require_env("ASSISTANT_LLM_URL"), model, env("ASSISTANT_LLM_KEY"), http_transport))


@deps.singleton
def conversations() -> Conversations:
    limits = Limits(
        per_minute=env_int("ASSISTANT_RATE_PER_MINUTE", 20),
        default_hospital=env("ASSISTANT_DEFAULT_HOSPITAL", "demo-hospital") or "demo-hospital",
    )
    return Conversations(
        store(), knowledge(), deps.field_cipher(), deps.audit_log("assistant"), limits=limits, grounder=grounder()
    )


def web_bucket() -> str:
    return require_env("ASSISTANT_WEB_BUCKET")


@deps.singleton
def web_objects() -> object:
    return deps.objects()
