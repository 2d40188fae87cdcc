"""The 医联 imaging cloud (影像云资源管理系统), as seen by emergency retrieval.

``YilianStandIn`` is the local stand-in: it holds an archive folder of studies
(``{archive}/{study_uid}/*.dcm``) and answers a push request the way the imaging cloud does, by putting
the study's files into our ingest bucket under ``{hospital}/emergency-{study}/``. A production adapter
calls the platform's push interface instead and leaves the delivery to it; the worker and the pipeline
do not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class YilianStandIn:
    def __init__(self, s3_client: Any, ingest_bucket: str, archive: Path) -> None:
        self.s3 = s3_client
        self.bucket = ingest_bucket
        self.archive = archive

    def request_push(self, *, study_uid: str | None, accession: str | None, hospital: str | None) -> str:
        folder = self.archive / (study_uid or f"{hospital}-{accession}")
        files = sorted(folder.glob("*.dcm")) if folder.is_dir() else []
        if not files:
            raise LookupError("医联影像云 (stand-in): study not in the archive")
        target = (folder / "hospital").read_text().strip() if (folder / "hospital").is_file() else hospital or "unknown"
        for path in files:
            self.s3.put_object(
                Bucket=self.bucket, Key=f"{target}/emergency-{folder.name}/{path.name}", Body=path.read_bytes()
            )
        return f"stand-in pushed {len(files)} files"
