"""What the stand-ins record: one outbox row per request a platform would have received."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bianjie.guide.model import CST
from bianjie.guide.store import GuideStore

KEEP_SECONDS = 30 * 86400


class OutboxRecorder:
    def __init__(self, store: GuideStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def record(
        self,
        channel: str,
        *,
        visit_id: str | None,
        kind: str | None,
        dedup_key: str | None,
        to: str,
        template: str,
        content: Any,
        result: dict[str, Any],
        accepted: bool,
    ) -> str:
        now = self.clock()
        at = datetime.fromtimestamp(now, UTC)
        message_id = uuid.uuid4().hex
        item = {
            "pk": message_id,
            "message_id": message_id,
            "channel": channel,
            "visit_id": visit_id or "-",
            "kind": kind,
            "dedup_key": dedup_key,
            "to": to,
            "template": template,
            "content": content,
            "result": result,
            "accepted": accepted,
            "sent_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "day": at.astimezone(CST).date().isoformat(),
            "expires_at": int(now) + KEEP_SECONDS,
        }
        self.store.record_outbox(item)
        return message_id
