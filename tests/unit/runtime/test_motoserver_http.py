"""The emulator's HTTP server answers what boto3 sends (fix 15 in ``bianjie_dev.runtime.motoserver``)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import waitress
from bianjie_dev.runtime.motoserver import tune_waitress


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Length", str(len(body) + 3))])
    return [b"got" + body]


@pytest.fixture
def server() -> Iterator[int]:
    tune_waitress()
    srv = waitress.create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield srv.effective_port  # type: ignore[union-attr]
    srv.close()


def exchange(port: int, request: bytes, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        if body:
            answer = sock.recv(4096)  # the interim 100 Continue, then the body goes
            sock.sendall(body)
        while b"got" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def test_an_empty_put_that_expects_100_continue_is_answered(server: int) -> None:
    head = b"PUT /k HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"
    answer = exchange(server, head)
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"got")


def test_a_put_with_a_body_still_gets_its_100_continue_first(server: int) -> None:
    head = b"PUT /k HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    answer = exchange(server, head, b"scan")
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\n") and answer.endswith(b"gotscan")
