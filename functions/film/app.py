"""Cloud film (云胶片): DICOM ingest, partner-issued viewing links, the viewer page and its manifest.

Heavy imaging code (pydicom, numpy, pillow) is imported lazily inside ``bianjie.film.ingest``; only
FilmIngestFunction carries the imaging layer.
"""

from __future__ import annotations

from typing import Any

from bianjie.film import wiring
from bianjie.film.admin import (
    AccessAnswer,
    AccessMethods,
    ChangeList,
    ChangesQuery,
    PartnerFilmAnswer,
    PartnerFilmSettings,
    ProblemList,
    StaffEntry,
    StaffGrant,
    StaffList,
)
from bianjie.film.dicomweb import DicomJsonDataset, DicomJsonList
from bianjie.film.emergency import EmergencyAnswer, EmergencyJob, EmergencyRequest
from bianjie.film.links import LinkAnswer, LinkRequest, ShareRequest
from bianjie.film.mine import MyStudiesQuery, MyStudyList, MyViewAnswer
from bianjie.kit import batch, deps
from bianjie.kit.config import env, require_env
from bianjie.kit.errors import AppError
from bianjie.kit.logging import get_logger
from bianjie.kit.web import ServiceApp, json_response
from chalice import Response

app = ServiceApp("film")
log = get_logger("bianjie.film")
app.api.binary_types.append("application/wasm")

LINK_ERRORS = ("LINK_INVALID", "LINK_NOT_FOUND", "LINK_REVOKED", "LINK_EXPIRED")


def _base_url() -> str:
    """Where the caller reached us: the public origin (and API Gateway stage) links must point at."""
    configured = env("FILM_PUBLIC_BASE_URL")
    if configured:
        return configured.rstrip("/")
    request = app.current_request
    headers = request.headers or {}
    proto = headers.get("x-forwarded-proto", "http").split(",")[0].strip()
    host = headers.get("host", "localhost")
    context = request.context or {}
    domain = str(context.get("domainName") or "")
    stage = context.get("stage")
    prefix = f"/{stage}" if stage and ".execute-api." in domain else ""
    return f"{proto}://{host}{prefix}"


def _user_agent() -> str:
    return (app.current_request.headers or {}).get("user-agent", "")


# -- partner API --------------------------------------------------------------------------------------


@app.route(
    "/film/links",
    methods=["POST"],
    auth="partner",
    request=LinkRequest,
    response=LinkAnswer,
    summary="Mint a viewing link for one study or for all of a patient's studies",
    errors=("STUDY_NOT_FOUND", "PATIENT_NOT_FOUND"),
    status=201,
)
def create_link() -> LinkAnswer:
    partner = app.partner_actor()
    return wiring.film_links().create(partner, app.body(LinkRequest), base_url=_base_url())


@app.route(
    "/film/links/{key}",
    methods=["DELETE"],
    auth="partner",
    summary="Revoke a viewing link (and every link shared from it)",
    errors=("LINK_INVALID", "LINK_NOT_FOUND", "LINK_NOT_YOURS"),
)
def revoke_link(key: str) -> dict[str, Any]:
    return wiring.film_links().revoke(app.partner_actor(), key)


# -- patient side (the link is the credential) --------------------------------------------------------


@app.route(
    "/film/v/{key}",
    methods=["GET"],
    summary="The viewer page for a link (HTML; a refusal is an HTML page too)",
    errors=LINK_ERRORS,
    media_type="text/html",
)
def viewer_page(key: str) -> Response:
    from bianjie.film import page

    links = wiring.film_links()
    try:
        link = links.open(key)
    except AppError as exc:
        return page.refusal(exc)
    manifest = links.view(link, kind="page", origin=app.origin(), user_agent=_user_agent())
    return page.render(manifest, key=key)


@app.route(
    "/film/v/{key}/manifest",
    methods=["GET"],
    summary="The viewer's manifest: studies, series and presigned frame URLs (?study=UID for another study)",
    errors=LINK_ERRORS,
)
def viewer_manifest(key: str) -> Response:
    links = wiring.film_links()
    link = links.open(key)
    study = (app.current_request.query_params or {}).get("study")
    manifest = links.view(
        link,
        kind="manifest",
        study_uid=study,
        origin=app.origin(),
        user_agent=_user_agent(),
    )
    if manifest["study"]:
        found = wiring.film_emergency().for_study(manifest["study"]["study_uid"])
        manifest["emergency"] = [e.model_dump(mode="json") for e in found]
    return json_response(200, manifest, {"Cache-Control": "no-store"})


@app.route(
    "/film/v/{key}/share",
    methods=["POST"],
    request=ShareRequest,
    response=LinkAnswer,
    summary="Derive a shorter-lived link to share (revoked with the link it came from)",
    errors=LINK_ERRORS,
    status=201,
)
def share_link(key: str) -> LinkAnswer:
    body = app.body(ShareRequest) if app.current_request.raw_body else ShareRequest()
    return wiring.film_links().share(key, body, base_url=_base_url(), origin=app.origin(), user_agent=_user_agent())


@app.route(
    "/film/v/{key}/emergency",
    methods=["POST"],
    request=EmergencyRequest,
    response=EmergencyAnswer,
    summary="Ask the 医联 imaging cloud to push one of the link's studies now",
    errors=(*LINK_ERRORS, "STUDY_NOT_FOUND"),
    status=202,
)
def emergency_from_link(key: str) -> EmergencyAnswer:
    body = app.body(EmergencyRequest)
    holder = wiring.film_links().holder_for(
        key, body.study_uid, app.origin(), accession=body.accession, hospital=body.hospital
    )
    return wiring.film_emergency().request(body, holder)


# -- 我的影像: the person's own studies (the 随申办 entry's 云影像), by the provider's patient token ----------


@app.route(
    "/film/my/studies",
    methods=["GET"],
    auth="token",
    query=MyStudiesQuery,
    response=MyStudyList,
    summary="我的影像: the studies of the token's person (by the ID number's blind index), newest first",
    errors=("REAL_NAME_REQUIRED", "INVALID_CURSOR"),
)
def my_studies() -> MyStudyList:
    return wiring.film_my_studies().list(app.patient_actor(), app.query(MyStudiesQuery))


@app.route(
    "/film/my/studies/{study}/view",
    methods=["POST"],
    auth="token",
    response=MyViewAnswer,
    summary="A two-hour viewing link (the existing viewer) to one of the token's person's studies",
    errors=("REAL_NAME_REQUIRED", "STUDY_NOT_FOUND"),
    status=201,
)
def my_study_view(study: str) -> MyViewAnswer:
    return wiring.film_my_studies().view(app.patient_actor(), study, base_url=_base_url())


# -- emergency retrieval (partner) ---------------------------------------------------------------------


@app.route(
    "/film/emergency",
    methods=["POST"],
    auth="partner",
    request=EmergencyRequest,
    response=EmergencyAnswer,
    summary="Ask the 医联 imaging cloud to push a study now (应急调阅)",
    errors=("HOSPITAL_NOT_ALLOWED",),
    status=202,
)
def emergency_request() -> EmergencyAnswer:
    return wiring.film_emergency().request(app.body(EmergencyRequest), app.partner_actor())


@app.route(
    "/film/emergency/{request_id}",
    methods=["GET"],
    auth="partner",
    response=EmergencyAnswer,
    summary="Status of an emergency retrieval request",
    errors=("EMERGENCY_NOT_FOUND",),
)
def emergency_status(request_id: str) -> EmergencyAnswer:
    return wiring.film_emergency().get(request_id, app.partner_actor().id)


@app.route(
    "/film/viewer/{name}",
    methods=["GET"],
    summary="The viewer bundle (JavaScript, worker, codec WASM), served from the page's origin",
    errors=("ASSET_NOT_FOUND",),
    media_type="*/*",
)
def viewer_asset(name: str) -> Response:
    from bianjie.film import assets

    body = assets.fetch(wiring.film_objects(), require_env("FILM_WEB_BUCKET"), name)
    content_type = assets.content_type(name)
    return Response(
        # Chalice base64-encodes bytes only for binary types; text goes out as a string
        body=body if content_type in app.api.binary_types else body.decode("utf-8"),
        status_code=200,
        headers={"Content-Type": content_type, "Cache-Control": assets.cache_control(name)},
    )


# -- DICOMweb for partners (QIDO-RS, WADO-RS, STOW-RS; docs/film.md) ------------------------------------

DICOMWEB = "/film/dicomweb"
DW_ERRORS = ("STUDY_NOT_FOUND", "NOT_ACCEPTABLE")
DW_AUTH = " (partner-signed, or a staff token with film-operator/film-admin)"
app.api.binary_types.append("multipart/related")


def _dw_scope() -> Any:
    """A partner signature, or a staff bearer token (film-operator / film-admin of its hospital)."""
    from bianjie.film.dicomweb import Scope, scope_of

    authorization = (app.current_request.headers or {}).get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        actor = app.staff_actor("film-operator", "film-admin")
        return Scope(actor, wiring.film_admin().dicomweb_hospitals(actor))
    return scope_of(app.partner_actor())


def _dw_params() -> dict[str, str]:
    return dict(app.current_request.query_params or {})


def _dw_accept(*offered: str) -> None:
    from bianjie.film.dicomweb import accepts, not_acceptable

    if not accepts((app.current_request.headers or {}).get("accept"), *offered):
        raise not_acceptable(" or ".join(offered))


def _dw_json(body: Any, status: int = 200, warning: str | None = None) -> Response:
    from bianjie.film.dicomweb import MEDIA_JSON, dump

    headers = {"Content-Type": MEDIA_JSON, "Cache-Control": "no-store"}
    if warning:
        headers["Warning"] = warning
    return Response(body=dump(body), status_code=status, headers=headers)


def _dw_binary(answer: Any) -> Response:
    return Response(
        body=answer.body, status_code=200, headers={"Content-Type": answer.content_type, "Cache-Control": "no-store"}
    )


def _dw_search(level: str, study: str | None = None, series: str | None = None) -> Response:
    from bianjie.film import dicomweb as dw

    _dw_accept("application/dicom+json", "application/json")
    scope = _dw_scope()
    keys = {"study": dw.STUDY_KEYS, "series": {**dw.STUDY_KEYS, **dw.SERIES_KEYS}}.get(
        level, {**dw.STUDY_KEYS, **dw.SERIES_KEYS, **dw.INSTANCE_KEYS}
    )
    query = dw.parse_query(_dw_params(), keys)
    base = _base_url() + DICOMWEB
    service = wiring.film_dicomweb()
    if level == "study":
        found = service.search_studies(scope, query, base)
    elif level == "series":
        found = service.search_series(scope, query, base, study=study)
    else:
        found = service.search_instances(scope, query, base, study=study, series=series)
    return _dw_json(found, warning=query.warning())


@app.route(
    f"{DICOMWEB}/studies",
    methods=["GET"],
    auth="partner",
    summary="QIDO-RS: search for studies" + DW_AUTH,
    errors=DW_ERRORS,
    media_type="application/dicom+json",
    response=DicomJsonList,
)
def qido_studies() -> Response:
    return _dw_search("study")


@app.route(
    f"{DICOMWEB}/series",
    methods=["GET"],
    auth="partner",
    summary="QIDO-RS: search for series" + DW_AUTH,
    errors=DW_ERRORS,
    media_type="application/dicom+json",
    response=DicomJsonList,
)
def qido_series() -> Response:
    return _dw_search("series")


@app.route(
    f"{DICOMWEB}/instances",
    methods=["GET"],
    auth="partner",
    summary="QIDO-RS: search for instances" + DW_AUTH,
    errors=DW_ERRORS,
    media_type="application/dicom+json",
    response=DicomJsonList,
)
def qido_instances() -> Response:
    return _dw_search("instance")


@app.route(
    f"{DICOMWEB}/studies/{{study}}/series",
    methods=["GET"],
    auth="partner",
    summary="QIDO-RS: search for a study's series" + DW_AUTH,
    errors=DW_ERRORS,
    media_type="application/dicom+json",
    response=DicomJsonList,
)
def qido_study_series(study: str) -> Response:
    return _dw_search("series", study=study)


@app.route(
    f"{DICOMWEB}/studies/{{study}}/instances",
    methods=["GET"],
    auth="partner",
    summary="QIDO-RS: search for a study's instances" + DW_AUTH,
    errors=DW_ERRORS,
    media_type="application/dicom+json",
    response=DicomJsonList,
)
def qido_study_instances(study: str) -> Response:
    return _dw_search("instance", study=study)


@app.route(
    f"{DICOMWEB}/studies/{{study}}/series/{{series}}/instances",
    methods=["GET"],
    auth="partner",
    summary="QIDO-RS: search for a series' instances" + DW_AUTH,
    errors=(*DW_ERRORS, "SERIES_NOT_FOUND"),
    media_type="application/dicom+json",
    response=DicomJsonList,
)
def qido_series_instances(study: str, series: str) -> Response:
    return _dw_search("instance", study=study, series=series)


@app.route(
    f"{DICOMWEB}/studies/{{study}}/metadata",
    methods=["GET"],
    auth="partner",
    summary="WADO-RS: metadata of every instance of a study (DICOM JSON)" + DW_AUTH,
    errors=DW_ERRORS,
    media_type="application/dicom+json",
    response=DicomJsonList,
)
def wado_study_metadata(study: str) -> Response:
    _dw_accept("application/dicom+json", "application/json")
    return _dw_json(wiring.film_dicomweb().metadata(_dw_scope(), study))


@app.route(
    f"{DICOMWEB}/studies/{{study}}/series/{{series}}/metadata",
    methods=["GET"],
    auth="partner",
    summary="WADO-RS: metadata of a series' instances (DICOM JSON)" + DW_AUTH,
    errors=(*DW_ERRORS, "SERIES_NOT_FOUND"),
    media_type="application/dicom+json",
    response=DicomJsonList,
)
def wado_series_metadata(study: str, series: str) -> Response:
    _dw_accept("application/dicom+json", "application/json")
    return _dw_json(wiring.film_dicomweb().metadata(_dw_scope(), study, series))


@app.route(
    f"{DICOMWEB}/studies/{{study}}/series/{{series}}/instances/{{instance}}/metadata",
    methods=["GET"],
    auth="partner",
    summary="WADO-RS: metadata of one instance (DICOM JSON)" + DW_AUTH,
    errors=(*DW_ERRORS, "INSTANCE_NOT_FOUND"),
    media_type="application/dicom+json",
    response=DicomJsonList,
)
def wado_instance_metadata(study: str, series: str, instance: str) -> Response:
    _dw_accept("application/dicom+json", "application/json")
    return _dw_json(wiring.film_dicomweb().metadata(_dw_scope(), study, series, instance))


@app.route(
    f"{DICOMWEB}/studies/{{study}}/series/{{series}}/instances/{{instance}}",
    methods=["GET"],
    auth="partner",
    summary="WADO-RS: the instance as stored (multipart/related; type=application/dicom)" + DW_AUTH,
    errors=(*DW_ERRORS, "INSTANCE_NOT_FOUND", "RESPONSE_TOO_LARGE"),
    media_type="multipart/related",
)
def wado_instance(study: str, series: str, instance: str) -> Response:
    _dw_accept("application/dicom")
    answer = wiring.film_dicomweb().instance(_dw_scope(), study, series, instance, wiring.film_objects().get)
    return _dw_binary(answer)


@app.route(
    f"{DICOMWEB}/studies/{{study}}/series/{{series}}/instances/{{instance}}/frames/{{frames}}",
    methods=["GET"],
    auth="partner",
    summary="WADO-RS: frames as explicit VR little endian pixels (multipart/related)" + DW_AUTH,
    errors=(*DW_ERRORS, "INSTANCE_NOT_FOUND", "FRAME_NOT_FOUND", "RESPONSE_TOO_LARGE"),
    media_type="multipart/related",
)
def wado_frames(study: str, series: str, instance: str, frames: str) -> Response:
    _dw_accept("application/octet-stream")
    return _dw_binary(wiring.film_dicomweb().frames(_dw_scope(), study, series, instance, frames))


@app.route(
    f"{DICOMWEB}/studies/{{study}}/series/{{series}}/instances/{{instance}}/rendered",
    methods=["GET"],
    auth="partner",
    summary="WADO-RS: the instance's first frame rendered (JPEG, default window, at most 256 px)" + DW_AUTH,
    errors=(*DW_ERRORS, "INSTANCE_NOT_FOUND", "FRAME_NOT_FOUND"),
    media_type="image/jpeg",
)
def wado_rendered(study: str, series: str, instance: str) -> Response:
    _dw_accept("image/jpeg")
    return _dw_binary(wiring.film_dicomweb().rendered(_dw_scope(), study, series, instance))


@app.route(
    f"{DICOMWEB}/studies",
    methods=["POST"],
    auth="partner",
    summary="STOW-RS: store DICOM instances (multipart/related; type=application/dicom); ?hospital= when the "
    "caller serves several; 202 when some parts were refused, 409 when all were" + DW_AUTH,
    errors=(
        "HOSPITAL_REQUIRED",
        "HOSPITAL_NOT_ALLOWED",
        "ACCESS_METHOD_DISABLED",
        "MULTIPART_INVALID",
        "UNSUPPORTED_MEDIA_TYPE",
        "REQUEST_TOO_LARGE",
    ),
    media_type="application/dicom+json",
    response=DicomJsonDataset,
    also=(202, 409),
    # any type reaches the view, so the signature is checked first; a body that is not multipart/related
    # is then 415 UNSUPPORTED_MEDIA_TYPE
    content_types=["*/*"],
)
def stow_studies() -> Response:
    request = app.current_request
    scope = _dw_scope()
    raw = request.raw_body or b""
    answer = wiring.film_stow().store(
        scope,
        content_type=(request.headers or {}).get("content-type", ""),
        body=raw if isinstance(raw, bytes) else raw.encode("utf-8"),
        base_url=_base_url() + DICOMWEB,
        hospital=_dw_params().get("hospital"),
    )
    return _dw_json(answer.dataset, status=answer.status)


# -- management (系统管理): staff roles, access methods, partner apps, change log (docs/film.md) -----------

ADMIN_ERRORS = ("FILM_PERMISSION_DENIED", "INVALID_CODE")
FILM_STAFF = ("film-admin", "film-auditor", "film-operator")


def _film_staff() -> Any:
    return app.staff_actor(*FILM_STAFF)


@app.route(
    "/film/admin/hospitals/{hospital}/staff",
    methods=["GET"],
    auth="token",
    response=StaffList,
    summary="The hospital's film staff and their roles (film-admin, film-auditor)",
    errors=ADMIN_ERRORS,
)
def admin_list_staff(hospital: str) -> StaffList:
    return wiring.film_admin().list_staff(_film_staff(), hospital)


@app.route(
    "/film/admin/hospitals/{hospital}/staff/{staff_id}",
    methods=["PUT"],
    auth="token",
    request=StaffGrant,
    response=StaffEntry,
    summary="Grant a staff member film roles at the hospital, or change them (film-admin)",
    errors=(*ADMIN_ERRORS, "SELF_DEMOTION", "CENTRE_STAFF", "CHANGED"),
)
def admin_put_staff(hospital: str, staff_id: str) -> StaffEntry:
    return wiring.film_admin().put_staff(_film_staff(), hospital, staff_id, app.body(StaffGrant))


@app.route(
    "/film/admin/hospitals/{hospital}/staff/{staff_id}",
    methods=["DELETE"],
    auth="token",
    summary="Revoke a staff member's film roles at the hospital (film-admin)",
    errors=(*ADMIN_ERRORS, "STAFF_NOT_FOUND", "SELF_DEMOTION", "CHANGED"),
)
def admin_delete_staff(hospital: str, staff_id: str) -> dict[str, Any]:
    return wiring.film_admin().delete_staff(_film_staff(), hospital, staff_id)


@app.route(
    "/film/admin/hospitals/{hospital}/access",
    methods=["GET"],
    auth="token",
    response=AccessAnswer,
    summary="The hospital's data access methods (数据接入方式: S3 drop, STOW-RS, emergency pull)",
    errors=ADMIN_ERRORS,
)
def admin_get_access(hospital: str) -> AccessAnswer:
    return wiring.film_admin().get_access(_film_staff(), hospital)


@app.route(
    "/film/admin/hospitals/{hospital}/access",
    methods=["PUT"],
    auth="token",
    request=AccessMethods,
    response=AccessAnswer,
    summary="Enable or disable the hospital's data access methods (film-admin); enforced within 30 s",
    errors=(*ADMIN_ERRORS, "CHANGED"),
)
def admin_put_access(hospital: str) -> AccessAnswer:
    return wiring.film_admin().put_access(_film_staff(), hospital, app.body(AccessMethods))


@app.route(
    "/film/admin/partners/{app_id}",
    methods=["GET"],
    auth="token",
    response=PartnerFilmAnswer,
    summary="A partner app's film settings (服务接入机构: allowlist, link lifetimes, hospitals); centre staff",
    errors=(*ADMIN_ERRORS, "PARTNER_NOT_FOUND"),
)
def admin_get_partner(app_id: str) -> PartnerFilmAnswer:
    return wiring.film_admin().get_partner(_film_staff(), app_id)


@app.route(
    "/film/admin/partners/{app_id}",
    methods=["PUT"],
    auth="token",
    request=PartnerFilmSettings,
    response=PartnerFilmAnswer,
    summary="Change a partner app's film settings (centre film-admin); fields left out stay as they are",
    errors=(*ADMIN_ERRORS, "PARTNER_NOT_FOUND", "TTL_INVALID", "CIDRS_INVALID"),
)
def admin_put_partner(app_id: str) -> PartnerFilmAnswer:
    return wiring.film_admin().put_partner(_film_staff(), app_id, app.body(PartnerFilmSettings))


@app.route(
    "/film/admin/changes",
    methods=["GET"],
    auth="token",
    query=ChangesQuery,
    response=ChangeList,
    summary="Administrative changes of a day with before/after, from the audit chain (admin, auditor)",
    errors=ADMIN_ERRORS,
)
def admin_changes() -> ChangeList:
    actor = _film_staff()
    return wiring.film_admin().changes(actor, app.query(ChangesQuery))


@app.route(
    "/film/admin/studies/{study}/problems",
    methods=["GET"],
    auth="token",
    response=ProblemList,
    summary="Files of a study accepted with problems (transfer syntax mismatch, malformed UIDs)",
    errors=("STUDY_NOT_FOUND", "FILM_PERMISSION_DENIED"),
)
def admin_study_problems(study: str) -> ProblemList:
    return wiring.film_admin().problems(_film_staff(), study)


@app.on_sqs_message(queue="film-emergency", batch_size=5)
def emergency_worker(event: Any) -> dict[str, Any]:
    def one(message: batch.SqsMessage) -> None:
        request = EmergencyJob.model_validate(message.json())
        wiring.film_emergency().process(request.request_id, wiring.film_imaging_cloud())

    return batch.process_partial_response(
        event, one, dead_letters=deps.dead_letters("FILM_EMERGENCY_DLQ_URL"), name="film.emergency"
    )


# -- ingest -------------------------------------------------------------------------------------------


@app.on_sqs_message(queue="film-ingest", batch_size=10)
def ingest(event: Any) -> dict[str, Any]:
    # the batch commits together (bianjie.film.ingest), so the per-record loop is the domain's; it
    # dead-letters permanent failures itself, with the kit's DeadLetterQueue
    result = wiring.film_ingest().handle_batch([(m.message_id, m.body) for m in batch.messages(event)])
    return batch.BatchOutcome(failed=result.failed_message_ids).response()


@app.lambda_function(name="relay_outbox")
def relay_outbox(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Publish film events whose send right after their commit never happened (a crash, a topic outage)."""
    return wiring.film_outbox().relay()
