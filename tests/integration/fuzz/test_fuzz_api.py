"""Every operation of docs/openapi.yaml fuzzed against the local stack with schemathesis: partner
operations signed, token operations with the token their handler wants (personas.py), every check on
(no server error, documented status codes and content types, responses matching their schema,
schema-valid requests accepted, schema-violating ones refused).

The example count per operation is bounded so CI stays fast (BIANJIE_FUZZ_EXAMPLES, default 25; set it
higher for a longer run). CI's examples are the same every run (derandomised); BIANJIE_FUZZ_RANDOM=1
draws new ones each time (`scripts/bench/fuzz.py`, the longer run `make bench` makes)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import requests.auth
import schemathesis
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.cli.tokens import issue_token, via_gateway
from bianjie_dev.runtime.child import StackProcess, project_root
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.integration.fuzz.personas import PERSONAS, Persona, persona_for

EXAMPLES = int(os.environ.get("BIANJIE_FUZZ_EXAMPLES", "25"))
RANDOM = os.environ.get("BIANJIE_FUZZ_RANDOM", "") not in ("", "0")


class Caller(requests.auth.AuthBase):
    """Signs or authorises each request as it is sent, over the exact bytes schemathesis serialised.

    Given to schemathesis as its auth provider, so its authentication checks (a request without the
    header, or with a wrong one, must be refused) send their requests without it."""

    def __init__(self) -> None:
        self.security = ""
        self.persona: Persona | None = None
        self.tokens: dict[Persona, str] = {}
        self.partner: dict[str, Any] = {}

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.security == "partnerSignature":
            parts = urlsplit(request.url or "")
            body = request.body or b""
            if isinstance(body, str):
                body = body.encode("utf-8")
            key = Sm2PrivateKey.from_pem(self.partner["private_key_pem"])
            app_id, serial = str(self.partner["app_id"]), str(self.partner.get("serial") or "1")
            request.headers.update(
                sign_request(key, request.method or "GET", parts.path, parts.query, body, app_id, serial)
            )
        elif self.security == "bearerToken" and self.persona is not None:
            request.headers["Authorization"] = f"Bearer {self.tokens[self.persona]}"
        return request


CALLER = Caller()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("fuzz-stack"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def caller(stack: StackProcess) -> Caller:
    CALLER.partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
    issuer = via_gateway(stack.url)
    CALLER.tokens = {
        p: issue_token(issuer, p.subject, p.kind, p.roles, hospital=p.hospital, id_ref=f"ref-{p.subject}")
        for p in PERSONAS
    }
    return CALLER


schema = schemathesis.openapi.from_path(
    Path(project_root()) / "docs" / "openapi.yaml",
    config=SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml")),
)
schema.auth.set_from_requests(CALLER)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not RANDOM,
    database=None,
)
def test_operation(case: Any, stack: StackProcess, caller: Caller) -> None:
    security = [next(iter(s)) for s in (case.operation.definition.raw.get("security") or [])]
    caller.security = security[0] if security else ""
    caller.persona = persona_for(case.operation.definition.raw.get("operationId", ""))
    case.call_and_validate(base_url=stack.url, timeout=30)
