"""Structured logging: JSON lines, invocation context, and the redaction guard."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from bianjie.kit.logging import (
    REDACTED,
    clear_context,
    configure_logging,
    get_context,
    get_logger,
    invocation,
    is_sensitive_key,
    log_context,
    mask_text,
    redact,
    update_context,
)
from pydantic import BaseModel, ValidationError, field_validator

ID_NUMBER = "310101199003071234"
PHONE = "13912345678"
NAME = "王小明"
SECRET = "s3cr3t-MasterKey-value"
TOKEN = "eyJhbGciOiJIUy1TTTMifQ.eyJzdWIiOiJwOSJ9.c2lnbmF0dXJl"
DIAGNOSIS = "2型糖尿病伴肾病"
PLANTED = (ID_NUMBER, PHONE, NAME, SECRET, TOKEN, DIAGNOSIS)


@pytest.fixture
def buf() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, force=True)
    clear_context()
    yield stream
    clear_context()
    configure_logging("INFO", force=True)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_shape(buf: io.StringIO) -> None:
    log = get_logger("bianjie.test")
    with log_context(request_id="req-1", function="film-issue-link"):
        update_context(app_id="his-1")
        log.info("link issued", extra={"link_id": "L1", "latency_ms": 12.5})
    log.warning("outside", count=3)
    first, second = lines(buf)
    assert first["level"] == "INFO" and first["logger"] == "bianjie.test" and first["msg"] == "link issued"
    assert (first["request_id"], first["function"], first["app_id"]) == ("req-1", "film-issue-link", "his-1")
    assert (first["link_id"], first["latency_ms"]) == ("L1", 12.5)
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert second["request_id"] is None and second["app_id"] is None and second["count"] == 3


def test_context_is_restored(buf: io.StringIO) -> None:
    with log_context(request_id="outer"):
        with log_context(request_id="inner", app_id="a"):
            assert get_context() == {"request_id": "inner", "app_id": "a"}
        assert get_context() == {"request_id": "outer"}
        log_context(app_id="set-without-with")  # like update_context: lasts until the outer block ends
        assert get_context()["app_id"] == "set-without-with"
    assert get_context() == {}


def test_extra_keys_that_clash_with_logrecord_attributes(buf: io.StringIO) -> None:
    log = get_logger("bianjie.test")
    log.info("clash", extra={"name": NAME, "msg": "x", "args": [1]})
    (line,) = lines(buf)
    assert line["msg"] == "clash" and line["extra_msg"] == "x"
    assert line["name"] == REDACTED and line["args"] == [1]


def test_invocation_logs_latency(buf: io.StringIO) -> None:
    log = get_logger("bianjie.test")
    with invocation(log, "rx-upload", request_id="r-9", app_id="his-1") as summary:
        summary["status"] = 201
    (line,) = lines(buf)
    assert line["msg"] == "invocation" and line["function"] == "rx-upload" and line["status"] == 201
    assert line["outcome"] == "ok" and isinstance(line["latency_ms"], float)
    with pytest.raises(RuntimeError), invocation(log, "rx-upload"):
        raise RuntimeError("boom")
    assert lines(buf)[-1]["outcome"] == "error"


def test_bound_logger(buf: io.StringIO) -> None:
    log = get_logger("bianjie.test").bind(service="film")
    log.info("x", step=1)
    (line,) = lines(buf)
    assert (line["service"], line["step"]) == ("film", 1)


@pytest.mark.parametrize(
    "key",
    [
        "name",
        "patient_name",
        "patientName",
        "id_number",
        "idNumber",
        "ID-Number",
        "id_no",
        "phone",
        "mobile",
        "mobile_phone",
        "diagnosis",
        "diagnosis_code",
        "agreement_no",
        "private_key",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "password",
        "Authorization",
        "signature",
        "x-signature",
        "cookie",
        "real_name",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["app_id", "table_name", "valid_node", "request_id", "latency_ms", "tokens_used_count", "status"]
)
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_mask_text() -> None:
    assert mask_text(f"id {ID_NUMBER} and {PHONE}.") == f"id {REDACTED} and {REDACTED}."
    assert mask_text(f"call +86 {PHONE} or 86-{PHONE}") == f"call {REDACTED} or {REDACTED}"
    assert mask_text("31010119900307123X") == REDACTED
    # timestamps, ids and amounts are left alone
    for harmless in ("1767225600", "1767225600123", "order 20260101000123", "amount 13912"):
        assert mask_text(harmless) == harmless


def test_redact_recurses() -> None:
    value = {"patient": {"name": NAME, "visits": [{"phone": PHONE, "dept": "放射科"}]}, "raw": b"\x00" * 8}
    assert redact(value) == {
        "patient": {"name": REDACTED, "visits": [{"phone": REDACTED, "dept": "放射科"}]},
        "raw": "<8 bytes>",
    }


class Patient(BaseModel):
    id_number: str

    @field_validator("id_number")
    @classmethod
    def _v(cls, v: str) -> str:
        raise ValueError("bad checksum")


def test_planted_sensitive_values_never_reach_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", force=True)  # to the real (captured) stdout
    try:
        log = get_logger("bianjie.test.plant")
        with log_context(request_id="r-1", function="f", patient_name=NAME):
            log.info(
                "patient %s called from %s",
                ID_NUMBER,
                PHONE,
                extra={
                    "patient": {"name": NAME, "id_no": ID_NUMBER, "contacts": [{"mobile": PHONE}]},
                    "headers": {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
                    "config": {"secret": SECRET, "token": TOKEN},
                    "diagnosis": DIAGNOSIS,
                    "note": f"callback for {PHONE}",
                },
            )
            log.debug("kwargs too", phone=PHONE, private_key=SECRET, password=SECRET, signature=TOKEN)
            try:
                Patient(id_number=ID_NUMBER)
            except ValidationError:
                log.exception("validation failed")  # pydantic echoes input values in its message
            try:
                raise RuntimeError(f"lookup failed for {ID_NUMBER} / {PHONE}")
            except RuntimeError:
                log.error("unexpected", exc_info=True)
            logging.getLogger("third.party").warning("legacy %s", PHONE, extra={"token": TOKEN})
        captured = capsys.readouterr()
    finally:
        configure_logging("INFO", force=True)
    output = captured.out + captured.err
    assert output.count("\n") >= 5
    for value in PLANTED:
        assert value not in output, f"{value!r} leaked"
    for line in captured.out.splitlines():
        json.loads(line)  # every line is JSON
    assert REDACTED in output and "ValidationError" in output
