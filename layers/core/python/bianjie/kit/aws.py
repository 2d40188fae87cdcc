"""boto3 clients with the configured endpoint (AWS, moto, Ceph RGW, ElasticMQ), created lazily, once.

Only adapters and the composition root (``deps``) use this module; domain packages never do.
"""

from __future__ import annotations

import threading
from typing import Any

from bianjie.kit.config import settings

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """A shared client per service. boto3 clients are thread-safe; the session is not, so build once."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _clients:
            import boto3
            from botocore.config import Config

            cfg = settings()
            config = Config(
                region_name=cfg.region,
                max_pool_connections=128,
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=2,
                read_timeout=10,
                s3={"addressing_style": "path"} if cfg.aws_endpoint_url else None,
            )
            _clients[service] = boto3.session.Session().client(
                service, endpoint_url=cfg.aws_endpoint_url, config=config
            )
        return _clients[service]


def reset_clients() -> None:
    with _lock:
        _clients.clear()
