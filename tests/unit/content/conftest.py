"""A content service on in-memory documents and objects (tables as the templates declare them), a real
audit chain, a real SM3/HMAC seal, a memory publish queue, and a clock the test moves."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from bianjie.content.adapters.sqlite_search import ObjectIndex
from bianjie.content.model import ArticleDraft
from bianjie.content.oa import OfficialAccount, TokenKeeper
from bianjie.content.publisher import Publisher
from bianjie.content.search import tokenizer
from bianjie.content.service import ContentService
from bianjie.content.store import ContentStore
from bianjie.kit.actor import Actor
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.fieldcrypt import FieldCipher
from bianjie.kit.keys import LocalKeyPort
from bianjie.kit.objects import MemoryObjectStore
from bianjie.kit.queues import MemoryQueues
from bianjie.kit.tables import table_spec
from bianjie_dev.content import wechat_standin
from bianjie_dev.content.wechat_standin import WechatApiStandIn

NOON = datetime(2026, 6, 3, 4, 0, tzinfo=UTC).timestamp()
QUEUE = "memory://content-publish"


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def staff(name: str, *roles: str, org: str = "ruijin") -> Actor:
    return Actor(kind="staff", id=name, org=org, roles=roles)


EDITOR = staff("ed1", "editor")
REVIEWER_A = staff("rv1", "reviewer")
REVIEWER_B = staff("rv2", "reviewer")
CHIEF = staff("ce1", "chief-editor")


@dataclass
class Rig:
    service: ContentService
    store: ContentStore
    documents: MemoryDocumentStore
    objects: MemoryObjectStore
    queues: MemoryQueues
    publisher: Publisher
    standin: WechatApiStandIn
    tokens: TokenKeeper
    clock: Clock

    def jobs(self) -> list[Any]:
        return self.queues.bodies(QUEUE)

    def run_jobs(self) -> list[dict[str, Any]]:
        done = [self.publisher.handle(job["id"]) for job in self.jobs()]
        self.queues.sent.pop(QUEUE, None)
        return done


def article(**overrides: Any) -> ArticleDraft:
    fields: dict[str, Any] = {
        "column": "science",
        "hospital": "ruijin",
        "title": "糖尿病患者的饮食管理",
        "summary": "控制血糖从一日三餐开始",
        "body": "糖尿病患者应定时定量进餐。\n\n少吃精制糖，多吃蔬菜和全谷物。",
        "diseases": [{"code": "E11", "name": "2型糖尿病", "aliases": ["糖尿病"]}],
    }
    fields.update(overrides)
    return ArticleDraft.model_validate(fields)


def three_reviews(service: ContentService, item_id: str) -> Any:
    service.submit(EDITOR, item_id)
    from bianjie.content.model import ContentReviewRequest

    service.review(REVIEWER_A, item_id, ContentReviewRequest(decision="approve", expected_status="review1"))
    service.review(REVIEWER_B, item_id, ContentReviewRequest(decision="approve", expected_status="review2"))
    return service.review(CHIEF, item_id, ContentReviewRequest(decision="approve", expected_status="final"))


@pytest.fixture
def rig() -> Rig:
    clock = Clock()
    db = MemoryDocumentStore(table_spec("CONTENT_TABLE", "content"), table_spec("AUDIT_TABLE", "audit"), clock=clock)
    store = ContentStore(db, "content")
    objects = MemoryObjectStore(clock)
    queues = MemoryQueues()
    audit = AuditLog(db, "audit", clock, service="content")
    service = ContentService(
        store,
        audit,
        queues.sender(QUEUE),
        (lambda key: lambda: key)(secrets.token_bytes(32)),
        clock,
        sign_upload=lambda key, ct, exp: f"https://uploads.example/{key}?ct={ct}&exp={exp}",
    )
    standin = WechatApiStandIn(db, "content")
    cipher = FieldCipher(LocalKeyPort(secrets.token_bytes(16)))
    tokens = TokenKeeper(store, cipher, standin, wechat_standin.APP_ID, lambda: wechat_standin.APP_SECRET, clock)
    oa = OfficialAccount(tokens, standin, wechat_standin.THUMB_MEDIA_ID, "https://site.example")
    publisher = Publisher(store, objects, "site", ObjectIndex(objects, "site", tokenizer()), lambda: oa, audit)
    return Rig(service, store, db, objects, queues, publisher, standin, tokens, clock)


@pytest.fixture(scope="session", autouse=True)
def _ffmpeg_installed() -> None:
    import subprocess

    from tests.conftest import ROOT

    subprocess.run([str(ROOT / "scripts" / "ffmpeg.sh")], check=True, capture_output=True)
