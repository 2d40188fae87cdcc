"""escort's use cases: invite, preview, phone code, join, the room, the patient's list, revoke, consent,
and guide's progress events in.

Secrets: the link's handle (128 bits), the invitation code (8 characters, 40 bits), the phone codes and
the session secrets are stored only as HMAC-SM3 tags (``Secrets``); the companion's phone is a blind
index (for matching) plus SM4 ciphertext (for sending), the name SM4 only. None of them is logged.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from hmac import compare_digest
from typing import Any, Protocol

from bianjie.contracts.guide import GuideVisitProgressedV1
from bianjie.escort import qr
from bianjie.escort.consent import consent_resource
from bianjie.escort.model import (
    CODE_ALPHABET,
    MAX_OPEN_INVITATIONS,
    OTP_PER_ADDRESS_HOUR,
    OTP_PER_DAY,
    OTP_PER_HOUR,
    OTP_RESEND_AFTER,
    OTP_TRIES,
    OTP_TTL,
    RELATION_LABELS,
    SESSION_TTL,
    STATUS_LABELS,
    CompanionList,
    Event,
    HandleRequest,
    Invitation,
    InvitationAnswer,
    InvitationPreview,
    InviteAnswer,
    InviteRequest,
    JoinAnswer,
    JoinRequest,
    Machine,
    NextStep,
    Notice,
    OtpAnswer,
    OtpRequest,
    Room,
    RoomItem,
    Scope,
    Status,
    TransitionRefused,
    refusal,
    refused_for,
    step,
)
from bianjie.escort.store import Contended, EscortStore, LimitReached
from bianjie.kit.actor import Actor, Origin
from bianjie.kit.documents.port import Cond, ConditionFailed, TransactionCanceled
from bianjie.kit.idempotency import Answer
from bianjie.kit.masking import mask_name, mask_phone
from bianjie.kit.timefmt import BEIJING, beijing_day, utc_iso

SMS_INVITE = "SMS_ESCORT_INVITE"
SMS_OTP = "SMS_ESCORT_OTP"
NOTICES_SHOWN = 20


class Cipher(Protocol):
    def encrypt(self, plaintext: str, context: str) -> str: ...

    def decrypt(self, token: str, context: str) -> str: ...


class Index(Protocol):
    def digest(self, value: str, kind: str) -> str: ...


class Audit(Protocol):
    def record(self, **kwargs: Any) -> Any: ...


class SmsSender(Protocol):
    def send(self, phone: str, template: str, params: dict[str, str], out_id: str) -> bool:
        """True when the provider accepted the message."""
        ...


class Secrets(Protocol):
    def tag(self, kind: str, value: str) -> str:
        """HMAC-SM3 of ``value`` for ``kind`` (hex): how handles, codes and sessions are stored."""
        ...


def _now_iso(ts: float) -> str:
    return utc_iso(ts)


def end_of_day(day: str) -> float:
    """The last second of a Beijing calendar day, as epoch seconds."""
    start = datetime.fromisoformat(day).replace(tzinfo=BEIJING)
    return (start + timedelta(days=1)).timestamp() - 1


def invitation_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def effective(inv: dict[str, Any], now: float) -> Status:
    """The status as of ``now``: a pending invitation past its end is expired, an active one ended."""
    status = Status(inv["status"])
    if now >= float(inv["valid_until"]):
        if status is Status.PENDING:
            return Status.EXPIRED
        if status is Status.ACTIVE:
            return Status.ENDED
    return status


class EscortService:
    def __init__(
        self,
        store: EscortStore,
        cipher: Cipher,
        index: Index,
        secrets_: Secrets,
        sms: SmsSender,
        audit: Audit,
        clock: Callable[[], float] = time.time,
        nav_base: str | None = None,
        join_path: str = "/pages/escort-join",
    ) -> None:
        self.join_path = join_path
        self.store = store
        self.cipher = cipher
        self.index = index
        self.secrets = secrets_
        self.sms = sms
        self.audit = audit
        self.clock = clock
        self.nav_base = nav_base

    # -- helpers ---------------------------------------------------------------------------------

    def _inv(self, invitation_id: str) -> dict[str, Any] | None:
        return self.store.get(f"inv#{invitation_id}", "inv")

    def _by_handle(self, handle: str) -> dict[str, Any]:
        pointer = self.store.get(f"handle#{self.secrets.tag('handle', handle)}", "handle")
        inv = self._inv(str(pointer["invitation_id"])) if pointer else None
        if inv is None:
            raise refusal("INVITATION_NOT_FOUND", 404, "邀请链接无效，请确认链接完整或联系患者重新邀请")
        return inv

    def _view(self, inv: dict[str, Any], now: float) -> Invitation:
        iid = inv["invitation_id"]
        name = self.cipher.decrypt(inv["companion_name"], f"escort/companion_name/{iid}")
        phone = self.cipher.decrypt(inv["companion_phone"], f"escort/companion_phone/{iid}")
        status = effective(inv, now)
        session = self.store.get(f"sess#{inv['session_tag']}", "sess") if inv.get("session_tag") else None
        in_room = bool(status is Status.ACTIVE and session and float(session["expires_at"]) > now)
        last_seen = session.get("last_seen_at") if session else None
        return Invitation(
            invitation_id=iid,
            visit_id=inv["inv_visit"],
            status=status,
            status_label=STATUS_LABELS[status],
            companion_name=mask_name(name) or "*",
            companion_phone=mask_phone(phone),
            relation=inv["relation"],
            scope=Scope.model_validate(inv["scope"]),
            failures=int(inv.get("failures", 0)),
            created_at=inv["created_at"],
            expires_at=_now_iso(float(inv["valid_until"])),
            joined_at=inv.get("joined_at"),
            last_seen_at=last_seen,
            ended_at=inv.get("ended_at"),
            in_room=in_room,
        )

    def _move(self, invitation_id: str, event: Event, **extra: Any) -> dict[str, Any]:
        """Apply ``event`` with a conditional write; ``TransitionRefused`` if it cannot happen now."""
        now = self.clock()

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise refusal("INVITATION_NOT_FOUND", 404, "未找到该陪诊邀请")
            status = effective(current, now)
            nxt = step(Machine(status, int(current.get("failures", 0))), event)
            return {**current, **extra, "status": nxt.status.value, "failures": nxt.failures}

        item = self.store.swap(f"inv#{invitation_id}", "inv", change)
        assert item is not None
        return item

    def _own(self, actor: Actor, invitation_id: str) -> dict[str, Any]:
        inv = self._inv(invitation_id)
        if inv is None or inv["patient_id"] != actor.id:
            raise refusal("INVITATION_NOT_FOUND", 404, "未找到该陪诊邀请")
        return inv

    # -- the patient -----------------------------------------------------------------------------

    def invite(self, actor: Actor, body: InviteRequest, base_url: str) -> Answer[InviteAnswer]:
        now = self.clock()
        visit = self.store.get(f"visit#{body.visit_id}", "view")
        if visit is None:
            raise refusal("VISIT_NOT_FOUND", 404, "未找到该就诊记录，请从有效的门诊或互联网医院就诊发起陪诊")
        if visit.get("patient_id") != actor.id:
            raise refusal("VISIT_NOT_YOURS", 403, "只能为本人的就诊发起陪诊邀请")
        day = visit.get("visit_day") or beijing_day(now)
        valid_until = end_of_day(day)
        if not visit.get("is_open") or now >= valid_until:
            raise refusal("VISIT_CLOSED", 409, "该次就诊已结束，无法再邀请陪诊人")
        others = self.store.invitations_of_visit(body.visit_id)
        open_count = sum(effective(i, now) in (Status.PENDING, Status.ACTIVE) for i in others)
        if open_count >= MAX_OPEN_INVITATIONS:
            raise refusal(
                "TOO_MANY_COMPANIONS",
                422,
                f"每次就诊最多同时邀请{MAX_OPEN_INVITATIONS}位陪诊人，请先撤销不需要的邀请",
                limit=MAX_OPEN_INVITATIONS,
            )
        iid = uuid.uuid4().hex
        handle = secrets.token_urlsafe(16)
        code = invitation_code()
        item = {
            "pk": f"inv#{iid}",
            "sk": "inv",
            "invitation_id": iid,
            "inv_visit": body.visit_id,
            "created_at": utc_iso(now, "milliseconds"),
            "patient_id": actor.id,
            "patient_ref": actor.patient_ref,
            "hospital": visit.get("hospital"),
            "department": visit.get("department"),
            "companion_name": self.cipher.encrypt(body.companion_name, f"escort/companion_name/{iid}"),
            "companion_phone": self.cipher.encrypt(body.companion_phone, f"escort/companion_phone/{iid}"),
            "phone_ref": self.index.digest(body.companion_phone, "phone"),
            "relation": body.relation,
            "scope": body.scope.model_dump(),
            "status": Status.PENDING.value,
            "failures": 0,
            "handle_tag": self.secrets.tag("handle", handle),
            "code_tag": self.secrets.tag("code", code),
            "valid_until": int(valid_until),
            "expires_at": int(valid_until) + 90 * 86400,  # kept 90 days after its end, then TTL
            "version": 1,
        }
        pointer = {
            "pk": f"handle#{item['handle_tag']}",
            "sk": "handle",
            "invitation_id": iid,
            "expires_at": item["expires_at"],
        }
        self.store.transact([self.store.op(item, Cond.absent()), self.store.op(pointer, Cond.absent())])
        link = f"{base_url.rstrip('/')}{self.join_path}#h={handle}"
        sent = False
        if body.send_sms:
            sent = self.sms.send(body.companion_phone, SMS_INVITE, {"link": link}, f"escort#invite#{iid}")
        self.audit.record(
            actor=actor,
            action="escort.invite",
            resource=f"escort.invitation:{iid}",
            patient_ref=actor.patient_ref,
            details={"visit": body.visit_id, "scope": body.scope.model_dump(), "sms": sent},
        )
        answer = InviteAnswer(
            invitation=self._view(item, now),
            link=link,
            invitation_code=code,
            qr_svg=qr.svg(link),
            qr_png_base64=base64.b64encode(qr.png(link)).decode(),
            sms_sent=sent,
        )
        return Answer(answer, status=201)

    def companions(self, actor: Actor, visit_id: str) -> CompanionList:
        now = self.clock()
        visit = self.store.get(f"visit#{visit_id}", "view")
        if visit is None:
            raise refusal("VISIT_NOT_FOUND", 404, "未找到该就诊记录")
        if visit.get("patient_id") != actor.id:
            raise refusal("VISIT_NOT_YOURS", 403, "只能查看本人就诊的陪诊人")
        items = [i for i in self.store.invitations_of_visit(visit_id) if i.get("patient_id") == actor.id]
        self.audit.record(
            actor=actor,
            action="escort.companions.read",
            resource=f"escort.visit:{visit_id}",
            patient_ref=actor.patient_ref,
        )
        return CompanionList(visit_id=visit_id, invitations=[self._view(i, now) for i in items])

    def revoke(self, actor: Actor, invitation_id: str) -> InvitationAnswer:
        self._own(actor, invitation_id)
        now = self.clock()
        try:
            item = self._move(invitation_id, "revoke", ended_at=_now_iso(now))
        except TransitionRefused as exc:
            raise refusal(
                "INVITATION_NOT_REVOCABLE",
                409,
                f"该邀请当前状态为“{STATUS_LABELS[exc.status]}”，无需撤销",
                current=exc.status.value,
            ) from None
        # the room's next request re-reads the invitation and is refused with GRANT_REVOKED
        self.audit.record(
            actor=actor,
            action="escort.revoke",
            resource=f"escort.invitation:{invitation_id}",
            patient_ref=actor.patient_ref,
        )
        return InvitationAnswer(invitation=self._view(item, now))

    def consent(self, actor: Actor, invitation_id: str) -> dict[str, Any]:
        inv = self._own(actor, invitation_id)
        now = self.clock()
        name = self.cipher.decrypt(inv["companion_name"], f"escort/companion_name/{invitation_id}")
        phone = self.cipher.decrypt(inv["companion_phone"], f"escort/companion_phone/{invitation_id}")
        self.audit.record(
            actor=actor,
            action="escort.consent.export",
            resource=f"escort.invitation:{invitation_id}",
            patient_ref=actor.patient_ref,
        )
        return consent_resource(inv, effective(inv, now), name=name, phone=phone)

    # -- the companion, before the factors -------------------------------------------------------

    def preview(self, origin: Origin, body: HandleRequest) -> InvitationPreview:
        inv = self._by_handle(body.handle)
        status = effective(inv, self.clock())
        if status is not Status.PENDING:
            raise refused_for(status)
        name = self.cipher.decrypt(inv["companion_name"], f"escort/companion_name/{inv['invitation_id']}")
        return InvitationPreview(
            companion_name=mask_name(name) or "*",
            relation=inv["relation"],
            hospital=str(inv.get("hospital") or ""),
            department=inv.get("department"),
            expires_at=_now_iso(float(inv["valid_until"])),
        )

    def request_otp(self, origin: Origin, body: OtpRequest) -> Answer[OtpAnswer]:
        """Sends a phone code when ``phone`` is the invited number; answers the same either way."""
        now = self.clock()
        inv = self._by_handle(body.handle)
        status = effective(inv, now)
        if status is not Status.PENDING:
            raise refused_for(status)
        phone_ref = self.index.digest(body.phone, "phone")
        self._limit_address(origin, now)
        self._limit_phone(phone_ref, now)
        invited = compare_digest(phone_ref, str(inv["phone_ref"]))
        code = f"{secrets.randbelow(10**6):06d}"
        iid = inv["invitation_id"]
        self.store.put(
            {
                "pk": f"otp#{iid}#{phone_ref}",
                "sk": "otp",
                # an uninvited number gets a record too (of a code nobody is sent), so a wrong code
                # reads the same for both
                "code_tag": self.secrets.tag("otp", code if invited else secrets.token_hex(16)),
                "valid_until": int(now + OTP_TTL),
                "tries": 0,
                "used": False,
                "expires_at": int(now + OTP_TTL + 3600),
                "version": int(now * 1000),
            }
        )
        if invited:
            self.sms.send(body.phone, SMS_OTP, {"code": code}, f"escort#otp#{iid}")
        self.audit.record(
            actor=Actor(kind="system", id="escort.join", source_ip=origin.source_ip, request_id=origin.request_id),
            action="escort.otp.request",
            resource=f"escort.invitation:{iid}",
            patient_ref=inv.get("patient_ref"),
            details={"matched": invited},
        )
        return Answer(OtpAnswer(), status=202)

    def _limit_address(self, origin: Origin, now: float) -> None:
        if not origin.source_ip:
            return
        hour = int(now // 3600)
        try:
            self.store.bump(
                f"rate#ip#{self.secrets.tag('ip', origin.source_ip)}",
                f"h#{hour}",
                OTP_PER_ADDRESS_HOUR,
                (hour + 2) * 3600,
            )
        except LimitReached:
            wait = int((hour + 1) * 3600 - now) + 1
            raise self._rate_limited(wait) from None

    def _limit_phone(self, phone_ref: str, now: float) -> None:
        pk = f"rate#phone#{phone_ref}"

        def cooldown(current: dict[str, Any] | None) -> dict[str, Any]:
            last = float(current.get("last", 0)) if current else 0.0
            if now - last < OTP_RESEND_AFTER:
                raise LimitReached(int(OTP_RESEND_AFTER - (now - last)) + 1)
            return {"last": now, "expires_at": int(now + 2 * OTP_RESEND_AFTER)}

        try:
            self.store.swap(pk, "last", cooldown)
        except LimitReached as exc:
            raise self._rate_limited(exc.count) from None
        hour = int(now // 3600)
        try:
            self.store.bump(pk, f"h#{hour}", OTP_PER_HOUR, (hour + 2) * 3600)
        except LimitReached:
            raise self._rate_limited(int((hour + 1) * 3600 - now) + 1) from None
        day = beijing_day(now)
        try:
            self.store.bump(pk, f"d#{day}", OTP_PER_DAY, int(end_of_day(day)) + 3600)
        except LimitReached:
            raise self._rate_limited(int(end_of_day(day) - now) + 1) from None

    @staticmethod
    def _rate_limited(wait: int) -> Exception:
        minutes = (wait + 59) // 60
        text = f"{wait}秒" if wait < 120 else f"{minutes}分钟"
        error = refusal("OTP_RATE_LIMITED", 429, f"获取验证码过于频繁，请{text}后再试", retry_after_s=wait)
        error.headers = {"Retry-After": str(wait)}
        return error

    # -- join ------------------------------------------------------------------------------------

    def join(self, origin: Origin, body: JoinRequest) -> Answer[JoinAnswer]:
        now = self.clock()
        inv = self._by_handle(body.handle)
        iid = inv["invitation_id"]
        status = effective(inv, now)
        if status is not Status.PENDING:
            raise refused_for(status)
        phone_ref = self.index.digest(body.phone, "phone")
        otp_pk = f"otp#{iid}#{phone_ref}"
        otp = self._check_otp(otp_pk, body.otp, now)
        system = Actor(kind="system", id="escort.join", source_ip=origin.source_ip, request_id=origin.request_id)
        if not compare_digest(self.secrets.tag("code", body.invitation_code.upper()), str(inv["code_tag"])):
            self._wrong_code(iid, system, inv)
        session = secrets.token_urlsafe(24)
        session_tag = self.secrets.tag("session", session)
        joined = {
            **inv,
            "status": Status.ACTIVE.value,
            "joined_at": _now_iso(now),
            "session_tag": session_tag,
            "version": int(inv["version"]) + 1,
        }
        used_otp = {**otp, "used": True, "version": int(otp["version"]) + 1}
        session_item = {
            "pk": f"sess#{session_tag}",
            "sk": "sess",
            "invitation_id": iid,
            "last_seen_at": _now_iso(now),
            "expires_at": int(now + SESSION_TTL),
        }
        try:
            self.store.transact(
                [
                    self.store.op(joined, Cond.eq("version", inv["version"]) & Cond.eq("status", "pending")),
                    self.store.op(used_otp, Cond.eq("version", otp["version"]) & Cond.eq("used", False)),
                    self.store.op(session_item, Cond.absent()),
                ]
            )
        except (TransactionCanceled, ConditionFailed):
            fresh = self._inv(iid) or inv
            status = effective(fresh, now)
            if status is not Status.PENDING:
                raise refused_for(status) from None
            raise refusal("OTP_EXPIRED", 422, "验证码已失效，请重新获取") from None
        self.audit.record(
            actor=Actor(kind="companion", id=iid, org=inv.get("hospital"), source_ip=origin.source_ip),
            action="escort.join",
            resource=f"escort.invitation:{iid}",
            patient_ref=inv.get("patient_ref"),
            request_id=origin.request_id,
        )
        return Answer(JoinAnswer(session=session, expires_in=SESSION_TTL), status=201)

    def _check_otp(self, pk: str, code: str, now: float) -> dict[str, Any]:
        current = self.store.get(pk, "otp")
        if current is None or current.get("used") or now >= float(current["valid_until"]):
            raise refusal("OTP_EXPIRED", 422, "验证码已失效，请重新获取")
        if compare_digest(self.secrets.tag("otp", code), str(current["code_tag"])):
            if int(current.get("tries", 0)) >= OTP_TRIES:
                raise refusal("OTP_TRIES_EXHAUSTED", 422, "验证码错误次数过多，请重新获取")
            return current
        left: list[int] = []

        def count(item: dict[str, Any] | None) -> dict[str, Any]:
            if item is None or item.get("used") or now >= float(item["valid_until"]):
                raise refusal("OTP_EXPIRED", 422, "验证码已失效，请重新获取")
            tries = int(item.get("tries", 0))
            if tries >= OTP_TRIES:
                raise refusal("OTP_TRIES_EXHAUSTED", 422, "验证码错误次数过多，请重新获取")
            left[:] = [OTP_TRIES - tries - 1]
            return {**item, "tries": tries + 1}

        self.store.swap(pk, "otp", count)
        if left and left[0] == 0:
            raise refusal("OTP_TRIES_EXHAUSTED", 422, "验证码错误次数过多，请重新获取", tries_left=0)
        raise refusal("OTP_WRONG", 422, f"验证码错误，还可尝试{left[0]}次", tries_left=left[0])

    def _wrong_code(self, iid: str, system: Actor, inv: dict[str, Any]) -> None:
        try:
            item = self._move(iid, "wrong_code")
        except TransitionRefused as exc:
            raise refused_for(exc.status) from None
        except Contended:
            raise refusal("INVITATION_BUSY", 503, "系统繁忙，请稍后重试") from None
        failures = int(item["failures"])
        if item["status"] == Status.LOCKED.value:
            self.audit.record(
                actor=system,
                action="escort.invitation.locked",
                resource=f"escort.invitation:{iid}",
                patient_ref=inv.get("patient_ref"),
                outcome="failure",
                details={"failures": failures},
            )
            raise refused_for(Status.LOCKED)
        left = max(0, 5 - failures)
        raise refusal("INVITATION_CODE_WRONG", 422, f"邀请码错误，还可尝试{left}次", tries_left=left)

    # -- the room --------------------------------------------------------------------------------

    def companion(self, origin: Origin, session: str | None) -> tuple[Actor, dict[str, Any], dict[str, Any]]:
        """The grant behind ``session``, checked now: the companion, the invitation and the session."""
        now = self.clock()
        invalid = refusal("SESSION_INVALID", 401, "陪诊会话已失效，请重新打开邀请链接加入")
        if not session or len(session) > 64:
            raise invalid
        tag = self.secrets.tag("session", session)
        record = self.store.get(f"sess#{tag}", "sess")
        inv = self._inv(str(record["invitation_id"])) if record else None
        if record is None or inv is None or float(record["expires_at"]) <= now:
            if inv is not None and inv.get("status") == Status.REVOKED.value:
                raise refusal("GRANT_REVOKED", 403, "患者已撤销您的陪诊权限")
            raise invalid
        status = effective(inv, now)
        if status is Status.REVOKED:
            raise refusal("GRANT_REVOKED", 403, "患者已撤销您的陪诊权限")
        if status is Status.ENDED:
            if inv["status"] == Status.ACTIVE.value:
                self._end(inv["invitation_id"], now)
            raise refusal("GRANT_ENDED", 410, "本次陪诊已结束")
        if status is not Status.ACTIVE or inv.get("session_tag") != tag:
            raise invalid
        actor = Actor(
            kind="companion",
            id=inv["invitation_id"],
            org=inv.get("hospital"),
            source_ip=origin.source_ip,
            request_id=origin.request_id,
        )
        return actor, inv, record

    def room(self, origin: Origin, session: str | None) -> Room:
        actor, inv, record = self.companion(origin, session)
        now = self.clock()
        if float(record["expires_at"]) - now < SESSION_TTL - 30:
            # renewed while active; never past the grant's end. Conditional, so a revoke that deleted
            # the session is not undone by a view in flight
            renewed = {**record, "last_seen_at": _now_iso(now), "expires_at": int(now + SESSION_TTL)}
            try:
                self.store.put(renewed, Cond.eq("invitation_id", inv["invitation_id"]))
                record = renewed
            except ConditionFailed:
                raise refusal("GRANT_REVOKED", 403, "患者已撤销您的陪诊权限") from None
        visit_id = inv["inv_visit"]
        visit = self.store.get(f"visit#{visit_id}", "view") or {}
        scope = Scope.model_validate(inv["scope"])
        notices = [
            Notice(at=n["at"], text=n["text"]) for n in self.store.latest(f"visit#{visit_id}", "n#", NOTICES_SHOWN)
        ]
        poi = visit.get("next_place_poi")
        room = Room(
            invitation_id=inv["invitation_id"],
            relation=inv["relation"],
            hospital=str(inv.get("hospital") or ""),
            department=visit.get("department") or inv.get("department"),
            state=visit.get("state"),
            state_label=visit.get("state_label"),
            queue_position=visit.get("queue_position"),
            next=NextStep(
                action=visit.get("next_action"),
                title=visit.get("next_title"),
                place=visit.get("next_place_label"),
                place_poi=poi,
                nav_link=f"{self.nav_base.rstrip('/')}?poi={poi}" if self.nav_base and poi else None,
            ),
            notices=notices,
            scope=scope,
            reports=[RoomItem(**_item(r)) for r in visit.get("reports") or []] if scope.reports else None,
            prescriptions=[RoomItem(**_item(r)) for r in visit.get("prescriptions") or []]
            if scope.prescriptions
            else None,
            video_allowed=scope.video and visit.get("visit_kind") == "internet",
            session_expires_in=max(0, int(float(record["expires_at"]) - now)),
            updated_at=visit.get("updated_at"),
        )
        self.audit.record(
            actor=actor,
            action="escort.room.view",
            resource=f"escort.visit:{visit_id}",
            patient_ref=inv.get("patient_ref"),
            details={"scope": scope.model_dump()},
        )
        return room

    def _end(self, invitation_id: str, now: float) -> None:
        try:
            self._move(invitation_id, "end", ended_at=_now_iso(now))
        except (TransitionRefused, Contended):
            return

    # -- operators ------------------------------------------------------------------------------

    def standin_outbox(self, actor: Actor, limit: int) -> list[dict[str, Any]]:
        """What the local SMS stand-in delivered today (empty on any other stage: nothing writes it)."""
        items = self.store.latest(f"standin-sms#{beijing_day(self.clock())}", None, limit)
        self.audit.record(actor=actor, action="escort.outbox.read", resource="escort.outbox:today")
        return [{k: i[k] for k in ("at", "to", "template", "out_id", "text") if k in i} for i in items]

    # -- guide's events --------------------------------------------------------------------------

    def on_progress(self, event: GuideVisitProgressedV1, at: str) -> str:
        """Keeps the newest progress of the visit, adds a notice, and ends the visit's grants when it
        closes. Returns "applied", "stale" (an older or repeated seq) or "ended"."""
        pk = f"visit#{event.visit_id}"
        applied: list[bool] = []

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is not None and int(current.get("seq", 0)) >= event.seq:
                return None
            if current is not None and current.get("patient_id") and current["patient_id"] != event.patient_id:
                return None  # a visit never changes patient; ignore a contradicting event
            applied.append(True)
            data = event.model_dump(mode="json")
            return {**data, "updated_at": at, "expires_at": int(self.clock()) + 30 * 86400}

        self.store.swap(pk, "view", change)
        if not applied:
            return "stale"
        text = _notice_text(event)
        if text:
            self.store.put(
                {
                    "pk": pk,
                    "sk": f"n#{event.seq:08d}",
                    "at": at,
                    "text": text,
                    "expires_at": int(self.clock()) + 7 * 86400,
                }
            )
        if event.is_open:
            return "applied"
        now = self.clock()
        for inv in self.store.invitations_of_visit(event.visit_id):
            status = effective(inv, now)
            event_name: Event | None = (
                "end" if status is Status.ACTIVE else "expire" if status is Status.PENDING else None
            )
            if event_name is not None:
                try:
                    self._move(inv["invitation_id"], event_name, ended_at=_now_iso(now))
                except (TransitionRefused, Contended):
                    continue
        return "ended"


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    return {"label": raw.get("label"), "ready_at": raw.get("ready_at"), "place": raw.get("place_label")}


def _notice_text(event: GuideVisitProgressedV1) -> str | None:
    if not event.state_label:
        return None
    text = event.state_label
    if event.queue_position is not None and event.state == "waiting":
        text += f"，前面还有{event.queue_position}人" if event.queue_position else "，已叫号，请前往就诊"
    if event.next_title:
        text += f"；下一步：{event.next_title}"
        if event.next_place_label:
            text += f"（{event.next_place_label}）"
    return text


def relation_label(relation: str) -> str:
    return RELATION_LABELS.get(relation, relation)
