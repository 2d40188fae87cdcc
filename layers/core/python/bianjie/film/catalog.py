"""The film catalog (FilmStudiesTable): studies, series, instances, patient lookups, ingest bookkeeping.

One table, partition key ``pk`` (S), sort key ``sk`` (S)::

    study#{study}      study                   hospital, date, description, accession, modalities, counts,
                                               patient name / MRN / ID card SM4-encrypted, patient_refs
    study#{study}      series#{series}         modality, number, description, members (JSON text of
                                               [[sop, frames, position, number], ...] in display order: one
                                               string attribute reads far cheaper than nested lists),
                                               render config, version (aggregate.py)
    study#{study}      inst#{series}#{sop}     one instance: DICOM JSON (de-identified), frame count, source
    study#{study}      problem#{series}#{sop}  what was wrong with an accepted file (dicom.problems): codes, messages
    patient#{ref}      {date}#{study}          lookup of a patient's studies by blind index (any hospital)
    hospital#{code}    {date}#{study}          a hospital's studies, newest first (DICOMweb search)
    hospitals          {code}                  every hospital that has a study (searches over all of them)
    source#{hash}      source                  object already ingested (bucket/key/etag): idempotency
    error#{day}        {time}#{hash}           an object that could not be ingested, with the reason

``ref`` is the HMAC-SM3 blind index of the patient identifier: ``id_number`` for the resident ID card
(cross-hospital), ``medical_record_no`` over ``"{hospital}:{mrn}"`` for a hospital's own patient id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from bianjie.kit.documents.port import DocumentStore, KeyCond, Operation


def study_pk(study: str) -> str:
    return f"study#{study}"


class Catalog:
    def __init__(self, store: DocumentStore, table: str) -> None:
        self.store = store
        self.table = table

    def _all(self, cond: KeyCond, descending: bool = False) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.store.query(self.table, cond, limit=500, cursor=cursor, descending=descending)
            yield from page.items
            if not (cursor := page.cursor):
                return

    def study(self, study: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"pk": study_pk(study), "sk": "study"})

    def series(self, study: str) -> list[dict[str, Any]]:
        """Series rows, each with ``frames`` ([sop, n] in display order) expanded from its members."""
        return [_decoded(r) for r in self._all(KeyCond.of("pk", study_pk(study)).begins_with("sk", "series#"))]

    def series_row(self, study: str, series: str) -> dict[str, Any] | None:
        row = self.store.get(self.table, {"pk": study_pk(study), "sk": f"series#{series}"})
        return _decoded(row) if row is not None else None

    def instances(self, study: str, series: str) -> list[dict[str, Any]]:
        return list(self._all(KeyCond.of("pk", study_pk(study)).begins_with("sk", f"inst#{series}#")))

    def problems(self, study: str) -> list[dict[str, Any]]:
        """Files of the study accepted with problems (transfer syntax mismatch, malformed UIDs)."""
        return list(self._all(KeyCond.of("pk", study_pk(study)).begins_with("sk", "problem#")))

    def studies_of_patient(self, ref: str) -> list[dict[str, Any]]:
        """Index rows, newest study first."""
        return list(self._all(KeyCond.of("pk", f"patient#{ref}"), descending=True))

    def studies_of_hospital(self, hospital: str) -> list[dict[str, Any]]:
        """Index rows of a hospital's studies, newest study first."""
        return list(self._all(KeyCond.of("pk", f"hospital#{hospital}"), descending=True))

    def hospitals(self) -> list[str]:
        return [r["sk"] for r in self._all(KeyCond.of("pk", "hospitals"))]

    def source(self, source_hash: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"pk": f"source#{source_hash}", "sk": "source"})

    def errors(self, day: str) -> list[dict[str, Any]]:
        return list(self._all(KeyCond.of("pk", f"error#{day}")))

    def put(self, item: dict[str, Any], condition: Any = None) -> None:
        self.store.put(self.table, item, condition=condition)

    def transact(self, operations: Sequence[Operation]) -> None:
        """All or nothing (``DocumentStore.transact``): at most ``MAX_TRANSACT_OPERATIONS`` items."""
        self.store.transact(operations)


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """A series row with ``members`` as a list and ``frames`` ([sop, n] in display order) expanded."""
    if isinstance(row.get("members"), str):
        row["members"] = json.loads(row["members"])
    if "members" in row and "frames" not in row:
        row["frames"] = [[m[0], n] for m in row["members"] for n in range(1, int(m[1]) + 1)]
    return row
