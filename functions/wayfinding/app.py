"""Indoor navigation (院内导航, 元宇宙云上医院): IMDF venues, POI management, routes with Chinese steps,
search, device and business overlays, the operations view."""

from __future__ import annotations

import json

from bianjie.kit.web import ServiceApp
from bianjie.wayfinding import api
from bianjie.wayfinding.wiring import wayfinding_service
from chalice import Response

app = ServiceApp("wayfinding")
ADMIN = ("nav-admin",)
OPERATIONS = ("nav-admin", "nav-ops")


# -- venues (管理系统: scene management) ---------------------------------------------------------------


@app.route(
    "/wayfinding/imports",
    methods=["POST"],
    auth="token",
    request=api.ImportRequest,
    response=api.ImportAnswer,
    status=201,
    summary="Import an IMDF 1.0 archive (zip, base64) as a draft version; refused whole with every problem",
    errors=("ARCHIVE_INVALID", "ARCHIVE_NOT_BASE64", "VENUE_OF_OTHER_HOSPITAL", "IMPORT_CONTENDED"),
)
def post_import() -> api.ImportAnswer:
    actor = app.staff_actor(*ADMIN)
    return wayfinding_service().import_archive(actor, app.body(api.ImportRequest))


@app.route(
    "/wayfinding/venues/{venue_id}/versions/{version}/archive",
    methods=["GET"],
    auth="token",
    response=api.ExportAnswer,
    summary="Export a version as an IMDF zip (a presigned URL, 10 minutes)",
    errors=("VENUE_NOT_FOUND", "VERSION_NOT_FOUND", "VENUE_OF_OTHER_HOSPITAL"),
)
def get_archive(venue_id: str, version: str) -> api.ExportAnswer:
    actor = app.staff_actor(*ADMIN)
    return wayfinding_service().export_archive(actor, venue_id, _version(version))


@app.route(
    "/wayfinding/venues/{venue_id}/versions/{version}/publish",
    methods=["POST"],
    auth="token",
    response=api.PublishAnswer,
    summary="Publish a version: derive its routing graph and map; routes and search use it from now on",
    errors=(
        "VENUE_NOT_FOUND",
        "VERSION_NOT_FOUND",
        "VENUE_OF_OTHER_HOSPITAL",
        "PUBLISH_CONTENDED",
    ),
)
def post_publish(venue_id: str, version: str) -> api.PublishAnswer:
    actor = app.staff_actor(*ADMIN)
    return wayfinding_service().publish(actor, venue_id, _version(version))


@app.route(
    "/wayfinding/venues",
    methods=["GET"],
    query=api.VenuesQuery,
    response=api.VenuesAnswer,
    summary="A hospital's campuses (院区) with their published versions",
)
def get_venues() -> api.VenuesAnswer:
    return wayfinding_service().venues(app.query(api.VenuesQuery).hospital)


@app.route(
    "/wayfinding/venues/{venue_id}/map",
    methods=["GET"],
    response=api.MapAnswer,
    summary="The published map: levels with their units and openings, buildings, kiosks",
    errors=("VENUE_NOT_FOUND", "VENUE_NOT_PUBLISHED"),
)
def get_map(venue_id: str) -> api.MapAnswer:
    return wayfinding_service().map(venue_id)


# -- routes and search ---------------------------------------------------------------------------------


@app.route(
    "/wayfinding/route",
    methods=["GET"],
    query=api.RouteQuery,
    response=api.RouteAnswer,
    summary="A route between two places under a profile (elevator_first, stairs_first, accessible) with Chinese steps",
    errors=(
        "VENUE_NOT_FOUND",
        "VENUE_NOT_PUBLISHED",
        "UNKNOWN_ENDPOINT",
        "ENDPOINT_MALFORMED",
        "POI_DISABLED",
        "CATEGORY_UNKNOWN",
        "NO_SUCH_PLACE",
        "NO_ROUTE",
        "NO_STEP_FREE_ROUTE",
    ),
)
def get_route() -> api.RouteAnswer:
    return wayfinding_service().route(app.query(api.RouteQuery))


@app.route(
    "/wayfinding/search",
    methods=["GET"],
    query=api.SearchQuery,
    response=api.SearchAnswer,
    summary="Search departments, rooms and amenities (Chinese, pinyin, initials, aliases, one typo)",
    errors=("VENUE_NOT_FOUND", "VENUE_NOT_PUBLISHED"),
)
def get_search() -> api.SearchAnswer:
    return wayfinding_service().search(app.query(api.SearchQuery))


# -- POI management ------------------------------------------------------------------------------------


@app.route(
    "/wayfinding/venues/{venue_id}/pois",
    methods=["GET"],
    auth="token",
    response=api.PoiList,
    summary="Every POI of the venue with its managed fields (disabled ones too)",
    errors=("VENUE_NOT_FOUND", "VENUE_OF_OTHER_HOSPITAL"),
)
def get_pois(venue_id: str) -> api.PoiList:
    actor = app.staff_actor(*ADMIN)
    return wayfinding_service().list_pois(actor, venue_id)


@app.route(
    "/wayfinding/venues/{venue_id}/pois/{poi_id}",
    methods=["PATCH"],
    auth="token",
    request=api.PoiPatch,
    response=api.Poi,
    summary="Enable or disable a POI, set its tags, aliases or category",
    errors=("VENUE_NOT_FOUND", "VENUE_OF_OTHER_HOSPITAL", "POI_NOT_FOUND"),
)
def patch_poi(venue_id: str, poi_id: str) -> api.Poi:
    actor = app.staff_actor(*ADMIN)
    return wayfinding_service().update_poi(actor, venue_id, poi_id, app.body(api.PoiPatch))


@app.route(
    "/wayfinding/venues/{venue_id}/tags/rename",
    methods=["POST"],
    auth="token",
    request=api.TagRename,
    response=api.TagRenameAnswer,
    summary="Rename a tag on every POI that has it",
    errors=("VENUE_NOT_FOUND", "VENUE_OF_OTHER_HOSPITAL", "TAG_NOT_FOUND"),
)
def post_tag_rename(venue_id: str) -> api.TagRenameAnswer:
    actor = app.staff_actor(*ADMIN)
    return wayfinding_service().rename_tag(actor, venue_id, app.body(api.TagRename))


@app.route(
    "/wayfinding/venues/{venue_id}/pois.csv",
    methods=["GET"],
    auth="token",
    media_type="text/csv",
    summary="POIs as CSV (id, kind, name, category, enabled, tags, aliases, level, position)",
    errors=("VENUE_NOT_FOUND", "VENUE_OF_OTHER_HOSPITAL"),
)
def get_pois_csv(venue_id: str) -> Response:
    actor = app.staff_actor(*ADMIN)
    body = wayfinding_service().export_pois_csv(actor, venue_id)
    return Response(body=body, status_code=200, headers={"Content-Type": "text/csv; charset=utf-8"})


@app.route(
    "/wayfinding/venues/{venue_id}/pois.geojson",
    methods=["GET"],
    auth="token",
    media_type="application/geo+json",
    summary="POIs as a GeoJSON FeatureCollection",
    errors=("VENUE_NOT_FOUND", "VENUE_OF_OTHER_HOSPITAL"),
)
def get_pois_geojson(venue_id: str) -> Response:
    actor = app.staff_actor(*ADMIN)
    body = wayfinding_service().export_pois_geojson(actor, venue_id)
    return Response(
        body=json.dumps(body, ensure_ascii=False), status_code=200, headers={"Content-Type": "application/geo+json"}
    )


@app.route(
    "/wayfinding/venues/{venue_id}/pois/import",
    methods=["POST"],
    auth="token",
    request=api.PoiImport,
    response=api.PoiImportAnswer,
    summary="Set managed POI fields from a CSV or GeoJSON export; every row is checked before any is written",
    errors=("VENUE_NOT_FOUND", "VENUE_OF_OTHER_HOSPITAL", "POI_FILE_INVALID", "POI_IMPORT_INVALID"),
)
def post_pois_import(venue_id: str) -> api.PoiImportAnswer:
    actor = app.staff_actor(*ADMIN)
    return wayfinding_service().import_pois(actor, venue_id, app.body(api.PoiImport))


# -- overlays and operations (运营管理) -----------------------------------------------------------------


@app.route(
    "/wayfinding/overlays",
    methods=["POST"],
    auth="partner",
    request=api.OverlayPost,
    response=api.OverlayAnswer,
    summary="A hospital system reports a room's or device's reading (queue length, a broken kiosk); older ones ignored",
    errors=("VENUE_NOT_FOUND", "VENUE_OF_OTHER_HOSPITAL", "OVERLAY_EMPTY"),
)
def post_overlay() -> api.OverlayAnswer:
    partner = app.partner_actor()
    return wayfinding_service().record_overlay(partner, app.body(api.OverlayPost))


@app.route(
    "/wayfinding/venues/{venue_id}/operations",
    methods=["GET"],
    auth="token",
    query=api.OperationsQuery,
    response=api.OperationsAnswer,
    summary="The operations view: POIs and overlays by building, level and room, with alerts",
    errors=("VENUE_NOT_FOUND", "VENUE_NOT_PUBLISHED", "VENUE_OF_OTHER_HOSPITAL"),
)
def get_operations(venue_id: str) -> api.OperationsAnswer:
    actor = app.staff_actor(*OPERATIONS)
    return wayfinding_service().operations(actor, venue_id, app.query(api.OperationsQuery))


def _version(raw: str) -> int:
    from bianjie.kit.errors import NotFound

    if not raw.isdigit() or not 0 < int(raw) < 1_000_000:
        raise NotFound(f"没有版本“{raw[:20]}”：版本号是正整数", code="VERSION_NOT_FOUND")
    return int(raw)
