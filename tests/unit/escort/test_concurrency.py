"""Under concurrency the conditional writes hold: one winner of a link, never more than five wrong codes
counted, never more phone codes than the limits allow."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bianjie.escort.model import JoinRequest
from bianjie.kit.errors import AppError

from tests.unit.escort.conftest import PHONE, Rig


def attempt(call: Any) -> str:
    try:
        call()
        return "ok"
    except AppError as exc:
        return exc.code


def test_twenty_parallel_joins_have_exactly_one_winner(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite()
    handle = rig.handle(answer)
    rig.otp(handle)
    body = JoinRequest(handle=handle, phone=PHONE, otp=rig.last_otp(), invitation_code=answer.invitation_code)
    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(lambda _: attempt(lambda: rig.service.join(rig.origin(), body)), range(20)))
    assert outcomes.count("ok") == 1
    assert set(outcomes) - {"ok"} <= {"INVITATION_USED", "OTP_EXPIRED"}
    sessions = [i for i in rig.db.items("escort") if i["pk"].startswith("sess#")]
    assert len(sessions) == 1


def test_concurrent_wrong_codes_never_count_more_than_five(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite()
    handle = rig.handle(answer)
    rig.otp(handle)
    wrong = "ZZZZZZZZ" if answer.invitation_code != "ZZZZZZZZ" else "YYYYYYYY"
    body = JoinRequest(handle=handle, phone=PHONE, otp=rig.last_otp(), invitation_code=wrong)
    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(lambda _: attempt(lambda: rig.service.join(rig.origin(), body)), range(30)))
    inv = next(i for i in rig.db.items("escort") if i["pk"].startswith("inv#"))
    assert inv["failures"] == 5 and inv["status"] == "locked"
    assert outcomes.count("INVITATION_CODE_WRONG") == 4
    assert set(outcomes) == {"INVITATION_CODE_WRONG", "INVITATION_LOCKED"}


def test_concurrent_code_requests_respect_the_resend_window(rig: Rig) -> None:
    rig.visit()
    handle = rig.handle(rig.invite())
    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(lambda _: attempt(lambda: rig.otp(handle)), range(10)))
    assert outcomes.count("ok") == 1 and outcomes.count("OTP_RATE_LIMITED") == 9
    assert sum("验证码为" in text for text in rig.texts()) == 1
