"""Across services on the real local stack (``make run``'s code path): a hospital visit in guide, its
e-prescription through rx's HTTP API with the same visit id, and the patient's "pick up your medicine"
message, which travels rx -> outbox -> DomainEventsTopic (SNS) -> GuideDomainEventsQueue (SQS) -> guide
-> the WeChat/SMS stand-ins, and arrives exactly once, also when SNS delivers the event twice. The bill
paid through pay and the report ingested by film reach the same visit through their contracts
(``pay.charge.succeeded``, ``film.report_published``); a malformed event lands in guide's DLQ at once
with its reason.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bianjie.guide.model import CST
from bianjie.kit.signing import sign_request
from bianjie_dev.runtime.child import StackProcess
from bianjie_dev.rx.client import Demo, RxHttp, demo_prescription, settlement

# what the guide demo (bianjie_dev.guide.demo) sets as demo-hospital's pharmacy window
PHARMACY = ("rj.out.1f.pharmacy", "门诊楼1楼西药房")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(
        tmp_path_factory.mktemp("cross-stack"), env={"BIANJIE_RETRY_DELAY": "1"}, seed=["guide", "rx", "film", "pay"]
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def demo(stack: StackProcess) -> Demo:
    return Demo.load(stack.state_dir)


@pytest.fixture(scope="module")
def http(stack: StackProcess) -> RxHttp:
    return RxHttp(stack.url)


@pytest.fixture(scope="module")
def ops(stack: StackProcess) -> str:
    return json.loads((stack.state_dir / "guide" / "demo.json").read_text())["operator_token"]


@pytest.fixture(scope="module")
def tap(stack: StackProcess) -> str:
    """A queue of our own on the domain-events topic: what rx really published, to check and replay."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="cross-service-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=stack.ref("DomainEventsTopic"), Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    return url


def tapped(
    stack: StackProcess, tap: str, event_type: str, rx_id: str, timeout: float = 20, key: str = "rx_id"
) -> dict[str, Any]:
    """The first envelope of ``event_type`` whose ``data[key]`` is ``rx_id``, read through its contract."""
    from bianjie.contracts import REGISTRY
    from bianjie.kit.events import read

    sqs = stack.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            envelope = json.loads(m["Body"])
            sqs.delete_message(QueueUrl=tap, ReceiptHandle=m["ReceiptHandle"])
            if envelope["type"] == event_type and envelope["data"][key] == rx_id:
                read(m["Body"], REGISTRY)  # what producers publish holds to their contracts
                return envelope
    raise AssertionError(f"no {event_type} for {rx_id}")


def republish(stack: StackProcess, envelope: dict[str, Any]) -> None:
    """SNS delivers at least once: the same envelope again, as a redelivery would bring it."""
    stack.client("sns").publish(
        TopicArn=stack.ref("DomainEventsTopic"),
        Message=json.dumps(envelope, ensure_ascii=False),
        MessageAttributes={
            "type": {"DataType": "String", "StringValue": envelope["type"]},
            "source": {"DataType": "String", "StringValue": envelope["source"]},
        },
    )


def guide_call(
    http: RxHttp, demo: Demo, method: str, path: str, body: Any = None, token: str | None = None, query: str = ""
) -> Any:
    answer = http.send(method, path, body, partner=None if token else demo.hospital, token=token, query=query)
    assert answer.status == 200, (path, answer.body)
    return answer.body


def patient_token(stack: StackProcess, patient: str) -> str:
    result = stack.cli("guide", "token", patient)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def open_visit(http: RxHttp, demo: Demo, visit_id: str, patient: str, now: datetime) -> None:
    """The hospital HIS: booked yesterday, checked in and seen by the doctor this morning."""

    def ev(n: int, type_: str, minutes_ago: int, **data: Any) -> dict[str, Any]:
        return {
            "event_id": f"{visit_id}-{n}",
            "type": type_,
            "visit_id": visit_id,
            "occurred_at": (now - timedelta(minutes=minutes_ago)).isoformat(),
            "data": data,
        }

    booked = ev(
        1,
        "visit.booked",
        24 * 60,
        department="内分泌科",
        doctor="王医生",
        appointment_at=(now - timedelta(minutes=60)).isoformat(),
        place_poi="rj.out.2f.endo",
        place_name="门诊楼2楼内分泌科",
        contact={"phone": "13800138000", "wechat_openid": "oWx_xs_patient"},
    )
    booked["patient_id"] = patient
    events = [booked, ev(2, "visit.checked_in", 70), ev(3, "visit.consulted", 40)]
    body = guide_call(http, demo, "POST", "/guide/events", {"events": events})
    assert body["accepted"] == 3 and body["results"][-1]["state"] == "consulted", body


def issue_rx(http: RxHttp, demo: Demo, hosp_rxno: str, visit_id: str, now: datetime) -> str:
    """Doctor and HIS through rx: pre-check, the doctor's signature, upload -> valid."""
    body = demo_prescription(
        demo,
        hosp_rxno,
        (now - timedelta(minutes=30)).isoformat(),
        visit={"visit_id": visit_id, "visit_time": (now - timedelta(minutes=60)).isoformat(), "biz_type": "01"},
    )
    pre = http.send("POST", "/rx/precheck", body, partner=demo.hospital)
    assert pre.status == 200, pre.body
    assert http.sign(pre.body["rx_id"], demo.doctor["token"], demo.doctor_key).status == 200
    up = http.send(
        "POST",
        "/rx/prescriptions",
        {"trace_code": pre.body["trace_code"], "hi_rxno": pre.body["hi_rxno"]},
        partner=demo.hospital,
    )
    assert up.status == 200 and up.body["status"] == "valid", up.body
    return str(pre.body["rx_id"])


def outbox(http: RxHttp, demo: Demo, ops: str, visit_id: str, want: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = guide_call(http, demo, "GET", "/guide/outbox", token=ops, query=f"visit_id={visit_id}")
        if len(body["messages"]) >= want or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def settle_down(stack: StackProcess, seconds: float = 3) -> None:
    """Long enough for a duplicate to travel topic -> queue -> guide -> channel queue -> stand-in."""
    time.sleep(seconds)


def test_dispensed_in_hospital_tells_the_patient_once_where_to_pick_up(
    stack: StackProcess, demo: Demo, http: RxHttp, ops: str, tap: str
) -> None:
    now = datetime.now(CST)
    visit, patient = "XS-V1", "p-xs-1"
    token = patient_token(stack, patient)
    # the patient allowed the pickup message in the WeChat subscribe popup
    guide_call(
        http, demo, "POST", "/guide/subscriptions", {"results": {"local-wx-medicine-pickup": "accept"}}, token=token
    )
    open_visit(http, demo, visit, patient, now)

    rx_id = issue_rx(http, demo, "XS-1", visit, now)
    confirm = {"mode": "in_hospital", **settlement("XS-SETL-1", (now - timedelta(minutes=5)).isoformat())}
    answer = http.send("POST", f"/rx/prescriptions/{rx_id}/confirmation", confirm, partner=demo.hospital)
    assert answer.status == 200 and answer.body["status"] == "dispensed", answer.body
    envelope = tapped(stack, tap, "rx.dispensed", rx_id)
    assert envelope["source"] == "bianjie.rx" and envelope["data"]["visit_id"] == visit
    assert "pharmacy" not in envelope["data"]  # bought in the hospital

    sent = outbox(http, demo, ops, visit, 1)
    [message] = sent["messages"]
    assert (message["channel"], message["kind"], message["accepted"]) == ("wechat", "medicine_pickup", True)
    assert message["content"]["thing1"] == PHARMACY[1] and message["content"]["character_string2"] == rx_id
    [note] = sent["notifications"]
    assert (note["kind"], note["step"], note["status"]) == ("medicine_pickup", rx_id, "sent")

    board = guide_call(http, demo, "GET", f"/guide/visits/{visit}", token=token)
    assert board["state"] == "medicine_ready"
    todo = board["next_todo"]
    assert (todo["action"], todo["place_poi"], todo["title"]) == ("medicine", PHARMACY[0], f"到{PHARMACY[1]}取药")
    assert todo["action_link"] == f"/m/prescriptions?visit_id={visit}&rx_id={rx_id}"

    # the HIS retries the confirmation (same settlement): rx answers as before and publishes nothing new;
    # SNS redelivers rx's event: guide recognises it by its id
    again = http.send("POST", f"/rx/prescriptions/{rx_id}/confirmation", confirm, partner=demo.hospital)
    assert again.status == 200 and again.body["status"] == "dispensed"
    republish(stack, envelope)
    settle_down(stack)
    assert len(outbox(http, demo, ops, visit, 99, timeout=0)["messages"]) == 1
    assert len(guide_call(http, demo, "GET", f"/guide/visits/{visit}", token=token)["history"]) == 4
    pumped = {label: s for label, s in stack.status()["pump"].items() if label.endswith("GuideDomainEventsFunction")}
    assert pumped and sum(s["invocations"] for s in pumped.values()) >= 2
    assert sum(s["failures"] for s in pumped.values()) == 0


def test_released_to_a_pharmacy_then_bought_there(
    stack: StackProcess, demo: Demo, http: RxHttp, ops: str, tap: str
) -> None:
    now = datetime.now(CST)
    visit, patient = "XS-V2", "p-xs-2"
    token = patient_token(stack, patient)
    open_visit(http, demo, visit, patient, now)  # no popup answers: WeChat has no credit, SMS it is

    rx_id = issue_rx(http, demo, "XS-2", visit, now)
    released = http.send("POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"}, partner=demo.hospital)
    assert released.status == 200 and released.body["status"] == "released"
    assert tapped(stack, tap, "rx.released", rx_id)["data"]["visit_id"] == visit

    sent = outbox(http, demo, ops, visit, 1)
    [message] = sent["messages"]
    assert (message["channel"], message["kind"], message["accepted"]) == ("sms", "medicine_pickup", True)
    assert "定点药店" in message["content"]["text"] and rx_id in message["content"]["text"]
    assert sent["notifications"][0]["reason"] == "WECHAT_QUOTA_EXHAUSTED"
    todo = guide_call(http, demo, "GET", f"/guide/visits/{visit}", token=token)["next_todo"]
    assert (todo["action"], todo["title"], todo["place_poi"]) == ("medicine", "到定点药店购药", None)

    # at the pharmacy: the patient's e-credential, the pharmacist's review, the sale
    ec = stack.cli("rx", "e-credential")
    assert ec.returncode == 0, ec.stderr
    auth = http.send("POST", "/rx/authorizations", {"ec_token": ec.stdout.strip()}, partner=demo.pharmacy)
    assert auth.status == 200 and rx_id in [p["rx_id"] for p in auth.body["prescriptions"]], auth.body
    auth_id = auth.body["authorization_id"]
    review = http.send(
        "POST",
        f"/rx/prescriptions/{rx_id}/review",
        {"authorization_id": auth_id, "result": "pass"},
        token=demo.pharmacist["token"],
    )
    assert review.status == 200, review.body
    sold = http.send(
        "POST",
        f"/rx/prescriptions/{rx_id}/dispense",
        {"authorization_id": auth_id, **settlement("XS-SETL-2", now.isoformat())},
        partner=demo.pharmacy,
    )
    assert sold.status == 200 and sold.body["status"] == "dispensed", sold.body
    assert tapped(stack, tap, "rx.dispensed", rx_id)["data"]["pharmacy"] == "demo-pharmacy"

    # the patient has the medicine: the to-do goes away, and no second message is sent
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        board = guide_call(http, demo, "GET", f"/guide/visits/{visit}", token=token)
        if board["next_todo"]["action"] != "medicine":
            break
        time.sleep(0.3)
    assert [c["action"] for c in board["todos"]] == [], board["todos"]
    settle_down(stack)
    assert len(outbox(http, demo, ops, visit, 99, timeout=0)["messages"]) == 1


def test_demo_visit_is_seeded(stack: StackProcess, demo: Demo, http: RxHttp) -> None:
    """``make run`` seeds guide's demo patient part-way through a visit (bianjie_dev.guide.demo)."""
    token_file = stack.state_dir / "guide" / "patient.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    dash = guide_call(http, demo, "GET", "/guide/dashboard", token=token_file.read_text().strip())
    [visit] = dash["visits"]
    assert (visit["visit_id"], visit["state"]) == ("V-DEMO-TODAY", "payment_pending")
    todo = visit["next_todo"]
    assert (todo["action"], todo["title"], todo["place_poi"]) == ("pay", "待缴费 ¥128.50", "rj.out.1f.cashier")
    assert todo["action_link"] == "/m/pay?visit_id=V-DEMO-TODAY&order_id=V-DEMO-TODAY-O2"
    assert [c["action"] for c in dash["cards"]] == ["pay", "report"]


def hospital_post(stack: StackProcess, demo: Demo, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    signed = sign_request(demo.hospital.key, "POST", path, "", raw, demo.hospital.app_id, demo.hospital.serial)
    request = urllib.request.Request(
        stack.url + path, data=raw, method="POST", headers={"Content-Type": "application/json", **signed, **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def history_states(http: RxHttp, demo: Demo, token: str, visit: str, want: str, timeout: float = 30) -> list[str]:
    """The states of the visit's history, once ``want`` is among them (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        board = guide_call(http, demo, "GET", f"/guide/visits/{visit}", token=token)
        states = [h["state"] for h in board["history"]]
        if want in states or time.monotonic() > deadline:
            return states
        time.sleep(0.3)


def test_the_bill_paid_through_pay_reaches_the_visit(stack: StackProcess, demo: Demo, http: RxHttp, tap: str) -> None:
    now = datetime.now(CST)
    visit, patient = "XS-V3", "p-xs-3"
    token = patient_token(stack, patient)
    open_visit(http, demo, visit, patient, now)
    pay_token = stack.cli("pay", "token", patient).stdout.strip().splitlines()[-1]
    signed = http.send(
        "POST", "/pay/agreements", {"channel": "UNIONPAY", "account": "6222000000001234"}, token=pay_token
    )
    assert signed.status == 201, signed.body
    bill = {"order_no": "XS-HIS-3", "patient_id": patient, "amount": 12850, "visit_id": visit}
    status, charge = hospital_post(stack, demo, "/pay/charges", bill, **{"Idempotency-Key": "xs-3"})
    assert status == 201 and charge["status"] == "SUCCEEDED", charge

    envelope = tapped(stack, tap, "pay.charge.succeeded", "XS-HIS-3", key="order_no")
    assert envelope["source"] == "bianjie.pay" and envelope["dataversion"] == 1
    assert (envelope["data"]["visit_id"], envelope["data"]["amount_fen"]) == (visit, 12850)
    assert "patient_id" not in envelope["data"]
    assert "paid" in history_states(http, demo, token, visit, "paid")
    board = guide_call(http, demo, "GET", f"/guide/visits/{visit}", token=token)
    assert board["state"] == "paid", board


def test_a_bill_every_agreement_declined_is_to_pay_again_on_the_visit(
    stack: StackProcess, demo: Demo, http: RxHttp, tap: str
) -> None:
    """pay.charge.failed (the stand-in declines the only card: INSUFFICIENT_FUNDS) reaches guide as the
    bill being due again: the visit shows the payment step and its to-do."""
    now = datetime.now(CST)
    visit, patient = "XS-V5", "p-xs-5"
    token = patient_token(stack, patient)
    open_visit(http, demo, visit, patient, now)
    pay_token = stack.cli("pay", "token", patient).stdout.strip().splitlines()[-1]
    signed = http.send(
        "POST", "/pay/agreements", {"channel": "UNIONPAY", "account": "6222000000000051"}, token=pay_token
    )
    assert signed.status == 201, signed.body
    bill = {"order_no": "XS-HIS-5", "patient_id": patient, "amount": 6600, "visit_id": visit}
    status, charge = hospital_post(stack, demo, "/pay/charges", bill, **{"Idempotency-Key": "xs-5"})
    assert status == 201 and charge["status"] == "FAILED", charge

    envelope = tapped(stack, tap, "pay.charge.failed", "XS-HIS-5", key="order_no")
    assert (envelope["data"]["visit_id"], envelope["data"]["amount_fen"]) == (visit, 6600)
    assert "payment_pending" in history_states(http, demo, token, visit, "payment_pending")
    board = guide_call(http, demo, "GET", f"/guide/visits/{visit}", token=token)
    assert board["state"] == "payment_pending", board


def test_a_report_ingested_by_film_reaches_the_visit(
    stack: StackProcess, demo: Demo, http: RxHttp, tap: str, tmp_path: Path
) -> None:
    """The hospital's DICOM carries its visit id in AccessionNumber (partner setting
    ``film.report_visit_id_from``); film publishes the report's event with it; guide shows the report."""
    from bianjie.kit.documents.dynamodb import DynamoDocumentStore
    from bianjie.kit.partners import PartnerRegistry

    registry = PartnerRegistry(DynamoDocumentStore(stack.client("dynamodb")), stack.ref("PartnersTable"))
    registry.set_setting("demo-hospital", "film", "report_visit_id_from", "accession_number")
    time.sleep(5.5)  # the functions' partner cache (5 s) sees the new setting
    now = datetime.now(CST)
    visit, patient = "ACC0001", "p-xs-4"  # film's test data uses accession ACC0001
    token = patient_token(stack, patient)
    open_visit(http, demo, visit, patient, now)
    made = stack.cli("film", "testdata", str(tmp_path), "--ct", "1", "--mr", "1", "--us", "1", "--report", "pdf")
    assert made.returncode == 0, made.stderr
    study_uid = json.loads(made.stdout)["study_uid"]
    sent = stack.cli("film", "ingest", str(tmp_path), "--hospital", "demo-hospital")
    assert sent.returncode == 0, sent.stderr

    envelope = tapped(stack, tap, "film.report_published", study_uid, timeout=90, key="study_uid")
    assert (envelope["source"], envelope["data"]["visit_id"]) == ("bianjie.film", visit)
    assert "report_ready" in history_states(http, demo, token, visit, "report_ready", timeout=60)
    board = guide_call(http, demo, "GET", f"/guide/visits/{visit}", token=token)
    assert "report" in {c["action"] for c in board["todos"]}, board["todos"]


def test_a_malformed_event_lands_in_guides_dlq_at_once_with_its_reason(stack: StackProcess) -> None:
    """A producer bug (rx.dispensed without its visit id) is not retried five times: guide dead-letters
    it on first receipt, with the contract's complaint as the reason, and acknowledges it."""
    from tests import events as canned

    broken = canned.envelope("rx.dispensed", id="xs-broken-1", visit_id=None)
    stack.client("sns").publish(
        TopicArn=stack.ref("DomainEventsTopic"),
        Message=json.dumps(broken, ensure_ascii=False),
        MessageAttributes={
            "type": {"DataType": "String", "StringValue": "rx.dispensed"},
            "source": {"DataType": "String", "StringValue": "bianjie.rx"},
        },
    )
    sqs, dlq = stack.client("sqs"), stack.ref("GuideDomainEventsDLQ")
    deadline, found = time.monotonic() + 30, None
    while found is None and time.monotonic() < deadline:
        for m in sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", []):
            if json.loads(m["Body"])["id"] == "xs-broken-1":
                found = m
    assert found is not None, "the malformed event did not reach GuideDomainEventsDLQ"
    attributes = found["MessageAttributes"]
    assert attributes["reason"]["StringValue"] == "EVENT_INVALID"
    assert "visit_id" in attributes["message"]["StringValue"]
    pumped = {label: s for label, s in stack.status()["pump"].items() if label.endswith("GuideDomainEventsFunction")}
    assert sum(s["failures"] for s in pumped.values()) == 0  # acknowledged, never retried
