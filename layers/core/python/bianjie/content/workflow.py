"""The editorial workflow (分级审核、先审后发, 三审三校), pure: which action may move an item from which state,
by whom. Articles and videos share it.

    draft --submit--> review1 --approve--> review2 --approve--> final --approve--> published
                                                                              (or scheduled, then published)
    review1|review2|final --reject(reason)--> rejected --revise--> draft
    published|scheduled --withdraw--> withdrawn --revise--> draft

Roles, each either for every column (``reviewer``) or one column (``reviewer-science``):
- ``editor`` writes, revises and submits;
- ``reviewer`` approves or rejects the first and second reviews, and the two must be different people;
- ``chief-editor`` approves or rejects the final review and withdraws what is public.
Nobody reviews an item they submitted, and nobody approves two stages of one item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError

Status = Literal["draft", "review1", "review2", "final", "scheduled", "published", "rejected", "withdrawn"]
Action = Literal["submit", "approve", "reject", "withdraw", "revise", "publish_due"]
STATUSES: tuple[Status, ...] = (
    "draft",
    "review1",
    "review2",
    "final",
    "scheduled",
    "published",
    "rejected",
    "withdrawn",
)
REVIEW_STAGES: tuple[Status, ...] = ("review1", "review2", "final")
PUBLIC: frozenset[Status] = frozenset({"published"})
STAGE_ROLE: dict[Status, str] = {"review1": "reviewer", "review2": "reviewer", "final": "chief-editor"}
NEXT_STAGE: dict[Status, Status] = {"review1": "review2", "review2": "final", "final": "published"}
STAGE_NAMES: dict[str, str] = {
    "draft": "草稿",
    "review1": "初审",
    "review2": "复审",
    "final": "终审",
    "scheduled": "定时发布",
    "published": "已发布",
    "rejected": "已退回",
    "withdrawn": "已撤回",
}


class WorkflowRefused(AppError):
    """A transition the item's state does not allow (409) or the actor may not make (403)."""


@dataclass(frozen=True)
class WorkflowStep:
    """One signed step of an item's history (what the store keeps, in order)."""

    seq: int
    action: Action
    actor: str  # Actor.audit_name
    from_status: Status
    to_status: Status
    version: int
    at: str
    reason: str | None = None

    @classmethod
    def of(cls, stored: dict[str, Any]) -> WorkflowStep:
        """A step as the store keeps it (its seal is the store's)."""
        return cls(
            seq=int(stored["seq"]),
            action=stored["action"],
            actor=str(stored["actor"]),
            from_status=stored["from_status"],
            to_status=stored["to_status"],
            version=int(stored["version"]),
            at=str(stored["at"]),
            reason=stored.get("reason"),
        )


def holds_role(actor: Actor, role: str, column: str) -> bool:
    return actor.has_role(role, f"{role}-{column}")


def next_status(
    status: Status,
    action: Action,
    actor: Actor,
    *,
    column: str,
    history: Sequence[WorkflowStep],
    version: int,
    publish_later: bool = False,
) -> Status:
    """The status ``action`` moves the item to, or a refusal with a stable code."""
    if action == "publish_due":
        if status != "scheduled" or actor.kind != "system":
            raise WorkflowRefused(
                "only the publishing schedule publishes a scheduled item", code="STATE_CONFLICT", status=409
            )
        return "published"
    if actor.kind != "staff":
        raise WorkflowRefused("only staff act on the editorial workflow", code="ROLE_REQUIRED", status=403)
    if action in ("submit", "revise"):
        if not holds_role(actor, "editor", column):
            raise WorkflowRefused(f"需要栏目 {column} 的编辑权限 (editor)", code="ROLE_REQUIRED", status=403)
        allowed = ("draft",) if action == "submit" else ("draft", "rejected", "withdrawn")
        if status not in allowed:
            raise WorkflowRefused(
                f"{STAGE_NAMES[status]}状态的稿件不能{'送审' if action == 'submit' else '修改'}",
                code="STATE_CONFLICT",
                status=409,
            )
        return "review1" if action == "submit" else "draft"
    if action == "withdraw":
        if not holds_role(actor, "chief-editor", column):
            raise WorkflowRefused("撤回需要总编辑权限 (chief-editor)", code="ROLE_REQUIRED", status=403)
        if status not in ("published", "scheduled"):
            raise WorkflowRefused("只有已发布或定时发布的稿件可以撤回", code="STATE_CONFLICT", status=409)
        return "withdrawn"
    # approve / reject
    if status not in REVIEW_STAGES:
        raise WorkflowRefused(f"{STAGE_NAMES[status]}状态的稿件不在审核中", code="STATE_CONFLICT", status=409)
    role = STAGE_ROLE[status]
    if not holds_role(actor, role, column):
        raise WorkflowRefused(
            f"{STAGE_NAMES[status]}需要栏目 {column} 的{'审核' if role == 'reviewer' else '总编辑'}权限 ({role})",
            code="ROLE_REQUIRED",
            status=403,
        )
    this_round = _current_round(history, version)
    name = actor.audit_name
    if any(s.action == "submit" and s.actor == name for s in this_round):
        raise WorkflowRefused("送审人不能审核自己的稿件", code="REVIEWER_CONFLICT", status=409)
    if any(s.action == "approve" and s.actor == name for s in this_round):
        raise WorkflowRefused("同一稿件的各级审核须由不同的人完成", code="REVIEWER_CONFLICT", status=409)
    if action == "reject":
        return "rejected"
    following = NEXT_STAGE[status]
    if following == "published" and publish_later:
        return "scheduled"
    return following


def _current_round(history: Sequence[WorkflowStep], version: int) -> list[WorkflowStep]:
    """The steps since the last submit of this version (a rejected item resubmitted starts a new round)."""
    start = 0
    for i, step in enumerate(history):
        if step.action == "submit" and step.version == version:
            start = i
    return list(history[start:])


def reviewed_thrice(history: Sequence[WorkflowStep], version: int) -> bool:
    """Whether the current round of ``version`` holds three approvals by three different people after
    its submit: the invariant behind every public item."""
    this_round = _current_round(history, version)
    if not this_round or this_round[0].action != "submit" or this_round[0].version != version:
        return False
    approvals = [s for s in this_round if s.action == "approve" and s.version == version]
    stages = [s.from_status for s in approvals]
    return stages[:3] == ["review1", "review2", "final"] and len({s.actor for s in approvals[:3]}) == 3
