"""The prescription use cases. Pure Python: storage, the center, crypto, audit and the outbox are given.

Who may do what (``Actor``):
- a hospital (signed partner with rx role "hospital"): pre-check, upload, confirm, read and list its own;
- its doctor (staff token, role doctor, ``hospital`` claim = the hospital's app id): read the signing
  material, sign, revoke (only the issuing doctor);
- a pharmacy (signed partner with rx role "pharmacy"): authorize with a patient's e-credential, read
  under that authorization, upload the dispense result;
- its pharmacist (staff token, role pharmacist, ``hospital`` claim = the pharmacy's app id): review;
- the patient (patient token whose ``id_ref`` claim is the blind index of their ID number): read theirs.

Every read or change of a prescription writes an audit record (actor, action, prescription, patient
blind index). Center calls happen after the state machine accepted the step and before it is stored,
so a refused step never reaches the center and a center refusal changes nothing here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bianjie.contracts import rx as rx_contracts
from bianjie.kit.actor import Actor
from bianjie.kit.crypto import CryptoError, Sm2PublicKey, sig_from_raw, sm2_verify, sm3
from bianjie.kit.documents.port import ConditionFailed
from bianjie.kit.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from bianjie.kit.idempotency import Answer, Idempotency
from bianjie.kit.masking import mask_name
from bianjie.kit.timefmt import utc_iso
from bianjie.rx import document, rules, states
from bianjie.rx.catalogue import Catalogue
from bianjie.rx.center import mapping
from bianjie.rx.center.port import RxCenter
from bianjie.rx.ecredential import Ecredentials
from bianjie.rx.models import (
    AuthorizationView,
    AuthorizeRequest,
    ConfirmRequest,
    DispensedItem,
    DispenseRequest,
    LineView,
    ListQuery,
    PrecheckAnswer,
    PrecheckRequest,
    PrescriptionList,
    PrescriptionView,
    ReviewRequest,
    RevokeRequest,
    SigningMaterial,
    SignRequest,
    StatusAnswer,
    Transition,
    UploadAnswer,
    UploadRequest,
)
from bianjie.rx.repo import AuthorizationRepository, RxRepository, lifecycle_of, with_lifecycle

AUTHORIZATION_TTL = 2 * 3600  # a pharmacy's hold on a patient's prescriptions after reading the e-credential
EXPIRING_NOTICE_S = 24 * 3600  # rx.expiring goes out this long before the validity ends
USABLE = ("valid", "released", "authorized", "reviewed")
# the staff desk (web/pages rx-doctor, rx-hospital, rx-pharmacy): which staff roles may make which system step
# with their own token instead of the HIS's or the pharmacy system's signed request (docs/rx.md)
DESK_ISSUE = ("doctor",)  # pre-check and upload: the issuing doctor's workstation
DESK_CONFIRM = ("rx-clerk",)  # in-hospital settlement or release: the hospital's prescription desk (处方流转岗)
DESK_HOSPITAL = ("doctor", "rx-clerk")  # the hospital's list
DESK_PHARMACY = ("pharmacist",)  # authorization from the e-credential, dispense: the pharmacy's counter


@dataclass(frozen=True)
class Org:
    """A hospital or pharmacy as the partner registry describes it (settings section "rx")."""

    app_id: str
    name: str
    role: str | None  # "hospital" | "pharmacy"
    fixmedins_code: str = ""  # 定点医药机构编码
    doctor_keys: dict[str, str] = field(default_factory=dict)  # doctor code -> SM2 public key hex
    require_pharmacist_review: bool = False


class Cipher(Protocol):
    def encrypt(self, plaintext: str, context: str) -> str: ...

    def decrypt(self, token: str, context: str) -> str: ...


class Index(Protocol):
    def digest(self, value: str, kind: str) -> str: ...


class RxService:
    def __init__(
        self,
        *,
        repo: RxRepository,
        authorizations: AuthorizationRepository,
        catalogue: Catalogue,
        center: RxCenter,
        cipher: Cipher,
        index: Index,
        audit: Any,
        events: Any,
        orgs: Callable[[str], Org | None],
        ecredentials: Ecredentials,
        idempotency: Idempotency,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.auths = authorizations
        self.catalogue = catalogue
        self.center = center
        self.cipher = cipher
        self.index = index
        self.audit = audit
        self.events = events
        self.orgs = orgs
        self.ecredentials = ecredentials
        self.idempotency = idempotency
        self.clock = clock

    # ================================================================ hospital: pre-check and upload

    def precheck(self, actor: Actor, req: PrecheckRequest) -> Answer[PrecheckAnswer]:
        """Key: the hospital's prescription number (``hosp_rxno``): a retry gets the same trace code."""
        org = self._org(actor, "hospital", DESK_ISSUE)
        if actor.kind == "staff" and req.doctor.code != actor.id:
            # at the desk a doctor issues in their own name only
            raise Forbidden("a doctor issues prescriptions in their own name", code="NOT_ISSUING_DOCTOR")
        return self.idempotency.once(
            f"rx.precheck.{org.app_id}",
            req.hosp_rxno,
            req,
            lambda: self._precheck(actor, org, req),
            model=PrecheckAnswer,
            current=lambda answer: answer.model_copy(update={"status": self._current(answer.rx_id, answer.status)}),
            natural=True,
        )

    def _precheck(self, actor: Actor, org: Org, req: PrecheckRequest) -> PrecheckAnswer:
        now = self.clock()
        problems = rules.check(req, self.catalogue, now)
        if req.doctor.code not in org.doctor_keys:
            problems.append(
                rules.Problem(
                    line=None,
                    field="doctor.code",
                    code="DOCTOR_NOT_REGISTERED",
                    message="the doctor has no signing key registered for this hospital",
                )
            )
        if problems:
            raise ValidationFailed(
                f"the prescription has {len(problems)} problem(s)",
                code="RX_PRECHECK_FAILED",
                status=422,
                details=[p.model_dump() for p in problems],
            )
        valid_end = req.prescribed_at + timedelta(days=req.valid_days)
        reserved = self.center.upload_check(mapping.upload_check(req, valid_end, org.fixmedins_code or org.app_id))
        rx_id = reserved.hi_rxno
        patient_ref = self.index.digest(req.insured.cert_no, "id_number")
        content = req.model_dump(mode="json", exclude={"insured", "diagnoses"})
        lc = states.Lifecycle(
            status="precheck",
            valid_end=int(valid_end.timestamp()),
            circulation=req.circulation,
            reusable=req.reusable,
            max_uses=req.max_uses if req.reusable else 1,
            min_interval_s=float(req.min_interval_days * 86400),
        )
        item = with_lifecycle(
            {
                "rx_id": rx_id,
                "hi_rxno": reserved.hi_rxno,
                "trace_code": reserved.trace_code,
                "hospital": org.app_id,
                "hosp_rxno": req.hosp_rxno,
                "created_at": utc_iso(now),
                "prescribed_at": req.prescribed_at.isoformat(),
                "doctor_code": req.doctor.code,
                "doctor_name": req.doctor.name,
                "dept_name": req.doctor.dept_name,
                "content": content,
                "insured_enc": self.cipher.encrypt(
                    json.dumps(req.insured.model_dump(), ensure_ascii=False), f"rx/insured/{rx_id}"
                ),
                "diagnoses_enc": self.cipher.encrypt(
                    json.dumps([d.model_dump() for d in req.diagnoses], ensure_ascii=False), f"rx/diagnoses/{rx_id}"
                ),
                "patient_ref": patient_ref,
                "patient_masked": mask_name(req.insured.name),
                "dispenses": [],
                "history": [self._entry(now, "precheck", actor, "precheck")],
            },
            lc,
        )
        self.repo.create(item)
        self._audit(actor, "rx.precheck", item)
        return PrecheckAnswer(
            rx_id=rx_id,
            hi_rxno=reserved.hi_rxno,
            trace_code=reserved.trace_code,
            hosp_rxno=req.hosp_rxno,
            status="precheck",
            valid_end=valid_end,
        )

    def upload(self, actor: Actor, req: UploadRequest) -> Answer[UploadAnswer]:
        """Key: the trace code. Refusals (wrong trace code, not signed yet ...) bind nothing."""
        org = self._org(actor, "hospital", DESK_ISSUE)
        return self.idempotency.once(
            f"rx.upload.{org.app_id}",
            req.trace_code,
            req,
            lambda: self._upload(actor, org, req),
            model=UploadAnswer,
            current=lambda answer: answer.model_copy(update={"status": self._current(answer.rx_id, answer.status)}),
            natural=True,
        )

    def _upload(self, actor: Actor, org: Org, req: UploadRequest) -> UploadAnswer:
        item = self._own(org, req.hi_rxno)
        if actor.kind == "staff" and item["doctor_code"] != actor.id:
            raise Forbidden("only the issuing doctor uploads from the desk", code="NOT_ISSUING_DOCTOR")
        self._upload_preconditions(org, item, req)
        now = self.clock()
        new_lc = self._step(item, lambda lc: states.upload(lc, now))
        content = self._content(item)
        pdf = self._pdf(item, content)
        center_status = self.center.upload(
            mapping.upload(
                req.trace_code,
                req.hi_rxno,
                content["visit"]["visit_id"],
                item["doctor_code"],
                req.pharmacist_code,
                req.pharmacist_checked_at,
                pdf,
                item["sign_digest"],
            )
        )
        changes = {
            "pharmacist_code": req.pharmacist_code,
            "uploaded_at": utc_iso(now),
            "pharmacist_checked_at": req.pharmacist_checked_at.isoformat() if req.pharmacist_checked_at else None,
        }
        saved = self._save(item, new_lc, changes, now, "upload", actor, publish="rx.uploaded")
        self._audit(actor, "rx.upload", saved)
        return UploadAnswer(
            rx_id=saved["rx_id"],
            hi_rxno=saved["hi_rxno"],
            trace_code=saved["trace_code"],
            status=saved["status"],
            center_status=center_status,
            sign_digest=saved["sign_digest"],
        )

    def _upload_preconditions(self, org: Org, item: dict[str, Any], req: UploadRequest) -> None:
        if item["trace_code"] != req.trace_code:
            raise Conflict("the trace code was issued for another prescription", code="TRACE_CODE_MISMATCH")
        if org.require_pharmacist_review and not (req.pharmacist_code and req.pharmacist_checked_at):
            raise ValidationFailed(
                "this hospital requires a pharmacist's review before upload",
                code="PHARMACIST_REVIEW_REQUIRED",
                status=422,
            )

    # ================================================================ doctor: signing and revocation

    def signing_material(self, actor: Actor, rx_id: str) -> SigningMaterial:
        item = self._issuing_doctor(actor, rx_id)
        content = self._content(item)
        pdf = self._pdf(item, content)
        content_digest, pdf_digest = document.content_sm3(content), sm3(pdf).hex()
        self._audit(actor, "rx.document", item)
        return SigningMaterial(
            rx_id=rx_id,
            content_sm3=content_digest,
            pdf_sm3=pdf_digest,
            signing_input=document.signing_input(rx_id, content_digest, pdf_digest),
            pdf_base64=base64.b64encode(pdf).decode("ascii"),
        )

    def sign(self, actor: Actor, rx_id: str, req: SignRequest) -> StatusAnswer:
        item = self._issuing_doctor(actor, rx_id)
        now = self.clock()
        new_lc = self._step(item, lambda lc: states.sign(lc, now))
        content = self._content(item)
        content_digest, pdf_digest = document.content_sm3(content), sm3(self._pdf(item, content)).hex()
        if req.pdf_sm3 != pdf_digest:
            raise Conflict(
                "the PDF digest differs from the prescription's document; fetch it again", code="PDF_DIGEST_MISMATCH"
            )
        org = self.orgs(item["hospital"])
        key_hex = (org.doctor_keys if org else {}).get(item["doctor_code"])
        if not key_hex:
            raise Forbidden("the doctor has no signing key registered", code="DOCTOR_KEY_UNKNOWN")
        message = document.signing_input(rx_id, content_digest, pdf_digest).encode("utf-8")
        try:
            raw = base64.b64decode(req.signature, validate=True)
            der = sig_from_raw(raw) if len(raw) == 64 else raw
            ok = sm2_verify(Sm2PublicKey.from_hex(key_hex), message, der)
        except (binascii.Error, ValueError, CryptoError):
            ok = False
        if not ok:
            self._audit(actor, "rx.sign", item, outcome="denied")
            raise AppError(
                "the signature does not verify with the doctor's registered key",
                code="RX_SIGNATURE_INVALID",
                status=400,
            )
        changes = {
            "content_sm3": content_digest,
            "pdf_sm3": pdf_digest,
            "signature": req.signature,
            "signed_at": utc_iso(now),
            "sign_digest": sm3(message + der).hex(),
        }
        saved = self._save(item, new_lc, changes, now, "sign", actor)
        self._audit(actor, "rx.sign", saved)
        return self._status(saved)

    def revoke(self, actor: Actor, rx_id: str, req: RevokeRequest) -> StatusAnswer:
        self._staff(actor, "doctor")
        item = self._readable_or_404(actor, rx_id, hospital_staff=True)
        now = self.clock()
        by_issuer = actor.org == item["hospital"] and actor.id == item["doctor_code"]
        try:
            new_lc = self._step(item, lambda lc: states.revoke(lc, now, by_issuer=by_issuer))
        except AppError:
            self._audit(actor, "rx.revoke", item, outcome="denied")
            raise
        if states.RANK[item["status"]] >= states.RANK["valid"]:
            self.center.revoke(mapping.revoke(rx_id, item["doctor_code"], req.reason, _dt(now)))
        saved = self._save(
            item, new_lc, {"revoke_reason": req.reason}, now, "revoke", actor, note=req.reason, publish="rx.revoked"
        )
        self._audit(actor, "rx.revoke", saved)
        return self._status(saved)

    # ================================================================ hospital confirmation

    def confirm(self, actor: Actor, rx_id: str, req: ConfirmRequest) -> Answer[StatusAnswer]:
        """In hospital, key: the settlement id (per prescription). A release for outside purchase has no
        key: it is idempotent by state (released already -> the record as it is; dispensed, revoked,
        expired -> refused with that state's code)."""
        org = self._org(actor, "hospital", DESK_CONFIRM)
        if req.mode == "external":
            return Answer(self._release(actor, org, rx_id))
        settlement = req.settlement
        if settlement is None:
            raise ValidationFailed(
                "an in-hospital purchase needs its settlement", code="SETTLEMENT_REQUIRED", status=422
            )
        if not req.items:
            raise ValidationFailed(
                "an in-hospital purchase lists the dispensed items", code="ITEMS_REQUIRED", status=422
            )
        return self.idempotency.once(
            f"rx.confirm.{org.app_id}",
            f"{rx_id}:{settlement.setl_id}",
            req,
            lambda: self._confirm_in_hospital(actor, org, rx_id, req),
            model=StatusAnswer,
            current=lambda answer: self._current_status(rx_id, answer),
            natural=True,
        )

    def release_for_patient(self, actor: Actor, rx_id: str) -> StatusAnswer:
        """The patient chooses to buy at an outside designated pharmacy (处方外购) on their own page: the
        hospital's release, made at the patient's request (the hospital platform is where they choose).
        Idempotent by state like the hospital's; buying in the hospital needs no call (the cashier settles)."""
        if actor.kind != "patient" or not actor.patient_ref:
            raise Forbidden("a patient token with an id_ref claim is needed", code="PATIENT_REF_MISSING")
        item = self._readable_or_404(actor, rx_id, hospital_staff=False)
        org = self.orgs(item["hospital"])
        if org is None:
            raise NotFound("no such prescription, or not yours to read", code="RX_NOT_FOUND")
        return self._release(actor, org, rx_id)

    def _release(self, actor: Actor, org: Org, rx_id: str) -> StatusAnswer:
        item = self._reopened(self._own(org, rx_id), actor)
        if states.released_already(lifecycle_of(item)):
            self._audit(actor, "rx.read", item)
            return self._status(item)
        now = self.clock()
        new_lc = self._step(item, lambda lc: states.release(lc, now))
        saved = self._save(item, new_lc, {}, now, "release", actor, publish="rx.released")
        self._audit(actor, "rx.release", saved)
        return self._status(saved)

    def _confirm_in_hospital(self, actor: Actor, org: Org, rx_id: str, req: ConfirmRequest) -> StatusAnswer:
        assert req.settlement is not None and req.items  # checked by confirm
        item = self._reopened(self._own(org, rx_id), actor)
        now = self.clock()
        new_lc = self._step(item, lambda lc: states.confirm_in_hospital(lc, now))
        self._check_items(item, req.items)
        self.center.pay_status(mapping.pay_status(rx_id, req.settlement.settled_at))
        self.center.settlement(mapping.settlement(rx_id, req.settlement, req.items))
        saved = self._save(
            item,
            new_lc,
            self._dispense_record(item, now, actor, "in_hospital", req.settlement, req.items),
            now,
            "dispense",
            actor,
            note="院内购药",
            publish="rx.dispensed",
        )
        self._audit(actor, "rx.dispense", saved)
        return self._status(saved)

    # ================================================================ pharmacy: circulation

    def authorize(self, actor: Actor, req: AuthorizeRequest) -> AuthorizationView:
        org = self._org(actor, "pharmacy", DESK_PHARMACY)
        person = self.ecredentials.verify(req.ec_token)
        patient_ref = self.index.digest(person.cert_no, "id_number")
        now = self.clock()
        until = now + AUTHORIZATION_TTL
        held: list[dict[str, Any]] = []
        for item in self.repo.by_patient(patient_ref).items:
            if not item.get("circulation") or item["status"] in states.TERMINAL:
                continue
            item = self._reopened(item, actor)
            lc = lifecycle_of(item)
            if item["status"] not in ("released", "authorized") or lc.held_by_other(org.app_id, now):
                continue
            try:
                new_lc = self._step(item, lambda lc: states.authorize(lc, now, org.app_id, until))
            except AppError:
                continue  # expired or taken between the query and now; not this patient's problem
            try:
                saved = self._save(item, new_lc, {}, now, "authorize", actor)
            except Conflict:
                continue
            self._audit(actor, "rx.authorize", saved)
            held.append(saved)
        if not held:
            self.audit.record(
                actor=actor,
                action="rx.authorize",
                resource=f"rx.patient:{patient_ref}",
                patient_ref=patient_ref,
                outcome="failure",
                details={"reason": "NO_RELEASED_PRESCRIPTION"},
            )
            # an authorization over nothing would be an id that lets the pharmacy do nothing: refuse
            raise NotFound(
                "the patient has no prescription released for outside purchase that this pharmacy may take",
                code="NO_RELEASED_PRESCRIPTION",
            )
        authorization_id = secrets.token_urlsafe(18)
        self.auths.put(
            {
                "authorization_id": authorization_id,
                "pharmacy": org.app_id,
                "patient_ref": patient_ref,
                "rx_ids": [i["rx_id"] for i in held],
                "created_at": utc_iso(now),
                "expires_at": int(until),
            }
        )
        return AuthorizationView(
            authorization_id=authorization_id,
            pharmacy=org.app_id,
            expires_at=_dt(until),
            prescriptions=[self._view(i) for i in held],
        )

    def authorization(self, actor: Actor, authorization_id: str) -> AuthorizationView:
        org = self._org(actor, "pharmacy", DESK_PHARMACY)
        auth = self._authorization(org.app_id, authorization_id)
        views = []
        for rx_id in auth["rx_ids"]:
            item = self.repo.get(rx_id)
            if item is not None:
                self._audit(actor, "rx.read", item)
                views.append(self._view(item))
        return AuthorizationView(
            authorization_id=authorization_id,
            pharmacy=org.app_id,
            expires_at=_dt(auth["expires_at"]),
            prescriptions=views,
        )

    def review(self, actor: Actor, rx_id: str, req: ReviewRequest) -> StatusAnswer:
        self._staff(actor, "pharmacist")
        pharmacy = actor.org or ""
        self._authorization(pharmacy, req.authorization_id, rx_id)
        if req.result == "reject" and not req.reason:
            raise ValidationFailed("a rejection needs a reason", code="REASON_REQUIRED", status=422)
        item = self.repo.require(rx_id)
        now = self.clock()
        new_lc = self._step(item, lambda lc: states.review(lc, now, pharmacy, req.result == "pass"))
        self.center.review_result(mapping.review_result(rx_id, req.result == "pass", req.reason, _dt(now)))
        review = {
            "pharmacy": pharmacy,
            "pharmacist": actor.id,
            "result": req.result,
            "reason": req.reason,
            "at": utc_iso(now),
        }
        saved = self._save(item, new_lc, {"review": review}, now, "review", actor, note=req.reason or req.result)
        self._audit(actor, "rx.review", saved)
        return self._status(saved)

    def dispense(self, actor: Actor, rx_id: str, req: DispenseRequest) -> Answer[StatusAnswer]:
        """Key: the settlement id (``settlement.setl_id``), per pharmacy."""
        org = self._org(actor, "pharmacy", DESK_PHARMACY)
        return self.idempotency.once(
            f"rx.dispense.{org.app_id}",
            req.settlement.setl_id,
            req,
            lambda: self._dispense(actor, org, rx_id, req),
            model=StatusAnswer,
            current=lambda answer: self._current_status(rx_id, answer),
            natural=True,
        )

    def _dispense(self, actor: Actor, org: Org, rx_id: str, req: DispenseRequest) -> StatusAnswer:
        self._authorization(org.app_id, req.authorization_id, rx_id)
        item = self.repo.require(rx_id)
        now = self.clock()
        new_lc = self._step(item, lambda lc: states.dispense(lc, now, org.app_id))
        self._check_items(item, req.items)
        self.center.settlement(mapping.settlement(rx_id, req.settlement, req.items))
        saved = self._save(
            item,
            new_lc,
            self._dispense_record(item, now, actor, "external", req.settlement, req.items),
            now,
            "dispense",
            actor,
            publish="rx.dispensed",
            pharmacy=org.app_id,
        )
        self._audit(actor, "rx.dispense", saved)
        return self._status(saved)

    # ================================================================ queries

    def get(self, actor: Actor, rx_id: str) -> PrescriptionView:
        item = self._readable_or_404(actor, rx_id, hospital_staff=True)
        self._audit(actor, "rx.read", item)
        return self._view(item, history=True)

    def raw(self, actor: Actor, rx_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The stored item and its clear content, for exports (FHIR); audited as a read."""
        item = self._readable_or_404(actor, rx_id, hospital_staff=True)
        self._audit(actor, "rx.export", item)
        return item, self._content(item)

    def list_for_hospital(self, actor: Actor, query: ListQuery) -> PrescriptionList:
        org = self._org(actor, "hospital", DESK_HOSPITAL)
        page = self.repo.by_hospital(org.app_id, query.limit, query.cursor)
        items = [i for i in page.items if query.status is None or i["status"] == query.status]
        for item in items:
            self._audit(actor, "rx.list", item)
        return PrescriptionList(items=[self._view(i) for i in items], cursor=page.cursor)

    def list_for_patient(self, actor: Actor, query: ListQuery) -> PrescriptionList:
        if actor.kind != "patient" or not actor.patient_ref:
            raise Forbidden("a patient token with an id_ref claim is needed", code="PATIENT_REF_MISSING")
        page = self.repo.by_patient(actor.patient_ref, query.limit, query.cursor)
        items = [i for i in page.items if query.status is None or i["status"] == query.status]
        for item in items:
            self._audit(actor, "rx.list", item)
        return PrescriptionList(items=[self._view(i) for i in items], cursor=page.cursor)

    # ================================================================ schedule

    def sweep(self, now: float | None = None) -> dict[str, int]:
        """Expire prescriptions whose validity ended; announce those ending within a day (once).

        ``now`` is the schedule's due time when the event gives one (see ``kit.events.scheduled_time``)."""
        now = self.clock() if now is None else now
        counts = {"expired": 0, "expiring": 0, "conflicts": 0}
        system = Actor.system("rx-expiry-sweep")
        for item in self.repo.due_before(now + EXPIRING_NOTICE_S):
            lc = lifecycle_of(item)
            try:
                if now >= lc.valid_end:
                    announce = states.RANK[item["status"]] >= states.RANK["valid"]
                    saved = self._save(
                        item,
                        states.expire(lc, now),
                        {},
                        now,
                        "expire",
                        system,
                        publish="rx.expired" if announce else None,
                    )
                    self._audit(system, "rx.expire", saved)
                    counts["expired"] += 1
                elif (
                    not item.get("expiring_sent")
                    and (item["status"] in USABLE or lc.uses_left > 0)
                    and states.RANK[item["status"]] >= states.RANK["valid"]
                ):
                    self._replace({**item, "expiring_sent": True}, "rx.expiring")
                    counts["expiring"] += 1
            except (Conflict, ConditionFailed):
                counts["conflicts"] += 1  # changed meanwhile; the next sweep sees it again
        return counts

    # ================================================================ helpers

    def _current(self, rx_id: str, stored: str) -> str:
        """The prescription's status now, for an idempotent replay (the stored one if it is gone)."""
        item = self.repo.get(rx_id)
        return str(item["status"]) if item is not None else stored

    def _current_status(self, rx_id: str, stored: StatusAnswer) -> StatusAnswer:
        item = self.repo.get(rx_id)
        return self._status(item) if item is not None else stored

    def _org(self, actor: Actor, role: str, staff: tuple[str, ...] = ()) -> Org:
        """The hospital or pharmacy making a system step: the partner that signed the request, or, for the
        staff desk (docs/pages.md), the organisation of a staff token holding one of ``staff``'s roles."""
        if actor.kind == "staff" and staff:
            if not actor.org or not any(r in actor.roles for r in staff):
                raise Forbidden(f"this step needs a staff token with role {' or '.join(staff)}", code="ROLE_REQUIRED")
            app_id = actor.org
        elif actor.kind != "partner":
            raise Forbidden(f"this call is made by a {role} system with a signed request", code="PARTNER_REQUIRED")
        else:
            app_id = actor.id
        org = self.orgs(app_id)
        if org is None or org.role != role:
            raise Forbidden(
                f"app {app_id} is not registered as an e-prescription {role}",
                code="NOT_A_HOSPITAL" if role == "hospital" else "NOT_A_PHARMACY",
            )
        return org

    def _staff(self, actor: Actor, role: str) -> None:
        if actor.kind != "staff" or role not in actor.roles or not actor.org:
            raise Forbidden(f"this action needs a {role}'s staff token", code="ROLE_REQUIRED")

    def _own(self, org: Org, rx_id: str) -> dict[str, Any]:
        item = self.repo.get(rx_id)
        if item is None or item["hospital"] != org.app_id:
            # another hospital's prescription is indistinguishable from a missing one
            raise NotFound("no such prescription for this hospital", code="RX_NOT_FOUND")
        return item

    def _issuing_doctor(self, actor: Actor, rx_id: str) -> dict[str, Any]:
        self._staff(actor, "doctor")
        item = self.repo.get(rx_id)
        if item is None or item["hospital"] != actor.org:
            raise NotFound("no such prescription in this hospital", code="RX_NOT_FOUND")
        if item["doctor_code"] != actor.id:
            self._audit(actor, "rx.document", item, outcome="denied")
            raise Forbidden("only the issuing doctor may do this", code="NOT_ISSUING_DOCTOR")
        return item

    def _readable_or_404(self, actor: Actor, rx_id: str, *, hospital_staff: bool) -> dict[str, Any]:
        item = self.repo.get(rx_id)
        if item is not None and self._may_read(actor, item, hospital_staff):
            return item
        raise NotFound("no such prescription, or not yours to read", code="RX_NOT_FOUND")

    def _may_read(self, actor: Actor, item: dict[str, Any], hospital_staff: bool) -> bool:
        if actor.kind == "partner":
            org = self.orgs(actor.id)
            if org is None:
                return False
            if org.role == "hospital":
                return item["hospital"] == actor.id
            dispensed_here = any(d.get("by_org") == actor.id for d in item.get("dispenses", []))
            return org.role == "pharmacy" and (item.get("holder") == actor.id or dispensed_here)
        if actor.kind == "staff":
            return (hospital_staff and actor.org == item["hospital"]) or (
                "pharmacist" in actor.roles and item.get("holder") == actor.org
            )
        if actor.kind == "patient":
            return actor.patient_ref is not None and actor.patient_ref == item["patient_ref"]
        return False

    def _authorization(self, pharmacy: str, authorization_id: str, rx_id: str | None = None) -> dict[str, Any]:
        auth = self.auths.get(authorization_id)
        if auth is None or auth["pharmacy"] != pharmacy or (rx_id is not None and rx_id not in auth["rx_ids"]):
            raise Forbidden(
                "the authorization is unknown, expired, or does not cover this prescription",
                code="AUTHORIZATION_INVALID",
            )
        return auth

    def _step(self, item: dict[str, Any], step: Callable[[states.Lifecycle], states.Lifecycle]) -> states.Lifecycle:
        """Apply a transition; if it failed because the validity ended, record the expiry first."""
        lc = lifecycle_of(item)
        try:
            return step(lc)
        except states.TransitionRefused as exc:
            now = self.clock()
            if exc.code == "RX_EXPIRED" and not lc.terminal and not lc.finished and now >= lc.valid_end:
                with contextlib.suppress(Conflict):
                    self._save(
                        item,
                        states.expire(lc, now),
                        {},
                        now,
                        "expire",
                        Actor.system("rx-expiry-on-access"),
                        publish="rx.expired",
                    )
            raise

    def _reopened(self, item: dict[str, Any], actor: Actor) -> dict[str, Any]:
        """A reusable prescription whose interval has passed becomes usable again when next touched."""
        lc = lifecycle_of(item)
        start = lc.next_use_from
        if start is None or self.clock() < start or self.clock() >= lc.valid_end:
            return item
        now = self.clock()
        return self._save(
            item, states.reopen(lc, now), {"expiring_sent": False}, now, "reopen", Actor.system("rx-reuse")
        )

    def _save(
        self,
        item: dict[str, Any],
        lc: states.Lifecycle,
        changes: dict[str, Any],
        now: float,
        op: str,
        actor: Actor,
        note: str = "",
        publish: str | None = None,
        **extra: str,
    ) -> dict[str, Any]:
        """Store a transition; ``publish`` names the event that announces it, committed with it (outbox)."""
        if states.progress(lc) < states.progress(lifecycle_of(item)):
            raise AssertionError(f"transition {op} would move the prescription backwards")  # a bug, never a 4xx
        new = with_lifecycle({**item, **changes}, lc)
        new["history"] = [*item.get("history", []), self._entry(now, op, actor, lc.status, note)]
        try:
            return self._replace(new, publish, **extra)
        except ConditionFailed as exc:
            raise Conflict(
                "the prescription changed meanwhile; read it again and retry", code="RX_CONCURRENT_UPDATE"
            ) from exc

    def _replace(self, new: dict[str, Any], publish: str | None, **extra: str) -> dict[str, Any]:
        """``repo.replace`` with the event's outbox row in the same transaction, dispatched after it."""
        intents = (
            [] if publish is None else [self._intent(publish, {**new, "version": int(new["version"]) + 1}, **extra)]
        )
        saved = self.repo.replace(new, also=self.events.puts(intents))
        self.events.dispatch(intents)
        return saved

    def _entry(self, now: float, op: str, actor: Actor, status: str, note: str = "") -> dict[str, Any]:
        return {"at": utc_iso(now), "op": op, "by": actor.audit_name, "status": status, "note": note}

    def _check_items(self, item: dict[str, Any], items: list[DispensedItem]) -> None:
        prescribed = {line["med_code"]: line["quantity"] for line in item["content"]["drugs"]}
        for n, got in enumerate(items, start=1):
            if got.med_code not in prescribed:
                raise ValidationFailed(f"item {n} is not on the prescription", code="ITEM_NOT_PRESCRIBED", status=422)
            if got.quantity > prescribed[got.med_code]:
                raise ValidationFailed(
                    f"item {n} exceeds the prescribed quantity", code="ITEM_QUANTITY_EXCEEDED", status=422
                )

    def _dispense_record(
        self, item: dict[str, Any], now: float, actor: Actor, channel: str, s: Any, items: list[DispensedItem]
    ) -> dict[str, Any]:
        record = {
            "use": int(item.get("uses", 0)) + 1,
            "at": utc_iso(now),
            "by_org": actor.id if actor.kind == "partner" else actor.org,
            "channel": channel,
            "setl_id": s.setl_id,
            "total_cents": s.total_cents,
            "fund_pay_cents": s.fund_pay_cents,
            "account_pay_cents": s.account_pay_cents,
            "cash_pay_cents": s.cash_pay_cents,
            "settled_at": s.settled_at.isoformat(),
            "items": [i.model_dump() for i in items],
        }
        return {"dispenses": [*item.get("dispenses", []), record]}

    def _content(self, item: dict[str, Any]) -> dict[str, Any]:
        rx_id = item["rx_id"]
        return {
            **item["content"],
            "rx_id": rx_id,
            "hi_rxno": item["hi_rxno"],
            "hospital": item["hospital"],
            "insured": json.loads(self.cipher.decrypt(item["insured_enc"], f"rx/insured/{rx_id}")),
            "diagnoses": json.loads(self.cipher.decrypt(item["diagnoses_enc"], f"rx/diagnoses/{rx_id}")),
        }

    def _pdf(self, item: dict[str, Any], content: dict[str, Any]) -> bytes:
        org = self.orgs(item["hospital"])
        names = {}
        for line in content["drugs"]:
            drug = self.catalogue.get(line["med_code"])
            names[line["med_code"]] = (
                f"{drug.name} {drug.spec}×{drug.pack_units}{drug.unit}/{drug.pack_unit}" if drug else line["med_code"]
            )
        return document.prescription_pdf(content, names, org.name if org else item["hospital"])

    def _audit(self, actor: Actor, action: str, item: dict[str, Any], outcome: str = "success") -> None:
        self.audit.record(
            actor=actor,
            action=action,
            resource=f"rx.prescription:{item['rx_id']}",
            patient_ref=item.get("patient_ref"),
            outcome=outcome,
            details={"status": item.get("status"), "hospital": item.get("hospital")},
        )

    def _intent(self, event_type: str, item: dict[str, Any], **extra: str) -> Any:
        # visit_id (the hospital's mdtrt_id) lets the guide service place the event on the patient's visit
        event = rx_contracts.BY_TYPE[event_type](
            rx_id=item["rx_id"],
            hospital=item["hospital"],
            patient_ref=item["patient_ref"],
            visit_id=item["content"]["visit"]["visit_id"],
            status=item["status"],
            valid_end=utc_iso(item["valid_end"]),
            uses=item.get("uses", 0),
            **extra,
        )
        # one id per (prescription, version): a re-sent event is recognisable as the same event
        return self.events.event(event, subject=item["rx_id"], event_id=f"{item['rx_id']}-{item['version']}")

    def _status(self, item: dict[str, Any]) -> StatusAnswer:
        lc = lifecycle_of(item)
        nxt = lc.next_use_from
        return StatusAnswer(
            rx_id=item["rx_id"],
            status=item["status"],
            center_status=states.CENTER_STATUS[lc.status],
            uses=lc.uses,
            max_uses=lc.max_uses,
            next_use_from=_dt(nxt) if nxt else None,
        )

    def _view(self, item: dict[str, Any], history: bool = False) -> PrescriptionView:
        lc = lifecycle_of(item)
        lines = []
        for n, line in enumerate(item["content"]["drugs"], start=1):
            drug = self.catalogue.get(line["med_code"])
            lines.append(
                LineView(
                    line=n,
                    med_code=line["med_code"],
                    drug_name=drug.name if drug else line["med_code"],
                    spec=drug.spec if drug else "",
                    quantity=line["quantity"],
                    pack_unit=drug.pack_unit if drug else "",
                    dose=line["dose"],
                    unit=drug.unit if drug else "",
                    frequency=line["frequency"],
                    days=line["days"],
                    route=line["route"],
                )
            )
        nxt = lc.next_use_from
        return PrescriptionView(
            rx_id=item["rx_id"],
            hi_rxno=item["hi_rxno"],
            hosp_rxno=item["hosp_rxno"],
            hospital=item["hospital"],
            status=item["status"],
            center_status=states.CENTER_STATUS[lc.status],
            prescribed_at=datetime.fromisoformat(item["prescribed_at"]),
            valid_end=_dt(lc.valid_end),
            circulation=lc.circulation,
            reusable=lc.reusable,
            uses=lc.uses,
            max_uses=lc.max_uses,
            next_use_from=_dt(nxt) if nxt else None,
            doctor_code=item["doctor_code"],
            doctor_name=item["doctor_name"],
            dept_name=item["dept_name"],
            patient_masked=item["patient_masked"],
            drugs=lines,
            history=[Transition.model_validate(h) for h in item.get("history", [])] if history else [],
        )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
