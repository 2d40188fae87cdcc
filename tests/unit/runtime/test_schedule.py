"""EventBridge schedule expressions and the scheduler's timing, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bianjie.runtime.invoke import Function
from bianjie.runtime.schedule import Schedule, ScheduleError
from bianjie.runtime.scheduler import Scheduler
from bianjie.runtime.template import FunctionSpec, ScheduleEvent

T0 = datetime(2026, 11, 20, 10, 0, 30, tzinfo=UTC)  # a Friday


def test_rate_fires_every_period_from_start() -> None:
    s = Schedule("rate(5 minutes)")
    assert s.next_after(T0, T0) == T0 + timedelta(minutes=5)
    assert s.next_after(T0 + timedelta(minutes=5), T0) == T0 + timedelta(minutes=10)
    assert s.next_after(T0 + timedelta(minutes=7), T0) == T0 + timedelta(minutes=10)


@pytest.mark.parametrize(
    "bad",
    [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "every 5m",
        "cron(0 8 * * *)",
        "cron(0 8 * * MON *)",
        "cron(0 8 ? * ? *)",
    ],
)
def test_invalid_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule(bad)


def test_cron_utc_daily() -> None:
    s = Schedule("cron(30 16 * * ? *)")
    assert s.next_after(T0) == datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
    assert s.next_after(datetime(2026, 11, 20, 16, 30, tzinfo=UTC)) == datetime(2026, 11, 21, 16, 30, tzinfo=UTC)


def test_cron_day_of_week_numbers_start_at_sunday() -> None:
    # EventBridge: 2 = Monday. The next Monday after Friday 2026-11-20 is 2026-11-23.
    assert Schedule("cron(0 9 ? * 2 *)").next_after(T0) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert Schedule("cron(0 9 ? * MON-FRI *)").next_after(T0) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert Schedule("cron(0 9 ? * 1 *)").next_after(T0) == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_cron_year_field_and_timezone() -> None:
    assert Schedule("cron(0 0 1 1 ? 2028)").next_after(T0) == datetime(2028, 1, 1, tzinfo=UTC)
    # 08:00 in Shanghai is 00:00 UTC.
    shanghai = Schedule("cron(0 8 * * ? *)", "Asia/Shanghai")
    assert shanghai.next_after(T0) == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class RecordingFunction(Function):
    def __init__(self, spec: FunctionSpec) -> None:
        super().__init__(spec, "cn-north-1")
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        self.events.append(event)


def _spec(*events: ScheduleEvent) -> FunctionSpec:
    from pathlib import Path

    return FunctionSpec("Tick", Path("."), "app.tick", "python3.11", 3, 128, {}, [], list(events))


def test_scheduler_fires_due_jobs_with_scheduled_events() -> None:
    clock = FakeClock(T0)
    fn = RecordingFunction(
        _spec(
            ScheduleEvent("Every", "rate(1 minute)"),
            ScheduleEvent("Nightly", "cron(0 1 * * ? *)", input='{"kind": "nightly"}'),
            ScheduleEvent("Off", "rate(1 minute)", enabled=False),
        )
    )
    scheduler = Scheduler([fn], "cn-north-1", clock=clock, spawn=lambda target, *args: target(*args))
    assert [j.name for j in scheduler.jobs] == ["Tick.Every", "Tick.Nightly"]
    assert scheduler.tick() == []
    clock.now = T0 + timedelta(seconds=61)
    due = scheduler.tick()
    assert [j.name for j in due] == ["Tick.Every"]
    assert len(fn.events) == 1 and due[0].runs == 1
    assert fn.events[-1]["detail-type"] == "Scheduled Event" and fn.events[-1]["source"] == "aws.events"
    assert due[0].next_run == T0 + timedelta(minutes=2)
    clock.now = datetime(2026, 11, 21, 1, 0, 0, tzinfo=UTC)
    due = scheduler.tick()
    assert {j.name for j in due} == {"Tick.Every", "Tick.Nightly"}
    assert {"kind": "nightly"} in fn.events and len(fn.events) == 3


def test_overlapping_run_is_skipped() -> None:
    fn = RecordingFunction(_spec(ScheduleEvent("Every", "rate(1 minute)")))
    scheduler = Scheduler([fn], "cn-north-1", clock=FakeClock(T0))
    job = scheduler.jobs[0]
    job.running.acquire()
    assert scheduler.fire(job) is False
    job.running.release()
    assert scheduler.fire(job) is True and job.runs == 1
