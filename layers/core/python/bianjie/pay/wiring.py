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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from bianjie.kit import deps
from bianjie.kit.config import carry_scope, env, process_cached, require_env, scope_cached
from bianjie.kit.crypto import Sm2PrivateKey, Sm2PublicKey, sm2_generate_key
from bianjie.kit.documents.port import Cond, ConditionFailed, Put, TransactionCanceled
from bianjie.kit.standins import LOCAL_STAGE, require_local, stage, use_standin
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
    return AuditLog(deps.documents(), deps.table("AUDIT_TABLE"), service="pay", shards=16)


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
    # fast path without the lock: every request asks, and one process-wide lock around the cached value
    # was a hot spot under 200 concurrent charges (the profile in docs/performance.md, issue 11)
    cached = _configs()
    values = cached["values"]
    if not refresh and values is not None and time.monotonic() - cached["at"] < CONFIG_TTL:
        return values
    with _lock:
        if not refresh and cached["values"] is not values and cached["values"] is not None:
            return cached["values"]  # another thread refreshed it meanwhile
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
        if values is not None and _same_configs(values, found):
            found = values  # unchanged: keep the object, so the channels and services built on it stay
        cached.update(at=time.monotonic(), values=found)
        return found


def _same_configs(a: dict[Channel, ChannelConfig], b: dict[Channel, ChannelConfig]) -> bool:
    def facts(c: ChannelConfig) -> tuple[Any, ...]:
        keys = tuple(sorted((s, k.to_hex()) for s, k in c.channel_keys.items()))
        return (c.merchant_id, c.mode, c.base_url, c.our_serial, c.our_private_key.to_hex(), keys, c.api_key)

    return a.keys() == b.keys() and all(facts(a[ch]) == facts(b[ch]) for ch in a)


# ---------------------------------------------------------------- operators: a real channel's keys


def register_channel(
    channel: Channel,
    *,
    merchant_id: str,
    base_url: str,
    our_serial: str,
    our_private_key: Sm2PrivateKey,
    channel_keys: dict[str, Sm2PublicKey],
    api_key: bytes,
) -> dict[str, Any]:
    """Write (or replace) a channel's config record: ``mode: http`` at ``base_url`` with the keys the
    channel issued. Our private key and the resource-encryption key are field-encrypted; every process
    picks the record up within ``CONFIG_TTL`` seconds. Returns what ``describe_channels`` shows."""
    if not base_url.startswith("https://") and not (standins_allowed() and base_url.startswith("http://")):
        raise ValueError("a channel's base URL must be https:// (plain http only for a stand-in on the local stage)")
    if not channel_keys:
        raise ValueError("at least one channel public key (serial -> key) is needed to verify its answers")
    if len(api_key) != 16:
        raise ValueError("the resource-encryption (API) key is 16 bytes (SM4-GCM)")
    item = _merchant_item(
        {
            "channel": channel.value,
            "merchant_id": merchant_id,
            "mode": "http",
            "base_url": base_url.rstrip("/"),
            "our_serial": our_serial,
            "our_private_key": our_private_key.to_hex(),
            "channel_keys": {s: k.to_hex() for s, k in channel_keys.items()},
            "api_key": api_key.hex(),
        }
    )
    pay_store().put_config(f"CHANNEL#{channel.value}", item)
    reset()
    return describe_channels()[channel.value]


def rotate_channel(
    channel: Channel,
    *,
    our_serial: str | None = None,
    our_private_key: Sm2PrivateKey | None = None,
    add_channel_keys: dict[str, Sm2PublicKey] | None = None,
    drop_channel_serials: tuple[str, ...] = (),
    api_key: bytes | None = None,
    merchant_id: str | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """Change some of a registered channel's keys. A channel rotating its own key publishes the new one
    first: add it (both verify for a while), then drop the old serial once it no longer signs."""
    configs = channel_configs(refresh=True)
    current = configs.get(channel)
    if current is None:
        raise KeyError(f"{channel.value} is not registered")
    if (our_serial is None) != (our_private_key is None):
        raise ValueError("a new signing key needs its serial (the one registered with the channel), and the reverse")
    keys = {**current.channel_keys, **(add_channel_keys or {})}
    for serial in drop_channel_serials:
        keys.pop(serial, None)
    return register_channel(
        channel,
        merchant_id=merchant_id or current.merchant_id,
        base_url=base_url or current.base_url or "",
        our_serial=our_serial or current.our_serial,
        our_private_key=our_private_key or current.our_private_key,
        channel_keys=keys,
        api_key=api_key or current.api_key,
    )


def describe_channels() -> dict[str, dict[str, Any]]:
    """Each configured channel without its secrets: merchant, mode, URL, serials, our public key."""
    return {
        channel.value: {
            "merchant_id": config.merchant_id,
            "mode": config.mode,
            "base_url": config.base_url,
            "our_serial": config.our_serial,
            "our_public_key": config.our_private_key.public_key.to_hex(),
            "channel_key_serials": sorted(config.channel_keys),
        }
        for channel, config in channel_configs(refresh=True).items()
    }


def reset() -> None:
    with _lock:
        _configs().update(at=0.0, values=None)
        _standins().clear()
        _built().clear()


def _built() -> dict[str, Any]:
    """Services built on one generation of the channel configs (rebuilt when the configs change)."""
    return scope_cached("pay.built", dict)


def _on_configs(name: str, build: Any) -> Any:
    configs = channel_configs()
    built = _built()
    entry = built.get(name)
    if entry is not None and entry[0] is configs:
        return entry[1]
    value = build()
    built[name] = (configs, value)
    return value


# ---------------------------------------------------------------- stand-ins


def standin_identity(channel: Channel) -> Any:
    """A stand-in channel's own identity (its key, our keys it trusts, the resource key), or None."""
    from bianjie_dev.pay import standin as standin_mod  # only stand-in deployments get here

    cipher = deps.field_cipher()
    item = deps.documents().get(deps.table("PAY_STANDIN_TABLE"), {"pk": f"CONFIG#{channel.value}", "sk": "CONFIG"})
    if item is None:
        return None
    return standin_mod.identity_from(
        {
            **item,
            "private_key": cipher.decrypt(item["private_key_enc"], _ctx(channel, "standin_private_key")),
            "api_key": cipher.decrypt(item["api_key_enc"], _ctx(channel, "standin_api_key")),
        }
    )


def standins() -> dict[Channel, StandinChannel]:
    with _lock:
        built = _standins()
        if built:
            return dict(built)
        from bianjie_dev.pay import standin as standin_mod  # only channels configured `mode: standin` get here

        table = deps.table("PAY_STANDIN_TABLE")
        outbox = deps.queue("PAY_STANDIN_NOTIFY_QUEUE")
        for channel in Channel:
            identity = standin_identity(channel)
            if identity is None:
                continue
            double = standin_mod.StandinChannel(
                identity, deps.documents(), table, outbox, delay_ms=int(env("PAY_STANDIN_DELAY_MS", "0") or 0)
            )
            double.async_delay = int(env("PAY_STANDIN_ASYNC_SECONDS", str(standin_mod.ASYNC_DELAY_SECONDS)) or 2)
            built[channel] = double
        return dict(built)


def channels() -> dict[Channel, ProtocolChannel]:
    return _on_configs("channels", _build_channels)


def _build_channels() -> dict[Channel, ProtocolChannel]:
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
    return _on_configs("agreements", _build_agreements)


def _build_agreements() -> AgreementService:
    return AgreementService(pay_store(), channels(), deps.field_cipher(), deps.blind_index(), pay_audit())


def webhook_outbox() -> PayEvents:
    """Final states through pay's outbox: hospital webhooks (``PAY_WEBHOOK_QUEUE``) and domain events."""
    mode = dispatch_mode()
    return PayEvents(
        deps.outbox("pay", webhooks="PAY_WEBHOOK_QUEUE"),
        lambda c: charge_view(c).model_dump(mode="json", by_alias=True),
        background=_dispatcher() if mode == "background" else None,
        relay_only=mode == "relay",
    )


DISPATCH_MODES = ("inline", "background", "relay")


def dispatch_mode() -> str:
    """``PAY_DISPATCH`` = ``inline`` | ``background`` | ``relay``; by default inline on Lambda (its
    environment freezes after the answer), in the background everywhere else (on premises, the local stack).

    ``relay``: the request never sends; the intents it commits with the transition are left PENDING and
    due at once, for the relay (``PayWebhookRelayFunction``, ``bianjie pay outbox --relay``, or an event
    pump reading the outbox) to send to whatever sinks the deployment's outbox backend names
    (``BIANJIE_OUTBOX_BACKEND``, ``bianjie.kit.deps.register_outbox_backend``). On premises this keeps
    the topic and queues off the charge's path and out of the gateway workers' CPU entirely."""
    mode = (env("PAY_DISPATCH") or "").lower()
    if mode in DISPATCH_MODES:
        return mode
    if mode:
        raise RuntimeError(f"PAY_DISPATCH={mode!r}: one of {', '.join(DISPATCH_MODES)}")
    return "inline" if env("AWS_LAMBDA_RUNTIME_API") else "background"


def dispatch_in_background() -> bool:
    return dispatch_mode() == "background"


def _dispatcher() -> Callable[[Callable[[], Any]], Any]:
    pool = process_cached("pay.dispatch_pool", lambda: ThreadPoolExecutor(4, thread_name_prefix="pay-dispatch"))

    def submit(job: Callable[[], Any]) -> Any:
        return pool.submit(carry_scope(job))

    return submit


def charges() -> ChargeService:
    return _on_configs("charges", _build_charges)


def _build_charges() -> ChargeService:
    return ChargeService(
        pay_store(),
        agreements(),
        channels(),
        webhook_outbox(),
        pay_audit(),
        deps.blind_index(),
        budget_seconds=float(env("PAY_CHARGE_BUDGET_SECONDS", "3") or 3),
        idempotency=deps.idempotency(),
        notify_check=_notify_check,
    )


def _notify_check(url: str, hospital: Any) -> None:
    from bianjie.pay.adapters.notify_url import check_notify_url

    check_notify_url(url, hospital, local=stage() == LOCAL_STAGE)


def callbacks() -> CallbackService:
    return _on_configs("callbacks", _build_callbacks)


def _build_callbacks() -> CallbackService:
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
    from bianjie.pay.adapters.notify_url import guarded_post

    serial, key = webhook_key()
    post = http_post if stage() == LOCAL_STAGE else guarded_post(http_post)  # re-checks addresses (rebinding)
    return WebhookSender(key, serial, deps.queue("PAY_WEBHOOK_QUEUE"), deps.queue("PAY_WEBHOOK_DLQ"), post)


def callback_base() -> str:
    """Where stand-in callbacks go: the gateway serving this stack (stand-in only)."""
    return env("PAY_STANDIN_CALLBACK_BASE") or f"http://127.0.0.1:{env('BIANJIE_PORT', '3000')}"


def duplicate_rate() -> float:
    return float(env("PAY_STANDIN_DUPLICATE_RATE", "0.2") or 0.2)


def post_callback(path: str, headers: dict[str, str], body: bytes) -> int:
    """STAND-IN: a channel POSTing a callback to our gateway."""
    from bianjie.pay.adapters.http import http_post

    return http_post(callback_base() + path, headers, body, 5.0)
