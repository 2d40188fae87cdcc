"""Partner systems (hospital HIS, 医联, payment channels...) and their SM2 keys and address allowlists.

Table (one item per partner)::

    partition key  app_id (S)
    index by_kind  partition kind (S) = "partner", sort app_id (S)   -- for ``list``
    attributes     name, status, keys{serial: {public_key, status, created_at}}, allowed_cidrs,
                   settings, created_at, updated_at, version (N)

Every change is a read-modify-write guarded by ``Cond.eq("version", v)``; a lost race re-reads and
re-applies (bounded), so two admins editing one partner never silently overwrite each other.

Key rotation: ``rotate_key`` adds serial n+1 while older serials stay active, so the partner can switch
at its own pace; ``retire_key`` then turns the old serial off (KEY_UNKNOWN from then on).

Lookups during signature verification go through a small per-process cache (``lookup``, TTL 5 s):
a disable or key retirement reaches every warm container within that TTL.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bianjie.kit.crypto import CryptoError, Sm2PublicKey
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore, KeyCond
from bianjie.kit.errors import Conflict, NotFound, ValidationFailed
from bianjie.kit.timefmt import utc_iso

APP_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KIND = "partner"
INDEX_BY_KIND = "by_kind"
MAX_ATTEMPTS = 5


def normalise_public_key(value: str | Sm2PublicKey) -> str:
    """Accept hex ``04||X||Y`` or PEM; return lower-case hex ``04||X||Y``. 400 on anything else."""
    try:
        if isinstance(value, Sm2PublicKey):
            key = value
        elif "BEGIN" in value:
            key = Sm2PublicKey.from_pem(value)
        else:
            key = Sm2PublicKey.from_hex(value.strip())
        return key.to_hex()
    except (CryptoError, ValueError, TypeError) as exc:
        raise ValidationFailed(
            "public_key must be an SM2 public key: hex 04||X||Y (130 hex chars) or PEM",
            code="PUBLIC_KEY_INVALID",
        ) from exc


def normalise_cidrs(cidrs: Sequence[str]) -> list[str]:
    if isinstance(cidrs, str) or not cidrs:
        raise ValidationFailed(
            "allowed_cidrs needs at least one CIDR (use 0.0.0.0/0 and ::/0 explicitly to allow all)",
            code="CIDRS_INVALID",
        )
    out: list[str] = []
    for cidr in cidrs:
        try:
            net = str(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError as exc:
            raise ValidationFailed(f"not a CIDR: {cidr!r}", code="CIDRS_INVALID") from exc
        if net not in out:
            out.append(net)
    return out


class PartnerKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    public_key: str  # hex 04||X||Y
    status: Literal["active", "retired"] = "active"
    created_at: str
    retired_at: str | None = None


class Partner(BaseModel):
    model_config = ConfigDict(frozen=True)

    app_id: str
    name: str = Field(min_length=1, max_length=200)
    status: Literal["active", "disabled"] = "active"
    keys: dict[str, PartnerKey]
    allowed_cidrs: list[str] = Field(min_length=1)
    created_at: str
    updated_at: str
    settings: dict[str, Any] = Field(default_factory=dict)
    version: int = 1

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        if not APP_ID_RE.fullmatch(value):
            raise ValueError("app_id: 1-64 of [A-Za-z0-9_.-], starting with a letter or digit")
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @property
    def active(self) -> bool:
        return self.status == "active"

    def active_key(self, serial: str) -> PartnerKey | None:
        key = self.keys.get(serial)
        return key if key is not None and key.status == "active" else None

    def allows_ip(self, source_ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(source_ip.strip())
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # ::ffff:10.0.0.1 is the IPv4 client 10.0.0.1 behind a dual stack
        for cidr in self.allowed_cidrs:
            net = ipaddress.ip_network(cidr, strict=False)
            if addr.version == net.version and addr in net:
                return True
        return False

    def setting(self, service: str, name: str, default: Any = None) -> Any:
        return (self.settings.get(service) or {}).get(name, default)


class PartnerPage(BaseModel):
    items: list[Partner]
    cursor: str | None


class PartnerRegistry:
    def __init__(
        self,
        store: DocumentStore,
        table: str,
        clock: Callable[[], float] = time.time,
        *,
        cache_ttl: float = 5.0,
        cache_size: int = 1024,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._table = table
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, Partner | None]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ reads

    def get(self, app_id: str) -> Partner | None:
        """Read through to the store (admin paths); ``lookup`` is the cached read for verification."""
        if not APP_ID_RE.fullmatch(app_id):
            return None
        item = self._store.get(self._table, {"app_id": app_id})
        return None if item is None else _from_item(item)

    def require(self, app_id: str) -> Partner:
        partner = self.get(app_id)
        if partner is None:
            raise NotFound(f"no partner {app_id!r}", code="APP_UNKNOWN")
        return partner

    def lookup(self, app_id: str) -> Partner | None:
        """Cached ``get``; unknown ids are cached too, so made-up ids cost one read per id per TTL."""
        now = self._monotonic()
        with self._lock:
            hit = self._cache.get(app_id)
            if hit is not None and hit[0] > now:
                return hit[1]
        partner = self.get(app_id)
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()  # crude bound; partners are few, so this only trips under abuse
            self._cache[app_id] = (now + self._cache_ttl, partner)
        return partner

    def invalidate(self, app_id: str | None = None) -> None:
        with self._lock:
            if app_id is None:
                self._cache.clear()
            else:
                self._cache.pop(app_id, None)

    def list(self, limit: int = 50, cursor: str | None = None) -> PartnerPage:
        page = self._store.query(self._table, KeyCond.of("kind", KIND), index=INDEX_BY_KIND, limit=limit, cursor=cursor)
        items = []
        for item in page.items:
            # indexes may project keys only; read the full item in that case
            full = item if "keys" in item else self._store.get(self._table, {"app_id": item["app_id"]})
            if full is not None:
                items.append(_from_item(full))
        return PartnerPage(items=items, cursor=page.cursor)

    def list_all(self, page_size: int = 100) -> Iterator[Partner]:
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor)
            yield from page.items
            cursor = page.cursor
            if cursor is None:
                return

    # ------------------------------------------------------------ writes

    def add(
        self,
        app_id: str,
        name: str,
        public_key: str | Sm2PublicKey,
        cidrs: Sequence[str],
        settings: dict[str, Any] | None = None,
    ) -> str:
        """Register a partner; returns its first key serial, "1". 409 APP_EXISTS if the id is taken."""
        if not APP_ID_RE.fullmatch(app_id):
            raise ValidationFailed(
                "app_id: 1-64 of [A-Za-z0-9_.-], starting with a letter or digit", code="APP_ID_INVALID"
            )
        now = utc_iso(self._clock())
        partner = Partner(
            app_id=app_id,
            name=name,
            keys={"1": PartnerKey(public_key=normalise_public_key(public_key), created_at=now)},
            allowed_cidrs=normalise_cidrs(cidrs),
            created_at=now,
            updated_at=now,
            settings=settings or {},
            version=1,
        )
        try:
            self._store.put(self._table, _to_item(partner), condition=Cond.absent())
        except ConditionFailed as exc:
            raise Conflict(f"partner {app_id!r} already exists", code="APP_EXISTS") from exc
        self.invalidate(app_id)
        return "1"

    def disable(self, app_id: str) -> Partner:
        return self._update(app_id, lambda p, now: {"status": "disabled"})

    def enable(self, app_id: str) -> Partner:
        return self._update(app_id, lambda p, now: {"status": "active"})

    def rename(self, app_id: str, name: str) -> Partner:
        return self._update(app_id, lambda p, now: {"name": name})

    def set_cidrs(self, app_id: str, cidrs: Sequence[str]) -> Partner:
        cleaned = normalise_cidrs(cidrs)
        return self._update(app_id, lambda p, now: {"allowed_cidrs": cleaned})

    def set_setting(self, app_id: str, service: str, name: str, value: Any) -> Partner:
        """Per-service partner settings (e.g. ``film`` / ``max_link_ttl``); ``value=None`` removes one."""

        def change(p: Partner, now: str) -> dict[str, Any]:
            settings = {k: dict(v) for k, v in p.settings.items()}
            section = settings.setdefault(service, {})
            if value is None:
                section.pop(name, None)
            else:
                section[name] = value
            return {"settings": settings}

        return self._update(app_id, change)

    def rotate_key(self, app_id: str, public_key: str | Sm2PublicKey) -> str:
        """Add a new key; returns its serial. Older serials stay active until ``retire_key``."""
        hex_key = normalise_public_key(public_key)
        box: dict[str, str] = {}

        def change(p: Partner, now: str) -> dict[str, Any]:
            if any(k.public_key == hex_key for k in p.keys.values()):
                raise Conflict("this public key is already registered for the partner", code="KEY_EXISTS")
            serial = str(max(int(s) for s in p.keys) + 1)
            box["serial"] = serial
            return {"keys": {**p.keys, serial: PartnerKey(public_key=hex_key, created_at=now)}}

        self._update(app_id, change)
        return box["serial"]

    def retire_key(self, app_id: str, serial: str) -> Partner:
        """Turn a serial off. The last active key cannot be retired: disable the app instead."""

        def change(p: Partner, now: str) -> dict[str, Any]:
            key = p.keys.get(serial)
            if key is None:
                raise NotFound(f"partner {app_id!r} has no key serial {serial!r}", code="KEY_UNKNOWN")
            if key.status == "retired":
                return {}
            if not any(s != serial and k.status == "active" for s, k in p.keys.items()):
                raise Conflict(
                    "cannot retire the last active key; rotate first or disable the app",
                    code="LAST_ACTIVE_KEY",
                )
            retired = key.model_copy(update={"status": "retired", "retired_at": now})
            return {"keys": {**p.keys, serial: retired}}

        return self._update(app_id, change)

    def _update(self, app_id: str, change: Callable[[Partner, str], dict[str, Any]]) -> Partner:
        for _ in range(MAX_ATTEMPTS):
            current = self.require(app_id)
            now = utc_iso(self._clock())
            updates = change(current, now)
            if not updates:
                return current
            updated = Partner.model_validate(
                {**current.model_dump(), **_dump(updates), "updated_at": now, "version": current.version + 1}
            )
            try:
                self._store.put(self._table, _to_item(updated), condition=Cond.eq("version", current.version))
            except ConditionFailed:
                continue  # someone else changed it between our read and write; re-apply on fresh state
            self.invalidate(app_id)
            return updated
        raise Conflict(f"partner {app_id!r} is being changed concurrently; retry", code="CONCURRENT_UPDATE")


def _dump(updates: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in updates.items():
        if key == "keys":
            out[key] = {s: (k.model_dump() if isinstance(k, PartnerKey) else k) for s, k in value.items()}
        else:
            out[key] = value
    return out


def _to_item(partner: Partner) -> dict[str, Any]:
    item = partner.model_dump(mode="json")
    item["kind"] = KIND
    return item


def _from_item(item: dict[str, Any]) -> Partner:
    data = {k: v for k, v in item.items() if k != "kind"}
    return Partner.model_validate(data)
