"""``bianjie ops``: argument handling and refusals, each a stable code on one JSON line, never a traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bianjie_dev.cli.main import build_parser, main
from bianjie_dev.ops.errors import OpsError
from bianjie_dev.ops.restore import Restorer, parse_time


def refusal(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "a refusal is printed on stderr"
    assert "Traceback" not in "\n".join(err)
    return json.loads(err[-1])


def test_ops_commands_are_registered() -> None:
    args = build_parser().parse_args(
        ["ops", "restore", "--to", "2026-12-04T10:00:00+08:00", "--target", "x", "--port", "5433"]
    )
    assert (args.group, args.command, args.port, args.force, args.stanza) == ("ops", "restore", 5433, False, "bianjie")


@pytest.mark.parametrize("port", ["0", "70000", "abc", "-1"])
def test_a_bad_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["ops", "restore", "--to", "2026-12-04T10:00:00", "--target", "x", "--port", port])
    assert exit_info.value.code == 2
    assert "--port" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--count", "0"], ["--count", "many"]])
def test_write_needs_a_positive_count(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["ops", "write", "--dsn", "postgresql://x/y", "--label", "A", *argv])
    assert exit_info.value.code == 2
    assert "--count" in capsys.readouterr().err


def test_restore_refuses_a_time_it_cannot_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ops", "restore", "--to", "yesterday-ish", "--target", str(tmp_path / "t"), "--port", "5433"])
    assert rc == 2
    assert refusal(capsys)["error"] == "RESTORE_TIME_INVALID"
    assert not (tmp_path / "t").exists()


def test_restore_refuses_a_time_in_the_future(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ops", "restore", "--to", "2999-01-01T00:00:00+00:00", "--target", str(tmp_path), "--port", "5433"])
    assert rc == 2
    assert refusal(capsys)["error"] == "RESTORE_TIME_IN_FUTURE"


def test_restore_refuses_a_non_empty_target_without_force_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "PG_VERSION").write_text("15\n")
    rc = main(["ops", "restore", "--to", "2026-01-01T00:00:00+08:00", "--target", str(tmp_path), "--port", "5433"])
    assert rc == 2
    answer = refusal(capsys)
    assert answer["error"] == "TARGET_NOT_EMPTY"
    assert "--force" in answer["message"]
    assert (tmp_path / "PG_VERSION").read_text() == "15\n"


def test_restore_refuses_a_file_as_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    rc = main(["ops", "restore", "--to", "2026-01-01T00:00:00+08:00", "--target", str(target), "--port", "5433"])
    assert rc == 2
    assert refusal(capsys)["error"] == "TARGET_NOT_DIRECTORY"


def test_force_lets_a_non_empty_target_through_the_refusal(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("x")
    restorer = Restorer(None, "bianjie", None)
    assert restorer.refuse_target(tmp_path, force=True) is True
    assert restorer.refuse_target(tmp_path / "new", force=False) is False
    restorer.prepare_target(tmp_path, empty=True)
    assert list(tmp_path.iterdir()) == []
    assert tmp_path.stat().st_mode & 0o777 == 0o700


def test_a_time_without_a_zone_is_beijing_time() -> None:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    assert parse_time("2026-12-04T21:30:00", now=now) == datetime(2026, 12, 4, 13, 30, tzinfo=UTC)
    assert parse_time("2026-12-04 21:30:00+00:00", now=now) == datetime(2026, 12, 4, 21, 30, tzinfo=UTC)
    with pytest.raises(OpsError) as refused:
        parse_time("2026-12-06T00:00:00+08:00", now=now)
    assert refused.value.code == "RESTORE_TIME_IN_FUTURE"


def test_a_database_it_cannot_reach_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ops", "check", "--dsn", "postgresql://postgres@127.0.0.1:1/bianjie?connect_timeout=2"])
    assert rc == 3
    answer = refusal(capsys)
    assert answer["error"] == "DATABASE_UNREACHABLE"


def test_missing_needs_its_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ops", "missing", "--dsn", "postgresql://x/y", "--acked-file", str(tmp_path / "none.txt")])
    assert rc == 2
    assert refusal(capsys)["error"] == "ACKED_FILE_NOT_FOUND"
