"""The edge's pydantic types refuse what pydantic would coerce: money as a boolean or a string, a time
as a bare number."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bianjie.kit.idempotency import natural_key
from bianjie.kit.types import IsoDatetime, WholeNumber
from pydantic import BaseModel, ValidationError


class Bill(BaseModel):
    amount: WholeNumber
    due_at: IsoDatetime | None = None


@pytest.mark.parametrize("raw", ['{"amount": true}', '{"amount": "100"}', '{"amount": 1.5}', '{"amount": null}'])
def test_money_is_a_json_integer(raw: str) -> None:
    with pytest.raises(ValidationError):
        Bill.model_validate_json(raw)


def test_a_whole_number_is_taken_as_json_schema_says() -> None:
    assert Bill.model_validate_json('{"amount": 100}').amount == 100
    assert Bill.model_validate_json('{"amount": 100.0}').amount == 100  # the same JSON Schema integer
    assert Bill.model_validate({"amount": 7}).amount == 7


@pytest.mark.parametrize("raw", ['{"amount": 1, "due_at": 0}', '{"amount": 1, "due_at": 1767225600.5}'])
def test_a_time_is_text_not_a_number(raw: str) -> None:
    with pytest.raises(ValidationError, match="ISO 8601"):
        Bill.model_validate_json(raw)


def test_a_time_with_its_offset_is_taken() -> None:
    bill = Bill.model_validate_json('{"amount": 1, "due_at": "2026-01-01T10:00:00+08:00"}')
    assert bill.due_at == datetime(2026, 1, 1, 2, tzinfo=UTC)
    assert Bill.model_validate({"amount": 1, "due_at": datetime(2026, 1, 1, tzinfo=UTC)}).due_at is not None


def test_a_natural_key_of_any_text_is_a_valid_stored_key() -> None:
    assert natural_key("RX-2026-001:S1") == "RX-2026-001:S1"  # header-shaped: kept readable
    hashed = natural_key("处方-甲:结算 1")
    assert hashed.startswith("sm3:") and len(hashed) == 68 and hashed == natural_key("处方-甲:结算 1")
    assert natural_key("sm3:" + "0" * 64) != "sm3:" + "0" * 64  # never confused with a digest
