"""CPU time per group of processes, read from /proc, for benchmarks that run several processes.

A group is a function returning the pids it holds now (a process tree, PostgreSQL's backends serving
one database); ``CpuMeter.snapshot()`` sums user + system time of each group's live processes. The
difference of two snapshots divided by the work done between them is CPU per operation: far less
sensitive to a loaded machine than wall time (a process waiting for a core accrues none). A process
that starts and ends between two snapshots is missed; the benchmarks keep theirs alive (pools).
Linux only: elsewhere every figure is 0.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / TICK


def _all() -> list[tuple[int, int, bytes]]:
    """(pid, parent pid, command line) of every process."""
    out = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        out.append((int(entry.name), int(fields[1]), cmdline))
    return out


def tree(root: int) -> Callable[[], list[int]]:
    """``root`` and all its descendants."""

    def pids() -> list[int]:
        procs = _all()
        found = {root}
        grew = True
        while grew:
            grew = False
            for pid, ppid, _ in procs:
                if ppid in found and pid not in found:
                    found.add(pid)
                    grew = True
        return sorted(found)

    return pids


def postgres_backends(database: str) -> Callable[[], list[int]]:
    """PostgreSQL backends connected to ``database`` (their title is "postgres: user db host state")."""
    marker = f" {database} ".encode()

    def pids() -> list[int]:
        return [pid for pid, _, cmd in _all() if cmd.startswith(b"postgres: ") and marker in cmd.replace(b"\0", b" ")]

    return pids


class CpuMeter:
    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups

    def snapshot(self) -> dict[str, dict[int, float]]:
        return {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()}

    @staticmethod
    def spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
        """CPU seconds each group used between two snapshots (processes new since ``before`` count whole)."""
        return {
            name: sum(max(0.0, t - before.get(name, {}).get(pid, 0.0)) for pid, t in after[name].items())
            for name in after
        }
