"""The printable PDF (deterministic, parseable), the signing text, and the e-credential stand-in."""

from __future__ import annotations

import re

import pytest
from bianjie.kit.errors import Unauthorized
from bianjie.rx import document
from bianjie.rx.ecredential import Person
from bianjie_dev.rx.ecredential import StandInEcredentials


def content() -> dict:
    return {
        "hi_rxno": "31202601010000000001",
        "hosp_rxno": "H1",
        "prescribed_at": "2026-01-01T09:00:00+08:00",
        "valid_days": 3,
        "long_term": False,
        "reusable": False,
        "max_uses": 1,
        "min_interval_days": 0,
        "circulation": True,
        "insured": {"name": "张三", "cert_no": "310101198001010018"},
        "doctor": {"name": "王医生", "code": "D1", "dept_name": "内分泌科"},
        "visit": {"visit_id": "MD1"},
        "diagnoses": [{"code": "E11.900", "name": "2型糖尿病"}],
        "drugs": [{"med_code": "X1", "quantity": 2, "dose": 1, "frequency": "bid", "days": 7, "route": "口服"}],
    }


def test_pdf_is_deterministic_and_well_formed() -> None:
    first = document.prescription_pdf(content(), {"X1": "盐酸二甲双胍片 0.5g"}, "演示医院")
    assert first == document.prescription_pdf(content(), {"X1": "盐酸二甲双胍片 0.5g"}, "演示医院")
    assert first.startswith(b"%PDF-1.4") and first.rstrip().endswith(b"%%EOF")
    # every xref offset points at its object
    xref = int(re.search(rb"startxref\n(\d+)", first).group(1))
    assert first[xref : xref + 4] == b"xref"
    offsets = [int(m) for m in re.findall(rb"(\d{10}) 00000 n", first)]
    for n, off in enumerate(offsets, start=1):
        assert first[off:].startswith(f"{n} 0 obj".encode())
    assert "张三".encode("utf-16-be").hex().upper().encode() in first
    changed = content() | {"valid_days": 2}
    assert document.prescription_pdf(changed, {}, "演示医院") != first


def test_signing_input_binds_both_digests() -> None:
    text = document.signing_input("R1", "a" * 64, "b" * 64)
    assert text.splitlines() == ["bianjie-rx-sign/1", "rx_id=R1", "content_sm3=" + "a" * 64, "pdf_sm3=" + "b" * 64]
    assert document.content_sm3({"b": 1, "a": "中"}) == document.content_sm3({"a": "中", "b": 1})


def test_ecredential_round_trip_expiry_and_forgery() -> None:
    now = [1000.0]
    ec = StandInEcredentials(b"s" * 32, clock=lambda: now[0])
    token = ec.issue(Person("01", "310101198001010018", "张三"), ttl=60)
    assert "310101" not in token and "张三" not in token
    assert ec.verify(token) == Person("01", "310101198001010018", "张三")
    other = StandInEcredentials(b"t" * 32, clock=lambda: now[0])
    with pytest.raises(Unauthorized) as err:
        other.verify(token)
    assert err.value.code == "EC_TOKEN_INVALID"
    with pytest.raises(Unauthorized):
        ec.verify(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    now[0] += 61
    with pytest.raises(Unauthorized) as err:
        ec.verify(token)
    assert err.value.code == "EC_TOKEN_EXPIRED"
