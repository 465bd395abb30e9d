# ruff: noqa: UP031  (the classic buildpack's %-formatted messages, moved here unchanged)
"""Python build logic shared by the classic heroku/python buildpack and the heroku/python CNB
(python3 stdlib only).

* The interpreter comes from `.python-version` (or the older `runtime.txt`) and is chosen among
  the interpreters installed on this machine: a patch release that is not installed is served
  by the installed release of the same minor version, with a warning; a minor version that is
  not installed is an error. Without a version file the newest installed 3.x is used.
* Dependencies: uv.lock (uv sync; uv is installed from the package index if missing),
  requirements.txt (pip install -r), or pyproject.toml [project].dependencies (pip), into a
  virtualenv the caller names. pip uses the package index this machine's pip is set up with.

Messages go through a `Log` (classic `-----> ` topics, or the CNB's markdown-ish bullets).
"""

from __future__ import annotations

import glob
import hashlib
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

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
        print(" !     Warning: " + message, flush=True)

    def die(self, message: str) -> None:
        print(" !     " + message.replace("\n", "\n !     "), flush=True)
        sys.exit(1)


def read_first_line(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#"):
                return line
    return ""


def requested_version(app_dir: str, log: Log) -> tuple[str | None, str | None]:
    """(version string or None, source file name)."""
    runtime = os.path.join(app_dir, "runtime.txt")
    if os.path.isfile(runtime):
        raw = read_first_line(runtime)
        match = re.fullmatch(r"python-(\d+\.\d+(?:\.\d+)?)", raw)
        if not match:
            log.die("runtime.txt must look like 'python-3.12.1', found: %r" % raw)
        assert match is not None
        return match.group(1), "runtime.txt"
    pv = os.path.join(app_dir, ".python-version")
    if os.path.isfile(pv):
        raw = read_first_line(pv)
        match = re.fullmatch(r"(?:python-)?(\d+\.\d+(?:\.\d+)?)", raw)
        if not match:
            log.die(
                ".python-version must hold a version such as '3.12' or '3.12.1', found: %r" % raw
            )
        assert match is not None
        return match.group(1), ".python-version"
    return None, None


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


def choose_interpreter(app_dir: str, log: Log) -> str:
    wanted, source = requested_version(app_dir, log)
    installed = installed_interpreters()
    if not installed:
        log.die("No Python 3 interpreter is installed on this platform.")
    listing = ", ".join(".".join(map(str, v)) for v in sorted(installed))
    if wanted is None:
        version = max(installed)
        log.topic("Using Python %s (newest installed)" % ".".join(map(str, version)))
        log.detail("No .python-version file found; add one (e.g. '3.12') to pin the version.")
        return installed[version]
    parts = tuple(int(p) for p in wanted.split("."))
    same_minor = sorted(v for v in installed if v[:2] == parts[:2])
    if not same_minor:
        log.die(
            "Python %s (requested in %s) is not available on this platform.\n"
            "Installed versions: %s" % (wanted, source, listing)
        )
    if len(parts) == 3 and parts in installed:
        version = parts
    else:
        version = same_minor[-1]
        if len(parts) == 3:
            log.warn(
                "Python %s (requested in %s) is not installed; using Python %s,"
                " the installed release of %d.%d."
                % (wanted, source, ".".join(map(str, version)), parts[0], parts[1])
            )
    log.topic("Using Python %s (from %s)" % (".".join(map(str, version)), source))
    return installed[version]


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


def find_uv(env: dict[str, str], cache_dir: str, app_dir: str, log: Log) -> str:
    uv = shutil.which("uv", path=env.get("PATH"))
    if uv:
        return uv
    tools = os.path.join(cache_dir, "uv-tool")
    uv = os.path.join(tools, "bin", "uv")
    if not os.path.exists(uv):
        log.detail("Installing uv from the package index")
        run([sys.executable, "-m", "venv", tools], env, app_dir, log)
        run(
            [os.path.join(tools, "bin", "python"), "-m", "pip", "install", "-q", "uv"],
            env,
            app_dir,
            log,
        )
    return uv


def install_dependencies(
    app_dir: str, venv: str, python: str, env: dict[str, str], cache_dir: str, log: Log
) -> None:
    def has(name: str) -> bool:
        return os.path.isfile(os.path.join(app_dir, name))

    if has("uv.lock"):
        if not has("pyproject.toml"):
            log.die("uv.lock found without pyproject.toml")
        log.topic("Installing dependencies using uv (uv.lock)")
        uv = find_uv(env, cache_dir, app_dir, log)
        env = dict(
            env,
            UV_PROJECT_ENVIRONMENT=venv,
            UV_PYTHON=python,
            UV_PYTHON_DOWNLOADS="never",
            UV_LINK_MODE="copy",
        )
        run([uv, "sync", "--locked", "--no-dev", "--no-editable"], env, app_dir, log)
        return
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--progress-bar", "off"]
    if has("requirements.txt"):
        log.topic("Installing dependencies using pip (requirements.txt)")
        run(pip + ["-r", "requirements.txt"], env, app_dir, log)
    elif has("pyproject.toml"):
        deps = project_dependencies(app_dir, log)
        log.topic("Installing dependencies using pip (pyproject.toml)")
        if deps:
            run(pip + deps, env, app_dir, log)
        else:
            log.detail("No dependencies declared in [project].dependencies")
    elif has("Pipfile") or has("poetry.lock") or has("setup.py"):
        log.die(
            "Pipfile, poetry.lock and setup.py-only apps are not supported: add a "
            "requirements.txt (e.g. from `pip freeze`), or a pyproject.toml / uv.lock."
        )
    else:
        log.detail("No requirements.txt, pyproject.toml or uv.lock: nothing to install")


def create_venv(python: str, venv: str, env: dict[str, str], app_dir: str, log: Log) -> None:
    run([python, "-m", "venv", "--copies", venv], env, app_dir, log)


def cache_key(app_dir: str, python: str) -> str:
    """The installed environment is reused while the interpreter and dependency files match."""
    digest = hashlib.sha256(python.encode())
    for name in ("requirements.txt", "pyproject.toml", "uv.lock"):
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
