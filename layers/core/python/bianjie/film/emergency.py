"""Emergency retrieval (应急调阅): ask the 医联 imaging cloud to push a study now.

A request is recorded (FilmLinksTable ``emergency#{id}``, plus ``emergency-study#{study}`` rows so the
viewer can show the status of requests for its studies), queued on FilmEmergencyQueue, and sent by the
worker through the ``ImagingCloud`` port. The imaging cloud answers by putting the study's files into the
ingest bucket; the normal pipeline does the rest. Statuses: queued -> sent -> (failed).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bianjie.film.ports import Queue
from bianjie.kit.actor import Actor
from bianjie.kit.documents.port import DocumentStore, KeyCond
from bianjie.kit.encoding import b64url
from bianjie.kit.errors import Forbidden, NotFound
from bianjie.kit.timefmt import utc_iso

STATUS_TEXT = {"queued": "已提交", "sent": "已通知医联影像云推送", "failed": "推送请求失败"}


class EmergencyRequest(BaseModel):
    # What the OpenAPI document says of the rule the validator below enforces (schemathesis reads it).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["study_uid"], "properties": {"study_uid": {"type": "string"}}},
                {
                    "required": ["accession", "hospital"],
                    "properties": {"accession": {"type": "string"}, "hospital": {"type": "string"}},
                },
            ]
        },
    )

    study_uid: str | None = Field(None, pattern=r"^[0-9.]{1,64}$")
    # an accession number is DICOM SH text: any characters but control characters and the backslash
    # (DICOM's value separator); spaces are kept as sent
    accession: str | None = Field(
        None,
        pattern=r"^[^\x00-\x1f\x7f\\]{1,64}$",
        description="accession number (DICOM SH; up to 64 characters accepted), with hospital",
    )
    hospital: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="hospital code")

    @model_validator(mode="after")
    def _what(self) -> EmergencyRequest:
        if not self.study_uid and not (self.accession and self.hospital):
            raise ValueError("give study_uid, or accession with hospital")
        return self


class EmergencyJob(BaseModel):
    """The emergency queue's message (``Emergency.request`` sends it)."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(pattern=r"^em-[0-9a-f]{16}$")


class EmergencyAnswer(BaseModel):
    request_id: str
    status: str
    status_text: str
    study_uid: str | None
    accession: str | None
    hospital: str | None
    created_at: str
    updated_at: str
    detail: str | None = None


class ImagingCloud(Protocol):
    def request_push(self, *, study_uid: str | None, accession: str | None, hospital: str | None) -> str:
        """Asks the imaging cloud to push the study; returns its reference. Raises on refusal."""
        ...


class Emergency:
    def __init__(
        self,
        *,
        store: DocumentStore,
        table: str,
        queue: Queue,
        audit: Any,
        clock: Callable[[], float] = time.time,
        access: Callable[[str, str], bool] | None = None,
    ) -> None:
        """``access(hospital, "emergency")``: whether the hospital takes emergency pulls (admin.py)."""
        self.access = access
        self.store = store
        self.table = table
        self.queue = queue
        self.audit = audit
        self.clock = clock

    def request(self, body: EmergencyRequest, actor: Actor) -> EmergencyAnswer:
        """``actor``: a partner, or the holder of a viewing link (``Links.holder_for``); ``org`` is the app."""
        app_id = actor.org or actor.id
        if body.hospital is not None and actor.kind == "partner":
            allowed = list(actor.setting("film", "hospitals", [actor.id]))
            if "*" not in allowed and body.hospital not in allowed:
                raise Forbidden(
                    f"this app may not ask for studies of hospital {body.hospital}",
                    code="HOSPITAL_NOT_ALLOWED",
                )
        if body.hospital is not None and self.access is not None and not self.access(body.hospital, "emergency"):
            raise Forbidden(
                f"hospital {body.hospital} does not take emergency pulls (数据接入方式)", code="ACCESS_METHOD_DISABLED"
            )
        now = utc_iso(self.clock())
        request_id = "em-" + secrets.token_hex(8)
        item = {
            "pk": f"emergency#{request_id}",
            "sk": "request",
            "request_id": request_id,
            "status": "queued",
            "app_id": app_id,
            "actor": actor.audit_name,
            "study_uid": body.study_uid,
            "accession": body.accession,
            "hospital": body.hospital,
            "created_at": now,
            "updated_at": now,
        }
        self.store.put(self.table, item)
        if body.study_uid:
            self.store.put(
                self.table,
                {"pk": f"emergency-study#{body.study_uid}", "sk": f"{now}#{request_id}", "request_id": request_id},
            )
        self.queue.send({"request_id": request_id})
        self.audit.record(
            actor=actor,
            action="film.emergency.request",
            resource=(
                f"film.study:{body.study_uid}"
                if body.study_uid
                # an audit resource id holds no whitespace: the accession goes base64url-encoded
                else f"film.accession:{body.hospital}/{b64url((body.accession or '').encode('utf-8'))}"
            ),
            details={"request_id": request_id, "app_id": app_id},
        )
        return self._answer(item)

    def get(self, request_id: str, app_id: str | None = None) -> EmergencyAnswer:
        item = self.store.get(self.table, {"pk": f"emergency#{request_id}", "sk": "request"})
        if item is None or (app_id is not None and item["app_id"] != app_id):
            raise NotFound("no such emergency request for this app", code="EMERGENCY_NOT_FOUND")
        return self._answer(item)

    def for_study(self, study_uid: str, limit: int = 5) -> list[EmergencyAnswer]:
        rows = self.store.query(
            self.table, KeyCond.of("pk", f"emergency-study#{study_uid}"), limit=limit, descending=True
        ).items
        return [self.get(r["request_id"]) for r in rows]

    def process(self, request_id: str, cloud: ImagingCloud) -> EmergencyAnswer:
        item = self.store.get(self.table, {"pk": f"emergency#{request_id}", "sk": "request"})
        if item is None:
            raise NotFound("no such emergency request", code="EMERGENCY_NOT_FOUND")
        try:
            reference = cloud.request_push(
                study_uid=item.get("study_uid"), accession=item.get("accession"), hospital=item.get("hospital")
            )
            item.update(status="sent", detail=reference)
        except LookupError as exc:  # the cloud does not know the study: final, not retried
            item.update(status="failed", detail=str(exc)[:300])
        item["updated_at"] = utc_iso(self.clock())
        self.store.put(self.table, item)
        return self._answer(item)

    @staticmethod
    def _answer(item: dict[str, Any]) -> EmergencyAnswer:
        return EmergencyAnswer(
            request_id=item["request_id"],
            status=item["status"],
            status_text=STATUS_TEXT.get(item["status"], item["status"]),
            study_uid=item.get("study_uid"),
            accession=item.get("accession"),
            hospital=item.get("hospital"),
            created_at=item["created_at"],
            updated_at=item["updated_at"],
            detail=item.get("detail"),
        )
