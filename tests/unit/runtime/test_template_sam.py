"""The SAM translator, offline, on the fixture's root and nested stack: roles, environments, Conditions."""

from __future__ import annotations

import pytest
from bianjie.runtime.sam import translate, translate_stack
from bianjie.runtime.template import load_template

from tests.conftest import FIXTURES

FIXTURE = FIXTURES / "stack" / "template.yaml"


def test_translate_expands_functions_into_roles_and_keeps_the_body() -> None:
    t = load_template(FIXTURE)
    root = t.stack("root")
    before = repr(root.body)
    out = translate(root.body, root.parameters)
    assert repr(root.body) == before  # the loaded body is not changed by packaging
    resources = out["Resources"]
    for fn in t.functions:
        if fn.stack is None:
            assert resources[fn.logical_id]["Type"] == "AWS::Lambda::Function"
            assert resources[fn.logical_id]["Properties"]["Role"] == {"Fn::GetAtt": [f"{fn.logical_id}Role", "Arn"]}
    assert resources["GreetApp"]["Type"] == "AWS::CloudFormation::Stack"
    # the partition follows the region (managed policies included)
    arns = resources["EchoFunctionRole"]["Properties"]["ManagedPolicyArns"]
    assert arns == ["arn:aws-cn:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    assert translate(root.body, root.parameters, region="us-east-1")["Resources"]["EchoFunctionRole"]["Properties"][
        "ManagedPolicyArns"
    ] == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]


def _policy_actions(role: dict) -> list[str]:
    actions = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            found = statement["Action"]
            actions.extend([found] if isinstance(found, str) else found)
    return actions


@pytest.mark.parametrize("stage", ["local", "prod"])
def test_translate_stack_applies_conditions_and_binds_parameters(stage: str) -> None:
    t = load_template(FIXTURE, {"Stage": stage})
    out = translate_stack(t.stack("GreetApp"))
    resources = out["Resources"]
    assert ("GreetLocalQueue" in resources) is (stage == "local")
    env = resources["GreetFunction"]["Properties"]["Environment"]["Variables"]
    assert env == t.function("GreetFunction").environment  # SAM's Globals merge agrees with the loader's
    actions = _policy_actions(resources["GreetFunctionRole"])
    assert ("sqs:SendMessage*" in actions) is (stage == "local")
    described = [
        s
        for p in resources["GreetFunctionRole"]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Action"] == "dynamodb:DescribeTable"
    ]
    assert described[0]["Resource"] == {"Fn::GetAtt": ["ProbeTable", "Arn"]}  # in the root's terms


def test_translation_errors_are_reported() -> None:
    body = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "x/"}}},
    }
    with pytest.raises(ValueError, match="SAM translation failed"):
        translate(body)
