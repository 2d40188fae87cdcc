"""The gateway's uvicorn protocol turns Nagle's algorithm off on connections of a socket asyncio would
leave alone (proto 0, as uvicorn's multi-worker supervisor binds it)."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from bianjie.runtime import gateway
from uvicorn.server import ServerState


async def _app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _server_nodelay(protocol_class: type[asyncio.Protocol]) -> tuple[int, bytes]:
    async def run() -> tuple[int, bytes]:
        config = uvicorn.Config(_app, http=protocol_class, lifespan="off", log_level="warning")
        config.load()
        state = ServerState()
        seen: list[int] = []

        class Probe(protocol_class):  # type: ignore[valid-type, misc]
            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                sock = transport.get_extra_info("socket")
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        def factory() -> asyncio.Protocol:
            return Probe(config=config, server_state=state, app_state={})  # type: ignore[no-any-return]

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, like uvicorn's bind_socket
        listener.bind(("127.0.0.1", 0))
        server = await asyncio.get_running_loop().create_server(factory, sock=listener)
        port = listener.getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await reader.read(1024)
        writer.close()
        server.close()
        await server.wait_closed()
        assert seen, answer
        return seen[0], answer

    return asyncio.run(run())


def test_no_delay_protocol_sets_tcp_nodelay_on_a_proto_0_socket() -> None:
    nodelay, answer = _server_nodelay(gateway.NoDelayHttpToolsProtocol)
    assert nodelay != 0
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")


def test_plain_httptools_protocol_leaves_nagle_on_there() -> None:
    # what the fix is for: asyncio alone does not set it on such a socket
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    nodelay, _ = _server_nodelay(HttpToolsProtocol)
    assert nodelay == 0


def test_gateway_options_name_the_protocol() -> None:
    assert gateway.uvicorn_options()["http"] == "bianjie.runtime.gateway:NoDelayHttpToolsProtocol"
