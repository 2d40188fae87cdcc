"""The development package finds each service's tooling (``bianjie_dev.<service>.demo`` / ``.cli``) by the
production services it serves, so adding a service touches no shared file."""

from __future__ import annotations

from bianjie_dev.runtime.services import service_modules


def test_finds_the_demo_and_cli_of_every_service_that_has_them() -> None:
    assert [m.__name__ for m in service_modules("demo")] == [
        f"bianjie_dev.{s}.demo" for s in ("film", "guide", "identity", "pages", "pay", "rx")
    ]
    cli = service_modules("cli")
    assert [m.__name__ for m in cli] == [
        f"bianjie_dev.{s}.cli" for s in ("film", "guide", "identity", "pages", "pay", "rx")
    ]
    assert all(callable(m.register) for m in cli)


def test_a_service_without_tooling_is_skipped_not_an_error() -> None:
    # platform has no bianjie_dev.platform package at all; no service has a module of this name
    assert service_modules("no_such_module") == []
