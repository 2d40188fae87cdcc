"""The HTTP gateway: serves every ``Api`` event of template.yaml as API Gateway (REST, payload v1) would.

It is an ASGI application (served by uvicorn): requests are parsed on the event loop, and each
handler runs on a thread pool, because Lambda handlers are synchronous. One gateway serves all
functions in the local stack, or a single function in an on-premises container.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bianjie.kit.errors import error_body
from bianjie.runtime.apigw import Route, build_event, response_parts
from bianjie.runtime.invoke import Function

log = logging.getLogger("bianjie.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
_ids = random.Random()  # seeded from the OS once per process


def _request_id() -> str:
    """A version-4 UUID for the request: unique, not secret, so from a seeded PRNG rather than
    ``uuid.uuid4()``'s urandom call per request (which showed in the burst profile)."""
    return str(uuid.UUID(int=_ids.getrandbits(128), version=4))


LocalHandler = Callable[[dict[str, Any], bytes], Awaitable[tuple[int, dict[str, Any]]]]


class Gateway:
    def __init__(
        self,
        functions: Iterable[Function],
        *,
        stage: str = "local",
        cors: dict[str, Any] | None = None,
        trusted_proxies: Iterable[str] = (),
        max_workers: int = 64,
        local_routes: dict[tuple[str, str], LocalHandler] | None = None,
    ) -> None:
        self.functions = {f.spec.logical_id: f for f in functions}
        self.routes: list[Route] = []
        for fn in self.functions.values():
            for event in fn.spec.api_events():
                self.routes.append(Route.compile(event.method, event.path, fn.spec.logical_id))
        self.routes.sort(key=lambda r: r.specificity, reverse=True)
        self.stage = stage
        self.cors = cors
        self.trusted_proxies = [ipaddress.ip_network(c) for c in trusted_proxies]
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fn")
        self.local_routes = local_routes or {}

    # -- routing ----------------------------------------------------------------------------------

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        # As API Gateway does: the most specific resource that matches the path is chosen first, then the
        # method on it (GET /identity/launch/redeem does not fall through to /identity/launch/{hospital}).
        allowed: list[str] = []
        resource: str | None = None
        for route in self.routes:
            if resource is not None and route.resource != resource:
                continue
            params = route.match(path)
            if params is None:
                continue
            resource = route.resource
            if route.method in (method, "ANY"):
                return route, params, allowed
            allowed.append(route.method)
        return None, {}, allowed

    def source_ip(self, scope: dict[str, Any], headers: list[tuple[str, str]]) -> str:
        peer = (scope.get("client") or ("127.0.0.1", 0))[0]
        if self.trusted_proxies and any(ipaddress.ip_address(peer) in n for n in self.trusted_proxies):
            forwarded = next((v for k, v in headers if k.lower() == "x-forwarded-for"), None)
            if forwarded:
                return forwarded.split(",")[0].strip()
        return peer

    # -- ASGI -------------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.pool.shutdown(wait=False, cancel_futures=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request_id = _request_id()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        method = scope["method"].upper()
        path = scope["path"]
        status, out_headers, body, label = await self._handle(scope, receive, headers, method, path, request_id)
        out_headers.append(("X-Request-Id", request_id))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out_headers],
            }
        )
        await send({"type": "http.response.body", "body": body})
        # The route template, never the raw path: paths may carry bearer keys (film links). A request a
        # function answered is logged by the function ("handled", kit.web), so here only at DEBUG: one
        # line per request at INFO, not two (JSON logging showed in the charge profile)
        answered_by_function = " -> " in label and status != 502
        log.log(
            logging.DEBUG if answered_by_function else logging.INFO,
            "request",
            extra={
                "method": method,
                "route": label,
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "gateway_request_id": request_id,
            },
        )

    async def _read_body(self, receive: Any) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    def _json(
        status: int,
        payload: dict[str, Any],
        extra: list[tuple[str, str]] | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", "application/json")] + (extra or [])
        return status, headers, json.dumps(payload, ensure_ascii=False).encode("utf-8")

    def _cors_headers(self) -> list[tuple[str, str]]:
        if not self.cors:
            return []
        return [
            ("Access-Control-Allow-Origin", str(self.cors.get("AllowOrigin", "*")).strip("'")),
            ("Access-Control-Allow-Methods", str(self.cors.get("AllowMethods", "*")).strip("'")),
            ("Access-Control-Allow-Headers", str(self.cors.get("AllowHeaders", "*")).strip("'")),
            ("Access-Control-Max-Age", str(self.cors.get("MaxAge", 600)).strip("'")),
        ]

    async def _handle(
        self,
        scope: dict[str, Any],
        receive: Any,
        headers: list[tuple[str, str]],
        method: str,
        path: str,
        request_id: str,
    ) -> tuple[int, list[tuple[str, str]], bytes, str]:
        body = await self._read_body(receive)
        if body is None:
            return (*self._json(413, error_body("PAYLOAD_TOO_LARGE", "request body exceeds 10 MB", request_id)), "-")
        local = self.local_routes.get((method, path))
        if local is not None:
            status, payload = await local(scope, body)
            return (*self._json(status, payload), path)
        prepared = self._prepare(scope, headers, method, path, body, request_id)
        if not isinstance(prepared[0], Function):
            return prepared
        fn, event, label = prepared
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.pool, fn.invoke, event, request_id)
        except Exception:
            return self._failed(fn, request_id, label)
        return self._answer(result, label)

    def _prepare(
        self,
        scope: dict[str, Any],
        headers: list[tuple[str, str]],
        method: str,
        path: str,
        body: bytes,
        request_id: str,
    ) -> tuple[int, list[tuple[str, str]], bytes, str] | tuple[Function, dict[str, Any], str]:
        """The function and its event for a request, or the gateway's own answer (404, 405, CORS)."""
        route, params, allowed = self.match(method, path)
        if route is None:
            if method == "OPTIONS" and allowed and self.cors:
                return 204, self._cors_headers(), b"", "OPTIONS"
            if allowed:
                return (
                    *self._json(
                        405,
                        error_body(
                            "METHOD_NOT_ALLOWED",
                            f"{method} is not allowed here; allowed: {', '.join(sorted(set(allowed)))}",
                            request_id,
                        ),
                        [("Allow", ", ".join(sorted(set(allowed))))],
                    ),
                    "-",
                )
            return (
                *self._json(404, error_body("ROUTE_NOT_FOUND", f"no function serves {method} {path}", request_id)),
                "-",
            )
        event = build_event(
            method=method,
            path=path,
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            source_ip=self.source_ip(scope, headers),
            route=route,
            path_params=params,
            stage=self.stage,
            request_id=request_id,
        )
        return self.functions[route.function_id], event, f"{route.method} {route.resource} -> {route.function_id}"

    def _failed(self, fn: Function, request_id: str, label: str) -> tuple[int, list[tuple[str, str]], bytes, str]:
        del fn
        log.exception("function failed: %s", label)
        return (*self._json(502, error_body("FUNCTION_ERROR", "the function failed; see its log", request_id)), label)

    def _answer(self, result: Any, label: str) -> tuple[int, list[tuple[str, str]], bytes, str]:
        status, out_headers, raw = response_parts(result)
        if self.cors and not any(k.lower() == "access-control-allow-origin" for k, _ in out_headers):
            out_headers += self._cors_headers()[:1]
        return status, out_headers, raw, label

    # -- WSGI (granian's blocking threads: no event loop, no thread hand-off) ---------------------

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        """The same gateway as a WSGI application: the function runs in the server's own thread.

        Served by granian (``bianjie serve --server granian``), whose Rust side does the HTTP and the
        connections and calls this from its blocking threads: the asyncio loop and the hand-off to a
        thread pool that the ASGI path pays on every request are not there. The gateway's local routes
        (async, the local stack's own) are not served this way."""
        started = time.perf_counter()
        request_id = _request_id()
        method = environ["REQUEST_METHOD"].upper()
        path = environ.get("PATH_INFO") or "/"
        headers = [(k[5:].replace("_", "-").lower(), v) for k, v in environ.items() if k.startswith("HTTP_")]
        if environ.get("CONTENT_TYPE"):
            headers.append(("content-type", environ["CONTENT_TYPE"]))
        if environ.get("CONTENT_LENGTH"):
            headers.append(("content-length", environ["CONTENT_LENGTH"]))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        answer: tuple[int, list[tuple[str, str]], bytes, str]
        if length > MAX_BODY_BYTES:
            answer = (*self._json(413, error_body("PAYLOAD_TOO_LARGE", "request body exceeds 10 MB", request_id)), "-")
        else:
            body = environ["wsgi.input"].read(length) if length else b""
            scope = {
                "client": (environ.get("REMOTE_ADDR") or "127.0.0.1", 0),
                "query_string": (environ.get("QUERY_STRING") or "").encode("latin-1"),
            }
            prepared = self._prepare(scope, headers, method, path, body, request_id)
            if isinstance(prepared[0], Function):
                fn, event, label = prepared
                try:
                    answer = self._answer(fn.invoke(event, request_id), label)
                except Exception:
                    answer = self._failed(fn, request_id, label)
            else:
                answer = prepared
        status, out_headers, raw, label = answer
        out_headers.append(("X-Request-Id", request_id))
        start_response(f"{status} {_REASONS.get(status, 'Status')}", out_headers)
        log.log(
            logging.DEBUG if " -> " in label and status != 502 else logging.INFO,
            "request",
            extra={
                "method": method,
                "route": label,
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "gateway_request_id": request_id,
            },
        )
        return [raw]


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _no_delay_protocol() -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, with Nagle's algorithm off on every connection.

        asyncio turns TCP_NODELAY on only for sockets whose ``proto`` is IPPROTO_TCP; the socket uvicorn's
        multi-process supervisor binds (``--workers N``) has proto 0, so its workers' connections kept
        Nagle on. uvicorn writes a response's head and body in two writes; Nagle held the body back until
        the client acknowledged the head, and the client's delayed ACK waits up to 40 ms: every answer on a
        kept-alive connection took 40 ms longer (serial charge p50 56 ms, of which 14 ms was the charge)."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):  # already closed by the peer
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)

    return NoDelayHttpToolsProtocol


def __getattr__(name: str) -> Any:
    # ``uvicorn_options()["http"]`` names this class by import path (each spawned worker imports it); it
    # is built on first access so that importing the gateway does not import uvicorn (Lambda never needs it)
    if name == "NoDelayHttpToolsProtocol":
        cls = _no_delay_protocol()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


def uvicorn_options() -> dict[str, Any]:
    """The server settings every gateway runs with (one process or the workers of ``bianjie serve``)."""
    return {
        "log_level": "warning",
        "access_log": False,  # the gateway logs each request itself, once
        "lifespan": "on",
        "backlog": 2048,  # a burst of 200 new connections must not overflow the accept queue
        "timeout_keep_alive": 30,
        "http": "bianjie.runtime.gateway:NoDelayHttpToolsProtocol",  # httptools, TCP_NODELAY on
    }


def serve(gateway: Gateway, host: str, port: int, *, log_level: str = "warning", graceful_seconds: float = 30.0) -> Any:
    """Builds a uvicorn server for the gateway (call ``.run()`` or run it in a thread)."""
    import uvicorn

    config = uvicorn.Config(
        gateway,
        host=host,
        port=port,
        timeout_graceful_shutdown=int(graceful_seconds),
        **{**uvicorn_options(), "log_level": log_level},
    )
    return uvicorn.Server(config)
