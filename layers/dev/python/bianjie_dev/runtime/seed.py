"""Demo data for the local stack: partner apps with fresh SM2 keys, written to ``.local/partners``,
then each service's own demo data.

A service seeds itself by providing ``bianjie.<service>.demo.seed(stack)``; it is found here by name, so
adding a service touches no shared file. A seeder may append URLs to ``stack.demo_urls`` for the banner,
and may name the services whose demo data it builds on in ``NEEDS`` (a tuple of service names).

``make run`` seeds every service. A test's stack seeds only what it uses (``bianjie stack run --seed
guide,rx``, ``StackProcess(seed=["guide", "rx"])``): the services it names and what they need, in the
usual order; the partner apps always.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Collection
from typing import Any

log = logging.getLogger("bianjie.seed")

DEMO_PARTNERS = [
    # app id, name, allowed CIDRs (loopback only: the local stack listens on 127.0.0.1)
    ("demo-hospital", "演示医院 (demo hospital HIS)", ["127.0.0.0/8", "::1/128"]),
    ("demo-yilian", "申康医联平台 (demo 医联 platform)", ["127.0.0.0/8", "::1/128"]),
]


def seed_partners(stack: Any) -> None:
    from bianjie.kit import deps
    from bianjie.kit.crypto import sm2_generate_key

    registry = deps.partner_registry()
    out = stack.options.local_dir / "partners"
    out.mkdir(parents=True, exist_ok=True)
    for app_id, name, cidrs in DEMO_PARTNERS:
        key = sm2_generate_key()
        serial = registry.add(app_id, name, key.public_key.to_hex(), cidrs)
        path = out / f"{app_id}.json"
        path.write_text(
            json.dumps(
                {
                    "app_id": app_id,
                    "name": name,
                    "key_serial": serial,
                    "private_key_pem": key.to_pem(),
                    "public_key": key.public_key.to_hex(),
                    "gateway_url": stack.gateway_url,
                    "allowed_cidrs": cidrs,
                },
                ensure_ascii=False,
                indent=2,
            ),
            encoding="utf-8",
        )
        os.chmod(path, 0o600)


def service_seeders(only: Collection[str] | None = None) -> list[Callable[[Any], None]]:
    """Every service's seeder, or those of ``only`` and what they need; an unknown name is refused."""
    from bianjie_dev.runtime.services import service_modules

    modules = {module.__name__.split(".")[1]: module for module in service_modules("demo")}
    if only is None:
        return [modules[name].seed for name in _needs_first(modules, list(modules))]
    wanted: set[str] = set()
    pending = list(only)
    while pending:
        name = pending.pop()
        if name not in modules:
            raise ValueError(f"no service {name!r} has demo data; known: {', '.join(modules)}")
        if name not in wanted:
            wanted.add(name)
            pending.extend(getattr(modules[name], "NEEDS", ()))
    return [modules[name].seed for name in _needs_first(modules, [n for n in modules if n in wanted])]


def _needs_first(modules: dict[str, Any], names: list[str]) -> list[str]:
    """``names`` in their order, except that what a service ``NEEDS`` is seeded before it (the pages'
    demo links carry what rx's demo wrote)."""
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in ordered or name in path or name not in names:
            return
        for need in getattr(modules[name], "NEEDS", ()):
            visit(need, (*path, name))
        ordered.append(name)

    for name in names:
        visit(name, ())
    return ordered


def seed_demo_data(stack: Any, only: Collection[str] | None = None) -> None:
    stack.demo_urls = []
    seed_partners(stack)
    for seeder in service_seeders(only):
        began = time.perf_counter()
        seeder(stack)
        log.info("seeded", extra={"seeder": seeder.__module__, "seconds": round(time.perf_counter() - began, 2)})
