"""Idempotency: a retried request gets the outcome of the first one instead of acting twice.

Semantics (Stripe's, https://docs.stripe.com/api/idempotent_requests): only the outcome of an operation
that ran is stored. A refusal -- the request failed validation, or the record's current state does not
allow the step -- is not stored, so the same request succeeds once it is corrected or the state allows
it. Every domain refusal in bianjie happens before anything is written, so there is nothing to remember.

One entry point for every service, called by the domain (never by a handler):
``idempotency.once(scope, key, request, fn, model=M, current=...) -> Answer[M]``:
- ``scope`` names the endpoint and the caller (``"rx.upload.<app id>"``), ``key`` is the documented key
  of that endpoint (an ``Idempotency-Key`` header, or a natural one such as a settlement id);
- first call: ``fn()`` runs; the model it returns is stored for ``ttl`` and answered;
- same key, same request, completed: a replay. The answer describes the record *as it is now*
  (``current(stored)``, e.g. a re-read of the prescription), never a state it has left;
  ``Answer.replayed`` is true and the web layer adds ``Idempotent-Replayed: true``;
- same key, another request (``fingerprint`` of the parsed request differs): 409 IDEMPOTENCY_KEY_REUSED;
- same key while the first call runs: 409 IN_PROGRESS (``Retry-After: 1``);
- ``fn`` raises anything (an ``AppError`` refusal, a 5xx, a crash): the claim is released, nothing is
  stored, the error goes to the caller, and a retry runs ``fn`` again.

``run(scope, key, request_hash, fn)`` is the same on JSON values, for callers without a model.

Table: partition key ``pk`` (S) = "<scope>#<key>", TTL attribute ``expires_at`` (epoch seconds).
``in_progress_ttl`` must exceed the function timeout: when a container dies mid-call the record expires
and a retry runs ``fn`` again. Responses must be JSON-like and well under the item size limit (400 KB
on DynamoDB).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from bianjie.kit.crypto import sm3
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore
from bianjie.kit.errors import BadRequest, Conflict
from bianjie.kit.logging import get_logger

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, as an HTTP header value carries it
_log = get_logger(__name__)
M = TypeVar("M", bound=BaseModel)


def request_hash(method: str, path: str, body: bytes | str | None) -> str:
    """Lower-hex SM3 over ``METHOD \\n path \\n hex(SM3(body))``."""
    raw = b"" if body is None else body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return sm3(f"{method.upper()}\n{path}\n{sm3(raw).hex()}".encode()).hex()


def fingerprint(request: BaseModel | Any) -> str:
    """Lower-hex SM3 of the request's canonical JSON: the same parsed request gives the same value
    whatever its key order or white space on the wire."""
    value = request.model_dump(mode="json") if isinstance(request, BaseModel) else request
    return sm3(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hex()


@dataclass(frozen=True)
class IdempotentResult:
    response: Any
    replayed: bool


@dataclass(frozen=True)
class Answer(Generic[M]):
    """What a domain use case answers: the model, its HTTP status (None: the route's declared one, e.g.
    201 for a create), and whether it is a replay. ``ServiceApp`` renders it (``Idempotent-Replayed:
    true`` on replays)."""

    value: M
    status: int | None = None
    replayed: bool = False

    def with_status(self, status: int) -> Answer[M]:
        return replace(self, status=status)

    @property
    def headers(self) -> dict[str, str]:
        return {"Idempotent-Replayed": "true"} if self.replayed else {}


class Idempotency(Protocol):
    """The port domain services are given (``IdempotencyStore`` is the one implementation)."""

    def once(
        self,
        scope: str,
        key: str,
        request: BaseModel,
        fn: Callable[[], M],
        *,
        model: type[M],
        current: Callable[[M], M] | None = None,
        natural: bool = False,
    ) -> Answer[M]: ...


def natural_key(text: str) -> str:
    """A key made of ids the caller chose (any Unicode): kept as it is when it is header-shaped, so stored
    records stay readable, else as ``sm3:<digest>``."""
    if _KEY_RE.fullmatch(text) and not text.startswith("sm3:"):
        return text
    return "sm3:" + sm3(text.encode("utf-8")).hex()


class IdempotencyStore:
    def __init__(
        self,
        store: DocumentStore,
        table: str | Callable[[], str],
        ttl: int = 24 * 3600,
        in_progress_ttl: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._table_of = table
        self._ttl = ttl
        self._in_progress_ttl = in_progress_ttl
        self._clock = clock

    @property
    def _table(self) -> str:
        # a callable table name is resolved at first use, so a function that never takes the idempotent
        # path needs no IDEMPOTENCY_TABLE in its environment
        if callable(self._table_of):
            self._table_of = self._table_of()
        return self._table_of

    def once(
        self,
        scope: str,
        key: str,
        request: BaseModel,
        fn: Callable[[], M],
        *,
        model: type[M],
        current: Callable[[M], M] | None = None,
        natural: bool = False,
    ) -> Answer[M]:
        """``natural``: the key is made of the request's own ids (a prescription number, a settlement id),
        not a caller's Idempotency-Key header, so any text is a valid key (it is stored as its SM3 digest)."""
        if natural:
            key = natural_key(key)
        result = self.run(scope, key, fingerprint(request), lambda: fn().model_dump(mode="json"))
        value = model.model_validate(result.response)
        if result.replayed and current is not None:
            value = current(value)
        return Answer(value, replayed=result.replayed)

    def run(self, scope: str, key: str, request_hash: str, fn: Callable[[], Any]) -> IdempotentResult:
        if not key or not _KEY_RE.fullmatch(key):
            raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters", code="IDEMPOTENCY_KEY_INVALID")
        pk = f"{scope}#{key}"
        owner = secrets.token_hex(8)
        for _ in range(3):
            now = int(self._clock())
            claim = {
                "pk": pk,
                "status": IN_PROGRESS,
                "request_hash": request_hash,
                "owner": owner,
                "created_at": now,
                "expires_at": now + self._in_progress_ttl,
            }
            try:
                self._store.put(self._table, claim, condition=Cond.absent())
                break
            except ConditionFailed:
                existing = self._store.get(self._table, {"pk": pk})
                if existing is not None and "error" in existing:
                    # a refusal stored before refusals stopped being kept: it is no outcome, drop it
                    with contextlib.suppress(ConditionFailed):
                        self._store.delete(self._table, {"pk": pk}, condition=Cond.eq("owner", existing.get("owner")))
                    continue
                if existing is None:
                    continue  # expired or released between our put and get; try to claim again
                return self._answer_existing(existing, request_hash)
        else:
            raise Conflict(
                "the request is being processed; retry shortly",
                code="IN_PROGRESS",
                headers={"Retry-After": "1"},
            )

        try:
            response = fn()
        except BaseException:
            # a refusal or a failure: the operation did not happen, so there is no outcome to keep
            self._release(pk, owner)
            raise
        self._complete(pk, owner, request_hash, {"response": response})
        return IdempotentResult(response=response, replayed=False)

    def _answer_existing(self, existing: dict[str, Any], request_hash: str) -> IdempotentResult:
        if existing.get("request_hash") != request_hash:
            raise Conflict("this Idempotency-Key was used with a different request", code="IDEMPOTENCY_KEY_REUSED")
        if existing.get("status") != COMPLETED:
            raise Conflict(
                "a request with this Idempotency-Key is still in progress; retry shortly",
                code="IN_PROGRESS",
                headers={"Retry-After": "1"},
            )
        return IdempotentResult(response=existing.get("response"), replayed=True)

    def _complete(self, pk: str, owner: str, request_hash: str, outcome: dict[str, Any]) -> None:
        now = int(self._clock())
        item = {
            "pk": pk,
            "status": COMPLETED,
            "request_hash": request_hash,
            "owner": owner,
            "completed_at": now,
            "expires_at": now + self._ttl,
            **outcome,
        }
        try:
            # only the claim's owner completes it: if our claim expired and another call took over,
            # that call's result is the one retries should see
            condition = Cond.eq("owner", owner) & Cond.eq("status", IN_PROGRESS)
            self._store.put(self._table, item, condition=condition)
        except ConditionFailed:
            _log.warning("idempotency claim lost before completion; fn ran more than once", scope_key=pk)

    def _release(self, pk: str, owner: str) -> None:
        with contextlib.suppress(ConditionFailed):  # already taken over by another call
            self._store.delete(self._table, {"pk": pk}, condition=Cond.eq("owner", owner))
