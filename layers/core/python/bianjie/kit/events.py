"""Domain events between services: typed contracts, one topic, a queue per consumer, a filter per subscription.

Services never import each other. A producer owns versioned pydantic models of its events
(``EventContract`` subclasses in ``bianjie.contracts.<producer>``, a package every consumer can import
without importing the producer's service) and publishes them through its transactional outbox
(``bianjie.kit.outbox``) to the domain-events topic (SNS; ``DOMAIN_EVENTS_TOPIC``). Each consuming
service owns a queue subscribed with a filter on the ``type`` attribute (template.yaml:
``AWS::SNS::Subscription`` with ``RawMessageDelivery`` and a ``FilterPolicy``) and an SQS-event function
that reads each record with ``Registry.parse`` inside ``bianjie.kit.batch.process``: an envelope that is
malformed, of an unknown type or version, or whose data does not validate raises ``EventRejected`` (a
``Poison``) and goes to the consumer's DLQ at once with its reason.

The envelope follows CloudEvents' core attributes (id, source, type, time, specversion, and the
extension ``dataversion``: the contract's version) so an on-premises broker (Knative Eventing) can carry
it unchanged. ``data`` holds no clear patient data: ids and blind indexes only; consumers look up what
they need from their own stores.

Changing a contract (the policy every producer follows):
- adding an optional field is compatible: add it to the model with a default; publishing refuses fields a
  model does not declare (``extra="forbid"``), and a consumer built with the older model ignores a field
  it does not know (``Registry.parse`` reads only declared fields), so producer and consumer deploy in
  either order;
- anything else (removing, renaming, retyping a field, making one required, changing its meaning) is a
  new version: a new model ``...V2`` with ``version = 2`` beside the old one; the producer publishes both
  until every consumer reads V2, then stops V1. A consumer that meets a version it has no model for
  dead-letters it (``EVENT_VERSION_UNKNOWN``), so nothing is lost while it catches up (redrive the DLQ).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bianjie.kit.batch import Poison
from bianjie.kit.logging import is_sensitive_key


def utc_now_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class EventContract(BaseModel):
    """The data of one event type at one version. Subclasses set ``event_type`` and ``version``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: ClassVar[str]
    version: ClassVar[int] = 1


class EventRejected(Poison):
    """An event a consumer can never process (codes: EVENT_MALFORMED, EVENT_TYPE_UNKNOWN,
    EVENT_VERSION_UNKNOWN, EVENT_INVALID)."""


class Registry:
    """(type, version) -> contract model, for the events one consumer reads."""

    def __init__(self, *contracts: type[EventContract]) -> None:
        self._models: dict[tuple[str, int], type[EventContract]] = {}
        for model in contracts:
            key = (model.event_type, model.version)
            if key in self._models:
                raise ValueError(f"two contracts for {key}")
            self._models[key] = model

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._models

    def types(self) -> list[str]:
        return sorted({t for t, _ in self._models})

    def model(self, event_type: str, version: int) -> type[EventContract]:
        model = self._models.get((event_type, version))
        if model is not None:
            return model
        if any(t == event_type for t, _ in self._models):
            raise EventRejected("EVENT_VERSION_UNKNOWN", f"{event_type} has no contract at version {version}")
        raise EventRejected("EVENT_TYPE_UNKNOWN", f"no contract for event type {event_type!r}")

    def parse(self, envelope: Envelope) -> EventContract:
        """The envelope's data as its contract; fields the model does not declare are ignored (additive
        changes), anything missing or mistyped is ``EVENT_INVALID``."""
        model = self.model(envelope.type, envelope.dataversion)
        known = {k: v for k, v in envelope.data.items() if k in model.model_fields}
        try:
            return model.model_validate(known)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
            raise EventRejected("EVENT_INVALID", f"{envelope.type} v{envelope.dataversion}: {problems}") from exc


class Envelope(BaseModel):
    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str  # the producing service, e.g. "bianjie.rx"
    type: str  # e.g. "rx.dispensed"
    dataversion: int = Field(default=1, ge=1)  # the contract's version (CloudEvents extension attribute)
    time: str = Field(default_factory=lambda: utc_now_iso(time.time()))
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
                "version": {"DataType": "String", "StringValue": str(envelope.dataversion)},
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


def envelope_of(
    source: str, event: EventContract, *, event_id: str, subject: str | None = None, at: float | None = None
) -> Envelope:
    """The envelope of a contract instance. ``event_id`` is stable per fact (e.g. ``<rx_id>-<version>``),
    so a re-sent event is a duplicate consumers recognise. Refuses data that names patient fields."""
    # validate again: model_construct() or a mutated copy would otherwise slip past the contract
    data = type(event).model_validate(event.model_dump(mode="json")).model_dump(mode="json", exclude_none=True)
    sensitive = sorted(_sensitive_keys(data))
    if sensitive:
        raise ValueError(f"event data holds sensitive fields {sensitive}; publish ids, not patient data")
    return Envelope(
        id=event_id,
        source=source,
        type=event.event_type,
        dataversion=event.version,
        time=utc_now_iso(time.time() if at is None else at),
        subject=subject,
        data=data,
    )


class Publisher:
    """Sends an event now, outside any transaction: for tests and tools. Producers use their outbox
    (``bianjie.kit.outbox.Outbox.event``), so no event goes out for a change that did not commit."""

    def __init__(self, sink: EventSink, source: str, clock: Callable[[], float] = time.time) -> None:
        self._sink = sink
        self._source = source
        self._clock = clock

    def publish(self, event: EventContract, *, event_id: str, subject: str | None = None) -> Envelope:
        envelope = envelope_of(self._source, event, event_id=event_id, subject=subject, at=self._clock())
        self._sink.send(envelope)
        return envelope


def parse_envelope(body: str | dict[str, Any]) -> Envelope:
    """An envelope from an SQS body: raw delivery (the envelope itself) or an SNS notification wrapper.
    Raises ``EventRejected("EVENT_MALFORMED")`` for anything else."""
    try:
        payload = json.loads(body) if isinstance(body, str) else body
        if isinstance(payload, dict) and payload.get("Type") == "Notification" and "Message" in payload:
            payload = json.loads(payload["Message"])
        return Envelope.model_validate(payload)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise EventRejected("EVENT_MALFORMED", f"not an event envelope ({where})") from exc
    except (TypeError, ValueError) as exc:
        raise EventRejected("EVENT_MALFORMED", f"the body is not JSON ({exc})") from exc


def sqs_record(record: Any) -> dict[str, Any]:
    """The raw SQS record, from a Chalice ``SQSRecord`` (which exposes only body and receipt handle) or a dict."""
    return record.to_dict() if hasattr(record, "to_dict") else record


def message_id(record: Any) -> str:
    """What ``batchItemFailures[].itemIdentifier`` must name for a record."""
    return str(sqs_record(record)["messageId"])


def read(body: str | dict[str, Any], registry: Registry) -> tuple[Envelope, EventContract]:
    """The envelope and its typed data; ``EventRejected`` when either does not hold."""
    envelope = parse_envelope(body)
    return envelope, registry.parse(envelope)


def scheduled_time(event: dict[str, Any]) -> float | None:
    """The moment a scheduled event was due (EventBridge's ``time``), as epoch seconds; None if absent.

    Sweeps use it as "now", so a sweep replayed or fired "as of" a moment (``bianjie stack fire --time``)
    judges what was due then.
    """
    value = event.get("time") if isinstance(event, dict) else None
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
