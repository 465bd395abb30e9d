"""Where a release's image comes from: the seam between the backend and the image builder.

The Fir builder pushes an OCI image per release to a registry; the backend then only needs
its reference (RegistryImages). Until then, and in tests, a release's slug directory on the
host is mounted read-only into a small local image (HostSlugImages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from spruce.dynos.model import AppRuntime


@dataclass(frozen=True)
class ImageRef:
    image: str
    pull_policy: str = "IfNotPresent"
    volumes: tuple[dict[str, Any], ...] = ()
    mounts: tuple[dict[str, Any], ...] = ()
    working_dir: str | None = None
    shell: tuple[str, ...] = ("/bin/sh", "-c")
    """How a Procfile command is run (Heroku runs them through a shell)."""
    env: dict[str, str] = field(default_factory=dict)


class ImageSource(Protocol):
    def image_for(self, app: AppRuntime) -> ImageRef:
        """The image (and mounts) that runs this release's dynos."""


class RegistryImages:
    """Images pulled from a registry; `reference(app)` names the release's image."""

    def __init__(self, reference: Callable[[AppRuntime], str]) -> None:
        self._reference = reference

    def image_for(self, app: AppRuntime) -> ImageRef:
        return ImageRef(self._reference(app), pull_policy="IfNotPresent")


class HostSlugImages:
    """A local image (imported into containerd, never pulled) with the release's slug mounted
    read-only at /app from the host, and optionally the host's /usr (for interpreters), as
    the local sandbox shows them. Only for clusters whose nodes share this host's files."""

    def __init__(self, image: str, host_usr: bool = False) -> None:
        self.image = image
        self.host_usr = host_usr

    def image_for(self, app: AppRuntime) -> ImageRef:
        if app.slug is None:
            raise ValueError("HostSlugImages needs a release with a slug (an unpacked directory)")
        volumes: list[dict[str, Any]] = [
            {"name": "slug", "hostPath": {"path": str(app.slug.path), "type": "Directory"}}
        ]
        mounts: list[dict[str, Any]] = [{"name": "slug", "mountPath": "/app", "readOnly": True}]
        if self.host_usr:
            volumes.append({"name": "usr", "hostPath": {"path": "/usr", "type": "Directory"}})
            mounts.append({"name": "usr", "mountPath": "/usr", "readOnly": True})
        return ImageRef(
            self.image,
            pull_policy="Never",
            volumes=tuple(volumes),
            mounts=tuple(mounts),
            working_dir="/app",
            env={"HOME": "/app", "PATH": "/app/bin:/usr/local/bin:/usr/bin:/bin"},
        )
