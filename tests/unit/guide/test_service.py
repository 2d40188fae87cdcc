"""Ingest, planning and delivery together: dedup, quiet hours, preferences, quota and fallback."""

from __future__ import annotations

import pytest
from bianjie.guide.kinds import Kind
from bianjie.guide.model import State, VisitEvent
from bianjie.guide.prefs import Preferences, QuietHours
from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError

from tests.unit.guide.conftest import Rig, day_of_visit, ev

ALL_WECHAT_KINDS = ("registration_success", "pending_payment", "report_published", "medicine_pickup")


def test_a_day_of_events_sends_exactly_the_expected_messages(rig: Rig) -> None:
    for kind in ALL_WECHAT_KINDS:
        rig.grant("p-1001", kind)
    results = []
    for body in day_of_visit():
        results += rig.post(body)
        rig.pump()
        rig.clock.now += 1  # sends of different events get distinct times
    assert [r.status for r in results] == ["accepted"] * 11
    assert results[-1].state is State.DONE
    assert rig.sent("V1") == [("wechat", k) for k in ALL_WECHAT_KINDS]
    first = rig.outbox("V1")[0]
    assert first["content"]["name1"] == "张三" and first["content"]["thing2"] == "心内科"
    assert first["to"].startswith("oWx_") and "patient_1001" not in first["to"]


def test_duplicated_and_replayed_events_send_nothing_twice(rig: Rig) -> None:
    for kind in ALL_WECHAT_KINDS:
        rig.grant("p-1001", kind, times=3)
    bodies = day_of_visit()
    for body in bodies:
        rig.post(body)
        rig.pump()
    again = rig.post(*bodies)
    assert {r.status for r in again} == {"duplicate"}
    rig.pump()
    assert sorted(rig.sent("V1")) == sorted(("wechat", k) for k in ALL_WECHAT_KINDS)


def test_event_id_reused_for_a_different_event_is_rejected(rig: Rig) -> None:
    rig.post(day_of_visit()[0])
    changed = day_of_visit()[0]
    changed["data"]["department"] = "骨科"
    [result] = rig.post(changed)
    assert (result.status, result.code) == ("rejected", "EVENT_ID_REUSED")


def test_another_partner_cannot_write_into_a_visit(rig: Rig) -> None:
    rig.post(day_of_visit()[0])
    intruder = Actor.partner("other-hospital")
    [result] = rig.post(ev("x", "visit.checked_in", "2025-06-04T09:00:00+08:00"), caller=intruder)
    assert (result.status, result.code) == ("rejected", "VISIT_OF_ANOTHER_PARTNER")


def test_payment_already_paid_when_the_order_arrives_sends_no_payment_reminder(rig: Rig) -> None:
    rig.grant("p-1001", "pending_payment")
    booked, *_rest = day_of_visit()
    pending, paid = day_of_visit()[4], day_of_visit()[5]
    rig.post(booked, paid, pending)  # the HIS delivered the payment first
    rig.pump()
    assert ("wechat", "pending_payment") not in rig.sent("V1")


def test_quiet_hours_defer_non_urgent_kinds_until_morning(rig: Rig) -> None:
    rig.grant("p-1001", "registration_success")
    rig.grant("p-1001", "pending_payment")
    booked = day_of_visit()[0]
    booked["occurred_at"] = "2025-06-03T23:10:00+08:00"
    rig.clock.at("2025-06-03T23:10:00+08:00")
    rig.post(booked)
    # another visit of the same patient asks for payment: urgent, so through quiet hours
    rig.post(ev("p", "payment.pending", "2025-06-03T23:20:00+08:00", "V2", "p-1001", order_id="O9", amount_fen=100))
    rig.pump()
    assert rig.sent("V2") == [("wechat", "pending_payment")]
    assert rig.sent("V1") == []
    record = rig.store.notification("registration_success#V1#booked@202506040930")
    assert record["status"] == "deferred" and record["reason"] == "QUIET_HOURS"
    rig.clock.at("2025-06-04T07:59:00+08:00")
    assert rig.service.release_deferred() == 0
    rig.clock.at("2025-06-04T08:00:30+08:00")
    assert rig.service.release_deferred() == 1
    rig.pump()
    assert rig.sent("V1") == [("wechat", "registration_success")]


def test_a_message_no_longer_needed_at_send_time_is_dropped(rig: Rig) -> None:
    rig.grant("p-1001", "pending_payment")
    rig.grant("p-1001", "medicine_pickup")
    rig.grant("p-1001", "report_published")
    rig.post(*day_of_visit())  # the HIS posts the whole day at once, after the fact
    rig.pump()
    assert rig.sent("V1") == [("wechat", "report_published")]
    reasons = {r["kind"]: r["reason"] for r in rig.store.notifications_of_visit("V1")}
    assert reasons["pending_payment"] == "NO_LONGER_NEEDED (ORDER_PAID)"
    assert reasons["medicine_pickup"] == "NO_LONGER_NEEDED (MEDICINE_COLLECTED)"
    assert reasons["registration_success"] == "NO_LONGER_NEEDED (VISIT_DONE)"


def test_quiet_hours_can_be_turned_off_and_kinds_muted(rig: Rig) -> None:
    rig.service.set_preferences("p-1001", Preferences(quiet_hours=None, muted=[Kind.REPORT_PUBLISHED]))
    rig.grant("p-1001", "registration_success")
    rig.grant("p-1001", "report_published")
    booked = day_of_visit()[0]
    booked["occurred_at"] = "2025-06-03T23:10:00+08:00"
    rig.post(booked)
    rig.pump()
    rig.post(day_of_visit()[7])
    rig.pump()
    assert rig.sent("V1") == [("wechat", "registration_success")]
    report = rig.store.notification("report_published#V1#V1-R1")
    assert (report["status"], report["reason"]) == ("suppressed", "MUTED_BY_PATIENT")


def test_no_wechat_quota_falls_back_to_sms(rig: Rig) -> None:
    rig.post(day_of_visit()[0])  # no subscription granted
    rig.pump()
    assert rig.sent("V1") == [("sms", "registration_success")]
    sms = rig.outbox("V1")[0]
    assert sms["to"] == "138****8000"
    assert sms["content"]["text"].startswith("【便捷就医】您已成功预约心内科，就诊时间2025年6月4日 09:30")
    record = rig.store.notification("registration_success#V1#booked@202506040930")
    assert [h["status"] for h in record["history"]] == ["queued", "queued", "sent"]  # queued again: on SMS
    assert record["history"][1]["reason"] == "WECHAT_QUOTA_EXHAUSTED" and record["fallback_from"] == "wechat"


def test_quota_is_spent_per_send_and_exhaustion_moves_to_sms(rig: Rig) -> None:
    rig.grant("p-1001", "pending_payment")  # one credit
    rig.post(day_of_visit()[0])
    for n in (1, 2):
        rig.post(ev(f"p{n}", "payment.pending", f"2025-06-04T09:4{n}:00+08:00", order_id=f"O{n}", amount_fen=100))
    rig.pump()
    sent = [s for s in rig.sent("V1") if s[1] == "pending_payment"]
    assert sent == [("wechat", "pending_payment"), ("sms", "pending_payment")]
    assert next(q for q in rig.service.quota("p-1001") if q.kind is Kind.PENDING_PAYMENT).credits == 0


def test_refusal_43101_zeroes_the_ledger_and_falls_back(rig: Rig) -> None:
    bodies = day_of_visit(openid="refuse_wx_patient")
    rig.grant("p-1001", "registration_success", times=2)
    rig.post(bodies[0])
    rig.pump()
    channels = [(m["channel"], m["accepted"], m["result"].get("errcode")) for m in rig.outbox("V1")]
    assert channels == [("wechat", False, 43101), ("sms", True, None)]
    assert next(q for q in rig.service.quota("p-1001") if q.kind is Kind.REGISTRATION_SUCCESS).credits == 0


def test_survey_never_goes_to_sms(rig: Rig) -> None:
    bodies = day_of_visit(openid=None)
    rig.post(*bodies)
    rig.clock.at("2025-06-04T19:00:00+08:00")
    assert rig.service.run_schedule("survey") == {"visits": 1, "planned": 1}
    rig.pump()
    record = rig.store.notification("survey#V1#survey")
    assert (record["status"], record["reason"]) == ("suppressed", "NO_CHANNEL")


def test_sms_rate_limit_per_number(rig: Rig) -> None:
    rig.post(day_of_visit()[0])
    rig.pump()
    for n in range(6):
        rig.post(ev(f"p{n}", "payment.pending", f"2025-06-03T10:1{n}:00+08:00", order_id=f"O{n}", amount_fen=100))
    rig.pump()
    pay = [r for r in rig.store.notifications_of_visit("V1") if r["kind"] == "pending_payment"]
    statuses = sorted(r["status"] for r in pay)
    # registration success took one of the hour's five SMS
    assert statuses.count("sent") == 4 and statuses.count("suppressed") == 2
    assert {r["reason"] for r in pay if r["status"] == "suppressed"} == {"SMS_RATE_LIMITED (per hour)"}


def test_no_contact_at_all_is_recorded_as_suppressed(rig: Rig) -> None:
    rig.post(day_of_visit(openid=None, phone=None)[0])
    assert rig.queue.sent == []
    [record] = rig.store.notifications_of_visit("V1")
    assert (record["status"], record["reason"]) == ("suppressed", "NO_CHANNEL")


def test_contact_is_stored_encrypted(rig: Rig) -> None:
    rig.post(day_of_visit()[0])
    item = rig.store.patient_item("p-1001", "contact")
    assert "13800138000" not in str(item) and "张三" not in str(item) and item["has_phone"]
    assert "contact" not in str(rig.store.events("V1"))


def test_schedules_remind_the_day_before_and_two_hours_before(rig: Rig) -> None:
    body = day_of_visit()[0]
    body["data"]["preconsult_required"] = True
    rig.post(body)
    rig.clock.at("2025-06-03T18:00:00+08:00")
    assert rig.service.run_schedule("day_before")["planned"] == 1
    assert rig.service.run_schedule("day_before")["planned"] == 0  # dedup
    assert rig.service.run_schedule("preconsult")["planned"] == 1
    rig.clock.at("2025-06-04T07:40:00+08:00")
    assert rig.service.run_schedule("soon")["planned"] == 1
    assert rig.service.run_schedule("soon")["planned"] == 0
    rig.pump()
    kinds = [r["kind"] + "#" + r["step"] for r in rig.store.notifications_of_visit("V1")]
    assert sorted(kinds) == [
        "preconsult_reminder#pre",
        "registration_success#booked@202506040930",
        "visit_reminder#d-1",
        "visit_reminder#h-2",
    ]


def test_checked_in_visit_gets_no_two_hour_reminder(rig: Rig) -> None:
    rig.post(*day_of_visit()[:2])
    rig.clock.at("2025-06-04T09:15:00+08:00")
    assert rig.service.run_schedule("soon")["planned"] == 0


def test_dashboard_lists_cards_and_board_is_private(rig: Rig) -> None:
    rig.post(*day_of_visit()[:5])
    dash = rig.service.dashboard("p-1001")
    assert [c.card_id for c in dash.cards] == ["pay:V1-O1"]
    assert dash.visits[0].state is State.PAYMENT_PENDING and dash.visits[0].next_todo.action == "pay"
    board = rig.service.board("p-1001", "V1")
    assert board.next_todo.place_poi == "rj.out.1f.cashier"
    with pytest.raises(AppError) as exc:
        rig.service.board("p-2002", "V1")
    assert exc.value.code == "VISIT_NOT_FOUND"


def test_unknown_subscription_template_is_refused(rig: Rig) -> None:
    with pytest.raises(AppError) as exc:
        rig.service.record_subscriptions("p-1001", {"nope": "accept"})
    assert exc.value.code == "TEMPLATE_UNKNOWN"


def test_ban_blocks_the_template(rig: Rig) -> None:
    tpl = rig.service.templates.wechat[Kind.REGISTRATION_SUCCESS].template_id
    rig.service.record_subscriptions("p-1001", {tpl: "accept"})
    [ledger] = rig.service.record_subscriptions("p-1001", {tpl: "ban"})
    assert ledger.banned and ledger.credits == 0
    rig.post(day_of_visit()[0])
    rig.pump()
    record = rig.store.notification("registration_success#V1#booked@202506040930")
    assert record["history"][-2]["reason"] == "WECHAT_BANNED" and record["channel"] == "sms"


def test_prefs_round_trip(rig: Rig) -> None:
    prefs = Preferences(sms=False, quiet_hours=QuietHours(start="21:30", end="07:00"))
    rig.service.set_preferences("p-1", prefs)
    assert rig.service.preferences("p-1") == prefs


def test_a_replan_after_a_crash_before_marking_planned_queues_once(rig: Rig) -> None:
    rig.grant("p-1001", "registration_success")
    body = day_of_visit()[0]
    event = VisitEvent.model_validate(body)
    original = rig.store.mark_planned
    rig.store.mark_planned = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash"))  # type: ignore
    with pytest.raises(RuntimeError):
        rig.service.ingest(Actor.partner("demo-hospital"), [event])
    rig.store.mark_planned = original  # type: ignore[method-assign]
    [result] = rig.post(body)
    assert result.status == "accepted"
    rig.pump()
    assert rig.sent("V1") == [("wechat", "registration_success")]
