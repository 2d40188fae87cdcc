"""Demo data for ``make run``: a generated chest CT, a head MR and an ultrasound loop of one patient at
demo-hospital with a structured report (SR), ingested at start, the viewer bundle published, and a viewing
link printed in the banner; plus a follow-up CT that only the 医联 imaging-cloud stand-in holds (emergency retrieval).

The study is ingested synchronously (so the link works as soon as the banner shows); the bucket
notifications that follow find every object already ingested and change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bianjie.kit.actor import Actor
from bianjie.kit.logging import get_logger

log = get_logger("bianjie.film.demo")
DEMO_CT_SLICES = int(os.environ.get("BIANJIE_FILM_DEMO_CT_SLICES", "24"))


def seed(stack: Any) -> None:
    from bianjie.film import assets, wiring
    from bianjie.film.links import LinkRequest
    from bianjie.kit import deps

    from bianjie_dev.film import testdata

    deployment = stack.deployment
    registry = deps.partner_registry()
    # the 医联 platform sees every hospital's studies; a hospital app sees its own (the default)
    registry.set_setting("demo-yilian", "film", "hospitals", ["*"])

    web_bucket, ingest_bucket = deployment.ref("FilmWebBucket"), deployment.ref("FilmIngestBucket")
    dist = stack.options.root / "web" / "film" / "dist"
    if (dist / assets.ENTRY).is_file():
        assets.publish(wiring.film_objects(), web_bucket, dist)
    else:
        log.warning("viewer bundle not built (make web): pages show the first image only")

    spec = testdata.StudySpec(hospital="demo-hospital")
    with tempfile.TemporaryDirectory() as tmp:
        paths = testdata.write_study(Path(tmp), spec, ct_slices=DEMO_CT_SLICES, mr_slices=8, us_frames=8)
        paths += testdata.write_reports(Path(tmp), spec, pdf=False, sr=True)  # the report panel has text
        objects, ingest = wiring.film_objects(), wiring.film_ingest()
        keys = []
        for path in paths:
            key = f"demo-hospital/{spec.accession}/{path.name}"
            objects.client.put_object(Bucket=ingest_bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
    ingest.aggregate([ingest.ingest_object(ingest_bucket, k) for k in keys])

    # a study the 医联 imaging cloud (stand-in) holds but we have not received: emergency retrieval pulls it
    # where the stand-in looks by default: BIANJIE_STATE_DIR (which the runtime gives every function)
    archive = stack.options.local_dir / "yilian-archive"
    missing = testdata.StudySpec(
        hospital="demo-hospital", accession="ACC0002", description="胸部CT复查", date=dt.date(2026, 5, 20)
    )
    folder = archive / missing.study_uid
    testdata.write_study(folder, missing, ct_slices=10, mr_slices=0, us_frames=0)
    (folder / "hospital").write_text("demo-hospital")

    hospital = Actor.partner("demo-hospital", settings=registry.get("demo-hospital").settings, source_ip="127.0.0.1")
    answer = wiring.film_links().create(
        hospital, LinkRequest(study_uid=spec.study_uid, expires_in=7 * 86400), base_url=stack.gateway_url
    )
    stack.demo_urls.append(f"{answer.url}   (云胶片 demo link, 7 days)")
    (stack.options.local_dir / "film-demo.json").write_text(
        json.dumps(
            {
                "study_uid": spec.study_uid,
                "url": answer.url,
                "id_card": spec.patient.id_card,
                "archived_study_uid": missing.study_uid,
            }
        )
    )
