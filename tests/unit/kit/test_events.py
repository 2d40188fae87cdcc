"""Domain events: typed contracts, the registry, envelopes (raw and SNS-wrapped), and what is rejected."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
from bianjie.contracts import REGISTRY
from bianjie.contracts.rx import RxDispensedV1
from bianjie.kit.batch import Poison
from bianjie.kit.events import (
    EventContract,
    EventRejected,
    MemorySink,
    Publisher,
    Registry,
    envelope_of,
    parse_envelope,
    read,
    scheduled_time,
)
from pydantic import ValidationError

from tests import events

RX = {
    "rx_id": "31202611224167084115",
    "hospital": "demo-hospital",
    "patient_ref": "ref",
    "visit_id": "V1",
    "status": "dispensed",
    "valid_end": "2026-11-25T08:00:00Z",
    "uses": 1,
}


def test_publish_a_contract_and_parse_both_body_shapes() -> None:
    sink = MemorySink()
    env = Publisher(sink, "bianjie.rx", clock=lambda: 0).publish(
        RxDispensedV1(**RX), subject=RX["rx_id"], event_id="e1"
    )
    assert (env.id, env.type, env.dataversion, env.time) == ("e1", "rx.dispensed", 1, "1970-01-01T00:00:00Z")
    assert env.data == RX and sink.of_type("rx.dispensed") == [env]  # None fields are left out
    raw = env.model_dump_json()
    assert parse_envelope(raw) == env
    assert parse_envelope(json.dumps({"Type": "Notification", "Message": raw})) == env
    envelope, event = read(raw, REGISTRY)
    assert envelope == env and event == RxDispensedV1(**RX)


def test_every_contract_has_a_canned_envelope_that_validates() -> None:
    """events/contracts holds one envelope per (type, version) the registry knows, and each reads back."""
    names = events.contract_files()
    assert names == sorted(f"{t}.v1.json" for t in REGISTRY.types())
    for name in names:
        env = parse_envelope(events.load(f"contracts/{name}"))
        event = REGISTRY.parse(env)
        assert (event.event_type, event.version) == (env.type, env.dataversion)
        assert envelope_of(env.source, event, event_id=env.id, subject=env.subject, at=0).data == env.data


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "EVENT_MALFORMED"),
        (json.dumps({"hello": "world"}), "EVENT_MALFORMED"),
        (json.dumps(events.envelope("rx.dispensed") | {"type": "rx.teleported"}), "EVENT_TYPE_UNKNOWN"),
        (json.dumps(events.envelope("rx.dispensed") | {"dataversion": 9}), "EVENT_VERSION_UNKNOWN"),
        (json.dumps(events.envelope("rx.dispensed", visit_id=None)), "EVENT_INVALID"),
        (json.dumps(events.envelope("pay.charge.succeeded", amount_fen="128.50")), "EVENT_INVALID"),
    ],
)
def test_what_consumers_reject_and_why(body: str, code: str) -> None:
    with pytest.raises(EventRejected) as caught:
        read(body, REGISTRY)
    assert caught.value.code == code and isinstance(caught.value, Poison) and caught.value.reason


def test_unknown_fields_are_ignored_on_read_and_refused_on_publish() -> None:
    """The additive-change policy: an older consumer ignores a field a newer producer added."""
    env = parse_envelope(events.envelope("rx.released", added_later="x"))
    assert "added_later" not in REGISTRY.parse(env).model_dump()
    with pytest.raises(ValidationError):
        RxDispensedV1(**RX, added_later="x")  # type: ignore[call-arg]


def test_publish_refuses_patient_fields_even_in_a_contract() -> None:
    class Careless(EventContract):
        event_type: ClassVar[str] = "x.careless"
        patient_name: str

    with pytest.raises(ValueError, match="sensitive"):
        Publisher(MemorySink(), "bianjie.x").publish(Careless(patient_name="张三"), event_id="e")


def test_a_registry_holds_one_model_per_type_and_version() -> None:
    class V2(RxDispensedV1):
        version: ClassVar[int] = 2

    both = Registry(RxDispensedV1, V2)
    assert both.model("rx.dispensed", 2) is V2 and ("rx.dispensed", 1) in both
    with pytest.raises(ValueError, match="two contracts"):
        Registry(RxDispensedV1, RxDispensedV1)


def test_scheduled_time() -> None:
    assert scheduled_time(events.scheduled("2026-11-22T16:30:00Z")) == 1795365000.0
    assert scheduled_time({"detail": {}}) is None
