"""Heroku's Python version rules (buildpacks/shared/python_versions.py) over a made-up set of
installed interpreters: where the version comes from, and what is refused with which message."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from spruce.compile.buildpacks import BUILTIN_DIR

sys.path.insert(0, str(BUILTIN_DIR / "shared"))
import python_versions as versions  # noqa: E402

INSTALLED = {(3, 8, 18): "/py38", (3, 11, 7): "/py311", (3, 12, 1): "/py312", (3, 13, 0): "/py313"}


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def topic(self, message: str) -> None:
        self.lines.append("TOPIC " + message)

    def detail(self, message: str) -> None:
        self.lines.append(message)

    def warn(self, message: str) -> None:
        self.lines.append("WARN " + message)

    def die(self, message: str) -> None:
        self.lines.append("DIE " + message)
        raise SystemExit(1)


def choose(app: Path, manager: str | None = None, cached: str | None = None) -> tuple[object, Log]:
    log = Log()
    wanted, origin = versions.requested(str(app), manager, cached, "3.13", log)
    return versions.resolve(wanted, origin, INSTALLED, log), log


def test_precedence_runtime_txt_then_version_file_then_pipfile_lock_then_cached(
    tmp_path: Path,
) -> None:
    (tmp_path / "Pipfile.lock").write_text('{"_meta": {"requires": {"python_version": "3.11"}}}')
    assert choose(tmp_path, "pipenv")[0] == (3, 11, 7)
    assert choose(tmp_path, "pip")[0] == (3, 13, 0)  # Pipfile.lock counts for Pipenv apps only
    assert choose(tmp_path, "pip", cached="3.12.1")[0] == (3, 12, 1)
    (tmp_path / ".python-version").write_text("# pinned\n\n 3.12 \n")
    version, log = choose(tmp_path, "pipenv")
    assert (
        version == (3, 12, 1)
        and "TOPIC Using Python 3.12 specified in .python-version" in log.lines
    )
    (tmp_path / "runtime.txt").write_text("python-3.11.7\n")
    version, log = choose(tmp_path)
    assert version == (3, 11, 7)
    assert any(line.startswith("WARN The runtime.txt file is deprecated.") for line in log.lines)


def test_default_is_the_newest_supported_installed(tmp_path: Path) -> None:
    version, log = choose(tmp_path)
    assert version == (3, 13, 0)
    assert (
        "TOPIC No Python version was specified. Using the buildpack default: Python 3.13"
        in log.lines
    )


def test_a_patch_release_not_installed_uses_the_installed_one_with_a_warning(
    tmp_path: Path,
) -> None:
    (tmp_path / ".python-version").write_text("3.12.9\n")
    version, log = choose(tmp_path)
    assert version == (3, 12, 1)
    assert ("WARN Python 3.12.9 is not installed on this platform; using Python 3.12.1, the "
            "installed release of Python 3.12.") in log.lines  # fmt: skip


@pytest.mark.parametrize(
    "text,expected",
    [
        ("3.8", "Python 3.8 has reached its upstream end-of-life"),
        ("3.10", "Python 3.10 isn't available on this platform"),
        ("3.15", "The requested Python version 3.15 isn't recognised."),
        ("3.12.x", "isn't in the correct format"),
        ("", "No Python version was found in the '.python-version' file."),
    ],
)
def test_refused_versions(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / ".python-version").write_text(text + "\n")
    log = Log()
    with pytest.raises(SystemExit):
        wanted, origin = versions.requested(str(tmp_path), None, None, "3.13", log)
        versions.resolve(wanted, origin, INSTALLED, log)
    assert expected in log.lines[-1], log.lines
