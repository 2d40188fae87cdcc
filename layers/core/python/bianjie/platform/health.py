"""What ``GET /health/detail`` tells an operator: version, stage and which functions this deployment serves.

``GET /health`` itself answers only that the service is up: version and function names help an attacker
choose an exploit, so they are for authenticated operators.
"""

from __future__ import annotations

from typing import Any

import bianjie
from bianjie.kit.config import env

OPERATOR_ROLE = "operator"


def served_functions() -> list[str]:
    # The gateway names the functions it serves; on Lambda each function serves only itself.
    served = env("BIANJIE_SERVED_FUNCTIONS")
    if served:
        return sorted(f for f in served.split(",") if f)
    own = env("AWS_LAMBDA_FUNCTION_NAME")
    return [own] if own else []


def report(context: Any = None) -> dict[str, Any]:
    return {
        "status": "ok",
        "service": "bianjie",
        "version": bianjie.__version__,
        "stage": env("BIANJIE_STAGE", "local"),
        "function": getattr(context, "function_name", None),
        "functions": served_functions(),
    }
