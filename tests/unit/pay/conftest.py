"""An in-memory pay world: memory documents store, real crypto, stand-in channels behind the real protocol
adapter (in-process), list queues for the stand-in outbox and the webhook outbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from bianjie.kit.actor import Actor
from bianjie.kit.audit import AuditLog
from bianjie.kit.crypto import Sm2PrivateKey, Sm2PublicKey
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.fieldcrypt import BlindIndex, FieldCipher
from bianjie.kit.keys import LocalKeyPort
from bianjie.kit.tables import table_spec
from bianjie.pay.agreements import AgreementService
from bianjie.pay.api import charge_view
from bianjie.pay.callbacks import CallbackService
from bianjie.pay.channels import (
    ChannelConfig,
    ChannelUnknown,
    InProcessTransport,
    ProtocolChannel,
    WireResponse,
)
from bianjie.pay.charges import ChargeRequest, ChargeService
from bianjie.pay.models import Channel
from bianjie.pay.reconcile import Reconciler
from bianjie.pay.store import PayStore
from bianjie.pay.webhooks import WebhookOutbox
from bianjie_dev.pay import standin

HOSPITAL = Actor.partner("hospital-1")


def patient(patient_id: str) -> Actor:
    return Actor(kind="patient", id=patient_id)


class Clock:
    def __init__(self) -> None:
        self.t = time.time()  # near real time: signatures carry timestamps checked against a window

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class ListQueue:
    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], int]] = []
        self.down = False  # set to make every send fail, as an unreachable SQS endpoint does

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        if self.down:
            raise ConnectionError("queue unreachable (injected)")
        self.messages.append((message, delay_seconds))

    def take(self) -> list[dict[str, Any]]:
        taken = [m for m, _ in self.messages]
        self.messages.clear()
        return taken


class Sink:
    def __init__(self) -> None:
        self.reports: dict[str, dict[str, Any]] = {}

    def write(self, day: str, report: dict[str, Any]) -> str:
        self.reports[day] = report
        return f"memory://{day}"


class FlakyTransport:
    """Wraps a transport: ``fail_ops`` maps an operation path to how many calls to fail (no answer)."""

    def __init__(self, inner: InProcessTransport) -> None:
        self.inner = inner
        self.fail_ops: dict[str, int] = {}
        self.calls: list[str] = []
        self.rewrite: Callable[[str, WireResponse], WireResponse] | None = None

    def send(self, path: str, headers: dict[str, str], body: bytes, timeout: float) -> WireResponse:
        self.calls.append(path)
        if self.fail_ops.get(path, 0) > 0:
            self.fail_ops[path] -= 1
            raise ChannelUnknown("injected timeout")
        response = self.inner.send(path, headers, body, timeout)
        return self.rewrite(path, response) if self.rewrite else response


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.docs = MemoryDocumentStore(
            table_spec("PAY_TABLE", "pay"),
            table_spec("PAY_STANDIN_TABLE", "standin"),
            table_spec("AUDIT_TABLE", "audit"),
            clock=self.clock,
        )
        self.store = PayStore(self.docs, "pay")
        self.cipher = FieldCipher(LocalKeyPort(b"m" * 16))
        self.index = BlindIndex(b"i" * 32)
        self.audit = AuditLog(self.docs, "audit", self.clock, service="pay", shards=8, sleep=lambda s: None)
        self._orders = 0
        self.outbox = ListQueue()
        self.webhooks = ListQueue()
        self.sink = Sink()
        self.configs: dict[Channel, ChannelConfig] = {}
        self.standins: dict[Channel, standin.StandinChannel] = {}
        self.transports: dict[Channel, FlakyTransport] = {}
        self.channels: dict[Channel, ProtocolChannel] = {}
        for channel in Channel:
            merchant, side = standin.new_identity_pair(channel)
            self.configs[channel] = ChannelConfig(
                channel=channel,
                merchant_id=merchant["merchant_id"],
                mode="standin",
                base_url=None,
                our_serial="1",
                our_private_key=Sm2PrivateKey.from_hex(merchant["our_private_key"]),
                channel_keys={s: Sm2PublicKey.from_hex(k) for s, k in merchant["channel_keys"].items()},
                api_key=bytes.fromhex(merchant["api_key"]),
            )
            self.standins[channel] = standin.StandinChannel(
                standin.identity_from(side), self.docs, "standin", self.outbox, clock=self.clock, sleep=lambda s: None
            )
            self.transports[channel] = FlakyTransport(InProcessTransport(self.standins[channel].handle))
            self.channels[channel] = ProtocolChannel(self.configs[channel], self.transports[channel], clock=self.clock)
        self.agreements = AgreementService(self.store, self.channels, self.cipher, self.index, self.audit, self.clock)
        self.outbox_port = WebhookOutbox(
            self.store, self.webhooks, lambda c: charge_view(c).model_dump(mode="json", by_alias=True), self.clock
        )
        self.charges = ChargeService(
            self.store,
            self.agreements,
            self.channels,
            self.outbox_port,
            self.audit,
            self.index,
            clock=self.clock,
        )
        self.callbacks = CallbackService(self.store, self.configs.get, self.charges, self.agreements, self.clock)
        self.reconciler = Reconciler(self.store, self.channels, self.sink, self.clock)

    def charge(self, patient: str, amount: int = 1000, order_no: str | None = None, notify: bool = True) -> Any:
        self._orders += 1
        order = order_no or f"INV{self._orders}-{time.monotonic_ns()}"
        return self.charges.create(
            HOSPITAL,
            ChargeRequest(order, patient, amount, "门诊", "https://his.example/notify" if notify else None),
        )

    def audit_records(self) -> list[Any]:
        """Every pay audit record, chains verified intact on the way."""
        records = []
        for chain in self.audit.chains("pay"):
            assert self.audit.verify(chain).ok
            records.extend(self.audit.records(chain))
        return records

    def outbox_items(self) -> list[dict[str, Any]]:
        """Every webhook intent in the pay table (PENDING and QUEUED)."""
        return [i for (pk, _), i in self.docs._tables["pay"].items.items() if str(pk).startswith("OUTBOX#")]

    def notifications(self) -> list[tuple[Channel, dict[str, str], bytes]]:
        """Settle what is pending and render every queued callback (signed, sealed), in queue order."""
        rendered = []
        for _ in range(3):
            for message in self.outbox.take():
                channel = Channel(message["channel"])
                if message["kind"] == "settle":
                    self.standins[channel].settle(message["out_trade_no"])
                    continue
                headers, body = self.standins[channel].notification(
                    message["notify_id"], message["event_type"], message["resource"]
                )
                rendered.append((channel, headers, body))
        return rendered


@pytest.fixture
def world() -> World:
    return World()
