"""The conversation: a patient's message in, the bot's answer out; handoff to the agent desk.

A session is anonymous (its secret is the credential, returned by the first answer) or bound to a
patient token (then only that patient may continue it). Its state machine::

    bot --explicit request, or two low-confidence turns in a row--> waiting --agent takes--> agent
    agent --agent closes--> bot

While waiting or with an agent the bot does not answer (the patient's messages go to the agent),
except an emergency, which is answered at once in every state. Every answer records the entry or rule
it came from. Message text is stored SM4-encrypted; every read of a transcript (the agent's, the
patient's poll that returns messages) is audited.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bianjie.assistant.api import (
    CONVERSATION,
    DeskQueueAnswer,
    Guess,
    Handoff,
    Message,
    MessageAnswer,
    MessageRequest,
    PollAnswer,
    QueueItem,
    Suggestion,
    Transcript,
)
from bianjie.assistant.kb import Entry, Link
from bianjie.assistant.knowledge import Knowledge
from bianjie.assistant.llm import Grounder, Rejected
from bianjie.assistant.pii import redact
from bianjie.assistant.store import AssistantStore
from bianjie.assistant.understand import (
    EMERGENCY,
    EMERGENCY_TEXT,
    HANDOFF,
    REFUSAL_TEXT,
    Interpretation,
    Understander,
    plain,
)
from bianjie.kit.actor import Actor
from bianjie.kit.crypto import sm3
from bianjie.kit.documents.port import Operation, TransactionCanceled
from bianjie.kit.errors import AppError, Conflict, Forbidden, NotFound, TooManyRequests
from bianjie.kit.logging import get_logger
from bianjie.kit.timefmt import utc_iso

log = get_logger("assistant")
HANDOFF_TEXT = "正在为您转接人工客服，请稍候。"
UNSURE_TEXT = "我不确定，已为您转人工。"
RETRY_TEXT = "抱歉，我没有完全理解您的问题。可以换个说法，或者点“转人工”。"
WAITING_TEXT = "已转人工，客服会尽快回复您，请稍候。"
CLOSED_TEXT = "人工客服已结束本次对话，如有其他问题可以继续问我。"
REGISTER_LINK = Link(title="预约挂号", url="/pages/home#register")
RETENTION_SECONDS = 90 * 86400
CHIPS = ("几点开门", "停车怎么收费", "查报告", "转人工")


class TextCipher(Protocol):
    def encrypt(self, plaintext: str, context: str) -> str: ...
    def decrypt(self, token: str, context: str) -> str: ...


class Audit(Protocol):
    def record(self, **fields: Any) -> Any: ...


@dataclass(frozen=True)
class Limits:
    per_minute: int = 20
    default_hospital: str = "demo-hospital"


def conversation_of(session: str) -> str:
    return "c" + sm3(session.encode()).hex()[:31]


def _context(conv: str, seq: int) -> str:
    return f"assistant/message/{conv}/{seq}"


def _check_text(text: str) -> str:
    stripped = text.strip()
    if not stripped:
        raise AppError("消息不能为空，请输入您的问题", code="MESSAGE_EMPTY", status=422)
    if any((ord(ch) < 32 and ch not in "\n\t") or ch in "\ufffd\u007f" for ch in stripped):
        raise AppError("消息含有无法识别的字符，请输入文字", code="MESSAGE_BINARY", status=422)
    return stripped


class Conversations:
    def __init__(
        self,
        store: AssistantStore,
        knowledge: Knowledge,
        cipher: TextCipher,
        audit: Audit,
        *,
        limits: Limits | None = None,
        grounder: Grounder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.knowledge = knowledge
        self.cipher = cipher
        self.audit = audit
        self.limits = limits or Limits()
        self.grounder = grounder
        self.clock = clock

    # -- the patient's side -----------------------------------------------------------------------

    def _open(
        self, actor: Actor | None, session: str | None, hospital: str | None, now: float
    ) -> tuple[str, dict[str, Any], int | None]:
        if session is None:
            session = secrets.token_urlsafe(24)
            conv = conversation_of(session)
            meta: dict[str, Any] = {
                "pk": conv,
                "status": "bot",
                "hospital": hospital or self.limits.default_hospital,
                "patient": actor.id if actor else None,
                "patient_ref": actor.patient_ref if actor else None,
                "seq": 0,
                "low_streak": 0,
                "last_entry": None,
                "window_start": now,
                "window_count": 0,
                "version": 0,
                "created_at": utc_iso(now),
            }
            return session, meta, None
        found = self.store.session(conversation_of(session))
        if found is None:
            raise NotFound("会话不存在或已过期，请重新开始", code="SESSION_NOT_FOUND")
        if found.get("patient") and (actor is None or actor.id != found["patient"]):
            raise Forbidden("这个会话属于已登录的患者，请先登录", code="SESSION_FORBIDDEN")
        return session, dict(found), int(found["version"])

    def _rate(self, meta: dict[str, Any], now: float) -> None:
        if now - float(meta.get("window_start") or 0) >= 60:
            meta["window_start"], meta["window_count"] = now, 0
        if int(meta.get("window_count") or 0) >= self.limits.per_minute:
            raise TooManyRequests("发送太频繁，请稍后再试", code="RATE_LIMITED", headers={"Retry-After": "60"})
        meta["window_count"] = int(meta.get("window_count") or 0) + 1

    def message(self, actor: Actor | None, request: MessageRequest) -> MessageAnswer:
        text = _check_text(request.text)
        now = self.clock()
        session, meta, version = self._open(actor, request.session, request.hospital, now)
        self._rate(meta, now)
        conv = meta["pk"]
        understander = self.knowledge.understander(meta["hospital"])
        u = understander.understand(text, previous=meta.get("last_entry"))
        status = meta["status"]
        if u.candidates and u.kind not in ("emergency", "handoff"):
            # what the bot made of the latest real question: passed to the desk if the patient asks for a person
            meta["last_guesses"] = [
                {"entry": c.entry_id, "confidence": round(c.coverage, 3)}
                for c in u.candidates[:3]
                if c.entry_id != "human"
            ]
        answer = self._answer(u, text, meta, status, list(understander.entries.values()))
        ops: list[Operation] = []
        seq = int(meta["seq"])
        ops.append(self._message_put(conv, seq + 1, "patient", text, now, source=None))
        ops.append(self._message_put(conv, seq + 2, "bot", answer.reply, now, source=answer.source, links=answer.links))
        meta["seq"] = seq + 2
        meta["version"] = (version or 0) + 1
        meta["updated_at"] = utc_iso(now)
        meta["expires_at"] = int(now + RETENTION_SECONDS)
        ops.insert(0, self.store.put_session(meta, version))
        try:
            self.store.transact(ops)
        except TransactionCanceled:
            raise Conflict("同一会话的消息同时到达，请重发", code="SESSION_CONTENDED") from None
        log.info(
            "assistant answer",
            extra={
                "kind": answer.kind,
                "source": answer.source,
                "status": meta["status"],
                "confidence": round(u.confidence, 3),
            },
        )
        waiting = self._position(meta) if meta["status"] == "waiting" else None
        return answer.model_copy(
            update={"session": session, "seq": seq + 2, "handoff": Handoff(status=meta["status"], waiting=waiting)}
        )

    def _message_put(
        self,
        conv: str,
        seq: int,
        role: str,
        text: str,
        now: float,
        *,
        source: str | None,
        links: list[Link] | None = None,
        agent: str | None = None,
    ) -> Operation:
        item: dict[str, Any] = {
            "role": role,
            "text": self.cipher.encrypt(text, _context(conv, seq)),
            "at": utc_iso(now, "milliseconds"),
            "source": source,
            "links": [link.model_dump() for link in links or []],
            "expires_at": int(now + RETENTION_SECONDS),
        }
        if agent:
            item["agent"] = agent
        return self.store.put_message(conv, seq, item)

    def _handoff(self, meta: dict[str, Any], reason: str, u: Interpretation, now: float) -> None:
        if meta["status"] != "bot":
            return
        meta["status"] = "waiting"
        meta["queue"] = f"{meta['hospital']}#waiting"
        meta["queued_at"] = utc_iso(now, "milliseconds")
        meta["reason"] = reason
        guesses = [{"entry": c.entry_id, "confidence": round(c.coverage, 3)} for c in u.candidates[:3]]
        meta["guesses"] = guesses or meta.get("last_guesses") or []

    def _answer(
        self, u: Interpretation, text: str, meta: dict[str, Any], status: str, entries: list[Entry]
    ) -> MessageAnswer:
        now = self.clock()
        base = {"session": "", "seq": 0, "handoff": Handoff(status="bot"), "source": u.source}
        if u.kind == "emergency":
            meta["last_entry"] = None
            return MessageAnswer(
                reply=EMERGENCY_TEXT, kind="emergency", intent=None, faq="faq.emergency", suggestions=["转人工"], **base
            )
        if status != "bot":
            return MessageAnswer(
                reply=WAITING_TEXT if status == "waiting" else "",
                kind="relayed",
                intent=None,
                faq=None,
                **{**base, "source": "relay"},
            )
        if u.kind == "handoff":
            self._handoff(meta, "explicit", u, now)
            meta["low_streak"], meta["last_entry"] = 0, None
            return MessageAnswer(reply=HANDOFF_TEXT, kind="handoff", intent="human", faq=None, **base)
        if u.kind == "refusal":
            meta["low_streak"], meta["last_entry"] = 0, None
            rule = (u.rule or "").removeprefix("refuse.")
            return MessageAnswer(
                reply=REFUSAL_TEXT[rule],
                kind="refusal",
                intent=None,
                faq=None,
                links=[REGISTER_LINK],
                suggestions=["转人工"],
                **base,
            )
        if u.kind in ("unknown", "clarify") and self.grounder is not None and u.candidates:
            grounded = self._ground(text, u, entries)
            if grounded is not None:
                return grounded.model_copy(update=base | {"source": grounded.source, "handoff": Handoff(status="bot")})
        if u.kind == "clarify":
            meta["low_streak"] = int(meta.get("low_streak") or 0) + 1
            if meta["low_streak"] >= 2:
                return self._unsure(u, meta, base, now)
            a, b = u.clarify
            return MessageAnswer(
                reply=f"您是想问“{a.question}”，还是“{b.question}”？",
                kind="clarify",
                intent=None,
                faq=None,
                suggestions=[a.question, b.question],
                **base,
            )
        if u.kind == "unknown" or u.entry is None:
            meta["low_streak"] = int(meta.get("low_streak") or 0) + 1
            if meta["low_streak"] >= 2:
                return self._unsure(u, meta, base, now)
            return MessageAnswer(
                reply=RETRY_TEXT, kind="unknown", intent=None, faq=None, suggestions=list(CHIPS), **base
            )
        entry = u.entry
        meta["low_streak"], meta["last_entry"] = 0, entry.id
        by_id = {e.id: e for e in entries}
        follow = [by_id[f].question for f in entry.follow_ups if f in by_id]
        return MessageAnswer(
            reply=u.detail.answer if u.detail else entry.answer,
            kind="intent" if entry.intent else "faq",
            intent=entry.intent,
            faq=None if entry.intent else entry.id,
            links=[entry.link] if entry.link else [],
            suggestions=follow,
            **base,
        )

    def _unsure(self, u: Interpretation, meta: dict[str, Any], base: dict[str, Any], now: float) -> MessageAnswer:
        self._handoff(meta, "low_confidence", u, now)
        meta["low_streak"], meta["last_entry"] = 0, None
        return MessageAnswer(
            reply=UNSURE_TEXT, kind="handoff", intent="human", faq=None, **{**base, "source": "rule:low_confidence"}
        )

    def _ground(self, text: str, u: Interpretation, entries: list[Entry]) -> MessageAnswer | None:
        assert self.grounder is not None
        by_id = {e.id: e for e in entries}
        sources = [by_id[c.entry_id] for c in u.candidates[:3] if c.entry_id in by_id and c.entry_id != "human"]
        try:
            grounded = self.grounder.answer(text, sources)
        except Rejected as exc:
            log.warning("llm answer rejected", extra={"reason": exc.reason})
            return None
        except Exception as exc:  # the model is an outside system: its failure must not fail the patient
            log.warning("llm unavailable", extra={"error": type(exc).__name__})
            return None
        if grounded is None:
            return None
        first = by_id[grounded.citations[0]]
        return MessageAnswer(
            session="",
            seq=0,
            reply=grounded.answer,
            kind="llm",
            intent=None,
            faq=first.id if not first.intent else None,
            source="llm:" + ",".join(grounded.citations),
            citations=list(grounded.citations),
            links=[link for c in grounded.citations if (link := by_id[c].link) is not None],
            handoff=Handoff(status="bot"),
        )

    def _position(self, meta: dict[str, Any]) -> int:
        waiting = self.store.queue(meta["hospital"], "waiting")
        ahead = [i for i in waiting if i["pk"] != meta["pk"] and str(i.get("queued_at")) < str(meta.get("queued_at"))]
        return len(ahead)

    def poll(self, actor: Actor | None, session: str, after: int) -> PollAnswer:
        conv = conversation_of(session)
        meta = self.store.session(conv)
        if meta is None:
            raise NotFound("会话不存在或已过期，请重新开始", code="SESSION_NOT_FOUND")
        if meta.get("patient") and (actor is None or actor.id != meta["patient"]):
            raise Forbidden("这个会话属于已登录的患者，请先登录", code="SESSION_FORBIDDEN")
        items = self.store.messages(conv, after)
        messages = self._decrypt(conv, items)
        if messages:
            self.audit.record(
                actor=actor or Actor(kind="patient", id=f"session-{conv[:12]}"),
                action="assistant.messages.read",
                resource=f"assistant.conversation:{conv}",
                patient_ref=meta.get("patient_ref"),
                details={"count": len(messages), "after": after},
            )
        waiting = self._position(meta) if meta["status"] == "waiting" else None
        return PollAnswer(messages=messages, handoff=Handoff(status=meta["status"], waiting=waiting))

    def _decrypt(self, conv: str, items: list[dict[str, Any]]) -> list[Message]:
        out = []
        for item in items:
            seq = int(item["sk"].removeprefix("m#"))
            out.append(
                Message(
                    seq=seq,
                    role=item["role"],
                    text=self.cipher.decrypt(item["text"], _context(conv, seq)),
                    at=item["at"],
                    links=[Link.model_validate(link) for link in item.get("links") or []],
                )
            )
        return out

    # -- the agent desk ---------------------------------------------------------------------------

    def queue(self, actor: Actor) -> DeskQueueAnswer:
        hospital = self._hospital(actor)
        items = [*self.store.queue(hospital, "waiting"), *self.store.queue(hospital, "agent")]
        return DeskQueueAnswer(
            items=[
                QueueItem(
                    conversation=i["pk"],
                    status=i["status"],
                    reason=i.get("reason") or "explicit",
                    queued_at=i.get("queued_at") or "",
                    agent=i.get("agent"),
                    turns=int(i.get("seq") or 0),
                    guesses=[Guess.model_validate(g) for g in i.get("guesses") or []],
                )
                for i in items
            ]
        )

    @staticmethod
    def _hospital(actor: Actor) -> str:
        if not actor.org:
            raise Forbidden("this staff token names no hospital", code="HOSPITAL_REQUIRED")
        return actor.org

    def _meta_for_staff(self, actor: Actor, conv: str) -> dict[str, Any]:
        import re

        if not re.fullmatch(CONVERSATION.strip("^$"), conv):
            raise NotFound("没有这个会话", code="CONVERSATION_NOT_FOUND")
        meta = self.store.session(conv)
        if meta is None or meta.get("hospital") != self._hospital(actor):
            raise NotFound("没有这个会话", code="CONVERSATION_NOT_FOUND")
        return dict(meta)

    def transcript(self, actor: Actor, conv: str, *, meta: dict[str, Any] | None = None) -> Transcript:
        meta = meta or self._meta_for_staff(actor, conv)
        items = self.store.messages(conv, 0, limit=500)
        messages = self._decrypt(conv, items)
        self.audit.record(
            actor=actor,
            action="assistant.transcript.read",
            resource=f"assistant.conversation:{conv}",
            patient_ref=meta.get("patient_ref"),
            details={"messages": len(messages)},
        )
        understander = self.knowledge.understander(meta["hospital"])
        return Transcript(
            conversation=conv,
            status=meta["status"],
            reason=meta.get("reason"),
            agent=meta.get("agent"),
            messages=messages,
            guesses=[Guess.model_validate(g) for g in meta.get("guesses") or []],
            suggestions=self._suggestions(understander, items, messages),
        )

    @staticmethod
    def _suggestions(
        understander: Understander, items: list[dict[str, Any]], messages: list[Message]
    ) -> list[Suggestion]:
        """Up to three entries for the agent's reply: those the bot answered with, newest first (what the
        conversation is about, follow-ups included), then matches of what the patient asked, leaving out
        the handoff request and emergencies themselves."""
        found: list[tuple[str, float]] = []
        for item in reversed(items):
            source = str(item.get("source") or "")
            if item.get("role") == "bot" and source.startswith("kb:"):
                found.append((source.removeprefix("kb:").split("@", 1)[0], 1.0))
        for m in reversed([m for m in messages if m.role == "patient"][-4:]):
            if not (EMERGENCY.search(plain(m.text)) or HANDOFF.search(plain(m.text))):
                found.extend((c.entry_id, round(c.coverage, 3)) for c in understander.rank(redact(m.text), k=3))
        suggestions: list[Suggestion] = []
        for entry_id, confidence in found:
            entry = understander.entries.get(entry_id)
            if entry is None or entry_id in ("human", "faq.emergency") or entry_id in {s.entry for s in suggestions}:
                continue
            suggestions.append(
                Suggestion(entry=entry_id, question=entry.question, answer=entry.answer, confidence=confidence)
            )
            if len(suggestions) == 3:
                break
        return suggestions

    def take(self, actor: Actor, conv: str) -> Transcript:
        meta = self._meta_for_staff(actor, conv)
        if meta["status"] == "agent" and meta.get("agent") == actor.id:
            return self.transcript(actor, conv, meta=meta)
        if meta["status"] != "waiting":
            raise Conflict("这个会话不在排队中（已被接入或已结束）", code="CONVERSATION_NOT_WAITING")
        now = self.clock()
        version = int(meta["version"])
        meta.update(status="agent", agent=actor.id, queue=f"{meta['hospital']}#agent", version=version + 1)
        seq = int(meta["seq"]) + 1
        meta["seq"] = seq
        try:
            self.store.transact(
                [
                    self.store.put_session(meta, version),
                    self._message_put(conv, seq, "system", "人工客服已接入。", now, source="desk:take", agent=actor.id),
                ]
            )
        except TransactionCanceled:
            raise Conflict("会话刚刚被其他客服接入或有新消息，请刷新", code="CONVERSATION_CONTENDED") from None
        return self.transcript(actor, conv, meta=meta)

    def reply(self, actor: Actor, conv: str, text: str) -> Transcript:
        meta = self._meta_for_staff(actor, conv)
        if meta["status"] != "agent" or meta.get("agent") != actor.id:
            raise Conflict("请先接入这个会话再回复", code="CONVERSATION_NOT_TAKEN")
        body = _check_text(text)
        now = self.clock()
        version = int(meta["version"])
        seq = int(meta["seq"]) + 1
        meta.update(seq=seq, version=version + 1, updated_at=utc_iso(now))
        try:
            self.store.transact(
                [
                    self.store.put_session(meta, version),
                    self._message_put(conv, seq, "agent", body, now, source="desk:reply", agent=actor.id),
                ]
            )
        except TransactionCanceled:
            raise Conflict("会话刚有新消息，请重发", code="CONVERSATION_CONTENDED") from None
        return self.transcript(actor, conv, meta=meta)

    def close(self, actor: Actor, conv: str) -> Transcript:
        meta = self._meta_for_staff(actor, conv)
        if meta["status"] == "bot":
            raise Conflict("这个会话没有转人工", code="CONVERSATION_NOT_HANDED_OFF")
        if meta["status"] == "agent" and meta.get("agent") != actor.id:
            raise Conflict("这个会话由其他客服接待", code="CONVERSATION_NOT_TAKEN")
        now = self.clock()
        version = int(meta["version"])
        seq = int(meta["seq"]) + 1
        for key in ("queue", "queued_at", "agent", "reason", "guesses"):
            meta.pop(key, None)
        meta.update(status="bot", seq=seq, version=version + 1, low_streak=0, last_entry=None)
        try:
            self.store.transact(
                [
                    self.store.put_session(meta, version),
                    self._message_put(conv, seq, "system", CLOSED_TEXT, now, source="desk:close", agent=actor.id),
                ]
            )
        except TransactionCanceled:
            raise Conflict("会话刚有新消息，请重试", code="CONVERSATION_CONTENDED") from None
        return self.transcript(actor, conv, meta=meta)
