"""Demo data for ``make run``: one patient (p-demo-1) part-way through a hospital visit today, so the
dashboard shows a real next step (pay ¥128.50 at the cashier, with a place and an action link), a
report to read, and the messages the stand-ins "sent".

The visit is built the way a hospital builds it: demo-hospital's HIS posts a signed batch of events to
``POST /guide/events``, handled by GuideEventsFunction itself (an API Gateway event built and signed
here, since the gateway is not listening yet while the stack seeds), and the patient's WeChat
subscribe-popup answers go through ``POST /guide/subscriptions``. Nothing is written to guide's tables
directly. Times are relative to the start of the stack (the appointment was 75 minutes ago), so the
board looks the same whenever the stack starts.

Messages: the report and the payment reminder go out by WeChat once the event pump starts (a second
after the banner). Inside the patient's quiet hours (22:00-08:00 Beijing) the report message (not
urgent) is held until 08:00 (``deferred``); the payment reminder is urgent and goes at once. The
reminder for the exam fee, planned while the HIS's batch was still arriving, is dropped at send time
because the batch also says it was paid (``NO_LONGER_NEEDED (ORDER_PAID)``).

Written to ``.local/guide/`` (mode 0600): ``patient.token`` (a 12-hour patient token, for curl) and
``demo.json`` (patient, visit, token, and a guide-operator token for ``GET /guide/outbox``).
Also sets demo-hospital's pharmacy window (partner setting ``guide.pharmacy``), which places the
"pick up your medicine" to-do when rx reports an in-hospital dispensing.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bianjie.guide.model import CST
from bianjie.guide.prefs import Preferences, quiet_until

HOSPITAL = "demo-hospital"
PATIENT = "p-demo-1"
VISIT = "V-DEMO-TODAY"
PHARMACY_PLACE = {"place_poi": "rj.out.1f.pharmacy", "place_name": "门诊楼1楼西药房"}
# the patient tapped "allow" for these in the WeChat subscribe popup (one message each)
SUBSCRIBED = (
    "local-wx-registration-success",
    "local-wx-pending-payment",
    "local-wx-report-published",
    "local-wx-medicine-pickup",
)


def demo_events(now: datetime, visit_id: str = VISIT, patient_id: str = PATIENT) -> list[dict[str, Any]]:
    """A morning in 心内科 up to "now": booked yesterday, pre-consultation done, checked in, called,
    consulted, exam fee paid, echo done and reported, and the medicine order waiting to be paid."""
    now = now.astimezone(CST).replace(microsecond=0)

    def ago(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).isoformat()

    def ev(n: int, type_: str, minutes: int, **data: Any) -> dict[str, Any]:
        return {
            "event_id": f"{visit_id}-{n}",
            "type": type_,
            "visit_id": visit_id,
            "occurred_at": ago(minutes),
            "data": data,
        }

    booked = ev(
        1,
        "visit.booked",
        26 * 60,
        department="心内科",
        doctor="李医生",
        appointment_at=ago(75),
        place_poi="rj.out.3f.cardio",
        place_name="门诊楼3楼心内科",
        preconsult_required=True,
        contact={"phone": "13800138000", "wechat_openid": "oWx_demo_patient", "name": "张三"},
    )
    booked["patient_id"] = patient_id
    order_exam, order_rx = f"{visit_id}-O1", f"{visit_id}-O2"
    return [
        booked,
        ev(2, "preconsult.completed", 20 * 60),
        ev(3, "visit.checked_in", 95),
        ev(4, "queue.updated", 93, queue_position=3),
        ev(5, "queue.updated", 78, queue_position=0),
        ev(6, "visit.consulted", 62),
        ev(
            7,
            "payment.pending",
            58,
            order_id=order_exam,
            amount_fen=22000,
            place_poi="rj.out.1f.cashier",
            place_name="门诊楼1楼收费处",
        ),
        ev(8, "payment.paid", 52, order_id=order_exam),
        ev(
            9,
            "exam.checked_in",
            45,
            exam_id=f"{visit_id}-E1",
            exam_name="心脏彩超",
            place_poi="rj.med.2f.echo",
            place_name="医技楼2楼超声室",
        ),
        ev(10, "report.ready", 14, report_id=f"{visit_id}-R1", report_name="心脏彩超报告"),
        ev(
            11,
            "payment.pending",
            6,
            order_id=order_rx,
            amount_fen=12850,
            place_poi="rj.out.1f.cashier",
            place_name="门诊楼1楼收费处",
        ),
    ]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)


def _call(
    stack: Any, function_id: str, method: str, path: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """Invokes an HTTP function with the API Gateway event the local gateway would build for this request."""
    from bianjie.runtime.apigw import Route, build_event, response_parts

    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    fn = next(f for f in stack.functions if f.spec.logical_id == function_id)
    event = build_event(
        method=method,
        path=path,
        raw_query="",
        headers={**headers, "Content-Type": "application/json"}.items(),
        body=raw,
        source_ip="127.0.0.1",
        route=Route.compile(method, path, function_id),
        path_params={},
    )
    status, _, answer = response_parts(fn.invoke(event))
    if status != 200:
        raise RuntimeError(f"guide demo: {method} {path} answered {status}: {answer[:300]!r}")
    result: dict[str, Any] = json.loads(answer)
    return result


def seed(stack: Any) -> None:
    from bianjie.kit import deps
    from bianjie.kit.crypto import Sm2PrivateKey
    from bianjie.kit.signing import sign_request
    from bianjie.kit.tokens import MAX_TTL

    deps.partner_registry().set_setting(HOSPITAL, "guide", "pharmacy", PHARMACY_PLACE)
    local = stack.options.local_dir
    from bianjie_dev.cli.tokens import issue_token, via_stack

    issuer = via_stack(stack)
    patient_token = issue_token(issuer, PATIENT, "patient", ttl_seconds=MAX_TTL, requested_by="system:demo")
    operator_token = issue_token(
        issuer, "ops-demo", "staff", ["guide-operator"], ttl_seconds=MAX_TTL, requested_by="system:demo"
    )

    _call(
        stack,
        "GuideSubscriptionsFunction",
        "POST",
        "/guide/subscriptions",
        {"results": {t: "accept" for t in SUBSCRIBED}},
        {"Authorization": f"Bearer {patient_token}"},
    )

    now = datetime.now(CST)
    partner = json.loads((local / "partners" / f"{HOSPITAL}.json").read_text(encoding="utf-8"))
    body = {"events": demo_events(now)}
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    signed = sign_request(
        Sm2PrivateKey.from_pem(partner["private_key_pem"]),
        "POST",
        "/guide/events",
        "",
        raw,
        HOSPITAL,
        str(partner["key_serial"]),
    )
    answer = _call(stack, "GuideEventsFunction", "POST", "/guide/events", body, signed)
    if answer["accepted"] + answer["duplicates"] != len(body["events"]):
        raise RuntimeError(f"guide demo: events refused: {answer['results']}")

    token_path = local / "guide" / "patient.token"
    _write(token_path, patient_token + "\n")
    _write(
        local / "guide" / "demo.json",
        json.dumps(
            {
                "patient_id": PATIENT,
                "visit_id": VISIT,
                "hospital": HOSPITAL,
                "token": patient_token,
                "operator_token": operator_token,
                "token_expires_at": int(time.time()) + MAX_TTL,
            },
            ensure_ascii=False,
            indent=2,
        ),
    )

    stack.demo_urls.append(
        f'curl -s -H "Authorization: Bearer $(cat {token_path})" {stack.gateway_url}/guide/dashboard'
        f"   (管家式指引 demo patient {PATIENT}, visit {VISIT}: next step 待缴费 ¥128.50)"
    )
    held = quiet_until(Preferences(), now)
    if held:
        at = held.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        stack.demo_urls.append(
            f".venv/bin/bianjie stack fire GuideReleaseDeferredFunction --time {at}   (quiet hours now: the guide "
            f"demo's report message waits for {held:%H:%M}; this sends it as of then)"
        )
