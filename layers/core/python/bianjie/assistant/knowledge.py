"""The knowledge a hospital's bot answers from, and its editors' workflow (draft -> in review ->
published or rejected, with history). Editors hold ``kb-editor``, reviewers ``kb-reviewer``; a reviewer
cannot approve their own draft (four eyes). Only published entries are answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from bianjie.assistant import kb
from bianjie.assistant.api import EntryView, KbEntryList, KbExportAnswer, KbImportAnswer, KbReviewRequest
from bianjie.assistant.kb import Entry, EntryBody
from bianjie.assistant.store import AssistantStore, entry_of
from bianjie.assistant.understand import Understander
from bianjie.kit.actor import Actor
from bianjie.kit.documents.port import Delete, TransactionCanceled
from bianjie.kit.errors import AppError, Conflict, Forbidden, NotFound
from bianjie.kit.timefmt import utc_iso

EDITOR, REVIEWER = "kb-editor", "kb-reviewer"
MAX_IMPORT = 200
REFRESH_SECONDS = 5.0
MAX_CACHED = 1000


def _hospital(actor: Actor) -> str:
    if not actor.org:
        raise Forbidden("this staff token names no hospital", code="HOSPITAL_REQUIRED")
    return actor.org


class Knowledge:
    """Published knowledge per hospital (the base overlaid by its published entries), with its index,
    rebuilt when the hospital's knowledge version moves (read at most every ``REFRESH_SECONDS``)."""

    def __init__(self, store: AssistantStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, float, Understander]] = {}
        self._base: Understander | None = None

    def base_understander(self) -> Understander:
        """The base's index, shared by every hospital that has published nothing of its own (so a message
        naming any hospital id costs no index of its own)."""
        if self._base is None:
            self._base = Understander(kb.base())
        return self._base

    def entries(self, hospital: str) -> list[Entry]:
        merged = {e.id: e for e in kb.base()}
        for item in self.store.kb_items(hospital, "pub#"):
            entry = Entry.model_validate(entry_of(item))
            merged[entry.id] = entry
        return list(merged.values())

    def understander(self, hospital: str) -> Understander:
        now = self.clock()
        cached = self._cache.get(hospital)
        if cached and now - cached[1] < REFRESH_SECONDS:
            return cached[2]
        version = self.store.kb_version(hospital)
        if cached and cached[0] == version:
            self._cache[hospital] = (version, now, cached[2])
            return cached[2]
        built = self.base_understander() if version == 0 else Understander(self.entries(hospital))
        with self._lock:
            if len(self._cache) >= MAX_CACHED:  # hospital ids come from requests: bound what they can grow
                self._cache.clear()
            self._cache[hospital] = (version, now, built)
        return built


class Editor:
    def __init__(self, store: AssistantStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def list(self, actor: Actor) -> KbEntryList:
        hospital = _hospital(actor)
        published = {entry_of(i)["id"]: entry_of(i) for i in self.store.kb_items(hospital, "pub#")}
        drafts = {entry_of(i)["id"]: entry_of(i) for i in self.store.kb_items(hospital, "draft#")}
        rows = []
        for e in kb.base():
            rows.append(
                self._row(
                    e.id, published.get(e.id) or e.model_dump(mode="json"), drafts.get(e.id), e.id not in published
                )
            )
        for entry_id in sorted(set(published) | set(drafts)):
            if entry_id not in {e.id for e in kb.base()}:
                rows.append(self._row(entry_id, published.get(entry_id), drafts.get(entry_id), False))
        return KbEntryList(entries=rows)

    @staticmethod
    def _row(
        entry_id: str, published: dict[str, Any] | None, draft: dict[str, Any] | None, base: bool
    ) -> dict[str, Any]:
        return {
            "id": entry_id,
            "question": (published or draft or {}).get("question"),
            "version": published.get("version") if published else None,
            "from_base": base,
            "draft": draft.get("review") if draft else None,
        }

    def view(self, actor: Actor, entry_id: str) -> EntryView:
        hospital = _hospital(actor)
        pub = self.store.kb_get(hospital, f"pub#{entry_id}")
        base = next((e for e in kb.base() if e.id == entry_id), None)
        draft = self.store.kb_get(hospital, f"draft#{entry_id}")
        if pub is None and base is None and draft is None:
            raise NotFound("没有这个知识条目", code="KB_ENTRY_NOT_FOUND")
        published = entry_of(pub) if pub else (base.model_dump(mode="json") if base else None)
        history = [entry_of(i) for i in self.store.kb_items(hospital, f"rev#{entry_id}#")]
        return EntryView(id=entry_id, published=published, draft=entry_of(draft) if draft else None, history=history)

    def save_draft(self, actor: Actor, entry_id: str, body: EntryBody) -> EntryView:
        hospital = _hospital(actor)
        current = self.store.kb_get(hospital, f"pub#{entry_id}")
        base = next((e for e in kb.base() if e.id == entry_id), None)
        version = (int(entry_of(current)["version"]) if current else (base.version if base else 0)) + 1
        try:
            entry = Entry.model_validate(
                {
                    **body.model_dump(mode="json"),
                    "id": entry_id,
                    "review": "draft",
                    "version": version,
                    "hospital": hospital,
                    "updated_by": actor.id,
                    "updated_at": utc_iso(self.clock()),
                }
            )
        except ValueError as exc:
            raise AppError(f"条目编号不可用：{exc}", code="KB_ENTRY_ID_INVALID", status=422) from None
        self.store.db.put(
            self.store.t.kb, self.store.kb_put(hospital, f"draft#{entry_id}", entry.model_dump(mode="json")).item
        )
        return self.view(actor, entry_id)

    def _draft(self, hospital: str, entry_id: str) -> Entry:
        item = self.store.kb_get(hospital, f"draft#{entry_id}")
        if item is None:
            raise NotFound("这个条目没有草稿", code="KB_DRAFT_NOT_FOUND")
        return Entry.model_validate(entry_of(item))

    def submit(self, actor: Actor, entry_id: str) -> EntryView:
        hospital = _hospital(actor)
        draft = self._draft(hospital, entry_id)
        if draft.review not in ("draft", "rejected"):
            raise Conflict("草稿已在审核中", code="KB_ALREADY_IN_REVIEW")
        updated = draft.model_copy(update={"review": "in_review"})
        self.store.db.put(
            self.store.t.kb, self.store.kb_put(hospital, f"draft#{entry_id}", updated.model_dump(mode="json")).item
        )
        return self.view(actor, entry_id)

    def review(self, actor: Actor, entry_id: str, decision: KbReviewRequest) -> EntryView:
        hospital = _hospital(actor)
        draft = self._draft(hospital, entry_id)
        if draft.review != "in_review":
            raise Conflict("只有提交审核的草稿可以审核", code="KB_NOT_IN_REVIEW")
        if draft.updated_by == actor.id:
            raise AppError("不能审核自己编辑的条目，请由另一位审核员审核", code="KB_REVIEWER_IS_AUTHOR", status=422)
        if decision.decision == "reject":
            rejected = draft.model_copy(update={"review": "rejected"})
            item = self.store.kb_put(
                hospital, f"draft#{entry_id}", rejected.model_dump(mode="json"), note=decision.note or ""
            )
            self.store.db.put(self.store.t.kb, item.item)
            return self.view(actor, entry_id)
        published = draft.model_copy(update={"review": "published", "updated_at": utc_iso(self.clock())})
        body = published.model_dump(mode="json")
        version = self.store.kb_version(hospital)
        try:
            self.store.transact(
                [
                    self.store.kb_put(hospital, f"pub#{entry_id}", body, reviewed_by=actor.id),
                    self.store.kb_put(hospital, f"rev#{entry_id}#{published.version:06d}", body, reviewed_by=actor.id),
                    Delete(self.store.t.kb, {"pk": hospital, "sk": f"draft#{entry_id}"}),
                    self.store.kb_bump(hospital, version),
                ]
            )
        except TransactionCanceled:
            raise Conflict("知识库同时有其他发布，请重试", code="KB_CONTENDED") from None
        return self.view(actor, entry_id)

    def import_(self, actor: Actor, fmt: str, content: str) -> KbImportAnswer:
        _hospital(actor)
        entries = kb.parse_jsonl(content) if fmt == "jsonl" else kb.parse_csv(content)
        if not entries:
            raise AppError("导入内容里没有条目", code="KB_IMPORT_EMPTY", status=422)
        if len(entries) > MAX_IMPORT:
            raise AppError(f"一次最多导入 {MAX_IMPORT} 条", code="KB_IMPORT_TOO_MANY", status=422)
        for e in entries:
            body = EntryBody.model_validate(e.model_dump(include=set(EntryBody.model_fields), mode="json"))
            self.save_draft(actor, e.id, body)
        return KbImportAnswer(drafts=[e.id for e in entries])

    def export(self, actor: Actor, fmt: str, knowledge: Knowledge) -> KbExportAnswer:
        entries = knowledge.entries(_hospital(actor))
        content = kb.to_jsonl(entries) if fmt == "jsonl" else kb.to_csv(entries)
        return KbExportAnswer(format=fmt, count=len(entries), content=content)
