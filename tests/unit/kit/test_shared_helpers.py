"""The kit's one copy of time formats, masking rules and base64url."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from bianjie.kit.encoding import b64url, b64url_decode
from bianjie.kit.masking import mask_account, mask_id, mask_name, mask_phone
from bianjie.kit.timefmt import BEIJING, beijing, beijing_day, utc_iso

T = 1_767_225_600.25  # 2026-01-01T00:00:00.25Z, 08:00 in Beijing


def test_utc_iso_from_epoch_and_from_any_aware_datetime() -> None:
    assert utc_iso(T) == "2026-01-01T00:00:00Z"
    assert utc_iso(T, "milliseconds") == "2026-01-01T00:00:00.250Z"
    assert utc_iso(T, "microseconds") == "2026-01-01T00:00:00.250000Z"
    east = datetime(2026, 1, 1, 8, 0, 0, tzinfo=timezone(timedelta(hours=8)))
    assert utc_iso(east) == "2026-01-01T00:00:00Z" == utc_iso(datetime(2026, 1, 1, tzinfo=UTC))


def test_beijing_time_and_day() -> None:
    assert beijing(T).utcoffset() == timedelta(hours=8) and beijing(T).hour == 8
    assert beijing_day(T - 8 * 3600 - 1) == "2025-12-31" and beijing_day(T - 8 * 3600) == "2026-01-01"
    assert BEIJING.tzname(None) == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("name", "shown"),
    [("张三", "张*"), ("王小明", "王*明"), ("欧阳娜娜", "欧**娜"), ("李", "李*"), ("", None), (None, None)],
)
def test_one_rule_for_patient_names(name: str | None, shown: str | None) -> None:
    assert mask_name(name) == shown


def test_phone_account_and_id_masks() -> None:
    assert mask_phone("13812345678") == "138****5678" and mask_phone("123") == "****"
    assert mask_account("6222020200000051") == "****0051" and mask_account("1234") == "****"
    assert mask_id("oAbcdefghijxyz") == "oAbc…xyz" and mask_id("short") == "…"


def test_b64url_round_trip_and_strictness() -> None:
    for data in (b"", b"\x00", b"\xff\xfe", bytes(range(40))):
        text = b64url(data)
        assert "=" not in text and b64url_decode(text) == data
    for bad in ("a+b/", "YQ==", "a", "中文", "a b"):
        with pytest.raises(ValueError):
            b64url_decode(bad)
