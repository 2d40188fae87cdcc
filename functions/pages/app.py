"""The patient and staff pages (issue 13): HTML with a per-response nonce and its CSP, and the built
scripts and styles, from PagesWebBucket. The pages call guide, pay and rx with relative URLs (one origin:
the local gateway, or the front door in production); nothing here reads patient data."""

from __future__ import annotations

from bianjie.kit.errors import NotFound
from bianjie.kit.web import ServiceApp
from bianjie.pages import assets, page, wiring
from chalice import Response

app = ServiceApp("pages")


@app.route(
    "/pages/{name}",
    methods=["GET"],
    summary="A patient or staff page (HTML)",
    errors=("PAGE_NOT_FOUND",),
    media_type="text/html",
)
def get_page(name: str) -> Response:
    try:
        document = assets.page_html(wiring.pages_objects(), wiring.pages_bucket(), name)
    except NotFound:
        return page.not_found()
    return page.render(document, stage=wiring.stage())


@app.route(
    "/pages/assets/{name}",
    methods=["GET"],
    summary="The pages' scripts and styles (content-hashed)",
    errors=("ASSET_NOT_FOUND",),
)
def get_asset(name: str) -> Response:
    body = assets.asset(wiring.pages_objects(), wiring.pages_bucket(), name)
    return Response(
        body=body.decode("utf-8"),
        status_code=200,
        headers={
            "Content-Type": assets.content_type(name),
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
