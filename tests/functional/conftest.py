"""Functional tier: Chalice apps through ``chalice.test.Client``, AWS through moto in process.

Tables, queues, buckets and keys come from template.yaml through the same provisioner the local
stack uses, so a table missing from the template fails here first. The test itself (seeding, direct
handler calls) works with every function's variables, as an operator would; a route called through
``app_of(...)`` runs as the function template.yaml declares for it, with only that function's
environment (as on the local stack), so a variable the function does not declare fails here too.
IAM is not enforced in this tier (in-process moto); the integration tier enforces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from bianjie.kit.config import FunctionScope, function_scope
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.invoke import lambda_environment, load_module
from bianjie.runtime.template import load_template
from bianjie_dev.runtime.motokms import teach_kms_sm2
from bianjie_dev.runtime.provision import Provisioner
from bianjie_dev.runtime.stack import init_wrapped_secrets
from moto import mock_aws

from tests.conftest import ROOT

REGION = "cn-north-1"
# in-process moto intercepts boto3 only: the objects adapter's direct HTTP to S3 cannot reach it
IN_PROCESS = {"FILM_DIRECT_S3": "0", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_route_scopes: dict[tuple[str, str], FunctionScope] = {}
_function_scopes: dict[str, FunctionScope] = {}
teach_kms_sm2()  # the token signing key is an SM2 KMS key, as in the China regions


def _reset_kit() -> None:
    from bianjie.kit import aws, deps
    from bianjie.kit.config import reset_settings

    reset_settings()
    aws.reset_clients()
    deps.reset()


@pytest.fixture
def aws_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """Every resource of template.yaml in moto, and the functions' environment set as the stack sets it."""
    monkeypatch.delenv("BIANJIE_AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        template = load_template(ROOT / "template.yaml")
        deployment = Deployment("bianjie", REGION, None, None, parameters=template.parameter_defaults())
        Provisioner(template, deployment, session).provision()
        init_wrapped_secrets(deployment, template, session)
        served = ",".join(f.logical_id for f in template.functions)
        for name, value in deployment.function_environment(template).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("BIANJIE_SERVED_FUNCTIONS", served)
        scopes = function_scopes(template, deployment, {"BIANJIE_SERVED_FUNCTIONS": served, **IN_PROCESS})
        _function_scopes.update(scopes)
        _route_scopes.update(route_scopes(template, scopes))
        _reset_kit()
        yield deployment
        _route_scopes.clear()
        _function_scopes.clear()
        _reset_kit()


def function_scopes(template: Any, deployment: Deployment, extra: dict[str, str]) -> dict[str, FunctionScope]:
    """Each function's scope: its own variables and Lambda's."""
    resolver = deployment.resolver()
    found: dict[str, FunctionScope] = {}
    for spec in template.functions:
        name = str(deployment.ref(spec.logical_id))
        environment = {**deployment.environment_of(spec, resolver), **extra, **lambda_environment(spec, REGION, name)}
        found[spec.logical_id] = FunctionScope(spec.logical_id, environment)
    return found


def route_scopes(template: Any, scopes: dict[str, FunctionScope]) -> dict[tuple[str, str], FunctionScope]:
    """(method, path) -> the scope of the function that serves it."""
    found: dict[tuple[str, str], FunctionScope] = {}
    for spec in template.functions:
        for event in spec.api_events():
            found[(event.method, event.path)] = scopes[spec.logical_id]
    return found


class IsolatedApp:
    """A service's Chalice app as ``chalice.test.Client`` sees it, each route run as its function."""

    def __init__(self, app: Any, scopes: dict[tuple[str, str], FunctionScope]) -> None:
        self._app = app
        self._scopes = scopes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        if "httpMethod" not in event:  # not an API call: the test drives a handler itself
            return self._app(event, context)
        key = (str(event["httpMethod"]).upper(), str(event.get("resource")))
        scope = self._scopes.get(key)
        if scope is None:
            raise AssertionError(f"template.yaml declares no function for {key[0]} {key[1]}")
        with function_scope(scope):
            return self._app(event, context)


@dataclass
class DemoPartner:
    app_id: str
    key: Any
    serial: str


@pytest.fixture
def partner(aws_stack: Deployment) -> DemoPartner:
    from bianjie.kit import deps
    from bianjie.kit.crypto import sm2_generate_key

    key = sm2_generate_key()
    serial = deps.partner_registry().add("test-hospital", "测试医院", key.public_key.to_hex(), ["127.0.0.0/8"])
    return DemoPartner("test-hospital", key, serial)


def app_of(service: str) -> Any:
    """The service's Chalice app; inside ``aws_stack``, each route runs as the function serving it."""
    app = load_module(ROOT / "functions" / service / "app.py").app
    return IsolatedApp(app, dict(_route_scopes)) if _route_scopes else app


class IssuerClient:
    """Tokens from the issuer function's own handler (TokenIssueFunction), as the CLI gets them; inside
    ``aws_stack`` the handler runs as that function (its environment and scope)."""

    def __init__(self) -> None:
        self._handler = load_module(ROOT / "functions" / "identity" / "app.py").issue_token
        self._scope = _function_scopes.get("TokenIssueFunction")

    def _invoke(self, event: dict[str, Any]) -> Any:
        if self._scope is None:
            return self._handler(event, None)
        with function_scope(self._scope):
            return self._handler(event, None)

    def issue(self, subject: str, kind: str, roles: Any = (), **claims: Any) -> str:
        from bianjie_dev.cli.tokens import issue_token

        return issue_token(self._invoke, subject, kind, roles, requested_by="system:test", **claims)


def token_issuer() -> IssuerClient:
    return IssuerClient()
