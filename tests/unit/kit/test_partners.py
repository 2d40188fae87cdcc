"""Partner registry: validation, paging, rotation rules, optimistic concurrency."""

from __future__ import annotations

import threading

import pytest
from bianjie.kit.crypto import sm2_generate_key
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.documents.port import ConditionFailed
from bianjie.kit.errors import AppError
from bianjie.kit.partners import Partner, PartnerRegistry
from bianjie.kit.tables import table_spec

from tests.fakes import Clock

NOW = 1_767_225_600


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(clock: Clock) -> MemoryDocumentStore:
    return MemoryDocumentStore(table_spec("PARTNERS_TABLE", "partners"), clock=clock)


@pytest.fixture
def reg(store: MemoryDocumentStore, clock: Clock) -> PartnerRegistry:
    return PartnerRegistry(store, "partners", clock=clock)


@pytest.fixture(scope="module")
def pub() -> str:
    return sm2_generate_key().public_key.to_hex()


def code_of(fn, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(AppError) as err:
        fn(*args, **kwargs)
    return err.value.status, err.value.code


def test_add_and_get(reg: PartnerRegistry, pub: str) -> None:
    assert reg.add("his-1", "某某医院 HIS", pub.upper(), ["10.0.0.1/8", "2001:db8::/32"]) == "1"
    p = reg.get("his-1")
    assert isinstance(p, Partner)
    assert p.status == "active" and p.version == 1
    assert p.keys["1"].public_key == pub  # normalised to lower-case hex
    assert p.keys["1"].status == "active"
    assert p.allowed_cidrs == ["10.0.0.0/8", "2001:db8::/32"]  # host bits dropped
    assert p.created_at == p.updated_at == "2026-01-01T00:00:00Z"
    assert reg.get("nobody") is None
    assert reg.get("bad id with spaces") is None


def test_add_accepts_pem_and_bare_xy(reg: PartnerRegistry) -> None:
    key = sm2_generate_key().public_key
    reg.add("a1", "A", key.to_pem(), ["0.0.0.0/0"])
    reg.add("a2", "B", key.to_hex()[2:], ["0.0.0.0/0"])
    assert reg.require("a1").keys["1"].public_key == reg.require("a2").keys["1"].public_key == key.to_hex()


def test_add_validation(reg: PartnerRegistry, pub: str) -> None:
    assert code_of(reg.add, "his-1", "HIS", "04abcd", ["0.0.0.0/0"]) == (400, "PUBLIC_KEY_INVALID")
    assert code_of(reg.add, "his-1", "HIS", "04" + "00" * 64, ["0.0.0.0/0"]) == (400, "PUBLIC_KEY_INVALID")
    assert code_of(reg.add, "his-1", "HIS", pub, []) == (400, "CIDRS_INVALID")
    assert code_of(reg.add, "his-1", "HIS", pub, ["10.0.0.0/33"]) == (400, "CIDRS_INVALID")
    assert code_of(reg.add, "his-1", "HIS", pub, "10.0.0.0/8") == (400, "CIDRS_INVALID")  # a str, not a list
    assert code_of(reg.add, 'bad"id', "HIS", pub, ["0.0.0.0/0"]) == (400, "APP_ID_INVALID")
    reg.add("his-1", "HIS", pub, ["0.0.0.0/0"])
    assert code_of(reg.add, "his-1", "HIS again", pub, ["0.0.0.0/0"]) == (409, "APP_EXISTS")


def test_allow_all_must_be_explicit(reg: PartnerRegistry, pub: str) -> None:
    reg.add("open", "Open", pub, ["0.0.0.0/0"])
    p = reg.require("open")
    assert p.allows_ip("8.8.8.8")
    assert not p.allows_ip("2001:db8::1")  # IPv6 needs ::/0 too
    reg.set_cidrs("open", ["0.0.0.0/0", "::/0"])
    assert reg.require("open").allows_ip("2001:db8::1")


def test_disable_enable_set_cidrs_bump_version(reg: PartnerRegistry, pub: str, clock: Clock) -> None:
    reg.add("his-1", "HIS", pub, ["10.0.0.0/8"])
    clock.t += 60
    assert reg.disable("his-1").status == "disabled"
    assert reg.enable("his-1").status == "active"
    p = reg.set_cidrs("his-1", ["192.168.0.0/16"])
    assert p.allowed_cidrs == ["192.168.0.0/16"] and p.version == 4
    assert p.updated_at == "2026-01-01T00:01:00Z" and p.created_at == "2026-01-01T00:00:00Z"
    assert code_of(reg.set_cidrs, "his-1", []) == (400, "CIDRS_INVALID")
    assert code_of(reg.disable, "nobody") == (404, "APP_UNKNOWN")


def test_rotate_and_retire(reg: PartnerRegistry, pub: str) -> None:
    reg.add("his-1", "HIS", pub, ["0.0.0.0/0"])
    k2 = sm2_generate_key().public_key.to_hex()
    assert reg.rotate_key("his-1", k2) == "2"
    assert code_of(reg.rotate_key, "his-1", k2) == (409, "KEY_EXISTS")
    p = reg.require("his-1")
    assert {s: k.status for s, k in p.keys.items()} == {"1": "active", "2": "active"}
    reg.retire_key("his-1", "1")
    p = reg.require("his-1")
    assert p.keys["1"].status == "retired" and p.keys["1"].retired_at is not None
    assert p.active_key("1") is None and p.active_key("2") is not None
    assert code_of(reg.retire_key, "his-1", "2") == (409, "LAST_ACTIVE_KEY")
    assert code_of(reg.retire_key, "his-1", "9") == (404, "KEY_UNKNOWN")
    assert reg.retire_key("his-1", "1").version == p.version  # already retired: no write
    assert reg.rotate_key("his-1", sm2_generate_key().public_key) == "3"


def test_settings_per_service(reg: PartnerRegistry, pub: str) -> None:
    reg.add("his-1", "HIS", pub, ["0.0.0.0/0"])
    reg.set_setting("his-1", "film", "max_link_ttl", 7 * 86400)
    reg.set_setting("his-1", "rx", "callback_url", "https://his.example/cb")
    p = reg.require("his-1")
    assert p.setting("film", "max_link_ttl") == 604800
    assert p.setting("film", "missing", 5) == 5
    reg.set_setting("his-1", "film", "max_link_ttl", None)
    assert reg.require("his-1").settings == {"film": {}, "rx": {"callback_url": "https://his.example/cb"}}


def test_list_pages(reg: PartnerRegistry, pub: str) -> None:
    for i in range(7):
        reg.add(f"app-{i}", f"App {i}", pub, ["0.0.0.0/0"])
    page = reg.list(limit=3)
    assert [p.app_id for p in page.items] == ["app-0", "app-1", "app-2"] and page.cursor
    page2 = reg.list(limit=3, cursor=page.cursor)
    assert [p.app_id for p in page2.items] == ["app-3", "app-4", "app-5"]
    assert [p.app_id for p in reg.list_all(page_size=2)] == [f"app-{i}" for i in range(7)]


def test_lost_update_is_retried_on_fresh_state(store: MemoryDocumentStore, clock: Clock, pub: str) -> None:
    """Two admins: a write that loses the version race re-reads and re-applies its change."""
    reg = PartnerRegistry(store, "partners", clock=clock)
    reg.add("his-1", "HIS", pub, ["10.0.0.0/8"])
    original_put = store.put
    raced = {"done": False}

    def racing_put(table, item, *, condition=None):
        if not raced["done"]:
            raced["done"] = True  # another admin disables the app between our read and our write
            PartnerRegistry(store, "partners", clock=clock).disable("his-1")
        return original_put(table, item, condition=condition)

    store.put = racing_put  # type: ignore[method-assign]
    p = reg.set_cidrs("his-1", ["192.168.0.0/16"])
    assert p.status == "disabled"  # the other admin's change survived
    assert p.allowed_cidrs == ["192.168.0.0/16"]  # and ours was applied on top
    assert p.version == 3


def test_concurrent_rotations_get_distinct_serials(store: MemoryDocumentStore, clock: Clock, pub: str) -> None:
    PartnerRegistry(store, "partners", clock=clock).add("his-1", "HIS", pub, ["0.0.0.0/0"])
    keys = [sm2_generate_key().public_key.to_hex() for _ in range(4)]
    serials: list[str] = []
    errors: list[Exception] = []

    def rotate(k: str) -> None:
        try:
            serials.append(PartnerRegistry(store, "partners", clock=clock).rotate_key("his-1", k))
        except AppError as exc:  # CONCURRENT_UPDATE is acceptable under heavy contention
            errors.append(exc)

    threads = [threading.Thread(target=rotate, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p = PartnerRegistry(store, "partners", clock=clock).require("his-1")
    assert len(set(serials)) == len(serials)
    assert len(p.keys) == 1 + len(serials)
    assert all(e.code == "CONCURRENT_UPDATE" for e in errors)  # type: ignore[attr-defined]


def test_version_condition_is_enforced(store: MemoryDocumentStore, reg: PartnerRegistry, pub: str) -> None:
    from bianjie.kit.documents.port import Cond

    reg.add("his-1", "HIS", pub, ["0.0.0.0/0"])
    item = store.get("partners", {"app_id": "his-1"})
    assert item is not None and item["version"] == 1 and item["kind"] == "partner"
    with pytest.raises(ConditionFailed):
        store.put("partners", {**item, "version": 3}, condition=Cond.eq("version", 2))
