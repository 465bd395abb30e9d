"""Helpers shared by the Go, Ruby, Java and PHP classic buildpacks (python3 stdlib only).

Each of those buildpacks uses a toolchain the operator installs from the distribution (apt);
`require_tool` turns a missing one into a build error that names the tool and its package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

# Config vars a buildpack never lets into its own environment (they would break the build).
DENY_ENV = frozenset({"PATH", "GIT_DIR", "LD_PRELOAD", "LD_LIBRARY_PATH", "HOME", "BUILD_DIR"})


class BuildError(Exception):
    """A user-facing reason to fail the build (printed with ` !     `)."""


def topic(message: str) -> None:
    print("-----> " + message, flush=True)


def detail(message: str) -> None:
    print("       " + message, flush=True)


def warn(message: str) -> None:
    print(" !     Warning: " + message.replace("\n", "\n !     "), flush=True)


def die(message: str) -> None:
    print(" !     " + message.replace("\n", "\n !     "), flush=True)
    sys.exit(1)


def env_dir_vars(env_dir: str) -> dict[str, str]:
    """The app's config vars, as files in ENV_DIR."""
    out: dict[str, str] = {}
    if os.path.isdir(env_dir):
        for name in sorted(os.listdir(env_dir)):
            path = os.path.join(env_dir, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    out[name] = fh.read()
    return out


def build_env(env_dir: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment plus the app's config vars (but DENY_ENV) plus `extra`."""
    env = dict(os.environ)
    env.update({k: v for k, v in env_dir_vars(env_dir).items() if k not in DENY_ENV})
    env.update(extra or {})
    return env


def require_tool(command: str, what: str, package: str, path: str | None = None) -> str:
    """The full path of `command` on PATH, or a BuildError naming the tool and apt package."""
    found = shutil.which(command, path=path if path is not None else os.environ.get("PATH"))
    if found is None:
        raise BuildError(
            f"{what} is not installed on this platform: `{command}` was not found on PATH.\n"
            f"The platform operator installs it from the distribution: apt-get install {package}"
        )
    return found


def tool_output(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """stdout+stderr of a quick version query ('' when it cannot run)."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=60, env=env,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout + proc.stderr


def version_tuple(text: str) -> tuple[int, ...]:
    """(1, 22, 3) from '1.22.3', 'go1.22', 'v3.1.2p20'; () when there is no number."""
    match = re.search(r"\d+(?:\.\d+)*", text)
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def run(
    argv: Sequence[str],
    cwd: str,
    env: Mapping[str, str],
    what: str,
    heartbeat: float | None = None,
) -> None:
    """Run a build step, its output indented under the current topic; BuildError on failure.

    A step that prints nothing for `heartbeat` seconds gets a '... still running' line, so a
    long compile never looks stuck (HEARTBEAT_SECONDS, default 10).
    """
    interval = heartbeat or float(os.environ.get("HEARTBEAT_SECONDS", "10"))
    try:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except OSError as exc:
        raise BuildError(f"{what} could not start: {exc.strerror or exc}") from exc
    started = time.monotonic()
    last = [started]
    done = threading.Event()

    def beat() -> None:
        while not done.wait(1.0):
            if time.monotonic() - last[0] >= interval:
                last[0] = time.monotonic()
                detail(f"... still running {what} ({int(last[0] - started)}s)")

    ticker = threading.Thread(target=beat, daemon=True)
    ticker.start()
    assert proc.stdout is not None
    for raw in proc.stdout:
        last[0] = time.monotonic()
        detail(raw.decode("utf-8", errors="replace").rstrip())
    rc = proc.wait()
    done.set()
    ticker.join()
    if rc != 0:
        raise BuildError(f"{what} failed (exit status {rc}).")


def write_profile(build_dir: str, name: str, lines: Sequence[str]) -> None:
    """`.profile.d/<name>.sh`, sourced before every process of the app starts."""
    profile_d = os.path.join(build_dir, ".profile.d")
    os.makedirs(profile_d, exist_ok=True)
    with open(os.path.join(profile_d, f"{name}.sh"), "w", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


def release_yaml(
    process_types: Mapping[str, str], config_vars: Mapping[str, str] | None = None
) -> str:
    """bin/release output: YAML with double-quoted (JSON) strings, which YAML reads as-is."""
    import json

    lines = ["---"]
    if config_vars:
        lines.append("config_vars:")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in config_vars.items()]
    if process_types:
        lines.append("default_process_types:")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in process_types.items()]
    if len(lines) == 1:
        lines[0] = "--- {}"
    return "\n".join(lines) + "\n"


def has_procfile(build_dir: str) -> bool:
    return os.path.isfile(os.path.join(build_dir, "Procfile"))
