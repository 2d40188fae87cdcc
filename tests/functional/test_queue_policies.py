"""Queue policies as AWS applies them: moto delivers SNS and S3 messages to any queue, AWS only where the
queue's policy allows the service for that topic or bucket. The provisioner sets every
AWS::SQS::QueuePolicy on its queues and refuses a stack whose declared deliveries AWS would drop."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.template import Template, load_template
from bianjie_dev.runtime.provision import QUEUE_POLICY_TYPE, Provisioner, UndeliverableError
from moto import mock_aws

from tests.conftest import ROOT

REGION = "cn-north-1"
TEMPLATE = load_template(ROOT / "template.yaml")


def provision(template: Template) -> tuple[Deployment, object]:
    session = boto3.session.Session(region_name=REGION)
    deployment = Deployment("bianjie", REGION, None, None, parameters=template.parameter_defaults())
    Provisioner(template, deployment, session).provision()
    return deployment, session


def without(logical_id: str) -> Template:
    template = copy.deepcopy(TEMPLATE)
    del template.resources[logical_id]
    return template


def test_every_queue_policy_is_set_on_its_queue() -> None:
    with mock_aws():
        deployment, session = provision(TEMPLATE)
        sqs = session.client("sqs")  # type: ignore[attr-defined]
        policies = TEMPLATE.resources_of_type(QUEUE_POLICY_TYPE)
        assert policies, "the template declares queue policies"
        for res in policies.values():
            for queue in res["Properties"]["Queues"]:
                url = deployment.ref(queue["Ref"])
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
                statement = json.loads(attrs["Policy"])["Statement"][0]
                assert statement["Action"] == "sqs:SendMessage"


@pytest.mark.parametrize(
    ("policy", "names"),
    [
        ("GuideDomainEventsQueuePolicy", ("GuideDomainEventsSubscription", "sns.amazonaws.com")),
        ("FilmIngestQueuePolicy", ("FilmIngestBucket", "s3.amazonaws.com")),
    ],
)
def test_a_delivery_without_its_queue_policy_stops_the_stack(policy: str, names: tuple[str, str]) -> None:
    assert policy in TEMPLATE.resources
    with mock_aws(), pytest.raises(UndeliverableError) as refused:
        provision(without(policy))
    for name in names:
        assert name in str(refused.value)


def test_a_policy_for_another_topic_does_not_deliver() -> None:
    template = copy.deepcopy(TEMPLATE)
    statement = template.resources["GuideDomainEventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    statement["Condition"] = {"ArnEquals": {"aws:SourceArn": "arn:aws-cn:sns:cn-north-1:123456789012:another"}}
    with mock_aws(), pytest.raises(UndeliverableError, match="GuideDomainEventsSubscription"):
        provision(template)
