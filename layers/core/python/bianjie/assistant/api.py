"""What the assistant's HTTP API takes and answers (pydantic v2)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bianjie.assistant.kb import ENTRY_ID, NO_NUL, EntryBody, Link
from bianjie.kit.types import WholeNumber

SESSION = r"^[A-Za-z0-9_-]{22,64}$"
HOSPITAL = r"^[a-z0-9][a-z0-9-]{0,63}$"
CONVERSATION = r"^c[0-9a-f]{31}$"
Status = Literal["bot", "waiting", "agent"]
Kind = Literal["emergency", "handoff", "refusal", "intent", "faq", "clarify", "unknown", "llm", "relayed"]
Role = Literal["patient", "bot", "agent", "system"]


class MessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session: str | None = Field(default=None, pattern=SESSION, description="from the first answer; omit to start")
    text: str = Field(
        min_length=1, max_length=500, pattern=NO_NUL, description="what the patient typed (1-500 characters)"
    )
    hospital: str | None = Field(default=None, pattern=HOSPITAL, description="the hospital's id; default configured")


class Handoff(BaseModel):
    status: Status
    waiting: WholeNumber | None = Field(default=None, description="conversations ahead in the queue")


class MessageAnswer(BaseModel):
    session: str = Field(description="send it with the next message and when polling; keep it private")
    seq: WholeNumber = Field(description="sequence number of the bot's reply (poll after it)")
    reply: str
    kind: Kind
    intent: str | None = Field(description="service intent id or 'human', else null")
    faq: str | None = Field(description="the FAQ entry the answer came from, else null")
    source: str = Field(description="entry and version, or the rule, the answer came from")
    citations: list[str] = Field(default_factory=list, description="entries an LLM answer cites")
    links: list[Link] = Field(default_factory=list, description="deep links into the services")
    suggestions: list[str] = Field(default_factory=list, description="quick-reply chips")
    handoff: Handoff


class PollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session: str = Field(pattern=SESSION)
    after: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class Message(BaseModel):
    seq: WholeNumber
    role: Role
    text: str
    at: str
    links: list[Link] = Field(default_factory=list)


class PollAnswer(BaseModel):
    messages: list[Message]
    handoff: Handoff


# -- the agent desk -------------------------------------------------------------------------------


class Guess(BaseModel):
    entry: str
    confidence: float


class QueueItem(BaseModel):
    conversation: str = Field(pattern=CONVERSATION)
    status: Status
    reason: str
    queued_at: str
    agent: str | None
    turns: WholeNumber
    guesses: list[Guess]


class DeskQueueAnswer(BaseModel):
    items: list[QueueItem]


class Suggestion(BaseModel):
    entry: str
    question: str
    answer: str
    confidence: float


class Transcript(BaseModel):
    conversation: str
    status: Status
    reason: str | None
    agent: str | None
    messages: list[Message]
    guesses: list[Guess]
    suggestions: list[Suggestion]


class AgentReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000, pattern=NO_NUL)


# -- the knowledge-base editor --------------------------------------------------------------------


class DraftRequest(EntryBody):
    pass


class KbReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]
    note: str | None = Field(default=None, max_length=500, pattern=NO_NUL)


class EntryView(BaseModel):
    id: str
    published: dict[str, object] | None
    draft: dict[str, object] | None
    history: list[dict[str, object]]


class KbEntryList(BaseModel):
    entries: list[dict[str, object]]


class KbImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["jsonl", "csv"]
    content: str = Field(min_length=1, max_length=1_000_000, pattern=NO_NUL)


class KbImportAnswer(BaseModel):
    drafts: list[Annotated[str, Field(pattern=ENTRY_ID)]]


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["jsonl", "csv"] = "jsonl"


class KbExportAnswer(BaseModel):
    format: Literal["jsonl", "csv"]
    count: WholeNumber
    content: str
