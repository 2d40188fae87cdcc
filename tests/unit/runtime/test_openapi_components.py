"""Component names are global in an OpenAPI document: two different models of one name must not share
one (consult's AgreementView once silently replaced pay's, so pay's route was described by consult's)."""

from __future__ import annotations

import pytest
from bianjie_dev.runtime.openapi import ComponentClash, _schema_of
from pydantic import BaseModel


def make(field: str) -> type[BaseModel]:
    return type("ReviewRequest", (BaseModel,), {"__annotations__": {field: str}})


def test_the_same_model_twice_is_one_component() -> None:
    components: dict[str, object] = {}
    model = make("reason")
    assert _schema_of(model, components) == _schema_of(model, components)
    assert list(components) == ["ReviewRequest"]


def test_two_different_models_of_one_name_are_refused() -> None:
    components: dict[str, object] = {}
    _schema_of(make("reason"), components)
    with pytest.raises(ComponentClash, match="ReviewRequest"):
        _schema_of(make("verdict"), components)
