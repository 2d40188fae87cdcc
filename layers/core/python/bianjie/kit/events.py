"""Domain events between services: one topic, a queue per consumer, a filter per subscription.

Services never import each other. A producer publishes ``{type, ...}`` to the domain-events topic
(SNS; ``DOMAIN_EVENTS_TOPIC``); each consuming service owns a queue subscribed with a filter on the
``type`` attribute (template.yaml: ``AWS::SNS::Subscription`` with ``RawMessageDelivery`` and a
``FilterPolicy``) and an SQS-event function that reads envelopes with ``envelopes(event)``.

The envelope follows CloudEvents' core attributes (id, source, type, time, specversion) so an
on-premises broker (Knative Eventing) can carry it unchanged. ``data`` must hold no clear patient data:
pass ids and blind indexes; consumers look up what they need from their own stores.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from bianjie.kit.logging import is_sensitive_key


class Envelope(BaseModel):
    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str  # the producing service, e.g. "bianjie.rx"
    type: str  # e.g. "rx.dispensed"
    time: str = Field(default_factory=lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z"))
    subject: str | None = None  # the entity, e.g. the prescription id
    data: dict[str, Any] = Field(default_factory=dict)


class EventSink(Protocol):
    def send(self, envelope: Envelope) -> None: ...


class SnsSink:
    """Publishes to the SNS topic; the ``type`` message attribute drives subscription filters."""

    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._sns = sns_client
        self._topic = topic_arn

    def send(self, envelope: Envelope) -> None:
        self._sns.publish(
            TopicArn=self._topic,
            Message=envelope.model_dump_json(),
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": envelope.type},
                "source": {"DataType": "String", "StringValue": envelope.source},
            },
        )


class MemorySink:
    """In-memory sink for unit tests."""

    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    def send(self, envelope: Envelope) -> None:
        self.sent.append(envelope)

    def of_type(self, event_type: str) -> list[Envelope]:
        return [e for e in self.sent if e.type == event_type]


def _sensitive_keys(value: Any) -> set[str]:
    # By key name only: values such as long numeric ids can look like ID-card numbers without being one.
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if is_sensitive_key(str(key)):
                found.add(str(key))
            found |= _sensitive_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _sensitive_keys(inner)
    return found


class Publisher:
    def __init__(self, sink: EventSink, source: str, clock: Callable[[], float] = time.time) -> None:
        self._sink = sink
        self._source = source
        self._clock = clock

    def publish(
        self, event_type: str, data: dict[str, Any], *, subject: str | None = None, event_id: str | None = None
    ) -> Envelope:
        """``event_id`` makes a retried publish recognisable as a duplicate by consumers."""
        sensitive = sorted(_sensitive_keys(data))
        if sensitive:
            raise ValueError(f"event data holds sensitive fields {sensitive}; publish ids, not patient data")
        envelope = Envelope(
            source=self._source,
            type=event_type,
            subject=subject,
            data=data,
            time=datetime.fromtimestamp(self._clock(), UTC).isoformat().replace("+00:00", "Z"),
            **({"id": event_id} if event_id else {}),
        )
        self._sink.send(envelope)
        return envelope


def parse_envelope(body: str | dict[str, Any]) -> Envelope:
    """An envelope from an SQS body: raw delivery (the envelope itself) or an SNS notification wrapper."""
    payload = json.loads(body) if isinstance(body, str) else body
    if payload.get("Type") == "Notification" and "Message" in payload:
        payload = json.loads(payload["Message"])
    return Envelope.model_validate(payload)


def sqs_record(record: Any) -> dict[str, Any]:
    """The raw SQS record, from a Chalice ``SQSRecord`` (which exposes only body and receipt handle) or a dict."""
    return record.to_dict() if hasattr(record, "to_dict") else record


def message_id(record: Any) -> str:
    """What ``batchItemFailures[].itemIdentifier`` must name for a record."""
    return str(sqs_record(record)["messageId"])


def envelopes(records: Iterable[Any]) -> list[tuple[str, Envelope]]:
    """(message id, envelope) for each record of an SQS event (Chalice SQSEvent or raw records)."""
    return [(message_id(r), parse_envelope(sqs_record(r)["body"])) for r in records]


def scheduled_time(event: dict[str, Any]) -> float | None:
    """The moment a scheduled event was due (EventBridge's ``time``), as epoch seconds; None if absent.

    Sweeps use it as "now", so a sweep replayed or fired "as of" a moment (``bianjie stack fire --time``)
    judges what was due then.
    """
    value = event.get("time") if isinstance(event, dict) else None
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
