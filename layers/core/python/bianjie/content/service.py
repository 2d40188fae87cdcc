"""Use cases of the editorial workflow: write, submit, review, publish (now or at a time), withdraw and
revise articles and videos; what staff may read. Every step is sealed and audited; a step that makes an
item public (or takes it down) asks the publisher queue to render the website, the search index and the
official account. Nothing here reads the public pages: the publisher does, from published records only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Protocol

from bianjie.content import workflow
from bianjie.content.model import (
    VIDEO_COLUMN,
    ArticleDraft,
    ContentReviewRequest,
    ItemView,
    VideoCreated,
    VideoDraft,
    hospital_name,
)
from bianjie.content.store import Contended, ContentStore
from bianjie.content.workflow import WorkflowRefused, WorkflowStep
from bianjie.kit.actor import Actor
from bianjie.kit.audit import canonical_json
from bianjie.kit.crypto import hmac_sm3, sm3
from bianjie.kit.errors import AppError, NotFound
from bianjie.kit.timefmt import utc_iso


class Audit(Protocol):
    def record(self, *, actor: Actor | str, action: str, resource: str, **kwargs: Any) -> Any: ...


class Sender(Protocol):
    def send(self, payload: Any, delay_seconds: int = 0, attributes: Any = None) -> Any: ...


class UploadSigner(Protocol):
    def __call__(self, key: str, content_type: str, expires_in: int) -> str: ...


def published_digest(doc: dict[str, Any]) -> str:
    """SM3 over what the public sees of a record: the integrity value kept with it and shown on the page."""
    public = {k: doc.get(k) for k in ("id", "version", "column", "hospital", "title", "summary", "body", "diseases")}
    return sm3(canonical_json(public)).hex()


def upload_key(item_id: str) -> str:
    return f"uploads/{item_id}/source"


class ContentService:
    UPLOAD_EXPIRES_S = 3600

    def __init__(
        self,
        store: ContentStore,
        audit: Audit,
        publish_queue: Sender,
        seal_key: Callable[[], bytes],
        clock: Callable[[], float],
        sign_upload: UploadSigner | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.publish_queue = publish_queue
        self.seal_key = seal_key
        self.clock = clock
        self.sign_upload = sign_upload

    # -- writing -----------------------------------------------------------------------------------

    def _staff(self, actor: Actor, role: str, column: str) -> None:
        if actor.kind != "staff" or not workflow.holds_role(actor, role, column):
            raise AppError(f"需要栏目 {column} 的 {role} 权限", code="ROLE_REQUIRED", status=403)

    def create_article(self, actor: Actor, draft: ArticleDraft) -> ItemView:
        self._staff(actor, "editor", draft.column)
        doc = self._new_doc("a", actor, draft.column, draft.hospital)
        doc.update(self._article_fields(draft))
        self.store.create(doc, self._text(doc))
        self.audit.record(
            actor=actor, action="content.create", resource="content:" + doc["id"], details={"column": doc["column"]}
        )
        return self._view(doc, [])

    def ingest_article(self, actor: Actor, draft: ArticleDraft) -> ItemView:
        """A draft from a hospital's source (the aggregator): it enters the same three reviews."""
        if actor.kind != "system":
            raise AppError("only the aggregator ingests", code="ROLE_REQUIRED", status=403)
        doc = self._new_doc("a", actor, draft.column, draft.hospital)
        doc.update(self._article_fields(draft))
        self.store.create(doc, self._text(doc))
        self.audit.record(
            actor=actor, action="content.ingest", resource="content:" + doc["id"], details={"source": draft.source_url}
        )
        return self._view(doc, [])

    def create_video(self, actor: Actor, draft: VideoDraft) -> VideoCreated:
        self._staff(actor, "editor", VIDEO_COLUMN)
        if actor.org and actor.org != draft.hospital and not actor.has_role("chief-editor"):
            raise AppError("只能为本院上传视频", code="HOSPITAL_MISMATCH", status=403)
        if self.sign_upload is None:
            raise RuntimeError("this function does not sign uploads")
        doc = self._new_doc("v", actor, VIDEO_COLUMN, draft.hospital)
        doc.update(
            title=draft.title,
            summary=draft.summary,
            body="",
            topic=draft.topic,
            diseases=[d.model_dump() for d in draft.diseases],
            departments=list(draft.departments),
            audience=draft.audience,
            media={"state": "uploading", "content_type": draft.content_type, "size_bytes": draft.size_bytes},
        )
        self.store.create(doc, self._text(doc))
        self.audit.record(
            actor=actor, action="content.create", resource="content:" + doc["id"], details={"column": VIDEO_COLUMN}
        )
        url = self.sign_upload(upload_key(doc["id"]), draft.content_type, self.UPLOAD_EXPIRES_S)
        return VideoCreated(item=self._view(doc, []), upload_url=url, upload_expires_in=self.UPLOAD_EXPIRES_S)

    def revise_article(self, actor: Actor, item_id: str, draft: ArticleDraft) -> ItemView:
        """A new version of the text (every version is kept); the item goes back to draft."""
        doc, rev = self._load(item_id)
        if doc["kind"] != "article":
            raise AppError("视频请重新上传", code="NOT_AN_ARTICLE", status=422)
        if draft.column != doc["column"]:
            raise AppError("栏目不能修改；请新建稿件", code="COLUMN_FIXED", status=422)
        steps = self.store.steps(item_id)
        new_status = workflow.next_status(
            doc["status"], "revise", actor, column=doc["column"], history=_objs(steps), version=doc["version"]
        )
        before = doc["status"]
        doc.update(self._article_fields(draft))
        doc["version"] += 1
        step = self._step(actor, "revise", before, new_status, doc, steps)
        doc.update(status=new_status, updated_at=step["at"], published_at=None, digest=None)
        try:
            self.store.save(doc, rev, step=step, version_text=self._text(doc))
        except Contended:
            raise AppError("稿件已被他人修改，请刷新后重试", code="ITEM_CONTENDED", status=409) from None
        self.audit.record(
            actor=actor, action="content.revise", resource="content:" + item_id, details={"version": doc["version"]}
        )
        return self._view(doc, [*steps, step])

    # -- the workflow ------------------------------------------------------------------------------

    def submit(self, actor: Actor, item_id: str) -> ItemView:
        doc, rev = self._load(item_id)
        if doc["kind"] == "video" and (doc.get("media") or {}).get("state") != "ready":
            raise AppError("视频尚未转码完成，不能送审", code="MEDIA_NOT_READY", status=409)
        return self._move(actor, doc, rev, "submit")

    def review(self, actor: Actor, item_id: str, request: ContentReviewRequest) -> ItemView:
        doc, rev = self._load(item_id)
        if doc["status"] != request.expected_status:
            raise WorkflowRefused(
                f"稿件已处于{workflow.STAGE_NAMES[doc['status']]}，不在{workflow.STAGE_NAMES[request.expected_status]}",
                code="STATE_CONFLICT",
                status=409,
            )
        if request.decision == "reject" and not request.reason.strip():
            raise AppError("退回须写明理由", code="REASON_REQUIRED", status=422)
        return self._move(actor, doc, rev, request.decision, reason=request.reason.strip() or None)

    def withdraw(self, actor: Actor, item_id: str, reason: str) -> ItemView:
        doc, rev = self._load(item_id)
        return self._move(actor, doc, rev, "withdraw", reason=reason)

    def publish_due(self, now: float | None = None) -> list[str]:
        """The schedule: scheduled items whose time has come become public."""
        now = self.clock() if now is None else now
        done = []
        for doc in self.store.by_status("scheduled", limit=200):
            if doc.get("publish_at") and doc["publish_at"] <= utc_iso(now):
                head = self.store.head(doc["id"])
                if head is None:
                    continue
                try:
                    self._move(Actor.system("content-publish-schedule"), head[0], head[1], "publish_due")
                except (WorkflowRefused, AppError):
                    continue
                done.append(doc["id"])
        return done

    def _move(self, actor: Actor, doc: dict[str, Any], rev: int, action: Any, reason: str | None = None) -> ItemView:
        steps = self.store.steps(doc["id"])
        later = bool(doc.get("publish_at")) and doc["publish_at"] > utc_iso(self.clock())
        new_status = workflow.next_status(
            doc["status"],
            action,
            actor,
            column=doc["column"],
            history=_objs(steps),
            version=doc["version"],
            publish_later=later,
        )
        before = doc["status"]
        step = self._step(actor, action, before, new_status, doc, steps, reason)
        doc.update(status=new_status, updated_at=step["at"])
        if new_status == "published":
            if not workflow.reviewed_thrice(_objs([*steps, step]), doc["version"]):
                raise WorkflowRefused("未经三审的稿件不能发布", code="NOT_REVIEWED", status=409)
            doc["published_at"] = step["at"]
            doc["digest"] = published_digest(doc)
        elif new_status in ("withdrawn", "rejected"):
            doc["published_at"] = None
            doc["digest"] = None
        try:
            self.store.save(doc, rev, step=step)
        except Contended:
            raise AppError("稿件已被他人处理，请刷新后重试", code="ITEM_CONTENDED", status=409) from None
        self.audit.record(
            actor=actor,
            action=f"content.{action}",
            resource="content:" + doc["id"],
            details={"from": before, "to": new_status, "version": doc["version"], "seal": step["seal"]},
        )
        if new_status == "published" or before in ("published", "scheduled"):
            self.publish_queue.send({"id": doc["id"], "version": doc["version"], "status": new_status})
        return self._view(doc, [*steps, step])

    # -- reading -----------------------------------------------------------------------------------

    def get(self, actor: Actor, item_id: str) -> ItemView:
        doc, _ = self._load(item_id)
        self._may_read(actor, doc)
        return self._view(doc, self.store.steps(item_id))

    def queue(self, actor: Actor, status: str) -> list[ItemView]:
        if actor.kind != "staff" or not any(r.split("-")[0] in ("editor", "reviewer", "chief") for r in actor.roles):
            raise AppError("需要编辑、审核或总编辑权限", code="ROLE_REQUIRED", status=403)
        found = []
        for doc in self.store.by_status(status):
            if any(workflow.holds_role(actor, r, doc["column"]) for r in ("editor", "reviewer", "chief-editor")):
                found.append(self._view(doc, []))
        return found

    def versions(self, actor: Actor, item_id: str) -> list[dict[str, Any]]:
        doc, _ = self._load(item_id)
        self._may_read(actor, doc)
        return self.store.versions(item_id)

    def _may_read(self, actor: Actor, doc: dict[str, Any]) -> None:
        if actor.kind != "staff" or not any(
            workflow.holds_role(actor, r, doc["column"]) for r in ("editor", "reviewer", "chief-editor")
        ):
            raise AppError("没有查看该栏目稿件的权限", code="ROLE_REQUIRED", status=403)

    # -- pieces ------------------------------------------------------------------------------------

    def _load(self, item_id: str) -> tuple[dict[str, Any], int]:
        found = self.store.head(item_id)
        if found is None:
            raise NotFound("稿件不存在", code="ITEM_NOT_FOUND")
        return found

    def _step(
        self,
        actor: Actor,
        action: str,
        before: str,
        after: str,
        doc: dict[str, Any],
        steps: list[dict[str, Any]],
        reason: str | None = None,
    ) -> dict[str, Any]:
        previous = steps[-1]["seal"] if steps else ""
        step: dict[str, Any] = {
            "seq": len(steps) + 1,
            "action": action,
            "actor": actor.audit_name,
            "from_status": before,
            "to_status": after,
            "version": doc["version"],
            "at": utc_iso(self.clock(), "milliseconds"),
            "reason": reason,
        }
        step["seal"] = self.seal(step, previous)
        return step

    def seal(self, step: dict[str, Any], previous: str) -> str:
        body = {k: v for k, v in step.items() if k != "seal"}
        return hmac_sm3(self.seal_key(), previous.encode() + canonical_json(body)).hex()

    def verify_seals(self, item_id: str) -> bool:
        """Whether every step of the item still carries the seal it was written with (tamper check)."""
        previous = ""
        for step in self.store.steps(item_id):
            if step.get("seal") != self.seal(step, previous):
                return False
            previous = step["seal"]
        return True

    def _new_doc(self, prefix: str, actor: Actor, column: str, hospital: str) -> dict[str, Any]:
        now = utc_iso(self.clock(), "milliseconds")
        return {
            "id": f"{prefix}-{secrets.token_hex(8)}",
            "kind": "article" if prefix == "a" else "video",
            "status": "draft",
            "version": 1,
            "column": column,
            "hospital": hospital,
            "created_by": actor.audit_name,
            "created_at": now,
            "updated_at": now,
            "published_at": None,
            "digest": None,
        }

    @staticmethod
    def _article_fields(draft: ArticleDraft) -> dict[str, Any]:
        return {
            "title": draft.title,
            "summary": draft.summary,
            "body": draft.body.replace("\r\n", "\n"),
            "topic": draft.topic,
            "diseases": [d.model_dump() for d in draft.diseases],
            "source_url": draft.source_url,
            "publish_at": utc_iso(draft.publish_at) if draft.publish_at else None,
        }

    @staticmethod
    def _text(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: doc.get(k) for k in ("version", "title", "summary", "body", "topic", "diseases")}

    def _view(self, doc: dict[str, Any], steps: list[dict[str, Any]]) -> ItemView:
        media = doc.get("media")
        shown = ("state", "reason", "duration_s", "renditions", "cover")
        return ItemView.model_validate(
            {
                **{k: v for k, v in doc.items() if k not in ("media", "oa", "kind_rendered")},
                "hospital_name": hospital_name(doc["hospital"]),
                "media": {k: v for k, v in media.items() if k in shown} if media else None,
                "history": steps,
            }
        )


def _objs(steps: list[dict[str, Any]]) -> list[WorkflowStep]:
    return [WorkflowStep.of(s) for s in steps]
