"""CloudFormation Conditions as the loader evaluates them: Fn::Equals/Not/And/Or, named conditions,
Fn::If in properties and lists, AWS::NoValue."""

from __future__ import annotations

import pytest
from bianjie.runtime.conditions import DROPPED, ConditionError, Conditions
from bianjie.runtime.template import Resolver

PARAMS = Resolver({"Stage": "prod", "Region": "cn-north-1", "Replicas": 2}, {})


def conditions(**definitions: object) -> Conditions:
    return Conditions(definitions, PARAMS.resolve, "test")


def test_operators_and_named_conditions() -> None:
    c = conditions(
        IsProd={"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        IsLocal={"Fn::Equals": ["local", {"Ref": "Stage"}]},
        NotLocal={"Fn::Not": [{"Condition": "IsLocal"}]},
        ProdInChina={"Fn::And": [{"Condition": "IsProd"}, {"Fn::Equals": [{"Ref": "Region"}, "cn-north-1"]}]},
        LocalOrProd={"Fn::Or": [{"Condition": "IsLocal"}, {"Condition": "IsProd"}]},
        TwoReplicas={"Fn::Equals": [{"Ref": "Replicas"}, "2"]},  # compared as strings, as CloudFormation does
        SubEquals={"Fn::Equals": [{"Fn::Sub": "${Stage}-x"}, "prod-x"]},
    )
    assert c.holds("IsProd") and not c.holds("IsLocal") and c.holds("NotLocal")
    assert c.holds("ProdInChina") and c.holds("LocalOrProd")
    assert c.holds("TwoReplicas") and c.holds("SubEquals")


def test_if_picks_a_branch_and_no_value_drops_keys_and_items() -> None:
    c = conditions(IsLocal={"Fn::Equals": [{"Ref": "Stage"}, "local"]})
    no_value = {"Ref": "AWS::NoValue"}
    value = {
        "Variables": {
            "KEPT": "x",
            "LOCAL_ONLY": {"Fn::If": ["IsLocal", {"Ref": "Queue"}, no_value]},
            "MODE": {"Fn::If": ["IsLocal", "standin", {"Fn::If": ["IsLocal", "never", "http"]}]},
        },
        "Policies": ["A", {"Fn::If": ["IsLocal", "B", no_value]}, "C"],
    }
    assert c.apply(value) == {"Variables": {"KEPT": "x", "MODE": "http"}, "Policies": ["A", "C"]}
    assert c.apply(no_value) is DROPPED


def test_errors_name_the_condition() -> None:
    c = conditions(Loop={"Condition": "Loop"}, Bad={"Ref": "Stage"})
    with pytest.raises(ConditionError, match="no condition named Missing"):
        c.holds("Missing")
    with pytest.raises(ConditionError, match="Loop refers to itself"):
        c.holds("Loop")
    with pytest.raises(ConditionError, match="not a condition expression"):
        c.holds("Bad")
    with pytest.raises(ConditionError, match="no condition named Other"):
        c.apply({"Fn::If": ["Other", 1, 2]})


def test_extended_keeps_the_resolver() -> None:
    c = conditions(IsProd={"Fn::Equals": [{"Ref": "Stage"}, "prod"]}).extended(
        {"Also": {"Fn::And": [{"Condition": "IsProd"}, {"Fn::Equals": ["a", "a"]}]}}
    )
    assert c.holds("Also")


@pytest.mark.parametrize(("stage", "deployable"), [("local", False), ("prod", True), ("test", True)])
def test_the_root_template_cannot_be_deployed_to_aws_as_the_local_stage(stage: str, deployable: bool) -> None:
    """CloudFormation evaluates the root's Rules before it creates anything: Stage=local (stand-ins on,
    the default for `make run`) is refused, so forgetting the parameter cannot deploy a stand-in."""
    from bianjie.runtime.template import load_yaml

    from tests.conftest import ROOT

    rules = load_yaml(ROOT / "template.yaml")["Rules"]
    params = Resolver({"Stage": stage}, {})
    verdicts = [
        Conditions({}, params.resolve, "rules").evaluate(assertion["Assert"])
        for rule in rules.values()
        for assertion in rule["Assertions"]
    ]
    assert verdicts and all(verdicts) is deployable
