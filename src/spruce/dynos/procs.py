"""Process groups seen through /proc: members, memory, signals, identity across restarts."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str
    pgrp: int
    starttime: int
    rss_bytes: int
    cpu_ticks: int = 0
    """utime + stime, in clock ticks (TICKS a second)."""


def read_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(")") + 2 :].split()
    try:
        return ProcStat(
            pid,
            rest[0],
            int(rest[2]),
            int(rest[19]),
            int(rest[21]) * PAGE,
            int(rest[11]) + int(rest[12]),
        )
    except (IndexError, ValueError):
        return None


def starttime(pid: int) -> int | None:
    st = read_stat(pid)
    return st.starttime if st else None


def group_members(pgid: int) -> list[ProcStat]:
    """Live (non-zombie) processes whose process group is pgid."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = read_stat(int(entry))
            if st and st.pgrp == pgid and st.state not in ("Z", "X"):
                out.append(st)
    return out


def pids_alive(pids: list[int]) -> list[ProcStat]:
    out = []
    for pid in pids:
        st = read_stat(pid)
        if st and st.state not in ("Z", "X"):
            out.append(st)
    return out


def signal_group(pgid: int, sig: int, extra_pids: list[int] | None = None) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in extra_pids or []:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def exit_status(returncode: int | None) -> int:
    """Heroku prints 128+N for a process ended by signal N (143 for SIGTERM)."""
    if returncode is None:
        return 0
    if returncode < 0:
        return 128 + (-returncode)
    return returncode


SIGKILL = signal.SIGKILL
SIGTERM = signal.SIGTERM
