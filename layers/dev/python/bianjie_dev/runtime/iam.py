"""Each function's IAM role, as the translated template declares it, on the local emulator.

``role_plans`` reads every function's ``AWS::IAM::Role`` out of the SAM translator's output (its inline
policies, expanded from SAM policy templates, and the AWS managed policies it attaches), resolves the
intrinsics with the deployment's physical names and ARNs, and ``provision_roles`` creates the roles in
moto's IAM and assumes each one through STS, so every function calls the emulator with its own role's
temporary credentials (principal ``assumed-role/<role>/<function>``), as on Lambda.

``evaluate`` is the policy evaluation the emulator's door (``bianjie_dev.runtime.door``) applies to every
call: an explicit Deny wins, then any Allow whose Action and Resource (and Condition) match, else an
implicit deny. ``evaluate_resource_policy`` reads a resource's own policy (KMS key policies) the same way.
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
        # a role the template names (the token issuer's, which the token keys' policies name) keeps it
        name = resolver.resolve(props["RoleName"]) if props.get("RoleName") else None
        plan = RolePlan(function_id, role_id, str(name or physical_name(deployment.stack_name, role_id, "role"))[:64])
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
    plans: Iterable[RolePlan],
    session: Any,
    endpoint_url: str,
    admin_arn: str,
    session_names: Mapping[str, str],
    *,
    create: bool = True,
) -> dict[str, dict[str, str]]:
    """Creates each role in the emulator's IAM (``create``; a resumed stack's roles exist) and assumes it;
    returns each function's credentials as Lambda passes them (environment variable names)."""
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
        if not create:
            arns[plan.function_id] = iam.get_role(RoleName=plan.role_name)["Role"]["Arn"]
            continue
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


Context = Mapping[str, str]  # condition keys of the request: aws:PrincipalArn, aws:PrincipalAccount...

_STRING_TESTS: dict[str, Any] = {
    "StringEquals": lambda want, got: got == want,
    "StringEqualsIgnoreCase": lambda want, got: got.lower() == want.lower(),
    "StringLike": lambda want, got: bool(_pattern(want, False).match(got)),
    "ArnEquals": lambda want, got: got == want,
    "ArnLike": lambda want, got: bool(_pattern(want, False).match(got)),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def condition_holds(condition: Mapping[str, Any], context: Context) -> bool | None:
    """Whether a statement's ``Condition`` block holds for the request (every operator and every key
    must), ``None`` when it uses an operator or a set qualifier this evaluation does not know.

    Operators: the String and Arn families (Equals, NotEquals, Like, NotLike; StringEqualsIgnoreCase),
    ``Bool``, ``Null``, each with ``...IfExists``. As on AWS, a key the request lacks fails a positive
    operator, satisfies a negated one, and satisfies any operator with ``IfExists``."""
    for operator, tests in condition.items():
        if not isinstance(tests, Mapping) or operator.startswith(("ForAnyValue:", "ForAllValues:")):
            return None
        base = operator.removesuffix("IfExists")
        if_exists = base != operator
        for key, wanted in tests.items():
            values = [str(v) for v in (wanted if isinstance(wanted, list) else [wanted])]
            got = context.get(key)
            if base == "Null":
                holds = any((got is None) == (v.lower() == "true") for v in values)
            elif got is None:
                holds = if_exists or base in _NEGATED
            elif base == "Bool":
                holds = any(got.lower() == v.lower() for v in values)
            elif base in _NEGATED:
                holds = not any(_STRING_TESTS[_NEGATED[base]](v, got) for v in values)
            elif base in _STRING_TESTS:
                holds = any(_STRING_TESTS[base](v, got) for v in values)
            else:
                return None
            if not holds:
                return False
    return True


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement") or []
    return statements if isinstance(statements, list) else [statements]


def evaluate(documents: Iterable[Mapping[str, Any]], action: str, resource: str, context: Context | None = None) -> str:
    """``"allow"``, ``"deny"`` (an explicit Deny) or ``"implicit"`` (nothing allows it).

    A statement's ``Condition`` is evaluated against ``context`` (``condition_holds``). One that cannot
    be evaluated (no context, an unknown operator) makes its Allow allow nothing and its Deny deny: a
    conditioned grant fails locally rather than passing where AWS might refuse.
    """
    allowed = False
    for document in documents:
        for statement in _statements(document):
            if not _applies(statement, action, resource):
                continue
            condition = statement.get("Condition")
            holds = True if not condition else None if context is None else condition_holds(condition, context)
            if statement.get("Effect") == "Deny" and holds is not False:
                return "deny"
            if statement.get("Effect") == "Allow" and holds:
                allowed = True
    return "allow" if allowed else "implicit"


def _principals(statement: Mapping[str, Any]) -> list[str] | None:
    """The AWS principals a resource-policy statement names ("*" for everyone), None for NotPrincipal."""
    if "NotPrincipal" in statement:
        return None
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        named = principal.get("AWS")
        if named is None:
            return []  # service principals: never a function's role
        return [str(p) for p in (named if isinstance(named, list) else [named])]
    return []


def evaluate_resource_policy(
    policy: Mapping[str, Any], action: str, resource: str, context: Context, *, account_root: str
) -> str:
    """A resource policy (a KMS key policy) for the request's principal (``aws:PrincipalArn`` in
    ``context``): ``"deny"`` for an explicit Deny that applies, ``"allow"`` when a statement allows
    the principal itself, ``"account"`` when one allows the principal's account (``account_root``, which
    on AWS hands the decision to the account's IAM policies), else ``"implicit"``. A ``NotPrincipal``
    statement, or a Condition that cannot be evaluated, denies if it is a Deny and allows nothing."""
    principal = context.get("aws:PrincipalArn", "")
    verdict = "implicit"
    for statement in _statements(policy):
        if not _applies(statement, action, resource):
            continue
        named = _principals(statement)
        condition = statement.get("Condition")
        holds = condition_holds(condition, context) if condition else True
        if statement.get("Effect") == "Deny":
            if (named is None or "*" in named or principal in named) and holds is not False:
                return "deny"
            continue
        if statement.get("Effect") != "Allow" or named is None or not holds:
            continue
        if "*" in named or principal in named:
            verdict = "allow"
        elif account_root in named and verdict == "implicit":
            verdict = "account"
    return verdict


def service_may(policy: Mapping[str, Any] | None, service: str, action: str, resource: str, context: Context) -> bool:
    """Whether a resource policy (a queue policy) lets an AWS service principal (``sns.amazonaws.com``,
    ``s3.amazonaws.com``) perform ``action`` on ``resource`` for the request ``context`` (``aws:SourceArn``,
    ``aws:SourceAccount``). Such a principal has no identity policies: only the resource's policy can
    allow it, so no policy allows nothing. An applicable Deny wins; a Condition that cannot be evaluated
    allows nothing and, on a Deny, denies."""
    allowed = False
    for statement in _statements(policy or {}):
        if not _applies(statement, action, resource):
            continue
        if "NotPrincipal" in statement:
            spared = _service_names(statement["NotPrincipal"])
            named = "*" not in spared and service not in spared
        else:
            names = _service_names(statement.get("Principal"))
            named = "*" in names or service in names
        if not named:
            continue
        condition = statement.get("Condition")
        holds = condition_holds(condition, context) if condition else True
        if statement.get("Effect") == "Deny" and holds is not False:
            return False
        if statement.get("Effect") == "Allow" and holds:
            allowed = True
    return allowed


def _service_names(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        named = principal.get("Service")
        if named is None:
            return []
        return [str(p) for p in (named if isinstance(named, list) else [named])]
    return []


def admin_arn(region: str, user: str) -> str:
    return f"arn:{partition(region)}:iam::{ACCOUNT_ID}:user/{user}"
