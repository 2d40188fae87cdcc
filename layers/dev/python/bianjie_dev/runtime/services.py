"""The services this installation holds, found by package: ``bianjie.<service>`` beside the kit.

A service plugs into the local stack and the CLI by providing modules with known names
(``demo`` with ``seed(stack)``, ``cli`` with ``register(subparsers)``), so adding one touches no shared file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import bianjie

NOT_SERVICES = ("kit", "runtime", "cli")


def service_modules(name: str) -> list[ModuleType]:
    """``bianjie_dev.<service>.<name>`` for every service that has one, in service-name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(bianjie.__path__), key=lambda i: i.name):
        if not info.ispkg or info.name in NOT_SERVICES:
            continue
        try:
            found.append(importlib.import_module(f"bianjie_dev.{info.name}.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name not in (f"bianjie_dev.{info.name}", f"bianjie_dev.{info.name}.{name}"):
                raise  # the module exists but something it imports is missing: say so
    return found
