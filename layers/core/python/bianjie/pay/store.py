"""The pay service's records on the documents port (one table, ``PAY_TABLE``).

    pk                          sk                  what
    PAT#<patient_id>            AGR#<agreement_id>  agreement (index by_agreement: agreement_ref)
    CHG#<charge_id>             CHARGE              charge with its attempts (by_sweep while pending,
                                                    by_recon once succeeded); the id derives from the
                                                    hospital's order number: one charge per order
    CHG#<charge_id>             REFUND#<refund_no>  refund (by_sweep while pending, by_recon once succeeded)
    INBOX#<channel>#<notify_id> INBOX               a channel notification already handled (TTL 30 days)
    OUTBOX#<event_id>           OUTBOX              a hospital webhook to queue (by_sweep under "OUTBOX" while
                                                    PENDING; QUEUED once on the webhook queue, TTL 30 days)
    CONFIG                      CHANNEL#<channel>   channel credentials (keys field-encrypted)
    CONFIG                      WEBHOOK_KEY         our SM2 key for hospital webhooks (field-encrypted)
    RECON#<day>                 REPORT              the reconciliation summary of a day

Every charge and refund write is a put conditioned on the version it read (optimistic locking), so two
writers never both move a record: the loser re-reads and re-applies what it learned. A webhook intent
(outbox item) is written in the same transaction as the transition it announces, so neither exists
without the other; its id derives from the transition, so a transition can only ever have one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from bianjie.kit.documents.port import (
    Cond,
    DocumentStore,
    KeyCond,
    Operation,
    Put,
)
from bianjie.kit.timefmt import beijing_day
from bianjie.pay.models import (
    Agreement,
    AgreementStatus,
    Attempt,
    Channel,
    Charge,
    ChargeStatus,
    Refund,
    RefundStatus,
    now_iso,
)

BY_AGREEMENT = "by_agreement"
BY_SWEEP = "by_sweep"
BY_RECON = "by_recon"
SWEEP_PARTITION = "DUE"
OUTBOX_PARTITION = "OUTBOX"  # outbox intents share the sparse by_sweep index under their own partition
INBOX_TTL = 30 * 24 * 3600
OUTBOX_TTL = 30 * 24 * 3600  # queued intents are kept this long so an operator can trace a webhook


def recon_partition(channel: Channel, ts: float) -> str:
    return f"{channel.value}#{beijing_day(ts)}"


# ---------------------------------------------------------------- item mapping


def charge_item(c: Charge) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": f"CHG#{c.charge_id}",
        "sk": "CHARGE",
        "charge_id": c.charge_id,
        "app_id": c.app_id,
        "order_no": c.order_no,
        "patient_id": c.patient_id,
        "amount": c.amount,
        "description": c.description,
        "status": c.status.value,
        "plan": list(c.plan),
        "attempts": [a.to_item() for a in c.attempts],
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "notify_url": c.notify_url,
        "version": c.version,
        "refunded": c.refunded,
        "refund_reserved": c.refund_reserved,
        "failure_code": c.failure_code,
        "history": c.history,
        "anomalies": c.anomalies,
    }
    if c.status is ChargeStatus.PENDING and c.next_check_at is not None:
        item["sweep_pk"] = SWEEP_PARTITION
        item["sweep_sk"] = f"{now_iso(c.next_check_at)}#C#{c.charge_id}"
        item["next_check_at"] = c.next_check_at
    won = c.succeeded_attempt
    if c.status is ChargeStatus.SUCCEEDED and won is not None and won.success_time is not None:
        item["recon_pk"] = recon_partition(won.channel, won.success_time)
        item["recon_sk"] = f"T#{won.out_trade_no}"
    return item


def charge_from(item: dict[str, Any]) -> Charge:
    return Charge(
        charge_id=item["charge_id"],
        app_id=item["app_id"],
        order_no=item["order_no"],
        patient_id=item["patient_id"],
        amount=int(item["amount"]),
        description=item.get("description") or "",
        status=ChargeStatus(item["status"]),
        plan=list(item.get("plan") or []),
        attempts=[Attempt.from_item(a) for a in item.get("attempts") or []],
        created_at=float(item["created_at"]),
        updated_at=float(item["updated_at"]),
        notify_url=item.get("notify_url"),
        version=int(item.get("version", 0)),
        refunded=int(item.get("refunded", 0)),
        refund_reserved=int(item.get("refund_reserved", 0)),
        failure_code=item.get("failure_code"),
        history=list(item.get("history") or []),
        anomalies=list(item.get("anomalies") or []),
        next_check_at=item.get("next_check_at"),
    )


def refund_item(r: Refund) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": f"CHG#{r.charge_id}",
        "sk": f"REFUND#{r.refund_no}",
        "charge_id": r.charge_id,
        "refund_no": r.refund_no,
        "out_refund_no": r.out_refund_no,
        "amount": r.amount,
        "reason": r.reason,
        "status": r.status.value,
        "channel": r.channel.value,
        "out_trade_no": r.out_trade_no,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "version": r.version,
        "channel_refund_no": r.channel_refund_no,
        "success_time": r.success_time,
        "failure_code": r.failure_code,
    }
    if r.status is RefundStatus.PENDING and r.next_check_at is not None:
        item["sweep_pk"] = SWEEP_PARTITION
        item["sweep_sk"] = f"{now_iso(r.next_check_at)}#R#{r.charge_id}#{r.refund_no}"
        item["next_check_at"] = r.next_check_at
    if r.status is RefundStatus.SUCCEEDED and r.success_time is not None:
        item["recon_pk"] = recon_partition(r.channel, r.success_time)
        item["recon_sk"] = f"R#{r.out_refund_no}"
    return item


def refund_from(item: dict[str, Any]) -> Refund:
    return Refund(
        charge_id=item["charge_id"],
        refund_no=item["refund_no"],
        out_refund_no=item["out_refund_no"],
        amount=int(item["amount"]),
        reason=item.get("reason") or "",
        status=RefundStatus(item["status"]),
        channel=Channel(item["channel"]),
        out_trade_no=item["out_trade_no"],
        created_at=float(item["created_at"]),
        updated_at=float(item["updated_at"]),
        version=int(item.get("version", 0)),
        channel_refund_no=item.get("channel_refund_no"),
        success_time=item.get("success_time"),
        failure_code=item.get("failure_code"),
        next_check_at=item.get("next_check_at"),
    )


def agreement_item(a: Agreement) -> dict[str, Any]:
    return {
        "pk": f"PAT#{a.patient_id}",
        "sk": f"AGR#{a.agreement_id}",
        "agreement_id": a.agreement_id,
        "patient_id": a.patient_id,
        "channel": a.channel.value,
        "status": a.status.value,
        "priority": a.priority,
        "account_masked": a.account_masked,
        "account_enc": a.account_enc,
        "agreement_no_enc": a.agreement_no_enc,
        "agreement_ref": a.agreement_ref,
        "signed_at": a.signed_at,
        "terminated_at": a.terminated_at,
        "terminated_by": a.terminated_by,
    }


def agreement_from(item: dict[str, Any]) -> Agreement:
    return Agreement(
        agreement_id=item["agreement_id"],
        patient_id=item["patient_id"],
        channel=Channel(item["channel"]),
        status=AgreementStatus(item["status"]),
        priority=int(item["priority"]),
        account_masked=item["account_masked"],
        account_enc=item["account_enc"],
        agreement_no_enc=item["agreement_no_enc"],
        agreement_ref=item["agreement_ref"],
        signed_at=float(item["signed_at"]),
        terminated_at=item.get("terminated_at"),
        terminated_by=item.get("terminated_by"),
    )


def inbox_item(channel: Channel, notify_id: str, now: float, summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "pk": f"INBOX#{channel.value}#{notify_id}",
        "sk": "INBOX",
        "received_at": now,
        "expires_at": int(now) + INBOX_TTL,
        **summary,
    }


def outbox_item(event_id: str, url: str, event: dict[str, Any], due_at: float, now: float) -> dict[str, Any]:
    """A webhook intent: the message the webhook queue will carry, and when the relay may take it."""
    return {
        "pk": f"OUTBOX#{event_id}",
        "sk": "OUTBOX",
        "event_id": event_id,
        "url": url,
        "event": event,
        "status": "PENDING",
        "created_at": now,
        "relay_attempts": 0,
        "sweep_pk": OUTBOX_PARTITION,
        "sweep_sk": f"{now_iso(due_at)}#{event_id}",
    }


# ---------------------------------------------------------------- the store


class PayStore:
    def __init__(self, documents: DocumentStore, table: str) -> None:
        self.documents = documents
        self.table = table

    # agreements
    def agreements(self, patient_id: str) -> list[Agreement]:
        items = self._query_all(KeyCond.of("pk", f"PAT#{patient_id}").begins_with("sk", "AGR#"))
        return sorted((agreement_from(i) for i in items), key=lambda a: (a.priority, a.signed_at))

    def agreement(self, patient_id: str, agreement_id: str) -> Agreement | None:
        item = self.documents.get(self.table, {"pk": f"PAT#{patient_id}", "sk": f"AGR#{agreement_id}"})
        return agreement_from(item) if item else None

    def agreements_by_ref(self, agreement_ref: str) -> list[Agreement]:
        page = self.documents.query(self.table, KeyCond.of("agreement_ref", agreement_ref), index=BY_AGREEMENT)
        return [agreement_from(i) for i in page.items]

    def put_agreement(self, a: Agreement, *, new: bool = False) -> None:
        self.documents.put(self.table, agreement_item(a), condition=Cond.absent() if new else None)

    def agreement_put(self, a: Agreement, condition: Cond | None = None) -> Put:
        return Put(self.table, agreement_item(a), condition)

    def put_agreements(self, agreements: Sequence[Agreement]) -> None:
        if agreements:
            self.documents.transact([Put(self.table, agreement_item(a), Cond.exists()) for a in agreements])

    # charges
    def charge(self, charge_id: str) -> Charge | None:
        item = self.documents.get(self.table, {"pk": f"CHG#{charge_id}", "sk": "CHARGE"})
        return charge_from(item) if item else None

    def create_charge_put(self, c: Charge) -> Put:
        """The put that creates a charge only if its id (hence its hospital order number) is new."""
        return Put(self.table, charge_item(c), Cond.absent())

    def charge_put(self, c: Charge, expected_version: int) -> Put:
        """The conditional put that moves a charge from ``expected_version`` to ``c.version``."""
        return Put(self.table, charge_item(c), Cond.eq("version", expected_version))

    def refund_put(self, r: Refund, expected_version: int | None) -> Put:
        cond = Cond.absent() if expected_version is None else Cond.eq("version", expected_version)
        return Put(self.table, refund_item(r), cond)

    def commit(self, operations: Sequence[Operation]) -> None:
        """One put as a put, several as a transaction (a lone put costs less than a transaction)."""
        if len(operations) == 1 and isinstance(operations[0], Put):
            op = operations[0]
            self.documents.put(op.table, op.item, condition=op.condition)
        else:
            self.documents.transact(list(operations))

    def refunds(self, charge_id: str) -> list[Refund]:
        items = self._query_all(KeyCond.of("pk", f"CHG#{charge_id}").begins_with("sk", "REFUND#"))
        return [refund_from(i) for i in items]

    def refund(self, charge_id: str, refund_no: str) -> Refund | None:
        item = self.documents.get(self.table, {"pk": f"CHG#{charge_id}", "sk": f"REFUND#{refund_no}"})
        return refund_from(item) if item else None

    def due(self, until: float, limit: int = 100) -> list[dict[str, Any]]:
        """Pending charges and refunds whose next check is due (the sweeper's work list)."""
        key = KeyCond.of("sweep_pk", SWEEP_PARTITION).le("sweep_sk", now_iso(until) + "~")
        return self.documents.query(self.table, key, index=BY_SWEEP, limit=limit).items

    def reconciliation_items(self, channel: Channel, day: str) -> Iterator[dict[str, Any]]:
        yield from self._query_all(KeyCond.of("recon_pk", f"{channel.value}#{day}"), index=BY_RECON)

    # inbox
    def inbox_put(self, item: dict[str, Any]) -> Put:
        return Put(self.table, item, Cond.absent())

    # outbox (hospital webhook intents)
    def outbox_put(self, item: dict[str, Any]) -> Put:
        return Put(self.table, item, Cond.absent())

    def outbox(self, event_id: str) -> dict[str, Any] | None:
        return self.documents.get(self.table, {"pk": f"OUTBOX#{event_id}", "sk": "OUTBOX"})

    def outbox_due(self, until: float, limit: int = 100) -> list[dict[str, Any]]:
        """Intents still PENDING whose relay time has come, oldest first."""
        key = KeyCond.of("sweep_pk", OUTBOX_PARTITION).le("sweep_sk", now_iso(until) + "~")
        return self.documents.query(self.table, key, index=BY_SWEEP, limit=limit).items

    def outbox_queued(self, item: dict[str, Any], now: float) -> None:
        """The intent is on the webhook queue: out of the relay's index, kept a while for tracing."""
        done = {k: v for k, v in item.items() if k not in ("sweep_pk", "sweep_sk")}
        done.update(status="QUEUED", queued_at=now, expires_at=int(now) + OUTBOX_TTL)
        self.documents.put(self.table, done)

    def outbox_retry_at(self, item: dict[str, Any], due_at: float) -> None:
        """Queueing failed: try again at ``due_at`` (only while still PENDING: a concurrent dispatch may
        have queued it meanwhile)."""
        again = {
            **item,
            "relay_attempts": int(item.get("relay_attempts") or 0) + 1,
            "sweep_sk": f"{now_iso(due_at)}#{item['event_id']}",
        }
        self.documents.put(self.table, again, condition=Cond.eq("status", "PENDING"))

    # config
    def config(self, name: str) -> dict[str, Any] | None:
        return self.documents.get(self.table, {"pk": "CONFIG", "sk": name})

    def put_config(self, name: str, fields: dict[str, Any], *, only_if_absent: bool = False) -> None:
        self.documents.put(
            self.table, {"pk": "CONFIG", "sk": name, **fields}, condition=Cond.absent() if only_if_absent else None
        )

    def put_report(self, day: str, summary: dict[str, Any]) -> None:
        self.documents.put(self.table, {"pk": f"RECON#{day}", "sk": "REPORT", **summary})

    def report(self, day: str) -> dict[str, Any] | None:
        return self.documents.get(self.table, {"pk": f"RECON#{day}", "sk": "REPORT"})

    def _query_all(self, key: KeyCond, index: str | None = None) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.documents.query(self.table, key, index=index, limit=200, cursor=cursor)
            yield from page.items
            cursor = page.cursor
            if cursor is None:
                return
