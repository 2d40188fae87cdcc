"""Party-building: members SM4-encrypted at rest and every read audited; activities visible to members
only; sign-up once, within capacity, before the start, within the branch; attendance of signed-up members."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from bianjie.content.party import ActivityRequest, MemberRequest, PartyService
from bianjie.kit.errors import AppError
from bianjie.kit.fieldcrypt import FieldCipher
from bianjie.kit.keys import LocalKeyPort

from tests.unit.content.conftest import Rig, staff

ADMIN = staff("pa-1", "party-admin", org="centre")
ALICE = staff("m-alice", "party-member", org="centre")
BOB = staff("m-bob", "party-member", org="centre")


@pytest.fixture
def party(rig: Rig) -> PartyService:
    cipher = FieldCipher(LocalKeyPort(secrets.token_bytes(16)))
    service = PartyService(rig.documents, "content", cipher, rig.service.audit, rig.clock)
    service.put_member(ADMIN, "m-alice", MemberRequest(branch="b1", name="张三", phone="13800138000"))
    service.put_member(ADMIN, "m-bob", MemberRequest(branch="b2", name="李四"))
    return service


def later(rig: Rig, hours: int = 24) -> str:
    return (datetime.fromtimestamp(rig.clock.now, UTC) + timedelta(hours=hours)).isoformat()


def test_members_are_encrypted_and_reads_audited(rig: Rig, party: PartyService) -> None:
    stored = json.dumps(
        [i for i in rig.documents.items("content") if i["pk"].startswith("party#member")], ensure_ascii=False
    )
    assert "张三" not in stored and "13800138000" not in stored
    assert party.get_member(ALICE, "m-alice").name == "张三"
    with pytest.raises(AppError) as other:
        party.get_member(BOB, "m-alice")
    assert other.value.code == "ROLE_REQUIRED"
    reads = [r for r in rig.documents.items("audit") if r.get("action") == "content.party.member_read"]
    assert len(reads) == 1 and "张三" not in json.dumps(reads, ensure_ascii=False)


def test_sign_up_attend_and_refusals(rig: Rig, party: PartyService) -> None:
    with pytest.raises(AppError) as not_admin:
        party.publish_activity(ALICE, ActivityRequest(title="x", place="y", starts_at=later(rig), capacity=1))
    assert not_admin.value.code == "ROLE_REQUIRED"
    talk = party.publish_activity(
        ADMIN, ActivityRequest(title="主题党日：学习交流", place="3楼会议室", starts_at=later(rig), capacity=1)
    )
    branch_only = party.publish_activity(
        ADMIN, ActivityRequest(title="支部学习", branch="b1", place="会议室", starts_at=later(rig), capacity=10)
    )
    assert [a.id for a in party.activities(BOB)] == [talk.id]  # b2 does not see b1's activity
    assert {a.id for a in party.activities(ALICE)} == {talk.id, branch_only.id}
    signed = party.sign_up(ALICE, talk.id)
    assert signed.signed_up == 1 and signed.mine
    with pytest.raises(AppError) as twice:
        party.sign_up(ALICE, talk.id)
    assert twice.value.code == "ALREADY_SIGNED_UP"
    with pytest.raises(AppError) as full:
        party.sign_up(BOB, talk.id)
    assert full.value.code == "ACTIVITY_FULL"
    with pytest.raises(AppError) as branch:
        party.sign_up(BOB, branch_only.id)
    assert branch.value.code == "OTHER_BRANCH"
    with pytest.raises(AppError) as absent:
        party.attend(ADMIN, talk.id, "m-bob")
    assert absent.value.code == "NOT_SIGNED_UP"
    assert party.attend(ADMIN, talk.id, "m-alice").attended == 1
    rig.clock.now += 2 * 86400
    with pytest.raises(AppError) as closed:
        party.sign_up(ALICE, branch_only.id)
    assert closed.value.code == "SIGNUP_CLOSED"


def test_only_members_see_activities(party: PartyService) -> None:
    with pytest.raises(AppError) as outsider:
        party.activities(staff("x", "editor"))
    assert outsider.value.code == "ROLE_REQUIRED"
    with pytest.raises(AppError) as unregistered:
        party.activities(staff("m-new", "party-member"))
    assert unregistered.value.code == "NOT_A_MEMBER"
