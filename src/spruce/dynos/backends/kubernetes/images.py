"""Where a release's image comes from: the seam between the backend and the image builder.

The Fir builder pushes an OCI image per release to the platform's registry; RegistryImages
names it, with the pull Secret the nodes need for that registry and the host paths the
image's base expects (Spruce's base image binds the host's system dirs, see
spruce.compile.cnb.base). HostSlugImages mounts a release's slug directory from the host
into a small local image (tests, and Cedar slugs on nodes that share this host's files).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from spruce.dynos.model import AppRuntime

PULL_SECRET = "spruce-registry"
"""The dockerconfigjson Secret that lets the nodes pull from the platform's registry."""
PROCESS_DIR = "/cnb/process"
LIFECYCLE_DIR = "/cnb/lifecycle"
WORKSPACE = "/workspace"


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
    pull_secrets: tuple[str, ...] = ()
    cnb: bool = False
    """A CNB image: formation dynos and the release phase run `/cnb/process/<type>`."""

    def command(self, process_type: str, command: str, *, one_off: bool) -> str:
        """What the shell runs for a dyno: the image's process for a CNB image's formation
        dynos and release phase (as locally), else the command itself."""
        if self.cnb and (not one_off or process_type == "release"):
            return f"exec {PROCESS_DIR}/{process_type}"
        return command


class ImageSource(Protocol):
    def image_for(self, app: AppRuntime) -> ImageRef:
        """The image (and mounts) that runs this release's dynos."""

    def pull_secrets(self) -> list[dict[str, Any]]:
        """Secrets the pods need to pull these images (written into the namespace)."""


@dataclass(frozen=True)
class RegistryLogin:
    server: str
    """host:port, as image references name it."""
    username: str
    password: str

    def __repr__(self) -> str:  # keep the password out of logs
        return f"RegistryLogin(server={self.server!r}, username={self.username!r})"


def _host_volumes(paths: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for i, path in enumerate(paths):
        # Symlinked ones (/bin -> usr/bin) are in the base layer already.
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        name = f"host-{i}"
        volumes.append({"name": name, "hostPath": {"path": path, "type": "Directory"}})
        mounts.append({"name": name, "mountPath": path, "readOnly": True})
    return volumes, mounts


class RegistryImages:
    """Fir releases' images pulled from a registry by digest (`app.image.image`)."""

    def __init__(
        self,
        reference: Callable[[AppRuntime], str] | None = None,
        *,
        login: Callable[[], RegistryLogin | None] = lambda: None,
        host_paths: tuple[str, ...] = (),
        cnb: bool = True,
        logins: Callable[[], list[RegistryLogin]] | None = None,
    ) -> None:
        """`host_paths`: host dirs bound read-only (Spruce's base image expects the system
        dirs; only for nodes that are this host or have the same files). `logins`: every
        registry's login (the platform's and each region's), in one pull Secret."""
        self._reference = reference or _release_image
        self._logins = logins or (lambda: [x] if (x := login()) is not None else [])
        self.cnb = cnb
        self._volumes, self._mounts = _host_volumes(host_paths)

    def image_for(self, app: AppRuntime) -> ImageRef:
        env: dict[str, str] = {}
        if self.cnb:  # `heroku run launcher ...` and bash as locally (spruce.dynos.images)
            env = {
                "PATH": f"{PROCESS_DIR}:/usr/local/bin:/usr/bin:/bin:{LIFECYCLE_DIR}",
                "HOME": WORKSPACE,
            }
        return ImageRef(
            self._reference(app),
            pull_policy="IfNotPresent",
            volumes=tuple(self._volumes),
            mounts=tuple(self._mounts),
            shell=("/bin/bash", "-c") if self.cnb else ("/bin/sh", "-c"),
            env=env,
            pull_secrets=(PULL_SECRET,) if self._logins() else (),
            cnb=self.cnb,
        )

    def pull_secrets(self) -> list[dict[str, Any]]:
        logins = self._logins()
        if not logins:
            return []
        config = {
            "auths": {
                x.server: {"auth": base64.b64encode(f"{x.username}:{x.password}".encode()).decode()}
                for x in logins
            }
        }
        return [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": PULL_SECRET,
                    "labels": {"app.kubernetes.io/managed-by": "spruce"},
                },
                "type": "kubernetes.io/dockerconfigjson",
                "data": {
                    ".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()
                },
            }
        ]


def _release_image(app: AppRuntime) -> str:
    if app.image is None:
        raise ValueError(f"release {app.release_id} of app {app.app_name} has no image")
    return app.image.image


class HostSlugImages:
    """A local image (imported into containerd, never pulled) with the release's slug mounted
    read-only at /app from the host, and optionally the host's /usr (for interpreters), as
    the local sandbox shows them. Only for clusters whose nodes share this host's files."""

    def __init__(self, image: str, host_usr: bool = False) -> None:
        self.image = image
        self.host_usr = host_usr

    def pull_secrets(self) -> list[dict[str, Any]]:
        return []

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
