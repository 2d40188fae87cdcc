"""Butler guidance (管家式指引): visit events in, the patient's board and to-do cards out, and the
notification fan-out (channel queues, senders, dead letters, schedules)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bianjie.guide import bridge
from bianjie.guide.api import (
    EventBatch,
    EventBatchAnswer,
    OutboxAnswer,
    OutboxQuery,
    SubscribeAnswer,
    SubscribeResults,
)
from bianjie.guide.delivery import ChannelJob
from bianjie.guide.prefs import Preferences
from bianjie.guide.service import Dashboard, VisitBoard
from bianjie.guide.wiring import guide_deliverer, guide_outbox, guide_service, hospital_pharmacy_place
from bianjie.kit import batch, deps
from bianjie.kit.web import ServiceApp

app = ServiceApp("guide")
OPERATOR_ROLES = ("guide-operator", "developer")


# -- HTTP ---------------------------------------------------------------------------------------------


@app.route(
    "/guide/events",
    methods=["POST"],
    auth="partner",
    request=EventBatch,
    response=EventBatchAnswer,
    summary="Post visit events from a hospital system (batch of 1-100; idempotent by event id)",
    errors=("VISIT_CONTENDED",),
)
def post_events() -> EventBatchAnswer:
    actor = app.partner_actor()
    results = guide_service().ingest(actor, app.body(EventBatch).events)
    return EventBatchAnswer(
        accepted=sum(r.status == "accepted" for r in results),
        duplicates=sum(r.status == "duplicate" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        results=results,
    )


@app.route(
    "/guide/dashboard",
    methods=["GET"],
    auth="token",
    response=Dashboard,
    summary="The patient's home-page to-do cards and visits, each with its next step",
)
def get_dashboard() -> Dashboard:
    claims = app.user(kind="patient")
    return guide_service().dashboard(claims.sub, request_id=app.request_id)


@app.route(
    "/guide/visits/{visit_id}",
    methods=["GET"],
    auth="token",
    response=VisitBoard,
    summary="The visit board: state, next to-do with place, history",
    errors=("VISIT_NOT_FOUND",),
)
def get_visit(visit_id: str) -> VisitBoard:
    claims = app.user(kind="patient")
    return guide_service().board(claims.sub, visit_id, request_id=app.request_id)


@app.route(
    "/guide/preferences",
    methods=["GET"],
    auth="token",
    response=Preferences,
    summary="The patient's notification preferences",
)
def get_preferences() -> Preferences:
    claims = app.user(kind="patient")
    return guide_service().preferences(claims.sub)


@app.route(
    "/guide/preferences",
    methods=["PUT"],
    auth="token",
    request=Preferences,
    response=Preferences,
    summary="Set channels, muted kinds and quiet hours",
)
def put_preferences() -> Preferences:
    claims = app.user(kind="patient")
    return guide_service().set_preferences(claims.sub, app.body(Preferences))


@app.route(
    "/guide/subscriptions",
    methods=["POST"],
    auth="token",
    request=SubscribeResults,
    response=SubscribeAnswer,
    summary="Record the WeChat subscribe popup's answers (one credit per accept)",
    errors=("TEMPLATE_UNKNOWN",),
)
def post_subscriptions() -> SubscribeAnswer:
    claims = app.user(kind="patient")
    body = app.body(SubscribeResults)
    return SubscribeAnswer(ledgers=guide_service().record_subscriptions(claims.sub, dict(body.results)))


@app.route(
    "/guide/outbox",
    methods=["GET"],
    auth="token",
    response=OutboxAnswer,
    query=OutboxQuery,
    summary="What the channel stand-ins recorded (operators, developers)",
)
def get_outbox() -> OutboxAnswer:
    claims = app.user(*OPERATOR_ROLES, kind="staff")
    query = app.query(OutboxQuery)
    service = guide_service()
    deps.audit_log("guide").record(
        actor=f"staff:{claims.sub}",
        action="guide.outbox.read",
        resource=f"guide.outbox:{query.visit_id or query.day or 'today'}",
        request_id=app.request_id,
    )
    return OutboxAnswer(
        messages=service.outbox(visit_id=query.visit_id, day=query.day, limit=query.limit),
        notifications=service.notifications(query.visit_id) if query.visit_id else [],
    )


# -- queues -------------------------------------------------------------------------------------------


@app.lambda_function(name="on_domain_event")
def on_domain_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Other services' events (rx, pay, film) from guide's subscribed queue, read through their contracts."""
    service = guide_service()
    return batch.process_partial_response(
        event,
        lambda m: bridge.consume(service, m.body, hospital_pharmacy_place),
        dead_letters=deps.dead_letters("GUIDE_DOMAIN_EVENTS_DLQ"),
        name="guide.domain_events",
    )


def _deliver_batch(event: dict[str, Any], channel: str) -> dict[str, Any]:
    deliverer = guide_deliverer()

    def one(message: batch.SqsMessage) -> None:
        deliverer.deliver(channel, ChannelJob.model_validate(message.json()).key)  # RetryLater: redelivered

    return batch.process_partial_response(
        event, one, dead_letters=deps.dead_letters(f"GUIDE_{channel.upper()}_DLQ"), name=f"guide.send_{channel}"
    )


@app.lambda_function(name="send_wechat")
def send_wechat(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _deliver_batch(event, "wechat")


@app.lambda_function(name="send_sms")
def send_sms(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _deliver_batch(event, "sms")


@app.lambda_function(name="on_dead_letter")
def on_dead_letter(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Messages that used up their retries: WeChat ones fall back to SMS, SMS ones are marked dead. This is
    the last stop: a poison message here is logged with its reason and dropped."""
    deliverer = guide_deliverer()

    def one(message: batch.SqsMessage) -> str:
        job = ChannelJob.model_validate(message.json())
        return deliverer.dead_letter(job.channel, job.key)

    outcome = batch.process(event, one, dead_letters=None, name="guide.dead_letters")
    return {**outcome.response(), "outcomes": list(outcome.results.values())}


# -- schedules ----------------------------------------------------------------------------------------


def scheduled_time(event: dict[str, Any]) -> datetime | None:
    """The moment a scheduled event stands for (EventBridge's "time"; `bianjie stack fire --time`)."""
    raw = event.get("time") if isinstance(event, dict) else None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if raw else None
    except ValueError:
        return None


@app.lambda_function(name="remind_day_before")
def remind_day_before(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return guide_service().run_schedule("day_before", scheduled_time(event))


@app.lambda_function(name="remind_soon")
def remind_soon(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return guide_service().run_schedule("soon", scheduled_time(event))


@app.lambda_function(name="remind_preconsult")
def remind_preconsult(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return guide_service().run_schedule("preconsult", scheduled_time(event))


@app.lambda_function(name="invite_survey")
def invite_survey(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return guide_service().run_schedule("survey", scheduled_time(event))


@app.lambda_function(name="release_deferred")
def release_deferred(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return guide_service().run_schedule("release", scheduled_time(event))


@app.lambda_function(name="relay_outbox")
def relay_outbox(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Publish guide events whose send right after their commit never happened (a crash, a topic outage)."""
    return guide_outbox().relay()  # type: ignore[no-any-return]
