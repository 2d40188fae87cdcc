"""Expiry, reuse, events on the domain-events topic, the audit trail and the FHIR export (moto)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from bianjie.kit import aws
from bianjie.kit.events import parse_envelope
from fhir.resources.R4B.bundle import Bundle

from tests.functional.rx.conftest import World, settlement_body


def code(response: Any) -> str:
    return response.json_body["error"]["code"]


def shift_clock(seconds: float) -> None:
    from bianjie.rx import wiring

    wiring.service().clock = lambda: time.time() + seconds


@pytest.fixture
def events(world: World) -> Any:
    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName="rx-events-test")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=os.environ["DOMAIN_EVENTS_TOPIC"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )

    def read() -> list[Any]:
        out = []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return out
            for m in batch:
                out.append(parse_envelope(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    return read


def test_expired_prescription_cannot_be_dispensed(world: World, events: Any) -> None:
    rx_id = world.released()
    auth = world.authorize()["authorization_id"]
    world.review(rx_id, auth)
    shift_clock(3 * 86400 + 60)
    response = world.dispense(rx_id, auth)
    assert response.status_code == 409 and code(response) == "RX_EXPIRED"
    view = world.ok("hospital-a", "GET", f"/rx/prescriptions/{rx_id}")
    assert view["status"] == "expired" and view["center_status"] == "2"
    assert [e.type for e in events()] == ["rx.uploaded", "rx.released", "rx.expired"]


def test_sweep_expires_and_announces(world: World, events: Any) -> None:
    from bianjie.runtime.invoke import load_module

    from tests.conftest import ROOT

    soon = world.valid(hosp_rxno="SOON", age_s=3 * 86400 - 3600)  # validity ends in an hour
    later = world.valid(hosp_rxno="LATER")
    events()
    sweep = load_module(ROOT / "functions" / "rx" / "app.py").sweep_expired
    assert sweep({}, None) == {"expired": 0, "expiring": 1, "conflicts": 0}
    assert sweep({}, None)["expiring"] == 0  # announced once
    shift_clock(3700)
    assert sweep({}, None)["expired"] == 1
    got = [(e.type, e.subject) for e in events()]
    assert got == [("rx.expiring", soon), ("rx.expired", soon)]
    assert world.ok("hospital-a", "GET", f"/rx/prescriptions/{later}")["status"] == "valid"
    revoke = world.call("doctor", "POST", f"/rx/prescriptions/{soon}/revoke", {"reason": "作废"})
    assert code(revoke) == "RX_EXPIRED"


def test_events_carry_ids_only(world: World, events: Any) -> None:
    rx_id = world.released()
    auth = world.authorize()["authorization_id"]
    world.review(rx_id, auth)
    world.dispense(rx_id, auth)
    got = events()
    assert [e.type for e in got] == ["rx.uploaded", "rx.released", "rx.dispensed"]
    dispensed = got[-1]
    assert dispensed.source == "bianjie.rx" and dispensed.subject == rx_id
    assert set(dispensed.data) == {
        "rx_id",
        "hospital",
        "patient_ref",
        "visit_id",
        "status",
        "valid_end",
        "uses",
        "pharmacy",
    }
    assert "张三" not in json.dumps([e.model_dump() for e in got], ensure_ascii=False)


def test_a_crash_after_commit_is_healed_by_the_relay_function(
    world: World, events: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release commits with its event's outbox row; the process dies before sending it; the schedule's
    relay function publishes it, once, with the id it committed with. A refused step commits no event."""
    from bianjie.runtime.invoke import load_module
    from bianjie.rx import wiring

    from tests.conftest import ROOT

    rx_id = world.valid()
    assert [e.type for e in events()] == ["rx.uploaded"]
    box = wiring.outbox()
    monkeypatch.setattr(box, "dispatch", lambda intents: 0)  # the process dies right after the commit
    world.ok("hospital-a", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"})
    again = world.call("hospital-a", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "in_hospital"})
    assert again.status_code >= 400  # refused: nothing committed, nothing to announce
    monkeypatch.undo()
    assert events() == [] and [r["event_id"] for r in box.pending()] == [f"{rx_id}-4"]
    relay = load_module(ROOT / "functions" / "rx" / "app.py").relay_outbox
    assert relay({}, None)["sent"] == 0  # still inside the grace period it committed with
    monkeypatch.setattr(box, "_clock", lambda: time.time() + 31)
    assert relay({}, None) == {"due": 1, "sent": 1, "failed": 0}
    [released] = events()
    assert (released.type, released.id, released.data["status"]) == ("rx.released", f"{rx_id}-4", "released")
    assert relay({}, None)["due"] == 0


def test_reusable_prescription_comes_back_after_the_interval(world: World) -> None:
    rx_id = world.valid(
        long_term=True,
        reusable=True,
        max_uses=2,
        min_interval_days=7,
        valid_days=28,
        drugs=[{"med_code": "XA10BAE024A001010100001", "quantity": 3, "dose": 1, "frequency": "bid", "days": 28}],
    )
    path = f"/rx/prescriptions/{rx_id}/confirmation"
    first = world.ok("hospital-a", "POST", path, {"mode": "in_hospital", **settlement_body(None, "R1")})
    assert first["status"] == "dispensed" and first["next_use_from"]
    too_soon = world.call("hospital-a", "POST", path, {"mode": "in_hospital", **settlement_body(None, "R2")})
    assert code(too_soon) == "RX_ALREADY_DISPENSED"
    shift_clock(7 * 86400 + 10)
    second = world.ok("hospital-a", "POST", path, {"mode": "in_hospital", **settlement_body(None, "R3")})
    assert second["uses"] == 2 and second["next_use_from"] is None
    shift_clock(14 * 86400 + 20)
    third = world.call("hospital-a", "POST", path, {"mode": "in_hospital", **settlement_body(None, "R4")})
    assert code(third) == "RX_ALREADY_DISPENSED"
    history = [h["op"] for h in world.ok("hospital-a", "GET", f"/rx/prescriptions/{rx_id}")["history"]]
    assert history[-3:] == ["dispense", "reopen", "dispense"]


def test_every_step_is_audited(world: World) -> None:
    from bianjie.rx import wiring

    rx_id = world.released()
    auth = world.authorize()["authorization_id"]
    world.review(rx_id, auth)
    world.dispense(rx_id, auth)
    world.ok("hospital-a", "GET", f"/rx/prescriptions/{rx_id}")
    audit = wiring.rx_audit()
    reports = audit.verify_all("rx")
    assert reports and all(r.ok for r in reports)
    records = [
        r for chain in audit.chains("rx") for r in audit.records(chain) if r.resource == f"rx.prescription:{rx_id}"
    ]
    actions = {(r.actor, r.action) for r in records}
    assert {
        ("partner:hospital-a", "rx.precheck"),
        ("staff:hospital-a/D1", "rx.document"),
        ("staff:hospital-a/D1", "rx.sign"),
        ("partner:hospital-a", "rx.upload"),
        ("partner:hospital-a", "rx.release"),
        ("partner:pharmacy-a", "rx.authorize"),
        ("staff:pharmacy-a/Y1", "rx.review"),
        ("partner:pharmacy-a", "rx.dispense"),
        ("partner:hospital-a", "rx.read"),
    } <= actions
    assert all(r.patient_ref and len(r.patient_ref) == 64 for r in records)


def test_fhir_export_validates(world: World) -> None:
    rx_id = world.released()
    auth = world.authorize()["authorization_id"]
    world.review(rx_id, auth)
    world.dispense(rx_id, auth)
    bundle = world.ok("hospital-a", "GET", f"/rx/prescriptions/{rx_id}/fhir")
    parsed = Bundle.model_validate(bundle)  # the published R4B models: cardinalities, types, value sets' shapes
    kinds = [e.resource.get_resource_type() for e in parsed.entry]
    assert kinds == ["MedicationRequest", "MedicationDispense"]
    request = bundle["entry"][0]["resource"]
    assert request["status"] == "completed" and request["intent"] == "order"
    assert request["dispenseRequest"]["validityPeriod"]["end"].endswith("Z")
    dispense = bundle["entry"][1]["resource"]
    assert dispense["authorizingPrescription"][0]["reference"] == bundle["entry"][0]["fullUrl"]
    assert world.call("hospital-b", "GET", f"/rx/prescriptions/{rx_id}/fhir").status_code == 404


def test_fhir_export_of_a_revoked_and_a_rejected_prescription(world: World) -> None:
    revoked = world.valid(hosp_rxno="R-1")
    world.ok("doctor", "POST", f"/rx/prescriptions/{revoked}/revoke", {"reason": "重开"})
    bundle = world.ok("hospital-a", "GET", f"/rx/prescriptions/{revoked}/fhir")
    Bundle.model_validate(bundle)
    assert bundle["entry"][0]["resource"]["status"] == "cancelled"
    rejected = world.released(hosp_rxno="R-2")
    auth = world.authorize()["authorization_id"]
    world.review(rejected, auth, "reject", "配伍禁忌")
    bundle = world.ok("hospital-a", "GET", f"/rx/prescriptions/{rejected}/fhir")
    Bundle.model_validate(bundle)
    statuses = [e["resource"]["status"] for e in bundle["entry"]]
    assert statuses == ["on-hold", "declined"]
