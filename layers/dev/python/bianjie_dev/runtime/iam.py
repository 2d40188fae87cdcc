"""Each function's IAM role, as the translated template declares it, on the local emulator.

``role_plans`` reads every function's ``AWS::IAM::Role`` out of the SAM translator's output (its inline
policies, expanded from SAM policy templates, and the AWS managed policies it attaches), resolves the
intrinsics with the deployment's physical names and ARNs, and ``provision_roles`` creates the roles in
moto's IAM and assumes each one through STS, so every function calls the emulator with its own role's
temporary credentials (principal ``assumed-role/<role>/<function>``), as on Lambda.

``evaluate`` is the policy evaluation the emulator's door (``bianjie_dev.runtime.door``) applies to every
call: an explicit Deny wins, then any Allow whose Action and Resource match, else an implicit deny.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bianjie.runtime.deployment import ACCOUNT_ID, Deployment, partition, physical_name

# What the AWS managed policies SAM attaches allow (their published documents, trimmed to the actions
# that exist; moto has no copies for the aws-cn partition, so roles get them as inline policies).
MANAGED_POLICY_DOCUMENTS: dict[str, list[dict[str, Any]]] = {
    "AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
    ],
    "AWSLambdaVPCAccessExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DeleteNetworkInterface",
            ],
            "Resource": "*",
        }
    ],
    "AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
}
MANAGED_POLICY_DOCUMENTS["AWSXRayDaemonWriteAccess"] = MANAGED_POLICY_DOCUMENTS["AWSXrayWriteOnlyAccess"]

ROLE_POLICY = "template-policies"  # the one inline policy holding everything the template gives the role
SESSION_SECONDS = 43200  # the longest a role session may last; the stack is restarted long before


@dataclass
class RolePlan:
    function_id: str
    role_logical_id: str
    role_name: str
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # policy name -> resolved document

    @property
    def documents(self) -> list[dict[str, Any]]:
        return list(self.policies.values())

    def combined(self) -> dict[str, Any]:
        """All the role's policies as one document, each statement's ``Sid`` naming the policy it came
        from (one IAM call per role instead of one per policy: start-up time; evaluation is the same)."""
        statements = []
        for name, document in self.policies.items():
            found = document.get("Statement") or []
            sid = re.sub(r"[^A-Za-z0-9]", "", name.title() if name.startswith("managed-") else name)
            for n, statement in enumerate(found if isinstance(found, list) else [found]):
                statements.append({"Sid": sid if n == 0 else f"{sid}Part{n + 1}", **statement})
        return {"Version": "2012-10-17", "Statement": statements}


def managed_document(policy_arn: str) -> dict[str, Any] | None:
    name = policy_arn.rsplit("/", 1)[-1]
    statements = MANAGED_POLICY_DOCUMENTS.get(name)
    return None if statements is None else {"Version": "2012-10-17", "Statement": statements}


def role_plans(translated: Mapping[str, Any], deployment: Deployment) -> list[RolePlan]:
    """Every function's role from the translated template, with intrinsics resolved."""
    resources = translated.get("Resources") or {}
    resolver = deployment.resolver()
    plans: list[RolePlan] = []
    for function_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        role_ref = (resource.get("Properties") or {}).get("Role")
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            continue  # a role ARN given as a string: not one the template declares
        role_id = role_ref["Fn::GetAtt"][0]
        role = resources[role_id]
        props = role.get("Properties") or {}
        plan = RolePlan(function_id, role_id, physical_name(deployment.stack_name, role_id, "role")[:64])
        for policy in props.get("Policies") or []:
            document = resolver.resolve(policy["PolicyDocument"])
            plan.policies[str(policy["PolicyName"])] = {"Version": "2012-10-17", **document}
        for policy_arn in resolver.resolve(props.get("ManagedPolicyArns") or []):
            doc = managed_document(str(policy_arn))
            if doc is None:
                raise ValueError(
                    f"{role_id}: managed policy {policy_arn} is unknown to the local stack (runtime/iam.py)"
                )
            plan.policies[f"managed-{str(policy_arn).rsplit('/', 1)[-1]}"] = doc
        plans.append(plan)
    return plans


def trust_policy(admin_arn: str) -> dict[str, Any]:
    """Lambda assumes the role on AWS; locally the stack's operator principal does it for Lambda."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": admin_arn}, "Action": "sts:AssumeRole"},
        ],
    }


def provision_roles(
    plans: Iterable[RolePlan], session: Any, endpoint_url: str, admin_arn: str, session_names: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """Creates each role in the emulator's IAM and assumes it; returns each function's credentials as
    Lambda passes them (environment variable names)."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.config import Config

    config = Config(max_pool_connections=8)
    iam = session.client("iam", endpoint_url=endpoint_url, config=config)
    sts = session.client("sts", endpoint_url=endpoint_url, config=config)
    trust = json.dumps(trust_policy(admin_arn))

    # moto's IAM backend is not thread-safe (a create_role walks the roles while another adds one, and the
    # server answers 500), so the writes go one at a time; assuming the roles is what runs in parallel
    plans = list(plans)
    arns: dict[str, str] = {}
    for plan in plans:
        arns[plan.function_id] = iam.create_role(
            RoleName=plan.role_name, AssumeRolePolicyDocument=trust, MaxSessionDuration=SESSION_SECONDS
        )["Role"]["Arn"]
        iam.put_role_policy(RoleName=plan.role_name, PolicyName=ROLE_POLICY, PolicyDocument=json.dumps(plan.combined()))

    def one(plan: RolePlan) -> tuple[str, dict[str, str]]:
        role_arn = arns[plan.function_id]
        got = sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName=session_names.get(plan.function_id, plan.function_id)[:64],
            DurationSeconds=SESSION_SECONDS,
        )["Credentials"]
        return plan.function_id, {
            "AWS_ACCESS_KEY_ID": got["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": got["SecretAccessKey"],
            "AWS_SESSION_TOKEN": got["SessionToken"],
        }

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, plans))


# -- evaluation ---------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _matches(patterns: Any, value: str, *, ignore_case: bool) -> bool:
    items = patterns if isinstance(patterns, list) else [patterns]
    return any(_pattern(str(p), ignore_case).match(value) for p in items)


def _applies(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        if not _matches(statement["Action"], action, ignore_case=True):
            return False
    elif "NotAction" in statement:
        if _matches(statement["NotAction"], action, ignore_case=True):
            return False
    else:
        return False
    if "Resource" in statement:
        return _matches(statement["Resource"], resource, ignore_case=False)
    if "NotResource" in statement:
        return not _matches(statement["NotResource"], resource, ignore_case=False)
    return False


def evaluate(documents: Iterable[Mapping[str, Any]], action: str, resource: str) -> str:
    """``"allow"``, ``"deny"`` (an explicit Deny) or ``"implicit"`` (nothing allows it).

    Statements with a ``Condition`` are not evaluated (no SAM policy template we use has one): an Allow
    with a condition does not allow, a Deny with one does not deny, so a conditioned grant fails
    locally rather than passing where AWS might refuse.
    """
    allowed = False
    for document in documents:
        statements = document.get("Statement") or []
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Condition") or not _applies(statement, action, resource):
                continue
            if statement.get("Effect") == "Deny":
                return "deny"
            if statement.get("Effect") == "Allow":
                allowed = True
    return "allow" if allowed else "implicit"


def admin_arn(region: str, user: str) -> str:
    return f"arn:{partition(region)}:iam::{ACCOUNT_ID}:user/{user}"
