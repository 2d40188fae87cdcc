"""deps.singleton: one object per builder, keyed by module and qualified name."""

from __future__ import annotations

import types

from bianjie.kit import deps


def _builder(module: str) -> types.FunctionType:
    namespace: dict[str, object] = {"__name__": module}
    exec("def store():\n    return object()\n", namespace)
    return namespace["store"]  # type: ignore[return-value]


def test_same_named_builders_of_two_modules_do_not_share_an_object() -> None:
    film_store = deps.singleton(_builder("bianjie.film.wiring"))
    rx_store = deps.singleton(_builder("bianjie.rx.wiring"))
    try:
        assert film_store() is film_store()
        assert rx_store() is rx_store()
        assert film_store() is not rx_store()
    finally:
        deps.reset()


def test_reset_forgets_what_was_built() -> None:
    store = deps.singleton(_builder("tests.unit.kit.somewhere"))
    first = store()
    deps.reset()
    assert store() is not first
