"""Film fixtures: generated studies put into the ingest bucket (moto), and the ingest handler driven with
the queue's real messages, as the event pump and Lambda's SQS event source do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from bianjie.kit.signing import sign_request
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.invoke import load_module

from tests.conftest import ROOT
from tests.functional.conftest import REGION, DemoPartner, app_of


class FilmStack:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.module = load_module(ROOT / "functions" / "film" / "app.py")
        self.app = app_of("film")  # each route as the function serving it
        self.ingest_bucket = deployment.ref("FilmIngestBucket")
        self.derived_bucket = deployment.ref("FilmDerivedBucket")
        self.queue_url = deployment.ref("FilmIngestQueue")
        self.dlq_url = deployment.ref("FilmIngestDLQ")

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.ingest_bucket, Key=key, Body=body)

    def put_files(self, hospital: str, paths: list[Path]) -> None:
        for path in paths:
            self.put(f"{hospital}/{path.parent.name}/{path.name}", path.read_bytes())

    def drain(self, max_rounds: int = 50) -> list[dict[str, Any]]:
        """Receives the queue's messages in batches of 10 and runs the ingest handler on each batch;
        returns the handler's answers. Failed messages are made visible again at once, as a retry."""
        answers = []
        for _ in range(max_rounds):
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
            messages = got.get("Messages") or []
            if not messages:
                break
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes") or {},
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:cn-north-1:123456789012:film",
                        "awsRegion": REGION,
                    }
                    for m in messages
                ]
            }
            answer = self.module.ingest(event, None)
            answers.append(answer)
            failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return answers

    def dead_letters(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        return got.get("Messages") or []

    def get_json(self, key: str) -> Any:
        import gzip

        body = self.s3.get_object(Bucket=self.derived_bucket, Key=key)["Body"].read()
        return json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)


@pytest.fixture
def film(aws_stack: Deployment) -> FilmStack:
    return FilmStack(aws_stack)


@pytest.fixture(scope="session")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Path]]:
    from bianjie_dev.film import testdata

    spec = testdata.StudySpec(hospital="test-hospital")
    paths = testdata.write_study(tmp_path_factory.mktemp("study"), spec, ct_slices=6, mr_slices=3, us_frames=4)
    return spec, paths


Signer = Callable[..., dict[str, str]]


def signer(partner: DemoPartner) -> Signer:
    def sign(method: str, path: str, body: bytes = b"", query: str = "") -> dict[str, str]:
        headers = sign_request(partner.key, method, path, query, body, partner.app_id, partner.serial)
        if body:
            headers["Content-Type"] = "application/json"
        return headers

    return sign
