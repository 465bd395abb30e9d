"""heroku/python as Heroku documents it, pushed with git to a running platform: the Python
version rules, each package manager, the build cache, bin/post_compile and Django's
collectstatic. Apps are tiny (six, or Django for collectstatic) so each push stays quick."""

from __future__ import annotations

import pytest
from buildpack_apps import app_files, push_new, py_web, repush
from e2e_support import Deployer
from support import RunningPlatform

WEB = {"Procfile": "web: python web.py\n"}


def test_pip_version_file_post_compile_and_cache(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    files = {
        **WEB,
        ".python-version": "# the app's Python\n3.12\n",
        "requirements.txt": "six==1.16.0\n",
        "bin/post_compile": "#!/usr/bin/env bash\necho post-compile says $GREETING\n"
        "echo $GREETING > greeting.txt\n",
        "web.py": py_web("pip", ("six",), ("greeting.txt",)),
    }
    app, repo, out, rc = push_new(platform, deploy, "pip", files, {"GREETING": "hi"})
    assert rc == 0, out[-3000:]
    assert "-----> Using Python 3.12 specified in .python-version" in out
    assert "-----> Installing Python 3.12." in out
    assert "-----> Installing dependencies using 'pip install -r requirements.txt'" in out
    assert "-----> Running post-compile hook" in out and "post-compile says hi" in out
    assert "Restoring cache" not in out
    deploy.wait_serving(app, "pip six=1.16.0 greeting.txt=hi")
    # Second push: the cached virtualenv comes back and pip finds six already there.
    (repo / "web.py").write_text(py_web("again", ("six",)))
    out, rc = repush(deploy, repo, app, "code change")
    assert rc == 0, out[-3000:]
    assert "-----> Restoring cache" in out
    assert "Requirement already satisfied: six==1.16.0" in out
    deploy.wait_serving(app, "again six=1.16.0")
    # A different Python version discards the cache, saying why.
    (repo / ".python-version").write_text("3.11\n")
    out, rc = repush(deploy, repo, app, "python 3.11")
    assert rc == 0, out[-3000:]
    assert "-----> Discarding cache since:" in out
    assert "- The Python version has changed from 3.12." in out and "to 3.11." in out
    assert "Successfully installed six-1.16.0" in out


def test_runtime_txt_is_deprecated_then_the_version_sticks(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    files = {**WEB, "runtime.txt": "python-3.11\n", "requirements.txt": "",
             "web.py": py_web("rt")}  # fmt: skip
    app, repo, out, rc = push_new(platform, deploy, "rt", files)
    assert rc == 0, out[-3000:]
    assert "-----> Using Python 3.11 specified in runtime.txt" in out
    assert "Warning: The runtime.txt file is deprecated." in out
    deploy.wait_serving(app, "rt")
    # Without any version file the previous build's version is kept (Heroku's sticky version).
    (repo / "runtime.txt").unlink()
    out, rc = repush(deploy, repo, app, "no version file")
    assert rc == 0, out[-3000:]
    assert "Using the same version as the last build: Python 3.11." in out


@pytest.mark.parametrize(
    "files,expected",
    [
        ({".python-version": "3.8\n"}, ["The requested Python version has reached end-of-life.",
                                        "Python 3.8 has reached its upstream end-of-life"]),
        ({".python-version": "3.14\n"}, ["Error: Python 3.14 isn't available on this platform.",
                                         "installed on the platform, which are: 3.9."]),
        ({".python-version": "3.99\n"}, ["The requested Python version 3.99 isn't recognised."]),
        ({".python-version": "python-3.12\n"}, ["Invalid Python version in .python-version.",
                                                "python-3.12"]),
        ({".python-version": "3.12\n3.13\n"}, ["Multiple Python versions were found"]),
        ({"runtime.txt": "3.12\n"}, ["Invalid Python version in runtime.txt."]),
        ({"Pipfile": "[packages]\n"}, ["Error: No 'Pipfile.lock' found!"]),
        ({"setup.py": ""}, ["Couldn't find any supported Python package manager files."]),
    ],
    ids=["eol", "not-installed", "unknown", "prefix", "two", "runtime-format", "no-lock",
         "setup-py"],
)  # fmt: skip
def test_bad_python_setups_fail_the_push(
    platform: RunningPlatform, deploy: Deployer, files: dict[str, str], expected: list[str]
) -> None:
    base = {"requirements.txt": ""} if "Pipfile" not in files and "setup.py" not in files else {}
    _app, _repo, out, rc = push_new(platform, deploy, "bad", {**base, **files})
    assert rc != 0
    assert "[remote rejected]" in out
    for text in expected:
        assert text in out, out[-3000:]


def test_pipenv_from_pipfile_lock(platform: RunningPlatform, deploy: Deployer) -> None:
    files = {**app_files("pipenv"), **WEB, "web.py": py_web("pipenv", ("six",))}
    app, _repo, out, rc = push_new(platform, deploy, "pipenv", files)
    assert rc == 0, out[-3000:]
    assert "-----> Using Python 3.12 specified in Pipfile.lock" in out
    assert "-----> Installing Pipenv" in out
    assert "-----> Installing dependencies using 'pipenv install --deploy'" in out
    deploy.wait_serving(app, "pipenv six=1.16.0")


def test_poetry_from_poetry_lock(platform: RunningPlatform, deploy: Deployer) -> None:
    files = {**app_files("poetry"), **WEB, "web.py": py_web("poetry", ("six",))}
    app, _repo, out, rc = push_new(platform, deploy, "poetry", files)
    assert rc == 0, out[-3000:]
    assert "-----> Installing Poetry" in out
    assert "-----> Installing dependencies using 'poetry sync --only main'" in out
    deploy.wait_serving(app, "poetry six=1.16.0")


def test_uv_needs_a_version_file_then_syncs_the_lock(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    files = {**app_files("uv"), **WEB, "web.py": py_web("uv", ("six",))}
    version = files.pop(".python-version")
    app, repo, out, rc = push_new(platform, deploy, "uv", files)
    assert rc != 0
    assert "When using the package manager uv, you must specify your app's Python version" in out
    (repo / ".python-version").write_text(version)
    out, rc = repush(deploy, repo, app, "pin python")
    assert rc == 0, out[-3000:]
    assert "-----> Installing dependencies using 'uv sync --locked --no-default-groups'" in out
    deploy.wait_serving(app, "uv six=1.16.0")


def test_multiple_package_managers_warn_and_use_the_first(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    files = {**WEB, "requirements.txt": "six==1.16.0\n", "poetry.lock": "# stale\n",
             "web.py": py_web("multi", ("six",))}  # fmt: skip
    app, _repo, out, rc = push_new(platform, deploy, "multi", files)
    assert rc == 0, out[-3000:]
    assert "Warning: Multiple Python package manager files were found:" in out
    assert "- requirements.txt" in out and "- poetry.lock" in out
    assert "Installing dependencies using 'pip install -r requirements.txt'" in out
    deploy.wait_serving(app, "multi six=1.16.0")


def test_django_collectstatic_runs_unless_disabled(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    files = {**app_files("django"), **WEB,
             "web.py": py_web("django", ("django",), ("staticfiles/site.css",))}  # fmt: skip
    app, repo, out, rc = push_new(platform, deploy, "dj", files)
    assert rc == 0, out[-3000:]
    assert "-----> $ python manage.py collectstatic --noinput" in out
    assert "1 static file copied" in out
    deploy.wait_serving(app, "staticfiles/site.css=body { color: green; }")
    platform.client().patch(f"/apps/{app}/config-vars", json={"DISABLE_COLLECTSTATIC": "1"})
    out, rc = repush(deploy, repo, app, "again")
    assert rc == 0, out[-3000:]
    assert "Skipping Django collectstatic since the env var DISABLE_COLLECTSTATIC is set." in out
    assert "collectstatic --noinput" not in out
    deploy.wait_serving(app, "staticfiles/site.css=none")
