"""Shared test data for the rx service: a valid pre-check body and the demo patient."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from bianjie_dev.rx.demo import PATIENT_ID, PATIENT_NAME

BASE: dict[str, Any] = {
    "hosp_rxno": "HRX-0001",
    "rx_type": "1",
    "valid_days": 3,
    "circulation": True,
    "doctor": {"code": "D1", "name": "王医生", "dept_code": "NFM01", "dept_name": "内分泌科"},
    "insured": {"cert_type": "01", "cert_no": PATIENT_ID, "name": PATIENT_NAME},
    "visit": {"visit_id": "MD0001", "biz_type": "01"},
    "diagnoses": [{"code": "E11.900", "name": "2型糖尿病", "main": True}],
    "drugs": [{"med_code": "XA10BAE024A001010100001", "quantity": 2, "dose": 1, "frequency": "bid", "days": 7}],
}


def precheck_body(**overrides: Any) -> dict[str, Any]:
    """A prescription that passes every rule; ``prescribed_at`` defaults to now, ``age_s`` moves it back."""
    body = copy.deepcopy(BASE)
    age = overrides.pop("age_s", 0)
    when = (datetime.now(UTC) - timedelta(seconds=age)).isoformat()
    body["prescribed_at"] = when
    body["visit"]["visit_time"] = when
    for key, value in overrides.items():
        body[key] = value
    return body
