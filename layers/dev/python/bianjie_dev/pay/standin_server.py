"""STAND-IN payment channels as their own HTTP server, in their own process: a bank's gateway as far as
pay can tell (nothing here moves money).

    python -m bianjie_dev.pay.standin_server --port 8701 --latency-ms 30 --callback-base http://127.0.0.1:8080

It serves every channel whose stand-in identity is in ``PAY_STANDIN_TABLE`` (the local stack creates
them on first use) at ``http://HOST:PORT/<CHANNEL>`` (e.g. ``/UNIONPAY/v1/trades/charge``): the same
``StandinChannel`` protocol server the in-process transport calls, so signatures, merchant checks and
the ledger are the same. Point pay at it with ``bianjie pay channel standin-http --base-url ...`` (the
channel's config record gets ``mode: http``), and its CPU is measured apart from pay's.

``--latency-ms`` delays every answer (a real channel's network and processing time; 0 by default); the
wait costs no CPU (asyncio sleeps). Callbacks (success notifications, async settlements) do not go to
the stack's notifier queue: this process keeps them itself and POSTs them to ``--callback-base`` after
``--notify-delay`` seconds, retrying with backoff on a non-2xx answer, as a channel's notifier does.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import http.client
import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from bianjie.pay.models import Channel

from bianjie_dev.pay.standin import ASYNC_DELAY_SECONDS, StandinChannel, deliver

log = logging.getLogger("bianjie_dev.pay.standin_server")
RETRY_DELAYS = (1, 2, 5, 15, 30, 60)  # a channel's notifier retries a refused callback on this schedule


class DelayedNotifier:
    """The stand-in's own notify outbox: a heap of due jobs, one thread waiting on it, a few posting.

    Implements ``standin.NotifyOutbox`` (``send(message, delay_seconds)``)."""

    def __init__(
        self,
        post: Callable[[str, dict[str, str], bytes], int],
        *,
        delay: float,
        duplicate_rate: float = 0.0,
        senders: int = 8,
    ) -> None:
        self._post = post
        self._delay = delay
        self._duplicate_rate = duplicate_rate
        self._heap: list[tuple[float, int, dict[str, Any], int]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._pool = ThreadPoolExecutor(senders, thread_name_prefix="notify")
        self._stopped = False
        self.standins: dict[Channel, StandinChannel] = {}
        self.delivered = 0
        self.failed = 0
        threading.Thread(target=self._run, name="notifier", daemon=True).start()

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self._push(message, time.monotonic() + max(self._delay, delay_seconds), 0)

    def _push(self, message: dict[str, Any], due: float, attempt: int) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, message, attempt))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic()))
                if self._stopped:
                    return
                _, _, message, attempt = heapq.heappop(self._heap)
            self._pool.submit(self._deliver, message, attempt)

    def _deliver(self, message: dict[str, Any], attempt: int) -> None:
        try:
            deliver(self.standins, message, self._post, self._duplicate_rate)
            self.delivered += 1
        except Exception as exc:  # refused or unreachable: retry later, as a channel does
            if attempt >= len(RETRY_DELAYS):
                self.failed += 1
                log.warning("callback given up after %d attempts: %s", attempt + 1, exc)
                return
            self._push(message, time.monotonic() + RETRY_DELAYS[attempt], attempt + 1)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._pool.shutdown(wait=False, cancel_futures=True)


def poster(base: str) -> Callable[[str, dict[str, str], bytes], int]:
    """POST a callback to pay's gateway over a kept-alive connection per sender thread (as a bank's
    notifier does; a new connection and urllib's opener per callback cost both sides CPU)."""
    parts = urlsplit(base.rstrip("/"))
    prefix = parts.path
    local = threading.local()

    def post(path: str, headers: dict[str, str], body: bytes) -> int:
        for attempt in (0, 1):  # a kept-alive connection the server closed meanwhile: once more on a new one
            conn: http.client.HTTPConnection | None = getattr(local, "conn", None)
            fresh = conn is None
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                local.conn = conn
            try:
                conn.request("POST", prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                local.conn = None
                if fresh or attempt:
                    return 0
                continue
            if response.will_close:
                conn.close()
                local.conn = None
            return int(response.status)
        return 0

    return post


def load_standins(outbox: Any) -> dict[Channel, StandinChannel]:
    """Every channel's stand-in identity from PAY_STANDIN_TABLE (keys field-encrypted there)."""
    from bianjie.kit import deps
    from bianjie.pay.wiring import standin_identity

    table = deps.table("PAY_STANDIN_TABLE")
    found = {}
    for channel in Channel:
        identity = standin_identity(channel)
        if identity is not None:
            found[channel] = StandinChannel(identity, deps.documents(), table, outbox)
    return found


class StandinApp:
    """ASGI: ``POST /<CHANNEL>/v1/<op>`` -> that channel's ``StandinChannel.handle``, after ``latency``."""

    def __init__(self, standins: dict[Channel, StandinChannel], latency: float, threads: int = 64) -> None:
        self._standins = {c.value: s for c, s in standins.items()}
        self._latency = latency
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="standin")
        self.handled = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        channel, _, rest = scope["path"].lstrip("/").partition("/")
        standin = self._standins.get(channel)
        if scope["method"] == "GET" and scope["path"] == "/status":
            status, headers, out = (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"channels": sorted(self._standins), "handled": self.handled}).encode(),
            )
        elif standin is None or scope["method"] != "POST":
            status, headers, out = 404, {"Content-Type": "application/json"}, b'{"code":"NOT_FOUND"}'
        else:
            if self._latency:
                await asyncio.sleep(self._latency)
            request_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            loop = asyncio.get_running_loop()
            try:
                answer = await loop.run_in_executor(self._pool, standin.handle, "/" + rest, request_headers, body)
            except Exception:  # the stand-in's "request lost" scenarios raise: answer nothing usable
                log.info("stand-in dropped a request (scenario)", exc_info=True)
                status, headers, out = 504, {"Content-Type": "application/json"}, b'{"code":"TIMEOUT"}'
            else:
                status, headers, out = answer.status, dict(answer.headers), answer.body
                headers.setdefault("Content-Type", "application/json")
            self.handled += 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": out})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bianjie_dev.pay.standin_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer (default 0)")
    parser.add_argument("--callback-base", required=True, help="where callbacks go: pay's gateway")
    parser.add_argument("--notify-delay", type=float, default=1.0, help="seconds before a callback is sent")
    parser.add_argument("--duplicate-rate", type=float, default=0.0, help="chance a callback is sent twice")
    parser.add_argument(
        "--async-seconds", type=int, default=ASYNC_DELAY_SECONDS, help="when a PROCESSING trade settles"
    )
    args = parser.parse_args(argv)

    import uvicorn
    from bianjie.kit.logging import configure_logging

    configure_logging(os.environ.get("BIANJIE_LOG_LEVEL", "WARNING"))
    notifier = DelayedNotifier(poster(args.callback_base), delay=args.notify_delay, duplicate_rate=args.duplicate_rate)
    standins = load_standins(notifier)
    for double in standins.values():
        double.async_delay = args.async_seconds
    if not standins:
        raise SystemExit("no stand-in identities in PAY_STANDIN_TABLE (start the local stack once)")
    notifier.standins = standins
    random.seed()
    app = StandinApp(standins, args.latency_ms / 1000)
    print(
        f"stand-in channels {', '.join(sorted(c.value for c in standins))} on http://{args.host}:{args.port}",
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        backlog=2048,
        http="bianjie.runtime.gateway:NoDelayHttpToolsProtocol",  # httptools, TCP_NODELAY on
        timeout_keep_alive=30,
    )
    notifier.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
