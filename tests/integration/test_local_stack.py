"""What a new developer does after ``make run``: health, a CLI-signed request, and every refusal."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bianjie.kit.crypto import sm2_generate_key
from bianjie_dev.cli.tokens import issue_token, via_gateway
from bianjie_dev.runtime.child import StackProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("local-stack"))
    yield s
    s.stop()


def request(stack: StackProcess, *args: str) -> tuple[int, dict]:
    result = stack.cli("request", *args)
    lines = result.stdout.strip().splitlines()
    assert len(lines) >= 2, result.stdout + result.stderr
    return int(lines[0]), json.loads("\n".join(lines[1:]))


def until_code(stack: StackProcess, code: str, *args: str, timeout: float = 12) -> tuple[int, dict]:
    """The gateway caches partner records for a few seconds; registry changes show up within that."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = request(stack, *args)
        if body.get("error", {}).get("code") == code or time.monotonic() > deadline:
            return status, body
        time.sleep(0.5)


def test_state_files_are_written(stack: StackProcess) -> None:
    dep = stack.deployment
    assert dep["gateway_url"] == stack.url and dep["aws_endpoint_url"] == stack.aws_url
    assert dep["region"] == "cn-north-1"
    for logical in ("PartnersTable", "NoncesTable", "AuditTable", "IdempotencyTable", "MasterKey", "HealthFunction"):
        assert logical in dep["resources"], logical
    partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
    assert partner["app_id"] == "demo-hospital" and "BEGIN PRIVATE KEY" in partner["private_key_pem"]
    assert (stack.state_dir / "partners" / "demo-hospital.json").stat().st_mode & 0o077 == 0


def test_health(stack: StackProcess) -> None:
    with urllib.request.urlopen(f"{stack.url}/health", timeout=5) as r:
        assert (r.status, json.loads(r.read())) == (200, {"status": "ok"})
    token = issue_token(via_gateway(stack.url), "ops-1", "staff", ["operator"], hospital="platform")
    detail = urllib.request.Request(f"{stack.url}/health/detail", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(detail, timeout=5) as r:
        body = json.loads(r.read())
    assert r.status == 200 and body["stage"] == "local"
    assert {"HealthFunction", "PartnersMeFunction", "AuditVerifyFunction"} <= set(body["functions"])


def test_cli_signed_request(stack: StackProcess) -> None:
    status, body = request(stack, "GET", "/partners/me", "--app", "demo-hospital")
    assert status == 200 and body == {
        "app_id": "demo-hospital",
        "key_serial": "1",
        "name": "演示医院 (demo hospital HIS)",
    }


def test_wrong_key(stack: StackProcess, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pem"
    wrong.write_text(sm2_generate_key().to_pem())
    status, body = request(stack, "GET", "/partners/me", "--app", "demo-hospital", "--key-file", str(wrong))
    assert status == 401 and body["error"]["code"] == "SIGNATURE_INVALID"


def test_replayed_nonce(stack: StackProcess) -> None:
    args = ("GET", "/partners/me", "--app", "demo-hospital", "--nonce", f"replay-{time.time_ns()}")
    assert request(stack, *args)[0] == 200
    status, body = request(stack, *args)
    assert status == 401 and body["error"]["code"] == "NONCE_REPLAYED"


def test_stale_timestamp(stack: StackProcess) -> None:
    status, body = request(
        stack, "GET", "/partners/me", "--app", "demo-hospital", "--timestamp", str(int(time.time()) - 600)
    )
    assert status == 401 and body["error"]["code"] == "TIMESTAMP_OUT_OF_WINDOW"


def test_unknown_app(stack: StackProcess) -> None:
    key_file = stack.state_dir / "partners" / "demo-hospital.json"
    status, body = request(stack, "GET", "/partners/me", "--app", "ghost-app", "--key-file", str(key_file))
    assert status == 401 and body["error"]["code"] == "APP_UNKNOWN"


def test_new_partner_from_cli(stack: StackProcess, tmp_path: Path) -> None:
    key_out = tmp_path / "clinic.pem"
    added = stack.cli(
        "partner", "add", "demo-clinic", "--name", "社区诊所", "--cidr", "127.0.0.1/32", "--key-out", str(key_out)
    )
    assert added.returncode == 0, added.stderr
    status, body = request(stack, "GET", "/partners/me", "--app", "demo-clinic", "--key-file", str(key_out))
    assert status == 200 and body["app_id"] == "demo-clinic"
    listed = stack.cli("partner", "list")
    assert "demo-clinic" in listed.stdout and "demo-hospital" in listed.stdout


def test_outside_allowlist_then_disabled(stack: StackProcess) -> None:
    assert stack.cli("partner", "set-cidrs", "demo-yilian", "--cidr", "10.0.0.0/8").returncode == 0
    status, body = until_code(stack, "IP_NOT_ALLOWED", "GET", "/partners/me", "--app", "demo-yilian")
    assert status == 403 and body["error"]["code"] == "IP_NOT_ALLOWED"
    assert stack.cli("partner", "set-cidrs", "demo-yilian", "--cidr", "127.0.0.0/8").returncode == 0
    assert stack.cli("partner", "disable", "demo-yilian").returncode == 0
    status, body = until_code(stack, "APP_DISABLED", "GET", "/partners/me", "--app", "demo-yilian")
    assert status == 403 and body["error"]["code"] == "APP_DISABLED"


def test_key_rotation_without_downtime(stack: StackProcess, tmp_path: Path) -> None:
    key_out = tmp_path / "rotated.pem"
    rotated = stack.cli("partner", "rotate-key", "demo-hospital", "--key-out", str(key_out))
    assert rotated.returncode == 0, rotated.stderr
    serial = json.loads(rotated.stdout)["key_serial"]
    assert request(stack, "GET", "/partners/me", "--app", "demo-hospital")[0] == 200  # old serial still works
    status, body = until_code(
        stack,
        "",
        "GET",
        "/partners/me",
        "--app",
        "demo-hospital",
        "--key-file",
        str(key_out),
        "--serial",
        serial,
        timeout=8,
    )
    assert status == 200 and body["key_serial"] == serial


def test_audit_verify_and_stack_info(stack: StackProcess) -> None:
    verified = stack.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    reports = [json.loads(line) for line in verified.stdout.splitlines()]
    # the partner changes made through the CLI in this module were audited
    assert any(r["chain"].startswith("platform#") and r["records"] >= 1 and r["ok"] for r in reports)
    info = json.loads(stack.cli("stack", "info").stdout)
    assert info["gateway_url"] == stack.url and info["status"] != "not running"
    fired = stack.cli("stack", "fire", "AuditVerifyFunction")
    assert fired.returncode == 0 and json.loads(fired.stdout)["runs"] == 1
