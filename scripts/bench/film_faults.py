"""Cloud-film fault injection (issue 21): the local stack killed in the middle of an ingest, restarted.

On AWS a crash of the functions loses nothing the stores accepted: S3 keeps the objects, SQS redelivers
a message whose consumer died once its visibility timeout ends, DynamoDB keeps what committed. Here the
same split: the stack runs with ``--keep-emulator`` (moto's server is not tied to the stack's life),
and the process that runs every function, the event pump and the scheduler is killed with SIGKILL while
it ingests (no handler runs, nothing is flushed), then started again with ``--resume`` on the same
emulator (no provisioning, no seeding; the roles assumed anew). What a killed batch had received comes
back when its visibility timeout ends: the run sets FilmIngestQueue's to ``--visibility`` seconds (the
template's is 360, six times the function timeout, as Lambda asks) so the run does not wait six minutes.

One study of two series (a CT of ``--ct`` slices and an MR of ``--mr``, ``--size`` pixels square) is
uploaded to FilmIngestBucket as ``bianjie film ingest`` uploads (``{hospital}/{batch}/{name}``): part
before the first kill, the rest while the stack is down (S3 accepts uploads whatever the functions do).
Kill ``k`` of ``--kills`` comes when the catalog holds ``k/(kills+1)`` of the instances (the first as soon as
it holds any) while the pump holds received messages; ``in_flight`` counts the messages the killed pump had
received and not acknowledged (the batches it was in the middle of). After the last
restart the run waits for the study row to count every instance (up to ``--timeout`` seconds), stops
the stack and checks, from the stores themselves:

- ``lost``: an accepted (uploaded) instance that is not in its series, i.e. missing from the series row's
  members or from the series' DICOM JSON metadata object, or with no instance row;
- ``duplicated``: an instance listed more than once in its series' members or metadata, or in a series
  not its own;
- ``study_ok``: the study row and its QIDO JSON count every instance and both series, with both
  modalities, and each series row counts its own instances;
- ``dead_lettered``: messages in FilmIngestDLQ (a redelivered object must be skipped, not refused).

The last line is one JSON object with ``lost``, ``duplicated``, ``study_ok``, ``dead_lettered``, the
kills (instances cataloged when each came, seconds to restart) and the run's seconds.

Usage: .venv/bin/python scripts/bench/film_faults.py [--ct 60] [--mr 20] [--size 256] [--kills 2]
       [--visibility 20] [--timeout 300]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "layers" / "core" / "python"))

from bianjie.film import layout  # noqa: E402
from bianjie_dev.film import testdata  # noqa: E402
from bianjie_dev.runtime.child import StackProcess  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

SOP, SERIES = "00080018", "0020000E"


def datasets(ct: int, mr: int, size: int) -> tuple[testdata.StudySpec, list[tuple[str, str, bytes]]]:
    """The study's files as (name, series uid, bytes), and their SOP instance UIDs are all distinct."""
    spec = testdata.StudySpec(hospital="demo-hospital")
    out = []
    for ds in [*testdata.ct_series(spec, ct, size=size), *testdata.mr_series(spec, mr, size=size)]:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        name = f"{ds.Modality}_{int(ds.SeriesNumber):02d}_{int(ds.InstanceNumber):04d}.dcm"
        out.append((name, str(ds.SeriesInstanceUID), buffer.getvalue()))
    return spec, out


class Run:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.state = work / "stack"
        self.spec, self.files = datasets(args.ct, args.mr, args.size)
        self.sop_of = {}
        for name, series, body in self.files:
            from pydicom import dcmread

            self.sop_of[name] = (str(dcmread(io.BytesIO(body), stop_before_pixels=True).SOPInstanceUID), series)
        self.accepted: set[str] = set()  # names whose put S3 answered 200
        self.batch = time.strftime("%Y%m%d-%H%M%S")
        self.stack: StackProcess | None = None

    # -- the stack --------------------------------------------------------------------------------

    def start(self) -> float:
        began = time.perf_counter()
        if self.stack is None:
            self.stack = StackProcess(
                self.state, seed=["film"], args=["--keep-emulator"], env={"BIANJIE_FILM_DEMO_CT_SLICES": "4"}
            )
        else:
            first = self.stack
            self.stack = StackProcess(
                self.state, seed=False, args=["--keep-emulator", "--resume"], port=first.port, aws_port=first.aws_port
            )
        return time.perf_counter() - began

    def client(self, service: str) -> Any:
        assert self.stack is not None
        return self.stack.client(service)

    # -- what the stores hold ---------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        dynamodb = self.client("dynamodb")
        table = self.stack.ref("FilmStudiesTable") if self.stack else ""
        items, start = [], None
        while True:
            args: dict[str, Any] = {
                "TableName": table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"study#{self.spec.study_uid}"}},
            }
            if start:
                args["ExclusiveStartKey"] = start
            page = dynamodb.query(**args)
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def cataloged(self) -> int:
        return sum(1 for r in self.rows() if r["sk"]["S"].startswith("inst#"))

    def study_count(self) -> int:
        row = next((r for r in self.rows() if r["sk"]["S"] == "study"), None)
        return int(row["instance_count"]["N"]) if row and "instance_count" in row else 0

    # -- the load ----------------------------------------------------------------------------------

    def upload(self, files: list[tuple[str, str, bytes]]) -> None:
        s3 = self.client("s3")
        bucket = self.stack.ref("FilmIngestBucket") if self.stack else ""

        def one(item: tuple[str, str, bytes]) -> None:
            name, _, body = item
            try:
                s3.put_object(
                    Bucket=bucket,
                    Key=f"{self.spec.hospital}/{self.batch}/{name}",
                    Body=body,
                    ContentType="application/dicom",
                )
            except (ClientError, BotoCoreError):
                return  # not accepted: nothing is owed for it
            self.accepted.add(name)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, files))

    def in_flight(self) -> int:
        """Messages of FilmIngestQueue received and not yet acknowledged: batches being ingested."""
        assert self.stack is not None
        held = self.client("sqs").get_queue_attributes(
            QueueUrl=self.stack.ref("FilmIngestQueue"), AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )
        return int(held["Attributes"]["ApproximateNumberOfMessagesNotVisible"])

    def wait_for(self, cataloged: int, timeout: float) -> int:
        """Until the catalog holds ``cataloged`` instances while a batch is in flight (the moment to kill),
        or everything accepted is cataloged, or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.cataloged()
            if got >= cataloged and (self.in_flight() or got >= len(self.accepted)):
                return got
            if time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def run(self) -> dict[str, Any]:
        args = self.args
        began = time.perf_counter()
        first_start = self.start()
        assert self.stack is not None
        sqs = self.client("sqs")
        sqs.set_queue_attributes(
            QueueUrl=self.stack.ref("FilmIngestQueue"), Attributes={"VisibilityTimeout": str(args.visibility)}
        )
        total = len(self.files)
        split = max(1, total * 2 // (args.kills + 2)) if args.kills else total
        self.upload(self.files[:split])
        kills = []
        for k in range(1, args.kills + 1):
            threshold = max(1, total * k // (args.kills + 1))
            if k == 1:
                threshold = 1  # as soon as a first batch is in: the first uploads are still being ingested
            at = self.wait_for(min(threshold, len(self.accepted)), args.timeout)
            self.stack.kill()
            # what the killed pump had received and not acknowledged: batches in the middle of their ingest
            kill: dict[str, Any] = {"at_instances": at, "of": total, "in_flight": self.in_flight()}
            if k == 1:  # uploads go on while the functions are down
                self.upload(self.files[split:])
            kill["restart_s"] = round(self.start(), 2)
            kills.append(kill)
        if not args.kills:
            self.upload(self.files[split:])
        deadline = time.monotonic() + args.timeout
        while self.study_count() < len(self.accepted) and time.monotonic() < deadline:
            time.sleep(0.2)
        settle = time.monotonic() + 3  # a merge in flight when the count arrived finishes
        while time.monotonic() < settle:
            time.sleep(0.2)
        ingest_s = time.perf_counter() - began - first_start
        result = self.check()
        result.update(
            instances=total,
            accepted=len(self.accepted),
            kills=kills,
            start_s=round(first_start, 2),
            ingest_s=round(ingest_s, 2),
        )
        return result

    def check(self) -> dict[str, Any]:
        assert self.stack is not None
        rows = self.rows()
        s3 = self.client("s3")
        derived = self.stack.ref("FilmDerivedBucket")
        st = self.spec.study_uid
        expected: dict[str, str] = {}  # accepted sop -> its series
        for name in self.accepted:
            sop, series = self.sop_of[name]
            expected[sop] = series
        series_uids = sorted(set(expected.values()))
        problems: list[str] = []
        members: dict[str, list[str]] = {}
        counts: dict[str, int] = {}
        for row in rows:
            sk = row["sk"]["S"]
            if sk.startswith("series#"):
                se = sk.removeprefix("series#")
                members[se] = [m[0] for m in json.loads(row["members"]["S"])]
                counts[se] = int(row.get("instance_count", {}).get("N", 0))
        instance_rows = {r["sk"]["S"].split("#")[2] for r in rows if r["sk"]["S"].startswith("inst#")}
        metadata: dict[str, list[str]] = {}
        for se in members:
            raw = s3.get_object(Bucket=derived, Key=layout.series_metadata(st, se))["Body"].read()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            metadata[se] = [str(entry[SOP]["Value"][0]) for entry in json.loads(raw)]
        lost = duplicated = 0
        for sop, se in expected.items():
            in_members = members.get(se, []).count(sop)
            in_metadata = metadata.get(se, []).count(sop)
            if not in_members or not in_metadata or sop not in instance_rows:
                lost += 1
                problems.append(f"lost {sop} (members {in_members}, metadata {in_metadata})")
            duplicated += max(0, in_members - 1) + max(0, in_metadata - 1)
            for other in members:
                if other != se and (sop in members[other] or sop in metadata.get(other, [])):
                    duplicated += 1
                    problems.append(f"{sop} also in series {other}")
        strangers = {s for se in members for s in members[se]} - set(expected)
        for sop in strangers:
            problems.append(f"{sop} cataloged but never uploaded")
        study = next((r for r in rows if r["sk"]["S"] == "study"), {})
        qido = json.loads(s3.get_object(Bucket=derived, Key=layout.study_index(st))["Body"].read())[0]
        want = len(expected)
        study_ok = (
            int(study.get("instance_count", {}).get("N", -1)) == want
            and int(study.get("series_count", {}).get("N", -1)) == len(series_uids)
            and sorted(m["S"] for m in study.get("modalities", {}).get("L", [])) == ["CT", "MR"][: len(series_uids)]
            and qido["00201208"]["Value"] == [want]
            and qido["00201206"]["Value"] == [len(series_uids)]
            and all(counts.get(se) == list(expected.values()).count(se) for se in series_uids)
        )
        if not study_ok:
            problems.append(
                f"study row {study.get('instance_count')}/{study.get('series_count')}/{study.get('modalities')}, "
                f"QIDO {qido.get('00201208')}/{qido.get('00201206')}, series counts {counts}, want {want}"
            )
        dlq = self.client("sqs").get_queue_attributes(
            QueueUrl=self.stack.ref("FilmIngestDLQ"), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return {
            "lost": lost,
            "duplicated": duplicated,
            "study_ok": study_ok,
            "dead_lettered": int(dlq["ApproximateNumberOfMessages"]),
            "strangers": len(strangers),
            "problems": problems[:20],
        }

    def close(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack.stop_emulator()
            return
        left = self.state / "emulator.json"  # the first stack died starting: its emulator may be up
        if left.exists():
            with contextlib.suppress(ProcessLookupError, ValueError, KeyError):
                os.kill(int(json.loads(left.read_text())["pid"]), signal.SIGTERM)


def table(result: dict[str, Any]) -> str:
    lines = ["| event | instances cataloged | messages in flight | restart (s) |", "|---|---|---|---|"]
    for n, kill in enumerate(result["kills"], 1):
        cataloged = f"{kill['at_instances']} of {kill['of']}"
        lines.append(f"| kill {n} (SIGKILL) | {cataloged} | {kill['in_flight']} | {kill['restart_s']} |")
    lines.append("")
    lines.append("| instances | accepted | lost | duplicated | study_ok | dead-lettered | ingest (s) |")
    lines.append("|---|---|---|---|---|---|---|")
    lines.append(
        f"| {result['instances']} | {result['accepted']} | {result['lost']} | {result['duplicated']} | "
        f"{result['study_ok']} | {result['dead_lettered']} | {result['ingest_s']} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct", type=int, default=60, help="CT slices")
    parser.add_argument("--mr", type=int, default=20, help="MR slices")
    parser.add_argument("--size", type=int, default=256, help="pixels per side")
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--visibility", type=int, default=20, help="FilmIngestQueue's visibility timeout (s)")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    (ROOT / ".local").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="film-faults-", dir=ROOT / ".local"))
    run = Run(args, work)
    try:
        result = run.run()
    finally:
        run.close()
    print(table(result))
    for problem in result["problems"]:
        print("  problem:", problem)
    print(json.dumps(result))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if not (result["lost"] or result["duplicated"]) and result["study_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
