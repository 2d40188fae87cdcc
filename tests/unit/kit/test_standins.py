"""The one stand-in switch: stand-ins on the local stage only, a clear configuration error elsewhere."""

from __future__ import annotations

import pytest
from bianjie.kit.standins import StandinNotAllowed, require_local, use_standin


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIANJIE_STANDINS", raising=False)
    monkeypatch.delenv("BIANJIE_STAGE", raising=False)


def test_unset_means_stand_ins_locally_and_real_systems_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    assert use_standin("rx.center") is True
    monkeypatch.setenv("BIANJIE_STAGE", "prod")
    assert use_standin("rx.center") is False
    assert use_standin("pay.channels") is False


def test_a_list_names_the_systems_that_use_their_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIANJIE_STANDINS", "rx.center, guide.channels")
    assert use_standin("rx.center") and use_standin("guide.channels")
    assert not use_standin("pay.channels") and not use_standin("film.imaging_cloud")
    monkeypatch.setenv("BIANJIE_STANDINS", "none")
    assert not use_standin("rx.center")
    monkeypatch.setenv("BIANJIE_STANDINS", "all")
    assert use_standin("film.imaging_cloud")


@pytest.mark.parametrize("configured", ["all", "rx.center"])
def test_a_stand_in_outside_the_local_stage_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, configured: str
) -> None:
    monkeypatch.setenv("BIANJIE_STAGE", "prod")
    monkeypatch.setenv("BIANJIE_STANDINS", configured)
    with pytest.raises(StandinNotAllowed, match=r"rx\.center runs only on the local stage"):
        use_standin("rx.center")
    with pytest.raises(StandinNotAllowed):
        require_local("pay.channels")
    monkeypatch.setenv("BIANJIE_STAGE", "local")
    require_local("pay.channels")


def test_unknown_names_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown system"):
        use_standin("rx.centre")
    monkeypatch.setenv("BIANJIE_STANDINS", "rx.centre")
    with pytest.raises(ValueError, match=r"unknown systems: rx\.centre"):
        use_standin("rx.center")
