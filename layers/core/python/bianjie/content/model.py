"""Content records and the requests that make them: articles (图文) in the website's columns and videos in
the health-education library, both under one workflow (``bianjie.content.workflow``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bianjie.content.workflow import Status
from bianjie.kit.types import WHOLE, IsoDatetime

Column = Literal["news", "health", "science", "guides"]
COLUMNS: dict[str, str] = {"news": "医联动态", "health": "健康资讯", "science": "科普知识", "guides": "疾病防治指南"}
VIDEO_COLUMN = "video"
Audience = Literal["public", "patients", "elderly", "children", "women", "staff"]
AUDIENCES: dict[str, str] = {
    "public": "公众",
    "patients": "患者",
    "elderly": "老年人",
    "children": "儿童",
    "women": "妇女",
    "staff": "医务人员",
}
# The city hospitals the centre runs (申康: 37 市级医院); codes as the hospitals' partner app ids use them.
HOSPITALS: dict[str, str] = {
    "ruijin": "瑞金医院",
    "renji": "仁济医院",
    "zhongshan": "中山医院",
    "huashan": "华山医院",
    "sh1": "上海市第一人民医院",
    "sh6": "上海市第六人民医院",
    "xinhua": "新华医院",
    "children": "上海市儿童医院",
    "chest": "上海市胸科医院",
    "mental": "上海市精神卫生中心",
    "hospital-a": "示范医院",
}
ICD10 = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?")
HOSPITAL_CODE = r"^[a-z0-9][a-z0-9-]{0,39}$"
ITEM_ID = r"^[av]-[0-9a-f]{16}$"
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
ONE_LINE = r"^[^\x00\r\n]*$"
TEXT = r"^[^\x00]*$"  # no NUL in any text (every store's driver refuses one)
URL = r"^https?://[\x21-\x7e]+$"
Text64 = Annotated[str, Field(min_length=1, max_length=64, pattern=ONE_LINE)]
Name32 = Annotated[str, Field(min_length=1, max_length=32, pattern=ONE_LINE)]
Department = Annotated[str, Field(min_length=1, max_length=20, pattern=ONE_LINE)]


def hospital_name(code: str) -> str:
    return HOSPITALS.get(code, code)


class Disease(BaseModel):
    """A disease the item is about: ICD-10 code, its Chinese name and aliases people search by."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$", description="ICD-10, e.g. E11 or I63.9")
    name: Annotated[str, Field(min_length=1, max_length=32, pattern=ONE_LINE)]
    aliases: list[Name32] = Field(default_factory=list, max_length=10)


class ArticleDraft(BaseModel):
    """What an editor writes: plain text paragraphs (a blank line between them), never HTML."""

    model_config = ConfigDict(extra="forbid")
    column: Column
    hospital: str = Field(pattern=HOSPITAL_CODE, description="the hospital the item is attributed to")
    title: Text64
    summary: Annotated[str, Field(max_length=120, pattern=ONE_LINE)] = ""
    body: Annotated[str, Field(min_length=1, max_length=20000, pattern=TEXT)]
    topic: Annotated[str, Field(max_length=32, pattern=ONE_LINE)] = ""
    diseases: list[Disease] = Field(default_factory=list, max_length=10)
    source_url: Annotated[str, Field(max_length=500, pattern=URL)] | None = None
    publish_at: IsoDatetime | None = Field(default=None, description="publish after the final review, not before")


class VideoDraft(BaseModel):
    """A hospital's video: metadata now, the file by the presigned upload the answer carries."""

    model_config = ConfigDict(extra="forbid")
    hospital: str = Field(pattern=HOSPITAL_CODE)
    title: Text64
    summary: Annotated[str, Field(max_length=300, pattern=TEXT)] = ""
    departments: list[Department] = Field(default_factory=list, max_length=5)
    diseases: list[Disease] = Field(default_factory=list, max_length=10)
    topic: Annotated[str, Field(max_length=32, pattern=ONE_LINE)] = ""
    audience: Audience = "public"
    content_type: Literal["video/mp4", "video/quicktime", "video/webm"]
    size_bytes: Annotated[int, Field(ge=1, le=2_147_483_648), WHOLE]


class ContentReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]
    reason: Annotated[str, Field(max_length=200, pattern=TEXT)] = ""
    expected_status: Literal["review1", "review2", "final"] = Field(
        description="the stage the reviewer saw: a review of a stage the item has left is refused (409)"
    )


class WithdrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT)]


class StepView(BaseModel):
    seq: int
    action: str
    actor: str
    from_status: str
    to_status: str
    version: int
    at: str
    reason: str | None = None
    seal: str = Field(description="HMAC-SM3 over the step and the previous step's seal (hex)")


class Rendition(BaseModel):
    name: str
    height: int
    bandwidth: int
    playlist: str


class MediaState(BaseModel):
    state: Literal["uploading", "processing", "ready", "refused"]
    reason: str | None = None
    duration_s: float | None = None
    renditions: list[Rendition] = Field(default_factory=list)
    cover: str | None = None


class ItemView(BaseModel):
    """An article or a video as staff see it (the website shows only what is published)."""

    id: str
    kind: Literal["article", "video"]
    status: Status
    version: int
    column: str
    hospital: str
    hospital_name: str
    title: str
    summary: str
    body: str = ""
    topic: str = ""
    diseases: list[Disease] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list)
    audience: str = "public"
    source_url: str | None = None
    publish_at: str | None = None
    created_by: str
    created_at: str
    updated_at: str
    published_at: str | None = None
    digest: str | None = Field(default=None, description="SM3 of the published record (integrity)")
    media: MediaState | None = None
    history: list[StepView] = Field(default_factory=list)


class VideoCreated(BaseModel):
    item: ItemView
    upload_url: str = Field(description="presigned PUT for the file; send the declared Content-Type")
    upload_expires_in: int


class QueueQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["draft", "review1", "review2", "final", "scheduled", "published", "rejected", "withdrawn"]


class QueueAnswer(BaseModel):
    items: list[ItemView]


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: Annotated[str, Field(min_length=1, max_length=50)]
    kind: Literal["article", "video"] | None = None
    hospital: str | None = Field(default=None, pattern=HOSPITAL_CODE)
    disease: str | None = Field(default=None, pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
    limit: int = Field(default=10, ge=1, le=50)


class ContentSearchHit(BaseModel):
    id: str
    kind: Literal["article", "video"]
    title: str
    summary: str
    hospital: str
    hospital_name: str
    column: str
    url: str
    score: float


class Facet(BaseModel):
    value: str
    label: str
    count: int


class ContentSearchAnswer(BaseModel):
    query: str
    terms: list[str]
    total: int
    hits: list[ContentSearchHit]
    facets: dict[str, list[Facet]]
