"""A test's stack seeds only the services it names and what they need (``NEEDS``), in the usual order
except that what a service needs is seeded before it (the pages' banner links carry what rx's demo wrote)."""

from __future__ import annotations

import pytest
from bianjie_dev.runtime.seed import service_seeders


def names(seeders: list) -> list[str]:
    return [seeder.__module__.split(".")[1] for seeder in seeders]


def test_every_service_by_default() -> None:
    from bianjie_dev.runtime.services import service_modules

    every = names(service_seeders())
    assert {"guide", "rx", "pay", "film", "pages", "escort"} <= set(every)
    assert len(every) == len(set(every))
    for module in service_modules("demo"):
        name = module.__name__.split(".")[1]
        for need in getattr(module, "NEEDS", ()):
            assert every.index(need) < every.index(name), (need, name)
    # otherwise alphabetical: the services that need nothing keep their order
    alone = [n for n in every if n not in {"pages", "escort", "guide", "rx", "pay"}]
    assert alone == sorted(alone)


def test_only_the_named_services_and_what_they_need() -> None:
    assert names(service_seeders(["pages"])) == ["guide", "rx", "pay", "pages"]
    assert names(service_seeders(["escort"])) == ["guide", "escort"]
    assert names(service_seeders(["film"])) == ["film"]
    assert names(service_seeders([])) == []


def test_an_unknown_service_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"no service 'nope'.*guide"):
        service_seeders(["nope"])
