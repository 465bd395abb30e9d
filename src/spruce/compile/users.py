"""The unprivileged `spruce-build` user that runs buildpack executables when Spruce is root."""

from __future__ import annotations

import pwd
import shutil
import subprocess

BUILD_USER = "spruce-build"


def ensure_build_user(name: str = BUILD_USER) -> tuple[int, int]:
    """Return (uid, gid) of `name`, creating it as a system user without login if needed."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", name],
            check=True, capture_output=True,
        )  # fmt: skip
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid
