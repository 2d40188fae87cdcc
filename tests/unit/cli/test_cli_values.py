"""Command-line values that name a file or are the text itself (``bianjie request --data``, ``--public-key``)."""

from __future__ import annotations

import json
from pathlib import Path

from bianjie_dev.cli.main import _file_or_literal


def test_a_long_literal_body_is_the_body_not_a_file_name() -> None:
    body = json.dumps({"description": "门诊费用" * 40, "amount": 100}, ensure_ascii=False)
    assert len(body.encode()) > 255  # longer than a file name may be
    assert _file_or_literal(body) == body.encode("utf-8")


def test_a_file_name_is_its_bytes(tmp_path: Path) -> None:
    f = tmp_path / "body.json"
    f.write_bytes(b'{"a":1}')
    assert _file_or_literal(str(f)) == b'{"a":1}'


def test_text_with_a_nul_is_literal() -> None:
    assert _file_or_literal("a\x00b") == b"a\x00b"
