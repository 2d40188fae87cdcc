"""Idempotency keys: a retried request returns the first answer instead of acting twice.

Table: partition key ``pk`` (S) = "<scope>#<key>", TTL attribute ``expires_at`` (epoch seconds).

``run(scope, key, request_hash, fn)``:
- first call: put ``{status: IN_PROGRESS, request_hash, owner, expires_at: now + in_progress_ttl}``
  with ``Cond.absent()``, run ``fn``, store ``{status: COMPLETED, response}`` kept for ``ttl``;
- same key, same request hash, completed: the stored response, ``replayed=True``;
- same key, different request hash: 409 IDEMPOTENCY_KEY_REUSED;
- same key while the first call runs: 409 IN_PROGRESS (``Retry-After: 1``);
- ``fn`` raises an ``AppError`` with a 4xx status: that error is stored as the outcome and replayed
  (the request itself was wrong; retrying it unchanged cannot help), as Stripe does;
- ``fn`` raises anything else: the in-progress record is deleted so a retry may run.

``in_progress_ttl`` must exceed the function timeout: when a container dies mid-call the record expires
and a retry runs ``fn`` again. Responses must be JSON-like and well under the item size limit (400 KB
on DynamoDB).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bianjie.kit.crypto import sm3
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore
from bianjie.kit.errors import AppError, BadRequest, Conflict
from bianjie.kit.logging import get_logger

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, as an HTTP header value carries it
_log = get_logger(__name__)


def request_hash(method: str, path: str, body: bytes | str | None) -> str:
    """Lower-hex SM3 over ``METHOD \\n path \\n hex(SM3(body))``."""
    raw = b"" if body is None else body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return sm3(f"{method.upper()}\n{path}\n{sm3(raw).hex()}".encode()).hex()


@dataclass(frozen=True)
class IdempotentResult:
    response: Any
    replayed: bool


class IdempotencyStore:
    def __init__(
        self,
        store: DocumentStore,
        table: str,
        ttl: int = 24 * 3600,
        in_progress_ttl: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._table = table
        self._ttl = ttl
        self._in_progress_ttl = in_progress_ttl
        self._clock = clock

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
        except AppError as exc:
            if 400 <= exc.status < 500:
                self._complete(pk, owner, request_hash, {"error": _error_dict(exc)})
            else:
                self._release(pk, owner)
            raise
        except BaseException:
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
        error = existing.get("error")
        if error:
            raise AppError(
                error.get("message", ""),
                code=error.get("code"),
                status=int(error.get("status", 400)),
                details=error.get("details"),
                headers={"Idempotent-Replayed": "true"},
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


def _error_dict(exc: AppError) -> dict[str, Any]:
    return {"status": exc.status, "code": exc.code, "message": exc.message, "details": exc.details}
