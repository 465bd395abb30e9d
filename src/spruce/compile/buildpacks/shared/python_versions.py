# ruff: noqa: UP031  (%-formatted messages, like the rest of the Python buildpack)
"""Heroku's Python version rules (python3 stdlib only), shared by the classic heroku/python
buildpack and the heroku/python CNB.

Where the version comes from, in Heroku's order of precedence:
  1. runtime.txt (`python-3.12` or `python-3.12.1`; deprecated, with a warning),
  2. .python-version (`3.12` or `3.12.1`; blank lines and `#` comment lines are ignored),
  3. Pipfile.lock (`_meta.requires.python_full_version`, then `python_version`), Pipenv apps only,
  4. the version the previous build used (the classic buildpack's "sticky" version),
  5. the default: the newest supported Python installed on this platform.

Heroku's support window applies: Python older than 3.9 has reached its upstream end of life
and fails the build, as on Heroku; a version newer than the newest known release is not
recognised. Spruce cannot download Python, so a supported version must also be installed on
the platform (pyenv, /opt/python or the system's python3.x): a major version (`3.12`) uses the
installed release of it, an exact patch release that is not installed is served by the
installed release of the same major version with a warning, and a major version that is not
installed fails the build listing those that are.
"""

from __future__ import annotations

import json
import os
import re
from typing import Protocol

OLDEST_SUPPORTED = (3, 9)
NEWEST_KNOWN = (3, 14)
_VERSION = r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?"
DOCS = "https://devcenter.heroku.com/articles/python-support#supported-runtimes"


class _Log(Protocol):
    def topic(self, message: str) -> None: ...
    def detail(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def die(self, message: str) -> None: ...


def fmt(version: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in version)


def _parse(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def parse_runtime_txt(contents: str, default: str, log: _Log) -> tuple[int, ...]:
    match = re.fullmatch(r"\s*python-(" + _VERSION + r")\s*", contents)
    if not match:
        log.die(
            "Error: Invalid Python version in runtime.txt.\n\n"
            "The Python version specified in 'runtime.txt' isn't in the correct format.\n"
            "The following file contents were found:\n%s\n\n"
            "However, the version must be specified as either:\n"
            "1. 'python-<major>.<minor>' (recommended, for automatic patch updates)\n"
            "2. 'python-<major>.<minor>.<patch>' (to pin to an exact patch version)\n\n"
            "For example, to request the latest version of Python %s, update the\n"
            "'runtime.txt' file so it contains:\npython-%s" % (contents.strip(), default, default)
        )
        raise SystemExit(1)
    return _parse(match.group(1))


def parse_python_version_file(contents: str, default: str, log: _Log) -> tuple[int, ...]:
    lines = [ln for ln in contents.splitlines() if not re.fullmatch(r"\s*(#.*)?", ln)]
    if not lines:
        log.die(
            "Error: Invalid Python version in .python-version.\n\n"
            "No Python version was found in the '.python-version' file.\n"
            "Update the file so that it contains a valid Python version such as '%s'.\n\n"
            "If the file already contains a version, check the line doesn't begin with a\n"
            "'#', otherwise it will be treated as a comment." % default
        )
    if len(lines) > 1:
        log.die(
            "Error: Invalid Python version in .python-version.\n\n"
            "Multiple Python versions were found in the '.python-version' file:\n%s\n\n"
            "Update the file so it contains only one Python version.\n"
            "If the additional versions are actually comments, prefix those lines with '#'."
            % "\n".join(ln.strip() for ln in lines)
        )
    match = re.fullmatch(r"\s*(" + _VERSION + r")\s*", lines[0])
    if not match:
        log.die(
            "Error: Invalid Python version in .python-version.\n\n"
            "The Python version specified in '.python-version' isn't in the correct format.\n"
            "The following version was found:\n%s\n\n"
            "However, the version must be specified as either:\n"
            "1. '<major>.<minor>' (recommended, for automatic patch updates)\n"
            "2. '<major>.<minor>.<patch>' (to pin to an exact patch version)\n\n"
            "Don't include quotes or a 'python-' prefix. To include comments, add them on\n"
            "their own line, prefixed with '#'.\n\n"
            "For example, to request the latest version of Python %s, update the\n"
            "'.python-version' file so it contains:\n%s" % (lines[0].strip(), default, default)
        )
        raise SystemExit(1)
    return _parse(match.group(1))


def pipfile_lock_version(app_dir: str, log: _Log) -> tuple[int, ...] | None:
    path = os.path.join(app_dir, "Pipfile.lock")
    if not os.path.isfile(path):
        return None
    try:
        data = json.loads(_read(path))
        requires = data.get("_meta", {}).get("requires", {})
        value = requires.get("python_full_version") or requires.get("python_version")
    except (ValueError, AttributeError) as exc:
        log.die(
            "Error: Can't parse Pipfile.lock.\n\n"
            "A Pipfile.lock file was found, however, it couldn't be parsed:\n%s\n\n"
            "Run 'pipenv lock' to regenerate/fix the lockfile." % exc
        )
        raise SystemExit(1) from exc
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(_VERSION, value):
        log.die(
            "Error: Invalid Python version in Pipfile / Pipfile.lock.\n\n"
            "The 'python_version' or 'python_full_version' field isn't valid: %r\n"
            "Update your 'Pipfile' and run 'pipenv lock' to regenerate the lockfile." % value
        )
    return _parse(value)


def requested(
    app_dir: str, package_manager: str | None, cached: str | None, default: str, log: _Log
) -> tuple[tuple[int, ...] | None, str]:
    """(requested version or None for the default, origin) by Heroku's precedence."""
    runtime_txt = os.path.join(app_dir, "runtime.txt")
    if os.path.isfile(runtime_txt):
        return parse_runtime_txt(_read(runtime_txt), default, log), "runtime.txt"
    version_file = os.path.join(app_dir, ".python-version")
    if os.path.isfile(version_file):
        return parse_python_version_file(_read(version_file), default, log), ".python-version"
    if package_manager == "pipenv":
        from_lock = pipfile_lock_version(app_dir, log)
        if from_lock is not None:
            return from_lock, "Pipfile.lock"
    if cached and re.fullmatch(_VERSION, cached):
        return _parse(cached), "cached"
    return None, "default"


def check_supported(version: tuple[int, ...], origin: str, default: str, log: _Log) -> None:
    major_minor = version[:2]
    if major_minor < OLDEST_SUPPORTED:
        where = (
            "Your app doesn't specify a Python version and the last build used %s." % fmt(version)
            if origin == "cached"
            else "Please upgrade to a newer Python version by updating the version configured"
            " via the '%s' file." % origin
        )
        log.die(
            "Error: The requested Python version has reached end-of-life.\n\n"
            "Python %s has reached its upstream end-of-life, and is therefore no longer\n"
            "receiving security updates: https://devguide.python.org/versions/#supported-versions\n\n"
            "As such, it is no longer supported by this buildpack.\n\n%s\n\n"
            "For a list of the supported Python versions, see:\n%s"
            % (fmt(major_minor), where, DOCS)
        )
    if major_minor > NEWEST_KNOWN:
        log.die(
            "Error: The requested Python version isn't recognised.\n\n"
            "The requested Python version %s isn't recognised.\n\n"
            "Check that this Python version has been officially released:\n"
            "https://devguide.python.org/versions/#supported-versions\n\n"
            "Otherwise, switch to a supported version (such as Python %s) by updating the\n"
            "version configured via the '%s' file." % (fmt(major_minor), default, origin)
        )


def resolve(
    wanted: tuple[int, ...] | None,
    origin: str,
    installed: dict[tuple[int, ...], str],
    log: _Log,
) -> tuple[int, int, int]:
    """The installed (major, minor, patch) that serves the request, or a build failure."""
    supported = {v: p for v, p in installed.items() if OLDEST_SUPPORTED <= v[:2] <= NEWEST_KNOWN}
    if not supported:
        log.die(
            "No supported Python 3 interpreter is installed on this platform "
            "(Python %s to %s are supported)." % (fmt(OLDEST_SUPPORTED), fmt(NEWEST_KNOWN))
        )
    default = fmt(max(supported)[:2])
    listing = ", ".join(fmt(v) for v in sorted(supported))
    if wanted is None:
        best = max(supported)
        log.topic("No Python version was specified. Using the buildpack default: Python %s"
                  % default)  # fmt: skip
        log.detail("To use a different version, see: " + DOCS)
        return (best[0], best[1], best[2])
    check_supported(wanted, origin, default, log)
    same_minor = sorted(v for v in supported if v[:2] == wanted[:2])
    if not same_minor:
        log.die(
            "Error: Python %s isn't available on this platform.\n\n"
            "The '%s' file requests Python %s, but Spruce can only use the Python versions\n"
            "installed on the platform, which are: %s.\n\n"
            "Update the version in '%s' to one of those, or ask the platform's operator to\n"
            "install Python %s." % (fmt(wanted), origin, fmt(wanted), listing, origin,
                                    fmt(wanted[:2]))
        )  # fmt: skip
    best = same_minor[-1]
    if origin == "cached":
        log.topic("No Python version was specified. Using the same version as the last "
                  "build: Python %s" % fmt(best))  # fmt: skip
    else:
        log.topic("Using Python %s specified in %s" % (fmt(wanted), origin))
    if len(wanted) == 3 and wanted not in supported:
        log.warn(
            "Python %s is not installed on this platform; using Python %s, the installed"
            " release of Python %s." % (fmt(wanted), fmt(best), fmt(wanted[:2]))
        )
    elif len(wanted) == 3:
        best = wanted
    if origin == "runtime.txt":
        log.warn(
            "The runtime.txt file is deprecated.\n"
            "Delete it and create a file named '.python-version' in the root of your app\n"
            "containing the major Python version, such as: %s" % fmt(best[:2])
        )
    if best[:2] == OLDEST_SUPPORTED:
        log.warn(
            "Python %s has reached its upstream end-of-life and no longer receives security\n"
            "updates; support for it will be removed. Upgrade to a newer Python version."
            % fmt(best[:2])
        )
    return (best[0], best[1], best[2])
