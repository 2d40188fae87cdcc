"""The consultation use cases. Pure Python: storage, scope, crypto, audit, rooms, signing are given.

Who may do what (``Actor``, staff tokens; ``org`` = the doctor's institution app id, ``id`` = staff code):
- a doctor (role ``doctor``) with an active credential: apply; invite doctors in scope; as applicant
  record consent, add attachments, submit, cancel, end the meeting; as invitee accept or decline; as
  participant join the room, write, sign and amend their report; read the cases they are part of;
- platform staff (role ``consult-admin``): agreements and credentials.

A doctor who is not part of a case gets 404 (CONSULT_NOT_FOUND), never 403, so case ids tell nothing.
A participant whose reason to take part (the agreement recorded at invitation) lapsed gets
AGREEMENT_INACTIVE until the case is completed; completed cases stay readable to their participants.
Every read of a case and every change is audited (actor, action, case, patient blind index).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from bianjie.consult import reports, rooms, states
from bianjie.consult.models import (
    STATUS_ZH,
    AgreementRequest,
    AgreementUpdate,
    ApplyRequest,
    AttachmentRequest,
    AttachmentUpload,
    AttachmentView,
    CancelRequest,
    ColleagueList,
    ColleagueView,
    ConsultationList,
    ConsultationSummary,
    ConsultationView,
    ConsultConsentRequest,
    ConsultStatus,
    CredentialList,
    CredentialRequest,
    CredentialView,
    DoctorRef,
    Location,
    ParticipantView,
    RecordsQuery,
    ReportDraft,
    ReportVersion,
    ReportView,
    RespondRequest,
    RoomJoinAnswer,
    ScopeAgreementList,
    ScopeAgreementView,
    VerifyAnswer,
    VisitRecord,
    WebhookAnswer,
)
from bianjie.consult.repo import ConsultRepository, who
from bianjie.consult.scope import SAME_ORG, Scope, ScopeRepository, agreement_active, require_agreement
from bianjie.contracts import consult as contracts
from bianjie.kit.actor import Actor
from bianjie.kit.documents.port import Cond, Operation
from bianjie.kit.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from bianjie.kit.idempotency import Answer, Idempotency
from bianjie.kit.masking import mask_id, mask_name
from bianjie.kit.timefmt import utc_iso

T = TypeVar("T")
ATTEMPTS = 6  # a step on the caller's own part of a case is retried this often when the case moved
JOIN_OPENS_S = 30 * 60  # the room opens this long before the slot
UPLOAD_URL_TTL = 600
DOWNLOAD_URL_TTL = 300
MAX_ATTACHMENTS = 10
MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}
REJECT_ZH = {
    "TYPE_MISMATCH": "文件内容与声明的类型不符，请上传 PDF、JPEG 或 PNG 文件",
    "SIZE_MISMATCH": "上传的文件大小与申请时声明的不一致，请重新上传",
    "TOO_LARGE": "文件超过 20 MB，请压缩后重新上传",
    "INFECTED": "文件未通过病毒检查，已被删除，请检查后重新上传",
}


class Cipher(Protocol):
    def encrypt(self, plaintext: str, context: str) -> str: ...

    def decrypt(self, token: str, context: str) -> str: ...


class Index(Protocol):
    def digest(self, value: str, kind: str) -> str: ...


class Scanner(Protocol):
    def infected(self, data: bytes) -> bool: ...


class Objects(Protocol):
    def get(self, bucket: str, key: str) -> bytes: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def presigned_get(self, bucket: str, key: str, expires_in: int) -> str: ...

    def presigned_put(self, bucket: str, key: str, expires_in: int, content_type: str | None = None) -> str: ...


_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _valid_id(value: str) -> bool:
    """Ids of ours (cases, agreements, institutions, staff codes): a path holding anything else names
    nothing (and never reaches the audit log's resource field)."""
    return bool(_ID.fullmatch(value))


def _iso(ts: float) -> str:
    return utc_iso(ts, "seconds")


def _p_key(p: dict[str, Any]) -> str:
    return who(p["org"], p["doctor_code"])


def lifecycle_of(item: dict[str, Any]) -> states.Lifecycle:
    answers = {} if item["status"] == "draft" else {_p_key(p): p["answer"] for p in item["participants"]}
    return states.Lifecycle(
        status=item["status"],
        round=int(item.get("round", 0)),
        answers=answers,
        finals=frozenset(_p_key(p) for p in item["participants"] if p.get("final_version")),
        joined=bool(item.get("joined")),
        consent=item.get("consent") is not None,
    )


@dataclass
class ConsultService:
    repo: ConsultRepository
    scope_repo: ScopeRepository
    cipher: Cipher
    index: Index
    audit: Any
    outbox: Any
    idempotency: Idempotency
    objects: Objects
    bucket: str
    rooms: rooms.RoomTokens
    signer: reports.ReportSigner
    keys: reports.KeyRegistry
    scanner: Scanner
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def _retrying(self, fn: Callable[[], T]) -> T:
        """Runs a step that changes only the caller's own part of the case (an answer, a join time, a
        report) again when another such step moved the case meanwhile: two invitees accepting at once
        must both succeed. Transitions still cannot happen twice: each attempt re-reads the case and
        the state machine refuses what no longer applies."""
        for attempt in range(ATTEMPTS):
            try:
                return fn()
            except Conflict as exc:
                if exc.code != "CONSULT_CONCURRENT_UPDATE" or attempt == ATTEMPTS - 1:
                    raise
                self.sleep(random.uniform(0, 0.02 * 2**attempt))
        raise AssertionError("unreachable")

    @property
    def scope(self) -> Scope:
        return Scope(self.scope_repo)

    # ================================================================ who is calling

    def _doctor(self, actor: Actor) -> dict[str, Any]:
        cred = self.scope.active_credential(actor.org, actor.id)
        if cred is None:
            raise Forbidden("您的医师执业信息未在协作平台登记或已被暂停，请联系平台管理员", code="CREDENTIAL_INACTIVE")
        return cred

    @staticmethod
    def _admin(actor: Actor) -> None:
        if not actor.has_role("consult-admin"):
            raise Forbidden("需要协作平台管理员权限", code="NOT_CONSULT_ADMIN")

    # ================================================================ scope administration

    def _agreement_view(self, item: dict[str, Any]) -> ScopeAgreementView:
        return ScopeAgreementView(
            agreement_id=item["sk"],
            name=item["name"],
            parties=item["parties"],
            services=item["services"],
            departments=item.get("departments") or [],
            valid_from=item["valid_from"],
            valid_to=item["valid_to"],
            status=item["status"],
            active=agreement_active(item, self.clock()),
            version=int(item["version"]),
            updated_at=item["updated_at"],
            updated_by=item["updated_by"],
        )

    def _agreement_item(self, actor: Actor, agreement_id: str, req: AgreementRequest) -> dict[str, Any]:
        if req.valid_to < req.valid_from:
            raise ValidationFailed("协议结束日期不能早于开始日期", code="AGREEMENT_PERIOD_INVALID", status=422)
        if len(set(req.parties)) != len(req.parties):
            raise ValidationFailed("协议各方不能重复", code="AGREEMENT_PARTIES_DUPLICATE", status=422)
        return {
            "sk": agreement_id,
            "name": req.name,
            "parties": list(req.parties),
            "services": sorted(set(req.services)),
            "departments": list(req.departments),
            "valid_from": req.valid_from.isoformat(),
            "valid_to": req.valid_to.isoformat(),
            "status": req.status,
            "updated_at": _iso(self.clock()),
            "updated_by": actor.audit_name,
        }

    def create_agreement(self, actor: Actor, req: AgreementRequest) -> ScopeAgreementView:
        self._admin(actor)
        agreement_id = self.scope_repo.new_agreement_id()
        saved = self.scope_repo.save_agreement(self._agreement_item(actor, agreement_id, req), None)
        self._audit_admin(actor, "consult.agreement.create", f"consult.agreement:{agreement_id}", saved)
        return self._agreement_view(saved)

    def update_agreement(self, actor: Actor, agreement_id: str, req: AgreementUpdate) -> ScopeAgreementView:
        self._admin(actor)
        if not _valid_id(agreement_id):
            raise NotFound("没有这份协作协议", code="AGREEMENT_NOT_FOUND")
        previous = require_agreement(self.scope_repo, agreement_id)
        if int(previous["version"]) != req.version:
            raise Conflict("协议已被他人修改，请刷新后重试", code="AGREEMENT_CHANGED")
        saved = self.scope_repo.save_agreement(self._agreement_item(actor, agreement_id, req), previous)
        self._audit_admin(actor, "consult.agreement.update", f"consult.agreement:{agreement_id}", saved)
        return self._agreement_view(saved)

    def list_agreements(self, actor: Actor) -> ScopeAgreementList:
        self._admin(actor)
        return ScopeAgreementList(items=[self._agreement_view(a) for a in self.scope_repo.agreements()])

    def put_credential(self, actor: Actor, org: str, doctor_code: str, req: CredentialRequest) -> CredentialView:
        self._admin(actor)
        if not (_valid_id(org) and _valid_id(doctor_code)):
            raise NotFound("机构编码或工号格式不正确（只能包含字母、数字、-、_、.）", code="INVALID_IDENTIFIER")
        item = {
            "org": org,
            "doctor_code": doctor_code,
            **req.model_dump(),
            "updated_at": _iso(self.clock()),
            "updated_by": actor.audit_name,
        }
        self.scope_repo.save_credential(item)
        self._audit_admin(actor, "consult.credential.put", f"consult.credential:{org}/{doctor_code}", item)
        return CredentialView.model_validate(item)

    def list_credentials(self, actor: Actor, org: str) -> CredentialList:
        self._admin(actor)
        return CredentialList(items=[CredentialView.model_validate(c) for c in self.scope_repo.credentials(org)])

    def _audit_admin(self, actor: Actor, action: str, resource: str, item: dict[str, Any]) -> None:
        details = {k: item[k] for k in ("status", "version", "parties", "services", "valid_to") if k in item}
        self.audit.record(actor=actor, action=action, resource=resource, details=details)

    def colleagues(self, actor: Actor) -> ColleagueList:
        me = self._doctor(actor)
        items = [
            ColleagueView(
                org=c["org"],
                doctor_code=c["doctor_code"],
                name=c["name"],
                title=c["title"],
                department=c["department"],
                via=via,
            )
            for c, via in self.scope.colleagues(me["org"], self.clock())
            if not (c["org"] == me["org"] and c["doctor_code"] == me["doctor_code"])
        ]
        return ColleagueList(items=items)

    # ================================================================ apply

    def _invitees(self, me: dict[str, Any], invitees: Sequence[DoctorRef]) -> list[dict[str, Any]]:
        now = self.clock()
        keys = [who(d.org, d.doctor_code) for d in invitees]
        if len(set(keys)) != len(keys):
            raise ValidationFailed("参与会诊的医生有重复", code="DUPLICATE_INVITEE", status=422)
        if who(me["org"], me["doctor_code"]) in keys:
            raise ValidationFailed("申请医生不需要邀请自己", code="SELF_INVITE", status=422)
        out, problems = [], []
        for ref in invitees:
            cred = self.scope.credential(ref.org, ref.doctor_code)
            via = self.scope.via(me["org"], cred, now) if cred else None
            if cred is None or via is None:
                code = "NOT_IN_SCOPE"
                if cred is not None and cred.get("status") == "active" and self._inactive_agreement(me["org"], ref.org):
                    code = "AGREEMENT_INACTIVE"
                problems.append({"org": ref.org, "doctor_code": ref.doctor_code, "code": code})
                continue
            out.append(
                {
                    "org": cred["org"],
                    "doctor_code": cred["doctor_code"],
                    "name": cred["name"],
                    "title": cred["title"],
                    "department": cred["department"],
                    "via": via,
                    "answer": "needs_action",
                    "reason": "",
                    "joined_at": [],
                    "left_at": [],
                }
            )
        if problems:
            code = "AGREEMENT_INACTIVE" if all(p["code"] == "AGREEMENT_INACTIVE" for p in problems) else "NOT_IN_SCOPE"
            names = "、".join(f"{p['org']}/{p['doctor_code']}" for p in problems)
            message = (
                f"与以下医生所在机构的协作协议已过期或暂停：{names}"
                if code == "AGREEMENT_INACTIVE"
                else f"以下医生不在您机构的会诊协作范围内，无法邀请：{names}"
            )
            raise ValidationFailed(message, code=code, status=422, details=problems)
        return out

    def _inactive_agreement(self, a: str, b: str) -> bool:
        return any(
            b in ag["parties"] and "mdt" in ag["services"] and not agreement_active(ag, self.clock())
            for ag in self.scope_repo.agreements_of(a)
        )

    def _check_slot(self, req: ApplyRequest) -> float:
        start = req.start.timestamp()
        if start <= self.clock():
            raise ValidationFailed("会诊时间已过，请选择将来的时间", code="SLOT_IN_PAST", status=422)
        if start > self.clock() + 180 * 86400:
            raise ValidationFailed("会诊时间不能晚于 180 天之后", code="SLOT_TOO_FAR", status=422)
        if req.location.kind == "room" and not req.location.room.strip():
            raise ValidationFailed("线下会诊请填写会诊地点", code="LOCATION_REQUIRED", status=422)
        return start

    def apply(self, actor: Actor, req: ApplyRequest, key: str) -> Answer[ConsultStatus]:
        """Key: the ``Idempotency-Key`` header (per applicant): a repeated submission answers the first case."""
        me = self._doctor(actor)
        return self.idempotency.once(
            f"consult.apply.{who(me['org'], me['doctor_code'])}",
            key,
            req,
            lambda: self._apply(actor, me, req),
            model=ConsultStatus,
            current=lambda answer: self._status(self.repo.require(answer.consultation_id)),
        )

    def _apply(self, actor: Actor, me: dict[str, Any], req: ApplyRequest) -> ConsultStatus:
        start = self._check_slot(req)
        participants = self._invitees(me, req.invitees)
        now = self.clock()
        cid = "mdt-" + datetime.fromtimestamp(now, UTC).strftime("%Y%m%d") + "-" + secrets.token_hex(5)
        patient = req.patient
        item = {
            "consultation_id": cid,
            "status": "draft",
            "round": 0,
            "applicant": {
                "org": me["org"],
                "doctor_code": me["doctor_code"],
                "name": me["name"],
                "title": me["title"],
                "department": me["department"],
                "answer": "accepted",
                "joined_at": [],
                "left_at": [],
            },
            "participants": participants,
            "start": _iso(start),
            "duration_min": req.duration_min,
            "slot_end": int(start + req.duration_min * 60),
            "purpose": req.purpose,
            "location": req.location.model_dump(),
            "patient_ref": self.index.digest(patient.id_number, "id_number"),
            "patient_masked": mask_name(patient.name),
            "patient_id_masked": mask_id(patient.id_number),
            "patient_enc": self.cipher.encrypt(
                json.dumps(patient.model_dump(mode="json"), ensure_ascii=False), f"consult/patient/{cid}"
            ),
            "diagnosis_enc": self.cipher.encrypt(req.diagnosis, f"consult/diagnosis/{cid}"),
            "clinical_enc": self.cipher.encrypt(
                json.dumps(
                    {
                        "symptoms": req.symptoms,
                        "difficulties": req.difficulties,
                        "visits": [v.model_dump(mode="json") for v in req.visits],
                    },
                    ensure_ascii=False,
                ),
                f"consult/clinical/{cid}",
            ),
            "consent": None,
            "room": None,
            "joined": False,
            "submitted": False,
            "created_at": _iso(now),
            "history": [self._entry(now, "draft", actor, "apply")],
        }
        saved = self.repo.create(item)
        self._audit(actor, "consult.apply", saved)
        return self._status(saved)

    def record_consent(self, actor: Actor, cid: str, req: ConsultConsentRequest) -> ConsultStatus:
        item = self._as_applicant(actor, cid)
        lc = self._step(item, states.record_consent)
        consent = {**req.model_dump(), "recorded_at": _iso(self.clock()), "recorded_by": actor.audit_name}
        saved = self._move(item, lc, actor, "consent", {"consent": consent})
        return self._status(saved)

    def change_invitees(self, actor: Actor, cid: str, invitees: Sequence[DoctorRef]) -> ConsultStatus:
        """In draft (after every invitee declined): a new list of invitees."""
        item = self._as_applicant(actor, cid)
        states._expect(lifecycle_of(item), "draft")
        participants = self._invitees(self._doctor(actor), invitees)
        saved = self._move(item, lifecycle_of(item), actor, "invitees", {"participants": participants})
        return self._status(saved)

    def submit(self, actor: Actor, cid: str) -> ConsultStatus:
        item = self._as_applicant(actor, cid)
        now = self.clock()
        if item["slot_end"] - item["duration_min"] * 60 <= now:
            raise ValidationFailed("会诊时间已过，请重新申请", code="SLOT_IN_PAST", status=422)
        pending = [a for a in self.repo.children(cid, "att#") if a["status"] == "pending"]
        if pending:
            raise Conflict("还有附件正在检查，请稍候再提交", code="ATTACHMENTS_PENDING")
        # scope is checked again at submission: an agreement may have lapsed since the draft was written
        self._invitees(
            self._doctor(actor), [DoctorRef(org=p["org"], doctor_code=p["doctor_code"]) for p in item["participants"]]
        )
        lc = self._step(item, lambda lc: states.submit(lc, [_p_key(p) for p in item["participants"]]))
        room = item.get("room") or rooms.new_room_name()
        participants = [{**p, "answer": "needs_action", "reason": ""} for p in item["participants"]]
        also: list[Operation] = [] if item.get("room") else [self.repo.room_row(room, cid)]
        saved = self._move(
            item,
            lc,
            actor,
            "submit",
            {"participants": participants, "room": room, "submitted": True, "joined": False},
            also=also,
        )
        return self._status(saved)

    def cancel(self, actor: Actor, cid: str, req: CancelRequest) -> ConsultStatus:
        item = self._as_applicant(actor, cid)
        lc = self._step(item, states.cancel)
        saved = self._move(
            item, lc, actor, "cancel", {"cancel_reason": req.reason}, note=req.reason, reason="applicant"
        )
        return self._status(saved)

    # ================================================================ invitees

    def respond(self, actor: Actor, cid: str, req: RespondRequest) -> ConsultStatus:
        return self._retrying(lambda: self._respond(actor, cid, req))

    def _respond(self, actor: Actor, cid: str, req: RespondRequest) -> ConsultStatus:
        item, role = self._readable(actor, cid, audit=False)
        if role != "invitee":
            raise Forbidden("只有受邀医生可以答复会诊邀请", code="NOT_INVITED")
        me = who(actor.org or "", actor.id)
        accept = req.answer == "accept"
        lc = self._step(item, lambda lc: states.respond(lc, me, accept))
        participants = [
            {**p, "answer": "accepted" if accept else "declined", "reason": req.reason} if _p_key(p) == me else p
            for p in item["participants"]
        ]
        if lc.status == "draft":  # everyone declined: a new round, invitees' answers start over
            participants = [{**p, "answer": "declined"} for p in participants]
        saved = self._move(
            item, lc, actor, "accept" if accept else "decline", {"participants": participants}, note=req.reason
        )
        return self._status(saved)

    # ================================================================ the room

    def join(self, actor: Actor, cid: str) -> RoomJoinAnswer:
        return self._retrying(lambda: self._join(actor, cid))

    def _join(self, actor: Actor, cid: str) -> RoomJoinAnswer:
        item, role = self._readable(actor, cid, audit=False)
        now = self.clock()
        start = item["slot_end"] - item["duration_min"] * 60
        if now < start - JOIN_OPENS_S:
            raise Conflict("会诊室将在会诊开始前 30 分钟开放", code="ROOM_NOT_OPEN")
        if now > item["slot_end"] + rooms.GRACE_S:
            raise Conflict("会诊时段已结束", code="ROOM_CLOSED")
        me = who(actor.org or "", actor.id)
        lc = self._step(item, lambda lc: states.join(lc, me, applicant=role == "applicant"))
        changes = self._presence(item, me, "joined_at", now)
        changes["joined"] = True
        saved = self._move(item, lc, actor, "join", changes)
        person = item["applicant"] if role == "applicant" else next(p for p in item["participants"] if _p_key(p) == me)
        not_after = item["slot_end"] + rooms.GRACE_S
        token = self.rooms.mint(item["room"], me, f"{person['name']}（{person['title']}）", not_after)
        return RoomJoinAnswer(
            consultation_id=cid,
            room=item["room"],
            url=self.rooms.url,
            token=token,
            expires_at=_iso(not_after),
            status=saved["status"],
        )

    def leave(self, actor: Actor, cid: str) -> ConsultStatus:
        return self._retrying(lambda: self._leave(actor, cid))

    def _leave(self, actor: Actor, cid: str) -> ConsultStatus:
        item, _ = self._readable(actor, cid, audit=False)
        me = who(actor.org or "", actor.id)
        saved = self._move(item, lifecycle_of(item), actor, "leave", self._presence(item, me, "left_at", self.clock()))
        return self._status(saved)

    def end(self, actor: Actor, cid: str) -> ConsultStatus:
        """The applicant ends the meeting (as the room's host): 待报告."""
        item = self._as_applicant(actor, cid)
        saved = self._move(item, self._step(item, states.finish), actor, "end", {})
        return self._status(saved)

    def room_event(self, body: bytes, authorization: str) -> WebhookAnswer:
        return self._retrying(lambda: self._room_event(body, authorization))

    def _room_event(self, body: bytes, authorization: str) -> WebhookAnswer:
        """A LiveKit webhook: ``participant_joined``/``participant_left`` are recorded, ``room_finished``
        moves the case to 待报告. Unknown rooms and other events are acknowledged and ignored."""
        event = self.rooms.verify_webhook(body, authorization)
        room = (event.get("room") or {}).get("name")
        cid = self.repo.case_of_room(str(room)) if room else None
        if cid is None:
            return WebhookAnswer(handled=False)
        item = self.repo.require(cid)
        actor = Actor.system("consult-room-webhook")
        kind = event.get("event")
        identity = str((event.get("participant") or {}).get("identity") or "")
        now = self.clock()
        if kind == "room_finished" and item["status"] == "in_progress":
            item = self._move(item, states.finish(lifecycle_of(item)), actor, "room_finished", {})
        elif kind in ("participant_joined", "participant_left") and identity:
            field = "joined_at" if kind == "participant_joined" else "left_at"
            changes = self._presence(item, identity, field, now)
            if changes:
                item = self._move(item, lifecycle_of(item), actor, kind, changes)
        else:
            return WebhookAnswer(handled=False, consultation_id=cid, status=item["status"])
        return WebhookAnswer(handled=True, consultation_id=cid, status=item["status"])

    def _presence(self, item: dict[str, Any], me: str, field: str, now: float) -> dict[str, Any]:
        at = _iso(now)
        if _p_key(item["applicant"]) == me:
            return {"applicant": {**item["applicant"], field: [*item["applicant"][field], at][-20:]}}
        if any(_p_key(p) == me for p in item["participants"]):
            return {
                "participants": [
                    {**p, field: [*p[field], at][-20:]} if _p_key(p) == me else p for p in item["participants"]
                ]
            }
        return {}

    # ================================================================ reports

    def _report_rows(self, cid: str, doctor: str) -> list[dict[str, Any]]:
        return sorted(self.repo.children(cid, f"report#{doctor}#"), key=lambda r: int(r["version"]))

    def save_report(self, actor: Actor, cid: str, req: ReportDraft) -> ReportView:
        item, role = self._readable(actor, cid, audit=False)
        me = self._report_author(item, role, actor)
        if item["status"] not in ("in_progress", "awaiting_report"):
            raise Conflict("会诊开始后、完成前才能撰写报告", code="REPORT_NOT_OPEN")
        rows = self._report_rows(cid, me)
        if rows and rows[-1]["status"] != "draft":
            raise Conflict("报告已签名，如需修改请提交修订版", code="REPORT_ALREADY_SIGNED")
        version = int(rows[-1]["version"]) if rows else 1
        row = self._report_row(item, me, version, "draft", req, rows[-2] if len(rows) > 1 else None)
        self.repo.write(self.repo.put_child(cid, f"report#{me}#{version:04d}", row))
        self._audit(actor, "consult.report.draft", item)
        return self._report_view(item, me, [*rows[:-1], row] if rows else [row])

    def sign_report(self, actor: Actor, cid: str) -> ReportView:
        return self._retrying(lambda: self._sign_report(actor, cid))

    def _sign_report(self, actor: Actor, cid: str) -> ReportView:
        item, role = self._readable(actor, cid, audit=False)
        me = self._report_author(item, role, actor)
        rows = self._report_rows(cid, me)
        if not rows:
            raise Conflict("请先保存报告草稿，再签名", code="REPORT_DRAFT_MISSING")
        if rows[-1]["status"] != "draft":
            raise Conflict("该报告已签名，不能重复签名", code="REPORT_ALREADY_SIGNED")
        lc = self._step(item, lambda lc: states.finalise(lc, me))
        draft = rows[-1]
        status = "final" if int(draft["version"]) == 1 else "amended"
        return self._sign(actor, item, me, lc, draft, status, rows[:-1])

    def amend_report(self, actor: Actor, cid: str, req: ReportDraft) -> ReportView:
        return self._retrying(lambda: self._amend_report(actor, cid, req))

    def _amend_report(self, actor: Actor, cid: str, req: ReportDraft) -> ReportView:
        """A signed report is changed by a new version, signed at once; the earlier one is kept."""
        item, role = self._readable(actor, cid, audit=False)
        me = self._report_author(item, role, actor)
        rows = self._report_rows(cid, me)
        if not rows or rows[-1]["status"] == "draft":
            raise Conflict("尚无已签名的报告可修订，请直接签名", code="REPORT_NOT_SIGNED")
        lc = self._step(item, lambda lc: states.finalise(lc, me))
        version = int(rows[-1]["version"]) + 1
        draft = self._report_row(item, me, version, "draft", req, rows[-1])
        return self._sign(actor, item, me, lc, draft, "amended", rows)

    def _report_author(self, item: dict[str, Any], role: str, actor: Actor) -> str:
        me = who(actor.org or "", actor.id)
        if role != "invitee" or not any(_p_key(p) == me and p["answer"] == "accepted" for p in item["participants"]):
            raise Forbidden("只有接受邀请的会诊医生可以撰写诊断报告", code="NOT_A_PARTICIPANT")
        return me

    def _report_row(
        self,
        item: dict[str, Any],
        me: str,
        version: int,
        status: str,
        req: ReportDraft,
        previous: dict[str, Any] | None,
    ) -> dict[str, Any]:
        org, code = me.split("/", 1)
        cid = item["consultation_id"]
        return {
            "consultation_id": cid,
            "org": org,
            "doctor_code": code,
            "version": version,
            "status": status,
            "opinion_enc": self.cipher.encrypt(
                json.dumps({"opinion": req.opinion, "recommendations": req.recommendations}, ensure_ascii=False),
                f"consult/report/{cid}/{me}/{version}",
            ),
            "previous_sm3": previous.get("report_sm3") if previous else None,
            "saved_at": _iso(self.clock()),
        }

    def _opinion(self, row: dict[str, Any]) -> dict[str, str]:
        me = who(row["org"], row["doctor_code"])
        text = self.cipher.decrypt(row["opinion_enc"], f"consult/report/{row['consultation_id']}/{me}/{row['version']}")
        parsed: dict[str, str] = json.loads(text)
        return parsed

    def _sign(
        self,
        actor: Actor,
        item: dict[str, Any],
        me: str,
        lc: states.Lifecycle,
        draft: dict[str, Any],
        status: str,
        earlier: list[dict[str, Any]],
    ) -> ReportView:
        now = self.clock()
        body = {**draft, **self._opinion(draft), "status": status, "signed_at": _iso(now)}
        key_id, der = self.signer.sign(draft["org"], draft["doctor_code"], reports.canonical(body))
        row = {
            **draft,
            "status": status,
            "signed_at": body["signed_at"],
            "signature": base64.b64encode(der).decode("ascii"),
            "key_id": key_id,
            "report_sm3": reports.digest(body),
        }
        cid = item["consultation_id"]
        participants = [{**p, "final_version": row["version"]} if _p_key(p) == me else p for p in item["participants"]]
        stored = any(int(r["version"]) == int(row["version"]) for r in self._report_rows(cid, me))
        cond = Cond.attr_absent("signature") if stored else Cond.absent()  # a draft signed once; a new version
        put = self.repo.put_child(cid, f"report#{me}#{int(row['version']):04d}", row, cond)
        self._move(
            item, lc, actor, "sign" if status == "final" else "amend", {"participants": participants}, also=[put]
        )
        return self._report_view(item, me, [*earlier, row])

    def _report_view(self, item: dict[str, Any], me: str, rows: list[dict[str, Any]]) -> ReportView:
        latest = rows[-1]
        person = next((p for p in item["participants"] if _p_key(p) == me), {"name": me})
        text = self._opinion(latest)
        return ReportView(
            org=latest["org"],
            doctor_code=latest["doctor_code"],
            doctor_name=person["name"],
            version=int(latest["version"]),
            status=latest["status"],
            opinion=text["opinion"],
            recommendations=text["recommendations"],
            signed_at=latest.get("signed_at"),
            signature=latest.get("signature"),
            key_id=latest.get("key_id"),
            report_sm3=latest.get("report_sm3"),
            previous=[
                ReportVersion(
                    version=int(r["version"]),
                    status=r["status"],
                    signed_at=r.get("signed_at"),
                    report_sm3=r.get("report_sm3"),
                    **self._opinion(r),
                )
                for r in rows[:-1]
            ],
        )

    def verify_report(self, cid: str, org: str, doctor_code: str, version: int | None = None) -> VerifyAnswer:
        """Recompute a signed report version's canonical bytes and check the signature with the key the
        registry holds for the doctor (the CLI's ``bianjie consult verify-report``)."""
        me = who(org, doctor_code)
        rows = [r for r in self._report_rows(cid, me) if r.get("signature")]
        if version is not None:
            rows = [r for r in rows if int(r["version"]) == version]
        if not rows:
            raise NotFound("没有这份已签名的报告", code="REPORT_NOT_FOUND")
        row = rows[-1]
        body = {**row, **self._opinion(row)}
        ok, reason = reports.verify(body, row["signature"], self.keys.public_key(org, doctor_code, row["key_id"]))
        if ok and reports.digest(body) != row.get("report_sm3"):
            ok, reason = False, "DIGEST_MISMATCH"
        self.audit.record(
            actor=Actor.system("consult-verify-report"),
            action="consult.report.verify",
            resource=f"consult.case:{cid}",
            details={"doctor": me, "version": int(row["version"]), "valid": ok},
        )
        return VerifyAnswer(consultation_id=cid, doctor=me, version=int(row["version"]), valid=ok, reason=reason)

    # ================================================================ attachments

    def request_upload(self, actor: Actor, cid: str, req: AttachmentRequest) -> AttachmentUpload:
        item = self._as_applicant(actor, cid)
        if item["status"] not in ("draft", "scheduled"):
            raise Conflict("会诊开始后不能再添加附件", code="CONSULT_STATE")
        existing = self.repo.children(cid, "att#")
        if len([a for a in existing if a["status"] != "rejected"]) >= MAX_ATTACHMENTS:
            raise ValidationFailed(f"每次会诊最多 {MAX_ATTACHMENTS} 个附件", code="TOO_MANY_ATTACHMENTS", status=422)
        att_id = "att-" + secrets.token_hex(8)
        now = self.clock()
        row = {
            "attachment_id": att_id,
            "file_name": req.file_name,
            "content_type": req.content_type,
            "size": req.size,
            "status": "pending",
            "reason": "",
            "created_at": _iso(now),
        }
        self.repo.write(self.repo.put_child(cid, f"att#{att_id}", row, Cond.absent()))
        url = self.objects.presigned_put(self.bucket, f"{cid}/{att_id}", UPLOAD_URL_TTL, content_type=req.content_type)
        self._audit(actor, "consult.attachment.upload", item, details={"attachment_id": att_id})
        return AttachmentUpload(
            attachment_id=att_id,
            upload_url=url,
            headers={"Content-Type": req.content_type},
            expires_at=_iso(now + UPLOAD_URL_TTL),
        )

    def check_object(self, key: str) -> str:
        """The storage-triggered check of an uploaded attachment: type by content, declared size, malware,
        SHA-256. A refused file is deleted and the applicant told why (its row, and an event). Answers
        the outcome ("clean", "rejected:<code>", "unknown", "done")."""
        cid, _, att_id = key.partition("/")
        row = self.repo.attachment(cid, att_id) if att_id else None
        if row is None:
            self.objects.delete(self.bucket, key)  # nobody asked for this upload
            return "unknown"
        if row["status"] != "pending":
            return "done"
        data = self.objects.get(self.bucket, key)
        code = None
        if len(data) > 20 * 1024 * 1024:
            code = "TOO_LARGE"
        elif len(data) != int(row["size"]):
            code = "SIZE_MISMATCH"
        elif not any(data.startswith(m) for m in MAGIC[row["content_type"]]):
            code = "TYPE_MISMATCH"
        elif self.scanner.infected(data):
            code = "INFECTED"
        changes: dict[str, Any] = {"checked_at": _iso(self.clock())}
        if code is None:
            changes |= {"status": "clean", "sha256": hashlib.sha256(data).hexdigest()}
        else:
            changes |= {"status": "rejected", "code": code, "reason": REJECT_ZH[code]}
        put = self.repo.put_child(cid, f"att#{att_id}", {**row, **changes}, Cond.eq("status", "pending"))
        item = self.repo.require(cid)
        actor = Actor.system("consult-attachment-check")
        if code is None:
            self.repo.write(put)
        else:
            intent = self.outbox.event(
                contracts.ConsultAttachmentRejectedV1(**self._event_fields(item), attachment_id=att_id, code=code),
                event_id=f"{cid}-{att_id}-rejected",
                subject=cid,
            )
            self.outbox.commit([put], [intent])
            self.objects.delete(self.bucket, key)
        self._audit(
            actor, "consult.attachment.check", item, details={"attachment_id": att_id, "result": code or "clean"}
        )
        return "clean" if code is None else f"rejected:{code}"

    # ================================================================ records

    def records(self, actor: Actor, q: RecordsQuery) -> ConsultationList:
        self._doctor(actor)
        holder = who(actor.org or "", actor.id)
        low = q.from_date.isoformat() if q.from_date else "0"
        high = (q.to_date + timedelta(days=1)).isoformat() if q.to_date else "~"
        page = self.repo.listing(holder, q.box, q.status, low, high, q.limit, q.cursor)
        counts = {s: self.repo.count(holder, q.box, s) for s in STATUS_ZH}
        items = [
            ConsultationSummary(
                consultation_id=r["consultation_id"],
                status=r["status"],
                status_zh=STATUS_ZH[r["status"]],
                start=r["start"],
                purpose=r["purpose"],
                patient_masked=r["patient_masked"],
                applicant=r["applicant"],
                participants=int(r["participants"]),
            )
            for r in page.items
        ]
        self.audit.record(
            actor=actor, action="consult.list", resource=f"consult.list:{holder}#{q.box}", details={"count": len(items)}
        )
        return ConsultationList(items=items, cursor=page.cursor, counts=counts)

    def get(self, actor: Actor, cid: str) -> ConsultationView:
        item, _ = self._readable(actor, cid)
        return self._view(item)

    def raw(self, actor: Actor, cid: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """The case, its decrypted patient part and its signed reports (the FHIR export)."""
        item, _ = self._readable(actor, cid, action="consult.fhir")
        patient = json.loads(self.cipher.decrypt(item["patient_enc"], f"consult/patient/{cid}"))
        signed = []
        for row in self.repo.children(cid, "report#"):
            if row.get("signature"):
                signed.append({**row, **self._opinion(row)})
        return item, patient, signed

    def _view(self, item: dict[str, Any]) -> ConsultationView:
        cid = item["consultation_id"]
        patient = json.loads(self.cipher.decrypt(item["patient_enc"], f"consult/patient/{cid}"))
        clinical = json.loads(self.cipher.decrypt(item["clinical_enc"], f"consult/clinical/{cid}"))
        attachments = []
        for a in sorted(self.repo.children(cid, "att#"), key=lambda a: a["created_at"]):
            url = None
            if a["status"] == "clean":
                url = self.objects.presigned_get(self.bucket, f"{cid}/{a['attachment_id']}", DOWNLOAD_URL_TTL)
            attachments.append(AttachmentView.model_validate({**a, "download_url": url}))
        by_doctor: dict[str, list[dict[str, Any]]] = {}
        for row in self.repo.children(cid, "report#"):
            by_doctor.setdefault(who(row["org"], row["doctor_code"]), []).append(row)
        report_views = [
            self._report_view(item, d, sorted(rows, key=lambda r: int(r["version"])))
            for d, rows in sorted(by_doctor.items())
        ]
        return ConsultationView(
            consultation_id=cid,
            status=item["status"],
            status_zh=STATUS_ZH[item["status"]],
            version=int(item["version"]),
            round=int(item.get("round", 0)),
            applicant=ParticipantView.model_validate(item["applicant"]),
            participants=[ParticipantView.model_validate(p) for p in item["participants"]],
            start=item["start"],
            duration_min=int(item["duration_min"]),
            slot_end=_iso(item["slot_end"]),
            patient_name=patient["name"],
            patient_id_masked=item["patient_id_masked"],
            patient_sex=patient.get("sex", "unknown"),
            visits=[VisitRecord.model_validate(v) for v in clinical["visits"]],
            purpose=item["purpose"],
            location=Location.model_validate(item["location"]),
            symptoms=clinical["symptoms"],
            difficulties=clinical["difficulties"],
            diagnosis=self.cipher.decrypt(item["diagnosis_enc"], f"consult/diagnosis/{cid}"),
            consent={k: str(v) for k, v in item["consent"].items()} if item.get("consent") else None,
            attachments=attachments,
            reports=report_views,
            room=item.get("room"),
            created_at=item["created_at"],
            history=item["history"],
        )

    # ================================================================ the sweep

    def sweep(self, now: float | None = None) -> dict[str, int]:
        """Scheduled cases whose slot passed with nobody joining are cancelled; cases still in progress
        after their slot's end plus the grace move to 待报告."""
        now = self.clock() if now is None else now
        counts = {"lapsed": 0, "finished": 0, "skipped": 0}
        actor = Actor.system("consult-sweep")
        for row in self.repo.due(now):
            item = self.repo.get(row["consultation_id"])
            if item is None:
                continue
            try:
                if item["status"] == "scheduled" and not item.get("joined"):
                    self._move(item, states.lapse(lifecycle_of(item)), actor, "lapse", {}, reason="no_show")
                    counts["lapsed"] += 1
                elif item["status"] == "in_progress" and item["slot_end"] + rooms.GRACE_S <= now:
                    self._move(item, states.finish(lifecycle_of(item)), actor, "slot_ended", {})
                    counts["finished"] += 1
                else:
                    counts["skipped"] += 1
            except AppError:
                counts["skipped"] += 1  # moved meanwhile; the next sweep sees it as it is
        return counts

    # ================================================================ shared steps

    def _as_applicant(self, actor: Actor, cid: str) -> dict[str, Any]:
        item, role = self._readable(actor, cid, audit=False)
        if role != "applicant":
            raise Forbidden("只有发起会诊的医生可以执行此操作", code="NOT_APPLICANT")
        return item

    def _readable(
        self, actor: Actor, cid: str, *, audit: bool = True, action: str = "consult.read"
    ) -> tuple[dict[str, Any], str]:
        """The case and the caller's part in it (applicant | invitee); 404 for anyone else."""
        self._doctor(actor)
        if not _valid_id(cid):
            raise NotFound("没有找到这次会诊", code="CONSULT_NOT_FOUND")
        item = self.repo.get(cid)
        me = who(actor.org or "", actor.id)
        role = None
        if item is not None:
            if _p_key(item["applicant"]) == me:
                role = "applicant"
            elif item.get("submitted") and any(_p_key(p) == me for p in item["participants"]):
                role = "invitee"
        if item is None or role is None:
            self.audit.record(actor=actor, action=action, resource=f"consult.case:{cid}", outcome="denied")
            raise NotFound("没有找到这次会诊", code="CONSULT_NOT_FOUND")
        if role == "invitee" and item["status"] != "completed":
            p = next(p for p in item["participants"] if _p_key(p) == me)
            cred = self.scope.credential(p["org"], p["doctor_code"]) or {}
            if not self.scope.still_covers(p["via"], item["applicant"]["org"], cred, self.clock()):
                self._audit(actor, action, item, outcome="denied")
                raise Forbidden(
                    "您所在机构与申请机构的协作协议已过期或暂停，暂不能访问该会诊", code="AGREEMENT_INACTIVE"
                )
        if audit:
            self._audit(actor, action, item)
        return item, role

    def _step(self, item: dict[str, Any], step: Callable[[states.Lifecycle], states.Lifecycle]) -> states.Lifecycle:
        return step(lifecycle_of(item))

    def _move(
        self,
        item: dict[str, Any],
        lc: states.Lifecycle,
        actor: Actor,
        action: str,
        changes: dict[str, Any],
        *,
        note: str = "",
        reason: str = "",
        also: Sequence[Operation] = (),
    ) -> dict[str, Any]:
        now = self.clock()
        changes = {**changes, "status": lc.status, "round": lc.round}
        history = [*item["history"], self._entry(now, lc.status, actor, action, note)][-100:]
        changes["history"] = history
        intents = []
        event = self._event_for(item, lc, reason)
        version = int(item["version"]) + 1
        if event is not None:
            intents.append(
                self.outbox.event(
                    event, event_id=f"{item['consultation_id']}-{version}", subject=item["consultation_id"]
                )
            )
        ops = [*also, *self.outbox.puts(intents)]
        saved = self.repo.save(item, changes, ops)
        self.outbox.dispatch(intents)
        self._audit(actor, f"consult.{action}", saved)
        return saved

    def _event_fields(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "consultation_id": item["consultation_id"],
            "applicant_org": item["applicant"]["org"],
            "applicant": item["applicant"]["doctor_code"],
            "participants": [_p_key(p) for p in item["participants"]],
            "patient_ref": item["patient_ref"],
            "status": item["status"],
            "start": item["start"],
            "round": int(item.get("round", 0)),
        }

    def _event_for(self, item: dict[str, Any], lc: states.Lifecycle, reason: str) -> Any:
        if lc.status == item["status"]:
            return None
        fields = {**self._event_fields(item), "status": lc.status, "round": lc.round}
        if lc.status == "cancelled":
            return contracts.ConsultCancelledV1(**fields, reason=reason or "applicant")
        if lc.status == "draft":
            return contracts.ConsultReturnedV1(**fields)
        contract = contracts.BY_STATUS.get(lc.status)
        return contract(**fields) if contract else None

    @staticmethod
    def _entry(now: float, status: str, actor: Actor, action: str, note: str = "") -> dict[str, str]:
        return {"at": _iso(now), "status": status, "action": action, "by": actor.audit_name, "note": note[:200]}

    def _audit(
        self,
        actor: Actor,
        action: str,
        item: dict[str, Any],
        *,
        outcome: str = "success",
        details: dict[str, Any] | None = None,
    ) -> None:
        self.audit.record(
            actor=actor,
            action=action,
            resource=f"consult.case:{item['consultation_id']}",
            patient_ref=item.get("patient_ref"),
            outcome=outcome,
            details={"status": item["status"], "version": int(item["version"]), **(details or {})},
        )

    @staticmethod
    def _status(item: dict[str, Any]) -> ConsultStatus:
        return ConsultStatus(
            consultation_id=item["consultation_id"],
            status=item["status"],
            status_zh=STATUS_ZH[item["status"]],
            version=int(item["version"]),
        )


__all__ = ["SAME_ORG", "ConsultService", "lifecycle_of"]
