"""Refusals of the ``bianjie ops`` commands: a stable code, a Chinese message for the operator, an exit
status; the CLI prints them as one JSON line on stderr, never a traceback."""

from __future__ import annotations


class OpsError(Exception):
    def __init__(self, code: str, message: str, *, status: int = 2) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
