"""Builds wayfinding's use cases from the environment (template.yaml sets the variables), once per process
and function scope. No outside system: the service's only dependencies are its table, its bucket and the
platform's audit log."""

from __future__ import annotations

from bianjie.kit import deps
from bianjie.kit.config import require_env
from bianjie.wayfinding.service import WayfindingService


@deps.singleton
def wayfinding_service() -> WayfindingService:
    return WayfindingService(
        deps.documents(),
        deps.table("WAYFINDING_TABLE"),
        deps.objects(),
        require_env("WAYFINDING_BUCKET"),
        deps.audit_log("wayfinding"),
    )
