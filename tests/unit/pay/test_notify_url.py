"""notify_url outside the local stage: https only, on hosts registered for the hospital, never to an
address inside a network (loopback, link-local, private, shared, unique-local, mapped)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError
from bianjie.kit.idempotency import IdempotencyStore
from bianjie.kit.tables import table_spec
from bianjie.pay.adapters.notify_url import check_notify_url, guarded_post, resolve
from bianjie.pay.api import ChargeCreate
from bianjie.pay.charges import ChargeService
from bianjie.pay.models import Channel

from tests.unit.pay.conftest import World, patient

OK = "6222000000001234"  # the stand-in charges this card at once

REGISTERED = ["his.example.cn", "8.8.8.8", "inner.example"]
HOSPITAL = Actor.partner("hospital-1", settings={"pay": {"notify_hosts": REGISTERED}})
DNS = {"his.example.cn": ["8.8.4.4", "2001:4860:4860::8888"], "inner.example": ["8.8.4.4", "10.1.2.3"]}


def fake_dns(host: str) -> Sequence[str]:
    """A resolver with fixed answers (the port the check takes); unknown names resolve to nothing."""
    return DNS.get(host) or ([host] if host.replace(".", "").isdigit() or ":" in host else [])


def refused(url: str, actor: Actor = HOSPITAL) -> str:
    with pytest.raises(AppError) as err:
        check_notify_url(url, actor, local=False, resolver=fake_dns)
    assert err.value.code == "NOTIFY_URL_REFUSED" and err.value.status == 422
    return err.value.message


def test_registered_https_host_with_public_addresses_is_accepted() -> None:
    check_notify_url("https://his.example.cn/pay/notify?x=1", HOSPITAL, local=False, resolver=fake_dns)
    check_notify_url("https://HIS.example.cn.:8443/notify", HOSPITAL, local=False, resolver=fake_dns)
    check_notify_url("https://8.8.8.8/notify", HOSPITAL, local=False, resolver=fake_dns)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://his.example.cn/notify", "https"),
        ("ftp://his.example.cn/notify", "http(s)"),
        ("https://other.example.cn/notify", "not registered"),
        ("https://user:pw@his.example.cn/notify", "user name"),
        ("https://inner.example/notify", "non-public"),  # one of its addresses is private
        ("https://his.example.cn:99999/notify", "valid"),
    ],
)
def test_refused_outside_the_local_stage(url: str, words: str) -> None:
    assert words in refused(url)


@pytest.mark.parametrize(
    "address",
    [
        *("127.0.0.1", "10.0.0.8", "172.16.5.5", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"),
        *("::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "224.0.0.1"),
    ],
)
def test_an_inner_address_is_refused_even_when_registered(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    hospital = Actor.partner("hospital-1", settings={"pay": {"notify_hosts": [address]}})
    assert "non-public" in refused(f"https://{host}/notify", hospital)


def test_localhost_resolved_for_real_is_refused() -> None:
    hospital = Actor.partner("hospital-1", settings={"pay": {"notify_hosts": ["localhost"]}})
    assert all(not a.startswith("8.") for a in resolve("localhost"))
    with pytest.raises(AppError) as err:
        check_notify_url("https://localhost/notify", hospital, local=False)  # the system resolver
    assert err.value.code == "NOTIFY_URL_REFUSED"


def test_the_local_stage_accepts_plain_http_on_loopback() -> None:
    check_notify_url("http://127.0.0.1:9000/notify", Actor.partner("h"), local=True, resolver=fake_dns)
    with pytest.raises(AppError):
        check_notify_url("mailto:x@example.cn", Actor.partner("h"), local=True, resolver=fake_dns)


def test_delivery_rechecks_the_addresses() -> None:
    sent: list[str] = []

    def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> int:
        sent.append(url)
        return 200

    answers = {"his.example.cn": ["8.8.4.4"]}
    send = guarded_post(post, resolver=lambda host: answers.get(host, []))
    assert send("https://his.example.cn/n", {}, b"{}", 1.0) == 200
    answers["his.example.cn"] = ["127.0.0.1"]  # the name now points inside (DNS rebinding)
    assert send("https://his.example.cn/n", {}, b"{}", 1.0) == 0
    assert sent == ["https://his.example.cn/n"]


def test_a_refused_notify_url_binds_no_idempotency_key_and_writes_nothing(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    world.docs.ensure_table(table_spec("IDEMPOTENCY_TABLE", "idem"))
    service = ChargeService(
        world.store,
        world.agreements,
        world.channels,
        world.outbox_port,
        world.audit,
        world.index,
        clock=world.clock,
        idempotency=IdempotencyStore(world.docs, "idem", clock=world.clock),
        notify_check=lambda url, actor: check_notify_url(url, actor, local=False, resolver=fake_dns),
    )
    records = len(world.audit_records())
    body = ChargeCreate(order_no="INV-SSRF", patient_id="p", amount=100, notify_url="https://10.0.0.8/admin")
    with pytest.raises(AppError) as err:
        service.submit(HOSPITAL, "key-1", body)
    assert err.value.code == "NOTIFY_URL_REFUSED"
    assert len(world.audit_records()) == records and not world.docs._tables["idem"].items
    good = body.model_copy(update={"notify_url": "https://his.example.cn/notify"})
    answer = service.submit(HOSPITAL, "key-1", good)  # the same key is free for the corrected request
    assert answer.value.status == "SUCCEEDED"
