"""Our prescription fields -> the center's field names (research notes, part A). Dictionary values the
public sources do not give (rx_chk_stas_codg, rx_pay_status_code) are marked as assumptions in
docs/rx.md."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from bianjie.kit.timefmt import beijing
from bianjie.rx.models import DispensedItem, PrecheckRequest, Settlement

BEIJING_FMT = "%Y-%m-%d %H:%M:%S"
REVIEW_PASS, REVIEW_REJECT = "1", "2"  # assumption: the 字典 values are not public
PAID = "1"  # assumption, as above


def center_time(value: datetime) -> str:
    return beijing(value).strftime(BEIJING_FMT)


def yuan(cents: int) -> str:
    return f"{cents / 100:.2f}"


def upload_check(req: PrecheckRequest, valid_end: datetime, fixmedins_code: str) -> dict[str, Any]:
    return {
        "fixmedinsCode": fixmedins_code,
        "mdtrtCertType": "02",  # 02 = 身份证号 as the visit certificate (01 would be an ecToken)
        "mdtrtCertNo": req.insured.cert_no,
        "psnCertType": req.insured.cert_type,
        "psnName": req.insured.name,
        "bizTypeCode": req.visit.biz_type,
        "hospRxno": req.hosp_rxno,
        "rxTypeCode": req.rx_type,
        "prscTime": center_time(req.prescribed_at),
        "valiDays": req.valid_days,
        "valiEndTime": center_time(valid_end),
        "reptFlag": "1" if req.reusable else "0",
        "maxReptCnt": req.max_uses,
        "minInrvDays": req.min_interval_days,
        "longRxFlag": "1" if req.long_term else "0",
        "rxCircFlag": "1" if req.circulation else "0",
        "drCode": req.doctor.code,
        "drName": req.doctor.name,
        "prscDeptCode": req.doctor.dept_code,
        "prscDeptName": req.doctor.dept_name,
        "mdtrtinfo": {
            "mdtrtId": req.visit.visit_id,
            "mdtrtTime": center_time(req.visit.visit_time),
        },
        "diseinfo": [
            {"diseCodg": d.code, "diseName": d.name, "maindiagFlag": "1" if d.main else "0"} for d in req.diagnoses
        ],
        "rxdrugdetail": [
            {
                "medListCodg": line.med_code,
                "drugCnt": line.quantity,
                "sinDoscnt": line.dose,
                "usedFrquCodg": line.frequency,
                "prdDays": line.days,
                "medcWayDscr": line.route,
            }
            for line in req.drugs
        ],
    }


def upload(
    trace_code: str,
    hi_rxno: str,
    visit_id: str,
    doctor_code: str,
    pharmacist_code: str | None,
    pharmacist_checked_at: datetime | None,
    pdf: bytes,
    sign_digest: str,
) -> dict[str, Any]:
    return {
        "rxTraceCode": trace_code,
        "hiRxno": hi_rxno,
        "mdtrtId": visit_id,
        "drCode": doctor_code,
        "pharCode": pharmacist_code,
        "pharChkTime": center_time(pharmacist_checked_at) if pharmacist_checked_at else None,
        "rxFile": base64.b64encode(pdf).decode("ascii"),
        "signDigest": sign_digest,
    }


def review_result(hi_rxno: str, passed: bool, opinion: str, at: datetime) -> dict[str, Any]:
    return {
        "hi_rxno": hi_rxno,
        "rx_chk_stas_codg": REVIEW_PASS if passed else REVIEW_REJECT,
        "rx_chk_opnn": opinion,
        "rx_chk_time": center_time(at),
    }


def settlement(hi_rxno: str, s: Settlement, items: list[DispensedItem]) -> dict[str, Any]:
    return {
        "hi_rxno": hi_rxno,
        "setl_id": s.setl_id,
        "medfee_sumamt": yuan(s.total_cents),
        "fund_pay_sumamt": yuan(s.fund_pay_cents),
        "acct_pay": yuan(s.account_pay_cents),
        "psn_cash_pay": yuan(s.cash_pay_cents),
        "setl_time": center_time(s.settled_at),
        "seltdelts": [
            {
                "med_list_codg": i.med_code,
                "cnt": i.quantity,
                "det_item_fee_sumamt": yuan(i.amount_cents),
                "manu_lotnum": i.batch_no,
            }
            for i in items
        ],
    }


def pay_status(hi_rxno: str, paid_at: datetime) -> dict[str, Any]:
    return {"hi_rxno": hi_rxno, "rx_pay_status_code": PAID, "pay_time": center_time(paid_at)}


def revoke(hi_rxno: str, doctor_code: str, reason: str, at: datetime) -> dict[str, Any]:
    return {"hiRxno": hi_rxno, "drCode": doctor_code, "undoRea": reason, "undoTime": center_time(at)}
