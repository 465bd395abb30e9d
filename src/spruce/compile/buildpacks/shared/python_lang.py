# ruff: noqa: UP031  (the classic buildpack's %-formatted messages, moved here unchanged)
"""Python build logic shared by the classic heroku/python buildpack and the heroku/python CNB
(python3 stdlib only).

* The interpreter: Heroku's version rules (python_versions.py) over the interpreters
  installed on this machine (pyenv, /opt/python, the system's python3.x).
* Dependencies: the package manager chosen by lock file (python_managers.py: pip, Pipenv,
  Poetry, uv), into a virtualenv the caller names. pip uses the package index this machine's
  pip is set up with.

Messages go through a `Log` (classic `-----> ` topics, or the CNB's markdown-ish bullets).
"""

from __future__ import annotations

import glob
import hashlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

import python_managers as managers
import python_versions as versions

DENY_ENV = {
    "PATH",
    "GIT_DIR",
    "CPATH",
    "CPPATH",
    "LD_PRELOAD",
    "LIBRARY_PATH",
    "LANG",
    "BUILD_DIR",
    "PYTHONHOME",
    "PYTHONPATH",
    "HOME",
}


class Log:
    """Classic output: `-----> topic`, indented details, ` !     ` errors (exit 1)."""

    def topic(self, message: str) -> None:
        print("-----> " + message, flush=True)

    def detail(self, message: str) -> None:
        print("       " + message, flush=True)

    def warn(self, message: str) -> None:
        print(" !     Warning: " + message.replace("\n", "\n !     "), flush=True)

    def die(self, message: str) -> None:
        print(" !     " + message.replace("\n", "\n !     "), flush=True)
        sys.exit(1)


def candidate_binaries() -> Iterator[str]:
    dirs = [d for d in os.environ.get("SPRUCE_PYTHON_DIRS", "").split(":") if d]
    roots = [os.environ.get("PYENV_ROOT", ""), "/root/.pyenv", "/usr/local/pyenv", "/opt/pyenv"]
    for root in roots:
        if root:
            dirs.extend(sorted(glob.glob(os.path.join(root, "versions", "*", "bin"))))
    dirs.extend(sorted(glob.glob("/opt/python/*/bin")))
    dirs.extend(["/usr/local/bin", "/usr/bin"])
    for directory in dirs:
        for path in sorted(glob.glob(os.path.join(directory, "python3*"))):
            if re.fullmatch(r"python3(\.\d+)?", os.path.basename(path)) and os.access(
                path, os.X_OK
            ):
                yield path


def installed_interpreters() -> dict[tuple[int, ...], str]:
    """{(major, minor, patch): path} of the CPython 3 interpreters on this machine."""
    found: dict[tuple[int, ...], str] = {}
    for path in candidate_binaries():
        try:
            out = subprocess.run(
                [path, "-c", "import sys;print('%d.%d.%d' % sys.version_info[:3])"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if re.fullmatch(r"\d+\.\d+\.\d+", out):
            found.setdefault(tuple(int(p) for p in out.split(".")), path)
    return found


def choose_python(
    app_dir: str, log: Log, package_manager: str | None = None, cached: str | None = None
) -> tuple[str, tuple[int, int, int]]:
    """(interpreter path, version) by Heroku's rules (python_versions.py)."""
    installed = installed_interpreters()
    if not installed:
        log.die("No Python 3 interpreter is installed on this platform.")
    supported = [
        v for v in installed if versions.OLDEST_SUPPORTED <= v[:2] <= versions.NEWEST_KNOWN
    ]
    default = versions.fmt(max(supported or installed)[:2])
    wanted, origin = versions.requested(app_dir, package_manager, cached, default, log)
    if package_manager == "uv" and origin in ("default", "cached"):
        log.die(
            "Error: No Python version was specified.\n\n"
            "When using the package manager uv, you must specify your app's Python version\n"
            "with a .python-version file. For example, to use Python %s, create a file\n"
            "named '.python-version' in the root of your app containing:\n%s\n\n"
            "(uv itself writes one with 'uv python pin %s')" % (default, default, default)
        )
    version = versions.resolve(wanted, origin, installed, log)
    log.topic("Installing Python %s" % versions.fmt(version))
    return installed[version], version


def choose_interpreter(app_dir: str, log: Log) -> str:
    return choose_python(app_dir, log, managers.detect(app_dir, log))[0]


def build_env(user_vars: dict[str, str], cache_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: v for k, v in user_vars.items() if k not in DENY_ENV})
    env["PIP_CACHE_DIR"] = os.path.join(cache_dir, "pip")
    env["PIP_NO_INPUT"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_CACHE_DIR"] = os.path.join(cache_dir, "uv")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(argv: list[str], env: dict[str, str], cwd: str, log: Log, heartbeat: float = 5.0) -> None:
    """Run a tool, passing its output through as details; stop the build on failure.

    A tool silent for `heartbeat` seconds (venv creation, a big wheel) gets a line saying it
    still runs, so a push never looks stuck.
    """
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    words = [os.path.basename(argv[0])] + [a for a in argv[1:3] if not a.startswith("/")]
    lines: queue.Queue[str | None] = queue.Queue()

    def pump(stream: IO[str]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, args=(proc.stdout,), daemon=True).start()
    started = time.monotonic()
    while True:
        try:
            line = lines.get(timeout=heartbeat)
        except queue.Empty:
            elapsed = time.monotonic() - started
            log.detail("... still running %s (%ds)" % (" ".join(words), elapsed))
            continue
        if line is None:
            break
        log.detail(line.rstrip("\n"))
    if proc.wait() != 0:
        log.die("`%s` failed (exit status %d)" % (" ".join(words), proc.returncode))


def project_dependencies(app_dir: str, log: Log) -> list[str]:
    import tomllib

    with open(os.path.join(app_dir, "pyproject.toml"), "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            log.die("pyproject.toml is not valid TOML: %s" % exc)
            raise
    deps = data.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        log.die("pyproject.toml [project].dependencies must be a list of strings")
    return list(deps)


def install_dependencies(
    app_dir: str,
    venv: str,
    python: str,
    env: dict[str, str],
    cache_dir: str,
    log: Log,
    manager: str | None = None,
) -> None:
    """Install with the app's package manager (python_managers.py); detected if not given."""
    manager = manager or managers.detect(app_dir, log)
    managers.install(manager or "", app_dir, venv, python, env, cache_dir, run, log,
                     project_dependencies)  # fmt: skip


def create_venv(python: str, venv: str, env: dict[str, str], app_dir: str, log: Log) -> None:
    run([python, "-m", "venv", "--copies", venv], env, app_dir, log)


def cache_key(app_dir: str, python: str) -> str:
    """The installed environment is reused while the interpreter and dependency files match."""
    digest = hashlib.sha256(python.encode())
    for name in managers.LOCK_FILES:
        path = os.path.join(app_dir, name)
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                digest.update(name.encode() + b"\0" + fh.read())
    return digest.hexdigest()


PYTHON_FILES = (
    "requirements.txt",
    "pyproject.toml",
    "uv.lock",
    "setup.py",
    "Pipfile",
    "poetry.lock",
    "runtime.txt",
    ".python-version",
)


def is_python_app(app_dir: str) -> bool:
    return any(os.path.isfile(os.path.join(app_dir, f)) for f in PYTHON_FILES)
