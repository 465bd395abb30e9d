"""The CNB build environment: buildpack executables run in bubblewrap at the spec's paths.

Launch layers hold absolute paths (a virtualenv's scripts, a runtime's prefix), so a layer
must be built at the path it runs at. Each `bin/detect` and `bin/build` therefore sees the
app at /workspace, layers at /layers, the platform dir at /platform and buildpacks at
/cnb/buildpacks, with the host's system directories read-only (the stack, see
docs/fir-builds.md), a private /tmp, and as an unprivileged user when Spruce is root.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

APP_DIR = "/workspace"
LAYERS_DIR = "/layers"
PLATFORM_DIR = "/platform"
BUILDPACKS_DIR = "/cnb/buildpacks"
HOME_DIR = "/home/cnb"

# System directories of the host that builds (and dynos) see read-only: the stack.
HOST_PATHS: tuple[str, ...] = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/opt")

Output = Callable[[str], None]


class SandboxUnavailable(RuntimeError):
    pass


def interpreter_roots() -> tuple[str, ...]:
    """Runtime trees outside the system dirs that buildpacks build against and images run
    with: pyenv-style interpreters, and a .NET installation named by SPRUCE_DOTNET_ROOT or
    DOTNET_ROOT (dotnet-install puts one under ~/.dotnet)."""
    roots = {os.environ.get("PYENV_ROOT", ""), "/root/.pyenv", "/usr/local/pyenv", "/opt/pyenv"}
    found = {f"{r}/versions" for r in roots if r and os.path.isdir(f"{r}/versions")}
    for name in ("SPRUCE_DOTNET_ROOT", "DOTNET_ROOT"):
        path = os.path.realpath(os.environ.get(name) or "/nonexistent")
        inside = any(path == h or path.startswith(h + "/") for h in HOST_PATHS)
        if os.path.isdir(path) and not inside:
            found.add(path)
    return tuple(sorted(found))


@dataclass
class BuildSandbox:
    """Host directories bound at the spec's paths, and who runs inside."""

    workspace: Path
    layers: Path
    platform: Path
    buildpacks: Path
    home: Path
    run_as: tuple[int, int] | None = None
    host_paths: tuple[str, ...] = field(default_factory=lambda: HOST_PATHS + interpreter_roots())
    bwrap: str = ""

    def __post_init__(self) -> None:
        found = self.bwrap or shutil.which("bwrap")
        if not found:
            raise SandboxUnavailable(
                "Fir builds run buildpacks in bubblewrap: install it (apt-get install bubblewrap)"
            )
        self.bwrap = found

    def argv(self, command: Sequence[str], *, app_writable: bool, cwd: str = APP_DIR) -> list[str]:
        args = [
            self.bwrap,
            "--die-with-parent",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--hostname",
            "cnb-build",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
        ]
        made: set[str] = set()
        for path in self.host_paths:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.exists(path):
                for parent in [str(p) for p in reversed(Path(path).parents) if str(p) != "/"]:
                    if parent not in made:  # bwrap would copy /root's 0700 onto the parent
                        args += ["--perms", "0755", "--dir", parent]
                        made.add(parent)
                args += ["--ro-bind", path, path]
        for parent in ("/cnb", "/home"):  # else bwrap makes them 0700, closed to the build user
            args += ["--perms", "0755", "--dir", parent]
        args += ["--bind" if app_writable else "--ro-bind", str(self.workspace), APP_DIR]
        args += ["--bind", str(self.layers), LAYERS_DIR]
        args += ["--ro-bind", str(self.platform), PLATFORM_DIR]
        args += ["--ro-bind", str(self.buildpacks), BUILDPACKS_DIR]
        args += ["--bind", str(self.home), HOME_DIR, "--chdir", cwd, "--"]
        if self.run_as is not None and os.geteuid() == 0:
            uid, gid = self.run_as
            args += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        return [*args, *command]

    def give(self, *paths: Path, tree: bool = False) -> None:
        """Hand paths the platform created to the build user (whole trees when `tree`)."""
        if self.run_as is None or os.geteuid() != 0:
            return
        uid, gid = self.run_as
        for top in paths:
            os.lchown(top, uid, gid)
            if tree and top.is_dir() and not top.is_symlink():
                for root, dirs, files in os.walk(top):
                    for name in dirs + files:
                        os.lchown(os.path.join(root, name), uid, gid)


async def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    on_line: Output,
    timeout: float | None = None,
) -> int:
    """Run one sandboxed executable, streaming its stdout and stderr lines; its exit status."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
        start_new_session=True,
        cwd="/",
    )
    assert proc.stdout is not None
    pending = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await proc.stdout.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    on_line(raw.decode("utf-8", errors="replace").rstrip("\r"))
            if pending:
                on_line(pending.decode("utf-8", errors="replace").rstrip("\r"))
            return await proc.wait()
    finally:
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
