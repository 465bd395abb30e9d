"""Running a process of an unpacked Fir image (for the local dyno backend).

The image root is bound read-only at `/`, the host paths its base image names (see base.py)
over it read-only, and the process starts through the image's launcher with CNB semantics:
`/cnb/process/<type> [args]` for a process type, `/cnb/lifecycle/launcher <cmd>` for
`heroku run` / `run:inside`. The dyno manager adds its own pieces (uid, cgroup, hostname,
log pipes) around the argv this module returns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from spruce.compile.oci.unpack import UnpackedImage

from .launcher import PROCESS_DIR
from .sandbox import APP_DIR

LAUNCHER = "/cnb/lifecycle/launcher"


@dataclass(frozen=True)
class ImageLaunch:
    argv: list[str]  # bwrap ... -- <launcher argv>
    env: dict[str, str]  # the process's environment (image Env, then the dyno's)


def host_paths(image: UnpackedImage) -> tuple[str, ...]:
    """Host directories the image expects read-only (io.buildpacks.base.metadata)."""
    raw = image.config.labels.get("io.buildpacks.base.metadata", "")
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return ()
    paths = data.get("host_paths", []) if isinstance(data, dict) else []
    return tuple(str(p) for p in paths if isinstance(p, str) and p.startswith("/"))


def launcher_argv(
    image: UnpackedImage, process_type: str | None = None, command: Sequence[str] = ()
) -> list[str]:
    """What runs inside: a process type (its default args unless `command` replaces them),
    `launcher <command>` when no type is given, else the image's entrypoint."""
    if process_type is not None:
        if not (image.rootfs / PROCESS_DIR.lstrip("/") / process_type).is_symlink():
            raise KeyError(f"the image has no process type {process_type!r}")
        return [f"{PROCESS_DIR}/{process_type}", *command]
    if command:
        return [LAUNCHER, *command]
    return list(image.config.entrypoint or [LAUNCHER])


def image_env(image: UnpackedImage, dyno_env: Mapping[str, str]) -> dict[str, str]:
    """The image's Env, then what the platform sets (PORT, DYNO, config vars) on top."""
    env = image.config.env_map()
    for name, value in dyno_env.items():
        if name in ("CNB_LAYERS_DIR", "CNB_APP_DIR"):
            continue  # the launcher needs the image's own
        env[name] = value
    return env


def sandbox_argv(
    image: UnpackedImage,
    inner: Sequence[str],
    *,
    bwrap: str = "bwrap",
    workspace: Path | None = None,
    uid: int | None = None,
    hostname: str = "dyno",
    extra_ro: Sequence[str] = (),
    tmp: Path | None = None,
    tmp_bytes: int = 64 << 20,
    shm_bytes: int = 64 << 20,
    hosts: Path | None = None,
) -> list[str]:
    """bwrap command line running `inner` in the image root (read-only).

    `workspace` (a writable copy of the image's /workspace) gives the dyno Heroku's ephemeral
    writable app dir; without it the app dir is read-only too. `/tmp` is `tmp` (a directory
    of the dyno's disk) or a tmpfs of `tmp_bytes`, mode 1777 either way; `hosts` replaces the
    image's /etc/hosts (so that localhost resolves).
    """
    args = [
        bwrap,
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        hostname[:63],
        "--ro-bind",
        str(image.rootfs),
        "/",
        # Before the host paths: one of them may live under /tmp.
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *("--perms", "1777", "--size", str(shm_bytes), "--tmpfs", "/dev/shm"),
    ]
    if tmp is not None:
        args += ["--bind", str(tmp), "/tmp"]
    else:
        args += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    bound = []
    for path in (*host_paths(image), *extra_ro):
        # Symlinked ones (/bin -> usr/bin) are in the base layer already.
        if os.path.isdir(path) and not os.path.islink(path):
            args += ["--ro-bind", path, path]
            bound.append(path)
    # After the host paths (one may be /etc). A read-only root takes no new mount point:
    # only an existing /etc/hosts (the image's, or the host's bound /etc's) is replaced.
    if hosts is not None and (
        (image.rootfs / "etc" / "hosts").is_file()
        or ("/etc" in bound and os.path.isfile("/etc/hosts"))
    ):
        args += ["--ro-bind", str(hosts), "/etc/hosts"]
    if workspace is not None:
        args += ["--bind", str(workspace), APP_DIR]
    args += ["--chdir", image.config.working_dir or APP_DIR]
    if uid is not None:
        args += ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        args += ["--no-new-privs"]
    return [*args, "--", *inner]


def prepare_launch(
    image: UnpackedImage,
    dyno_env: Mapping[str, str],
    *,
    process_type: str | None = None,
    command: Sequence[str] = (),
    workspace: Path | None = None,
    uid: int | None = None,
    hostname: str = "dyno",
) -> ImageLaunch:
    """Everything needed to start one dyno process from an unpacked image."""
    inner = launcher_argv(image, process_type, command)
    argv = sandbox_argv(image, inner, workspace=workspace, uid=uid, hostname=hostname)
    return ImageLaunch(argv, image_env(image, dyno_env))
