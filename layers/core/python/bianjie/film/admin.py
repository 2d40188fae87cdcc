"""Film management (系统管理), the API side: staff roles per hospital, data access methods per hospital,
service institutions (partner apps' film settings), the administrative change log, files accepted
with problems.

Who may do what. A staff token (issued by identity) carries roles and a hospital. Film's own roles are
``film-admin`` (changes), ``film-auditor`` (reads settings and the change log, changes nothing) and
``film-operator`` (operations: DICOMweb, a study's problems). At a hospital a token's film role counts
only while this service's registry grants it to that staff member there (so a revoked grant takes effect
at once, before the token expires); staff of the centre (token hospital ``platform``, 申康) hold their
token's film roles for every hospital and are the only ones who change partner apps' settings. A call
whose caller lacks the permission is refused with 403 ``FILM_PERMISSION_DENIED``.

Every change is one audit record in the chain ``film-admin#{day}`` with ``before`` and ``after``,
written in the same transaction as the change (``AuditLog.record(also=...)``); the change log is read
from those chains (no second copy), and every read of it is audited too.

FilmAdminTable (pk, sk)::

    staff#{hospital}     {staff_id}    roles, enabled, version, updated_at, updated_by
    access#{hospital}    methods       s3_drop, stow, emergency (bool; absent = enabled), version, ...
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bianjie.film.catalog import Catalog
from bianjie.kit.actor import Actor
from bianjie.kit.documents.port import Cond, Delete, DocumentStore, KeyCond, Put, TransactionCanceled
from bianjie.kit.errors import AppError, Conflict, Forbidden, NotFound
from bianjie.kit.timefmt import utc_iso
from bianjie.kit.types import WHOLE

ADMIN, AUDITOR, OPERATOR = "film-admin", "film-auditor", "film-operator"
FILM_ROLES = (ADMIN, AUDITOR, OPERATOR)
CENTRE = "platform"
METHODS = ("s3_drop", "stow", "emergency")
ACCESS_CACHE_SECONDS = 30
MAX_LINK_TTL = 30 * 86400
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Role = Literal["film-admin", "film-auditor", "film-operator"]


def denied(what: str) -> AppError:
    return Forbidden(f"your film roles do not allow this: {what}", code="FILM_PERMISSION_DENIED")


def _code(value: str, what: str) -> str:
    if not _CODE.fullmatch(value):
        # a business rule on a path segment the schema cannot state: 422 (docs/partner-api.md 6)
        raise AppError(f"{what} is a code of letters, digits, '.', '_' or '-'", code="INVALID_CODE", status=422)
    return value


# -- models -------------------------------------------------------------------------------------------------


class StaffGrant(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    roles: list[Role] = Field(min_length=1, max_length=3, description="film roles at this hospital")
    enabled: bool = True

    @field_validator("roles")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class StaffEntry(BaseModel):
    hospital: str
    staff_id: str
    roles: list[str]
    enabled: bool
    updated_at: str
    updated_by: str


class StaffList(BaseModel):
    hospital: str
    items: list[StaffEntry]


class AccessMethods(BaseModel):
    """数据接入方式: how a hospital's studies may arrive. Absent means enabled."""

    model_config = ConfigDict(extra="forbid", strict=True)

    s3_drop: bool = Field(True, description="files put into the ingest bucket under {hospital}/")
    stow: bool = Field(True, description="DICOMweb STOW-RS (POST /film/dicomweb/studies)")
    emergency: bool = Field(True, description="emergency pull from the 医联 imaging cloud")


class AccessAnswer(AccessMethods):
    model_config = ConfigDict(extra="ignore")

    hospital: str
    updated_at: str | None = None
    updated_by: str | None = None


HOSPITAL_OR_ALL = r"^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$"


class PartnerFilmSettings(BaseModel):
    """A partner app's film settings (服务接入机构); a field left out is left as it is."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"minProperties": 1})

    allowed_cidrs: list[str] | None = Field(None, min_length=1, max_length=50, description="address allowlist")
    hospitals: list[Annotated[str, Field(pattern=HOSPITAL_OR_ALL)]] | None = Field(
        None, min_length=1, max_length=200, description='hospitals whose studies it may see; ["*"] for all'
    )
    default_ttl: Annotated[int, Field(ge=60, le=MAX_LINK_TTL), WHOLE] | None = Field(
        None, description="link lifetime, seconds"
    )
    max_ttl: Annotated[int, Field(ge=60, le=MAX_LINK_TTL), WHOLE] | None = Field(
        None, description="longest link lifetime, seconds"
    )

    @field_validator("hospitals")
    @classmethod
    def _hospitals(cls, value: list[str] | None) -> list[str] | None:
        return sorted(set(value)) if value is not None else None

    @model_validator(mode="after")
    def _something(self) -> PartnerFilmSettings:
        if not self.model_fields_set:
            raise ValueError("give at least one setting")
        return self


class PartnerFilmAnswer(BaseModel):
    app_id: str
    name: str
    status: str
    allowed_cidrs: list[str]
    hospitals: list[str]
    default_ttl: int
    max_ttl: int


class ChangeRecord(BaseModel):
    at: str
    actor: str
    action: str
    resource: str
    before: Any = None
    after: Any = None


class ChangeList(BaseModel):
    day: str
    items: list[ChangeRecord]


class ChangesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day, YYYY-MM-DD")
    hospital: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="only changes at this hospital"
    )
    actor: str | None = Field(None, max_length=128, description="only changes by this actor (staff:{hospital}/{id})")
    action: str | None = Field(None, max_length=64, description="only this operation (film.admin.staff.put ...)")


class Problem(BaseModel):
    series_uid: str
    sop_uid: str
    problems: list[dict[str, str]]
    at: str | None = None


class ProblemList(BaseModel):
    study_uid: str
    items: list[Problem]


# -- the service --------------------------------------------------------------------------------------------


class Admin:
    def __init__(
        self,
        *,
        store: DocumentStore,
        table: str,
        audit: Any,
        partners: Any = None,
        catalog: Callable[[], Catalog] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.table = table
        self.audit = audit
        self.partners = partners
        self.catalog = catalog
        self.clock = clock
        self._access: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    # -- permissions ---------------------------------------------------------------------------------

    def _grant(self, hospital: str, staff_id: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"pk": f"staff#{hospital}", "sk": staff_id})

    def roles_at(self, actor: Actor, hospital: str) -> set[str]:
        held = set(actor.roles) & set(FILM_ROLES)
        if actor.kind != "staff" or not held:
            return set()
        if actor.org == CENTRE:
            return held
        if actor.org != hospital:
            return set()
        grant = self._grant(hospital, actor.id)
        if grant is None or not grant.get("enabled", True):
            return set()
        return held & set(grant.get("roles") or [])

    def require(self, actor: Actor, hospital: str, *roles: str, what: str) -> None:
        if not self.roles_at(actor, hospital) & set(roles):
            raise denied(what)

    def require_centre(self, actor: Actor, *roles: str, what: str) -> None:
        if actor.kind != "staff" or actor.org != CENTRE or not set(actor.roles) & set(roles):
            raise denied(what + " (centre staff only)")

    def dicomweb_hospitals(self, actor: Actor) -> tuple[str, ...]:
        """What a staff token may read over DICOMweb: every hospital for the centre's operators and
        administrators, its own hospital while the registry grants it one of those roles, else nothing."""
        if actor.kind == "staff" and actor.org == CENTRE and set(actor.roles) & {ADMIN, OPERATOR}:
            return ("*",)
        if actor.org and self.roles_at(actor, actor.org) & {ADMIN, OPERATOR}:
            return (actor.org,)
        return ()

    # -- audit with the change -------------------------------------------------------------------------

    def _change(
        self, actor: Actor, action: str, resource: str, hospital: str | None, before: Any, after: Any, ops: list[Any]
    ) -> None:
        day = utc_iso(self.clock())[:10]
        try:
            self.audit.record(
                actor=actor,
                action=action,
                resource=resource,
                details={"hospital": hospital, "before": before, "after": after},
                chain=f"film-admin#{day}",
                also=ops,
            )
        except TransactionCanceled as exc:
            if any(exc.reasons[: len(ops)]):
                raise Conflict("the record changed meanwhile; read it again and retry", code="CHANGED") from None
            raise

    # -- staff -------------------------------------------------------------------------------------------

    @staticmethod
    def _entry(hospital: str, row: dict[str, Any]) -> StaffEntry:
        return StaffEntry(
            hospital=hospital,
            staff_id=row["sk"],
            roles=list(row.get("roles") or []),
            enabled=bool(row.get("enabled", True)),
            updated_at=str(row.get("updated_at") or ""),
            updated_by=str(row.get("updated_by") or ""),
        )

    def list_staff(self, actor: Actor, hospital: str) -> StaffList:
        _code(hospital, "hospital")
        self.require(actor, hospital, ADMIN, AUDITOR, what="list the film staff")
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.store.query(self.table, KeyCond.of("pk", f"staff#{hospital}"), limit=500, cursor=cursor)
            rows += page.items
            if not (cursor := page.cursor):
                break
        self.audit.record(actor=actor, action="film.admin.staff.list", resource=f"film.hospital:{hospital}")
        return StaffList(hospital=hospital, items=[self._entry(hospital, r) for r in rows])

    def put_staff(self, actor: Actor, hospital: str, staff_id: str, grant: StaffGrant) -> StaffEntry:
        _code(hospital, "hospital")
        _code(staff_id, "staff_id")
        if hospital == CENTRE:
            raise AppError(
                "the centre's staff take their film roles from their tokens", code="CENTRE_STAFF", status=422
            )
        self.require(actor, hospital, ADMIN, what="grant film roles")
        if actor.org == hospital and actor.id == staff_id and ADMIN not in grant.roles:
            raise Conflict("an administrator cannot take away their own film-admin role", code="SELF_DEMOTION")
        current = self._grant(hospital, staff_id)
        now = utc_iso(self.clock())
        version = int(current.get("version") or 0) if current else 0
        row = {
            "pk": f"staff#{hospital}",
            "sk": staff_id,
            "roles": grant.roles,
            "enabled": grant.enabled,
            "version": version + 1,
            "updated_at": now,
            "updated_by": actor.audit_name,
        }
        cond = Cond.eq("version", version) if current else Cond.absent()
        before = {"roles": current.get("roles"), "enabled": current.get("enabled", True)} if current else None
        self._change(
            actor,
            "film.admin.staff.put",
            f"film.staff:{hospital}/{staff_id}",
            hospital,
            before,
            {"roles": grant.roles, "enabled": grant.enabled},
            [Put(self.table, row, cond)],
        )
        return self._entry(hospital, row)

    def delete_staff(self, actor: Actor, hospital: str, staff_id: str) -> dict[str, Any]:
        _code(hospital, "hospital")
        _code(staff_id, "staff_id")
        self.require(actor, hospital, ADMIN, what="revoke film roles")
        current = self._grant(hospital, staff_id)
        if current is None:
            raise NotFound("no film roles are granted to this staff member here", code="STAFF_NOT_FOUND")
        if actor.org == hospital and actor.id == staff_id:
            raise Conflict("an administrator cannot revoke their own film roles", code="SELF_DEMOTION")
        cond = Cond.eq("version", int(current.get("version") or 0))
        self._change(
            actor,
            "film.admin.staff.delete",
            f"film.staff:{hospital}/{staff_id}",
            hospital,
            {"roles": current.get("roles"), "enabled": current.get("enabled", True)},
            None,
            [Delete(self.table, {"pk": f"staff#{hospital}", "sk": staff_id}, cond)],
        )
        return {"hospital": hospital, "staff_id": staff_id, "revoked": True}

    # -- data access methods ----------------------------------------------------------------------------

    def _access_row(self, hospital: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"pk": f"access#{hospital}", "sk": "methods"})

    def get_access(self, actor: Actor, hospital: str) -> AccessAnswer:
        _code(hospital, "hospital")
        self.require(actor, hospital, ADMIN, AUDITOR, OPERATOR, what="read the data access methods")
        row = self._access_row(hospital) or {}
        return AccessAnswer(
            hospital=hospital, **{k: row[k] for k in (*METHODS, "updated_at", "updated_by") if k in row}
        )

    def put_access(self, actor: Actor, hospital: str, methods: AccessMethods) -> AccessAnswer:
        _code(hospital, "hospital")
        self.require(actor, hospital, ADMIN, what="change the data access methods")
        current = self._access_row(hospital)
        version = int(current.get("version") or 0) if current else 0
        now = utc_iso(self.clock())
        row = {
            "pk": f"access#{hospital}",
            "sk": "methods",
            **methods.model_dump(),
            "version": version + 1,
            "updated_at": now,
            "updated_by": actor.audit_name,
        }
        before = {m: bool(current.get(m, True)) for m in METHODS} if current else {m: True for m in METHODS}
        self._change(
            actor,
            "film.admin.access.put",
            f"film.access:{hospital}",
            hospital,
            before,
            methods.model_dump(),
            [Put(self.table, row, Cond.eq("version", version) if current else Cond.absent())],
        )
        with self._lock:
            self._access.pop(hospital, None)
        return AccessAnswer(hospital=hospital, **methods.model_dump(), updated_at=now, updated_by=actor.audit_name)

    def enabled(self, hospital: str, method: str) -> bool:
        """Whether the hospital takes data this way (ingest, STOW-RS, emergency pull enforce it). Read at
        most every ``ACCESS_CACHE_SECONDS`` per process: a change reaches every function within that."""
        now = self.clock()
        with self._lock:
            cached = self._access.get(hospital)
        if cached is None or now - cached[0] > ACCESS_CACHE_SECONDS:
            cached = (now, self._access_row(hospital))
            with self._lock:
                self._access[hospital] = cached
        row = cached[1] or {}
        return bool(row.get(method, True))

    # -- service institutions (partner apps' film settings) ----------------------------------------------

    def _partner(self, app_id: str) -> Any:
        _code(app_id, "app_id")
        partner = self.partners.get(app_id) if self.partners is not None else None
        if partner is None:
            raise NotFound("no such partner app", code="PARTNER_NOT_FOUND")
        return partner

    @staticmethod
    def _partner_answer(partner: Any) -> PartnerFilmAnswer:
        film = (partner.settings or {}).get("film") or {}
        from bianjie.film.links import DEFAULT_TTL, MAX_TTL

        return PartnerFilmAnswer(
            app_id=partner.app_id,
            name=partner.name,
            status=partner.status,
            allowed_cidrs=list(partner.allowed_cidrs),
            hospitals=list(film.get("hospitals") or [partner.app_id]),
            default_ttl=int(film.get("default_ttl") or DEFAULT_TTL),
            max_ttl=int(film.get("max_ttl") or MAX_TTL),
        )

    def get_partner(self, actor: Actor, app_id: str) -> PartnerFilmAnswer:
        self.require_centre(actor, ADMIN, AUDITOR, what="read a partner app's film settings")
        return self._partner_answer(self._partner(app_id))

    def put_partner(self, actor: Actor, app_id: str, settings: PartnerFilmSettings) -> PartnerFilmAnswer:
        self.require_centre(actor, ADMIN, what="change a partner app's film settings")
        before = self._partner_answer(self._partner(app_id))
        merged = before.model_dump()
        merged.update(settings.model_dump(exclude_unset=True))
        if merged["default_ttl"] > merged["max_ttl"]:
            raise AppError("default_ttl cannot exceed max_ttl", code="TTL_INVALID", status=422)
        if settings.allowed_cidrs is not None:
            from bianjie.kit.partners import normalise_cidrs

            try:  # checked before anything is written: a business rule the schema cannot state, 422
                normalise_cidrs(settings.allowed_cidrs)
            except AppError as exc:
                raise AppError(exc.message, code="CIDRS_INVALID", status=422) from None
            self.partners.set_cidrs(app_id, settings.allowed_cidrs)
        for name in ("hospitals", "default_ttl", "max_ttl"):
            if name in settings.model_fields_set:
                self.partners.set_setting(app_id, "film", name, getattr(settings, name))
        self.partners.invalidate(app_id)
        after = self._partner_answer(self._partner(app_id))
        keys = ("allowed_cidrs", "hospitals", "default_ttl", "max_ttl")
        self._change(
            actor,
            "film.admin.partner.put",
            f"film.partner:{app_id}",
            None,
            {k: before.model_dump()[k] for k in keys},
            {k: after.model_dump()[k] for k in keys},
            [],
        )
        return after

    # -- the change log ------------------------------------------------------------------------------------

    def changes(self, actor: Actor, query: ChangesQuery) -> ChangeList:
        """Administrative changes of one day, read from the audit chains; the read is audited too."""
        if query.hospital is not None:
            _code(query.hospital, "hospital")
            self.require(actor, query.hospital, ADMIN, AUDITOR, what="read the change log")
        else:
            self.require_centre(actor, ADMIN, AUDITOR, what="read every hospital's change log")
        items: list[ChangeRecord] = []
        for record in self.audit.records(f"film-admin#{query.day}"):
            details = record.details or {}
            if not record.action.startswith("film.admin.") or record.action.endswith((".list", ".read")):
                continue
            if query.hospital is not None and details.get("hospital") != query.hospital:
                continue
            if query.actor is not None and record.actor != query.actor:
                continue
            if query.action is not None and record.action != query.action:
                continue
            items.append(
                ChangeRecord(
                    at=record.ts,
                    actor=record.actor,
                    action=record.action,
                    resource=record.resource,
                    before=details.get("before"),
                    after=details.get("after"),
                )
            )
        self.audit.record(
            actor=actor,
            action="film.admin.changes.read",
            resource=f"film.hospital:{query.hospital or '*'}",
            details={"day": query.day, "actor": query.actor, "action": query.action, "found": len(items)},
        )
        return ChangeList(day=query.day, items=items)

    # -- files accepted with problems ---------------------------------------------------------------------

    def problems(self, actor: Actor, study_uid: str) -> ProblemList:
        if self.catalog is None:
            raise RuntimeError("Admin.problems needs the catalog")
        catalog = self.catalog()
        row = catalog.study(study_uid) if re.fullmatch(r"[0-9A-Za-z._-]{1,128}", study_uid) else None
        hospital = str(row.get("hospital")) if row else ""
        if row is None or not self.roles_at(actor, hospital) & {ADMIN, AUDITOR, OPERATOR}:
            # unknown and not yours look alike: a study's existence does not leak to other hospitals
            raise NotFound("no such study at your hospital", code="STUDY_NOT_FOUND")
        items = [
            Problem(series_uid=r["series_uid"], sop_uid=r["sop_uid"], problems=r["problems"], at=r.get("at"))
            for r in catalog.problems(study_uid)
        ]
        self.audit.record(
            actor=actor,
            action="film.admin.problems.read",
            resource=f"film.study:{study_uid}",
            patient_ref=(row.get("patient_refs") or [None])[0],
            details={"hospital": hospital, "found": len(items)},
        )
        return ProblemList(study_uid=study_uid, items=items)
