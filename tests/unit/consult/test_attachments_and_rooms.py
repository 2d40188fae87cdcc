"""Attachments through the objects port and the storage-triggered check; LiveKit tokens and webhooks."""

from __future__ import annotations

import hashlib
import json

import pytest
from bianjie.consult.models import AttachmentRequest
from bianjie.consult.rooms import decode_jwt
from bianjie.kit.errors import AppError
from bianjie_dev.consult.standins import EICAR

from tests.unit.consult.conftest import A1, B1, BUCKET, C1, World

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _upload(world: World, cid: str, data: bytes, content_type: str = "application/pdf", size: int | None = None) -> str:
    answer = world.service.request_upload(
        A1, cid, AttachmentRequest(file_name="ct.pdf", content_type=content_type, size=size or len(data))
    )  # type: ignore[arg-type]
    assert answer.upload_url.startswith("memory://") and answer.headers == {"Content-Type": content_type}
    key = f"{cid}/{answer.attachment_id}"
    world.objects.put(BUCKET, key, data, content_type=content_type)
    world.service.check_object(key)
    return answer.attachment_id


def test_a_clean_pdf_gets_its_sha256_and_a_short_lived_link(world: World) -> None:
    cid = world.apply()
    att = _upload(world, cid, PDF)
    view = world.service.get(A1, cid)
    (shown,) = view.attachments
    assert shown.attachment_id == att and shown.status == "clean"
    assert shown.sha256 == hashlib.sha256(PDF).hexdigest() and shown.download_url


@pytest.mark.parametrize(
    ("data", "content_type", "size", "code"),
    [
        (b"MZ\x90\x00 not a pdf", "application/pdf", None, "TYPE_MISMATCH"),
        (PDF, "application/pdf", len(PDF) + 5, "SIZE_MISMATCH"),
        (b"%PDF-1.4\n" + EICAR, "application/pdf", None, "INFECTED"),
        (PDF, "image/png", None, "TYPE_MISMATCH"),
    ],
)
def test_refused_files_are_deleted_and_the_applicant_told_why(
    world: World, data: bytes, content_type: str, size: int | None, code: str
) -> None:
    cid = world.apply()
    att = _upload(world, cid, data, content_type, size)
    (shown,) = world.service.get(A1, cid).attachments
    assert shown.status == "rejected" and shown.download_url is None and shown.reason
    assert world.objects.head(BUCKET, f"{cid}/{att}") is None
    (event,) = world.events.of_type("consult.attachment_rejected")
    assert event.data["code"] == code and event.data["attachment_id"] == att


def test_submit_waits_for_pending_checks_and_unknown_uploads_are_deleted(world: World) -> None:
    from bianjie.consult.models import ConsultConsentRequest

    cid = world.apply()
    world.service.request_upload(A1, cid, AttachmentRequest(file_name="a.png", content_type="image/png", size=10))
    world.service.record_consent(A1, cid, ConsultConsentRequest(method="written", reference="F"))
    with pytest.raises(AppError) as pending:
        world.service.submit(A1, cid)
    assert pending.value.code == "ATTACHMENTS_PENDING"
    world.objects.put(BUCKET, f"{cid}/att-unknown", b"x")
    assert world.service.check_object(f"{cid}/att-unknown") == "unknown"
    assert world.objects.head(BUCKET, f"{cid}/att-unknown") is None


def test_only_the_applicant_adds_attachments(world: World) -> None:
    cid = world.scheduled()
    with pytest.raises(AppError) as refused:
        world.service.request_upload(
            B1, cid, AttachmentRequest(file_name="a.pdf", content_type="application/pdf", size=9)
        )
    assert refused.value.code == "NOT_APPLICANT"


def test_room_tokens_are_livekit_grants_for_participants_until_slot_end_plus_grace(world: World) -> None:
    cid = world.accepted()
    with pytest.raises(AppError) as early:
        world.service.join(B1, cid)
    assert early.value.code == "ROOM_NOT_OPEN"
    world.clock.advance(3600 - 600)
    answer = world.service.join(B1, cid)
    claims = decode_jwt(answer.token, b"s" * 32, world.clock())
    item = world.service.repo.require(cid)
    assert claims["iss"] == "standin" and claims["sub"] == "hospital-b/B001"
    assert claims["video"] == {
        "room": item["room"],
        "roomJoin": True,
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
    }
    assert claims["exp"] == item["slot_end"] + 30 * 60
    with pytest.raises(AppError):
        world.service.join(C1, cid)


def test_an_invitee_who_has_not_accepted_cannot_join(world: World) -> None:
    cid = world.scheduled()
    world.clock.advance(3600)
    with pytest.raises(AppError) as refused:
        world.service.join(B1, cid)
    assert refused.value.code == "NOT_ACCEPTED"


def test_webhooks_record_presence_and_room_finished_moves_to_awaiting_report(world: World) -> None:
    cid = world.accepted()
    world.clock.advance(3600)
    world.service.join(A1, cid)
    room = world.service.repo.require(cid)["room"]

    def post(event: str, identity: str = "") -> object:
        body = {"event": event, "room": {"name": room}}
        if identity:
            body["participant"] = {"identity": identity}
        raw = json.dumps(body).encode()
        return world.service.room_event(raw, world.rooms.sign_webhook(raw))

    post("participant_joined", "hospital-b/B001")
    post("participant_left", "hospital-b/B001")
    answer = post("room_finished")
    assert answer.status == "awaiting_report"  # type: ignore[attr-defined]
    b1 = next(p for p in world.service.get(A1, cid).participants if p.doctor_code == "B001")
    assert len(b1.joined_at) == 1 and len(b1.left_at) == 1
    raw = json.dumps({"event": "room_finished", "room": {"name": room}}).encode()
    with pytest.raises(AppError) as forged:
        world.service.room_event(raw, world.rooms.sign_webhook(b"{}"))
    assert forged.value.code == "WEBHOOK_INVALID"
