"""Idempotency keys: replay, reuse with another body, in-progress, refusals and failures, races."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.errors import AppError, Conflict, ValidationFailed
from bianjie.kit.idempotency import Answer, IdempotencyStore, fingerprint, request_hash
from bianjie.kit.tables import table_spec
from pydantic import BaseModel

from tests.fakes import Clock

NOW = 1_767_225_600


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(clock: Clock) -> MemoryDocumentStore:
    return MemoryDocumentStore(table_spec("IDEMPOTENCY_TABLE", "idem"), clock=clock)


@pytest.fixture
def idem(store: MemoryDocumentStore, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(store, "idem", clock=clock)


H1 = request_hash("POST", "/pay/v1/orders", b'{"amount":100}')
H2 = request_hash("POST", "/pay/v1/orders", b'{"amount":200}')


class Counter:
    def __init__(self, result: Any = None, exc: BaseException | None = None) -> None:
        self.calls = 0
        self.result = result if result is not None else {"order_id": "o-1", "status": "created"}
        self.exc = exc

    def __call__(self) -> Any:
        self.calls += 1
        if self.exc is not None:
            raise self.exc
        return self.result


def test_request_hash() -> None:
    assert len(H1) == 64 and H1 != H2
    assert request_hash("post", "/pay/v1/orders", '{"amount":100}') == H1
    assert request_hash("POST", "/pay/v1/orders/", b'{"amount":100}') != H1
    assert request_hash("PUT", "/pay/v1/orders", b'{"amount":100}') != H1
    assert request_hash("GET", "/x", None) == request_hash("GET", "/x", b"")


def test_first_call_runs_then_replays(idem: IdempotencyStore) -> None:
    fn = Counter()
    first = idem.run("pay", "key-1", H1, fn)
    assert (first.response, first.replayed) == ({"order_id": "o-1", "status": "created"}, False)
    again = idem.run("pay", "key-1", H1, fn)
    assert (again.response, again.replayed) == (first.response, True)
    assert fn.calls == 1


def test_scopes_are_separate(idem: IdempotencyStore) -> None:
    fn = Counter()
    idem.run("pay", "key-1", H1, fn)
    idem.run("rx", "key-1", H1, fn)
    assert fn.calls == 2


def test_same_key_different_request(idem: IdempotencyStore) -> None:
    idem.run("pay", "key-1", H1, Counter())
    with pytest.raises(AppError) as err:
        idem.run("pay", "key-1", H2, Counter())
    assert (err.value.status, err.value.code) == (409, "IDEMPOTENCY_KEY_REUSED")


def test_in_progress(idem: IdempotencyStore) -> None:
    seen: dict[str, Any] = {}

    def outer() -> str:
        with pytest.raises(AppError) as err:
            idem.run("pay", "key-1", H1, Counter())
        seen["status"], seen["code"], seen["headers"] = err.value.status, err.value.code, err.value.headers
        return "done"

    assert idem.run("pay", "key-1", H1, outer).response == "done"
    assert (seen["status"], seen["code"]) == (409, "IN_PROGRESS")
    assert seen["headers"] == {"Retry-After": "1"}


def test_in_progress_with_other_body_is_reuse(idem: IdempotencyStore) -> None:
    def outer() -> None:
        with pytest.raises(AppError) as err:
            idem.run("pay", "key-1", H2, Counter())
        assert err.value.code == "IDEMPOTENCY_KEY_REUSED"

    idem.run("pay", "key-1", H1, outer)


def test_server_error_releases_the_key(idem: IdempotencyStore, store: MemoryDocumentStore) -> None:
    with pytest.raises(RuntimeError):
        idem.run("pay", "key-1", H1, Counter(exc=RuntimeError("db down")))
    assert store.items("idem") == []
    with pytest.raises(AppError):
        idem.run("pay", "key-1", H1, Counter(exc=AppError("upstream", code="UPSTREAM", status=502)))
    assert store.items("idem") == []
    fn = Counter()
    assert idem.run("pay", "key-1", H1, fn).replayed is False and fn.calls == 1


@pytest.mark.parametrize(
    "refusal",
    [
        ValidationFailed("amount must be positive", code="AMOUNT_INVALID", status=422),
        Conflict("order already paid", code="ALREADY_PAID"),
        AppError("not yours", code="FORBIDDEN", status=403),
    ],
)
def test_a_refusal_is_not_stored_so_the_same_request_runs_again(
    idem: IdempotencyStore, store: MemoryDocumentStore, refusal: AppError
) -> None:
    refused = Counter(exc=refusal)
    with pytest.raises(AppError) as err:
        idem.run("pay", "key-1", H1, refused)
    assert err.value is refusal and "Idempotent-Replayed" not in err.value.headers
    assert store.items("idem") == []
    fn = Counter()  # the state now allows it: the same request under the same key runs
    assert idem.run("pay", "key-1", H1, fn).replayed is False and fn.calls == 1


def test_a_refusal_stored_by_the_old_semantics_is_dropped(idem: IdempotencyStore, store: MemoryDocumentStore) -> None:
    store.put(
        "idem",
        {
            "pk": "pay#key-1",
            "status": "COMPLETED",
            "request_hash": H1,
            "owner": "old",
            "expires_at": NOW + 3600,
            "error": {"status": 422, "code": "X"},
        },
    )
    fn = Counter()
    assert idem.run("pay", "key-1", H1, fn).replayed is False and fn.calls == 1


class Req(BaseModel):
    order_no: str
    amount: int


class View(BaseModel):
    order_id: str
    status: str


def test_once_answers_a_replay_with_the_record_as_it_is(idem: IdempotencyStore) -> None:
    record = {"status": "created"}
    calls = []

    def create() -> View:
        calls.append(1)
        return View(order_id="o-1", status=record["status"])

    def current(stored: View) -> View:
        return stored.model_copy(update={"status": record["status"]})

    first = idem.once("pay", "k", Req(order_no="A", amount=1), create, model=View, current=current)
    assert first == Answer(View(order_id="o-1", status="created")) and first.headers == {}
    record["status"] = "paid"
    again = idem.once("pay", "k", Req(amount=1, order_no="A"), create, model=View, current=current)
    assert again.value == View(order_id="o-1", status="paid") and again.replayed
    assert again.headers == {"Idempotent-Replayed": "true"} and len(calls) == 1
    with pytest.raises(AppError) as err:
        idem.once("pay", "k", Req(order_no="A", amount=2), create, model=View, current=current)
    assert err.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert again.with_status(201).status == 201


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert fingerprint(Req(order_no="A", amount=1)) == fingerprint({"amount": 1, "order_no": "A"})
    assert fingerprint(Req(order_no="A", amount=1)) != fingerprint(Req(order_no="A", amount=2))


def test_completed_record_expires_after_ttl(idem: IdempotencyStore, clock: Clock) -> None:
    fn = Counter()
    idem.run("pay", "key-1", H1, fn)
    clock.t = NOW + 24 * 3600 - 1
    assert idem.run("pay", "key-1", H1, fn).replayed
    clock.t = NOW + 24 * 3600 + 1
    assert not idem.run("pay", "key-1", H1, fn).replayed
    assert fn.calls == 2


def test_stale_in_progress_claim_expires(idem: IdempotencyStore, store: MemoryDocumentStore, clock: Clock) -> None:
    """A container that died mid-call leaves IN_PROGRESS behind; after in_progress_ttl a retry runs."""
    store.put(
        "idem",
        {"pk": "pay#key-1", "status": "IN_PROGRESS", "request_hash": H1, "owner": "dead", "expires_at": NOW + 60},
    )
    with pytest.raises(AppError) as err:
        idem.run("pay", "key-1", H1, Counter())
    assert err.value.code == "IN_PROGRESS"
    clock.t = NOW + 61
    fn = Counter()
    assert idem.run("pay", "key-1", H1, fn).replayed is False and fn.calls == 1


def test_slow_owner_does_not_overwrite_the_takeover(
    idem: IdempotencyStore, store: MemoryDocumentStore, clock: Clock
) -> None:
    def slow() -> dict[str, str]:
        clock.t = NOW + 120  # our claim expired meanwhile and another call took over
        IdempotencyStore(store, "idem", clock=clock).run("pay", "key-1", H1, lambda: {"by": "second"})
        return {"by": "first"}

    assert idem.run("pay", "key-1", H1, slow).response == {"by": "first"}
    assert idem.run("pay", "key-1", H1, Counter()).response == {"by": "second"}


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "中文", "tab\t"])
def test_invalid_keys(idem: IdempotencyStore, key: str) -> None:
    with pytest.raises(AppError) as err:
        idem.run("pay", key, H1, Counter())
    assert (err.value.status, err.value.code) == (400, "IDEMPOTENCY_KEY_INVALID")


def test_twenty_threads_race_one_key(store: MemoryDocumentStore) -> None:
    racers = 20
    barrier = threading.Barrier(racers)
    calls = 0
    lock = threading.Lock()
    outcomes: list[tuple[str, Any]] = []

    def fn() -> dict[str, str]:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.05)  # long enough for every other racer to arrive while we run
        return {"order_id": "o-1"}

    def racer() -> None:
        idem = IdempotencyStore(store, "idem")  # one per "container"
        barrier.wait()
        try:
            result = idem.run("pay", "race-key", H1, fn)
            kind = "replayed" if result.replayed else "ran"
            with lock:
                outcomes.append((kind, result.response))
        except AppError as exc:
            with lock:
                outcomes.append((exc.code, None))

    threads = [threading.Thread(target=racer) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == 1
    kinds = [k for k, _ in outcomes]
    assert len(outcomes) == racers and kinds.count("ran") == 1
    assert set(kinds) <= {"ran", "replayed", "IN_PROGRESS"}
    assert all(resp == {"order_id": "o-1"} for k, resp in outcomes if k != "IN_PROGRESS")
    assert IdempotencyStore(store, "idem").run("pay", "race-key", H1, fn).replayed
    assert calls == 1
