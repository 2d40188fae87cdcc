"""我的影像: a resident's own studies, for the patient himself (the 随申办 entry's 云影像), by provider token.

Which studies are the person's: the catalog's ``patient#{ref}`` index rows, where ``ref`` is the
HMAC-SM3 blind index of the resident ID number that ingest wrote from the DICOM (OtherPatientIDs with
issuer ``CN-ID``, docs/film.md). The provider's patient token carries the same blind index as ``id_ref``
(``Actor.patient_ref``; both are ``BlindIndex.digest(id_number, "id_number")`` under the platform's one
blind-index key), so no identifier crosses services and film imports nothing of identity. A study that
carries only a hospital's MRN is not found here (see docs/film.md, 我的影像, for what that would need).

Opening one study mints a short-lived study-scoped viewing link (the existing viewer at
``/film/v/{key}``; the key is random, so the URL names no patient), issued on demand, one per open, so
no credential is minted for studies the person never opens. Every list and every open is audited.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from bianjie.film import errors
from bianjie.film.catalog import Catalog
from bianjie.film.links import KEEP_AFTER_EXPIRY, Links
from bianjie.kit.actor import Actor
from bianjie.kit.crypto import sm3
from bianjie.kit.documents.port import Cond, KeyCond
from bianjie.kit.errors import Forbidden
from bianjie.kit.timefmt import utc_iso

VIEW_TTL = 2 * 3600  # a link opened from the entry lives two hours; the person opens it again from the list
SELF_APP = "patient-self"  # the "app" of links a patient mints for himself (the access log's app_id)
STUDY_UID = r"^[0-9.]{1,64}$"


class MyStudiesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(10, ge=1, le=50, description="studies per page")
    cursor: Annotated[str, Field(max_length=2000)] | None = Field(None, description="from the previous page")


class MyStudy(BaseModel):
    study_uid: str
    hospital: str | None = Field(description="hospital code the study is recorded under")
    institution: str | None = Field(description="InstitutionName from the images")
    date: str | None = Field(description="study date, YYYY-MM-DD")
    description: str | None
    modalities: list[str] = Field(description="DICOM modalities (CT, MR, US, ...)")
    body_parts: list[str] = Field(description="BodyPartExamined of the series (CHEST, HEAD, ...)")
    series_count: int
    has_report: bool
    view: str = Field(description="POST here for a viewing link (the path names the study, never the patient)")


class MyStudyList(BaseModel):
    items: list[MyStudy]
    cursor: str | None = Field(description="give it back for the next page; null on the last")


class MyViewAnswer(BaseModel):
    url: str = Field(description="the viewer page; its key is random and names no patient")
    expires_at: str


def _iso_date(value: Any) -> str | None:
    text = str(value or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else None


def _no_ref() -> Forbidden:
    return Forbidden("这个登录没有实名信息，无法查询本人影像；请用随申办或一网通办登录", code="REAL_NAME_REQUIRED")


class MyStudies:
    def __init__(
        self,
        *,
        catalog: Catalog,
        links: Links,
        audit: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog, self.links, self.audit, self.clock = catalog, links, audit, clock

    def _ref(self, actor: Actor) -> str:
        if actor.kind != "patient" or not actor.patient_ref:
            raise _no_ref()
        return actor.patient_ref

    def list(self, actor: Actor, query: MyStudiesQuery) -> MyStudyList:
        ref = self._ref(actor)
        page = self.catalog.store.query(
            self.catalog.table,
            KeyCond.of("pk", f"patient#{ref}"),
            limit=query.limit,
            cursor=query.cursor,
            descending=True,
        )
        items: list[MyStudy] = []
        for row in page.items:
            study = self.catalog.study(str(row["study_uid"]))
            if study is None or ref not in (study.get("patient_refs") or []):
                continue
            series = self.catalog.series(study["study_uid"])
            parts = sorted({str(s["body_part"]) for s in series if s.get("body_part")})
            items.append(
                MyStudy(
                    study_uid=study["study_uid"],
                    hospital=study.get("hospital"),
                    institution=study.get("institution"),
                    date=_iso_date(study.get("date")),
                    description=study.get("description"),
                    modalities=list(study.get("modalities") or []),
                    body_parts=parts,
                    series_count=int(study.get("series_count") or len(series)),
                    has_report=bool(study.get("has_report")),
                    view=f"/film/my/studies/{study['study_uid']}/view",
                )
            )
        self.audit.record(
            actor=actor,
            action="film.my.list",
            resource="film.my:studies",
            patient_ref=ref,
            details={"studies": len(items), "study_uids": [i.study_uid for i in items][:50]},
        )
        return MyStudyList(items=items, cursor=page.cursor)

    def view(self, actor: Actor, study_uid: str, *, base_url: str) -> MyViewAnswer:
        """A study-scoped viewing link for one of the person's own studies; another person's study, or
        an unknown one, is STUDY_NOT_FOUND alike."""
        ref = self._ref(actor)
        study = self.catalog.study(study_uid) if re.fullmatch(STUDY_UID, study_uid) else None
        if study is None or ref not in (study.get("patient_refs") or []):
            raise errors.study_not_found()
        now = self.clock()
        key = self.links._new_key()  # the links' own key format (its tag is checked on every use)
        key_hash = sm3(key.encode("ascii")).hex()
        expires_at = now + VIEW_TTL
        self.links.store.put(
            self.links.table,
            {
                "pk": f"link#{key_hash}",
                "sk": "link",
                "app_id": SELF_APP,
                "hospitals": [study.get("hospital") or ""],
                "scope": "study",
                "study_uids": [study_uid],
                "patient_ref": ref,
                "holder": actor.id,
                "created_at": utc_iso(now),
                "expires_at": int(expires_at),
                "expires_ttl": int(expires_at + KEEP_AFTER_EXPIRY),
            },
            condition=Cond.absent(),
        )
        self.audit.record(
            actor=actor,
            action="film.my.view",
            resource=f"film.study:{study_uid}",
            patient_ref=ref,
            details={"link": key_hash[:16], "hospital": study.get("hospital"), "ttl": VIEW_TTL},
        )
        return MyViewAnswer(url=f"{base_url}/film/v/{key}", expires_at=utc_iso(expires_at))
