"""Every service's wiring asks the one stand-in switch: outside the local stage a stand-in is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bianjie.kit import deps
from bianjie.kit.standins import StandinNotAllowed


def _rx_center() -> Any:
    from bianjie.rx import wiring

    return wiring.rx_center()


def _rx_ecredentials() -> Any:
    from bianjie.rx import wiring

    return wiring.rx_ecredentials()


def _guide_channels() -> Any:
    from bianjie.guide import wiring

    return wiring.guide_channels()


def _film_imaging_cloud() -> Any:
    from bianjie.film import wiring

    return wiring.film_imaging_cloud()


def _pay_channels() -> Any:
    from bianjie.pay import wiring

    wiring.reset()
    return wiring.channels()


BUILDERS = [_rx_center, _rx_ecredentials, _guide_channels, _film_imaging_cloud, _pay_channels]


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BIANJIE_STAGE", "prod")
    deps.reset()
    yield
    deps.reset()


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__.strip("_"))
def test_a_stand_in_asked_for_outside_the_local_stage_fails_at_wiring(
    monkeypatch: pytest.MonkeyPatch, build: Callable[[], Any]
) -> None:
    monkeypatch.setenv("BIANJIE_STANDINS", "all")
    with pytest.raises(StandinNotAllowed, match="only on the local stage"):
        build()


@pytest.mark.parametrize("build", [_rx_ecredentials, _film_imaging_cloud], ids=lambda b: b.__name__.strip("_"))
def test_a_system_with_no_real_adapter_yet_fails_clearly_outside_the_local_stage(
    monkeypatch: pytest.MonkeyPatch, build: Callable[[], Any]
) -> None:
    monkeypatch.delenv("BIANJIE_STANDINS", raising=False)
    with pytest.raises(RuntimeError, match="not wired in this build"):
        build()


def test_the_real_center_is_wired_from_its_settings_outside_the_local_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIANJIE_STANDINS", raising=False)
    monkeypatch.delenv("RX_CENTER_APP_ID", raising=False)
    with pytest.raises(RuntimeError, match="RX_CENTER_APP_ID is not set"):
        _rx_center()
