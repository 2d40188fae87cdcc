"""The assistant on in-memory documents (tables as the templates declare them), real SM4 field
encryption and a real audit chain, with a clock the test moves."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from bianjie.assistant.knowledge import Editor, Knowledge
from bianjie.assistant.service import Conversations, Limits
from bianjie.assistant.store import AssistantStore, Tables
from bianjie.kit.actor import Actor
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.fieldcrypt import FieldCipher
from bianjie.kit.keys import LocalKeyPort
from bianjie.kit.tables import table_spec

HOSPITAL = "demo-hospital"


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    db: MemoryDocumentStore
    store: AssistantStore
    knowledge: Knowledge
    conversations: Conversations
    editor: Editor
    audit: AuditLog
    clock: Clock

    def records(self) -> list[Any]:
        return [r for chain in self.audit.chains("assistant") for r in self.audit.records(chain)]


def agent(code: str = "A01", hospital: str = HOSPITAL) -> Actor:
    return Actor(kind="staff", id=code, org=hospital, roles=("assistant-agent",))


def build(**kwargs: Any) -> World:
    clock = Clock()
    db = MemoryDocumentStore(
        table_spec("ASSISTANT_SESSIONS_TABLE", "sessions"),
        table_spec("ASSISTANT_KB_TABLE", "kb"),
        table_spec("AUDIT_TABLE", "audit"),
        clock=clock,
    )
    store = AssistantStore(db, Tables("sessions", "kb"))
    knowledge = Knowledge(store, clock=clock)
    audit = AuditLog(db, "audit", clock, service="assistant")
    cipher = FieldCipher(LocalKeyPort(secrets.token_bytes(16)))
    conversations = Conversations(store, knowledge, cipher, audit, limits=Limits(per_minute=20), clock=clock, **kwargs)
    return World(db, store, knowledge, conversations, Editor(store, clock), audit, clock)


@pytest.fixture
def world() -> World:
    return build()
