"""What a deployment of template.yaml is: physical names, ARNs and URLs keyed by logical id.

The local stack writes one to ``.local/stack.json``; the gateway, the pump, the scheduler and the CLI
read it back. On AWS the same facts come from CloudFormation; on premises from the environment.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bianjie.runtime.template import FunctionSpec, Resolver, Template

ACCOUNT_ID = "123456789012"  # moto's default account


# Physical names the local stack and `bianjie db migrate` give resources (CloudFormation picks its own on AWS);
# the event pump, which on-premises containers also run, finds S3 notification queues by these names.
def physical_name(stack: str, logical_id: str, kind: str) -> str:
    name = f"{stack}-{logical_id}"
    if kind == "bucket":
        name = re.sub(r"[^a-z0-9.-]", "-", name.lower())[:63]
    return name


def s3_queue_logical_id(function_id: str, event_name: str) -> str:
    return f"{function_id}.{event_name}.S3Queue"


def s3_event_queue_name(stack: str, function_id: str, event_name: str) -> str:
    """SAM S3 events invoke Lambda directly on AWS; locally they arrive through this hidden queue."""
    return f"{stack}-s3events-{function_id}-{event_name}"[:80]


def partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws"


def arn(service: str, region: str, resource: str, *, account: str | None = ACCOUNT_ID) -> str:
    return f"arn:{partition(region)}:{service}:{region if account else ''}:{account or ''}:{resource}"


@dataclass
class Deployment:
    stack_name: str
    region: str
    aws_endpoint_url: str | None
    gateway_url: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> {type, ref, attrs}
    # the operator's credentials on the local emulator (IAM is enforced there); empty elsewhere
    admin_credentials: dict[str, str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> Any:
        return self.resources[logical_id]["ref"]

    def resolver(self) -> Resolver:
        refs: dict[str, Any] = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": partition(self.region),
            "AWS::URLSuffix": "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com",
            "AWS::NoValue": None,
        }
        refs.update(self.parameters)
        attrs: dict[tuple[str, str], Any] = {}
        for logical_id, info in self.resources.items():
            refs[logical_id] = info["ref"]
            for attr, value in info.get("attrs", {}).items():
                attrs[(logical_id, attr)] = value
        return Resolver(refs, attrs)

    def environment_of(self, fn: FunctionSpec, resolver: Resolver | None = None) -> dict[str, str]:
        """One function's environment as its template declares it (Globals merged), resolved."""
        resolver = resolver or self.resolver()
        resolved = {name: resolver.resolve(raw) for name, raw in fn.environment.items()}
        return {name: str(value) for name, value in resolved.items() if value is not None}

    def function_environment(self, template: Template) -> dict[str, str]:
        """The union of every function's resolved environment: what an operator's tool (the CLI, demo
        seeding) works with. Functions themselves each see only their own (``environment_of``).

        The template's rule is that one variable name means one value everywhere; a variable two
        functions give different values is reported with both names.
        """
        resolver = self.resolver()
        merged: dict[str, str] = {}
        owner: dict[str, str] = {}
        for fn in template.functions:
            for name, value in self.environment_of(fn, resolver).items():
                if name in merged and merged[name] != value:
                    raise ValueError(f"environment variable {name} differs between {owner[name]} and {fn.logical_id}")
                merged[name], owner[name] = value, fn.logical_id
        return merged

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        return cls(**json.loads(path.read_text(encoding="utf-8")))
