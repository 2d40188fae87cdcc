"""Builds the film use cases from the function's environment (template.yaml sets the variables), once per
function.

Names carry the ``film_`` prefix: ``deps.singleton`` caches by function name within a function's scope,
and functions of several services load into one process on the local stack."""

from __future__ import annotations

from typing import Any

from bianjie.kit import deps
from bianjie.kit.config import env, require_env

LINK_TAG_LABEL = b"bianjie/film/link-tag/v1"


@deps.singleton
def film_catalog() -> Any:
    from bianjie.film.catalog import Catalog

    return Catalog(deps.documents(), deps.table("FILM_STUDIES_TABLE"))


@deps.singleton
def film_s3() -> Any:
    from bianjie.kit import aws

    return aws.client("s3")


@deps.singleton
def film_objects() -> Any:
    from bianjie.kit.objects import S3ObjectStore

    return S3ObjectStore(film_s3(), direct=direct_s3())


def direct_s3() -> bool:
    """Object bodies over presigned HTTP (``S3ObjectStore(direct=True)``, ``bianjie.kit.objects``) where
    S3 is reachable over the network: in Lambda and against an endpoint (the local stack's moto server,
    Ceph). ``FILM_DIRECT_S3=0``/``1`` overrides; in-process moto (functional tests) only intercepts
    boto3, so there it stays off."""
    from bianjie.kit.config import settings

    value = env("FILM_DIRECT_S3")
    if value in {"0", "1"}:
        return value == "1"
    return bool(env("AWS_LAMBDA_FUNCTION_NAME") or settings().aws_endpoint_url)


@deps.singleton
def film_ingest() -> Any:
    from bianjie.film.ingest import Ingest

    return Ingest(
        objects=film_objects(),
        catalog=film_catalog(),
        derived_bucket=require_env("FILM_DERIVED_BUCKET"),
        cipher=deps.field_cipher(),
        blind_index=deps.blind_index(),
        audit=deps.audit_log("film"),
        dead_letters=deps.dead_letters("FILM_INGEST_DLQ_URL"),
        events=film_outbox(),
        visit_id_source=film_visit_id_source,
        access=film_access,
    )


def film_outbox() -> Any:
    """film's transactional outbox (``OUTBOX_TABLE``; domain events to the topic)."""
    return deps.outbox("film")


def film_visit_id_source(hospital: str) -> str | None:
    """Which DICOM attribute carries the hospital's visit (就诊) id in its reports: the partner setting
    ``film.report_visit_id_from`` of the hospital's app (``accession_number``, ``requested_procedure_id``
    or ``admission_id``); None (the default) means its DICOM carries none we can honestly use."""
    from bianjie.film.report import VISIT_ID_TAGS  # the ingest function carries pydicom

    partner = deps.partner_registry().get(hospital)
    value = partner.setting("film", "report_visit_id_from") if partner is not None else None
    return value if value in VISIT_ID_TAGS else None


@deps.singleton
def film_links() -> Any:
    from bianjie.film.links import Links

    return Links(
        store=deps.documents(),
        table=deps.table("FILM_LINKS_TABLE"),
        catalog=film_catalog(),
        mac_key=deps.derived_key(LINK_TAG_LABEL),
        blind_index=deps.blind_index(),
        cipher=deps.field_cipher(),
        audit=deps.audit_log("film"),
        presigner=film_objects(),
        derived_bucket=require_env("FILM_DERIVED_BUCKET"),
    )


@deps.singleton
def film_my_studies() -> Any:
    from bianjie.film.mine import MyStudies

    return MyStudies(catalog=film_catalog(), links=film_links(), audit=deps.audit_log("film"))


@deps.singleton
def film_emergency() -> Any:
    from bianjie.film.emergency import Emergency

    return Emergency(
        store=deps.documents(),
        table=deps.table("FILM_LINKS_TABLE"),
        queue=deps.queue("FILM_EMERGENCY_QUEUE_URL"),
        audit=deps.audit_log("film"),
        access=film_access,
    )


@deps.singleton
def film_imaging_cloud() -> Any:
    """The 医联 imaging cloud: the local stand-in unless a deployment configures the real interface."""
    from pathlib import Path

    from bianjie.kit.standins import use_standin

    if not use_standin("film.imaging_cloud"):
        raise RuntimeError("the 医联 imaging-cloud adapter is not wired in this build (docs/film.md)")
    from bianjie_dev.film.adapters.yilian import YilianStandIn  # development tooling: the local stage only

    archive = env("FILM_YILIAN_ARCHIVE") or str(Path(env("BIANJIE_STATE_DIR") or ".local") / "yilian-archive")
    return YilianStandIn(film_s3(), require_env("FILM_INGEST_BUCKET"), Path(archive))


@deps.singleton
def film_dicomweb() -> Any:
    from bianjie.film.dicomweb import DicomWeb

    return DicomWeb(
        catalog=film_catalog(),
        objects=film_objects(),
        derived_bucket=require_env("FILM_DERIVED_BUCKET"),
        cipher=deps.field_cipher(),
        blind_index=deps.blind_index(),
        audit=deps.audit_log("film"),
    )


@deps.singleton
def film_stow() -> Any:
    from bianjie.film.dicomweb import Stow, inspect_part

    return Stow(
        objects=film_objects(),
        ingest_bucket=require_env("FILM_INGEST_BUCKET"),
        inspect=inspect_part,
        audit=deps.audit_log("film"),
        access=film_access,
    )


@deps.singleton
def film_admin() -> Any:
    from bianjie.film.admin import Admin

    return Admin(
        store=deps.documents(),
        table=deps.table("FILM_ADMIN_TABLE"),
        audit=deps.audit_log("film"),
        partners=deps.partner_registry(),
        catalog=film_catalog,  # only the problems route (which has FILM_STUDIES_TABLE) calls it
    )


def film_access(hospital: str, method: str) -> bool:
    """Whether a hospital takes data by ``method`` (s3_drop, stow, emergency): FilmAdminTable, cached."""
    return bool(film_admin().enabled(hospital, method))
