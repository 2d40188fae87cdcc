"""Senders: retries, dead letters with reasons, duplicate queue messages, the platforms' protocols."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from bianjie.guide.adapters.sms import rpc_signature
from bianjie.guide.delivery import ChannelUnavailable, RetryLater

from tests.unit.guide.conftest import Rig, day_of_visit

KEY = "registration_success#V1#booked@202506040930"


class Flaky:
    """A transport that fails the first ``failures`` sends, then passes to the stand-in."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def __call__(self, method: str, url: str, body: bytes | None) -> dict[str, Any]:
        if "subscribe/send" in url and self.failures > 0:
            self.failures -= 1
            raise ChannelUnavailable("WECHAT_UNREACHABLE (timeout)")
        return self.inner(method, url, body)


def test_transient_failure_is_retried_and_the_credit_refunded(rig: Rig) -> None:
    rig.grant("p-1001", "registration_success")
    rig.deliverer.wechat.transport = Flaky(rig.wechat, failures=1)
    rig.post(day_of_visit()[0])
    [(channel, key)] = rig.queue.drain()
    with pytest.raises(RetryLater):
        rig.deliverer.deliver(channel, key)
    record = rig.store.notification(key)
    assert record["status"] == "queued" and record["last_error"] == "WECHAT_UNREACHABLE (timeout)"
    assert rig.service.quota("p-1001")[0].credits == 1
    assert rig.deliverer.deliver(channel, key) == "sent"  # the queue's redelivery
    assert rig.store.notification(key)["attempts"] == 2


def test_dead_lettered_wechat_message_falls_back_to_sms_with_the_reason(rig: Rig) -> None:
    rig.grant("p-1001", "registration_success")
    rig.deliverer.wechat.transport = Flaky(rig.wechat, failures=99)
    rig.post(day_of_visit()[0])
    [(channel, key)] = rig.queue.drain()
    for _ in range(3):  # maxReceiveCount
        with pytest.raises(RetryLater):
            rig.deliverer.deliver(channel, key)
    assert rig.deliverer.dead_letter("wechat", key) == "fallback"
    rig.pump()
    record = rig.store.notification(key)
    assert record["status"] == "sent" and record["channel"] == "sms"
    assert record["reason"] == "WECHAT_RETRIES_EXHAUSTED (WECHAT_UNREACHABLE (timeout))"


def test_dead_lettered_sms_is_marked_dead(rig: Rig) -> None:
    rig.post(day_of_visit(openid=None)[0])
    [(channel, key)] = rig.queue.drain()
    assert channel == "sms"
    rig.deliverer.sms.transport = lambda *a: {"Code": "isp.SYSTEM_ERROR"}
    for _ in range(3):
        with pytest.raises(RetryLater):
            rig.deliverer.deliver(channel, key)
    assert rig.deliverer.dead_letter("sms", key) == "dead"
    record = rig.store.notification(key)
    assert (record["status"], record["reason"]) == ("dead", "SMS_RETRIES_EXHAUSTED (SMS_PROVIDER (isp.SYSTEM_ERROR))")
    assert rig.deliverer.dead_letter("sms", key) == "skipped"


def test_a_queue_message_delivered_twice_sends_once(rig: Rig) -> None:
    rig.grant("p-1001", "registration_success", times=5)
    rig.post(day_of_visit()[0])
    [(channel, key)] = rig.queue.drain()
    assert rig.deliverer.deliver(channel, key) == "sent"
    assert rig.deliverer.deliver(channel, key) == "skipped"
    assert len(rig.outbox("V1")) == 1


def test_a_stale_sending_lease_is_taken_over(rig: Rig) -> None:
    rig.grant("p-1001", "registration_success")
    rig.post(day_of_visit()[0])
    [(channel, key)] = rig.queue.drain()
    record = rig.store.notification(key)
    rig.store.update_notification({**record, "status": "sending", "lease_until": rig.clock.now + 30})
    assert rig.deliverer.deliver(channel, key) == "skipped"  # a live lease: someone is sending
    rig.clock.now += 120
    assert rig.deliverer.deliver(channel, key) == "sent"


def test_expired_access_token_is_renewed_once(rig: Rig) -> None:
    rig.grant("p-1001", "registration_success", times=2)
    rig.post(day_of_visit()[0])
    rig.pump()
    rig.wechat._tokens.clear()  # WeChat invalidated our token (another server fetched a new one)
    rig.post(day_of_visit()[4])
    rig.grant("p-1001", "pending_payment")
    rig.pump()
    assert [m["accepted"] for m in rig.outbox("V1")] == [True, True]


def test_sms_stand_in_checks_the_signature_and_number(rig: Rig) -> None:
    form = {
        "AccessKeyId": "local-standin",
        "PhoneNumbers": "13800138000",
        "SignName": "便捷就医",
        "TemplateCode": "SMS_LOCAL_0004",
        "TemplateParam": json.dumps({"report": "血常规"}),
        "OutId": "a#b#c",
    }
    good = rig.sms("POST", "/", urlencode({**form, "Signature": rpc_signature(form, "local-standin-secret")}).encode())
    bad = rig.sms("POST", "/", urlencode({**form, "Signature": rpc_signature(form, "wrong")}).encode())
    form["PhoneNumbers"] = "12345"
    signed = urlencode({**form, "Signature": rpc_signature(form, "local-standin-secret")}).encode()
    illegal = rig.sms("POST", "/", signed)
    assert (good["Code"], bad["Code"], illegal["Code"]) == ("OK", "SignatureDoesNotMatch", "isv.MOBILE_NUMBER_ILLEGAL")


def test_wechat_stand_in_answers_47003_for_a_field_breaking_its_rule(rig: Rig) -> None:
    client = rig.deliverer.wechat
    tpl = rig.service.templates.wechat
    from bianjie.guide.kinds import Kind

    t = tpl[Kind.SURVEY]
    data = {"thing1": {"value": "超" * 21}, "date2": {"value": "2025年6月4日"}, "thing3": {"value": "邀请"}}
    answer = client.send_subscribe("oWx_patient_1", t.template_id, "/m/survey?visit_id=V1", data)
    assert answer["errcode"] == 47003 and "thing1" in answer["errmsg"]
    assert client.send_subscribe("bad id!", t.template_id, "/m", data)["errcode"] == 40003
    assert client.send_subscribe("oWx_patient_1", "nope", "/m", data)["errcode"] == 40037
