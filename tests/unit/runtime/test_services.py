"""The development package finds each service's tooling (``bianjie_dev.<service>.demo`` / ``.cli``) by the
production services it serves, so adding a service touches no shared file."""

from __future__ import annotations

from bianjie_dev.runtime.services import service_modules

from tests.conftest import ROOT


def on_disk(module: str) -> list[str]:
    """What the folders hold: ``bianjie_dev/<service>/<module>.py`` for each production service."""
    dev, core = ROOT / "layers/dev/python/bianjie_dev", ROOT / "layers/core/python/bianjie"
    return sorted(
        f"bianjie_dev.{p.parent.name}.{module}"
        for p in dev.glob(f"*/{module}.py")
        if (core / p.parent.name / "__init__.py").exists()
    )


def test_finds_the_demo_and_cli_of_every_service_that_has_them() -> None:
    demos = [m.__name__ for m in service_modules("demo")]
    assert demos == on_disk("demo") and {"bianjie_dev.film.demo", "bianjie_dev.rx.demo"} <= set(demos)
    cli = service_modules("cli")
    assert [m.__name__ for m in cli] == on_disk("cli") and "bianjie_dev.pay.cli" in {m.__name__ for m in cli}
    assert all(callable(m.register) for m in cli)


def test_a_service_without_tooling_is_skipped_not_an_error() -> None:
    # platform has no bianjie_dev.platform package at all; no service has a module of this name
    assert service_modules("no_such_module") == []
