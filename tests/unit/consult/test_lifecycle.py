"""The four states end to end in memory: apply, consent, submit, accept, join, end, report, sign."""

from __future__ import annotations

import pytest
from bianjie.consult.models import CancelRequest, ConsultConsentRequest, RecordsQuery, ReportDraft, RespondRequest
from bianjie.kit.errors import AppError

from tests.unit.consult.conftest import A1, A2, B1, B2, C1, PATIENT_ID, PATIENT_NAME, World


def test_the_whole_lifecycle_with_two_partner_doctors(world: World) -> None:
    cid = world.apply()
    assert world.status(cid) == "draft"
    with pytest.raises(AppError) as refused:
        world.service.submit(A1, cid)
    assert refused.value.code == "CONSENT_REQUIRED"
    world.service.record_consent(A1, cid, ConsultConsentRequest(method="written", reference="F-1"))
    assert world.service.submit(A1, cid).status == "scheduled"
    assert [e.type for e in world.events.sent] == ["consult.scheduled"]

    for d in (B1, B2):
        world.service.respond(d, cid, RespondRequest(answer="accept"))
    world.clock.advance(3600)
    joined = world.service.join(B1, cid)
    assert joined.status == "in_progress" and joined.room.startswith("mdt-") and len(joined.room) == 4 + 32
    world.clock.advance(3600)
    assert world.service.end(A1, cid).status == "awaiting_report"

    world.report(B1, cid)
    assert world.status(cid) == "awaiting_report"  # B2 has not signed yet
    world.report(B2, cid, "同意手术")
    assert world.status(cid) == "completed"
    assert [e.type for e in world.events.sent] == [
        "consult.scheduled",
        "consult.started",
        "consult.awaiting_report",
        "consult.completed",
    ]
    view = world.service.get(A1, cid)
    assert {r.doctor_code for r in view.reports} == {"B001", "B002"}
    assert all(r.status == "final" and r.signature for r in view.reports)
    assert view.patient_name == PATIENT_NAME and view.diagnosis.startswith("右肺")
    for r in view.reports:
        assert world.service.verify_report(cid, r.org, r.doctor_code).valid


def test_patient_fields_are_encrypted_at_rest_and_events_carry_ids_only(world: World) -> None:
    cid = world.scheduled()
    raw = repr(world.docs.get("consult", {"pk": f"case#{cid}", "sk": "case"}))
    assert PATIENT_NAME not in raw and PATIENT_ID not in raw and "性质待定" not in raw and "痰中带血" not in raw
    body = world.events.sent[0].model_dump_json()
    assert PATIENT_NAME not in body and PATIENT_ID not in body


def test_all_decline_returns_the_case_to_draft_and_tells_the_applicant(world: World) -> None:
    cid = world.scheduled()
    world.service.respond(B1, cid, RespondRequest(answer="decline", reason="时间冲突"))
    assert world.status(cid) == "scheduled"
    world.service.respond(B2, cid, RespondRequest(answer="decline", reason="非本专业"))
    assert world.status(cid) == "draft"
    assert world.events.sent[-1].type == "consult.returned"
    item = world.service.repo.require(cid)
    assert item["round"] == 1
    world.service.change_invitees(A1, cid, world.apply_body([A2]).invitees)
    assert world.service.submit(A1, cid).status == "scheduled"  # consent was recorded in round 0


def test_reports_sign_once_then_amend_keeps_the_earlier_version(world: World) -> None:
    cid = world.awaiting()
    world.report(B1, cid)
    with pytest.raises(AppError) as twice:
        world.service.sign_report(B1, cid)
    assert twice.value.code == "REPORT_ALREADY_SIGNED"
    amended = world.service.amend_report(B1, cid, ReportDraft(opinion="补充：建议术前穿刺活检"))
    assert amended.version == 2 and amended.status == "amended"
    assert [p.version for p in amended.previous] == [1] and amended.previous[0].opinion.startswith("考虑")
    assert world.service.verify_report(cid, "hospital-b", "B001").valid
    assert world.service.verify_report(cid, "hospital-b", "B001", 1).valid


def test_a_tampered_report_does_not_verify(world: World) -> None:
    cid = world.awaiting()
    world.report(B1, cid)
    key = {"pk": f"case#{cid}", "sk": "report#hospital-b/B001#0001"}
    row = world.docs.get("consult", key)
    assert row is not None
    row["signed_at"] = "2020-01-01T00:00:00Z"
    world.docs.put("consult", row)
    answer = world.service.verify_report(cid, "hospital-b", "B001")
    assert not answer.valid and answer.reason == "SIGNATURE_MISMATCH"


def test_report_by_a_non_participant_or_before_the_meeting_is_refused(world: World) -> None:
    cid = world.accepted()
    with pytest.raises(AppError) as early:
        world.service.save_report(B1, cid, ReportDraft(opinion="x"))
    assert early.value.code == "REPORT_NOT_OPEN"
    with pytest.raises(AppError) as applicant:
        world.service.save_report(A1, cid, ReportDraft(opinion="x"))
    assert applicant.value.code == "NOT_A_PARTICIPANT"
    with pytest.raises(AppError) as stranger:
        world.service.save_report(C1, cid, ReportDraft(opinion="x"))
    assert stranger.value.code == "CONSULT_NOT_FOUND" and stranger.value.status == 404


def test_duplicate_submission_with_the_same_key_answers_the_first_case(world: World) -> None:
    body = world.apply_body()
    first = world.service.apply(A1, body, "same-key")
    again = world.service.apply(A1, body, "same-key")
    assert again.replayed and again.value.consultation_id == first.value.consultation_id
    with pytest.raises(AppError) as reused:
        world.service.apply(A1, world.apply_body(purpose="另一个目的"), "same-key")
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"


def test_slot_in_the_past_and_missing_room_are_refused_with_codes(world: World) -> None:
    with pytest.raises(AppError) as past:
        world.apply(start=world.iso(-60))
    assert past.value.code == "SLOT_IN_PAST" and past.value.status == 422 and "会诊时间" in past.value.message
    with pytest.raises(AppError) as room:
        world.apply(location={"kind": "room", "room": " "})
    assert room.value.code == "LOCATION_REQUIRED"


def test_records_lists_by_box_state_and_date_with_counts(world: World) -> None:
    done = world.awaiting()
    world.report(B1, done)
    other = world.scheduled([B1])
    draft = world.apply([B2])
    mine = world.service.records(A1, RecordsQuery(box="mine"))
    assert {i.consultation_id for i in mine.items} == {done, other, draft}
    assert mine.counts["scheduled"] == 1 and mine.counts["awaiting_report"] == 1 and mine.counts["draft"] == 1
    joined = world.service.records(B1, RecordsQuery(box="joined", status="scheduled"))
    assert [i.consultation_id for i in joined.items] == [other]
    assert world.service.records(B2, RecordsQuery(box="joined")).counts["draft"] == 0  # a draft is not shown yet
    page = world.service.records(A1, RecordsQuery(box="mine", limit=2))
    assert len(page.items) == 2 and page.cursor
    rest = world.service.records(A1, RecordsQuery(box="mine", limit=2, cursor=page.cursor))
    assert len(rest.items) == 1
    from datetime import date, timedelta

    future = date.today() + timedelta(days=10)
    assert world.service.records(A1, RecordsQuery(box="mine", from_date=future)).items == []


def test_cancel_and_the_sweep(world: World) -> None:
    cid = world.scheduled()
    world.service.cancel(A1, cid, CancelRequest(reason="患者转院"))
    assert world.status(cid) == "cancelled"
    with pytest.raises(AppError) as closed:
        world.service.respond(B1, cid, RespondRequest(answer="accept"))
    assert closed.value.code == "CONSULT_CANCELLED"

    lapsing = world.scheduled()
    running = world.accepted()
    world.clock.advance(3600)
    world.service.join(B1, running)
    world.clock.advance(3600 + 31 * 60)
    assert world.service.sweep() == {"lapsed": 1, "finished": 1, "skipped": 0}
    assert world.status(lapsing) == "cancelled" and world.status(running) == "awaiting_report"
    assert world.events.of_type("consult.cancelled")[-1].data["reason"] == "no_show"


def test_every_read_is_audited(world: World) -> None:
    cid = world.scheduled()
    world.service.get(B1, cid)
    records = [r for chain in world.audit.chains() for r in world.audit.records(chain)]
    reads = [r for r in records if r.action == "consult.read" and r.resource == f"consult.case:{cid}"]
    assert reads and reads[-1].actor == "staff:hospital-b/B001" and reads[-1].patient_ref


def test_two_invitees_answering_at_once_both_succeed(world: World) -> None:
    """B002's answer lands between B001's read and write: B001's write loses the version race and is
    retried on the case as it is now, so both answers are kept (the benchmark found this)."""
    cid = world.scheduled()
    world.service.sleep = lambda s: None
    original = world.service.repo.save
    raced: list[int] = []

    def save(item: dict, changes: dict, also: tuple = ()) -> dict:  # type: ignore[type-arg]
        if not raced:
            raced.append(1)
            world.service.respond(B2, cid, RespondRequest(answer="accept"))
        return original(item, changes, also)

    world.service.repo.save = save  # type: ignore[method-assign]
    world.service.respond(B1, cid, RespondRequest(answer="accept"))
    answers = {p["doctor_code"]: p["answer"] for p in world.service.repo.require(cid)["participants"]}
    assert answers == {"B001": "accepted", "B002": "accepted"}
