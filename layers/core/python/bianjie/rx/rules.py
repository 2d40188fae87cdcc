"""Pre-check rules (上传预核验): every problem of a prescription, each with a stable code, per drug line.

Sources: 处方管理办法 (a prescription is valid on the day written, at most 3 days when extended; at most
5 drugs per western/patent-medicine prescription; usually 7 days of supply, longer for chronic
conditions), 长期处方管理规范 (long-term prescriptions up to 12 weeks for stable chronic conditions),
and the NHSA upload-check fields (valiDays, reptFlag, maxReptCnt, minInrvDays, longRxFlag,
rx_circ_flag). Where a limit is a local policy choice rather than a rule, the constant says so.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from bianjie.rx.catalogue import Catalogue
from bianjie.rx.models import TIMES_PER_DAY, PrecheckRequest, Problem

MAX_LINES = 5  # 处方管理办法 第十九条: 每张处方不得超过5种药品
MAX_VALID_DAYS = 3  # 处方管理办法 第十八条
MAX_LONG_TERM_DAYS = 84  # 长期处方管理规范: up to 12 weeks
MAX_DAYS_SUPPLY = 7  # ordinary prescriptions
MAX_DAYS_SUPPLY_INTERNET = 7  # internet-hospital repeat visits: local policy, same as on site here
MAX_FUTURE_SKEW_S = 300  # a prescription time this far in the future is a clock problem
SUPPORTED_CERT_TYPES = {"01": "居民身份证"}
ICD10_RE = re.compile(r"^[A-Z]\d{2}(\.[0-9A-Z]{1,4})?$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_number_ok(value: str) -> bool:
    """GB 11643-1999: 17 digits, a valid birth date, and the ISO 7064 MOD 11-2 check character."""
    value = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    try:
        datetime.strptime(value[6:14], "%Y%m%d")
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


def check(req: PrecheckRequest, catalogue: Catalogue, now: float) -> list[Problem]:
    problems: list[Problem] = []

    def add(code: str, field: str, message: str, line: int | None = None) -> None:
        problems.append(Problem(line=line, field=field, code=code, message=message))

    # -- the insured person
    if req.insured.cert_type not in SUPPORTED_CERT_TYPES:
        add("CERT_TYPE_UNSUPPORTED", "insured.cert_type", "only 01 (居民身份证) is accepted")
    elif not id_number_ok(req.insured.cert_no):
        add("CERT_NO_INVALID", "insured.cert_no", "not a valid 18-character resident ID number (check digit or date)")

    # -- times and validity
    prescribed = req.prescribed_at.timestamp()
    if prescribed > now + MAX_FUTURE_SKEW_S:
        add("PRESCRIBED_IN_FUTURE", "prescribed_at", "the prescription time is in the future")
    if req.visit.visit_time.timestamp() > prescribed + MAX_FUTURE_SKEW_S:
        add("VISIT_AFTER_PRESCRIPTION", "visit.visit_time", "the visit starts after the prescription time")
    limit = MAX_LONG_TERM_DAYS if req.long_term else MAX_VALID_DAYS
    if req.valid_days > limit:
        add(
            "VALIDITY_TOO_LONG",
            "valid_days",
            f"at most {limit} days{' for a long-term prescription' if req.long_term else ' unless long_term'}",
        )
    if prescribed + req.valid_days * 86400 <= now:
        add("ALREADY_EXPIRED", "valid_days", "the validity would already have ended")

    # -- reuse
    if req.reusable:
        if not req.long_term:
            add("REUSE_NEEDS_LONG_TERM", "reusable", "only a long-term prescription may be reusable")
        if req.max_uses < 2:
            add("MAX_USES_INVALID", "max_uses", "a reusable prescription needs max_uses of 2 or more")
        if req.min_interval_days < 1:
            add(
                "MIN_INTERVAL_REQUIRED",
                "min_interval_days",
                "a reusable prescription needs an interval of 1 day or more",
            )
        if (req.max_uses - 1) * req.min_interval_days >= req.valid_days:
            add("REUSE_WINDOW_TOO_SHORT", "valid_days", "the uses and intervals do not fit in the validity")
    elif req.max_uses != 1 or req.min_interval_days != 0:
        add("REUSE_FIELDS_WITHOUT_FLAG", "reusable", "max_uses/min_interval_days need reusable=true")

    # -- diagnoses
    if not req.diagnoses:
        add("DIAGNOSIS_REQUIRED", "diagnoses", "at least one diagnosis is required")
    elif sum(1 for d in req.diagnoses if d.main) != 1:
        add("MAIN_DIAGNOSIS", "diagnoses", "exactly one diagnosis must be the main one")
    for i, d in enumerate(req.diagnoses):
        if not ICD10_RE.fullmatch(d.code.upper()):
            add("DIAGNOSIS_CODE_INVALID", f"diagnoses[{i}].code", "not an ICD-10 code (e.g. E11.900)")

    # -- drug lines
    if not req.drugs:
        add("DRUGS_REQUIRED", "drugs", "at least one drug line is required")
    if len(req.drugs) > MAX_LINES:
        add("TOO_MANY_LINES", "drugs", f"at most {MAX_LINES} drugs per prescription")
    seen: set[str] = set()
    supply_limit = (
        MAX_LONG_TERM_DAYS
        if req.long_term
        else (MAX_DAYS_SUPPLY_INTERNET if req.visit.biz_type == "02" else MAX_DAYS_SUPPLY)
    )
    for n, line in enumerate(req.drugs, start=1):
        drug = catalogue.get(line.med_code)
        if drug is None:
            add("DRUG_UNKNOWN", "med_code", "not in the insurance drug catalogue", n)
            continue
        if line.med_code in seen:
            add("DRUG_DUPLICATE", "med_code", "the same drug appears on two lines", n)
        seen.add(line.med_code)
        if drug.controlled:
            add("DRUG_CONTROLLED", "med_code", "narcotic and psychotropic drugs cannot be e-prescribed here", n)
        if (req.rx_type == "1") != drug.med_code.startswith("X"):
            add("RX_TYPE_MISMATCH", "med_code", "western and Chinese patent medicines go on separate prescriptions", n)
        if req.circulation and not drug.circulation:
            add("DRUG_NOT_CIRCULABLE", "med_code", "this drug may not leave the hospital (circDrugQuery)", n)
        if req.long_term and not drug.chronic:
            add(
                "DRUG_NOT_FOR_LONG_TERM",
                "med_code",
                "only chronic-condition drugs may go on a long-term prescription",
                n,
            )
        if line.days > supply_limit:
            add("DAYS_SUPPLY_TOO_LONG", "days", f"at most {supply_limit} days of supply", n)
        daily = line.dose * TIMES_PER_DAY[line.frequency]
        if daily > drug.max_daily_units:
            add("DOSE_EXCEEDS_MAX", "dose", f"more than {drug.max_daily_units:g} {drug.unit} a day", n)
        # packs needed for this use; a reusable prescription's quantity is per use
        needed = max(1, math.ceil(daily * line.days / drug.pack_units - 1e-9))
        if line.quantity > needed + 1:
            add("QUANTITY_EXCEEDS_DAYS", "quantity", f"{needed} {drug.pack_unit} cover {line.days} days", n)
        if line.quantity * drug.pack_units < daily * line.days * 0.5:
            add("QUANTITY_TOO_SMALL", "quantity", "covers less than half of the days of supply", n)
    return problems
