"""The consultation's life, as a pure forward-only state machine.

::

    draft ─submit [consent ∧ every invitee in scope ∧ slot ahead]→ scheduled 待会诊
    scheduled ─every invitee declined→ draft (a new round: the applicant invites again)
    scheduled ─first join (applicant or an invitee who accepted)→ in_progress 会诊中
    in_progress ─room finished / the applicant ends it / the slot's end passed→ awaiting_report 待报告
    awaiting_report ─the last accepted invitee signs a final report→ completed 已完成
    draft | scheduled ─cancel (applicant) / the slot passed with nobody joining (sweep)→ cancelled

"Forward" is measured by ``progress`` = (terminal, round, rank): every accepted step leaves it equal or
larger; the way back to draft after all declined starts a new round, so it moves forward too. Each
transition is stored as a conditional update on status and version (``repo``), so two writers cannot
both move one case. Refusals are ``Conflict`` (409) with a stable code and a Chinese message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bianjie.kit.errors import Conflict, Forbidden

RANK = {"draft": 0, "scheduled": 1, "in_progress": 2, "awaiting_report": 3, "completed": 4, "cancelled": 9}
TERMINAL = frozenset({"completed", "cancelled"})


class TransitionRefused(Conflict):
    """409: the case is not in a state that allows the step."""


@dataclass(frozen=True)
class Lifecycle:
    status: str
    round: int = 0
    answers: Mapping[str, str] = field(default_factory=dict)  # invitee key -> needs_action|accepted|declined
    finals: frozenset[str] = frozenset()  # invitees (keys) with a final (or amended) report
    joined: bool = False  # somebody joined the room in this round
    consent: bool = False

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def accepted(self) -> frozenset[str]:
        return frozenset(k for k, a in self.answers.items() if a == "accepted")

    @property
    def all_declined(self) -> bool:
        return bool(self.answers) and all(a == "declined" for a in self.answers.values())


def progress(lc: Lifecycle) -> tuple[int, int, int]:
    return (1 if lc.terminal else 0, lc.round, RANK[lc.status])


def _refuse(code: str, message: str) -> TransitionRefused:
    return TransitionRefused(message, code=code)


def _expect(lc: Lifecycle, *statuses: str) -> None:
    if lc.status in statuses:
        return
    if lc.status == "cancelled":
        raise _refuse("CONSULT_CANCELLED", "该会诊已取消，无法继续操作")
    if lc.status == "completed":
        raise _refuse("CONSULT_COMPLETED", "该会诊已完成，无法继续操作")
    names = "、".join(statuses)
    raise _refuse("CONSULT_STATE", f"会诊当前状态为 {lc.status}，此操作需要状态 {names}")


def submit(lc: Lifecycle, invitees: list[str]) -> Lifecycle:
    _expect(lc, "draft")
    if not lc.consent:
        raise _refuse("CONSENT_REQUIRED", "请先记录患者的知情同意，再提交会诊申请")
    if not invitees:
        raise _refuse("INVITEES_REQUIRED", "请至少选择一位参与会诊的医生")
    return replace(lc, status="scheduled", answers={k: "needs_action" for k in invitees}, joined=False)


def record_consent(lc: Lifecycle) -> Lifecycle:
    _expect(lc, "draft")
    return replace(lc, consent=True)


def respond(lc: Lifecycle, invitee: str, accept: bool) -> Lifecycle:
    """An invitee accepts or declines (and may change their mind while the case is scheduled); when every
    invitee has declined the case goes back to draft in a new round."""
    _expect(lc, "scheduled")
    if invitee not in lc.answers:
        raise Forbidden("您不在本次会诊的邀请名单中", code="NOT_INVITED")
    answers = {**lc.answers, invitee: "accepted" if accept else "declined"}
    new = replace(lc, answers=answers)
    if new.all_declined:
        return replace(new, status="draft", round=lc.round + 1, answers={}, joined=False)
    return new


def join(lc: Lifecycle, who: str, *, applicant: bool) -> Lifecycle:
    _expect(lc, "scheduled", "in_progress")
    if not applicant and lc.answers.get(who) != "accepted":
        raise Forbidden("请先接受会诊邀请，再进入会诊室", code="NOT_ACCEPTED")
    return replace(lc, status="in_progress", joined=True)


def finish(lc: Lifecycle) -> Lifecycle:
    """The room finished (webhook), the applicant ended it, or the slot's end passed."""
    _expect(lc, "in_progress")
    return replace(lc, status="awaiting_report")


def finalise(lc: Lifecycle, invitee: str) -> Lifecycle:
    """An accepted invitee's final report; the last one completes the case."""
    _expect(lc, "awaiting_report", "completed")
    if lc.answers.get(invitee) != "accepted":
        raise Forbidden("只有接受邀请的会诊医生可以提交诊断报告", code="NOT_A_PARTICIPANT")
    finals = lc.finals | {invitee}
    done = lc.accepted <= finals
    return replace(lc, finals=finals, status="completed" if done else lc.status)


def cancel(lc: Lifecycle) -> Lifecycle:
    _expect(lc, "draft", "scheduled")
    return replace(lc, status="cancelled")


def lapse(lc: Lifecycle) -> Lifecycle:
    """The sweep: a scheduled case whose slot passed with nobody joining is cancelled."""
    _expect(lc, "scheduled")
    if lc.joined:
        raise _refuse("CONSULT_STATE", "已有医生进入会诊室")
    return replace(lc, status="cancelled")
