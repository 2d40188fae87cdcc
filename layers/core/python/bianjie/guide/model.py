"""The words of butler guidance (管家式指引): visit states, visit events, the folded visit view.

A visit (就诊) moves through states as hospital systems and other bianjie services report what
happened. Events carry the hospital's clock (``occurred_at``); the view is a pure function of the set
of events received, so arrival order and duplicates do not matter (see ``timeline.fold``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bianjie.kit.timefmt import BEIJING
from bianjie.kit.types import WHOLE, IsoDatetime

CST = BEIJING  # guide's name for Beijing time


class State(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    WAITING = "waiting"
    CONSULTED = "consulted"
    PAYMENT_PENDING = "payment_pending"
    PAID = "paid"
    EXAM_CHECKED_IN = "exam_checked_in"
    REPORT_READY = "report_ready"
    MEDICINE_READY = "medicine_ready"
    DONE = "done"
    CANCELLED = "cancelled"


STATE_LABELS: dict[State, str] = {
    State.BOOKED: "已预约",
    State.CHECKED_IN: "已签到",
    State.WAITING: "候诊中",
    State.CONSULTED: "已就诊",
    State.PAYMENT_PENDING: "待缴费",
    State.PAID: "已缴费",
    State.EXAM_CHECKED_IN: "检查已签到",
    State.REPORT_READY: "报告已出",
    State.MEDICINE_READY: "待取药",
    State.DONE: "就诊完成",
    State.CANCELLED: "已取消",
}

EventType = Literal[
    "visit.booked",
    "visit.checked_in",
    "queue.updated",
    "visit.consulted",
    "payment.pending",
    "payment.paid",
    "exam.checked_in",
    "report.ready",
    "medicine.ready",
    "medicine.collected",
    "preconsult.completed",
    "survey.completed",
    "visit.done",
    "visit.cancelled",
]

# The state an event moves the visit to; None for events that only change facts.
EVENT_STATE: dict[str, State | None] = {
    "visit.booked": State.BOOKED,
    "visit.checked_in": State.CHECKED_IN,
    "queue.updated": State.WAITING,
    "visit.consulted": State.CONSULTED,
    "payment.pending": State.PAYMENT_PENDING,
    "payment.paid": State.PAID,
    "exam.checked_in": State.EXAM_CHECKED_IN,
    "report.ready": State.REPORT_READY,
    "medicine.ready": State.MEDICINE_READY,
    "medicine.collected": None,
    "preconsult.completed": None,
    "survey.completed": None,
    "visit.done": State.DONE,
    "visit.cancelled": State.CANCELLED,
}

# Events at the same instant apply in the order a visit naturally goes (a HIS often stamps a
# batch with one time): ties break by this rank, then by event id.
EVENT_RANK: dict[str, int] = {t: i for i, t in enumerate(EVENT_STATE)}

# Fields each event type must carry in ``data`` (beyond visit_id).
REQUIRED_DATA: dict[str, tuple[str, ...]] = {
    "visit.booked": ("appointment_at", "department"),
    "queue.updated": ("queue_position",),
    "payment.pending": ("order_id", "amount_fen"),
    "payment.paid": ("order_id",),
    "exam.checked_in": ("exam_id",),
    "report.ready": ("report_id",),
    "medicine.ready": ("rx_id",),
    "medicine.collected": ("rx_id",),
}

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
_POI = r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,127}$"


class Contact(BaseModel):
    """How to reach the patient. Stored SM4-encrypted; never kept in the event record or logged."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{6,15}$")
    wechat_openid: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]{6,64}$")
    name: str | None = Field(default=None, min_length=1, max_length=20)


class EventData(BaseModel):
    """What an event says beyond its type. Which fields are required depends on the type."""

    model_config = ConfigDict(extra="forbid")

    department: str | None = Field(default=None, max_length=40, description="科室, e.g. 心内科")
    doctor: str | None = Field(default=None, max_length=20)
    appointment_at: IsoDatetime | None = None
    place_poi: str | None = Field(default=None, pattern=_POI, description="navigation POI id of the place")
    place_name: str | None = Field(default=None, max_length=40, description="e.g. 门诊楼3楼心内科候诊区")
    preconsult_required: bool | None = Field(default=None, strict=True)
    queue_position: Annotated[int, Field(ge=0, le=9999), WHOLE] | None = Field(
        default=None, description="patients ahead; 0 = called"
    )
    order_id: str | None = Field(default=None, pattern=_ID)
    amount_fen: Annotated[int, Field(ge=0, le=10**9), WHOLE] | None = Field(
        default=None, description="amount due in fen (分)"
    )
    due_at: IsoDatetime | None = None
    exam_id: str | None = Field(default=None, pattern=_ID)
    exam_name: str | None = Field(default=None, max_length=40)
    report_id: str | None = Field(default=None, pattern=_ID)
    report_name: str | None = Field(default=None, max_length=40)
    rx_id: str | None = Field(default=None, pattern=_ID)
    external_pharmacy: bool | None = Field(
        default=None, strict=True, description="released to an outside pharmacy (外配)"
    )
    contact: Contact | None = Field(default=None, description="visit.booked only; stored encrypted")


def _type_rules(schema: dict[str, Any]) -> None:
    """What ``VisitEvent._required_fields`` enforces, said in the JSON Schema (from REQUIRED_DATA itself),
    so the OpenAPI document tells partners which data each type needs."""
    rules: list[dict[str, Any]] = []
    for kind in sorted({*REQUIRED_DATA, "visit.booked"}):
        fields = REQUIRED_DATA.get(kind, ())
        then: dict[str, Any] = {
            "required": ["data"],
            "properties": {
                "data": {"required": list(fields), "properties": {f: {"not": {"type": "null"}} for f in fields}}
            },
        }
        if kind == "visit.booked":
            then["required"].append("patient_id")
            then["properties"]["patient_id"] = {"type": "string"}
        rules.append({"if": {"required": ["type"], "properties": {"type": {"const": kind}}}, "then": then})
    rules.append(
        {
            "if": {"required": ["type"], "properties": {"type": {"not": {"const": "visit.booked"}}}},
            "then": {"properties": {"data": {"properties": {"contact": {"type": "null"}}}}},
        }
    )
    schema["allOf"] = rules


class VisitEvent(BaseModel):
    """One thing that happened in a visit, as a hospital system (or a bianjie service) reports it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_type_rules)

    event_id: str = Field(pattern=r"^[\x21-\x7e]{1,128}$", description="unique per sender; retries reuse it")
    type: EventType
    visit_id: str = Field(pattern=_ID)
    patient_id: str | None = Field(default=None, pattern=_ID, description="required on visit.booked")
    occurred_at: IsoDatetime = Field(description="the hospital's time of the happening, with offset")
    data: EventData = Field(default_factory=EventData)

    @model_validator(mode="after")
    def _required_fields(self) -> VisitEvent:
        missing = [f for f in REQUIRED_DATA.get(self.type, ()) if getattr(self.data, f) is None]
        if self.type == "visit.booked" and not self.patient_id:
            missing.insert(0, "patient_id")
        if missing:
            raise ValueError(f"{self.type} needs {', '.join(missing)}")
        if self.data.contact is not None and self.type != "visit.booked":
            raise ValueError("contact is accepted on visit.booked only")
        return self

    def stored(self, source: str) -> dict[str, Any]:
        """The event as kept in the timeline: no contact details (those go to the encrypted contact record)."""
        body = self.model_dump(mode="json", exclude_none=True)
        body.get("data", {}).pop("contact", None)
        body["source"] = source
        return body


# -- the folded view ----------------------------------------------------------------------------


class Order(BaseModel):
    order_id: str
    amount_fen: int
    paid: bool = False
    due_at: datetime | None = None
    place_poi: str | None = None
    place_name: str | None = None


class Exam(BaseModel):
    exam_id: str
    name: str | None = None
    place_poi: str | None = None
    place_name: str | None = None
    checked_in: bool = False


class Report(BaseModel):
    report_id: str
    name: str | None = None
    at: datetime


class Medicine(BaseModel):
    rx_id: str
    place_poi: str | None = None
    place_name: str | None = None
    external: bool = False
    collected: bool = False
    ready_at: datetime | None = None


class Step(BaseModel):
    state: State
    label: str
    at: datetime
    event_id: str
    place_poi: str | None = None
    place_name: str | None = None


class VisitView(BaseModel):
    visit_id: str
    patient_id: str | None = None
    state: State | None = None
    state_at: datetime | None = None
    department: str | None = None
    doctor: str | None = None
    appointment_at: datetime | None = None
    place_poi: str | None = None
    place_name: str | None = None
    queue_position: int | None = None
    preconsult_required: bool = False
    preconsult_done: bool = False
    survey_done: bool = False
    done_at: datetime | None = None
    orders: dict[str, Order] = Field(default_factory=dict)
    exams: dict[str, Exam] = Field(default_factory=dict)
    reports: dict[str, Report] = Field(default_factory=dict)
    medicines: dict[str, Medicine] = Field(default_factory=dict)
    history: list[Step] = Field(default_factory=list)
    event_count: int = 0

    @property
    def pending_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if not o.paid]

    @property
    def open(self) -> bool:
        return self.state not in (State.DONE, State.CANCELLED, None)


class NextTodo(BaseModel):
    """What the patient should do next, and where (a POI the navigation service routes to)."""

    action: str = Field(
        description="check_in | preconsult | wait | pay | exam | report | medicine | survey | invoice | none"
    )
    title: str
    detail: str | None = None
    deadline: datetime | None = None
    place_poi: str | None = None
    place_name: str | None = None
    action_link: str | None = None


class TodoCard(NextTodo):
    """A home-page to-do card (首页待办)."""

    card_id: str
    visit_id: str
    priority: int = Field(description="lower shows first")
