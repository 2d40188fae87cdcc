"""AWS-API adapters of the pay service: SQS queues (webhook outbox, stand-in callback outbox) and the
S3 bucket for reconciliation reports. Endpoints come from the kit (AWS, moto, ElasticMQ, Ceph RGW)."""

from __future__ import annotations

import json
from typing import Any

from bianjie.kit import aws


class SqsQueue:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        aws.client("sqs").send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(message, ensure_ascii=False, separators=(",", ":")),
            DelaySeconds=max(0, min(900, int(delay_seconds))),
        )


class S3ReportSink:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def write(self, day: str, report: dict[str, Any]) -> str:
        key = f"reconciliation/{day}/report.json"
        aws.client("s3").put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(report, ensure_ascii=False, indent=2).encode("utf-8"),
            ContentType="application/json; charset=utf-8",
        )
        return f"s3://{self.bucket}/{key}"

    def read(self, day: str) -> dict[str, Any] | None:
        try:
            obj = aws.client("s3").get_object(Bucket=self.bucket, Key=f"reconciliation/{day}/report.json")
        except aws.client("s3").exceptions.NoSuchKey:
            return None
        return json.loads(obj["Body"].read())
