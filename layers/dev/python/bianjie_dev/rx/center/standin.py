"""A local stand-in for the NHSA prescription center (NOT the real center): it speaks the same envelope
and interface codes, checks each operation's required fields, and answers as the center would.

Used by ``make run``, the functional tests and the contract tests (``InProcessTransport``); it can also
be served over HTTP (``handle`` takes a path and body) for a hospital's own integration rehearsal.

It keeps what it must remember in memory (uploaded prescriptions, used trace codes), so it is
per-process: fine for the local stack (one process), not for a multi-container deployment, which must
use the real center (any stage but local: ``bianjie.kit.standins``). Trace codes are an HMAC of the
prescription number, so
checking one needs no state.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bianjie.kit.crypto import Sm2PrivateKey, hmac_sm3, sm2_curve
from bianjie.rx.center.envelope import Credentials, EnvelopeError, open_envelope, seal

REQUIRED: dict[str, tuple[str, ...]] = {
    "/fixmedins/uploadChk": (
        "mdtrtCertType",
        "mdtrtCertNo",
        "bizTypeCode",
        "hospRxno",
        "rxTypeCode",
        "prscTime",
        "valiDays",
        "valiEndTime",
        "reptFlag",
        "maxReptCnt",
        "minInrvDays",
        "longRxFlag",
        "rxCircFlag",
        "drCode",
        "mdtrtinfo",
        "diseinfo",
        "rxdrugdetail",
    ),
    "/fixmedins/rxFileUpld": ("rxTraceCode", "hiRxno", "mdtrtId", "drCode", "rxFile", "signDigest"),
    "/fixmedins/trans/7102": ("hi_rxno", "rx_chk_stas_codg", "rx_chk_time"),
    "/fixmedins/trans/7103": ("hi_rxno", "fund_pay_sumamt", "psn_cash_pay", "setl_time", "seltdelts"),
    "/fixmedins/rxUndo": ("hiRxno", "drCode", "undoRea", "undoTime"),
    "/fixmedins/trans/7105": ("hi_rxno", "rx_pay_status_code", "pay_time"),
    "/fixmedins/hospRxDetlQuery": ("hiRxno",),
}


def _derived_key(secret: bytes, label: bytes) -> Sm2PrivateKey:
    d = int.from_bytes(hmac_sm3(secret, label), "big") % (sm2_curve.N - 2) + 1
    return Sm2PrivateKey(d)


def credential_pair(secret: bytes) -> tuple[Credentials, Credentials]:
    """(our side, the stand-in center's side), derived from a deployment secret so processes agree."""
    app_id = "SK" + hmac_sm3(secret, b"rx center app id").hex().upper()[:30]
    app_secret = hmac_sm3(secret, b"rx center app secret").hex().upper()[:32]
    ours = _derived_key(secret, b"rx center client key")
    theirs = _derived_key(secret, b"rx center stand-in key")
    return (
        Credentials(app_id, app_secret, ours, theirs.public_key),
        Credentials(app_id, app_secret, theirs, ours.public_key),
    )


class StandInCenter:
    def __init__(self, creds: Credentials, clock: Callable[[], float] = time.time) -> None:
        self._creds = creds
        self._clock = clock
        self._lock = threading.Lock()
        self._rx: dict[str, dict[str, Any]] = {}
        self._used_traces: set[str] = set()
        self.calls: list[str] = []  # paths received, for tests and `stack info`-style checks

    def trace_code(self, hi_rxno: str) -> str:
        return hmac_sm3(self._creds.app_secret.encode(), b"trace:" + hi_rxno.encode()).hex()[:32].upper()

    def handle(self, path: str, body: bytes) -> bytes:
        return json.dumps(self._answer(path, body), separators=(",", ":")).encode("utf-8")

    def _fail(self, code: int, message: str) -> dict[str, Any]:
        return {"code": code, "message": message, "appId": self._creds.app_id}

    def _answer(self, path: str, body: bytes) -> dict[str, Any]:
        if path not in REQUIRED:
            return self._fail(-1, f"unknown interface {path}")
        try:
            envelope = json.loads(body)
            data = open_envelope(self._creds, envelope, max_skew_ms=300_000, clock=self._clock)
        except (ValueError, EnvelopeError) as exc:
            return self._fail(-1, f"envelope rejected: {getattr(exc, 'code', 'ENVELOPE_MALFORMED')}")
        missing = [f for f in REQUIRED[path] if data.get(f) in (None, "", [])]
        if missing:
            return self._fail(-2, f"missing fields: {', '.join(missing)}")
        with self._lock:
            self.calls.append(path)
            try:
                output = self._apply(path, data)
            except ValueError as exc:
                return self._fail(-2, str(exc))
        return seal(self._creds, output, extra={"code": 0, "message": "成功"}, clock=self._clock)

    def _apply(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        if path == "/fixmedins/uploadChk":
            hi_rxno = now.strftime("31%Y%m%d") + f"{secrets.randbelow(10**10):010d}"
            return {"rxTraceCode": self.trace_code(hi_rxno), "hiRxno": hi_rxno}
        if path == "/fixmedins/rxFileUpld":
            hi_rxno = data["hiRxno"]
            if data["rxTraceCode"] != self.trace_code(hi_rxno):
                raise ValueError("rxTraceCode does not belong to hiRxno")
            if data["rxTraceCode"] in self._used_traces:
                raise ValueError("rxTraceCode has already been used")
            self._used_traces.add(data["rxTraceCode"])
            self._rx[hi_rxno] = {"hiRxno": hi_rxno, "rxStasCodg": "1", "rxUsedStasCodg": "0", "reptdCnt": 0}
            return {"hiRxno": hi_rxno, "rxStasCodg": "1"}
        if path == "/fixmedins/rxUndo":
            rx = self._known(data["hiRxno"])
            if rx["reptdCnt"] > 0:
                raise ValueError("the prescription has been used")
            rx["rxStasCodg"] = "3"
            return {"hiRxno": data["hiRxno"], "rxStasCodg": "3"}
        if path == "/fixmedins/hospRxDetlQuery":
            return dict(self._known(data["hiRxno"]))
        rx = self._known(data["hi_rxno"])
        if rx["rxStasCodg"] != "1":
            raise ValueError("the prescription is not valid")
        if path == "/fixmedins/trans/7102":
            rx["rxChkStasCodg"] = data["rx_chk_stas_codg"]
        elif path == "/fixmedins/trans/7103":
            rx["reptdCnt"] += 1
            rx["rxUsedStasCodg"] = "1"
        elif path == "/fixmedins/trans/7105":
            rx["rxPayStasCodg"] = data["rx_pay_status_code"]
        return {"hi_rxno": data["hi_rxno"]}

    def _known(self, hi_rxno: str) -> dict[str, Any]:
        rx = self._rx.get(hi_rxno)
        if rx is None:
            raise ValueError(f"unknown hiRxno {hi_rxno}")
        return rx


class InProcessTransport:
    """The stand-in reached without a network (the local stack and tests)."""

    def __init__(self, center: StandInCenter) -> None:
        self.center = center

    def post(self, path: str, body: bytes) -> bytes:
        return self.center.handle(path, body)
