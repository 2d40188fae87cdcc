"""Roles from the translated template, and the policy evaluation the emulator's door applies."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.iam import evaluate, role_plans
from bianjie.runtime.sam import translate
from bianjie.runtime.template import load_template

from tests.conftest import ROOT

REGION = "cn-north-1"


def deployment_of(body: dict[str, Any]) -> Deployment:
    """Physical names as the provisioner assigns them, without provisioning anything."""
    d = Deployment("bianjie", REGION, None)
    for logical_id, res in body["Resources"].items():
        name = f"bianjie-{logical_id}"
        attrs = {"Arn": f"arn:aws-cn:x:{REGION}:123456789012:{name}", "QueueName": name, "TopicName": name}
        if res["Type"] == "AWS::KMS::Key":
            attrs["Arn"] = f"arn:aws-cn:kms:{REGION}:123456789012:key/{name}"
        d.resources[logical_id] = {"type": res["Type"], "ref": name, "attrs": attrs}
    d.parameters = {"Stage": "local", "TokenSecretWrapped": "", "BlindIndexKeyWrapped": "", "TracingMode": "off"}
    return d


@pytest.fixture(scope="module")
def template_body() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml").body


def plans_of(body: dict[str, Any]) -> dict[str, Any]:
    deployment = deployment_of(body)
    translated = translate(body, {**deployment.parameters, "AWS::Region": REGION})
    return {p.function_id: p for p in role_plans(translated, deployment)}


TABLE = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/bianjie-NoncesTable"


def test_every_function_gets_its_own_role_with_resolved_policies(template_body: dict[str, Any]) -> None:
    plans = plans_of(template_body)
    functions = [k for k, v in template_body["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
    assert sorted(plans) == sorted(functions)
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


def test_removing_one_permission_from_the_template_takes_the_call_away(template_body: dict[str, Any]) -> None:
    body = copy.deepcopy(template_body)
    policies = body["Resources"]["PartnersMeFunction"]["Properties"]["Policies"]
    body["Resources"]["PartnersMeFunction"]["Properties"]["Policies"] = [
        p for p in policies if p.get("DynamoDBCrudPolicy", {}).get("TableName") != {"Ref": "NoncesTable"}
    ]
    before = plans_of(template_body)["PartnersMeFunction"].documents
    after = plans_of(body)["PartnersMeFunction"].documents
    assert evaluate(before, "dynamodb:PutItem", TABLE) == "allow"
    assert evaluate(after, "dynamodb:PutItem", TABLE) == "implicit"


def test_sqs_functions_get_the_managed_policy_sam_attaches(template_body: dict[str, Any]) -> None:
    sqs_functions = [
        fid
        for fid, res in template_body["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
        and any(e.get("Type") == "SQS" for e in (res["Properties"].get("Events") or {}).values())
    ]
    assert sqs_functions
    plan = plans_of(template_body)[sqs_functions[0]]
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
