"""Party-building services (申康党建), visible only to logged-in members: branches and members (names and
phones SM4-encrypted at rest, every read of them audited), activities published by a party
administrator with sign-up (once per member, within capacity, before the start) and attendance.

Roles (staff tokens): ``party-admin`` manages; ``party-member`` (the token's subject is the member id)
sees activities and signs up. Study materials with progress per member are not built yet."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bianjie.content.model import ONE_LINE, TEXT
from bianjie.content.service import Audit
from bianjie.kit.actor import Actor
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore, KeyCond
from bianjie.kit.errors import AppError, NotFound
from bianjie.kit.timefmt import utc_iso
from bianjie.kit.types import WHOLE, IsoDatetime

CODE = r"^[a-z0-9][a-z0-9-]{0,39}$"


class Cipher(Protocol):
    def encrypt(self, plaintext: str, context: str) -> str: ...
    def decrypt(self, token: str, context: str) -> str: ...


class MemberRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    branch: str = Field(pattern=CODE, description="the branch (党支部) code")
    name: Annotated[str, Field(min_length=1, max_length=30, pattern=ONE_LINE)]
    phone: str | None = Field(default=None, pattern=r"^1[3-9][0-9]{9}$")


class MemberView(BaseModel):
    id: str
    branch: str
    name: str
    phone: str | None = None
    joined_at: str


class ActivityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=64, pattern=ONE_LINE)]
    branch: str | None = Field(default=None, pattern=CODE, description="only this branch's members; none: everyone")
    place: Annotated[str, Field(min_length=1, max_length=64, pattern=ONE_LINE)]
    starts_at: IsoDatetime
    capacity: Annotated[int, Field(ge=1, le=10000), WHOLE]
    summary: Annotated[str, Field(max_length=500, pattern=TEXT)] = ""


class ActivityView(BaseModel):
    id: str
    title: str
    branch: str | None
    place: str
    starts_at: str
    capacity: int
    summary: str
    signed_up: int
    mine: bool = False
    attended: int = 0


class ActivitiesAnswer(BaseModel):
    activities: list[ActivityView]


class AttendanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PartyService:
    def __init__(self, documents: DocumentStore, table: str, cipher: Cipher, audit: Audit,
                 clock: Callable[[], float]) -> None:  # fmt: skip
        self.documents = documents
        self.table = table
        self.cipher = cipher
        self.audit = audit
        self.clock = clock

    @staticmethod
    def _admin(actor: Actor) -> None:
        if actor.kind != "staff" or not actor.has_role("party-admin"):
            raise AppError("需要党建管理员权限 (party-admin)", code="ROLE_REQUIRED", status=403)

    def _member_doc(self, member_id: str) -> dict[str, Any] | None:
        item = self.documents.get(self.table, {"pk": f"party#member#{member_id}", "sk": "profile"})
        return json.loads(item["doc"]) if item else None

    def _member(self, actor: Actor) -> dict[str, Any]:
        if actor.kind != "staff" or not actor.has_role("party-member", "party-admin"):
            raise AppError("仅党员登录后可见", code="ROLE_REQUIRED", status=403)
        doc = self._member_doc(actor.id)
        if doc is None and not actor.has_role("party-admin"):
            raise AppError("未登记为党员，请联系党支部", code="NOT_A_MEMBER", status=403)
        return doc or {"id": actor.id, "branch": None}

    # members -------------------------------------------------------------------------------------

    def put_member(self, actor: Actor, member_id: str, request: MemberRequest) -> MemberView:
        self._admin(actor)
        context = f"content/party/member/{member_id}"
        before = self._member_doc(member_id)
        doc = {
            "id": member_id,
            "branch": request.branch,
            "name": self.cipher.encrypt(request.name, context),
            "phone": self.cipher.encrypt(request.phone, context) if request.phone else None,
            "joined_at": (before or {}).get("joined_at") or utc_iso(self.clock()),
        }
        self.documents.put(self.table, {"pk": f"party#member#{member_id}", "sk": "profile", "doc": json.dumps(doc)})
        self.audit.record(actor=actor, action="content.party.member_put", resource=f"party-member:{member_id}")
        return MemberView(id=member_id, branch=request.branch, name=request.name, phone=request.phone,
                          joined_at=doc["joined_at"])  # fmt: skip

    def get_member(self, actor: Actor, member_id: str) -> MemberView:
        if not (actor.kind == "staff" and (actor.has_role("party-admin") or actor.id == member_id)):
            raise AppError("只能查看本人的党员信息", code="ROLE_REQUIRED", status=403)
        doc = self._member_doc(member_id)
        if doc is None:
            raise NotFound("党员不存在", code="MEMBER_NOT_FOUND")
        context = f"content/party/member/{member_id}"
        self.audit.record(actor=actor, action="content.party.member_read", resource=f"party-member:{member_id}")
        return MemberView(
            id=member_id,
            branch=doc["branch"],
            name=self.cipher.decrypt(doc["name"], context),
            phone=self.cipher.decrypt(doc["phone"], context) if doc.get("phone") else None,
            joined_at=doc["joined_at"],
        )

    # activities ----------------------------------------------------------------------------------

    def publish_activity(self, actor: Actor, request: ActivityRequest) -> ActivityView:
        self._admin(actor)
        activity_id = "pa-" + secrets.token_hex(8)
        doc = {
            "id": activity_id,
            **request.model_dump(mode="json"),
            "starts_at": utc_iso(request.starts_at),
            "published_by": actor.audit_name,
        }
        self.documents.put(
            self.table, {"pk": "party#activities", "sk": activity_id, "doc": json.dumps(doc, ensure_ascii=False)}
        )
        self.audit.record(
            actor=actor, action="content.party.activity_publish", resource=f"party-activity:{activity_id}"
        )
        return self._view(doc, None)

    def _activity(self, activity_id: str) -> dict[str, Any]:
        item = self.documents.get(self.table, {"pk": "party#activities", "sk": activity_id})
        if item is None:
            raise NotFound("活动不存在", code="ACTIVITY_NOT_FOUND")
        return dict(json.loads(item["doc"]))

    def _people(self, activity_id: str, kind: str) -> list[str]:
        page = self.documents.query(
            self.table, KeyCond.of("pk", f"party#activity#{activity_id}").begins_with("sk", f"{kind}#"), limit=1000
        )
        return [str(i["sk"]).split("#", 1)[1] for i in page.items]

    def _view(self, doc: dict[str, Any], member: str | None) -> ActivityView:
        signed = self._people(doc["id"], "signup")
        return ActivityView(
            id=doc["id"], title=doc["title"], branch=doc.get("branch"), place=doc["place"], starts_at=doc["starts_at"],
            capacity=doc["capacity"], summary=doc.get("summary", ""), signed_up=len(signed), mine=member in signed,
            attended=len(self._people(doc["id"], "attend")),
        )  # fmt: skip

    def activities(self, actor: Actor) -> list[ActivityView]:
        member = self._member(actor)
        page = self.documents.query(self.table, KeyCond.of("pk", "party#activities"), limit=200)
        docs = [json.loads(i["doc"]) for i in page.items]
        visible = [
            d
            for d in docs
            if not d.get("branch") or d["branch"] == member.get("branch") or actor.has_role("party-admin")
        ]
        return [self._view(d, actor.id) for d in sorted(visible, key=lambda d: d["starts_at"])]

    def sign_up(self, actor: Actor, activity_id: str) -> ActivityView:
        member = self._member(actor)
        doc = self._activity(activity_id)
        if doc.get("branch") and doc["branch"] != member.get("branch"):
            raise AppError("该活动仅限本支部党员报名", code="OTHER_BRANCH", status=403)
        if doc["starts_at"] <= utc_iso(self.clock()):
            raise AppError("活动已开始，报名已截止", code="SIGNUP_CLOSED", status=409)
        signed = self._people(activity_id, "signup")
        if actor.id in signed:
            raise AppError("您已报名该活动", code="ALREADY_SIGNED_UP", status=409)
        # counted, then written: two sign-ups racing for the last place can both land (docs/content.md)
        if len(signed) >= doc["capacity"]:
            raise AppError("报名人数已满", code="ACTIVITY_FULL", status=409)
        try:
            self.documents.put(
                self.table,
                {"pk": f"party#activity#{activity_id}", "sk": f"signup#{actor.id}", "at": utc_iso(self.clock())},
                condition=Cond.absent(),
            )
        except ConditionFailed:
            raise AppError("您已报名该活动", code="ALREADY_SIGNED_UP", status=409) from None
        self.audit.record(actor=actor, action="content.party.signup", resource=f"party-activity:{activity_id}")
        return self._view(doc, actor.id)

    def attend(self, actor: Actor, activity_id: str, member_id: str) -> ActivityView:
        self._admin(actor)
        doc = self._activity(activity_id)
        if member_id not in self._people(activity_id, "signup"):
            raise AppError("该党员未报名此活动", code="NOT_SIGNED_UP", status=409)
        self.documents.put(
            self.table,
            {"pk": f"party#activity#{activity_id}", "sk": f"attend#{member_id}", "at": utc_iso(self.clock())},
        )
        self.audit.record(actor=actor, action="content.party.attend", resource=f"party-activity:{activity_id}")
        return self._view(doc, None)
