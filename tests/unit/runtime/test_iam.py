"""Roles from the translated template, and the policy evaluation the emulator's door applies."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.sam import translate_stack
from bianjie.runtime.template import SqsEvent, Template, load_template
from bianjie_dev.runtime.iam import evaluate, role_plans

from tests.conftest import ROOT

REGION = "cn-north-1"


def deployment_of(template: Template) -> Deployment:
    """Physical names as the provisioner assigns them, without provisioning anything."""
    d = Deployment("bianjie", REGION, None)
    for stack in template.stacks:
        for logical_id, res in stack.body["Resources"].items():
            name = f"bianjie-{logical_id}"
            attrs = {"Arn": f"arn:aws-cn:x:{REGION}:123456789012:{name}", "QueueName": name, "TopicName": name}
            if res["Type"] == "AWS::KMS::Key":
                attrs["Arn"] = f"arn:aws-cn:kms:{REGION}:123456789012:key/{name}"
            d.resources[logical_id] = {"type": res["Type"], "ref": name, "attrs": attrs}
    d.parameters = {**template.parameter_defaults(), "TokenJwks": "{}", "BlindIndexKeyWrapped": ""}
    return d


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


def plans_of(template: Template) -> dict[str, Any]:
    """Every function's role, read stack by stack as the local stack reads them."""
    deployment = deployment_of(template)
    plans = {}
    for stack in template.stacks:
        for plan in role_plans(translate_stack(stack, region=REGION), deployment):
            plans[plan.function_id] = plan
    return plans


TABLE = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/bianjie-NoncesTable"
MASTER_KEY = "arn:aws-cn:kms:cn-north-1:123456789012:key/bianjie-MasterKey"
SIGNING_KEY = "arn:aws-cn:kms:cn-north-1:123456789012:key/bianjie-TokenSigningKey"


def test_every_function_gets_its_own_role_with_resolved_policies(template: Template) -> None:
    plans = plans_of(template)
    assert sorted(plans) == sorted(fn.logical_id for fn in template.functions)
    assert len({p.role_name for p in plans.values()}) == len(plans)
    partners_me = plans["PartnersMeFunction"]
    assert evaluate(partners_me.documents, "dynamodb:PutItem", TABLE) == "allow"
    assert evaluate(partners_me.documents, "dynamodb:PutItem", TABLE.replace("Nonces", "Partners")) == "implicit"
    assert "Fn::Sub" not in str(partners_me.policies)  # intrinsics resolved with the deployment's names
    combined = partners_me.combined()  # what the role holds in moto: the same grants, one document
    assert evaluate([combined], "dynamodb:PutItem", TABLE) == "allow"
    assert {s["Sid"] for s in combined["Statement"]} >= {
        "PartnersMeFunctionRolePolicy0",
        "ManagedAwslambdabasicexecutionrole",
    }


def test_nested_stacks_policies_name_the_roots_resources(template: Template) -> None:
    plans = plans_of(template)
    assert "Ref" not in str(plans["FilmIngestFunction"].policies)  # MasterKeyArn bound to the root's key
    assert evaluate(plans["FilmIngestFunction"].documents, "kms:GenerateDataKey", MASTER_KEY) == "allow"
    assert evaluate(plans["PayChargeCreateFunction"].documents, "kms:GenerateDataKey", MASTER_KEY) == "allow"


def test_only_the_token_issuer_may_sign_with_the_token_signing_key(template: Template) -> None:
    plans = plans_of(template)
    signers = sorted(f for f, p in plans.items() if evaluate(p.documents, "kms:Sign", SIGNING_KEY) == "allow")
    assert signers == ["TokenIssueFunction"]


def test_removing_one_permission_from_the_template_takes_the_call_away(template: Template) -> None:
    changed = copy.deepcopy(template)
    root = changed.stacks[0]
    assert root.logical_id is None
    props = root.body["Resources"]["PartnersMeFunction"]["Properties"]
    props["Policies"] = [
        p for p in props["Policies"] if p.get("DynamoDBCrudPolicy", {}).get("TableName") != {"Ref": "NoncesTable"}
    ]
    before = plans_of(template)["PartnersMeFunction"].documents
    after = plans_of(changed)["PartnersMeFunction"].documents
    assert evaluate(before, "dynamodb:PutItem", TABLE) == "allow"
    assert evaluate(after, "dynamodb:PutItem", TABLE) == "implicit"


def test_sqs_functions_get_the_managed_policy_sam_attaches(template: Template) -> None:
    sqs_functions = [fn.logical_id for fn in template.functions if any(isinstance(e, SqsEvent) for e in fn.events)]
    assert sqs_functions
    plan = plans_of(template)[sqs_functions[0]]
    assert "managed-AWSLambdaSQSQueueExecutionRole" in plan.policies


@pytest.mark.parametrize(
    ("statements", "action", "resource", "verdict"),
    [
        (
            [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws-cn:s3:::b/*"}],
            "s3:GetObject",
            "arn:aws-cn:s3:::b/k/x",
            "allow",
        ),
        (
            [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws-cn:s3:::b/*"}],
            "s3:GetObject",
            "arn:aws-cn:s3:::c/k",
            "implicit",
        ),
        (
            [{"Effect": "Allow", "Action": "S3:Get*", "Resource": "*"}],
            "s3:GetObject",
            "x",
            "allow",
        ),  # actions ignore case
        (
            [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws-cn:s3:::B/*"}],
            "s3:GetObject",
            "arn:aws-cn:s3:::b/k",
            "implicit",
        ),
        (
            [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"},
            ],
            "kms:Decrypt",
            "k",
            "deny",
        ),
        ([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], "iam:CreateUser", "*", "implicit"),
        ([{"Effect": "Allow", "Action": "sqs:*", "NotResource": "arn:q1"}], "sqs:SendMessage", "arn:q2", "allow"),
        ([{"Effect": "Allow", "Action": "s3:GetObjec?", "Resource": "*"}], "s3:GetObject", "x", "allow"),
        (
            [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                }
            ],
            "s3:GetObject",
            "x",
            "implicit",
        ),
    ],
)
def test_evaluation(statements: list[dict[str, Any]], action: str, resource: str, verdict: str) -> None:
    assert evaluate([{"Version": "2012-10-17", "Statement": statements}], action, resource) == verdict


ROLE = "arn:aws-cn:iam::123456789012:role/bianjie-TokenIssueFunctionRole"
OTHER = "arn:aws-cn:iam::123456789012:role/bianjie-RxPrecheckFunctionRole"
ROOT_ARN = "arn:aws-cn:iam::123456789012:root"


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"ArnEquals": {"aws:PrincipalArn": ROLE}}, {"aws:PrincipalArn": ROLE}, True),
        ({"ArnNotEquals": {"aws:PrincipalArn": ROLE}}, {"aws:PrincipalArn": OTHER}, True),
        (
            {"ArnNotLike": {"aws:PrincipalArn": "arn:*:role/*-TokenIssueFunctionRole"}},
            {"aws:PrincipalArn": ROLE},
            False,
        ),
        (
            {"StringEquals": {"aws:PrincipalAccount": ["1", "123456789012"]}},
            {"aws:PrincipalAccount": "123456789012"},
            True,
        ),
        ({"StringEqualsIgnoreCase": {"k": "ABC"}}, {"k": "abc"}, True),
        ({"StringLike": {"k": "a?c*"}}, {"k": "abcdef"}, True),
        ({"StringEquals": {"k": "v"}}, {}, False),  # a missing key fails a positive operator
        ({"StringNotEquals": {"k": "v"}}, {}, True),  # and satisfies a negated one
        ({"StringEqualsIfExists": {"k": "v"}}, {}, True),
        ({"Null": {"k": "true"}}, {}, True),
        ({"Null": {"k": "false"}}, {}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "True"}, True),
        ({"StringEquals": {"a": "1"}, "ArnEquals": {"b": ROLE}}, {"a": "1", "b": OTHER}, False),  # every operator
        ({"NumericLessThan": {"n": "3"}}, {"n": "1"}, None),  # unknown: not evaluated
        ({"ForAnyValue:StringEquals": {"k": "v"}}, {"k": "v"}, None),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, str], holds: bool | None) -> None:
    from bianjie_dev.runtime.iam import condition_holds

    assert condition_holds(condition, context) is holds


def test_a_conditioned_statement_is_evaluated_against_the_request() -> None:
    deny_others = {
        "Effect": "Deny",
        "Action": "kms:Sign",
        "Resource": "*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": ROLE}},
    }
    allow = {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}
    docs = [{"Statement": [allow, deny_others]}]
    assert evaluate(docs, "kms:Sign", "k", {"aws:PrincipalArn": ROLE}) == "allow"
    assert evaluate(docs, "kms:Sign", "k", {"aws:PrincipalArn": OTHER}) == "deny"
    # without a request context a conditioned Deny denies and a conditioned Allow allows nothing
    assert evaluate(docs, "kms:Sign", "k") == "deny"
    assert evaluate([{"Statement": [{**allow, "Condition": deny_others["Condition"]}]}], "kms:Sign", "k") == "implicit"


KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "AccountAdmin", "Effect": "Allow", "Principal": {"AWS": ROOT_ARN}, "Action": "kms:*", "Resource": "*"},
        {
            "Sid": "OnlyTheIssuerSigns",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "kms:Sign",
            "Resource": "*",
            "Condition": {
                "ArnNotLike": {"aws:PrincipalArn": "arn:aws-cn:iam::123456789012:role/*-TokenIssueFunctionRole"}
            },
        },
        {
            "Sid": "Auditor",
            "Effect": "Allow",
            "Principal": {"AWS": [OTHER]},
            "Action": "kms:GetPublicKey",
            "Resource": "*",
        },
    ],
}


@pytest.mark.parametrize(
    ("principal", "action", "verdict"),
    [
        (ROLE, "kms:Sign", "account"),  # the account's IAM policies decide
        (OTHER, "kms:Sign", "deny"),  # whatever its own policies say
        (OTHER, "kms:GetPublicKey", "allow"),  # named by the key policy itself
        (OTHER, "kms:Verify", "account"),
    ],
)
def test_key_policies(principal: str, action: str, verdict: str) -> None:
    from bianjie_dev.runtime.iam import evaluate_resource_policy

    context = {"aws:PrincipalArn": principal, "aws:PrincipalAccount": "123456789012"}
    assert evaluate_resource_policy(KEY_POLICY, action, "arn:k", context, account_root=ROOT_ARN) == verdict


def test_a_key_policy_without_the_account_statement_delegates_nothing() -> None:
    from bianjie_dev.runtime.iam import evaluate_resource_policy

    only_other = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:*", "Resource": "*"}]}
    context = {"aws:PrincipalArn": ROLE}
    assert evaluate_resource_policy(only_other, "kms:Sign", "arn:k", context, account_root=ROOT_ARN) == "implicit"


TOPIC = "arn:aws-cn:sns:cn-north-1:123456789012:bianjie-DomainEventsTopic"
QUEUE = "arn:aws-cn:sqs:cn-north-1:123456789012:bianjie-GuideDomainEventsQueue"
QUEUE_POLICY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
            "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC}},
        }
    ]
}


@pytest.mark.parametrize(
    ("policy", "service", "source", "allowed"),
    [
        (QUEUE_POLICY, "sns.amazonaws.com", TOPIC, True),
        (QUEUE_POLICY, "sns.amazonaws.com", TOPIC + "-other", False),  # another topic
        (QUEUE_POLICY, "s3.amazonaws.com", TOPIC, False),  # another service
        (None, "sns.amazonaws.com", TOPIC, False),  # a service has no identity policy: nothing allows it
        (
            {
                "Statement": [
                    *QUEUE_POLICY["Statement"],
                    {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": "*"},
                ]
            },
            "sns.amazonaws.com",
            TOPIC,
            False,  # an applicable Deny wins
        ),
        (
            {
                "Statement": [
                    {
                        **QUEUE_POLICY["Statement"][0],
                        "Condition": {"ForAnyValue:ArnEquals": {"aws:SourceArn": [TOPIC]}},
                    }
                ]
            },
            "sns.amazonaws.com",
            TOPIC,
            False,  # a condition this evaluation cannot read allows nothing
        ),
    ],
)
def test_service_principals_on_queue_policies(policy: Any, service: str, source: str, allowed: bool) -> None:
    from bianjie_dev.runtime.iam import service_may

    context = {"aws:SourceArn": source, "aws:SourceAccount": "123456789012"}
    assert service_may(policy, service, "sqs:SendMessage", QUEUE, context) is allowed
