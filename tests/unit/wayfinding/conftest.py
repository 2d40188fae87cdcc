"""A wayfinding service on in-memory ports, with the demo hospital imported and published."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest
from bianjie.kit.actor import Actor
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.objects import MemoryObjectStore
from bianjie.kit.tables import table_spec
from bianjie.wayfinding import api
from bianjie.wayfinding.service import WayfindingService
from bianjie_dev.wayfinding.venues import demo_hospital, to_zip

ADMIN = Actor(kind="staff", id="N001", org="demo-hospital", roles=("nav-admin",))
OTHER_ADMIN = Actor(kind="staff", id="N002", org="other-hospital", roles=("nav-admin",))


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


@dataclass
class Rig:
    db: MemoryDocumentStore
    objects: MemoryObjectStore
    service: WayfindingService
    archive: dict[str, Any]
    venue_id: str

    def feature(self, file: str, name: str) -> str:
        for f in self.archive[file]["features"]:
            if f["properties"].get("name") and f["properties"]["name"].get("zh-Hans") == name:
                return str(f["id"])
        raise KeyError(name)

    def route(self, frm: str, to: str, profile: str = "elevator_first") -> api.RouteAnswer:
        return self.service.route(
            api.RouteQuery.model_validate({"venue": self.venue_id, "from": frm, "to": to, "profile": profile})
        )

    def search(self, q: str, **kw: Any) -> list[str]:
        answer = self.service.search(api.SearchQuery(venue=self.venue_id, q=q, **kw))
        return [h.poi.name for h in answer.hits]


def encoded(archive: dict[str, Any]) -> api.ImportRequest:
    return api.ImportRequest(archive_base64=base64.b64encode(to_zip(archive)).decode())


def make_service() -> tuple[MemoryDocumentStore, MemoryObjectStore, WayfindingService]:
    clock = Clock()
    db = MemoryDocumentStore(
        table_spec("WAYFINDING_TABLE", "wayfinding"), table_spec("AUDIT_TABLE", "audit"), clock=clock
    )
    objects = MemoryObjectStore(clock=clock)
    service = WayfindingService(
        db, "wayfinding", objects, "bucket", AuditLog(db, "audit", clock, service="wayfinding"), clock
    )
    return db, objects, service


@pytest.fixture
def rig() -> Rig:
    db, objects, service = make_service()
    archive = demo_hospital()
    answer = service.import_archive(ADMIN, encoded(archive))
    service.publish(ADMIN, answer.venue_id, answer.version)
    return Rig(db, objects, service, archive, answer.venue_id)
