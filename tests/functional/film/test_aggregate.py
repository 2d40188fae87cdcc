"""Series and study aggregates under the cases incremental merging must survive: a stale metadata object
(a concurrent merge that lost), a batch whose merge failed and is redelivered, and concurrent batches."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pydicom
import pytest
from bianjie.film import layout
from bianjie.film.aggregate import Aggregates, Fresh
from bianjie_dev.film import testdata

from tests.functional.film.conftest import FilmStack


def wiring() -> Any:
    from bianjie.film import wiring as w

    return w


@pytest.fixture(scope="module")
def ct_series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Path]]:
    spec = testdata.StudySpec(hospital="test-hospital")
    paths = testdata.write_study(tmp_path_factory.mktemp("ct"), spec, ct_slices=8, mr_slices=0, us_frames=0)
    return spec, paths


def series_state(film: FilmStack, st: str) -> tuple[dict[str, Any], list[str]]:
    (row,) = wiring().film_catalog().series(st)
    metadata = film.get_json(layout.series_metadata(st, row["series_uid"]))
    return row, [m["00080018"]["Value"][0] for m in metadata]


def expected_order(paths: list[Path]) -> list[str]:
    """Head first: descending position along the slice normal (z for these axial slices)."""
    ds = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    return [str(d.SOPInstanceUID) for d in sorted(ds, key=lambda d: -float(d.ImagePositionPatient[2]))]


@pytest.mark.parametrize("process", ["fresh", "same"])
def test_merge_repairs_a_stale_metadata_object(
    film: FilmStack, ct_series: tuple[Any, list[Path]], process: str
) -> None:
    """``fresh``: the next batch runs in another process (it reads the object and finds it stale);
    ``same``: in the process that wrote the series last (it assembles the object from what it remembers)."""
    spec, paths = ct_series
    film.put_files("test-hospital", paths[:-1])
    film.drain()
    row, sops = series_state(film, spec.study_uid)
    assert sops == [m[0] for m in row["members"]] and len(sops) == len(paths) - 1
    # a merge that lost the race wrote its object late: one member is missing from it
    from bianjie.film.dicom import gzip_member

    wiring().film_objects().put(
        film.derived_bucket,
        layout.series_metadata(spec.study_uid, row["series_uid"]),
        gzip_member(b"[]"),
        content_type="application/dicom+json",
        content_encoding="gzip",
    )
    aggregates = wiring().film_ingest().aggregates
    if process == "fresh":
        aggregates._series.clear()
        aggregates._studies.clear()
    else:
        assert (spec.study_uid, row["series_uid"]) in aggregates._series
    film.put_files("test-hospital", paths[-1:])
    film.drain()
    row, sops = series_state(film, spec.study_uid)
    assert sops == [m[0] for m in row["members"]] == expected_order(paths)
    assert row["frame_count"] == len(paths) and row["version"] >= 2
    study = wiring().film_catalog().study(spec.study_uid)
    assert study["instance_count"] == len(paths) and study["series_count"] == 1


def test_a_batch_whose_merge_failed_is_repaired_on_redelivery(
    film: FilmStack, ct_series: tuple[Any, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, paths = ct_series
    original = Aggregates.merge_series
    calls = {"n": 0}

    def flaky(self: Aggregates, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("storage went away")
        original(self, *args, **kwargs)

    monkeypatch.setattr(Aggregates, "merge_series", flaky)
    film.put_files("test-hospital", paths)
    answers = film.drain()
    # the first batch reported its instances as failed; they came back as duplicates and were merged
    assert answers[0]["batchItemFailures"] and all(a["batchItemFailures"] == [] for a in answers[1:])
    row, sops = series_state(film, spec.study_uid)
    assert sops == [m[0] for m in row["members"]] == expected_order(paths)
    assert wiring().film_catalog().study(spec.study_uid)["instance_count"] == len(paths)


def test_a_merge_that_lost_leaves_no_stale_object_when_no_batch_follows(
    film: FilmStack, ct_series: tuple[Any, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving two concurrent batches can take: both read no row; the winner built its row from
    the instance rows of both batches; the loser, which saw only its own, wrote its object after the
    winner's, then lost the row write. On its retry nothing is left to add, and no later batch comes:
    the loser itself must notice its object is older than the row and rebuild."""
    from bianjie.film.catalog import Catalog

    spec, paths = ct_series
    film.put_files("test-hospital", paths)
    film.drain()  # the winner: every instance in the row and the object
    row, _ = series_state(film, spec.study_uid)
    st, se = spec.study_uid, row["series_uid"]
    catalog = wiring().film_catalog()
    own = [r for r in catalog.instances(st, se)][0::2]  # the loser's batch: half the instances
    fresh = [
        Fresh(
            st,
            se,
            r["sop_uid"],
            int(r["frames"]),
            r.get("position"),
            r.get("instance_number"),
            r["metadata"],
            r["render"],
            r.get("series") or {},
        )
        for r in own
    ]
    # what the loser saw before the winner wrote: no row, only its own instance rows
    first = {"series_row": True, "instances": True}
    series_row, instances = Catalog.series_row, Catalog.instances

    def before_winner_row(self: Catalog, study: str, series: str) -> Any:
        if first.pop("series_row", False):
            return None
        return series_row(self, study, series)

    def before_winner_instances(self: Catalog, study: str, series: str) -> Any:
        if first.pop("instances", False):
            return own
        return instances(self, study, series)

    monkeypatch.setattr(Catalog, "series_row", before_winner_row)
    monkeypatch.setattr(Catalog, "instances", before_winner_instances)
    aggregates = wiring().film_ingest().aggregates
    aggregates.merge_series(st, se, fresh)
    assert not first  # the loser did take the stale view, wrote its object and lost the row write
    row, sops = series_state(film, st)
    assert sops == [m[0] for m in row["members"]] == expected_order(paths)
    assert row["version"] == 2  # rebuilt: object and row written again


def test_concurrent_batches_of_one_series_lose_nothing(
    film: FilmStack, ct_series: tuple[Any, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, paths = ct_series
    # DynamoDB serialises writes per item; in-process moto does not (a transaction's rollback snapshot
    # races a concurrent put). One lock around its handler, as the local stack's moto server has.
    from moto.dynamodb.responses import DynamoHandler

    lock, call_action = threading.RLock(), DynamoHandler.call_action

    def serialised(self: Any) -> Any:
        with lock:
            return call_action(self)

    monkeypatch.setattr(DynamoHandler, "call_action", serialised)
    film.put_files("test-hospital", paths)
    messages = []
    while True:
        got = film.sqs.receive_message(QueueUrl=film.queue_url, MaxNumberOfMessages=10).get("Messages") or []
        if not got:
            break
        messages += [(m["MessageId"], m["Body"]) for m in got if "s3:TestEvent" not in m["Body"]]
    assert len(messages) == len(paths)
    ingest = wiring().film_ingest()
    halves = [messages[0::2], messages[1::2]]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda h=h: results.append(ingest.handle_batch(h))) for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.failed_message_ids for r in results] == [[], []]
    row, sops = series_state(film, spec.study_uid)
    assert sops == [m[0] for m in row["members"]] == expected_order(paths)
    study = wiring().film_catalog().study(spec.study_uid)
    assert study["instance_count"] == len(paths)
    qido = film.get_json(layout.study_index(spec.study_uid))
    assert qido[0]["00201208"]["Value"] == [len(paths)]


def test_a_batch_whose_catalog_write_failed_is_retried_whole(
    film: FilmStack, ct_series: tuple[Any, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's instance and source rows go in one transaction: when it fails, no instance of the
    batch is recorded (no source row), every new one is reported failed, and the retry ingests them."""
    from bianjie.film.catalog import Catalog

    spec, paths = ct_series
    original = Catalog.transact
    calls = {"n": 0}

    def flaky(self: Catalog, operations: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("storage went away")
        original(self, operations)

    monkeypatch.setattr(Catalog, "transact", flaky)
    film.put_files("test-hospital", paths)
    answers = film.drain()
    assert len(answers[0]["batchItemFailures"]) == len(paths)  # one batch of 8: all retried
    assert all(a["batchItemFailures"] == [] for a in answers[1:])
    row, sops = series_state(film, spec.study_uid)
    assert sops == [m[0] for m in row["members"]] == expected_order(paths)
    assert len(wiring().film_catalog().instances(spec.study_uid, row["series_uid"])) == len(paths)


def test_one_file_twice_in_a_batch_is_one_instance(film: FilmStack, ct_series: tuple[Any, list[Path]]) -> None:
    """Two keys, one SOP instance, one batch. (moto, unlike S3, can fail one of two overlapping writes of a
    key, which the retry then covers; the commit's split itself is checked in tests/unit/film.)"""
    spec, paths = ct_series
    film.put_files("test-hospital", paths[:3])
    film.put(f"test-hospital/again/{paths[0].name}", paths[0].read_bytes())
    answers = film.drain()
    assert answers[-1]["batchItemFailures"] == []
    _row, sops = series_state(film, spec.study_uid)
    assert sorted(sops) == sorted(str(pydicom.dcmread(p).SOPInstanceUID) for p in paths[:3])
    assert wiring().film_catalog().study(spec.study_uid)["instance_count"] == 3


def test_a_remembered_study_row_gone_stale_is_read_again(film: FilmStack, ct_series: tuple[Any, list[Path]]) -> None:
    """Another writer (a report, another process's batch) moved the study row on: the remembered copy's
    conditional write fails and the update reads the row, so the other writer's change survives."""
    spec, paths = ct_series
    film.put_files("test-hospital", paths[:4])
    film.drain()
    catalog = wiring().film_catalog()
    study = catalog.study(spec.study_uid)
    assert spec.study_uid in wiring().film_ingest().aggregates._studies
    study.update(description="另一进程写入", agg_version=int(study["agg_version"]) + 1)
    catalog.put(study)
    film.put_files("test-hospital", paths[4:])
    film.drain()
    after = catalog.study(spec.study_uid)
    assert after["description"] == "另一进程写入" and after["instance_count"] == len(paths)
