"""The editorial workflow: the full path, refusals with their codes, sealed and audited steps, versions,
scheduled publishing, withdrawal; and the property that nothing reaches published without three reviews
by three different people, whatever sequence of actions and actors is tried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bianjie.content.model import ContentReviewRequest
from bianjie.content.workflow import STATUSES, WorkflowRefused
from bianjie.kit.errors import AppError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.content.conftest import CHIEF, EDITOR, REVIEWER_A, REVIEWER_B, Rig, article, staff, three_reviews


def approve(stage: str) -> ContentReviewRequest:
    return ContentReviewRequest(decision="approve", expected_status=stage)  # type: ignore[arg-type]


def test_three_reviews_publish_seal_and_audit(rig: Rig) -> None:
    item = rig.service.create_article(EDITOR, article())
    assert item.status == "draft" and item.version == 1
    done = three_reviews(rig.service, item.id)
    assert done.status == "published"
    assert [s.action for s in done.history] == ["submit", "approve", "approve", "approve"]
    assert [s.to_status for s in done.history] == ["review1", "review2", "final", "published"]
    assert done.digest and len(done.digest) == 64
    assert rig.service.verify_seals(item.id)
    assert rig.jobs() == [{"id": item.id, "version": 1, "status": "published"}]
    actions = [r["action"] for r in rig.documents.items("audit") if r.get("resource") == f"content:{item.id}"]
    assert actions.count("content.approve") == 3 and "content.submit" in actions


def test_a_changed_step_breaks_the_seal(rig: Rig) -> None:
    item = rig.service.create_article(EDITOR, article())
    three_reviews(rig.service, item.id)
    step = next(i for i in rig.documents.items("content") if i["sk"] == "step#00002")
    rig.documents.put("content", {**step, "doc": step["doc"].replace("rv1", "rv9")})
    assert not rig.service.verify_seals(item.id)


def test_reviewers_must_differ_and_not_be_the_submitter(rig: Rig) -> None:
    both = staff("ed-rv", "editor", "reviewer")
    item = rig.service.create_article(both, article())
    rig.service.submit(both, item.id)
    with pytest.raises(WorkflowRefused) as own:
        rig.service.review(both, item.id, approve("review1"))
    assert own.value.code == "REVIEWER_CONFLICT"
    rig.service.review(REVIEWER_A, item.id, approve("review1"))
    with pytest.raises(WorkflowRefused) as twice:
        rig.service.review(REVIEWER_A, item.id, approve("review2"))
    assert twice.value.code == "REVIEWER_CONFLICT"


def test_roles_per_column_and_stage(rig: Rig) -> None:
    with pytest.raises(AppError) as no_role:
        rig.service.create_article(staff("x", "editor-news"), article(column="science"))
    assert no_role.value.code == "ROLE_REQUIRED" and no_role.value.status == 403
    item = rig.service.create_article(staff("y", "editor-science"), article())
    rig.service.submit(staff("y", "editor-science"), item.id)
    with pytest.raises(WorkflowRefused) as chief_first:
        rig.service.review(CHIEF, item.id, approve("review1"))
    assert chief_first.value.code == "ROLE_REQUIRED"
    rig.service.review(REVIEWER_A, item.id, approve("review1"))
    rig.service.review(REVIEWER_B, item.id, approve("review2"))
    with pytest.raises(WorkflowRefused) as reviewer_final:
        rig.service.review(staff("rv3", "reviewer"), item.id, approve("final"))
    assert reviewer_final.value.code == "ROLE_REQUIRED"


def test_stale_review_and_reject_needs_reason(rig: Rig) -> None:
    item = rig.service.create_article(EDITOR, article())
    rig.service.submit(EDITOR, item.id)
    with pytest.raises(WorkflowRefused) as stale:
        rig.service.review(REVIEWER_A, item.id, approve("review2"))
    assert stale.value.code == "STATE_CONFLICT" and stale.value.status == 409
    with pytest.raises(AppError) as reason:
        rig.service.review(REVIEWER_A, item.id, ContentReviewRequest(decision="reject", expected_status="review1"))
    assert reason.value.code == "REASON_REQUIRED"
    rejected = rig.service.review(
        REVIEWER_A, item.id, ContentReviewRequest(decision="reject", reason="数据需注明来源", expected_status="review1")
    )
    assert rejected.status == "rejected" and rejected.history[-1].reason == "数据需注明来源"


def test_revise_keeps_versions_and_restarts_the_reviews(rig: Rig) -> None:
    item = rig.service.create_article(EDITOR, article())
    three_reviews(rig.service, item.id)
    with pytest.raises(WorkflowRefused):
        rig.service.revise_article(EDITOR, item.id, article(title="新标题"))
    rig.service.withdraw(CHIEF, item.id, "数据更新")
    revised = rig.service.revise_article(EDITOR, item.id, article(title="糖尿病饮食（修订）"))
    assert revised.status == "draft" and revised.version == 2 and revised.digest is None
    assert [v["title"] for v in rig.service.versions(EDITOR, item.id)] == ["糖尿病患者的饮食管理", "糖尿病饮食（修订）"]
    # the reviews of version 1 do not count for version 2
    rig.service.submit(EDITOR, item.id)
    rig.service.review(REVIEWER_A, item.id, approve("review1"))
    rig.service.review(REVIEWER_B, item.id, approve("review2"))
    final = rig.service.review(CHIEF, item.id, approve("final"))
    assert final.status == "published" and final.version == 2


def test_scheduled_publishing_waits_for_its_time(rig: Rig) -> None:
    later = datetime.fromtimestamp(rig.clock.now, UTC) + timedelta(hours=2)
    item = rig.service.create_article(EDITOR, article(publish_at=later.isoformat()))
    done = three_reviews(rig.service, item.id)
    assert done.status == "scheduled" and rig.jobs() == []
    assert rig.service.publish_due() == []
    rig.clock.now += 3 * 3600
    assert rig.service.publish_due() == [item.id]
    assert rig.store.head(item.id)[0]["status"] == "published"  # type: ignore[index]
    assert rig.jobs()[-1]["status"] == "published"


def test_withdraw_needs_the_chief_and_a_public_item(rig: Rig) -> None:
    item = rig.service.create_article(EDITOR, article())
    with pytest.raises(WorkflowRefused) as early:
        rig.service.withdraw(CHIEF, item.id, "x")
    assert early.value.code == "STATE_CONFLICT"
    three_reviews(rig.service, item.id)
    with pytest.raises(WorkflowRefused):
        rig.service.withdraw(REVIEWER_A, item.id, "x")
    down = rig.service.withdraw(CHIEF, item.id, "信息过期")
    assert down.status == "withdrawn" and rig.jobs()[-1]["status"] == "withdrawn"


ACTORS = [
    EDITOR,
    REVIEWER_A,
    REVIEWER_B,
    CHIEF,
    staff("rv3", "reviewer"),
    staff("all", "editor", "reviewer", "chief-editor"),
]
ACTIONS = ["submit", "approve", "reject", "withdraw", "revise"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.integers(0, len(ACTORS) - 1), st.sampled_from(STATUSES)), max_size=25
    )
)
def test_nothing_is_published_without_three_reviews(rig: Rig, moves: list[tuple[str, int, str]]) -> None:
    item = rig.service.create_article(EDITOR, article())
    for action, who, stage in moves:
        actor = ACTORS[who]
        try:
            if action == "submit":
                rig.service.submit(actor, item.id)
            elif action in ("approve", "reject"):
                expected = stage if stage in ("review1", "review2", "final") else "review1"
                rig.service.review(
                    actor, item.id, ContentReviewRequest(decision=action, reason="理由", expected_status=expected)
                )  # type: ignore[arg-type]
            elif action == "withdraw":
                rig.service.withdraw(actor, item.id, "理由")
            else:
                rig.service.revise_article(actor, item.id, article(title="修订"))
        except AppError:
            pass
        doc, _ = rig.store.head(item.id)  # type: ignore[misc]
        if doc["status"] == "published":
            steps = rig.store.steps(item.id)
            start = max(i for i, s in enumerate(steps) if s["action"] == "submit" and s["version"] == doc["version"])
            approvals = [s for s in steps[start:] if s["action"] == "approve"]
            assert [s["from_status"] for s in approvals] == ["review1", "review2", "final"]
            assert len({s["actor"] for s in approvals}) == 3
            assert steps[start]["actor"] not in {s["actor"] for s in approvals}
        # every job the queue holds is for a state change to or from public
        for job in rig.jobs():
            assert job["status"] in ("published", "withdrawn")
