"""Demo data for ``make run``: stand-in channel credentials and our webhook key, so the CLI and every
function find them from the start. Patients sign their own agreements (see docs/pay.md)."""

from __future__ import annotations

from typing import Any


def seed(stack: Any) -> None:
    from bianjie.pay import wiring

    wiring.reset()
    wiring.channel_configs(refresh=True)
    wiring.webhook_key()
