"""The daily audit check: verify every chain of the previous UTC day and report tampering loudly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bianjie.kit.logging import get_logger

log = get_logger("bianjie.platform.audit")


def previous_day(event_time: str | None) -> str:
    now = datetime.fromisoformat(event_time.replace("Z", "+00:00")) if event_time else datetime.now(UTC)
    return (now.astimezone(UTC) - timedelta(days=1)).date().isoformat()


def verify_previous_day(audit: Any, event_time: str | None = None) -> dict[str, Any]:
    day = previous_day(event_time)
    chains = [c for c in audit.chains() if f"#{day}" in c]
    reports = [audit.verify(chain) for chain in chains]
    broken = [r for r in reports if not r.ok]
    for report in broken:
        log.error("audit chain tampered", extra={"chain": report.chain, "issues": len(report.issues)})
    summary = {
        "day": day,
        "chains": len(reports),
        "broken": [r.chain for r in broken],
        "records": sum(getattr(r, "records", 0) for r in reports),
    }
    log.info("audit chains verified", extra=summary)
    return summary
