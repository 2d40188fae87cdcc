"""Platform functions: health, the partner self-check, and the daily audit-chain verification."""

from __future__ import annotations

from typing import Any

from bianjie.kit import deps
from bianjie.kit.web import ServiceApp
from bianjie.platform import audit_sweep, health
from bianjie.platform.models import Health, PartnerMe

app = ServiceApp("platform")


@app.route("/health", methods=["GET"], response=Health, summary="Liveness and the functions served")
def get_health() -> Health:
    return Health(**health.report(app.lambda_context))


@app.route(
    "/partners/me",
    methods=["GET"],
    auth="partner",
    response=PartnerMe,
    summary="Who the request signature says is calling (a partner's integration self-check)",
)
def get_partner_me() -> PartnerMe:
    caller = app.partner()
    return PartnerMe(app_id=caller.app_id, key_serial=caller.serial, name=caller.partner.name)


@app.lambda_function(name="verify_audit_chains")
def verify_audit_chains(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return audit_sweep.verify_previous_day(deps.audit_log("platform"), event.get("time"))
