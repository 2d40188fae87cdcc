"""Domain-event envelopes: publishing refuses patient data by field name, parsing accepts raw and SNS bodies."""

from __future__ import annotations

import json

import pytest
from bianjie.kit.events import MemorySink, Publisher, envelopes, message_id, parse_envelope, scheduled_time


def test_publish_ids_and_parse_both_body_shapes() -> None:
    sink = MemorySink()
    env = Publisher(sink, "bianjie.rx", clock=lambda: 0).publish(
        "rx.dispensed",
        {"rx_id": "31202611224167084115", "visit_id": "V1"},
        subject="31202611224167084115",
        event_id="e1",
    )
    assert env.id == "e1" and env.time == "1970-01-01T00:00:00Z" and sink.of_type("rx.dispensed") == [env]
    raw = env.model_dump_json()
    assert parse_envelope(raw) == env
    wrapped = json.dumps({"Type": "Notification", "Message": raw})
    assert parse_envelope(wrapped) == env
    records = [{"messageId": "m1", "body": raw}]
    assert envelopes(records) == [("m1", env)] and message_id(records[0]) == "m1"


@pytest.mark.parametrize("data", [{"patient_name": "张三"}, {"items": [{"phone": "13800138000"}]}])
def test_publish_refuses_sensitive_fields(data: dict) -> None:
    with pytest.raises(ValueError, match="sensitive"):
        Publisher(MemorySink(), "bianjie.x").publish("x.y", data)


def test_scheduled_time() -> None:
    assert scheduled_time({"time": "2026-11-22T16:30:00Z"}) == 1795365000.0
    assert scheduled_time({"detail": {}}) is None
