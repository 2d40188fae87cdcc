"""Malware check of uploaded attachments with a ClamAV daemon (clamd) over TCP, its INSTREAM command.

``CONSULT_CLAMD_HOST`` / ``CONSULT_CLAMD_PORT`` (3310). A clamd that cannot be reached raises, so the
attachment check is retried (the queue redelivers) rather than passing an unchecked file.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

CHUNK = 64 * 1024


@dataclass
class ClamdScanner:
    host: str
    port: int = 3310
    timeout: float = 20.0

    def infected(self, data: bytes) -> bool:
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
            sock.sendall(b"zINSTREAM\0")
            for i in range(0, len(data), CHUNK):
                chunk = data[i : i + CHUNK]
                sock.sendall(struct.pack(">I", len(chunk)) + chunk)
            sock.sendall(struct.pack(">I", 0))
            answer = b""
            while not answer.endswith(b"\0"):
                part = sock.recv(4096)
                if not part:
                    break
                answer += part
        text = answer.rstrip(b"\0").decode("utf-8", "replace")
        if text.endswith("OK"):
            return False
        if text.endswith("FOUND"):
            return True
        raise RuntimeError(f"clamd answered {text!r}")
