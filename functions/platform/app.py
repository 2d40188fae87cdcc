"""Platform functions: health, the partner self-check, the token keys, and the daily audit-chain verification."""

from __future__ import annotations

from typing import Any

from bianjie.kit import deps
from bianjie.kit.web import ServiceApp, json_response
from bianjie.platform import audit_sweep, health
from bianjie.platform.models import Health, Jwks, Liveness, PartnerMe

app = ServiceApp("platform")


@app.route("/health", methods=["GET"], response=Liveness, summary="Liveness (public; tells nothing of the deployment)")
def get_health() -> Liveness:
    return Liveness(status="ok")


@app.route(
    "/health/detail",
    methods=["GET"],
    auth="token",
    response=Health,
    summary="Version, stage and the functions served (operators only: a staff token with the operator role)",
)
def get_health_detail() -> Health:
    app.staff_actor(health.OPERATOR_ROLE)
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


@app.route(
    "/.well-known/jwks.json",
    methods=["GET"],
    response=Jwks,
    summary="The public keys that verify patient and staff tokens (JWKS, RFC 7517)",
)
def get_jwks() -> Any:
    # the verifier's own key set, so what partners are told is exactly what our functions accept
    jwks = deps.token_verifier().keys.to_jwks()
    return json_response(200, jwks, {"Cache-Control": "public, max-age=300"})


@app.lambda_function(name="verify_audit_chains")
def verify_audit_chains(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return audit_sweep.verify_previous_day(deps.audit_log("platform"), event.get("time"))
