"""The prescription's life, as a pure forward-only state machine.

::

    precheck ─sign→ signed ─upload→ valid ─confirm in hospital (settled)────────────────→ dispensed
                                      └─release (external purchase)→ released ─authorize→ authorized
                                            authorized ─review pass→ reviewed ─dispense→ dispensed
                                            authorized ─review reject→ review_rejected (revoke and re-issue)
    dispensed ─reopen (reusable, uses left, interval passed, still valid)→ valid | released (same channel)
    any open state ─revoke (issuing doctor, never used)→ revoked
    any open state ─expire (at valid_end)→ expired

"Forward" is measured by ``progress`` = (terminal, cycle, rank): each accepted operation leaves it
equal or larger; a reopen starts a new cycle, so even the way back to valid moves forward. Refusals are
``TransitionRefused`` with a stable code (RX_EXPIRED, RX_REVOKED, RX_ALREADY_DISPENSED ...).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from bianjie.kit.errors import Conflict, Forbidden

RANK = {
    "precheck": 0,
    "signed": 1,
    "valid": 2,
    "released": 3,
    "authorized": 4,
    "reviewed": 5,
    "review_rejected": 5,
    "dispensed": 6,
    "revoked": 9,
    "expired": 9,
}
TERMINAL = frozenset({"revoked", "expired"})
# rx_stas_codg, the center's status: 1 有效, 2 已失效, 3 已撤销
CENTER_STATUS = {s: "1" for s in RANK} | {"expired": "2", "revoked": "3"}

Channel = Literal["in_hospital", "external"]


class TransitionRefused(Conflict):
    """409 with a code a hospital or pharmacy can act on."""


@dataclass(frozen=True)
class Lifecycle:
    status: str
    valid_end: float  # epoch seconds
    circulation: bool = False
    reusable: bool = False
    max_uses: int = 1
    min_interval_s: float = 0.0
    uses: int = 0
    cycle: int = 0
    channel: Channel | None = None
    holder: str | None = None  # the pharmacy holding a circulation authorization
    hold_until: float = 0.0
    last_used_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def uses_left(self) -> int:
        return max(0, (self.max_uses if self.reusable else 1) - self.uses)

    @property
    def finished(self) -> bool:
        """Dispensed with no use left: nothing can happen to it any more."""
        return self.status == "dispensed" and self.uses_left == 0

    @property
    def next_use_from(self) -> float | None:
        if self.status != "dispensed" or self.uses_left == 0 or self.last_used_at is None:
            return None
        return self.last_used_at + self.min_interval_s

    def held_by_other(self, pharmacy: str, now: float) -> bool:
        return self.holder is not None and self.holder != pharmacy and now < self.hold_until


def progress(lc: Lifecycle) -> tuple[int, int, int]:
    return (1 if lc.terminal else 0, lc.cycle, RANK[lc.status])


def _refuse(code: str, message: str) -> TransitionRefused:
    return TransitionRefused(message, code=code)


def _closed(lc: Lifecycle, now: float) -> None:
    """Refusals common to every operation: a revoked, expired, finished or out-of-date prescription."""
    if lc.status == "revoked":
        raise _refuse("RX_REVOKED", "the prescription was revoked by its doctor")
    if lc.status == "expired":
        raise _refuse("RX_EXPIRED", "the prescription has expired")
    if lc.finished:
        raise _refuse("RX_ALREADY_DISPENSED", "the prescription has already been dispensed")
    if now >= lc.valid_end:
        raise _refuse("RX_EXPIRED", "the prescription's validity has ended")


def _expect(lc: Lifecycle, *statuses: str, code: str = "RX_STATE") -> None:
    if lc.status not in statuses:
        if lc.status == "dispensed":
            raise _refuse("RX_ALREADY_DISPENSED", "this use of the prescription has already been dispensed")
        raise _refuse(code, f"not allowed while the prescription is {lc.status} (needs {' or '.join(statuses)})")


def sign(lc: Lifecycle, now: float) -> Lifecycle:
    _closed(lc, now)
    _expect(lc, "precheck", code="RX_NOT_PRECHECKED")
    return replace(lc, status="signed")


def upload(lc: Lifecycle, now: float) -> Lifecycle:
    _closed(lc, now)
    _expect(lc, "signed", code="RX_NOT_SIGNED")
    return replace(lc, status="valid")


def confirm_in_hospital(lc: Lifecycle, now: float) -> Lifecycle:
    """Bought and settled in the hospital: this use is dispensed."""
    _closed(lc, now)
    _expect(lc, "valid", code="RX_NOT_VALID")
    if lc.channel == "external":
        raise _refuse("RX_CHANNEL", "this prescription was released for purchase outside the hospital")
    return replace(lc, status="dispensed", channel="in_hospital", uses=lc.uses + 1, last_used_at=now)


def release(lc: Lifecycle, now: float) -> Lifecycle:
    """The patient will buy at a designated pharmacy outside (处方外购)."""
    _closed(lc, now)
    _expect(lc, "valid", code="RX_NOT_VALID")
    if not lc.circulation:
        raise _refuse("RX_NOT_FOR_CIRCULATION", "the prescription was uploaded without the circulation flag")
    return replace(lc, status="released", channel="external")


def released_already(lc: Lifecycle) -> bool:
    """This use is already released for outside purchase (and maybe taken by a pharmacy since), so a
    repeated release changes nothing and is answered with the record as it is."""
    return lc.channel == "external" and lc.status in ("released", "authorized", "reviewed", "review_rejected")


def authorize(lc: Lifecycle, now: float, pharmacy: str, until: float) -> Lifecycle:
    """A pharmacy read the patient's e-credential: it alone may review and dispense until ``until``."""
    _closed(lc, now)
    if lc.status == "authorized" and lc.held_by_other(pharmacy, now):
        raise _refuse("RX_HELD", "another pharmacy holds a current authorization for this prescription")
    _expect(lc, "released", "authorized", code="RX_NOT_RELEASED")
    return replace(lc, status="authorized", holder=pharmacy, hold_until=until)


def _holder(lc: Lifecycle, now: float, pharmacy: str) -> None:
    if lc.holder != pharmacy:
        raise Forbidden("this pharmacy holds no authorization for the prescription", code="RX_NOT_AUTHORIZED")
    if now >= lc.hold_until and lc.status == "authorized":
        raise _refuse("AUTHORIZATION_EXPIRED", "the circulation authorization has expired; read the e-credential again")


def review(lc: Lifecycle, now: float, pharmacy: str, passed: bool) -> Lifecycle:
    _closed(lc, now)
    _expect(lc, "authorized", code="RX_NOT_AUTHORIZED_STATE")
    _holder(lc, now, pharmacy)
    return replace(lc, status="reviewed" if passed else "review_rejected")


def dispense(lc: Lifecycle, now: float, pharmacy: str) -> Lifecycle:
    _closed(lc, now)
    _holder(lc, now, pharmacy)
    if lc.status == "review_rejected":
        raise _refuse("RX_REVIEW_REJECTED", "the pharmacist rejected the prescription")
    _expect(lc, "reviewed", code="RX_NOT_REVIEWED")
    return replace(lc, status="dispensed", uses=lc.uses + 1, last_used_at=now, holder=None, hold_until=0.0)


def reopen(lc: Lifecycle, now: float) -> Lifecycle:
    """A reusable prescription becomes usable again once the minimum interval has passed."""
    _closed(lc, now)
    _expect(lc, "dispensed", code="RX_NOT_DISPENSED")
    if not lc.reusable:
        raise _refuse("RX_NOT_REUSABLE", "the prescription is for one use")
    start = lc.next_use_from
    if start is not None and now < start:
        raise _refuse("RX_INTERVAL", "the minimum interval between two uses has not passed")
    status = "released" if lc.channel == "external" else "valid"
    return replace(lc, status=status, cycle=lc.cycle + 1, holder=None, hold_until=0.0)


def revoke(lc: Lifecycle, now: float, *, by_issuer: bool) -> Lifecycle:
    """Only the issuing doctor, and only while the prescription has never been used (NCPDP's lesson:
    a cancel is a request that can be denied)."""
    if not by_issuer:
        raise Forbidden("only the doctor who issued the prescription may revoke it", code="NOT_ISSUING_DOCTOR")
    if lc.uses > 0:
        raise _refuse("RX_USED", "the prescription has been dispensed at least once and cannot be revoked")
    _closed(lc, now)
    if lc.status in ("authorized", "reviewed") and now < lc.hold_until:
        raise _refuse("RX_IN_USE", "a pharmacy is reviewing or dispensing it now; ask the pharmacy first")
    return replace(lc, status="revoked", holder=None, hold_until=0.0)


def expire(lc: Lifecycle, now: float) -> Lifecycle:
    if lc.terminal or lc.finished:
        raise _refuse("RX_CLOSED", f"the prescription is already {lc.status}")
    if now < lc.valid_end:
        raise _refuse("RX_NOT_DUE", "the prescription's validity has not ended")
    return replace(lc, status="expired", holder=None, hold_until=0.0)
