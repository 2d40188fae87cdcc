"""Agreements (签约): a patient authorises a channel to debit hospital bills; one active per channel.

Priority: the order in which a charge tries the patient's active agreements. By default bank card
(UNIONPAY) and 惠民就医 come before 医保信用 (seed: "银行卡或惠民就医扣款为优先扣费方式"); a new agreement
is inserted before the first active agreement of a lower default rank, and the patient may reorder
freely afterwards. Agreement and account numbers are stored SM4-encrypted; a blind index finds an
agreement from the number a bank quotes when it terminates one (银联主动解约通知).
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bianjie.kit.actor import Actor
from bianjie.kit.documents.port import Cond, Operation, TransactionCanceled
from bianjie.kit.errors import AppError, Conflict, NotFound, Unavailable
from bianjie.kit.masking import mask_account
from bianjie.pay.channels import ChannelPort, ChannelRejected, ChannelUnknown
from bianjie.pay.models import DEFAULT_RANK, Agreement, AgreementStatus, Channel
from bianjie.pay.store import PayStore

MAX_WRITE_RETRIES = 5


def new_id(prefix: str) -> str:
    return f"{prefix}{int(time.time() * 1000):x}{secrets.token_hex(6)}"


class AgreementService:
    def __init__(
        self,
        store: PayStore,
        channels: Mapping[Channel, ChannelPort],
        cipher: Any,
        blind_index: Any,
        audit: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._channels = channels
        self._cipher = cipher
        self._index = blind_index
        self._audit = audit
        self._clock = clock

    # -- reads ---------------------------------------------------------------------------------

    def list(self, patient_id: str) -> list[Agreement]:
        found = self._store.agreements(patient_id)
        return sorted(found, key=lambda a: (a.status is not AgreementStatus.ACTIVE, a.priority, a.signed_at))

    def list_for(self, patient: Actor) -> builtins.list[Agreement]:
        """The patient's own agreements (masked accounts), audited as a read of their payment data."""
        found = self.list(patient.id)
        self._audit_patient(patient, "pay.agreement.list", "list", {"count": len(found)}, resource="pay.patient")
        return found

    # the method ``list`` above shadows the builtin in this class body: annotations below say builtins.list
    def active(self, patient_id: str) -> builtins.list[Agreement]:
        return [a for a in self.list(patient_id) if a.status is AgreementStatus.ACTIVE]

    def agreement_no(self, agreement: Agreement) -> str:
        return self._cipher.decrypt(agreement.agreement_no_enc, f"pay/agreement_no/{agreement.agreement_id}")

    # -- patient actions -----------------------------------------------------------------------

    def sign(self, patient: Actor, channel: Channel, account: str) -> Agreement:
        patient_id = patient.id
        current = self.active(patient_id)
        if any(a.channel is channel for a in current):
            raise Conflict("an active agreement with this channel exists; terminate it first", code="AGREEMENT_EXISTS")
        port = self._port(channel)
        try:
            answer = port.sign_agreement(account, self._index.digest(patient_id, "patient_id"))
        except ChannelRejected as exc:
            raise AppError(
                f"the channel refused the agreement ({exc.code})", code="CHANNEL_REJECTED", status=422
            ) from None
        except ChannelUnknown:
            raise Unavailable("the channel did not answer; try again", code="CHANNEL_UNAVAILABLE") from None
        now = self._clock()
        agreement_id = new_id("ag")
        agreement = Agreement(
            agreement_id=agreement_id,
            patient_id=patient_id,
            channel=channel,
            status=AgreementStatus.ACTIVE,
            priority=0,
            account_masked=mask_account(account),
            account_enc=self._cipher.encrypt(account, f"pay/account/{agreement_id}"),
            agreement_no_enc=self._cipher.encrypt(answer.agreement_no, f"pay/agreement_no/{agreement_id}"),
            agreement_ref=self._index.digest(answer.agreement_no, "agreement_no"),
            signed_at=now,
        )
        ordered = list(current)
        position = next(
            (i for i, a in enumerate(ordered) if DEFAULT_RANK[a.channel] > DEFAULT_RANK[channel]), len(ordered)
        )
        ordered.insert(position, agreement)
        self._store.put_agreement(agreement, new=True)
        self._renumber(ordered, skip=agreement.agreement_id)
        agreement.priority = position + 1
        self._audit_patient(patient, "pay.agreement.sign", agreement_id, {"channel": channel.value})
        return agreement

    def terminate(self, patient: Actor, agreement_id: str) -> Agreement:
        agreement = self._store.agreement(patient.id, agreement_id)
        if agreement is None:
            raise NotFound("no such agreement for this patient", code="AGREEMENT_NOT_FOUND")
        if agreement.status is AgreementStatus.TERMINATED:
            return agreement
        try:
            self._port(agreement.channel).terminate_agreement(self.agreement_no(agreement))
        except ChannelRejected as exc:
            if exc.code != "AGREEMENT_TERMINATED":  # already gone at the bank: finish ours
                raise AppError(f"the channel refused ({exc.code})", code="CHANNEL_REJECTED", status=422) from None
        except ChannelUnknown:
            raise Unavailable("the channel did not answer; try again", code="CHANNEL_UNAVAILABLE") from None
        self._mark_terminated(agreement, "patient")
        self._audit_patient(patient, "pay.agreement.terminate", agreement_id, {})
        return agreement

    def reorder(self, patient: Actor, agreement_ids: builtins.list[str]) -> builtins.list[Agreement]:
        active = self.active(patient.id)
        if sorted(agreement_ids) != sorted(a.agreement_id for a in active) or len(set(agreement_ids)) != len(
            agreement_ids
        ):
            # the request is well formed; it does not match the agreements as they are now
            raise Conflict(
                "list every active agreement exactly once",
                code="ORDER_MISMATCH",
                details={"active": [a.agreement_id for a in active]},
            )
        by_id = {a.agreement_id: a for a in active}
        ordered = [by_id[i] for i in agreement_ids]
        self._renumber(ordered)
        self._audit_patient(patient, "pay.agreement.reorder", "order", {"count": len(ordered)})
        return self.list(patient.id)

    # -- channel notifications -----------------------------------------------------------------

    def channel_terminated(self, channel: Channel, agreement_no: str, extra: Sequence[Operation] = ()) -> bool:
        """The bank ended an agreement (银联主动解约通知). True when one of ours changed.

        ``extra`` (the callback's inbox record) commits in the SAME transaction as the termination and
        its audit record: a crash can no longer leave the notification marked handled while the
        agreement stays active. Raises ``TransactionCanceled`` when an ``extra`` operation fails (the
        notification was handled before)."""
        ref = self._index.digest(agreement_no, "agreement_no")
        for _ in range(MAX_WRITE_RETRIES):
            ended = [
                a
                for a in self._store.agreements_by_ref(ref)
                if a.channel is channel and a.status is AgreementStatus.ACTIVE
            ]
            if not ended:
                if extra:
                    self._store.commit(list(extra))
                return False
            now = self._clock()
            for agreement in ended:
                agreement.status = AgreementStatus.TERMINATED
                agreement.terminated_at = now
                agreement.terminated_by = "channel"
                agreement.priority = 1000
            puts = [self._store.agreement_put(a, Cond.eq("status", AgreementStatus.ACTIVE.value)) for a in ended]
            try:
                self._audit.record(
                    actor=Actor.system(channel.value.lower()),
                    action="pay.agreement.terminated_by_channel",
                    resource=f"pay.agreement:{ended[0].agreement_id}",
                    patient_ref=self._index.digest(ended[0].patient_id, "patient_id"),
                    details={"agreements": [a.agreement_id for a in ended]},
                    also=[*extra, *puts],
                )
            except TransactionCanceled as exc:
                if any(exc.reasons[: len(extra)]):
                    raise
                continue  # the patient terminated it meanwhile: re-read
            return True
        raise Conflict("the agreement is busy; retry shortly", code="IN_PROGRESS")

    # -- helpers -------------------------------------------------------------------------------

    def _port(self, channel: Channel) -> ChannelPort:
        port = self._channels.get(channel)
        if port is None:
            raise Unavailable(f"channel {channel.value} is not configured", code="CHANNEL_NOT_CONFIGURED")
        return port

    def _mark_terminated(self, agreement: Agreement, by: str) -> None:
        agreement.status = AgreementStatus.TERMINATED
        agreement.terminated_at = self._clock()
        agreement.terminated_by = by
        agreement.priority = 1000
        self._store.put_agreement(agreement)

    def _renumber(self, ordered: builtins.list[Agreement], skip: str | None = None) -> None:
        changed = []
        for i, a in enumerate(ordered, start=1):
            if a.priority != i:
                a.priority = i
                changed.append(a)
        self._store.put_agreements(changed)

    def _audit_patient(
        self, patient: Actor, action: str, resource_id: str, details: dict, resource: str = "pay.agreement"
    ) -> None:
        self._audit.record(
            actor=patient,
            action=action,
            resource=f"{resource}:{patient.id if resource == 'pay.patient' else resource_id}",
            patient_ref=self._index.digest(patient.id, "patient_id"),
            details=details,
        )
