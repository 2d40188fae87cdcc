"""Functional tier: Chalice apps through ``chalice.test.Client``, AWS through moto in process.

Tables, queues, buckets and keys come from template.yaml through the same provisioner the local
stack uses, so a table missing from the template fails here first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.invoke import load_module
from bianjie.runtime.template import load_template
from bianjie_dev.runtime.motokms import teach_kms_sm2
from bianjie_dev.runtime.provision import Provisioner
from bianjie_dev.runtime.stack import init_wrapped_secrets
from moto import mock_aws

from tests.conftest import ROOT

REGION = "cn-north-1"
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
        for name, value in deployment.function_environment(template).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("BIANJIE_SERVED_FUNCTIONS", ",".join(f.logical_id for f in template.functions))
        _reset_kit()
        yield deployment
        _reset_kit()


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
    return load_module(ROOT / "functions" / service / "app.py").app


class IssuerClient:
    """Tokens from the issuer function's own handler (TokenIssueFunction), as the CLI gets them."""

    def __init__(self) -> None:
        self._handler = load_module(ROOT / "functions" / "identity" / "app.py").issue_token

    def issue(self, subject: str, kind: str, roles: Any = (), **claims: Any) -> str:
        from bianjie_dev.cli.tokens import issue_token

        return issue_token(
            lambda event: self._handler(event, None), subject, kind, roles, requested_by="system:test", **claims
        )


def token_issuer() -> IssuerClient:
    return IssuerClient()
