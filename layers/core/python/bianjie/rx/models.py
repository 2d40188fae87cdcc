"""What hospitals, pharmacies, doctors, pharmacists and patients send and receive (pydantic, the HTTP edge).

Field names are plain English; docs/rx.md maps each to the NHSA name (``hosp_rxno``, ``mdtrt_cert_no``,
``med_list_codg`` ...). Sensitive values (the insured person's name and certificate number, diagnoses)
are accepted here and encrypted before storage; answers never echo them back in clear, except the
masked name a pharmacist needs to check the patient in front of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Frequency = Literal["qd", "bid", "tid", "qid", "qn", "q8h", "q12h", "qw", "prn"]
# times a day; "prn" (as needed) counts as three a day for supply checks, "qw" as one a week
TIMES_PER_DAY: dict[str, float] = {
    "qd": 1,
    "bid": 2,
    "tid": 3,
    "qid": 4,
    "qn": 1,
    "q8h": 3,
    "q12h": 2,
    "qw": 1 / 7,
    "prn": 3,
}
Status = Literal[
    "precheck",
    "signed",
    "valid",
    "released",
    "authorized",
    "reviewed",
    "review_rejected",
    "dispensed",
    "revoked",
    "expired",
]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Insured(BaseModel):
    model_config = _STRICT
    cert_type: str = Field(description="psn_cert_type: 01 居民身份证 (the only type this service accepts yet)")
    cert_no: str = Field(min_length=1, max_length=50, description="certificate number (encrypted at rest)")
    name: str = Field(min_length=1, max_length=50, description="the insured person's name (encrypted at rest)")


class Doctor(BaseModel):
    model_config = _STRICT
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,30}$", description="dr_code, the national doctor code")
    name: str = Field(min_length=1, max_length=50)
    dept_code: str = Field(min_length=1, max_length=30)
    dept_name: str = Field(min_length=1, max_length=50)


class Visit(BaseModel):
    model_config = _STRICT
    visit_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$", description="mdtrt_id of the visit")
    visit_time: AwareDatetime
    biz_type: Literal["01", "02"] = Field("01", description="01 线下 (on site), 02 互联网 (internet hospital)")


class Diagnosis(BaseModel):
    model_config = _STRICT
    code: str = Field(min_length=1, max_length=20, description="ICD-10 code, e.g. E11.900")
    name: str = Field(min_length=1, max_length=100)
    main: bool = False


class DrugLine(BaseModel):
    model_config = _STRICT
    med_code: str = Field(min_length=1, max_length=50, description="med_list_codg, the insurance drug code")
    quantity: int = Field(ge=1, le=999, description="packs to dispense")
    dose: float = Field(gt=0, le=10_000, description="smallest units per time (片, 粒, 单位...)")
    frequency: Frequency
    days: int = Field(ge=1, le=366, description="days of supply")
    route: str = Field("口服", max_length=20)
    note: str = Field("", max_length=200)


class PrecheckRequest(BaseModel):
    model_config = _STRICT
    hosp_rxno: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$", description="the hospital's own prescription number")
    rx_type: Literal["1", "2"] = Field(description="1 西药 (western), 2 中成药 (Chinese patent medicine)")
    prescribed_at: AwareDatetime
    valid_days: int = Field(ge=1, le=366)
    long_term: bool = Field(False, description="longRxFlag: 长期处方 of a chronic condition")
    reusable: bool = Field(False, description="reptFlag: may be dispensed more than once")
    max_uses: int = Field(1, ge=1, le=12, description="maxReptCnt: times it may be dispensed in all")
    min_interval_days: int = Field(0, ge=0, le=90, description="minInrvDays between two uses")
    circulation: bool = Field(description="rx_circ_flag: may leave the hospital for a designated pharmacy")
    doctor: Doctor
    insured: Insured
    visit: Visit
    diagnoses: list[Diagnosis] = Field(max_length=20)
    drugs: list[DrugLine] = Field(max_length=20)


class Problem(BaseModel):
    line: int | None = Field(None, description="1-based drug line; null for the prescription as a whole")
    field: str
    code: str
    message: str


class PrecheckAnswer(BaseModel):
    rx_id: str
    hi_rxno: str
    trace_code: str
    hosp_rxno: str
    status: Status
    valid_end: datetime


class SigningMaterial(BaseModel):
    rx_id: str
    content_sm3: str = Field(description="SM3 of the canonical prescription JSON (hex)")
    pdf_sm3: str = Field(description="SM3 of the printable PDF (hex)")
    signing_input: str = Field(description="the exact UTF-8 text to sign with SM2 (default user id)")
    pdf_base64: str


class SignRequest(BaseModel):
    model_config = _STRICT
    pdf_sm3: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(min_length=80, max_length=200, description="base64 of the SM2 signature (DER or r||s)")


class UploadRequest(BaseModel):
    model_config = _STRICT
    trace_code: str = Field(pattern=r"^[A-Za-z0-9]{8,64}$", description="rxTraceCode from the pre-check")
    hi_rxno: str = Field(pattern=r"^[A-Za-z0-9]{8,40}$")
    pharmacist_code: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,30}$", description="pharCode")
    pharmacist_checked_at: AwareDatetime | None = Field(None, description="pharChkTime")


class UploadAnswer(BaseModel):
    rx_id: str
    hi_rxno: str
    trace_code: str
    status: Status
    center_status: str = Field(description="rx_stas_codg from the center: 1 有效")
    sign_digest: str


class Settlement(BaseModel):
    model_config = _STRICT
    setl_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$", description="the settlement id (idempotency key)")
    total_cents: int = Field(ge=0)
    fund_pay_cents: int = Field(ge=0, description="fund_pay_sumamt")
    account_pay_cents: int = Field(0, ge=0, description="acct_pay")
    cash_pay_cents: int = Field(ge=0, description="psn_cash_pay")
    settled_at: AwareDatetime


class DispensedItem(BaseModel):
    model_config = _STRICT
    med_code: str
    quantity: int = Field(ge=1, le=999)
    amount_cents: int = Field(ge=0)
    batch_no: str = Field("", max_length=40)


class ConfirmRequest(BaseModel):
    model_config = _STRICT
    mode: Literal["in_hospital", "external"]
    settlement: Settlement | None = Field(None, description="required for in_hospital")
    items: list[DispensedItem] = Field(default_factory=list, max_length=20)


class AuthorizeRequest(BaseModel):
    model_config = _STRICT
    ec_token: str = Field(min_length=10, max_length=2000, description="the patient's 医保电子凭证 token (ecToken)")


class ReviewRequest(BaseModel):
    model_config = _STRICT
    authorization_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    result: Literal["pass", "reject"]
    reason: str = Field("", max_length=200)


class DispenseRequest(BaseModel):
    model_config = _STRICT
    authorization_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    settlement: Settlement
    items: list[DispensedItem] = Field(min_length=1, max_length=20)


class RevokeRequest(BaseModel):
    model_config = _STRICT
    reason: str = Field(min_length=2, max_length=200)


class LineView(BaseModel):
    line: int
    med_code: str
    drug_name: str
    spec: str
    quantity: int
    pack_unit: str
    dose: float
    unit: str
    frequency: str
    days: int
    route: str


class Transition(BaseModel):
    at: datetime
    op: str
    by: str
    status: Status
    note: str = ""


class PrescriptionView(BaseModel):
    rx_id: str
    hi_rxno: str
    hosp_rxno: str
    hospital: str
    status: Status
    center_status: str = Field(description="rx_stas_codg: 1 有效, 2 已失效, 3 已撤销")
    prescribed_at: datetime
    valid_end: datetime
    circulation: bool
    reusable: bool
    uses: int
    max_uses: int
    next_use_from: datetime | None = None
    doctor_code: str
    doctor_name: str
    dept_name: str
    patient_masked: str = Field(description="the insured person's name, masked (张*)")
    drugs: list[LineView]
    history: list[Transition] = Field(default_factory=list)


class PrescriptionList(BaseModel):
    items: list[PrescriptionView]
    cursor: str | None = None


class EcredentialCode(BaseModel):
    """STAND-IN (local stage): the code the 国家医保服务平台 app shows the signed-in patient."""

    ec_token: str = Field(description="what the QR code holds; a pharmacy posts it to /rx/authorizations")
    expires_at: datetime
    ttl_seconds: int


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    limit: int = Field(50, ge=1, le=100)
    cursor: str | None = Field(None, max_length=2000)


class AuthorizationView(BaseModel):
    authorization_id: str
    pharmacy: str
    expires_at: datetime
    prescriptions: list[PrescriptionView]


class StatusAnswer(BaseModel):
    rx_id: str
    status: Status
    center_status: str
    uses: int = 0
    max_uses: int = 1
    next_use_from: datetime | None = None
