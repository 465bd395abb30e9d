# ruff: noqa: UP031  (%-formatted messages, like the rest of the Python buildpack)
"""Python package managers as Heroku's Python buildpack uses them (python3 stdlib only).

The package manager is chosen by the file at the app's root, in Heroku's order: Pipenv
(`Pipfile.lock`), pip (`requirements.txt`), Poetry (`poetry.lock`), uv (`uv.lock`). With more
than one, the first is used and the build warns, as Heroku's classic buildpack does. A
`Pipfile` without its `Pipfile.lock` fails the build. Beyond Heroku, a `pyproject.toml` with
`[project].dependencies` and no lock file is installed with pip.

Pipenv, Poetry and uv are installed from the package index into a virtualenv in the build
cache (not the slug) the first time an app needs them, and reused by later builds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Protocol

# (manager, the file that selects it), in Heroku's order of precedence.
MANAGER_FILES = (
    ("pipenv", "Pipfile.lock"),
    ("pip", "requirements.txt"),
    ("poetry", "poetry.lock"),
    ("uv", "uv.lock"),
)
LOCK_FILES = ("requirements.txt", "Pipfile", "Pipfile.lock", "poetry.lock", "uv.lock",
              "pyproject.toml")  # fmt: skip


class _Log(Protocol):
    def topic(self, message: str) -> None: ...
    def detail(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def die(self, message: str) -> None: ...


Runner = Callable[[list[str], dict[str, str], str, "_Log"], None]


def _has(app_dir: str, name: str) -> bool:
    return os.path.isfile(os.path.join(app_dir, name))


def detect(app_dir: str, log: _Log) -> str | None:
    """pipenv, pip, poetry, uv, pyproject (Spruce's pip fallback) or None (nothing to install)."""
    found = [(m, f) for m, f in MANAGER_FILES if _has(app_dir, f)]
    if not found and _has(app_dir, "Pipfile"):
        log.die(
            "Error: No 'Pipfile.lock' found!\n\n"
            "A 'Pipfile' file was found, however, the associated 'Pipfile.lock' Pipenv\n"
            "lockfile was not. Without it your app's dependency versions aren't pinned.\n\n"
            "Run 'pipenv lock' to generate the lockfile, then commit it to your repository."
        )
    if len(found) > 1:
        log.warn(
            "Multiple Python package manager files were found:\n%s\n\n"
            "Using the first one, %s. Decide which package manager you want to use with\n"
            "your app, then delete the file(s) and any config from the others."
            % ("\n".join("- " + f for _m, f in found), found[0][1])
        )
    if found:
        return found[0][0]
    if _has(app_dir, "pyproject.toml"):
        return "pyproject"
    if _has(app_dir, "setup.py"):
        log.die(
            "Error: Couldn't find any supported Python package manager files.\n\n"
            "A Python app must have either a 'requirements.txt', 'Pipfile.lock',\n"
            "'poetry.lock' or 'uv.lock' package manager file in the root directory of its\n"
            "source code; a setup.py alone is not enough. If your app has no dependencies,\n"
            "create an empty 'requirements.txt' file."
        )
    return None


def tool_env(venv: str, env: dict[str, str]) -> dict[str, str]:
    """The app's virtualenv is the active environment every package manager installs into."""
    path = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    return dict(env, VIRTUAL_ENV=venv, PATH=path)


def install_tool(
    name: str, python: str, cache_dir: str, env: dict[str, str], run: Runner, log: _Log
) -> str:
    """`name` from the package index, in a virtualenv kept in the build cache."""
    if name == "uv":
        found = shutil.which("uv", path=env.get("PATH"))
        if found:
            return found
    root = os.path.join(cache_dir, ".heroku", "python-" + name)
    exe = os.path.join(root, "bin", name)
    label = {"pipenv": "Pipenv", "poetry": "Poetry", "uv": "uv"}[name]
    if os.access(exe, os.X_OK):
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env)
        if version.returncode == 0:
            log.topic("Using cached %s (%s)" % (label, version.stdout.strip().splitlines()[-1]))
            return exe
    shutil.rmtree(root, ignore_errors=True)
    log.topic("Installing %s" % label)
    clean = {k: v for k, v in env.items() if k != "VIRTUAL_ENV"}
    run([python, "-m", "venv", root], clean, cache_dir, log)
    pip = [os.path.join(root, "bin", "python"), "-m", "pip", "install", "--quiet"]
    run([*pip, "--no-input", name], clean, cache_dir, log)
    return exe


def install(
    manager: str,
    app_dir: str,
    venv: str,
    python: str,
    env: dict[str, str],
    cache_dir: str,
    run: Runner,
    log: _Log,
    project_dependencies: Callable[[str, _Log], list[str]],
) -> None:
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--progress-bar", "off"]
    if manager == "pip":
        log.topic("Installing dependencies using 'pip install -r requirements.txt'")
        run([*pip, "-r", "requirements.txt"], env, app_dir, log)
    elif manager == "pyproject":
        deps = project_dependencies(app_dir, log)
        log.topic("Installing dependencies using pip (pyproject.toml)")
        if deps:
            run(pip + deps, env, app_dir, log)
        else:
            log.detail("No dependencies declared in [project].dependencies")
    elif manager == "pipenv":
        exe = install_tool("pipenv", python, cache_dir, env, run, log)
        log.topic("Installing dependencies using 'pipenv install --deploy'")
        penv = dict(tool_env(venv, env), PIPENV_SYSTEM="1", PIPENV_VERBOSITY="-1",
                    PIPENV_NOSPIN="1", PIPENV_YES="1")  # fmt: skip
        run([exe, "install", "--deploy"], penv, app_dir, log)
    elif manager == "poetry":
        exe = install_tool("poetry", python, cache_dir, env, run, log)
        log.topic("Installing dependencies using 'poetry sync --only main'")
        penv = dict(tool_env(venv, env), POETRY_VIRTUALENVS_CREATE="false",
                    POETRY_CACHE_DIR=os.path.join(cache_dir, "poetry"))  # fmt: skip
        argv = [exe, "sync", "--only", "main", "--no-interaction", "--no-ansi", "--compile"]
        run(argv, penv, app_dir, log)
    elif manager == "uv":
        if not _has(app_dir, "pyproject.toml"):
            log.die("Error: uv.lock found without pyproject.toml.")
        exe = install_tool("uv", python, cache_dir, env, run, log)
        log.topic("Installing dependencies using 'uv sync --locked --no-default-groups'")
        uenv = dict(tool_env(venv, env), UV_PROJECT_ENVIRONMENT=venv, UV_PYTHON=python,
                    UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="copy")  # fmt: skip
        argv = [exe, "sync", "--locked", "--no-default-groups", "--no-editable",
                "--compile-bytecode"]  # fmt: skip
        run(argv, uenv, app_dir, log)
    else:
        log.detail("No package manager file found: nothing to install")
