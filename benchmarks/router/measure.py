"""Stable per-request measures for benchmarks/router/run.py (req/s moves with the shared cores):

- CPU seconds per request of a proxy's process(es), user and system, from /proc/PID/stat;
- syscalls per request, `strace -c -f` attached over a fixed number of requests;
- instructions per request of Spruce's worker, `valgrind --tool=callgrind` (instrumentation
  switched on with callgrind_control for a fixed number of requests only): the same figure
  run after run, so each change to the hot path shows its effect without noise.

Each load runs a fixed request count: wrk with a Lua script that stops after N responses
(HTTP/1.1; up to the connection count of requests more may be in flight then), h2load -n
(HTTP/2).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CONNS = 32
_TICK = os.sysconf("SC_CLK_TCK")
_STOP_AFTER = """
local done = 0
local max = tonumber(os.getenv("SPRUCE_BENCH_N"))
function response(status, headers, body)
  done = done + 1
  if done >= max then os.exit(0) end  -- (wrk's own stop waits out -d)
end
"""


def fixed_load(load: str, http_url: str, https_url: str, n: int) -> None:
    """`n` requests of `load` (h1_keepalive, h1_new_conn, h2_tls); returns when done."""
    if load == "h2_tls":
        cmd = ["h2load", "-n", str(n), "-c", "8", "-m", "16", "-t", "1", https_url]
        subprocess.run(cmd, capture_output=True, check=True, timeout=600)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_STOP_AFTER)
    cmd = ["wrk", "-t1", f"-c{CONNS}", "-d600s", "-s", f.name, "-H", "Host: bench.localhost"]
    if load == "h1_new_conn":
        cmd += ["-H", "Connection: close"]
    try:
        subprocess.run(
            cmd + [http_url],
            capture_output=True,
            check=True,
            timeout=600,
            env=dict(os.environ, SPRUCE_BENCH_N=str(n)),
        )
    finally:
        os.unlink(f.name)


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime, stime) of a process, all its threads together, in clock ticks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]), int(fields[12])


def cpu_per_request(pids: list[int], run: Callable[[], None], n: int) -> dict[str, float]:
    """Microseconds of user and system CPU per request in `pids` while `run` sends `n`."""
    before = [cpu_ticks(p) for p in pids]
    run()
    after = [cpu_ticks(p) for p in pids]
    user = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    system = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    per = 1e6 / _TICK / n
    return {"user_us": round(user * per, 2), "sys_us": round(system * per, 2)}


_STRACE_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$")


def syscalls_per_request(pids: list[int], run: Callable[[], None], n: int) -> dict[str, object]:
    """Syscalls per request of `pids` (with their threads) while `run` sends `n`: the total
    and the calls making it up."""
    out = Path(tempfile.mkstemp(suffix=".strace")[1])
    cmd = ["strace", "-c", "-f", "-o", str(out)]
    for p in pids:
        cmd += ["-p", str(p)]
    tracer = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached (strace prints nothing to wait for)
    try:
        run()
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
    calls: dict[str, float] = {}
    for line in out.read_text().splitlines():
        m = _STRACE_ROW.match(line)
        if m and m.group(2) != "total":
            calls[m.group(2)] = round(int(m.group(1)) / n, 2)
    out.unlink()
    calls = dict(sorted(calls.items(), key=lambda kv: -kv[1]))
    return {"total": round(sum(calls.values()), 2), "calls": calls}


def _callgrind_totals(path: Path) -> int:
    """The dump's cost total (its `summary:` stays 0 after --zero; `totals:` is the count)."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


class Callgrind:
    """A Spruce launcher (and its worker) under callgrind, instrumenting nothing until asked.

    `instructions(pid, run, n)` counts the instructions `pid` executes while `run` sends `n`
    requests: counters zeroed, instrumentation on, the load, then a dump read back."""

    def __init__(self, cmd: list[str], out_dir: Path, env: dict[str, str]) -> None:
        self.out_dir = out_dir
        self.proc = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--trace-children=yes",
                "--instr-atstart=no",
                f"--callgrind-out-file={out_dir}/cg.%p",
                *cmd,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )

    def ready(self, timeout: float = 300.0) -> list[int]:
        """The worker pids the launcher prints once it serves."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("ready"):
                return [int(x) for x in line.split()[1:]]
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("the router under valgrind did not become ready")

    def _control(self, pid: int, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(pid)],
            capture_output=True,
            check=True,
            timeout=120,
        )

    def instructions(self, pid: int, run: Callable[[], None], n: int) -> float:
        before = set(self.out_dir.glob(f"cg.{pid}.*"))
        self._control(pid, "--zero")
        self._control(pid, "--instr=on")
        try:
            run()
        finally:
            self._control(pid, "--instr=off")
        self._control(pid, "--dump")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = set(self.out_dir.glob(f"cg.{pid}.*")) - before
            if new:
                time.sleep(0.5)  # written whole
                return round(_callgrind_totals(max(new, key=os.path.getmtime)) / n)
            time.sleep(0.2)
        raise RuntimeError("callgrind wrote no dump")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
