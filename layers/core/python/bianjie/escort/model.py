"""The words of accompanied visits (云陪诊): the invitation's state machine, scopes, the limits, and the
models at the HTTP edge.

An invitation (陪诊邀请) is made by a patient for one open visit and names one companion (陪诊人).
Its states::

    PENDING --phone code ok and invitation code ok--> ACTIVE --visit closed / end of visit day--> ENDED
    PENDING --5th wrong invitation code--> LOCKED
    PENDING --end of visit day--> EXPIRED
    PENDING | ACTIVE --patient revokes--> REVOKED

LOCKED, EXPIRED, REVOKED and ENDED are final. ``step`` is the whole machine: a pure function the
service applies inside a conditional write, so two writers never both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bianjie.kit.errors import AppError
from bianjie.kit.types import WHOLE


class Status(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    LOCKED = "locked"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ENDED = "ended"


FINAL = frozenset({Status.LOCKED, Status.EXPIRED, Status.REVOKED, Status.ENDED})
STATUS_LABELS = {
    Status.PENDING: "待加入",
    Status.ACTIVE: "陪诊中",
    Status.LOCKED: "已锁定",
    Status.EXPIRED: "已过期",
    Status.REVOKED: "已撤销",
    Status.ENDED: "已结束",
}

Event = Literal["join", "wrong_code", "expire", "revoke", "end"]

MAX_CODE_FAILURES = 5  # wrong invitation codes before the invitation locks
OTP_TTL = 300  # seconds a phone code is valid
OTP_TRIES = 3  # tries per phone code
OTP_RESEND_AFTER = 60  # seconds between two codes to one number
OTP_PER_HOUR = 5  # codes per number per hour
OTP_PER_DAY = 10  # codes per number per Beijing day
OTP_PER_ADDRESS_HOUR = 20  # codes asked from one address per hour (any number)
SESSION_TTL = 900  # seconds a companion session lives without a request (renewed by each one)
MAX_OPEN_INVITATIONS = 3  # pending or active invitations per visit


@dataclass(frozen=True)
class Machine:
    """The invitation's state and failure count."""

    status: Status
    failures: int = 0


class TransitionRefused(Exception):
    def __init__(self, status: Status, event: str) -> None:
        super().__init__(f"{event} is not possible from {status.value}")
        self.status = status
        self.event = event


def step(state: Machine, event: Event) -> Machine:
    """The next state; ``TransitionRefused`` when ``event`` cannot happen in ``state``."""
    s = state.status
    if event == "join" and s is Status.PENDING:
        return Machine(Status.ACTIVE, state.failures)
    if event == "wrong_code" and s is Status.PENDING:
        failures = state.failures + 1
        return Machine(Status.LOCKED if failures >= MAX_CODE_FAILURES else Status.PENDING, failures)
    if event == "expire" and s is Status.PENDING:
        return Machine(Status.EXPIRED, state.failures)
    if event == "revoke" and s in (Status.PENDING, Status.ACTIVE):
        return Machine(Status.REVOKED, state.failures)
    if event == "end" and s is Status.ACTIVE:
        return Machine(Status.ENDED, state.failures)
    raise TransitionRefused(s, event)


# -- refusals: one stable code each, with the Chinese message the pages show -----------------------


def refusal(code: str, status: int, message: str, **details: object) -> AppError:
    return AppError(message, code=code, status=status, details=details or None)


REFUSALS: dict[Status, tuple[str, int, str]] = {
    Status.ACTIVE: ("INVITATION_USED", 409, "该邀请已被使用，每个邀请只能加入一次"),
    Status.LOCKED: ("INVITATION_LOCKED", 423, "邀请码错误次数过多，该邀请已锁定，请联系患者重新邀请"),
    Status.EXPIRED: ("INVITATION_EXPIRED", 410, "该邀请已过期，请联系患者重新邀请"),
    Status.REVOKED: ("INVITATION_REVOKED", 410, "患者已撤销该邀请"),
    Status.ENDED: ("INVITATION_ENDED", 410, "本次陪诊已结束"),
}


def refused_for(status: Status) -> AppError:
    code, http, message = REFUSALS[status]
    return refusal(code, http, message)


# -- the HTTP edge ----------------------------------------------------------------------------------

Relation = Literal["spouse", "child", "parent", "sibling", "relative", "friend", "caregiver", "other"]
RELATION_LABELS = {
    "spouse": "配偶",
    "child": "子女",
    "parent": "父母",
    "sibling": "兄弟姐妹",
    "relative": "亲属",
    "friend": "朋友",
    "caregiver": "护工",
    "other": "其他",
}
PHONE = r"^1[3-9][0-9]{9}$"
HANDLE = r"^[A-Za-z0-9_-]{22}$"
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud over the phone
INVITE_CODE = r"^[2-9A-HJKMNP-Za-hjkmnp-z]{8}$"


class Scope(BaseModel):
    """What the companion may see beyond the visit's progress (always shown)."""

    model_config = ConfigDict(extra="forbid")

    reports: bool = Field(default=False, strict=True, description="检查检验报告")
    prescriptions: bool = Field(default=False, strict=True, description="处方")
    video: bool = Field(default=False, strict=True, description="加入互联网医院视频问诊")


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visit_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
    companion_name: str = Field(min_length=1, max_length=20, pattern=r"^[^\x00-\x1f\x7f<>]+$")
    companion_phone: str = Field(pattern=PHONE, description="mainland mobile number, 11 digits")
    relation: Relation
    scope: Scope = Field(default_factory=Scope)
    send_sms: bool = Field(default=True, strict=True, description="send the link to the companion by SMS")


class Invitation(BaseModel):
    """An invitation as its patient sees it (no secrets: those are in ``InviteAnswer`` once)."""

    invitation_id: str
    visit_id: str
    status: Status
    status_label: str
    companion_name: str = Field(description="masked, e.g. 李*")
    companion_phone: str = Field(description="masked, e.g. 138****5678")
    relation: Relation
    scope: Scope
    failures: Annotated[int, WHOLE] = 0
    created_at: str
    expires_at: str
    joined_at: str | None = None
    last_seen_at: str | None = None
    ended_at: str | None = None
    in_room: bool = Field(default=False, description="an active session was used in the last 15 minutes")


class InviteAnswer(BaseModel):
    invitation: Invitation
    link: str = Field(description="the join link; its handle is single use and stored only as an HMAC")
    invitation_code: str = Field(description="邀请码: pass it to the companion by another channel")
    qr_svg: str = Field(description="the link as a QR code, SVG")
    qr_png_base64: str = Field(description="the link as a QR code, PNG, base64")
    sms_sent: bool


class CompanionList(BaseModel):
    visit_id: str
    invitations: list[Invitation]


class HandleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: str = Field(pattern=HANDLE, description="the handle in the join link's fragment")


class InvitationPreview(BaseModel):
    """What the join page shows before any factor is proven: who invites, for which department."""

    companion_name: str = Field(description="masked")
    relation: Relation
    hospital: str
    department: str | None = None
    expires_at: str


class OtpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: str = Field(pattern=HANDLE)
    phone: str = Field(pattern=PHONE)


class OtpAnswer(BaseModel):
    """The same answer whether or not the number was invited."""

    accepted: bool = True
    resend_after_s: Annotated[int, WHOLE] = OTP_RESEND_AFTER
    valid_for_s: Annotated[int, WHOLE] = OTP_TTL


class JoinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: str = Field(pattern=HANDLE)
    phone: str = Field(pattern=PHONE)
    otp: str = Field(pattern=r"^[0-9]{6}$", description="the SMS code")
    invitation_code: str = Field(pattern=INVITE_CODE, description="邀请码 (case does not matter)")


class JoinAnswer(BaseModel):
    session: str = Field(description="send it as X-Escort-Session; lives 15 minutes, renewed by each request")
    expires_in: Annotated[int, WHOLE]


class Notice(BaseModel):
    at: str
    text: str


class RoomItem(BaseModel):
    label: str | None = None
    ready_at: str | None = None
    place: str | None = None


class NextStep(BaseModel):
    action: str | None = None
    title: str | None = None
    place: str | None = None
    place_poi: str | None = None
    nav_link: str | None = Field(default=None, description="indoor navigation, when that service is deployed")


class Room(BaseModel):
    """陪诊室: only what the grant allows."""

    invitation_id: str
    relation: Relation
    hospital: str
    department: str | None = None
    state: str | None = None
    state_label: str | None = None
    queue_position: Annotated[int, WHOLE] | None = None
    next: NextStep
    notices: list[Notice]
    scope: Scope
    reports: list[RoomItem] | None = Field(default=None, description="only when the patient shared reports")
    prescriptions: list[RoomItem] | None = Field(default=None, description="only when shared")
    video_allowed: bool
    session_expires_in: Annotated[int, WHOLE]
    updated_at: str | None = None


class InvitationAnswer(BaseModel):
    invitation: Invitation


class EscortOutboxQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200)


class EscortOutboxAnswer(BaseModel):
    """What the local SMS stand-in recorded (text as the phone would show it)."""

    messages: list[dict[str, object]]
