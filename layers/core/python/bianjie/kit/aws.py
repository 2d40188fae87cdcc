"""boto3 clients with the configured endpoint (AWS, moto, Ceph RGW, ElasticMQ), created lazily, once per function.

Only adapters and the composition root (``deps``) use this module; domain packages never do.
Credentials come from the function's environment (``bianjie.kit.config.env``), as Lambda sets them;
where it holds none, boto3's own chain applies (instance roles, profiles). The local stack gives each
function its own role's credentials, so each function's clients are its own (``FunctionScope``).
"""

from __future__ import annotations

from typing import Any

from bianjie.kit.config import current_scope, env, settings

_PREFIX = "aws.client:"


def _build(service: str) -> Any:
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
    session = boto3.session.Session(
        aws_access_key_id=env("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env("AWS_SESSION_TOKEN"),
        region_name=cfg.region,
    )
    return session.client(service, endpoint_url=cfg.aws_endpoint_url, config=config)


def client(service: str) -> Any:
    """A shared client per service and function. boto3 clients are thread-safe; sessions are not."""
    scope = current_scope()
    key = _PREFIX + service
    found = scope.cache.get(key)
    if found is not None:
        return found
    with scope.lock:
        if key not in scope.cache:
            scope.cache[key] = _build(service)
        return scope.cache[key]


def reset_clients() -> None:
    from bianjie.kit.config import _scopes

    for scope in list(_scopes):
        with scope.lock:
            for key in [k for k in scope.cache if k.startswith(_PREFIX)]:
                del scope.cache[key]
