"""What the cluster changes on the host, recorded before and undone after: sysctls the
kubelet rewrites, mounts under the state folder, processes it started."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import time
from pathlib import Path

# The kubelet sets these at start (setupKernelTunables); the rest are checked for safety.
SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/bridge/bridge-nf-call-iptables",
)
MNT_DETACH = 2


def read_sysctls() -> dict[str, str]:
    values: dict[str, str] = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            values[name] = (Path("/proc/sys") / name).read_text().strip()
    return values


def restore_sysctls(saved: dict[str, str]) -> list[str]:
    """Write back every saved value that changed; the names restored."""
    restored = []
    for name, value in saved.items():
        path = Path("/proc/sys") / name
        with contextlib.suppress(OSError):
            if path.read_text().strip() != value:
                path.write_text(value + "\n")
                restored.append(name.replace("/", "."))
    return restored


def mounts_under(prefix: Path) -> list[str]:
    """Mount points at or below prefix, deepest first."""
    root = str(prefix.resolve())
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == root or point.startswith(root + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all(prefix: Path) -> list[str]:
    """Lazily unmount everything under prefix (what kubelet and containerd mounted)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    left: list[str] = []
    for _ in range(5):
        points = mounts_under(prefix)
        if not points:
            return []
        for point in points:
            libc.umount2(point.encode(), MNT_DETACH)
        left = mounts_under(prefix)
    return left


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL after grace."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains text (containerd shims of one state folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def kill_pids(pids: list[int], grace: float = 5.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTAINERD_CGROUP = "k8s.io"  # where containerd puts pods when the kubelet has no QoS tree


def cgroup_trees(name: str = CONTAINERD_CGROUP) -> set[Path]:
    """The `name` folders at the top of every cgroup hierarchy (v1 controllers or v2)."""
    found = {CGROUP_ROOT / name} if (CGROUP_ROOT / name).is_dir() else set()
    with contextlib.suppress(OSError):
        found |= {d / name for d in CGROUP_ROOT.iterdir() if (d / name).is_dir()}
    return found


def remove_cgroup_trees(trees: set[Path]) -> list[str]:
    """rmdir the (empty once their processes are gone) trees, deepest first; those left."""
    left = []
    for tree in trees:
        dirs = sorted(
            (p for p in tree.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        )
        for d in [*dirs, tree]:
            with contextlib.suppress(OSError):
                d.rmdir()
        if tree.exists():
            left.append(str(tree))
    return left
