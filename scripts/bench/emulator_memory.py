"""Peak resident memory of the local stack's moto server, sampled from /proc while a benchmark runs.

The benchmarks start the stack with ``StackProcess`` (``bianjie stack run``), which starts moto's server
(``python -m bianjie_dev.runtime.motoserver``) as its child. ``EmulatorMemory`` finds that child and reads its
``VmRSS`` every half second; at the end it also reads ``VmHWM`` (the kernel's own high-water mark), so a
peak between two samples is not missed. Linux only; elsewhere the figure is ``None``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")
MOTO_MODULE = b"bianjie_dev.runtime.motoserver"


def moto_pid(stack_pid: int) -> int | None:
    """The moto server started by the stack process ``stack_pid`` (its direct child)."""
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the field after the parenthesised command name is the state, then the parent pid
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == stack_pid and MOTO_MODULE in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while we looked
    return None


def status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (``VmRSS``, ``VmHWM``), or None once the process is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used (/proc/<pid>/stat fields 14 and 15)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class EmulatorMemory:
    """Samples the moto child of ``stack_pid`` in a daemon thread until ``stop()``."""

    def __init__(self, stack_pid: int, interval: float = 0.5) -> None:
        self._pid = moto_pid(stack_pid) if PROC.is_dir() else None
        self._interval = interval
        self._peak_kb = 0
        self.cpu_s: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator-memory", daemon=True)
        if self._pid is not None:
            self._thread.start()

    def _sample(self) -> None:
        if self._pid is None:
            return
        for field in ("VmRSS", "VmHWM"):
            kb = status_kb(self._pid, field)
            if kb is not None:
                self._peak_kb = max(self._peak_kb, kb)

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            self._sample()

    def current_mb(self) -> float | None:
        """Resident memory now, in MB (None if the moto process was not found or has ended)."""
        kb = status_kb(self._pid, "VmRSS") if self._pid is not None else None
        return round(kb / 1024, 1) if kb is not None else None

    def current_cpu_s(self) -> float | None:
        """CPU seconds moto has used so far (None if the moto process was not found or has ended)."""
        return cpu_seconds(self._pid) if self._pid is not None else None

    def stop(self) -> float | None:
        """Stop sampling (call before the stack stops) and return the peak in MB (None if not found); the
        CPU time moto used is then in ``cpu_s`` (a figure the machine's load changes less than wall time)."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        self._sample()
        if self._pid is not None:
            cpu = cpu_seconds(self._pid)
            self.cpu_s = round(cpu, 1) if cpu is not None else None
        return round(self._peak_kb / 1024, 1) if self._pid is not None else None
