"""Pre-check rules: a clean prescription passes; each broken rule gives its code on its line."""

from __future__ import annotations

import time
from typing import Any

from bianjie.rx.catalogue import DEMO_CATALOGUE, MemoryCatalogue
from bianjie.rx.models import PrecheckRequest
from bianjie.rx.rules import check, id_number_ok

from tests.unit.rx.data import PATIENT_ID, precheck_body

CAT = MemoryCatalogue()


def codes(**overrides: Any) -> set[tuple[int | None, str]]:
    req = PrecheckRequest.model_validate(precheck_body(**overrides))
    return {(p.line, p.code) for p in check(req, CAT, time.time())}


def line(med: str = "XA10BAE024A001010100001", **kw: Any) -> dict[str, Any]:
    return {"med_code": med, "quantity": 2, "dose": 1, "frequency": "bid", "days": 7, **kw}


def test_clean_prescription_passes() -> None:
    assert codes() == set()


def test_id_numbers() -> None:
    assert id_number_ok(PATIENT_ID) and id_number_ok("11010519491231002X")
    assert not id_number_ok(PATIENT_ID[:-1] + ("0" if PATIENT_ID[-1] != "0" else "1"))
    assert not id_number_ok("310101198013011234")  # month 13


def test_insured_and_times() -> None:
    assert (None, "CERT_TYPE_UNSUPPORTED") in codes(insured={"cert_type": "02", "cert_no": "x", "name": "张三"})
    assert (None, "VALIDITY_TOO_LONG") in codes(valid_days=4)
    assert codes(valid_days=30, long_term=True) == set()
    assert (None, "ALREADY_EXPIRED") in codes(age_s=4 * 86400)
    assert (None, "PRESCRIBED_IN_FUTURE") in codes(age_s=-3600)


def test_reuse_rules() -> None:
    assert (None, "REUSE_NEEDS_LONG_TERM") in codes(reusable=True, max_uses=2, min_interval_days=1)
    assert (None, "REUSE_FIELDS_WITHOUT_FLAG") in codes(max_uses=3)
    long_ok = {"long_term": True, "reusable": True, "valid_days": 28, "drugs": [line(days=28, quantity=3)]}
    assert codes(**long_ok, max_uses=2, min_interval_days=7) == set()
    assert (None, "REUSE_WINDOW_TOO_SHORT") in codes(**long_ok, max_uses=4, min_interval_days=10)
    assert (None, "MAX_USES_INVALID") in codes(**long_ok, max_uses=1, min_interval_days=7)


def test_diagnoses() -> None:
    assert (None, "DIAGNOSIS_REQUIRED") in codes(diagnoses=[])
    two_main = [{"code": "E11.900", "name": "a", "main": True}, {"code": "I10", "name": "b", "main": True}]
    assert (None, "MAIN_DIAGNOSIS") in codes(diagnoses=two_main)
    assert (None, "DIAGNOSIS_CODE_INVALID") in codes(diagnoses=[{"code": "diabetes", "name": "a", "main": True}])


def test_lines() -> None:
    assert (None, "DRUGS_REQUIRED") in codes(drugs=[])
    six = [line(d.med_code, quantity=1, dose=1, frequency="qd", days=3) for d in DEMO_CATALOGUE[:6]]
    assert (None, "TOO_MANY_LINES") in codes(drugs=six)
    got = codes(
        drugs=[
            line(),
            line(),  # duplicate
            line("ZA12BAF031B006010100016", dose=10, frequency="tid", quantity=1),  # Chinese patent on a western rx
            line(dose=5, frequency="qid", quantity=20),  # 20 tablets a day
            line("XJ01CAA040E001010100007", quantity=30),  # far more than 7 days need
            line("XJ01MAZ038A001010100011", quantity=1, dose=2, frequency="qd", days=7),  # 4 of 14 tablets
        ]
    )
    assert {
        (2, "DRUG_DUPLICATE"),
        (3, "RX_TYPE_MISMATCH"),
        (4, "DOSE_EXCEEDS_MAX"),
        (5, "QUANTITY_EXCEEDS_DAYS"),
        (6, "QUANTITY_TOO_SMALL"),
    } <= got
    assert (1, "DRUG_NOT_FOR_LONG_TERM") in codes(
        long_term=True, valid_days=3, drugs=[line("XJ01CAA040E001010100007", quantity=1)]
    )


def test_catalogue_is_consistent() -> None:
    codes_ = [d.med_code for d in DEMO_CATALOGUE]
    assert len(set(codes_)) == len(codes_) == 16
    assert all(not d.circulation for d in DEMO_CATALOGUE if d.controlled)
