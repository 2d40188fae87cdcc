"""The scheduler: fires every ``Schedule`` / ``ScheduleV2`` event of template.yaml on time.

It plays EventBridge: the handler gets a "Scheduled Event" (or the event's ``Input`` JSON when the
template gives one). Runs are serial per schedule, like an EventBridge target with no overlap
guarantees relaxed; a run that is still going when the next is due is skipped and logged.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bianjie.runtime.deployment import ACCOUNT_ID, arn
from bianjie.runtime.invoke import Function
from bianjie.runtime.schedule import Schedule
from bianjie.runtime.template import ScheduleEvent

log = logging.getLogger("bianjie.scheduler")


@dataclass
class Job:
    function: Function
    event: ScheduleEvent
    schedule: Schedule
    next_run: datetime
    runs: int = 0
    failures: int = 0
    last_run: datetime | None = None
    running: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return f"{self.function.spec.logical_id}.{self.event.name}"


def scheduled_event(job: Job, region: str, when: datetime) -> dict[str, Any]:
    if job.event.input is not None:
        return json.loads(job.event.input)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn("events", region, f"rule/{job.name}")],
        "detail": {},
    }


def _spawn_thread(target: Callable[..., object], job: Job, when: datetime) -> None:
    threading.Thread(target=target, args=(job, when), name=f"schedule-{job.name}", daemon=True).start()


class Scheduler:
    def __init__(
        self,
        functions: list[Function],
        region: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        spawn: Callable[..., None] | None = None,
    ) -> None:
        self.region = region
        self.clock = clock
        self.spawn = spawn or _spawn_thread
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        started = clock()
        self.jobs: list[Job] = []
        for fn in functions:
            for event in fn.spec.events:
                if isinstance(event, ScheduleEvent) and event.enabled:
                    schedule = Schedule(event.expression, event.timezone)
                    self.jobs.append(Job(fn, event, schedule, schedule.next_after(started, started)))
        self.started = started

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if name in (job.name, job.function.spec.logical_id):
                return job
        raise KeyError(f"no schedule named {name}")

    def fire(self, job: Job, when: datetime | None = None) -> bool:
        """Runs the job now; False when its previous run is still going."""
        if not job.running.acquire(blocking=False):
            log.warning("schedule %s: previous run still going, skipped", job.name)
            return False
        when = when or self.clock()
        try:
            job.function.invoke(scheduled_event(job, self.region, when))
            job.runs += 1
        except Exception:
            job.failures += 1
            log.exception("schedule %s failed", job.name)
        finally:
            job.last_run = when
            job.running.release()
        return True

    def tick(self) -> list[Job]:
        """Fires every job that is due; returns them. The loop calls it; tests call it with a fake clock."""
        now = self.clock()
        due = [job for job in self.jobs if job.next_run <= now]
        for job in due:
            job.next_run = job.schedule.next_after(now, self.started)
            self.spawn(self.fire, job, now)
        return due

    def seconds_until_next(self) -> float:
        if not self.jobs:
            return 60.0
        now = self.clock()
        return max(0.0, min((job.next_run - now).total_seconds() for job in self.jobs))

    def start(self) -> None:
        def loop() -> None:
            while not self.stop_event.is_set():
                self.tick()
                self.stop_event.wait(min(1.0, self.seconds_until_next()) or 0.05)

        self.thread = threading.Thread(target=loop, name="scheduler", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread:
            self.thread.join(timeout=5)
