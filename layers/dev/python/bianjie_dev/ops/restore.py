"""Point-in-time restore with pgBackRest, in one step: the backup taken before the time, the WAL archived
up to it, replayed into a fresh data directory, the cluster started and promoted there, then checked.

    bianjie ops restore --to 2026-12-04T21:30:00+08:00 --target /srv/pg/restored --port 5433 \\
        [--config /etc/pgbackrest/pgbackrest.conf] [--stanza bianjie] [--force]

A time without a zone is Beijing time (the hospital's clock). Refused, each with a stable code and
nothing touched: a time that does not parse, a time in the future, a time earlier than the first
backup's end, a target directory that is not empty (unless ``--force``: a cluster running there is
stopped and the directory emptied first), pgBackRest missing.

The restored cluster does not archive (``archive_mode = off``): a copy taken for checking or for a
reading must not write WAL into the repository its primary archives to. Promote it to primary by
re-enabling archiving after the switch (docs/operations/backup-restore.md).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from bianjie.kit.timefmt import BEIJING

from bianjie_dev.ops.errors import OpsError


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 instant (a zone-less one is Beijing time), in UTC; not in the future."""
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1) if " " in text.strip() else text.strip())
    except ValueError:
        raise OpsError(
            "RESTORE_TIME_INVALID", f"恢复时间无法识别：{text!r}（示例：2026-12-04T21:30:00+08:00）"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=BEIJING)
    value = value.astimezone(UTC)
    if value > (now or datetime.now(UTC)):
        raise OpsError("RESTORE_TIME_IN_FUTURE", f"恢复时间晚于当前时间：{value.isoformat()}")
    return value


def pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).resolve().parent
    raise OpsError("POSTGRES_MISSING", "未找到 PostgreSQL 服务端（pg_ctl）：请安装 postgresql 软件包", status=3)


@dataclass
class Restorer:
    config: Path | None
    stanza: str
    os_user: str | None  # run pgBackRest and the server as this user (given when running as root)

    def _cmd(self, args: list[str]) -> list[str]:
        if self.os_user and os.geteuid() == 0 and self.os_user != "root":
            return ["runuser", "-u", self.os_user, "--", *args]
        return args

    def _run(self, args: list[str], *, timeout: float = 3600) -> str:
        try:
            done = subprocess.run(self._cmd(args), capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise OpsError("PGBACKREST_MISSING", "未找到 pgbackrest：请安装 pgbackrest 软件包", status=3) from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise OpsError("RESTORE_COMMAND_FAILED", f"{Path(args[0]).name} 失败：" + " | ".join(detail), status=3)
        return done.stdout

    def _pgbackrest(self, *args: str) -> list[str]:
        base = ["pgbackrest", f"--stanza={self.stanza}"]
        if self.config:
            base.append(f"--config={self.config}")
        if not shutil.which("pgbackrest"):
            raise OpsError("PGBACKREST_MISSING", "未找到 pgbackrest：请安装 pgbackrest 软件包", status=3)
        return [*base, *args]

    def backups(self) -> list[dict[str, Any]]:
        out = self._run(self._pgbackrest("--output=json", "info"), timeout=120)
        try:
            stanzas = json.loads(out)
        except json.JSONDecodeError:
            raise OpsError("BACKUP_INFO_UNREADABLE", "pgbackrest info 的输出无法解析", status=3) from None
        found: list[dict[str, Any]] = []
        for stanza in stanzas:
            if stanza.get("name") == self.stanza:
                found.extend(stanza.get("backup") or [])
        return found

    def choose_backup(self, to: datetime) -> dict[str, Any]:
        """The newest backup that ended at or before ``to``: named to pgBackRest explicitly (``--set``), so
        the choice does not depend on its version's default."""
        usable = [b for b in self.backups() if b.get("timestamp", {}).get("stop", 1 << 62) <= to.timestamp()]
        if not usable:
            raise OpsError("NO_BACKUP_BEFORE_TIME", f"没有在 {to.isoformat()} 之前完成的备份，无法恢复到该时间点")
        return max(usable, key=lambda b: b["timestamp"]["stop"])

    def refuse_target(self, target: Path, *, force: bool) -> bool:
        """Refuses a target that is not a directory, or not empty without ``force``; True if it must be emptied."""
        if target.exists() and not target.is_dir():
            raise OpsError("TARGET_NOT_DIRECTORY", f"目标不是目录：{target}")
        if target.is_dir() and any(target.iterdir()):
            if not force:
                raise OpsError(
                    "TARGET_NOT_EMPTY",
                    f"目标目录非空：{target}。确认要覆盖时加 --force（会停止其中运行的数据库并清空）",
                )
            return True
        return False

    def prepare_target(self, target: Path, *, empty: bool) -> None:
        if empty:
            if (target / "postmaster.pid").exists():
                subprocess.run(
                    self._cmd([str(pg_bindir() / "pg_ctl"), "-D", str(target), "-m", "fast", "-w", "stop"]),
                    capture_output=True,
                    timeout=120,
                )
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o700)
        if self.os_user and os.geteuid() == 0:
            entry = pwd.getpwnam(self.os_user)
            os.chown(target, entry.pw_uid, entry.pw_gid)

    def restore(self, to: datetime, target: Path, port: int, *, force: bool, timeout: float = 900) -> dict[str, Any]:
        # every refusal before anything is touched: the target, then a backup to start from
        empty = self.refuse_target(target, force=force)
        backup = self.choose_backup(to)
        self.prepare_target(target, empty=empty)
        started = time.monotonic()
        target_text = to.strftime("%Y-%m-%d %H:%M:%S.%f+00")
        self._run(
            self._pgbackrest(
                f"--pg1-path={target}",
                "--type=time",
                f"--target={target_text}",
                "--target-action=promote",
                f"--set={backup['label']}",  # the newest backup that ended before the time (choose_backup)
                "restore",
            )
        )
        restored_s = time.monotonic() - started
        # the copy listens where asked, on loopback, and archives nothing (see the module's docstring)
        with (target / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                "\n# bianjie ops restore\n"
                f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                "archive_mode = off\nsynchronous_standby_names = ''\n"
            )
        log = target.parent / f"{target.name}.log"
        log.touch()
        if self.os_user and os.geteuid() == 0:
            entry = pwd.getpwnam(self.os_user)
            os.chown(log, entry.pw_uid, entry.pw_gid)
        self._run(
            [str(pg_bindir() / "pg_ctl"), "-D", str(target), "-l", str(log), "-w", "-t", str(int(timeout)), "start"],
            timeout=timeout + 30,
        )
        dsn = f"postgresql://postgres@127.0.0.1:{port}/bianjie"
        deadline = time.monotonic() + timeout
        while True:  # replay ends at the target, then the cluster promotes itself
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row and not row[0]:
                        break
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise OpsError(
                    "RESTORE_NOT_PROMOTED", f"恢复的数据库未在 {timeout:.0f} 秒内完成回放（日志：{log}）", status=3
                )
            time.sleep(0.2)
        return {
            "restored_to": to.isoformat(),
            "backup": backup.get("label"),
            "backup_type": backup.get("type"),
            "target": str(target),
            "dsn": dsn,
            "pgbackrest_restore_s": round(restored_s, 2),
            "restore_s": round(time.monotonic() - started, 2),
        }
