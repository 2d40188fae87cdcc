"""The consult API's models (pydantic v2, the edge): requests, answers, and the stored shapes they map to.

Field rules a validator enforces are also in the JSON Schema (lengths, patterns, bounds), so the OpenAPI
document and the fuzz tier see them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bianjie.kit.types import WHOLE, IsoDatetime

_CODE = r"^[A-Za-z0-9_.\-]+$"
_TEXT = r"^[^\x00]*$"  # no NUL: the edge refuses one (kit.web), and the schema says so
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=_CODE)]
Text = Annotated[str, Field(min_length=1, max_length=2000, pattern=_TEXT)]
Service = Literal["mdt", "imaging_review"]
AgreementStatus = Literal["active", "suspended", "terminated"]
CredentialStatus = Literal["active", "suspended"]
Status = Literal["draft", "scheduled", "in_progress", "awaiting_report", "completed", "cancelled"]
Box = Literal["mine", "joined"]
Answer = Literal["needs_action", "accepted", "declined"]
ReportStatus = Literal["draft", "final", "amended"]

STATUS_ZH = {
    "draft": "草稿",
    "scheduled": "待会诊",
    "in_progress": "会诊中",
    "awaiting_report": "待报告",
    "completed": "已完成",
    "cancelled": "已取消",
}
FOUR_STATES = ("scheduled", "in_progress", "awaiting_report", "completed")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- scope: agreements and credentials


class AgreementRequest(Strict):
    """协作协议: which institutions may consult together, on what, in which departments, until when."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=_TEXT)]
    parties: list[Code] = Field(min_length=2, max_length=10, description="partner app ids of the institutions")
    services: list[Service] = Field(min_length=1, max_length=2)
    departments: list[Annotated[str, Field(min_length=1, max_length=64, pattern=_TEXT)]] = Field(
        default_factory=list, max_length=50, description="departments covered; empty = every department"
    )
    valid_from: date
    valid_to: date
    status: AgreementStatus = "active"


class AgreementUpdate(AgreementRequest):
    version: Annotated[int, Field(ge=1, le=10**9), WHOLE] = Field(description="the version read (optimistic lock)")


class ScopeAgreementView(BaseModel):
    agreement_id: str
    name: str
    parties: list[str]
    services: list[str]
    departments: list[str]
    valid_from: date
    valid_to: date
    status: str
    active: bool = Field(description="status active and today inside the validity period")
    version: int
    updated_at: str
    updated_by: str


class ScopeAgreementList(BaseModel):
    items: list[ScopeAgreementView]


class CredentialRequest(Strict):
    """A doctor's credential (医师执业信息) as platform staff verified it."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=_TEXT)]
    licence_no: Annotated[str, Field(min_length=6, max_length=32, pattern=r"^[A-Za-z0-9]+$")]
    title: Annotated[str, Field(min_length=1, max_length=32, description="职称, e.g. 主任医师", pattern=_TEXT)]
    department: Annotated[str, Field(min_length=1, max_length=64, pattern=_TEXT)]
    multi_site: list[Code] = Field(default_factory=list, max_length=10, description="多点执业 filed at these")
    status: CredentialStatus = "active"


class CredentialView(BaseModel):
    org: str
    doctor_code: str
    name: str
    licence_no: str
    title: str
    department: str
    multi_site: list[str]
    status: str
    updated_at: str
    updated_by: str


class CredentialList(BaseModel):
    items: list[CredentialView]


class CredentialQuery(Strict):
    org: Code


class ColleagueView(BaseModel):
    org: str
    doctor_code: str
    name: str
    title: str
    department: str
    via: str = Field(description="same institution, or the agreement that allows the invitation")


class ColleagueList(BaseModel):
    items: list[ColleagueView]


# ---------------------------------------------------------------- apply


class DoctorRef(Strict):
    org: Code
    doctor_code: Code


class VisitRecord(Strict):
    """One chosen 问诊记录 of the patient (from the applicant's hospital system)."""

    visit_id: Code
    visit_date: date
    department: Annotated[str, Field(min_length=1, max_length=64, pattern=_TEXT)]
    summary: Annotated[str, Field(min_length=1, max_length=2000, pattern=_TEXT)]


class PatientIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=_TEXT)]
    id_number: Annotated[str, Field(min_length=15, max_length=18, pattern=r"^[0-9]{15}$|^[0-9]{17}[0-9Xx]$")]
    sex: Literal["male", "female", "unknown"] = "unknown"
    birth_date: date | None = None


class Location(Strict):
    kind: Literal["room", "video"]
    room: Annotated[str, Field(max_length=200, pattern=_TEXT)] = Field(
        default="", description="会诊地点 when kind is room"
    )


class ApplyRequest(Strict):
    """会诊申请 (the seed's form, field by field)."""

    invitees: list[DoctorRef] = Field(min_length=1, max_length=8, description="参与会诊的医生")
    start: IsoDatetime = Field(description="会诊日期 and time")
    duration_min: Annotated[int, Field(ge=15, le=480), WHOLE] = Field(description="会诊时长 in minutes")
    patient: PatientIn
    visits: list[VisitRecord] = Field(min_length=1, max_length=20, description="问诊记录")
    purpose: Annotated[str, Field(min_length=1, max_length=500, description="会诊目的", pattern=_TEXT)]
    location: Location
    symptoms: Text = Field(description="症状描述")
    difficulties: Text = Field(description="诊断难点")
    diagnosis: Annotated[
        str, Field(min_length=1, max_length=2000, description="初步诊断 (stored encrypted)", pattern=_TEXT)
    ]


class ConsultConsentRequest(Strict):
    """The patient's consent to the consultation (知情同意), recorded by the applicant."""

    method: Literal["written", "electronic", "verbal_witnessed"]
    signed_by: Literal["patient", "guardian"] = "patient"
    reference: Annotated[
        str, Field(min_length=1, max_length=128, description="form number or document id", pattern=_TEXT)
    ]


class RespondRequest(Strict):
    answer: Literal["accept", "decline"]
    reason: Annotated[str, Field(max_length=500, pattern=_TEXT)] = ""


class CancelRequest(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=_TEXT)]


class AttachmentRequest(Strict):
    file_name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^/\\\x00-\x1f]+$")]
    content_type: Literal["application/pdf", "image/jpeg", "image/png"]
    size: Annotated[int, Field(ge=1, le=20 * 1024 * 1024), WHOLE]


class AttachmentUpload(BaseModel):
    attachment_id: str
    upload_url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    expires_at: str


class ReportDraft(Strict):
    opinion: Annotated[str, Field(min_length=1, max_length=8000, description="诊断意见", pattern=_TEXT)]
    recommendations: Annotated[str, Field(max_length=8000, pattern=_TEXT)] = ""


# ---------------------------------------------------------------- answers


class ConsultStatus(BaseModel):
    consultation_id: str
    status: str
    status_zh: str
    version: int


class ParticipantView(BaseModel):
    org: str
    doctor_code: str
    name: str
    title: str
    department: str
    answer: str
    reason: str = ""
    joined_at: list[str] = Field(default_factory=list)
    left_at: list[str] = Field(default_factory=list)


class AttachmentView(BaseModel):
    attachment_id: str
    file_name: str
    content_type: str
    size: int
    status: Literal["pending", "clean", "rejected"]
    reason: str = ""
    sha256: str | None = None
    download_url: str | None = None


class ReportView(BaseModel):
    org: str
    doctor_code: str
    doctor_name: str
    version: int
    status: str
    opinion: str
    recommendations: str
    signed_at: str | None = None
    signature: str | None = None
    key_id: str | None = None
    report_sm3: str | None = None
    previous: list[ReportVersion] = Field(default_factory=list)


class ReportVersion(BaseModel):
    version: int
    status: str
    opinion: str
    recommendations: str
    signed_at: str | None = None
    report_sm3: str | None = None


class ConsultationView(BaseModel):
    consultation_id: str
    status: str
    status_zh: str
    version: int
    round: int
    applicant: ParticipantView
    participants: list[ParticipantView]
    start: str
    duration_min: int
    slot_end: str
    patient_name: str
    patient_id_masked: str
    patient_sex: str
    visits: list[VisitRecord]
    purpose: str
    location: Location
    symptoms: str
    difficulties: str
    diagnosis: str
    consent: dict[str, str] | None
    attachments: list[AttachmentView]
    reports: list[ReportView]
    room: str | None = None
    created_at: str
    history: list[dict[str, str]]


class ConsultationSummary(BaseModel):
    consultation_id: str
    status: str
    status_zh: str
    start: str
    purpose: str
    patient_masked: str
    applicant: str
    participants: int


class RecordsQuery(Strict):
    box: Box = "mine"
    status: Literal["scheduled", "in_progress", "awaiting_report", "completed", "draft", "cancelled"] | None = None
    from_date: date | None = None
    to_date: date | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: Annotated[str, Field(max_length=2000)] | None = None  # query text: the generator adds its pattern


class ConsultationList(BaseModel):
    items: list[ConsultationSummary]
    cursor: str | None
    counts: dict[str, int] = Field(description="cases per state in this box (the four states, draft, cancelled)")


class RoomJoinAnswer(BaseModel):
    consultation_id: str
    room: str
    url: str
    token: str
    expires_at: str
    status: str


class RoomWebhook(BaseModel):
    """What a LiveKit server posts (the parts we read)."""

    model_config = ConfigDict(extra="allow")
    event: str
    room: dict[str, object] | None = None
    participant: dict[str, object] | None = None
    id: str | None = None
    createdAt: int | str | None = None


class WebhookAnswer(BaseModel):
    handled: bool
    consultation_id: str | None = None
    status: str | None = None


class VerifyAnswer(BaseModel):
    consultation_id: str
    doctor: str
    version: int
    valid: bool
    reason: str = ""


ReportView.model_rebuild()


class InviteesRequest(Strict):
    invitees: list[DoctorRef] = Field(min_length=1, max_length=8)
