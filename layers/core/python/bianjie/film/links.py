"""Viewing links (云胶片调阅URL): minted for partners, verified on every use, revocable.

Every use of a link is one audit record (chain ``film#{day}``, see ``bianjie.kit.audit``): actor the
link, action ``film.link.{page|manifest|share}``, time, client address, request id, and in ``details``
the app, hospitals, studies and user agent; that chain is the access log (there is no separate one).

A link key is 24 random bytes (192 bits) and a 12-byte HMAC-SM3 tag over them, base64url (48 chars).
The tag lets us refuse an altered key (LINK_INVALID) before touching storage; the store holds only the
SM3 hash of the key, so a leaked table does not leak usable links.

FilmLinksTable (pk, sk; TTL ``expires_ttl``)::

    link#{sm3(key)}     link                 app_id, scope (study | patient), study_uids | patient_ref,
                                             hospitals the issuing app may see, expires_at, revoked_at,
                                             parent (the link a shared link was derived from)
    emergency#{id}      request              an emergency retrieval request and its status (emergency.py)
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bianjie.film import errors, layout
from bianjie.film.catalog import Catalog
from bianjie.kit.actor import Actor, Origin
from bianjie.kit.config import carry_scope
from bianjie.kit.crypto import hmac_sm3, sm3
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore
from bianjie.kit.encoding import b64url, b64url_decode
from bianjie.kit.masking import mask_name
from bianjie.kit.objects import ObjectStore
from bianjie.kit.timefmt import utc_iso

RANDOM_BYTES = 24
TAG_BYTES = 12
KEY_LENGTH = 48  # base64url of 36 bytes
DEFAULT_TTL = 7 * 86400
MAX_TTL = 30 * 86400
SHARE_MAX_TTL = 3 * 86400
KEEP_AFTER_EXPIRY = 30 * 86400  # expired links answer LINK_EXPIRED (not "unknown") for a month
URL_TTL = 600  # presigned object URLs live ten minutes; the viewer refreshes the manifest before then
ID_TYPES = {"id_card": "id_number", "mrn": "medical_record_no"}


class LinkRequest(BaseModel):
    """One study (``study_uid``), or every study of a patient (``patient_id`` + ``id_type``)."""

    # What the OpenAPI document says of the rules ``_one_scope`` enforces (schemathesis reads it).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["study_uid"],
                    "properties": {"study_uid": {"type": "string"}, "patient_id": {"type": "null"}},
                },
                {
                    "required": ["patient_id", "id_type"],
                    "properties": {
                        "patient_id": {"type": "string"},
                        "study_uid": {"type": "null"},
                        "id_type": {"type": "string"},
                    },
                },
            ],
            "if": {"required": ["id_type"], "properties": {"id_type": {"const": "mrn"}}},
            "then": {"required": ["hospital"], "properties": {"hospital": {"type": "string", "minLength": 1}}},
        },
    )

    study_uid: str | None = Field(None, pattern=r"^[0-9.]{1,64}$", description="StudyInstanceUID")
    patient_id: str | None = Field(None, min_length=1, max_length=64, description="identifier of the patient")
    id_type: Literal["id_card", "mrn"] | None = Field(
        None, description="id_card: resident ID card (all hospitals); mrn: the hospital's patient id"
    )
    hospital: str | None = Field(None, max_length=64, description="hospital code, required with id_type=mrn")
    expires_in: int | None = Field(None, ge=60, description="seconds; capped by the app's maximum")

    @model_validator(mode="after")
    def _one_scope(self) -> LinkRequest:
        if (self.study_uid is None) == (self.patient_id is None):
            raise ValueError("give either study_uid or patient_id (with id_type)")
        if self.patient_id is not None and self.id_type is None:
            raise ValueError("id_type is required with patient_id")
        if self.id_type == "mrn" and not self.hospital:
            raise ValueError("hospital is required with id_type=mrn")
        return self


class LinkAnswer(BaseModel):
    url: str
    key: str
    expires_at: str
    scope: Literal["study", "patient"]
    studies: int


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: int = Field(86400, ge=60, le=SHARE_MAX_TTL, description="seconds, at most three days")


@dataclass(frozen=True)
class Link:
    key_hash: str
    item: dict[str, Any]

    @property
    def app_id(self) -> str:
        return str(self.item["app_id"])

    @property
    def expires_at(self) -> float:
        return float(self.item["expires_at"])

    def holder(self, origin: Origin) -> Actor:
        """Whoever holds the link (the link is the credential): a patient-side actor named by the key's
        hash prefix, of the app that minted it."""
        return Actor(
            kind="patient",
            id=f"link-{self.key_hash[:16]}",
            org=self.app_id,
            source_ip=origin.source_ip,
            request_id=origin.request_id,
        )


class Links:
    def __init__(
        self,
        *,
        store: DocumentStore,
        table: str,
        catalog: Catalog,
        mac_key: bytes,
        blind_index: Any,
        cipher: Any,
        audit: Any,
        presigner: ObjectStore | None = None,
        derived_bucket: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.table = table
        self.catalog = catalog
        self.mac_key = mac_key
        self.blind = blind_index
        self.cipher = cipher
        self.audit = audit
        self.presigner = presigner
        self.bucket = derived_bucket
        self.clock = clock

    # -- keys ------------------------------------------------------------------------------------

    def _new_key(self) -> str:
        random_part = secrets.token_bytes(RANDOM_BYTES)
        return b64url(random_part + hmac_sm3(self.mac_key, random_part)[:TAG_BYTES])

    def _check_key(self, key: str) -> str:
        """The key's storage hash; LINK_INVALID when it is malformed or its tag does not match."""
        if len(key) != KEY_LENGTH or not key.isascii():
            raise errors.link_malformed()
        try:
            raw = b64url_decode(key)
        except ValueError:
            raise errors.link_malformed() from None
        random_part, tag = raw[:RANDOM_BYTES], raw[RANDOM_BYTES:]
        if len(tag) != TAG_BYTES or not hmac.compare_digest(tag, hmac_sm3(self.mac_key, random_part)[:TAG_BYTES]):
            raise errors.link_malformed()
        return sm3(key.encode("ascii")).hex()

    # -- partner side ------------------------------------------------------------------------------

    def create(self, partner: Actor, request: LinkRequest, *, base_url: str) -> LinkAnswer:
        hospitals = list(partner.setting("film", "hospitals", [partner.id]))
        ttl = min(
            request.expires_in or int(partner.setting("film", "default_ttl", DEFAULT_TTL)),
            int(partner.setting("film", "max_ttl", MAX_TTL)),
        )
        now = self.clock()
        item: dict[str, Any] = {"app_id": partner.id, "hospitals": hospitals}
        if request.study_uid:
            study = self.catalog.study(request.study_uid)
            if study is None or not _visible(study, hospitals):
                raise errors.study_not_found()
            item.update(scope="study", study_uids=[request.study_uid])
            patient_ref = (study.get("patient_refs") or [None])[0]
            count = 1
        else:
            assert request.patient_id and request.id_type
            value = request.patient_id if request.id_type == "id_card" else f"{request.hospital}:{request.patient_id}"
            patient_ref = self.blind.digest(value, ID_TYPES[request.id_type])
            rows = [r for r in self.catalog.studies_of_patient(patient_ref) if _visible(r, hospitals)]
            if not rows:
                raise errors.patient_not_found()
            item.update(scope="patient", patient_ref=patient_ref)
            count = len(rows)
        key = self._new_key()
        key_hash = sm3(key.encode("ascii")).hex()
        expires_at = now + ttl
        item.update(
            pk=f"link#{key_hash}",
            sk="link",
            created_at=utc_iso(now),
            expires_at=int(expires_at),
            expires_ttl=int(expires_at + KEEP_AFTER_EXPIRY),
        )
        self.store.put(self.table, item, condition=Cond.absent())
        self.audit.record(
            actor=partner,
            action="film.link.create",
            resource=f"film.link:{key_hash[:16]}",
            patient_ref=patient_ref,
            details={"scope": item["scope"], "studies": count, "ttl": ttl},
        )
        return LinkAnswer(
            url=f"{base_url}/film/v/{key}", key=key, expires_at=utc_iso(expires_at), scope=item["scope"], studies=count
        )

    def revoke(self, partner: Actor, key: str) -> dict[str, Any]:
        key_hash = self._check_key(key)
        item = self.store.get(self.table, {"pk": f"link#{key_hash}", "sk": "link"})
        if item is None:
            raise errors.link_not_found()
        if item["app_id"] != partner.id:
            raise errors.link_not_yours()
        if not item.get("revoked_at"):
            item["revoked_at"] = utc_iso(self.clock())
            with contextlib.suppress(ConditionFailed):  # revoked concurrently: same outcome
                self.store.put(self.table, item, condition=Cond.attr_absent("revoked_at"))
        self.audit.record(actor=partner, action="film.link.revoke", resource=f"film.link:{key_hash[:16]}")
        return {"key": key, "revoked_at": item["revoked_at"]}

    # -- patient side ------------------------------------------------------------------------------

    def open(self, key: str) -> Link:
        """Verifies a link (tag, existence, revocation, expiry, and the same for the link it was shared from)."""
        key_hash = self._check_key(key)
        item = self.store.get(self.table, {"pk": f"link#{key_hash}", "sk": "link"})
        if item is None:
            raise errors.link_not_found()
        self._check_live(item)
        if item.get("parent"):
            parent = self.store.get(self.table, {"pk": f"link#{item['parent']}", "sk": "link"})
            if parent is None:
                raise errors.link_not_found()
            self._check_live(parent)
        return Link(key_hash, item)

    def _check_live(self, item: dict[str, Any]) -> None:
        if item.get("revoked_at"):
            raise errors.link_revoked()
        if float(item["expires_at"]) <= self.clock():
            raise errors.link_expired()

    def studies(self, link: Link) -> list[dict[str, Any]]:
        """The link's studies, newest first (a patient link also sees studies ingested after it was minted)."""
        hospitals = list(link.item.get("hospitals") or [])
        if link.item["scope"] == "study":
            rows = [self.catalog.study(uid) for uid in link.item.get("study_uids") or []]
        else:
            uids = [r["study_uid"] for r in self.catalog.studies_of_patient(link.item["patient_ref"])]
            rows = (
                list(_pool().map(carry_scope(self.catalog.study), uids))
                if len(uids) > 1
                else [self.catalog.study(u) for u in uids]
            )
        studies = [s for s in rows if s is not None and _visible(s, hospitals)]
        studies.sort(key=lambda s: (s.get("date") or "", s.get("time") or ""), reverse=True)
        return studies

    def record_use(
        self, link: Link, studies: list[dict[str, Any]], *, kind: str, origin: Origin, user_agent: str
    ) -> None:
        """The access log entry of one use: an audit record (one chained append, no second write)."""
        refs = [r for s in studies for r in (s.get("patient_refs") or [])[:1]]
        self.audit.record(
            actor=link.holder(origin),
            action=f"film.link.{kind}",
            resource=f"film.study:{studies[0]['study_uid'] if studies else '-'}",
            patient_ref=refs[0] if refs else None,
            details={
                "app_id": link.app_id,
                "hospitals": sorted({s.get("hospital") or "" for s in studies}),
                "studies": len(studies),
                "study_uids": [s["study_uid"] for s in studies][:50],
                "user_agent": (user_agent or "")[:300],
            },
        )

    def view(
        self,
        link: Link,
        *,
        kind: str,
        study_uid: str | None = None,
        origin: Origin,
        user_agent: str,
    ) -> dict[str, Any]:
        """The manifest for one use of a verified link, with the use recorded.

        The reads and the audit append overlap: the series of a study link are read while its study
        rows are, and the manifest is built while the audit record is appended. The manifest is returned
        only once the audit append succeeded, so an unrecorded access is never served."""
        pool = _pool()
        ids = list(link.item.get("study_uids") or []) if link.item["scope"] == "study" else []
        guess = (study_uid if study_uid in ids else ids[0]) if ids else None
        series = pool.submit(carry_scope(self.catalog.series), guess) if guess else None
        studies = self.studies(link)
        audit = pool.submit(
            carry_scope(self.record_use),
            link,
            studies,
            kind=kind,
            origin=origin,
            user_agent=user_agent,
        )
        try:
            manifest = self.manifest(link, studies, study_uid, series_of={guess: series} if guess and series else None)
        finally:
            audit.result()
        return manifest

    def share(self, key: str, request: ShareRequest, *, base_url: str, origin: Origin, user_agent: str) -> LinkAnswer:
        """A shorter-lived link to the same studies (e.g. for a doctor); revoked with its parent. The
        holder's use of the link is recorded like a view."""
        link = self.open(key)
        answer = self._derive(link, request, base_url=base_url)
        self.record_use(link, self.studies(link), kind="share", origin=origin, user_agent=user_agent)
        return answer

    def holder_for(
        self,
        key: str,
        study_uid: str | None,
        origin: Origin,
        *,
        accession: str | None = None,
        hospital: str | None = None,
    ) -> Actor:
        """The holder of a live link, as the actor of a request about one study the link covers, named by
        ``study_uid`` or by ``accession`` with ``hospital``: STUDY_NOT_FOUND otherwise, as for any study
        the link does not show (a link never reaches another hospital's or another patient's study)."""
        link = self.open(key)
        shown = self.studies(link)
        if study_uid:
            covered = any(s["study_uid"] == study_uid for s in shown)
        else:
            covered = any(s.get("accession") == accession and s.get("hospital") == hospital for s in shown)
        if not covered:
            raise errors.study_not_found()
        return link.holder(origin)

    def _derive(self, link: Link, request: ShareRequest, *, base_url: str) -> LinkAnswer:
        now = self.clock()
        expires_at = min(now + request.expires_in, link.expires_at)
        key = self._new_key()
        key_hash = sm3(key.encode("ascii")).hex()
        item = {
            k: v for k, v in link.item.items() if k in {"app_id", "hospitals", "scope", "study_uids", "patient_ref"}
        }
        item.update(
            pk=f"link#{key_hash}",
            sk="link",
            parent=link.item.get("parent") or link.key_hash,
            created_at=utc_iso(now),
            expires_at=int(expires_at),
            expires_ttl=int(expires_at + KEEP_AFTER_EXPIRY),
        )
        self.store.put(self.table, item, condition=Cond.absent())
        count = len(item.get("study_uids") or []) or len(self.studies(link))
        return LinkAnswer(
            url=f"{base_url}/film/v/{key}", key=key, expires_at=utc_iso(expires_at), scope=item["scope"], studies=count
        )

    # -- manifest ----------------------------------------------------------------------------------

    def manifest(
        self,
        link: Link,
        studies: list[dict[str, Any]],
        study_uid: str | None = None,
        series_of: dict[str, Future[list[dict[str, Any]]]] | None = None,
    ) -> dict[str, Any]:
        """Everything the viewer needs: the study list, and for one study its series with presigned URLs
        (``series_of``: series rows already being read, by study)."""
        now = self.clock()
        current = next((s for s in studies if s["study_uid"] == study_uid), studies[0] if studies else None)
        patient: dict[str, Any] = {"name": None, "sex": None}
        if current is not None:
            name = self.cipher.decrypt_optional(
                current.get("patient_name"), f"film/patient_name/{current['study_uid']}"
            )
            patient = {"name": mask_name(name), "sex": current.get("patient_sex")}
        return {
            "patient": patient,
            "link": {"expires_at": utc_iso(link.expires_at), "shared": bool(link.item.get("parent"))},
            "urls_expire_at": utc_iso(now + URL_TTL),
            "studies": [_study_summary(s) for s in studies],
            "study": self._study_detail(current, (series_of or {}).get(current["study_uid"]))
            if current is not None
            else None,
        }

    def _study_detail(self, study: dict[str, Any], rows: Future[list[dict[str, Any]]] | None = None) -> dict[str, Any]:
        assert self.presigner is not None
        st = study["study_uid"]
        found = rows.result() if rows is not None else self.catalog.series(st)
        series = sorted(found, key=lambda s: (s.get("number") or 0, s["series_uid"]))
        keys: list[str] = []
        spans = []
        for s in series:
            se = s["series_uid"]
            start = len(keys)
            keys += [layout.series_metadata(st, se), layout.thumbnail(st, se)]
            keys += [layout.frame(st, se, sop, n) for sop, n in s["frames"]]
            keys += [layout.lossy(st, se, sop, n) for sop, n in s["frames"]]
            spans.append(start)
        report = study.get("report") if study.get("has_report") else None
        if report:
            keys.append(report["key"])
        urls = self.presigner.presigned_gets(self.bucket, keys, URL_TTL)
        out = []
        for s, start in zip(series, spans, strict=True):
            count = len(s["frames"])
            out.append(
                {
                    "series_uid": s["series_uid"],
                    "number": s.get("number"),
                    "modality": s.get("modality"),
                    "description": s.get("description"),
                    "body_part": s.get("body_part"),
                    "frame_count": count,
                    "frame_time_ms": s.get("frame_time_ms"),
                    "render": s.get("render"),
                    "metadata": urls[start],
                    "thumbnail": urls[start + 1],
                    "frames": urls[start + 2 : start + 2 + count],
                    "lossy": urls[start + 2 + count : start + 2 + 2 * count],
                    "instances": s["frames"],
                }
            )
        return {**_study_summary(study), "series": out, "report": _report(report, urls[-1]) if report else None}


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads for the overlapping reads and the audit append of a link's use (one pool per process)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="film-links")
        return _POOL


def _visible(study: dict[str, Any], hospitals: list[str]) -> bool:
    return "*" in hospitals or study.get("hospital") in hospitals


def _report(report: dict[str, Any], url: str) -> dict[str, Any]:
    """The report for the viewer: a presigned URL to the PDF, or to the SR rendered as JSON. The text is not
    inlined: the manifest stays a catalog read (no object read before the first image), and the report
    text stays out of the catalog."""
    return {
        "kind": report.get("kind"),
        "title": report.get("title"),
        "reported_at": report.get("reported_at"),
        "content_type": report.get("content_type"),
        "url": url,
    }


def _study_summary(study: dict[str, Any]) -> dict[str, Any]:
    return {
        "study_uid": study["study_uid"],
        "hospital": study.get("hospital"),
        "institution": study.get("institution"),
        "date": study.get("date"),
        "time": study.get("time"),
        "description": study.get("description"),
        "accession": study.get("accession"),
        "modalities": study.get("modalities") or [],
        "series_count": study.get("series_count") or 0,
        "instance_count": study.get("instance_count") or 0,
        "has_report": bool(study.get("has_report")),
    }
