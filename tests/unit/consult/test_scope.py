"""Scope enforcement: agreements (expired, suspended), credentials (suspended doctor), other institutions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from bianjie.consult.models import AgreementUpdate, RecordsQuery, RespondRequest
from bianjie.kit.errors import AppError

from tests.unit.consult.conftest import A1, ADMIN, B1, B2, C1, World


def _agreement(world: World, **changes: object) -> None:
    current = world.service.scope_repo.agreement(world.agreement.agreement_id)
    assert current is not None
    body = {
        "name": current["name"],
        "parties": current["parties"],
        "services": current["services"],
        "departments": current["departments"],
        "valid_from": current["valid_from"],
        "valid_to": current["valid_to"],
        "status": current["status"],
        "version": current["version"],
        **changes,
    }
    world.service.update_agreement(ADMIN, world.agreement.agreement_id, AgreementUpdate.model_validate(body))


def test_a_doctor_of_an_institution_without_agreement_cannot_be_invited(world: World) -> None:
    with pytest.raises(AppError) as refused:
        world.apply([B1, C1])
    assert refused.value.code == "NOT_IN_SCOPE" and refused.value.status == 422
    assert refused.value.details == [{"org": "hospital-c", "doctor_code": "C001", "code": "NOT_IN_SCOPE"}]
    assert "hospital-c/C001" in refused.value.message


def test_a_doctor_of_another_institution_cannot_open_the_case_404(world: World) -> None:
    cid = world.scheduled()
    for action in (
        lambda: world.service.get(C1, cid),
        lambda: world.service.respond(C1, cid, RespondRequest(answer="accept")),
        lambda: world.service.join(C1, cid),
    ):
        with pytest.raises(AppError) as hidden:
            action()
        assert hidden.value.status == 404 and hidden.value.code == "CONSULT_NOT_FOUND"
    assert world.service.records(C1, RecordsQuery(box="joined")).items == []


def test_an_expired_agreement_refuses_invitation_and_closes_open_cases(world: World) -> None:
    cid = world.accepted()
    _agreement(world, valid_to=(date.today() - timedelta(days=1)).isoformat())
    with pytest.raises(AppError) as closed:
        world.service.get(B1, cid)
    assert closed.value.code == "AGREEMENT_INACTIVE" and closed.value.status == 403
    assert world.service.get(A1, cid).status == "scheduled"  # the applicant still sees it
    with pytest.raises(AppError) as invite:
        world.apply([B2])
    assert invite.value.code == "AGREEMENT_INACTIVE"


def test_a_suspended_agreement_closes_access_but_a_completed_case_stays_readable(world: World) -> None:
    done = world.awaiting()
    world.report(B1, done)
    world.report(B2, done)
    open_case = world.accepted()
    _agreement(world, status="suspended")
    assert world.service.get(B1, done).status == "completed"
    with pytest.raises(AppError) as closed:
        world.service.get(B1, open_case)
    assert closed.value.code == "AGREEMENT_INACTIVE"
    _agreement(world, status="active")
    assert world.service.get(B1, open_case).status == "scheduled"


def test_a_suspended_doctor_cannot_be_invited_nor_open_cases(world: World) -> None:
    cid = world.scheduled()
    world.credential(B1, "赵医生", "病理科", status="suspended")
    with pytest.raises(AppError) as own:
        world.service.get(B1, cid)
    assert own.value.code == "CREDENTIAL_INACTIVE"
    with pytest.raises(AppError) as invite:
        world.apply([B1])
    assert invite.value.code == "NOT_IN_SCOPE"


def test_departments_and_services_limit_the_agreement(world: World) -> None:
    _agreement(world, departments=["胸外科"])
    with pytest.raises(AppError):
        world.apply([B1])  # 病理科 is not covered
    assert world.apply([B2])
    _agreement(world, departments=[], services=["imaging_review"])
    with pytest.raises(AppError):
        world.apply([B2])


def test_colleagues_lists_only_doctors_in_scope(world: World) -> None:
    found = {(c.org, c.doctor_code, c.via) for c in world.service.colleagues(A1).items}
    agreement = world.agreement.agreement_id
    assert found == {
        ("hospital-a", "A002", "same-institution"),
        ("hospital-b", "B001", agreement),
        ("hospital-b", "B002", agreement),
    }


def test_only_platform_staff_administer_scope_and_every_change_is_audited(world: World) -> None:
    with pytest.raises(AppError) as refused:
        world.service.list_agreements(A1)
    assert refused.value.code == "NOT_CONSULT_ADMIN"
    _agreement(world, status="suspended")
    with pytest.raises(AppError) as stale:
        world.service.update_agreement(
            ADMIN,
            world.agreement.agreement_id,
            AgreementUpdate.model_validate(
                {
                    **world.agreement.model_dump(
                        mode="json", exclude={"agreement_id", "active", "updated_at", "updated_by"}
                    ),
                    "version": 1,
                }
            ),
        )
    assert stale.value.code == "AGREEMENT_CHANGED"
    actions = [r.action for chain in world.audit.chains() for r in world.audit.records(chain)]
    assert actions.count("consult.credential.put") == 5
    assert "consult.agreement.create" in actions and "consult.agreement.update" in actions
