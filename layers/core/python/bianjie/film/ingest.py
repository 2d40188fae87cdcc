"""Ingest: a DICOM object lands in the ingest bucket; we derive what the viewer reads and catalog it.

``Ingest.handle_batch`` takes the SQS messages of one invocation (S3 notifications in their bodies):
1. each object is read, decoded and derived (``bianjie.film.dicom``, imported lazily: it needs the
   imaging layer), its frames and previews written to the derived bucket, its instance row, study row
   and patient index rows written to the catalog;
2. then the batch is merged into each touched series and study (``bianjie.film.aggregate``): series
   metadata (DICOM JSON), thumbnail, series row (what the manifest is made from), study row and QIDO
   JSON, incrementally and safe under concurrent batches.

Idempotent: an object already ingested with the same ETag is skipped (``source#`` row), and every
derived key is a pure function of the UIDs, so a redelivery after a crash rewrites the same bytes.
The rows of a batch's instances (``inst#`` and ``source#``, two per instance) are written together in
one catalog transaction after every object of the batch is in the derived bucket: one storage call per
batch instead of two per instance, and an instance is either fully recorded or not at all.
A permanent failure (not DICOM, undecodable) is recorded as an ``error#`` row and sent to the DLQ with
its reason, and the message is acknowledged; anything else (storage down) fails the message so SQS
retries it, and after ``maxReceiveCount`` moves it to the DLQ itself.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bianjie.contracts.film import FilmReportPublishedV1
from bianjie.film import layout
from bianjie.film.aggregate import Aggregates, Fresh
from bianjie.film.catalog import Catalog, study_pk
from bianjie.film.errors import PermanentIngestError
from bianjie.film.ports import DeadLetters
from bianjie.kit.config import carry_scope
from bianjie.kit.crypto import sm3
from bianjie.kit.documents.port import MAX_TRANSACT_OPERATIONS, Cond, ConditionFailed, Put, TransactionCanceled
from bianjie.kit.logging import get_logger
from bianjie.kit.objects import ObjectStore, PutObject
from bianjie.kit.s3events import ObjectRef, object_refs
from bianjie.kit.timefmt import utc_iso

log = get_logger("bianjie.film.ingest")
# report SOP classes (bianjie.film.report, which needs pydicom, holds the names)
REPORT_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
}
KNOWN_STUDIES_MAX = 10_000
# DynamoDB caps a transaction at 4 MB; an instance row carries its DICOM JSON (up to the 400 KB item limit)
TRANSACT_BYTES = 3_000_000


def source_hash(bucket: str, key: str) -> str:
    return sm3(f"{bucket}/{key}".encode()).hex()


def _approx_size(row: dict[str, Any]) -> int:
    """Bytes a row takes in a transaction, roughly: its DICOM JSON text plus a margin for the rest."""
    return len(row.get("metadata") or "") * 2 + 2048  # * 2: non-ASCII text, attribute names


def hospital_of(key: str) -> str:
    """The ingest key convention is ``{hospital}/...``; a bare file name belongs to no known hospital."""
    head, sep, _ = key.partition("/")
    return head if sep and head else "unknown"


def access_method(key: str) -> str:
    """How an object arrived: ``{hospital}/stow/...`` by STOW-RS, ``{hospital}/emergency-...`` by an
    emergency pull, anything else by the S3 drop."""
    parts = key.split("/")
    second = parts[1] if len(parts) > 2 else ""
    if second == "stow":
        return "stow"
    if second.startswith("emergency-"):
        return "emergency"
    return "s3_drop"


@dataclass
class Outcome:
    status: str  # ingested | report | duplicate | rejected | failed
    study_uid: str | None = None
    series_uid: str | None = None
    reason: str | None = None
    sop_uid: str | None = None
    fresh: Fresh | None = None  # what the series aggregate needs, for an instance ingested now
    rows: list[dict[str, Any]] = field(default_factory=list)  # catalog rows still to write (commit)


@dataclass
class BatchResult:
    failed_message_ids: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


class Ingest:
    def __init__(
        self,
        *,
        objects: ObjectStore,
        catalog: Catalog,
        derived_bucket: str,
        cipher: Any,
        blind_index: Any,
        audit: Any,
        dead_letters: DeadLetters,
        clock: Callable[[], float] = time.time,
        workers: int = 6,
        events: Any = None,
        visit_id_source: Callable[[str], str | None] | None = None,
        access: Callable[[str, str], bool] | None = None,
    ) -> None:
        """``events``: film's outbox (``film.report_published``); ``visit_id_source``: hospital
        -> which DICOM attribute carries its visit id (a ``report.VISIT_ID_TAGS`` name), or None."""
        self.objects = objects
        self.catalog = catalog
        self.bucket = derived_bucket
        self.cipher = cipher
        self.blind = blind_index
        self.audit = audit
        self.dead_letters = dead_letters
        self.clock = clock
        self.workers = workers
        self.events = events
        self.visit_id_source = visit_id_source
        self.access = access  # (hospital, method) -> enabled (admin.py); None: every method
        self.aggregates = Aggregates(objects=objects, catalog=catalog, bucket=derived_bucket, clock=clock)
        # studies whose row exists: later instances of a study skip the catalog read (rows are never deleted)
        self._known_studies: set[str] = set()

    # -- batch ---------------------------------------------------------------------------------

    def handle_batch(self, messages: Sequence[tuple[str, str]]) -> BatchResult:
        """``messages``: (message id, body). Returns the ids to report as failed (SQS retries those)."""
        result = BatchResult()
        jobs: list[tuple[str, str, ObjectRef]] = []
        for message_id, body in messages:
            try:
                refs = object_refs(body)
            except (ValueError, TypeError, AttributeError):
                self._reject(body, None, PermanentIngestError("BAD_NOTIFICATION", "message is not an S3 notification"))
                continue
            jobs.extend((message_id, body, ref) for ref in refs if ref.event_name.startswith("ObjectCreated"))
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(jobs)))) as pool:
            outcomes = list(pool.map(carry_scope(lambda job: self._one(*job)), jobs))
        try:
            self.commit(outcomes)
        except Exception:
            log.exception("catalog write failed; the batch's new instances will be retried")
            for o in outcomes:
                if o.rows:
                    o.status, o.rows, o.fresh = "failed", [], None
        failed = {job[0] for job, outcome in zip(jobs, outcomes, strict=True) if outcome.status == "failed"}
        try:
            self.aggregate(outcomes)
        except Exception:
            log.exception("series update failed; the batch will be retried")
            failed |= {job[0] for job, o in zip(jobs, outcomes, strict=True) if o.status == "ingested"}
        result.failed_message_ids = sorted(failed)
        result.outcomes = outcomes
        return result

    def _one(self, message_id: str, body: str, ref: ObjectRef) -> Outcome:
        try:
            return self.prepare_object(ref.bucket, ref.key)
        except PermanentIngestError as exc:
            self._reject(body, ref, exc)
            return Outcome("rejected", reason=exc.reason)
        except Exception:
            log.exception("ingest failed; will retry", extra={"message_id": message_id})
            return Outcome("failed")

    def _reject(self, body: str, ref: ObjectRef | None, exc: PermanentIngestError) -> None:
        now = self.clock()
        digest = source_hash(ref.bucket, ref.key) if ref else sm3(body.encode()).hex()
        log.warning("object rejected", extra={"reason": exc.reason, "source": digest[:16]})
        self.catalog.put(
            {
                "pk": f"error#{utc_iso(now)[:10]}",
                "sk": f"{utc_iso(now)}#{digest[:16]}",
                "bucket": ref.bucket if ref else None,
                "key": ref.key if ref else None,
                "reason": exc.reason,
                "message": exc.message[:500],
                "at": utc_iso(now),
            }
        )
        # straight to the DLQ with the reason as message attributes: retrying a poison message cannot help
        self.dead_letters.send(body, exc.reason, exc.message[:500])

    # -- one object ------------------------------------------------------------------------------

    def ingest_object(self, bucket: str, key: str) -> Outcome:
        """One object, its catalog rows written at once (the demo seed; tests)."""
        outcome = self.prepare_object(bucket, key)
        self.commit([outcome])
        return outcome

    def commit(self, outcomes: Iterable[Outcome]) -> None:
        """Writes the pending rows of prepared instances, as few transactions as the limit allows. An
        instance's two rows always share a transaction; two instances with one key (one file uploaded
        twice in a batch) go to different ones, since a transaction names an item once."""
        chunks: list[list[dict[str, Any]]] = []
        keys: list[set[tuple[str, str]]] = []
        sizes: list[int] = []
        for o in outcomes:
            if not o.rows:
                continue
            mine = {(r["pk"], r["sk"]) for r in o.rows}
            size = sum(_approx_size(r) for r in o.rows)
            for n, (chunk, taken) in enumerate(zip(chunks, keys, strict=True)):
                fits = len(chunk) + len(o.rows) <= MAX_TRANSACT_OPERATIONS and sizes[n] + size <= TRANSACT_BYTES
                if fits and not taken & mine:
                    break
            else:
                n, chunk, taken = len(chunks), [], set()
                chunks.append(chunk)
                keys.append(taken)
                sizes.append(0)
            chunk.extend(o.rows)
            taken |= mine
            sizes[n] += size
        for chunk in chunks:
            self.catalog.transact([Put(self.catalog.table, row) for row in chunk])
        for o in outcomes:
            o.rows = []

    def prepare_object(self, bucket: str, key: str) -> Outcome:
        """Reads, derives and stores the derived objects of one object; its instance and source rows are
        left in ``Outcome.rows`` for ``commit`` (a report is recorded at once)."""
        from bianjie.film import dicom  # heavy: pydicom, numpy, pillow

        src = source_hash(bucket, key)
        obj = self.objects.fetch(bucket, key)
        seen = self.catalog.source(src)
        if seen and seen.get("etag") == obj.etag:
            # a report has no series: its duplicate must not reach the series merge
            series = None if seen.get("kind") == "report" else seen.get("series_uid")
            return Outcome("duplicate", seen.get("study_uid"), series, sop_uid=seen.get("sop_uid"))
        if not obj.body:
            raise PermanentIngestError("EMPTY_OBJECT", "the object is empty")
        if self.access is not None:
            method = access_method(key)
            if not self.access(hospital_of(key), method):
                raise PermanentIngestError(
                    "ACCESS_METHOD_DISABLED", f"hospital {hospital_of(key)} does not take data by {method}"
                )
        ds = dicom.parse(obj.body)
        if str(ds.get("SOPClassUID", "")) in REPORT_CLASSES:
            from bianjie.film.report import derive_report

            return self._ingest_report(derive_report(ds), bucket, key, obj.etag, src)
        found = dicom.problems(ds, obj.body)  # read, with something wrong: accepted, and recorded on the study
        derived = dicom.derive_dataset(ds)
        st, se, sop = derived.study_uid, derived.series_uid, derived.sop_uid
        puts = []
        for n, (frame, preview) in enumerate(zip(derived.frames, derived.lossy, strict=True), start=1):
            puts.append(
                PutObject(layout.frame(st, se, sop, n), frame, layout.FRAME_CONTENT_TYPE, "gzip", layout.IMMUTABLE)
            )
            puts.append(PutObject(layout.lossy(st, se, sop, n), preview, "image/jpeg", None, layout.IMMUTABLE))
        self.objects.put_many(self.bucket, puts)
        hospital = hospital_of(key)
        now = utc_iso(self.clock())
        self._record_study(derived, hospital, now)
        metadata = json.dumps(derived.metadata, separators=(",", ":"), ensure_ascii=False)
        rows: list[dict[str, Any]] = [
            {
                "pk": study_pk(st),
                "sk": f"inst#{se}#{sop}",
                "series_uid": se,
                "sop_uid": sop,
                "instance_number": derived.instance_number,
                "position": derived.position,
                "frames": len(derived.frames),
                "render": derived.render,
                "series": derived.series,
                "metadata": metadata,
                "source": {"bucket": bucket, "key": key, "etag": obj.etag},
                "ingested_at": now,
                **({"problems": found} if found else {}),
            },
            {
                "pk": f"source#{src}",
                "sk": "source",
                "etag": obj.etag,
                "study_uid": st,
                "series_uid": se,
                "sop_uid": sop,
                "at": now,
            },
        ]
        if found:
            log.warning("accepted with problems", extra={"problems": [p["code"] for p in found], "study_uid": st})
            rows.append(
                {
                    "pk": study_pk(st),
                    "sk": f"problem#{se}#{sop}",
                    "series_uid": se,
                    "sop_uid": sop,
                    "problems": found,
                    "at": now,
                }
            )
        fresh = Fresh(
            st,
            se,
            sop,
            len(derived.frames),
            derived.position,
            derived.instance_number,
            metadata,
            derived.render,
            derived.series,
        )
        return Outcome("ingested", st, se, sop_uid=sop, fresh=fresh, rows=rows)

    # -- reports ---------------------------------------------------------------------------------------

    def _ingest_report(self, rep: Any, bucket: str, key: str, etag: str, src: str) -> Outcome:
        """Stores the report (PDF bytes or rendered SR JSON), records it on the study row together with
        its ``film.report_published`` event (one outbox transaction) and remembers the source. The source
        row is written last, so a crash before it redoes everything on redelivery; the event id is derived
        from the report, so consumers see a re-sent event as a duplicate."""
        st, sop = rep.study_uid, rep.sop_uid
        report_key = layout.report(st, sop, "pdf" if rep.kind == "pdf" else "json")
        self.objects.put(
            self.bucket, report_key, rep.body, content_type=rep.content_type, cache_control=layout.IMMUTABLE
        )
        hospital = hospital_of(key)
        now = utc_iso(self.clock())
        self._record_study(rep, hospital, now)
        entry = {
            "kind": rep.kind,
            "sop_uid": sop,
            "key": report_key,
            "content_type": rep.content_type,
            "title": rep.title,
            "reported_at": rep.reported_at,
            "at": now,
        }
        study = self._attach_report(st, entry, lambda study: self._report_intent(rep, study, hospital))
        self.audit.record(
            actor="system:film.ingest",
            action="film.report.ingest",
            resource=f"film.study:{st}",
            patient_ref=(study.get("patient_refs") or [None])[0],
            details={"hospital": hospital, "kind": rep.kind, "sop_uid": sop},
        )
        self.catalog.put(
            {
                "pk": f"source#{src}",
                "sk": "source",
                "etag": etag,
                "study_uid": st,
                "sop_uid": sop,
                "kind": "report",
                "at": now,
            }
        )
        log.info("report attached", extra={"kind": rep.kind, "study_uid": st})
        return Outcome("report", st, None, sop_uid=sop)

    def _attach_report(
        self, st: str, entry: dict[str, Any], intent_of: Callable[[dict[str, Any]], Any]
    ) -> dict[str, Any]:
        """Sets the study's report (the one reported latest wins), with the aggregate's version check,
        and commits the report's event with it (``events``: the outbox)."""
        from bianjie.film.aggregate import MAX_ATTEMPTS

        for _ in range(MAX_ATTEMPTS):
            study = self.catalog.study(st)
            if study is None:
                raise RuntimeError(f"study {st} has no row after it was recorded")
            current = study.get("report") or {}
            if current.get("sop_uid") == entry["sop_uid"]:
                return study  # attached before a crash: its event committed with it
            if (current.get("reported_at") or "") > (entry["reported_at"] or ""):
                # an older report arriving late does not replace the newer one, but it is a report
                with contextlib.suppress(ConditionFailed):  # announced before a crash: once is enough
                    self._commit_report(None, [intent_of(study)])
                return study
            had_version = "agg_version" in study
            version = int(study.get("agg_version") or 0)
            study.update(report=entry, has_report=True, agg_version=version + 1, updated_at=entry["at"])
            cond = Cond.eq("agg_version", version) if had_version else Cond.attr_absent("agg_version")
            try:
                self._commit_report(Put(self.catalog.table, study, cond), [intent_of(study)])
            except (ConditionFailed, TransactionCanceled) as exc:
                if isinstance(exc, TransactionCanceled) and not exc.reasons[0]:
                    raise
                continue
            return study
        raise RuntimeError(f"study {st} stayed contended after {MAX_ATTEMPTS} attempts")

    def _commit_report(self, put: Put | None, intents: list[Any]) -> None:
        if self.events is None:
            if put is not None:
                self.catalog.put(put.item, put.condition)
            return
        self.events.commit([put] if put is not None else [], intents)

    def _report_intent(self, rep: Any, study: dict[str, Any], hospital: str) -> Any:
        """Ids only: the consumer (guide) looks up nothing from us, it places the event by visit id."""
        if self.events is None:
            return None
        source = self.visit_id_source(hospital) if self.visit_id_source else None
        event = FilmReportPublishedV1(
            study_uid=rep.study_uid,
            report_id=rep.sop_uid,
            report_kind=rep.kind,
            hospital=hospital,
            accession_number=rep.study.get("accession") or study.get("accession") or None,
            visit_id=(rep.visit_ids.get(source) or None) if source else None,
        )
        event_id = sm3(f"film.report_published:{rep.study_uid}:{rep.sop_uid}".encode()).hex()[:32]
        return self.events.event(event, subject=rep.study_uid, event_id=event_id)

    def patient_refs(self, derived: Any, hospital: str) -> list[str]:
        refs = []
        if derived.patient.id_card:
            refs.append(self.blind.digest(derived.patient.id_card, "id_number"))
        if derived.patient.mrn:
            refs.append(self.blind.digest(f"{hospital}:{derived.patient.mrn}", "medical_record_no"))
        return refs

    def _record_study(self, derived: Any, hospital: str, now: str) -> None:
        st = derived.study_uid
        if st in self._known_studies:
            return
        if self.catalog.study(st) is not None:
            self._remember(st)
            return
        refs = self.patient_refs(derived, hospital)
        enc = self.cipher.encrypt_optional
        item = {
            "pk": study_pk(st),
            "sk": "study",
            "study_uid": st,
            "hospital": hospital,
            **{k: v for k, v in derived.study.items()},
            "patient_name": enc(derived.patient.name, f"film/patient_name/{st}"),
            "patient_mrn": enc(derived.patient.mrn, f"film/patient_mrn/{st}"),
            "patient_id_card": enc(derived.patient.id_card, f"film/patient_id_card/{st}"),
            "patient_sex": derived.patient.sex,
            "patient_refs": refs,
            "modalities": [],
            "series_count": 0,
            "instance_count": 0,
            "ingested_at": now,
            "updated_at": now,
        }
        try:
            self.catalog.put(item, Cond.absent())
        except ConditionFailed:
            self._remember(st)
            return  # another instance of the study got there first
        day = derived.study["date"] or "00000000"
        self.catalog.put({"pk": f"hospital#{hospital}", "sk": f"{day}#{st}", "study_uid": st})
        self.catalog.put({"pk": "hospitals", "sk": hospital})
        for ref in refs:
            self.catalog.put(
                {
                    "pk": f"patient#{ref}",
                    "sk": f"{derived.study['date'] or '00000000'}#{st}",
                    "study_uid": st,
                    "hospital": hospital,
                }
            )
        self.audit.record(
            actor="system:film.ingest",
            action="film.study.ingest",
            resource=f"film.study:{st}",
            patient_ref=refs[0] if refs else None,
            details={"hospital": hospital},
        )
        self._remember(st)

    def _remember(self, st: str) -> None:
        if len(self._known_studies) >= KNOWN_STUDIES_MAX:
            self._known_studies.clear()
        self._known_studies.add(st)

    # -- aggregates --------------------------------------------------------------------------------

    def aggregate(self, outcomes: Iterable[Outcome]) -> None:
        """Merges the batch into its series and studies (``bianjie.film.aggregate``): a redelivered
        duplicate is checked for membership, so a batch whose merge failed is repaired on retry."""
        fresh: dict[tuple[str, str], list[Fresh]] = {}
        present: dict[tuple[str, str], list[str]] = {}
        for o in outcomes:
            if not (o.study_uid and o.series_uid):
                continue
            key = (o.study_uid, o.series_uid)
            if o.status == "ingested" and o.fresh is not None:
                fresh.setdefault(key, []).append(o.fresh)
            elif o.status == "duplicate" and o.sop_uid:
                present.setdefault(key, []).append(o.sop_uid)
        studies: set[str] = set()
        for st, se in sorted(set(fresh) | set(present)):
            self.aggregates.merge_series(st, se, fresh.get((st, se), []), present.get((st, se), []))
            studies.add(st)
        for st in sorted(studies):
            self.aggregates.update_study(st)

    def rebuild(self, touched: Iterable[tuple[str | None, str | None]]) -> None:
        """Full rebuild of the given series from their instance rows, then their studies."""
        studies: set[str] = set()
        for st, se in sorted({(st, se) for st, se in touched if st and se}):
            self.aggregates.rebuild_series(st, se)
            studies.add(st)
        for st in sorted(studies):
            self.aggregates.update_study(st)
