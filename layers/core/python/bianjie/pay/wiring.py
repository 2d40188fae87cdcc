"""Builds the pay service from the environment (template.yaml sets every variable used here).

Each channel's config record (PAY_TABLE, ``CONFIG`` / ``CHANNEL#<channel>``) says how it is reached:
- ``mode: http``: over HTTPS at its ``base_url`` with the keys the channel issued;
- ``mode: standin``: a ``StandinChannel`` in this process, through the same protocol adapter.
Where ``bianjie.kit.standins.use_standin("pay.channels")`` (the local stage's default) a channel without a
record gets a stand-in on first use: credentials for both sides are generated and kept (keys
field-encrypted) in PAY_TABLE and PAY_STANDIN_TABLE, so every function of the stack agrees. Other stages
never do that, and a record with ``mode: standin`` there is a configuration error.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from bianjie.kit import deps
from bianjie.kit.config import env, require_env, scope_cached
from bianjie.kit.crypto import Sm2PrivateKey, Sm2PublicKey, sm2_generate_key
from bianjie.kit.documents.port import Cond, ConditionFailed, Put, TransactionCanceled
from bianjie.kit.standins import require_local, use_standin
from bianjie.pay.agreements import AgreementService
from bianjie.pay.api import charge_view
from bianjie.pay.callbacks import CallbackService
from bianjie.pay.channels import ChannelConfig, InProcessTransport, ProtocolChannel
from bianjie.pay.charges import ChargeService
from bianjie.pay.models import Channel
from bianjie.pay.reconcile import ObjectReportSink, Reconciler
from bianjie.pay.store import PayStore
from bianjie.pay.webhooks import PayEvents, WebhookSender

if TYPE_CHECKING:
    from bianjie_dev.pay.standin import StandinChannel

CONFIG_TTL = 60.0
_lock = threading.RLock()


def _configs() -> dict[str, Any]:
    """Channel configurations, cached per function (built with its own store and credentials)."""
    return scope_cached("pay.channel_configs", lambda: {"at": 0.0, "values": None})


def _standins() -> dict[Channel, StandinChannel]:
    return scope_cached("pay.standins", dict)


def standins_allowed() -> bool:
    return use_standin("pay.channels")


@deps.singleton
def pay_store() -> PayStore:
    return PayStore(deps.documents(), deps.table("PAY_TABLE"))


@deps.singleton
def pay_audit() -> Any:
    from bianjie.kit.audit import AuditLog

    # sharded: 200 concurrent charges appending to one chain head would serialise on it
    return AuditLog(deps.documents(), deps.table("AUDIT_TABLE"), service="pay", shards=8)


# ---------------------------------------------------------------- channel credentials


def _ctx(channel: Channel, what: str) -> str:
    return f"pay/channel/{channel.value}/{what}"


def _merchant_item(values: dict[str, Any]) -> dict[str, Any]:
    cipher = deps.field_cipher()
    channel = Channel(values["channel"])
    return {
        "channel": channel.value,
        "merchant_id": values["merchant_id"],
        "mode": values.get("mode", "standin"),
        "base_url": values.get("base_url"),
        "our_serial": values["our_serial"],
        "our_private_key_enc": cipher.encrypt(values["our_private_key"], _ctx(channel, "our_private_key")),
        "channel_keys": values["channel_keys"],
        "api_key_enc": cipher.encrypt(values["api_key"], _ctx(channel, "api_key")),
    }


def _standin_item(values: dict[str, Any]) -> dict[str, Any]:
    cipher = deps.field_cipher()
    channel = Channel(values["channel"])
    return {
        "pk": f"CONFIG#{channel.value}",
        "sk": "CONFIG",
        "channel": channel.value,
        "merchant_id": values["merchant_id"],
        "serial": values["serial"],
        "private_key_enc": cipher.encrypt(values["private_key"], _ctx(channel, "standin_private_key")),
        "merchant_keys": values["merchant_keys"],
        "api_key_enc": cipher.encrypt(values["api_key"], _ctx(channel, "standin_api_key")),
    }


def provision_standins() -> None:
    """Create stand-in credentials for every channel that has none (idempotent, race-safe)."""
    from bianjie_dev.pay import standin as standin_mod  # development tooling: loaded only on the local stage

    store = pay_store()
    table = deps.table("PAY_STANDIN_TABLE")
    for channel in Channel:
        if store.config(f"CHANNEL#{channel.value}") is not None:
            continue
        merchant, channel_side = standin_mod.new_identity_pair(channel)
        ops = [
            Put(
                store.table,
                {"pk": "CONFIG", "sk": f"CHANNEL#{channel.value}", **_merchant_item(merchant)},
                Cond.absent(),
            ),
            Put(table, _standin_item(channel_side), Cond.absent()),
        ]
        with contextlib.suppress(TransactionCanceled):  # another process provisioned it first
            deps.documents().transact(ops)


def channel_configs(refresh: bool = False) -> dict[Channel, ChannelConfig]:
    with _lock:
        cached = _configs()
        if not refresh and cached["values"] is not None and time.monotonic() - cached["at"] < CONFIG_TTL:
            return cached["values"]
        if standins_allowed():
            provision_standins()
        cipher = deps.field_cipher()
        store = pay_store()
        found: dict[Channel, ChannelConfig] = {}
        for channel in Channel:
            item = store.config(f"CHANNEL#{channel.value}")
            if item is None:
                continue
            found[channel] = ChannelConfig(
                channel=channel,
                merchant_id=item["merchant_id"],
                mode=item.get("mode", "standin"),
                base_url=item.get("base_url"),
                our_serial=item["our_serial"],
                our_private_key=Sm2PrivateKey.from_hex(
                    cipher.decrypt(item["our_private_key_enc"], _ctx(channel, "our_private_key"))
                ),
                channel_keys={s: Sm2PublicKey.from_hex(k) for s, k in item["channel_keys"].items()},
                api_key=bytes.fromhex(cipher.decrypt(item["api_key_enc"], _ctx(channel, "api_key"))),
            )
        _configs().update(at=time.monotonic(), values=found)
        return found


def reset() -> None:
    with _lock:
        _configs().update(at=0.0, values=None)
        _standins().clear()


# ---------------------------------------------------------------- stand-ins


def standins() -> dict[Channel, StandinChannel]:
    with _lock:
        built = _standins()
        if built:
            return dict(built)
        from bianjie_dev.pay import standin as standin_mod  # only channels configured `mode: standin` get here

        table = deps.table("PAY_STANDIN_TABLE")
        outbox = deps.queue("PAY_STANDIN_NOTIFY_QUEUE")
        cipher = deps.field_cipher()
        for channel in Channel:
            item = deps.documents().get(table, {"pk": f"CONFIG#{channel.value}", "sk": "CONFIG"})
            if item is None:
                continue
            identity = standin_mod.identity_from(
                {
                    **item,
                    "private_key": cipher.decrypt(item["private_key_enc"], _ctx(channel, "standin_private_key")),
                    "api_key": cipher.decrypt(item["api_key_enc"], _ctx(channel, "standin_api_key")),
                }
            )
            double = standin_mod.StandinChannel(
                identity, deps.documents(), table, outbox, delay_ms=int(env("PAY_STANDIN_DELAY_MS", "0") or 0)
            )
            double.async_delay = int(env("PAY_STANDIN_ASYNC_SECONDS", str(standin_mod.ASYNC_DELAY_SECONDS)) or 2)
            built[channel] = double
        return dict(built)


def channels() -> dict[Channel, ProtocolChannel]:
    configs = channel_configs()
    built: dict[Channel, ProtocolChannel] = {}
    doubles = standins() if any(c.mode == "standin" for c in configs.values()) else {}
    for channel, config in configs.items():
        if config.mode == "standin":
            require_local("pay.channels")
            if channel not in doubles:
                continue
            transport: Any = InProcessTransport(doubles[channel].handle)
        else:
            if not config.base_url:
                continue
            from bianjie.pay.adapters.http import HttpTransport

            transport = HttpTransport(config.base_url)
        built[channel] = ProtocolChannel(config, transport)
    return built


# ---------------------------------------------------------------- services


def agreements() -> AgreementService:
    return AgreementService(pay_store(), channels(), deps.field_cipher(), deps.blind_index(), pay_audit())


def webhook_outbox() -> PayEvents:
    """Final states through pay's outbox: hospital webhooks (``PAY_WEBHOOK_QUEUE``) and domain events."""
    return PayEvents(
        deps.outbox("pay", webhooks="PAY_WEBHOOK_QUEUE"),
        lambda c: charge_view(c).model_dump(mode="json", by_alias=True),
    )


def charges() -> ChargeService:
    return ChargeService(
        pay_store(),
        agreements(),
        channels(),
        webhook_outbox(),
        pay_audit(),
        deps.blind_index(),
        budget_seconds=float(env("PAY_CHARGE_BUDGET_SECONDS", "3") or 3),
        idempotency=deps.idempotency(),
    )


def callbacks() -> CallbackService:
    return CallbackService(pay_store(), lambda ch: channel_configs().get(ch), charges(), agreements())


def reconciler() -> Reconciler:
    return Reconciler(pay_store(), channels(), report_sink())


def report_sink() -> ObjectReportSink:
    return ObjectReportSink(deps.objects(), require_env("PAY_REPORTS_BUCKET"))


def webhook_key() -> tuple[str, Sm2PrivateKey]:
    """Our SM2 key for hospital webhooks, created on first use (serial "1")."""
    store = pay_store()
    cipher = deps.field_cipher()
    item = store.config("WEBHOOK_KEY")
    if item is None:
        key = sm2_generate_key()
        with contextlib.suppress(ConditionFailed):  # lost the race: read the winner's key
            store.put_config(
                "WEBHOOK_KEY",
                {
                    "serial": "1",
                    "private_key_enc": cipher.encrypt(key.to_hex(), "pay/webhook_key/1"),
                    "public_key": key.public_key.to_hex(),
                },
                only_if_absent=True,
            )
        item = store.config("WEBHOOK_KEY")
        assert item is not None
    return str(item["serial"]), Sm2PrivateKey.from_hex(cipher.decrypt(item["private_key_enc"], "pay/webhook_key/1"))


def webhook_sender() -> WebhookSender:
    from bianjie.pay.adapters.http import http_post

    serial, key = webhook_key()
    return WebhookSender(key, serial, deps.queue("PAY_WEBHOOK_QUEUE"), deps.queue("PAY_WEBHOOK_DLQ"), http_post)


def callback_base() -> str:
    """Where stand-in callbacks go: the gateway serving this stack (stand-in only)."""
    return env("PAY_STANDIN_CALLBACK_BASE") or f"http://127.0.0.1:{env('BIANJIE_PORT', '3000')}"


def duplicate_rate() -> float:
    return float(env("PAY_STANDIN_DUPLICATE_RATE", "0.2") or 0.2)


def post_callback(path: str, headers: dict[str, str], body: bytes) -> int:
    """STAND-IN: a channel POSTing a callback to our gateway."""
    from bianjie.pay.adapters.http import http_post

    return http_post(callback_base() + path, headers, body, 5.0)
