"""Invite, join with two factors, the room, revocation and the end of a grant, on in-memory stores."""

from __future__ import annotations

import base64
import json

import pytest
from bianjie.escort.model import HandleRequest, InviteRequest
from bianjie.kit.errors import AppError

from tests.unit.escort.conftest import PATIENT, PHONE, STRANGER, Rig


def code_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(AppError) as caught:
        call()
    return caught.value.code


def test_invite_refuses_unknown_foreign_and_closed_visits(rig: Rig) -> None:
    body = InviteRequest(visit_id="V404", companion_name="李小明", companion_phone=PHONE, relation="child")
    assert code_of(lambda: rig.service.invite(PATIENT, body, "https://h")) == "VISIT_NOT_FOUND"
    rig.visit("V1")
    mine = body.model_copy(update={"visit_id": "V1"})
    assert code_of(lambda: rig.service.invite(STRANGER, mine, "https://h")) == "VISIT_NOT_YOURS"
    rig.visit("V1", seq=2, state="done", state_label="就诊完成", is_open=False)
    assert code_of(lambda: rig.service.invite(PATIENT, mine, "https://h")) == "VISIT_CLOSED"


def test_invite_gives_link_code_and_qr_codes_and_sends_the_sms(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite(reports=True)
    assert answer.link.startswith("https://h.example/pages/escort-join#h=")
    assert len(rig.handle(answer)) == 22  # 128 bits, base64url
    assert len(answer.invitation_code) == 8
    assert answer.qr_svg.startswith("<svg") and "陪诊邀请二维码" in answer.qr_svg
    assert base64.b64decode(answer.qr_png_base64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert answer.sms_sent
    assert answer.invitation.companion_name == "李*明" and answer.invitation.companion_phone == "138****5678"
    assert any(answer.link in text for text in rig.texts())


def test_secrets_and_the_phone_are_never_stored_in_clear(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite()
    rig.otp(rig.handle(answer))
    otp = rig.last_otp()
    rows = json.dumps([i for i in rig.db.items("escort") if not i["pk"].startswith("standin-sms#")], ensure_ascii=False)
    for secret in (rig.handle(answer), answer.invitation_code, PHONE, "李小明", otp):
        assert secret not in rows
    audit = json.dumps(rig.db.items("audit"), ensure_ascii=False)
    for secret in (rig.handle(answer), answer.invitation_code, PHONE, "李小明", otp):
        assert secret not in audit


def test_at_most_three_open_invitations_per_visit(rig: Rig) -> None:
    rig.visit()
    for n in range(3):
        rig.invite(phone=f"1381234000{n}")
    assert code_of(lambda: rig.invite(phone="13812340009")) == "TOO_MANY_COMPANIONS"


def test_join_with_both_factors_opens_the_room(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite()
    handle = rig.handle(answer)
    preview = rig.service.preview(rig.origin(), HandleRequest(handle=handle))
    assert preview.companion_name == "李*明" and preview.department == "心内科"
    assert rig.otp(handle).status == 202
    joined = rig.join(handle, answer.invitation_code.lower())  # case does not matter
    assert joined.status == 201 and joined.value.expires_in == 900
    room = rig.service.room(rig.origin(), joined.value.session)
    assert room.department == "心内科" and room.state_label == "已签到"
    listed = rig.service.companions(PATIENT, "V1").invitations[0]
    assert listed.status == "active" and listed.in_room
    assert "escort.room.view" in rig.audit_actions() and "escort.join" in rig.audit_actions()


def test_the_link_is_single_use(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite()
    handle = rig.handle(answer)
    rig.otp(handle)
    otp = rig.last_otp()
    rig.join(handle, answer.invitation_code, otp)
    assert code_of(lambda: rig.join(handle, answer.invitation_code, otp)) == "INVITATION_USED"
    assert code_of(lambda: rig.service.preview(rig.origin(), HandleRequest(handle=handle))) == "INVITATION_USED"


def test_an_uninvited_number_gets_the_same_answers(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite()
    handle = rig.handle(answer)
    sent_before = len(rig.texts())
    invited = rig.otp(handle, PHONE)
    stranger = rig.otp(handle, "13900000000")
    assert invited.value == stranger.value and invited.status == stranger.status
    assert len(rig.texts()) == sent_before + 1  # only the invited number got a code
    wrong_invited = code_of(lambda: rig.join(handle, answer.invitation_code, "000000", PHONE))
    wrong_stranger = code_of(lambda: rig.join(handle, answer.invitation_code, "000000", "13900000000"))
    assert wrong_invited == wrong_stranger == "OTP_WRONG"


def test_three_tries_per_phone_code(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite()
    handle = rig.handle(answer)
    rig.otp(handle)
    good = rig.last_otp()
    wrong = "000000" if good != "000000" else "111111"
    errors = []
    for _ in range(3):
        with pytest.raises(AppError) as caught:
            rig.join(handle, answer.invitation_code, wrong)
        errors.append((caught.value.code, (caught.value.details or {}).get("tries_left")))
    assert errors == [("OTP_WRONG", 2), ("OTP_WRONG", 1), ("OTP_TRIES_EXHAUSTED", 0)]
    assert code_of(lambda: rig.join(handle, answer.invitation_code, good)) == "OTP_TRIES_EXHAUSTED"


def test_phone_code_expires_after_five_minutes(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite()
    handle = rig.handle(answer)
    rig.otp(handle)
    rig.clock.now += 301
    assert code_of(lambda: rig.join(handle, answer.invitation_code)) == "OTP_EXPIRED"


def test_resend_waits_sixty_seconds_and_five_per_hour_ten_per_day(rig: Rig) -> None:
    rig.visit()
    handle = rig.handle(rig.invite())
    rig.otp(handle)
    with pytest.raises(AppError) as caught:
        rig.otp(handle)
    assert caught.value.code == "OTP_RATE_LIMITED" and caught.value.status == 429
    assert 0 < caught.value.details["retry_after_s"] <= 60 and "Retry-After" in caught.value.headers
    for _ in range(4):
        rig.clock.now += 61
        rig.otp(handle)
    rig.clock.now += 61
    assert code_of(lambda: rig.otp(handle)) == "OTP_RATE_LIMITED"  # the sixth in one hour
    sent = 5
    while sent < 10:
        rig.clock.now += 3600
        for _ in range(min(5, 10 - sent)):
            rig.clock.now += 61
            rig.otp(handle)
            sent += 1
    rig.clock.now += 3600
    assert code_of(lambda: rig.otp(handle)) == "OTP_RATE_LIMITED"  # the eleventh in one day


def test_per_address_limit_across_numbers(rig: Rig) -> None:
    rig.visit()
    handle = rig.handle(rig.invite())
    for n in range(20):
        rig.otp(handle, f"139000000{n:02d}", ip="10.9.9.9")
    assert code_of(lambda: rig.otp(handle, "13900000099", ip="10.9.9.9")) == "OTP_RATE_LIMITED"
    rig.otp(handle, "13900000099", ip="10.9.9.8")  # another address is not held back


def test_five_wrong_invitation_codes_lock_and_tell_the_patient(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite()
    handle = rig.handle(answer)
    rig.otp(handle)
    wrong = "ZZZZZZZZ" if answer.invitation_code != "ZZZZZZZZ" else "YYYYYYYY"
    codes = []
    for _ in range(5):
        with pytest.raises(AppError) as caught:
            rig.join(handle, wrong)
        codes.append((caught.value.code, (caught.value.details or {}).get("tries_left")))
    assert codes == [("INVITATION_CODE_WRONG", n) for n in (4, 3, 2, 1)] + [("INVITATION_LOCKED", None)]
    assert code_of(lambda: rig.join(handle, answer.invitation_code)) == "INVITATION_LOCKED"
    listed = rig.service.companions(PATIENT, "V1").invitations[0]
    assert listed.status == "locked" and listed.failures == 5 and listed.status_label == "已锁定"
    assert "escort.invitation.locked" in rig.audit_actions()


def test_revocation_takes_effect_on_the_next_request(rig: Rig) -> None:
    rig.visit()
    answer, session = rig.joined()
    rig.service.room(rig.origin(), session)
    revoked = rig.service.revoke(PATIENT, answer.invitation.invitation_id)
    assert revoked.invitation.status == "revoked"
    assert code_of(lambda: rig.service.room(rig.origin(), session)) == "GRANT_REVOKED"
    assert code_of(lambda: rig.service.revoke(PATIENT, answer.invitation.invitation_id)) == "INVITATION_NOT_REVOCABLE"
    assert code_of(lambda: rig.service.revoke(STRANGER, answer.invitation.invitation_id)) == "INVITATION_NOT_FOUND"


def test_room_shows_only_what_was_shared(rig: Rig) -> None:
    reports = [{"item_id": "R1", "label": "血常规", "ready_at": "2026-12-03T02:30:00Z"}]
    rig.visit(reports=reports, prescriptions=[{"item_id": "RX1", "label": "阿司匹林"}])
    _, session = rig.joined()
    room = rig.service.room(rig.origin(), session)
    assert room.reports is None and room.prescriptions is None and not room.video_allowed
    # a second companion the patient shared reports with
    answer = rig.invite(phone="13700000000", reports=True)
    handle = rig.handle(answer)
    rig.otp(handle, "13700000000")
    shared = rig.join(handle, answer.invitation_code, phone="13700000000").value.session
    room = rig.service.room(rig.origin(), shared)
    assert room.reports is not None and room.reports[0].label == "血常规"
    assert room.prescriptions is None


def test_room_follows_guide_progress_and_links_navigation(rig: Rig) -> None:
    rig.visit()
    _, session = rig.joined()
    assert (
        rig.visit(
            seq=3,
            state="waiting",
            state_label="候诊中",
            queue_position=4,
            next_title="候诊",
            next_place_poi="opd-3f",
            next_place_label="3楼候诊区",
        )
        == "applied"
    )
    assert rig.visit(seq=2, state="checked_in", state_label="已签到") == "stale"  # older, late
    room = rig.service.room(rig.origin(), session)
    assert room.state == "waiting" and room.queue_position == 4
    assert room.next.place == "3楼候诊区" and room.next.nav_link == "https://h.example/nav?poi=opd-3f"
    assert room.notices[0].text.startswith("候诊中，前面还有4人")


def test_grant_ends_with_the_visit_and_at_the_end_of_the_visit_day(rig: Rig) -> None:
    rig.visit()
    _, session = rig.joined()
    pending = rig.invite(phone="13700000000")
    assert rig.visit(seq=5, state="done", state_label="就诊完成", is_open=False) == "ended"
    assert code_of(lambda: rig.service.room(rig.origin(), session)) == "GRANT_ENDED"
    statuses = {i.invitation_id: i.status for i in rig.service.companions(PATIENT, "V1").invitations}
    assert statuses[pending.invitation.invitation_id] == "expired"

    other = make_day_rig()
    other.visit()
    other.clock.now += 13 * 3600 + 50 * 60  # 23:50 in Beijing
    _, later = other.joined()
    other.service.room(other.origin(), later)
    other.clock.now += 12 * 60  # 00:02: the visit day is over, the session not yet
    assert code_of(lambda: other.service.room(other.origin(), later)) == "GRANT_ENDED"


def make_day_rig() -> Rig:
    from tests.unit.escort.conftest import make_rig

    return make_rig()


def test_session_slides_and_expires_after_fifteen_idle_minutes(rig: Rig) -> None:
    rig.visit()
    _, session = rig.joined()
    rig.clock.now += 600
    assert rig.service.room(rig.origin(), session).session_expires_in >= 899  # renewed
    rig.clock.now += 901
    assert code_of(lambda: rig.service.room(rig.origin(), session)) == "SESSION_INVALID"
    assert code_of(lambda: rig.service.room(rig.origin(), "nonsense")) == "SESSION_INVALID"


def test_consent_is_a_fhir_consent_with_the_companion_as_related_person(rig: Rig) -> None:
    rig.visit()
    answer = rig.invite(reports=True)
    consent = rig.service.consent(PATIENT, answer.invitation.invitation_id)
    assert consent["resourceType"] == "Consent" and consent["status"] == "draft"
    person = consent["contained"][0]
    assert person["resourceType"] == "RelatedPerson" and person["name"][0]["text"] == "李小明"
    assert {c["code"] for c in consent["provision"]["class"]} == {"progress", "reports"}
    assert consent["provision"]["data"][0]["reference"]["reference"] == "Encounter/V1"
