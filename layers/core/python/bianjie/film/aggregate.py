"""Series and study aggregates, kept up to date incrementally as instances arrive.

After each ingest batch, every touched series is *merged*, not rebuilt: the series row (catalog) lists
its members ``[sop, frames, position, instance_number]`` in display order with a ``version``; the
series metadata object (DICOM JSON, gzip) holds one entry per member. A merge reads the row and the
metadata object (two calls, whatever the series size), adds the batch's instances, writes the object,
then the row conditioned on the version it read. Re-reading every instance row after every batch (what
this replaced) made a 100-slice series cost O(n^2) catalog reads.

Concurrent batches (Lambda runs several; the local pump too, see template ScalingConfig) are safe:
- the row write is conditional, so of two merges from one version one wins and the other starts again;
- the object is written *before* the row, so a reader never sees a row member the object lacks, and the
  object of a winner always lands before any later winner's;
- a loser's object may land after the winner's. The loser starts again in any case: with members
  still to add it writes both anew; with none (the winner took them all, say from the instance rows)
  it checks the object against the row and, when their SOP sets differ, rebuilds both from the
  instance rows (the source of truth), as a merge does when a row is missing or a redelivered instance
  is not a member. So the last object written is always followed by a row write or a check by the same
  merge, and the pair ends consistent even when no later batch comes.
The study row and the QIDO JSON follow the same pattern with ``agg_version``. The thumbnail (a copy of the
middle slice's preview) is moved only by the winner of a row write.

A process remembers what it last wrote for a series (its version and each member's DICOM JSON text) and
for a study (the row): when the row it reads still carries that version, the merge skips reading and
parsing the metadata object (which grows with the series), and the study update skips its read; the
conditional writes make a stale memory harmless (the write fails, the merge reads afresh). The metadata
object is assembled from per-instance JSON texts, never re-encoded.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bianjie.film import layout
from bianjie.film.catalog import Catalog, study_pk
from bianjie.kit.documents.port import Cond, ConditionFailed
from bianjie.kit.logging import get_logger
from bianjie.kit.objects import ObjectStore, PutObject
from bianjie.kit.timefmt import utc_iso

log = get_logger("bianjie.film.aggregate")
QIDO = "application/dicom+json"
THUMBNAIL_TYPE = "image/jpeg"  # a thumbnail is a copy of a lossy preview, a JPEG
MAX_ATTEMPTS = 8
REMEMBERED_MAX = 256  # series and studies remembered per process


@dataclass(frozen=True)
class Fresh:
    """An instance ingested in this batch, with what its series aggregate needs (no catalog read)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    frames: int
    position: float | None
    number: int
    metadata: str  # DICOM JSON of the instance
    render: dict[str, Any]
    series: dict[str, Any]

    @property
    def member(self) -> list[Any]:
        return [self.sop_uid, self.frames, self.position, self.number]


def display_order(members: Iterable[list[Any]]) -> list[list[Any]]:
    """Slices head first when every member has a position (the order radiologists scroll in), else by
    position / instance number."""
    out = sorted(members, key=lambda m: (m[2] is None, m[2] or 0.0, m[3] or 0))
    if len(out) > 1 and all(m[2] is not None for m in out):
        out.sort(key=lambda m: -m[2])
    return out


def frames_of(members: list[list[Any]]) -> list[list[Any]]:
    return [[m[0], n] for m in members for n in range(1, int(m[1]) + 1)]


def _sop_of(entry: dict[str, Any]) -> str:
    return str(entry["00080018"]["Value"][0])


def _text(entry: dict[str, Any]) -> str:
    """An instance's DICOM JSON as the ingest writes it (so texts from any source join alike)."""
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


class Aggregates:
    def __init__(self, *, objects: ObjectStore, catalog: Catalog, bucket: str, clock: Callable[[], float]) -> None:
        self.objects = objects
        self.catalog = catalog
        self.bucket = bucket
        self.clock = clock
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}  # -> (version, JSON text by SOP)
        self._studies: dict[str, dict[str, Any]] = {}  # the study row as last written here

    def _remember_series(self, st: str, se: str, version: int, texts: dict[str, str]) -> None:
        with self._lock:
            if len(self._series) >= REMEMBERED_MAX:
                self._series.clear()
            self._series[(st, se)] = (version, texts)

    def _remembered_texts(self, st: str, se: str, row: dict[str, Any], sops: set[str]) -> dict[str, str] | None:
        with self._lock:
            found = self._series.get((st, se))
        if found is None or "version" not in row or int(row["version"]) != found[0] or set(found[1]) != sops:
            return None
        return dict(found[1])

    # -- series ----------------------------------------------------------------------------------------

    def merge_series(self, st: str, se: str, fresh: list[Fresh], present: Iterable[str] = ()) -> None:
        """Adds ``fresh`` to the series; ``present``: SOPs ingested earlier that must be members (a
        redelivered message after a failed merge), rebuilt from the instance rows if they are not."""
        lost = False
        for _ in range(MAX_ATTEMPTS):
            row = self.catalog.series_row(st, se)
            members = {m[0]: m for m in (row or {}).get("members") or []}
            new = [f for f in fresh if f.sop_uid not in members]
            missing = [sop for sop in present if sop not in members]
            stale = False
            if row is not None and not new and not missing:
                # having lost a row write, this merge's object may have landed after the winner's
                if not lost or self._metadata_texts(st, se, set(members)) is not None:
                    return
                stale = True
            texts = None
            if row is not None and not missing and not stale:
                texts = self._remembered_texts(st, se, row, set(members)) or self._metadata_texts(st, se, set(members))
            if texts is None:
                state = self._from_instance_rows(st, se, fresh)
                if state is None:
                    return
                members, texts, renders, series = state
            else:
                for f in new:
                    members[f.sop_uid] = f.member
                    texts[f.sop_uid] = f.metadata
                renders = {f.sop_uid: f.render for f in new}
                series = (row or {}).get("series_info") or new[0].series
            if self._write_series(st, se, row, members, texts, renders, series):
                return
            lost = True
        raise RuntimeError(f"series {se} stayed contended after {MAX_ATTEMPTS} attempts")

    def _metadata_texts(self, st: str, se: str, expected: set[str]) -> dict[str, str] | None:
        """The series metadata object as JSON text by SOP, or None when it does not match the row (a lost
        race)."""
        try:
            body = self.objects.get(self.bucket, layout.series_metadata(st, se))
            texts = {_sop_of(e): _text(e) for e in json.loads(gzip.decompress(body))}
        except Exception:
            log.warning("series metadata unreadable; rebuilding from the instance rows")
            return None
        return texts if set(texts) == expected else None

    def _from_instance_rows(
        self, st: str, se: str, fresh: list[Fresh]
    ) -> tuple[dict[str, list[Any]], dict[str, str], dict[str, dict[str, Any]], dict[str, Any]] | None:
        rows = self.catalog.instances(st, se)
        if not rows:
            return None
        members = {
            r["sop_uid"]: [r["sop_uid"], int(r["frames"]), r.get("position"), r.get("instance_number")] for r in rows
        }
        texts = {r["sop_uid"]: r["metadata"] for r in rows}  # the row keeps the instance's JSON text
        renders = {r["sop_uid"]: r["render"] for r in rows}
        series = rows[0].get("series") or (fresh[0].series if fresh else {})
        return members, texts, renders, series

    def _write_series(
        self,
        st: str,
        se: str,
        row: dict[str, Any] | None,
        members_by_sop: dict[str, list[Any]],
        texts: dict[str, str],
        renders: dict[str, dict[str, Any]],
        series: dict[str, Any],
    ) -> bool:
        from bianjie.film.dicom import gzip_member

        members = display_order(members_by_sop.values())
        frames = frames_of(members)
        middle_member = members[len(members) // 2]
        middle_frame = frames[len(frames) // 2]
        render = renders.get(middle_member[0]) or (row or {}).get("render") or next(iter(renders.values()))
        metadata = "[" + ",".join(texts[m[0]] for m in members) + "]"
        self.objects.put_many(
            self.bucket,
            [PutObject(layout.series_metadata(st, se), gzip_member(metadata.encode()), QIDO, "gzip", layout.SHORT)],
        )
        version = int((row or {}).get("version") or 0)
        item = {
            "pk": study_pk(st),
            "sk": f"series#{se}",
            "series_uid": se,
            "modality": series.get("modality"),
            "number": series.get("number"),
            "description": series.get("description"),
            "body_part": series.get("body_part"),
            "frame_time_ms": series.get("frame_time_ms"),
            "series_info": series,
            "instance_count": len(members),
            "frame_count": len(frames),
            "members": json.dumps(members, separators=(",", ":")),
            "render": render,
            "thumbnail_of": middle_frame,
            "version": version + 1,
            "updated_at": utc_iso(self.clock()),
        }
        condition = Cond.absent() if row is None else Cond.eq("version", version) if "version" in row else None
        try:
            self.catalog.put(item, condition)
        except ConditionFailed:
            return False
        self._remember_series(st, se, version + 1, texts)
        if (row or {}).get("thumbnail_of") != middle_frame:
            # only the winner of the row write moves the thumbnail: fewer overlapping writes of one key
            self._thumbnail(st, se, middle_frame)
        return True

    def _thumbnail(self, st: str, se: str, frame: list[Any]) -> None:
        source, target = layout.lossy(st, se, frame[0], frame[1]), layout.thumbnail(st, se)
        try:
            self.objects.copy(self.bucket, source, target, cache_control=layout.SHORT, content_type=THUMBNAIL_TYPE)
        except Exception:
            # moto (not S3) can fail a copy that overlaps another write of the key; once more, then the batch
            log.warning("thumbnail copy failed; retrying once")
            self.objects.copy(self.bucket, source, target, cache_control=layout.SHORT, content_type=THUMBNAIL_TYPE)

    def rebuild_series(self, st: str, se: str) -> None:
        """A full rebuild from the instance rows (repairs; the demo's synchronous ingest)."""
        for _ in range(MAX_ATTEMPTS):
            row = self.catalog.series_row(st, se)
            state = self._from_instance_rows(st, se, [])
            if state is None:
                return
            if self._write_series(st, se, row, *state):
                return
        raise RuntimeError(f"series {se} stayed contended after {MAX_ATTEMPTS} attempts")

    # -- study -----------------------------------------------------------------------------------------

    def update_study(self, st: str) -> None:
        with self._lock:
            remembered = self._studies.get(st)
        for _ in range(MAX_ATTEMPTS):
            # what this process wrote last, if any: its agg_version condition fails should anyone have
            # written the row since, and then the row is read
            study = dict(remembered) if remembered is not None else self.catalog.study(st)
            remembered = None
            if study is None:
                return
            if self._write_study(st, study):
                with self._lock:
                    if len(self._studies) >= REMEMBERED_MAX:
                        self._studies.clear()
                    self._studies[st] = study
                return
        raise RuntimeError(f"study {st} stayed contended after {MAX_ATTEMPTS} attempts")

    def _write_study(self, st: str, study: dict[str, Any]) -> bool:
        series = sorted(self.catalog.series(st), key=lambda s: (s.get("number") or 0, s["series_uid"]))
        modalities = sorted({s.get("modality") or "OT" for s in series})
        instances = sum(int(s.get("instance_count") or 0) for s in series)
        qido_series = [
            {
                "0020000D": {"vr": "UI", "Value": [st]},
                "0020000E": {"vr": "UI", "Value": [s["series_uid"]]},
                "00080060": {"vr": "CS", "Value": [s.get("modality") or "OT"]},
                "00200011": {"vr": "IS", "Value": [s.get("number") or 0]},
                "0008103E": {"vr": "LO", "Value": [s.get("description") or ""]},
                "00201209": {"vr": "IS", "Value": [s.get("instance_count") or 0]},
            }
            for s in series
        ]
        qido_study = {
            "0020000D": {"vr": "UI", "Value": [st]},
            "00080020": {"vr": "DA", "Value": [study.get("date") or ""]},
            "00080050": {"vr": "SH", "Value": [study.get("accession") or ""]},
            "00080061": {"vr": "CS", "Value": modalities},
            "00081030": {"vr": "LO", "Value": [study.get("description") or ""]},
            "00201206": {"vr": "IS", "Value": [len(series)]},
            "00201208": {"vr": "IS", "Value": [instances]},
        }
        self.objects.put_many(
            self.bucket,
            [
                PutObject(layout.series_index(st), json.dumps(qido_series).encode(), QIDO, None, layout.SHORT),
                PutObject(layout.study_index(st), json.dumps([qido_study]).encode(), QIDO, None, layout.SHORT),
            ],
        )
        had_version = "agg_version" in study
        version = int(study.get("agg_version") or 0)
        study.update(
            modalities=modalities,
            series_count=len(series),
            instance_count=instances,
            agg_version=version + 1,
            updated_at=utc_iso(self.clock()),
        )
        try:
            self.catalog.put(study, Cond.eq("agg_version", version) if had_version else Cond.attr_absent("agg_version"))
        except ConditionFailed:
            return False
        return True
