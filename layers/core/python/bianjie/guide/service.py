"""Guide's use cases: take in visit events, keep the board, plan and dispatch notifications, run schedules.

Ports it is given: the guide store (documents), a notification queue (one queue per channel), a field
cipher and blind index for contact details, an audit log, and a clock.

Delivery guarantees: an event is claimed by (source, event id), then stored in the visit's timeline
(rewritten whenever the claim is met again); planning runs after; the claim is marked ``planned``
last. A retry of an event whose first attempt stopped before that mark plans again, and the
notification dedup key (kind, visit, step) keeps that second plan from sending twice. Senders claim a
notification before sending (``delivery.py``), so a queue message delivered twice sends once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, Field

from bianjie.guide.kinds import RULES, Kind
from bianjie.guide.model import (
    CST,
    STATE_LABELS,
    Contact,
    NextTodo,
    State,
    Step,
    TodoCard,
    VisitEvent,
    VisitView,
)
from bianjie.guide.planner import (
    Intent,
    decide,
    plan_day_before,
    plan_event,
    plan_preconsult,
    plan_soon,
    plan_survey,
)
from bianjie.guide.prefs import Preferences
from bianjie.guide.progress import progress_event
from bianjie.guide.store import GuideStore
from bianjie.guide.templates import TemplateBook
from bianjie.guide.timeline import fold, next_todo, todos
from bianjie.kit.actor import Actor
from bianjie.kit.crypto import sm3
from bianjie.kit.documents.port import ConditionFailed, TransactionCanceled
from bianjie.kit.errors import AppError, NotFound
from bianjie.kit.logging import get_logger
from bianjie.kit.outbox import Outbox
from bianjie.kit.timefmt import utc_iso as kit_utc_iso

log = get_logger("bianjie.guide")
# Event types that can call for a message (planner.plan_event); a visit.booked also re-plans events that
# arrived before it. The others' claims are final when stored.
PLANNING_TYPES = frozenset({"visit.booked", "payment.pending", "report.ready", "medicine.ready"})
MAX_CREDITS = 50  # a patient tapping "allow" many times does not bank unlimited messages


class NotificationQueue(Protocol):
    def send(self, channel: str, key: str) -> None: ...


class Cipher(Protocol):
    def encrypt(self, plaintext: str, context: str) -> str: ...

    def decrypt(self, token: str, context: str) -> str: ...


class Index(Protocol):
    def digest(self, value: str, kind: str) -> str: ...


class Audit(Protocol):
    def record(self, **kwargs: Any) -> Any: ...


# -- answers ------------------------------------------------------------------------------------------


class EventResult(BaseModel):
    event_id: str
    visit_id: str
    status: str = Field(description="accepted | duplicate | rejected")
    code: str | None = Field(default=None, description="why it was rejected")
    state: State | None = None
    notifications: list[str] = Field(default_factory=list, description="kinds planned for this event")


class VisitSummary(BaseModel):
    visit_id: str
    department: str | None
    appointment_at: datetime | None
    state: State | None
    state_label: str | None
    next_todo: NextTodo


class Dashboard(BaseModel):
    patient_id: str
    cards: list[TodoCard] = Field(description="home-page to-do cards (首页待办), most pressing first")
    visits: list[VisitSummary]


class VisitBoard(BaseModel):
    """The visit dynamics board (就诊动态看板)."""

    visit_id: str
    state: State | None
    state_label: str | None
    department: str | None
    doctor: str | None
    appointment_at: datetime | None
    queue_position: int | None
    next_todo: NextTodo
    todos: list[TodoCard]
    history: list[Step]


class QuotaLedger(BaseModel):
    template_id: str
    kind: Kind
    credits: int
    banned: bool


def utc_iso(at: datetime) -> str:
    """Guide's stored instants carry microseconds: its deferred-notification index sorts by them as text."""
    return kit_utc_iso(at, "microseconds")


def view_document(view: VisitView) -> dict[str, Any]:
    doc = view.model_dump(mode="json")
    if view.appointment_at:
        doc["appt_utc"] = utc_iso(view.appointment_at)
        doc["appt_day"] = view.appointment_at.astimezone(CST).date().isoformat()
    return doc


def _same_view(item: dict[str, Any], document: dict[str, Any]) -> bool:
    """The stored view already says what ``document`` says (a duplicate's refold): nothing to announce."""
    return bool(item.get("view") == document)


def load_view(doc: dict[str, Any]) -> VisitView:
    return VisitView.model_validate({k: v for k, v in doc.items() if k not in ("appt_utc", "appt_day")})


def _event_from_stored(body: dict[str, Any]) -> VisitEvent:
    return VisitEvent.model_validate({k: v for k, v in body.items() if k != "source"})


# -- contacts and preferences -------------------------------------------------------------------------


class Contacts:
    """Contact details, SM4-encrypted per patient, with flags the planner may read without decrypting."""

    def __init__(self, store: GuideStore, cipher: Cipher, index: Index, clock: Callable[[], float]) -> None:
        self.store = store
        self.cipher = cipher
        self.index = index
        self.clock = clock

    def _ctx(self, patient_id: str, name: str) -> str:
        return f"guide/{name}/{patient_id}"

    def save(self, patient_id: str, contact: Contact) -> None:
        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            item = dict(current or {})
            if contact.phone:
                item["phone"] = self.cipher.encrypt(contact.phone, self._ctx(patient_id, "phone"))
                item["phone_index"] = self.index.digest(contact.phone, "phone")
                item["has_phone"] = True
            if contact.wechat_openid:
                item["openid"] = self.cipher.encrypt(contact.wechat_openid, self._ctx(patient_id, "openid"))
                item["has_openid"] = True
            if contact.name:
                item["name"] = self.cipher.encrypt(contact.name, self._ctx(patient_id, "name"))
            item["updated_at"] = int(self.clock())
            return item

        self.store.change_patient_item(patient_id, "contact", change)

    def flags(self, patient_id: str) -> tuple[bool, bool]:
        item = self.store.patient_item(patient_id, "contact") or {}
        return bool(item.get("has_openid")), bool(item.get("has_phone"))

    def reveal(self, patient_id: str) -> dict[str, str | None]:
        """Clear contact details, for a sender about to deliver. Never log the result."""
        item = self.store.patient_item(patient_id, "contact") or {}
        out: dict[str, str | None] = {"phone_index": item.get("phone_index")}
        for field, name in (("phone", "phone"), ("openid", "openid"), ("name", "name")):
            out[field] = self.cipher.decrypt(item[field], self._ctx(patient_id, name)) if item.get(field) else None
        return out


def load_preferences(store: GuideStore, patient_id: str) -> Preferences:
    item = store.patient_item(patient_id, "prefs")
    return Preferences.model_validate(item["prefs"]) if item else Preferences()


# -- the service --------------------------------------------------------------------------------------


def event_source(actor: Actor) -> str:
    """Where a visit event comes from: the partner's app id, or the producing service's source name
    (``bianjie.rx``) for a domain event. Partners own the visits they create; services only add to them."""
    return actor.id


def owns_visits(actor: Actor) -> bool:
    return actor.kind == "partner"


class GuideService:
    def __init__(
        self,
        store: GuideStore,
        queue: NotificationQueue,
        contacts: Contacts,
        audit: Audit,
        templates: TemplateBook | None = None,
        clock: Callable[[], float] = time.time,
        events: Outbox | None = None,
    ) -> None:
        self.events = events  # guide's outbox: guide.visit_progressed with each change of a view
        self.store = store
        self.queue = queue
        self.contacts = contacts
        self.audit = audit
        self.templates = templates or TemplateBook()
        self.clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- events -----------------------------------------------------------------------------------

    def ingest(self, actor: Actor, events: list[VisitEvent]) -> list[EventResult]:
        """``actor``: the hospital system that posted the events, or ``Actor.system("bianjie.<service>")``
        for another service's domain event."""
        results = [self.ingest_one(actor, e) for e in events]
        visits = sorted({r.visit_id for r in results})
        self.audit.record(
            actor=actor,
            action="guide.events.ingest",
            resource=f"guide.visit:{visits[0] if len(visits) == 1 else 'batch'}",
            details={
                "visits": visits[:100],
                "accepted": sum(r.status == "accepted" for r in results),
                "duplicates": sum(r.status == "duplicate" for r in results),
                "rejected": sum(r.status == "rejected" for r in results),
            },
        )
        return results

    def ingest_one(self, actor: Actor, event: VisitEvent) -> EventResult:
        result = EventResult(event_id=event.event_id, visit_id=event.visit_id, status="accepted")
        source, owner_call = event_source(actor), owns_visits(actor)
        existing = self.store.view_item(event.visit_id)
        owner = existing.get("owner") if existing else None
        if owner_call and owner and owner != source:
            result.status, result.code = "rejected", "VISIT_OF_ANOTHER_PARTNER"
            return result
        body = event.stored(source)
        body_hash = sm3(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hex()
        quiet = event.type not in PLANNING_TYPES
        status, claim = self.store.claim_event(
            source, event.event_id, event.visit_id, body_hash, body, self.clock(), planned=quiet
        )
        if status == "seen":
            assert claim is not None
            if claim.get("hash") != body_hash or claim.get("visit_id") != event.visit_id:
                result.status, result.code = "rejected", "EVENT_ID_REUSED"
                return result
            self.store.store_event(source, event.event_id, event.visit_id, body, self.clock())
            if claim.get("planned"):
                result.status = "duplicate"
                # fold again in case the first attempt stopped between storing the event and the view
                result.state = self.refold(event.visit_id, None, existing).state
                return result
            # the first attempt stopped before planning finished: finish it now
        if event.data.contact and event.patient_id:
            self.contacts.save(event.patient_id, event.data.contact)
        knew_patient = bool(existing and existing.get("patient_id"))
        view = self.refold(event.visit_id, source if owner_call else None, existing)
        result.state = view.state
        now = self.now()
        for intent in plan_event(event, view, now):
            if self.dispatch(intent, resend=status == "seen"):
                result.notifications.append(intent.kind.value)
        if not knew_patient and view.patient_id:
            # events that came before the booking could not be addressed to anyone; they can now
            for earlier in self.store.events(event.visit_id):
                if earlier.get("event_id") != event.event_id or earlier.get("source") != source:
                    for intent in plan_event(_event_from_stored(earlier), view, now):
                        self.dispatch(intent)
        if not quiet:
            self.store.mark_planned(source, event.event_id, event.visit_id, body_hash, self.clock())
        return result

    def refold(self, visit_id: str, owner: str | None, item: dict[str, Any] | None = None) -> VisitView:
        """Folds every stored event of the visit and writes the view. ``item``: the view as just read."""
        for attempt in range(20):
            if attempt:
                item = self.store.view_item(visit_id)
            version = int(item["version"]) if item else 0
            events = [_event_from_stored(e) for e in self.store.events(visit_id)]
            view = fold(visit_id, events)
            holder = (item or {}).get("owner") or owner or ""
            document = view_document(view)
            try:
                if self.events is None or (item is not None and _same_view(item, document)):
                    self.store.put_view(visit_id, holder, document, version)
                else:
                    # the change and its announcement commit together (guide.visit_progressed)
                    intent = self.events.event(
                        progress_event(view, version + 1, holder),
                        event_id=f"{visit_id}-{version + 1}",
                        subject=visit_id,
                    )
                    self.events.commit([self.store.view_put(visit_id, holder, document, version)], [intent])
                return view
            except (ConditionFailed, TransactionCanceled):
                time.sleep(0.003)  # another event of this visit landed; fold again with it
        raise AppError("the visit is busy; retry the event", code="VISIT_CONTENDED", status=503)

    # -- notifications ----------------------------------------------------------------------------

    def dispatch(self, intent: Intent, *, resend: bool = False, now: datetime | None = None) -> bool:
        """Records the notification once per dedup key and queues it; False when the key was taken."""
        now = now or self.now()
        has_openid, has_phone = self.contacts.flags(intent.patient_id)
        prefs = load_preferences(self.store, intent.patient_id)
        decision = decide(intent.kind, prefs, has_openid=has_openid, has_phone=has_phone, now=now)
        record: dict[str, Any] = {
            "pk": intent.key,
            "kind": intent.kind.value,
            "visit_id": intent.visit_id,
            "patient_id": intent.patient_id,
            "step": intent.step,
            "params": intent.params,
            "status": decision.status,
            "channel": decision.channel,
            "reason": decision.reason,
            "attempts": 0,
            "created_at": utc_iso(now),
            "history": [
                {"at": utc_iso(now), "status": decision.status, "channel": decision.channel, "reason": decision.reason}
            ],
        }
        if decision.not_before:
            record["deferred"] = "1"
            record["not_before"] = utc_iso(decision.not_before)
        if not self.store.create_notification(record):
            if resend:
                existing = self.store.notification(intent.key)
                if existing and existing.get("status") == "queued" and existing.get("channel"):
                    self.queue.send(existing["channel"], intent.key)
            return False
        if decision.status == "queued" and decision.channel:
            self.queue.send(decision.channel, intent.key)
        return True

    def release_deferred(self, now: datetime | None = None) -> int:
        released = 0
        now = now or self.now()
        for record in list(self.store.deferred_due(utc_iso(now))):
            record = {**record, "status": "queued", "reason": None}
            record["history"] = [
                *record.get("history", []),
                {
                    "at": utc_iso(now),
                    "status": "queued",
                    "channel": record.get("channel"),
                    "reason": "QUIET_HOURS_OVER",
                },
            ]
            try:
                self.store.update_notification(record)
            except ConditionFailed:
                continue  # another run released it
            self.queue.send(record["channel"], record["pk"])
            released += 1
        return released

    # -- schedules --------------------------------------------------------------------------------

    def run_schedule(self, name: str, at: datetime | None = None) -> dict[str, int]:
        """Runs a schedule as of ``at`` (the scheduled event's time; default now)."""
        now = at or self.now()
        today = now.astimezone(CST).date()
        planners: dict[str, tuple[Callable[[VisitView, datetime], list[Intent]], list[int]]] = {
            "day_before": (plan_day_before, [1]),
            "soon": (plan_soon, [0, 1]),
            "preconsult": (plan_preconsult, [0, 1]),
            "survey": (plan_survey, [0, -1, -2, -3]),
        }
        if name == "release":
            return {"released": self.release_deferred(now)}
        planner, offsets = planners[name]
        seen = planned = 0
        for offset in offsets:
            day = (today + timedelta(days=offset)).isoformat()
            for item in self.store.views_on_day(day):
                seen += 1
                for intent in planner(load_view(item["view"]), now):
                    planned += self.dispatch(intent, now=now)
        log.info("guide schedule ran", extra={"schedule": name, "visits": seen, "planned": planned})
        return {"visits": seen, "planned": planned}

    # -- patients ---------------------------------------------------------------------------------

    def _audit_patient(self, patient_id: str, action: str, resource: str, request_id: str | None) -> None:
        self.audit.record(
            actor=f"patient:{patient_id}",
            action=action,
            resource=resource,
            patient_ref=self.contacts.index.digest(patient_id, "patient_id"),
            request_id=request_id,
        )

    def dashboard(self, patient_id: str, request_id: str | None = None) -> Dashboard:
        views = [load_view(i["view"]) for i in self.store.views_of_patient(patient_id)]
        self._audit_patient(patient_id, "guide.dashboard.read", f"guide.patient:{patient_id}", request_id)
        cards: list[TodoCard] = []
        for view in views:
            cards.extend(todos(view))
        cards.sort(key=lambda c: (c.priority, c.deadline or datetime.max.replace(tzinfo=UTC)))
        return Dashboard(
            patient_id=patient_id,
            cards=cards,
            visits=[
                VisitSummary(
                    visit_id=v.visit_id,
                    department=v.department,
                    appointment_at=v.appointment_at,
                    state=v.state,
                    state_label=STATE_LABELS[v.state] if v.state else None,
                    next_todo=next_todo(v),
                )
                for v in views
            ],
        )

    def board(self, patient_id: str, visit_id: str, request_id: str | None = None) -> VisitBoard:
        item = self.store.view_item(visit_id)
        if item is None or item.get("patient_id") != patient_id:
            # the same answer for "not yours" and "no such visit": ids must not be probeable
            raise NotFound("no such visit for this patient", code="VISIT_NOT_FOUND")
        self._audit_patient(patient_id, "guide.visit.read", f"guide.visit:{visit_id}", request_id)
        view = load_view(item["view"])
        return VisitBoard(
            visit_id=visit_id,
            state=view.state,
            state_label=STATE_LABELS[view.state] if view.state else None,
            department=view.department,
            doctor=view.doctor,
            appointment_at=view.appointment_at,
            queue_position=view.queue_position,
            next_todo=next_todo(view),
            todos=todos(view),
            history=view.history,
        )

    def preferences(self, patient_id: str) -> Preferences:
        return load_preferences(self.store, patient_id)

    def set_preferences(self, patient_id: str, prefs: Preferences) -> Preferences:
        self.store.put_patient_item(
            patient_id, "prefs", {"prefs": prefs.model_dump(mode="json"), "updated_at": int(self.clock())}
        )
        return prefs

    def record_subscriptions(self, patient_id: str, results: dict[str, str]) -> list[QuotaLedger]:
        """What the WeChat subscribe popup answered (wx.requestSubscribeMessage): template id -> accept,
        reject, ban or filter. Each accept of a one-time template allows one message."""
        ledgers = []
        for template_id, answer in results.items():
            kind = self.templates.kind_of_wechat_template(template_id)
            if kind is None:
                # schema-valid, but not a template this deployment has configured: a rule, hence 422
                raise AppError(f"unknown template id {template_id}", code="TEMPLATE_UNKNOWN", status=422)

            def change(current: dict[str, Any] | None, answer: str = answer) -> dict[str, Any]:
                item = dict(current or {"credits": 0, "banned": False})
                if answer == "accept":
                    item["credits"] = min(MAX_CREDITS, int(item.get("credits", 0)) + 1)
                    item["banned"] = False
                elif answer == "ban":
                    item["credits"], item["banned"] = 0, True
                item["last_answer"] = answer
                item["updated_at"] = int(self.clock())
                return item

            item = self.store.change_patient_item(patient_id, f"quota#{template_id}", change)
            assert item is not None
            ledgers.append(
                QuotaLedger(
                    template_id=template_id, kind=kind, credits=int(item["credits"]), banned=bool(item.get("banned"))
                )
            )
        return ledgers

    def quota(self, patient_id: str) -> list[QuotaLedger]:
        out = []
        for kind, tpl in self.templates.wechat.items():
            item = self.store.patient_item(patient_id, f"quota#{tpl.template_id}") or {}
            out.append(
                QuotaLedger(
                    template_id=tpl.template_id,
                    kind=kind,
                    credits=int(item.get("credits", 0)),
                    banned=bool(item.get("banned")),
                )
            )
        return out

    # -- operators --------------------------------------------------------------------------------

    def outbox(self, *, visit_id: str | None, day: str | None, limit: int = 100) -> list[dict[str, Any]]:
        if visit_id:
            return self.store.outbox_of_visit(visit_id, limit)
        return self.store.outbox_of_day(day or self.now().astimezone(CST).date().isoformat(), limit)

    def notifications(self, visit_id: str) -> list[dict[str, Any]]:
        return self.store.notifications_of_visit(visit_id)


def kinds_table() -> Iterable[tuple[Kind, str, bool, bool]]:
    return ((k, r.label, r.urgent, r.sms) for k, r in RULES.items())
