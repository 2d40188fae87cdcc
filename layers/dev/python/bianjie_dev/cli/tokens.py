"""Tokens for operators' tools (CLI, demos, benchmarks, tests), minted by the deployment's issuer function.

Nothing here can sign: every token comes from ``TokenIssueFunction`` (the one function holding a signing
key), reached the way the tool can reach it: in the stack's own process (demos at seed time), through
the running local stack's ``/_local/invoke`` (the stand-in for Lambda's Invoke API), or on AWS with
``lambda:InvokeFunction``, which IAM grants to operators only.
"""

from __future__ import annotations

import getpass
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from bianjie.kit.tokens import DEFAULT_TTL

ISSUER_FUNCTION = "TokenIssueFunction"
Invoke = Callable[[dict[str, Any]], Any]


class IssuerRefused(RuntimeError):
    """The issuer answered with an error (its code is in the message)."""


def issue_token(
    invoke: Invoke,
    subject: str,
    kind: str,
    roles: list[str] | tuple[str, ...] = (),
    *,
    ttl_seconds: int = DEFAULT_TTL,
    hospital: str | None = None,
    requested_by: str | None = None,
    **extra: str,
) -> str:
    """A token from the issuer; ``extra`` keywords become the token's ``extra`` claims."""
    event: dict[str, Any] = {
        "subject": subject,
        "kind": kind,
        "roles": list(roles),
        "ttl_seconds": ttl_seconds,
        "requested_by": requested_by or f"system:cli.{getpass.getuser()}",
    }
    if hospital is not None:
        event["hospital"] = hospital
    if extra:
        event["extra"] = extra
    answer = invoke(event)
    if not isinstance(answer, dict) or "token" not in answer:
        error = answer.get("error") if isinstance(answer, dict) else None
        raise IssuerRefused(f"the token issuer refused: {json.dumps(error or answer, ensure_ascii=False)}")
    return str(answer["token"])


def via_stack(stack: Any) -> Invoke:
    """The issuer of a LocalStack in this process (demos, while the stack seeds)."""
    return lambda event: stack.invoke(ISSUER_FUNCTION, event)


def via_gateway(gateway_url: str, timeout: float = 30) -> Invoke:
    """The issuer of a running local stack."""

    def invoke(event: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{gateway_url}/_local/invoke?name={ISSUER_FUNCTION}",
            data=json.dumps(event).encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}")

    return invoke


def via_lambda(function_name: str, lambda_client: Any) -> Invoke:
    """The issuer deployed on AWS (``lambda:InvokeFunction`` on it is the operator's permission)."""

    def invoke(event: dict[str, Any]) -> Any:
        out = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode("utf-8"))
        answer = json.loads(out["Payload"].read() or b"{}")
        if out.get("FunctionError"):
            return {"error": {"code": "ISSUER_FAILED", "message": answer.get("errorMessage", "")}}
        return answer

    return invoke


def for_cli(args: Any) -> Invoke:
    """The issuer a CLI command should ask: ``BIANJIE_TOKEN_ISSUER_FUNCTION`` (a deployed function's name)
    when set, else the local stack's."""
    function_name = os.environ.get("BIANJIE_TOKEN_ISSUER_FUNCTION")
    if function_name:
        import boto3

        region = getattr(args, "region", None) or os.environ.get("AWS_REGION")
        return via_lambda(function_name, boto3.client("lambda", region_name=region))
    from bianjie_dev.cli.main import load_deployment

    deployment = load_deployment(args)
    assert deployment is not None
    if not deployment.gateway_url:
        raise SystemExit("the deployment has no gateway URL; set BIANJIE_TOKEN_ISSUER_FUNCTION")
    return via_gateway(deployment.gateway_url)
