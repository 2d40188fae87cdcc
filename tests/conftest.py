"""Shared test fixtures: repository paths, free ports, a clean kit between tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Tests never reach real AWS: fake credentials and a region are set before any client exists.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "cn-north-1")
os.environ.setdefault("AWS_REGION", "cn-north-1")
# Stacks started by tests seed a smaller demo CT series: start-up time is paid by every integration module.
os.environ.setdefault("BIANJIE_FILM_DEMO_CT_SLICES", "4")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _fresh_kit() -> Iterator[None]:
    """Adapters are process-wide singletons; tests that change the environment need them rebuilt."""
    from bianjie.kit import aws, deps
    from bianjie.kit.config import reset_settings

    yield
    reset_settings()
    aws.reset_clients()
    deps.reset()
