"""moto's server as the local stack runs it: DynamoDB requests serialised.

moto checks a condition and then writes in separate steps without a lock, so on its threaded server two
concurrent conditional writes to one item can both succeed; DynamoDB serialises them per item. Nonce
replay protection and idempotency depend on that, so every DynamoDB request goes through one lock.

Usage: python -m bianjie.runtime.motoserver -H 127.0.0.1 -p 5000
"""

from __future__ import annotations

import sys
import threading
from typing import Any


def serialise_dynamodb() -> None:
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "_bianjie_locked", False):
        return
    lock = threading.RLock()
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    call_action._bianjie_locked = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    serialise_dynamodb()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
