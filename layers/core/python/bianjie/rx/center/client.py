"""The NHSA center adapter: operations with their interface codes and paths, sent in the envelope.

Two API generations exist (docs/rx.md): the 2021 platform's transaction codes 7101-7105 and the newer
prescription-center gateway under ``/fixmedins/*`` (which provinces renumber). Each operation below names
both; ``path`` is where the gateway receives it. For 7102/7103/7105 no public source shows a
``/fixmedins`` path, so those go to ``/fixmedins/trans/<code>``, a placeholder a deployment maps to its
province's number.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bianjie.kit.logging import get_logger
from bianjie.rx.center.envelope import Credentials, EnvelopeError, open_envelope, seal
from bianjie.rx.center.port import CenterError, Reserved

log = get_logger("bianjie.rx.center")


@dataclass(frozen=True)
class Operation:
    name: str
    code: str  # 2021 interface code, or the gateway's name where there is none
    path: str


OPERATIONS = {
    "upload_check": Operation("upload_check", "uploadChk", "/fixmedins/uploadChk"),
    "upload": Operation("upload", "7101", "/fixmedins/rxFileUpld"),
    "review_result": Operation("review_result", "7102", "/fixmedins/trans/7102"),
    "settlement": Operation("settlement", "7103", "/fixmedins/trans/7103"),
    "revoke": Operation("revoke", "7104", "/fixmedins/rxUndo"),
    "pay_status": Operation("pay_status", "7105", "/fixmedins/trans/7105"),
    "query": Operation("query", "hospRxDetlQuery", "/fixmedins/hospRxDetlQuery"),
}


class Transport(Protocol):
    def post(self, path: str, body: bytes) -> bytes: ...


class NhsaCenterClient:
    def __init__(
        self,
        creds: Credentials,
        transport: Transport,
        clock: Callable[[], float] = time.time,
        max_skew_ms: int = 300_000,
    ) -> None:
        self._creds = creds
        self._transport = transport
        self._clock = clock
        self._skew = max_skew_ms

    def call(self, operation: str, data: dict[str, Any]) -> dict[str, Any]:
        op = OPERATIONS[operation]
        request = seal(self._creds, data, clock=self._clock)
        started = time.perf_counter()
        raw = self._transport.post(op.path, json.dumps(request, separators=(",", ":")).encode("utf-8"))
        try:
            reply = json.loads(raw)
        except ValueError:
            raise CenterError(
                "the prescription center answered with something that is not JSON", code="CENTER_PROTOCOL"
            ) from None
        code = reply.get("code")
        log.info(
            "center call",
            extra={
                "operation": op.code,
                "center_code": code,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        if code not in (0, "0"):
            status = 422 if str(code) == "-2" else 502
            raise CenterError(
                f"the prescription center refused {op.code}: {reply.get('message', '')}",
                code="CENTER_REJECTED" if status == 422 else "CENTER_ERROR",
                status=status,
                details={"interface": op.code, "center_code": code},
            )
        try:
            return open_envelope(self._creds, reply, self._skew, clock=self._clock)
        except EnvelopeError as exc:
            raise CenterError(f"the center's answer failed verification ({exc.code})", code="CENTER_PROTOCOL") from None

    # -- the port

    def upload_check(self, payload: dict[str, Any]) -> Reserved:
        out = self.call("upload_check", payload)
        return Reserved(trace_code=str(out["rxTraceCode"]), hi_rxno=str(out["hiRxno"]))

    def upload(self, payload: dict[str, Any]) -> str:
        return str(self.call("upload", payload)["rxStasCodg"])

    def review_result(self, payload: dict[str, Any]) -> None:
        self.call("review_result", payload)

    def settlement(self, payload: dict[str, Any]) -> None:
        self.call("settlement", payload)

    def pay_status(self, payload: dict[str, Any]) -> None:
        self.call("pay_status", payload)

    def revoke(self, payload: dict[str, Any]) -> str:
        return str(self.call("revoke", payload)["rxStasCodg"])

    def query(self, hi_rxno: str) -> dict[str, Any]:
        return self.call("query", {"hiRxno": hi_rxno})
