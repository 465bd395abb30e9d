# ruff: noqa: UP031  (%-formatted messages, like the rest of the Python buildpack)
"""The classic Python buildpack's steps around the install (python3 stdlib only): the build
cache, the `bin/pre_compile` / `bin/post_compile` hooks and Django's collectstatic.

Cache (as Heroku's classic buildpack): the app's virtualenv is saved in CACHE_DIR after each
build with the Python version and package manager that made it. The next build restores it
when both are unchanged and runs the package manager over it (so unchanged dependencies are
"already satisfied"); otherwise it prints why the cache is discarded and starts afresh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Protocol


class _Log(Protocol):
    def topic(self, message: str) -> None: ...
    def detail(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def die(self, message: str) -> None: ...


Runner = Callable[[list[str], dict[str, str], str, "_Log"], None]
CACHE_ENV = "python-env"
CACHE_META = "python-env.json"


def cached_metadata(cache_dir: str) -> dict[str, str]:
    path = os.path.join(cache_dir, CACHE_META)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or not os.path.isdir(os.path.join(cache_dir, CACHE_ENV)):
        return {}
    return {str(k): str(v) for k, v in data.items()}


def restore_cache(cache_dir: str, venv: str, wanted: dict[str, str], log: _Log) -> bool:
    """Put the cached virtualenv at `venv` if it was made like `wanted`; say why not."""
    previous = cached_metadata(cache_dir)
    if not previous:
        return False
    reasons = []
    if previous.get("python_version") != wanted["python_version"]:
        reasons.append(
            "The Python version has changed from %s to %s"
            % (previous.get("python_version", "unknown"), wanted["python_version"])
        )
    if previous.get("package_manager") != wanted["package_manager"]:
        reasons.append(
            "The package manager has changed from %s to %s"
            % (previous.get("package_manager", "unknown"), wanted["package_manager"])
        )
    if not reasons and previous.get("python") != wanted["python"]:
        reasons.append("The Python interpreter on the platform has changed")
    if reasons:
        log.topic("Discarding cache since:")
        for reason in reasons:
            log.detail("- " + reason)
        shutil.rmtree(os.path.join(cache_dir, CACHE_ENV), ignore_errors=True)
        return False
    log.topic("Restoring cache")
    log.detail(
        "- Python %s virtualenv (%s)" % (wanted["python_version"], wanted["package_manager"])
    )
    shutil.copytree(os.path.join(cache_dir, CACHE_ENV), venv, symlinks=True)
    return True


def save_cache(cache_dir: str, venv: str, metadata: dict[str, str]) -> None:
    target = os.path.join(cache_dir, CACHE_ENV)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(venv, target, symlinks=True)
    with open(os.path.join(cache_dir, CACHE_META), "w", encoding="utf-8") as fh:
        json.dump(metadata, fh)


def run_hook(name: str, build_dir: str, env: dict[str, str], run: Runner, log: _Log) -> None:
    """bin/pre_compile or bin/post_compile of the app, with its config vars, if present."""
    path = os.path.join(build_dir, "bin", name)
    if not os.path.isfile(path):
        return
    log.topic("Running %s hook" % name.replace("_", "-"))
    os.chmod(path, os.stat(path).st_mode | 0o755)
    run([path], env, build_dir, log)


def collectstatic(build_dir: str, venv: str, env: dict[str, str], run: Runner, log: _Log) -> None:
    """`manage.py collectstatic --noinput` for Django apps, unless DISABLE_COLLECTSTATIC."""
    manage = os.path.join(build_dir, "manage.py")
    if not os.path.isfile(manage):
        return
    python = os.path.join(venv, "bin", "python")
    has_django = subprocess.run(
        [python, "-c", "import django"], env=env, cwd=build_dir, capture_output=True
    )
    if has_django.returncode != 0:
        return
    if env.get("DISABLE_COLLECTSTATIC", "0") not in ("", "0"):
        log.topic("Skipping Django collectstatic since the env var DISABLE_COLLECTSTATIC is set.")
        return
    log.topic("$ python manage.py collectstatic --noinput")
    try:
        run([python, "manage.py", "collectstatic", "--noinput"], env, build_dir, _Quiet(log))
    except SystemExit:
        log.die(
            "Error: Unable to generate Django static files.\n\n"
            "The 'python manage.py collectstatic --noinput' Django management command to\n"
            "generate static files failed (see the traceback above).\n\n"
            "You may need to update application code to resolve this error.\n"
            "Or, you can disable collectstatic for this application:\n\n"
            "   $ heroku config:set DISABLE_COLLECTSTATIC=1\n\n"
            "https://devcenter.heroku.com/articles/django-assets"
        )


class _Quiet:
    """Passes output through but leaves the failure message to the caller."""

    def __init__(self, log: _Log) -> None:
        self.log = log

    def topic(self, message: str) -> None:
        self.log.topic(message)

    def detail(self, message: str) -> None:
        self.log.detail(message)

    def warn(self, message: str) -> None:
        self.log.warn(message)

    def die(self, message: str) -> None:
        raise SystemExit(1)
