"""The stack's base (run) image: one small layer, with the host's system dirs bound at run time.

Spruce cannot pull `heroku/heroku:24-cnb` (no Docker Hub here), and a debootstrapped root per
platform would cost minutes and hundreds of MB while the runtimes its buildpacks use (pyenv
interpreters, Debian's node, a .NET SDK) live on the host anyway. So, as Cedar dynos do, the
base image holds only the directory skeleton, and whoever runs the image binds the host paths
listed in its `io.buildpacks.base.metadata` label read-only (docs/fir-builds.md).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from spruce.compile.oci import MEDIA_LAYER_GZIP, Descriptor, ImageConfig, LayerBlob, LayerWriter

from .sandbox import HOST_PATHS, interpreter_roots

CNB_UID = 1000
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


def oci_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


@dataclass(frozen=True)
class BaseImage:
    name: str  # e.g. spruce/base:debian-12 (the oci-image's base_image_name)
    layer: LayerBlob
    config: ImageConfig
    host_paths: tuple[str, ...]

    @property
    def reference(self) -> str:
        """The run image's identity in lifecycle metadata: its top layer (no registry copy)."""
        return self.layer.diff_id

    def descriptor(self) -> Descriptor:
        return Descriptor(MEDIA_LAYER_GZIP, self.layer.digest, self.layer.size)


def build_base_image(blobs: Path, extra_host_paths: tuple[str, ...] | None = None) -> BaseImage:
    """The base image for this host (deterministic: same host, same digest)."""
    release = os_release()
    distro, version = release.get("ID", "linux"), release.get("VERSION_ID", "")
    host_paths = HOST_PATHS + (
        interpreter_roots() if extra_host_paths is None else extra_host_paths
    )
    writer = LayerWriter(blobs)
    for directory in ("cnb", "cnb/process", "cnb/lifecycle", "proc", "dev", "sys", "run"):
        writer.add_dir(directory)
    writer.add_dir("tmp", mode=0o1777)
    writer.add_dir("layers", owner=(CNB_UID, CNB_UID))
    writer.add_dir("home", mode=0o755)
    writer.add_dir("home/cnb", owner=(CNB_UID, CNB_UID))
    for path in host_paths:  # mount points for the read-only binds (a bound root is read-only)
        if os.path.islink(path):
            writer.add_symlink(path, os.readlink(path))
        elif os.path.isdir(path):
            writer.add_dir(path)
    layer = writer.finish()
    metadata = {"host_paths": list(host_paths), "user": {"uid": CNB_UID, "gid": CNB_UID}}
    labels = {
        "io.buildpacks.base.id": f"io.spruce.{distro}-{version}".rstrip("-"),
        "io.buildpacks.base.distro.name": distro,
        "io.buildpacks.base.distro.version": version,
        "io.buildpacks.base.description": (
            "Spruce's base image: a directory skeleton; the host's system directories listed "
            "in io.buildpacks.base.metadata are bound read-only at run time"
        ),
        "io.buildpacks.base.maintainer": "Spruce",
        "io.buildpacks.base.metadata": json.dumps(metadata, sort_keys=True),
    }
    config = ImageConfig(
        architecture=oci_arch(),
        os="linux",
        env=[f"PATH={BASE_PATH}", "HOME=/home/cnb", "LANG=C.UTF-8"],
        user=f"{CNB_UID}:{CNB_UID}",
        labels=labels,
        diff_ids=[layer.diff_id],
    )
    return BaseImage(f"spruce/base:{distro}-{version}".rstrip("-"), layer, config, host_paths)
