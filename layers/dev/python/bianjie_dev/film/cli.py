"""``bianjie film ...``: ingest DICOM files or folders, write test data, publish the viewer bundle.

Hooked into the main CLI through ``register(subparsers)``; until then ``python -m bianjie_dev.film.cli``
offers the same commands.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            yield path
        else:
            raise SystemExit(f"no such file or folder: {path}")


def _deployment_bucket(args: argparse.Namespace, logical_id: str) -> str:
    from bianjie_dev.cli.main import load_deployment, use_deployment

    use_deployment(args)
    if args.bucket:
        return str(args.bucket)
    deployment = load_deployment(args)
    assert deployment is not None
    return str(deployment.ref(logical_id))


def cmd_ingest(args: argparse.Namespace) -> int:
    """Uploads files to the ingest bucket as ``{hospital}/{batch}/{relative path}``; S3 notifies the queue.

    Uploads run in parallel (``--parallel``, 8 by default): one at a time, a 100-slice CT spent longer
    in upload round trips than the pipeline spent deriving it."""
    from concurrent.futures import ThreadPoolExecutor

    from bianjie.kit import aws

    bucket = _deployment_bucket(args, "FilmIngestBucket")
    s3 = aws.client("s3")
    batch = args.batch or time.strftime("%Y%m%d-%H%M%S")
    started = time.perf_counter()

    def upload(path: Path) -> tuple[int | None, str | None]:
        """(bytes uploaded, None), or (None, why the file was skipped): one bad file stops nothing."""
        try:
            body = path.read_bytes()
        except OSError as exc:
            return None, f"unreadable: {exc.strerror or type(exc).__name__}"
        if not body:
            return None, "empty file"
        if body[128:132] != b"DICM" and body[:2] != b"\x02\x00":
            return None, "not a DICOM file (no DICM prefix at byte 128, no file meta group)"
        try:
            s3.put_object(
                Bucket=bucket, Key=f"{args.hospital}/{batch}/{path.name}", Body=body, ContentType="application/dicom"
            )
        except Exception as exc:  # the storage's refusal, a dropped connection: reported, the rest go on
            return None, f"upload failed: {type(exc).__name__}: {exc}"[:300]
        return len(body), None

    paths = list(_files(args.paths))
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        results = list(pool.map(upload, paths))
    sizes = [size for size, _ in results if size is not None]
    skipped = [{"path": str(path), "reason": why} for path, (_, why) in zip(paths, results, strict=True) if why]
    for item in skipped:
        print(f"skipped {item['path']}: {item['reason']}", file=sys.stderr)
    count, size = len(sizes), sum(sizes)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "bucket": bucket,
                "prefix": f"{args.hospital}/{batch}/",
                "files": count,
                "bytes": size,
                "seconds": round(elapsed, 2),
                "skipped": skipped,
            },
            ensure_ascii=False,
        )
    )
    # a skipped file is reported, not an error of the run; finding nothing at all is
    return 0 if paths else 1


def cmd_testdata(args: argparse.Namespace) -> int:
    from bianjie_dev.film import testdata

    spec = testdata.StudySpec(hospital=args.hospital)
    paths = testdata.write_study(
        Path(args.out), spec, ct_slices=args.ct, mr_slices=args.mr, us_frames=args.us, syntax=args.syntax
    )
    if args.report != "none":
        paths += testdata.write_reports(Path(args.out), spec, pdf=args.report == "pdf", sr=args.report == "sr")
    print(
        json.dumps(
            {
                "study_uid": spec.study_uid,
                "files": len(paths),
                "out": args.out,
                "patient_id_card": spec.patient.id_card,
                "mrn": spec.patient.mrn,
            }
        )
    )
    return 0


def cmd_publish_viewer(args: argparse.Namespace) -> int:
    from bianjie.film import assets, wiring

    bucket = _deployment_bucket(args, "FilmWebBucket")
    dist = Path(args.dist)
    if not (dist / assets.ENTRY).is_file():
        raise SystemExit(f"{dist / assets.ENTRY} is missing: build it with `make web`")
    print(json.dumps({"bucket": bucket, "files": assets.publish(wiring.film_objects(), bucket, dist)}))
    return 0


def _deployment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", help="path of a stack.json (default: .local/stack.json)")
    p.add_argument("--aws-endpoint", help="S3 endpoint of a deployment (instead of the local stack)")
    p.add_argument("--region")
    p.add_argument("--bucket", help="bucket name (instead of the stack's)")


def register(subparsers: Any) -> None:
    film = subparsers.add_parser("film", help="cloud film (云胶片)").add_subparsers(dest="command", required=True)
    p = film.add_parser("ingest", help="upload DICOM files or folders to the ingest bucket")
    p.add_argument("paths", nargs="+")
    p.add_argument("--hospital", default="demo-hospital", help="hospital code (the key's first segment)")
    p.add_argument("--batch", help="key segment after the hospital (default: a timestamp)")
    p.add_argument("--parallel", type=int, default=8, help="concurrent uploads")
    _deployment_flags(p)
    p.set_defaults(func=cmd_ingest)
    p = film.add_parser("testdata", help="write a realistic CT + MR + US study")
    p.add_argument("out")
    p.add_argument("--hospital", default="demo-hospital")
    p.add_argument("--ct", type=int, default=100, help="CT slices (512x512)")
    p.add_argument("--mr", type=int, default=20)
    p.add_argument("--us", type=int, default=24, help="ultrasound frames")
    p.add_argument("--syntax", choices=["rle", "jpegls", "j2k"], help="compress with this transfer syntax")
    p.add_argument("--report", choices=["sr", "pdf", "none"], default="sr", help="a report object of the study")
    p.set_defaults(func=cmd_testdata)
    p = film.add_parser("publish-viewer", help="upload web/film/dist to the viewer bucket")
    p.add_argument("--dist", default="web/film/dist")
    _deployment_flags(p)
    p.set_defaults(func=cmd_publish_viewer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bianjie")
    register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main(["film", *sys.argv[1:]] if sys.argv[1:2] != ["film"] else sys.argv[1:]))
