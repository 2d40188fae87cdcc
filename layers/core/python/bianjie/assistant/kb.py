"""The knowledge base (知识库): FAQ and service-intent entries, their review states, import and export.

An entry is answered only once reviewed and published. The base every hospital starts from ships with
the code (``base.jsonl``, written by the project for a demo hospital, reviewed in git); a hospital's
editors override entries or add their own through the editor API, and its reviewers publish them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bianjie.kit.errors import AppError

ENTRY_ID = r"^(svc|faq)\.[a-z][a-z0-9_]{1,40}$|^human$|^(hosp)\.[a-z0-9][a-z0-9_.-]{1,40}$"
ENTRY_ID_RE = re.compile(ENTRY_ID)
Stage = Literal["pre", "during", "post", "any"]
Review = Literal["draft", "in_review", "published", "rejected"]
SERVICE_INTENTS = (
    "svc.register",
    "svc.cancel_register",
    "svc.pay",
    "svc.checkin",
    "svc.report",
    "svc.film",
    "svc.invoice",
    "svc.navigate",
    "svc.medicine",
    "svc.escort",
    "svc.mdt",
    "svc.credit_pay",
)
INTENTS = (*SERVICE_INTENTS, "human")
# a NUL is refused at the edge (kit.web, 400 INVALID_CHARACTER): the schema says so for every text field
NO_NUL = r"^[^\x00]*$"
Line = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Tag = Annotated[str, Field(min_length=1, max_length=20, pattern=NO_NUL)]


class Detail(BaseModel):
    """A follow-up answer within an entry ("那周末呢" after the opening hours): asked with one of ``keys``."""

    model_config = ConfigDict(extra="forbid")
    keys: list[Tag] = Field(min_length=1, max_length=20)
    answer: str = Field(min_length=1, max_length=1000, pattern=NO_NUL)


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=40, pattern=NO_NUL)
    url: str = Field(min_length=1, max_length=300, pattern=r"^(/|https://)[^\s<>\"'\x00-\x1f\x7f]*$")


class EntryBody(BaseModel):
    """What an editor writes (the id is in the path)."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    alternatives: list[Line] = Field(default_factory=list, max_length=50)
    examples: list[Line] = Field(default_factory=list, max_length=100)
    answer: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)
    stage: Stage = "any"
    link: Link | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    source: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    details: list[Detail] = Field(default_factory=list, max_length=20)
    follow_ups: list[Annotated[str, Field(pattern=ENTRY_ID)]] = Field(default_factory=list, max_length=5)


class Entry(EntryBody):
    id: str = Field(pattern=ENTRY_ID)
    review: Review = "published"
    version: int = Field(default=1, ge=1)
    hospital: str | None = Field(default=None, max_length=64)  # None: the base; else the override's hospital
    updated_by: str | None = None
    updated_at: str | None = None

    @field_validator("id")
    @classmethod
    def _known_intent(cls, value: str) -> str:
        if value.startswith("svc.") and value not in SERVICE_INTENTS:
            raise ValueError(f"unknown service intent; one of {', '.join(SERVICE_INTENTS)}")
        return value

    @property
    def intent(self) -> str | None:
        return self.id if self.id in INTENTS else None

    def texts(self) -> list[str]:
        """What retrieval matches: the question, its alternatives and the labelled example utterances."""
        return [self.question, *self.alternatives, *self.examples]


BASE_FILE = Path(__file__).with_name("base.jsonl")


@cache
def base() -> tuple[Entry, ...]:
    """The project's base knowledge (Chinese), as shipped."""
    return tuple(parse_jsonl(BASE_FILE.read_text(encoding="utf-8")))


# -- import and export ------------------------------------------------------------------------------

CSV_FIELDS = (
    "id",
    "question",
    "alternatives",
    "examples",
    "answer",
    "stage",
    "link_title",
    "link_url",
    "tags",
    "source",
    "details",
    "follow_ups",
)


def _refuse(line: int, exc: ValidationError | ValueError) -> AppError:
    detail = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else exc.errors()[0]["msg"]
    return AppError(f"第 {line} 行无法导入：{detail}", code="KB_IMPORT_INVALID", status=422)


def parse_jsonl(text: str) -> list[Entry]:
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entries.append(Entry.model_validate_json(raw))
        except ValidationError as exc:
            raise _refuse(number, exc) from None
    return entries


def to_jsonl(entries: list[Entry]) -> str:
    return "".join(e.model_dump_json(exclude_none=True) + "\n" for e in entries)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split("|") if part.strip()]


def parse_csv(text: str) -> list[Entry]:
    """CSV with the header ``CSV_FIELDS``; lists are ``|``-separated, ``details`` is JSON."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [f for f in ("id", "question", "answer", "source") if f not in (reader.fieldnames or [])]
    if missing:
        raise AppError(f"CSV 缺少列：{', '.join(missing)}", code="KB_IMPORT_INVALID", status=422)
    entries = []
    for number, row in enumerate(reader, start=2):
        try:
            link = None
            if (row.get("link_url") or "").strip():
                link = {"title": row.get("link_title") or row["question"], "url": row["link_url"].strip()}
            entries.append(
                Entry.model_validate(
                    {
                        "id": row["id"],
                        "question": row["question"],
                        "alternatives": _split(row.get("alternatives") or ""),
                        "examples": _split(row.get("examples") or ""),
                        "answer": row["answer"],
                        "stage": row.get("stage") or "any",
                        "link": link,
                        "tags": _split(row.get("tags") or ""),
                        "source": row["source"],
                        "details": json.loads(row.get("details") or "[]"),
                        "follow_ups": _split(row.get("follow_ups") or ""),
                    }
                )
            )
        except (ValidationError, ValueError) as exc:
            raise _refuse(number, exc) from None
    return entries


def to_csv(entries: list[Entry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    writer.writeheader()
    for e in entries:
        writer.writerow(
            {
                "id": e.id,
                "question": e.question,
                "alternatives": "|".join(e.alternatives),
                "examples": "|".join(e.examples),
                "answer": e.answer,
                "stage": e.stage,
                "link_title": e.link.title if e.link else "",
                "link_url": e.link.url if e.link else "",
                "tags": "|".join(e.tags),
                "source": e.source,
                "details": json.dumps([d.model_dump() for d in e.details], ensure_ascii=False) if e.details else "",
                "follow_ups": "|".join(e.follow_ups),
            }
        )
    return out.getvalue()
