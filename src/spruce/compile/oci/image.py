"""OCI image manifests and configs (image-spec v1), as canonical JSON.

JSON is written with sorted keys and no spaces, so equal content gives equal bytes and so equal
digests: a rebuild of the same source yields the same manifest digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
# Docker's v2 schema 2, which operator registries and older tools still hand out.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = (MEDIA_MANIFEST, DOCKER_MANIFEST)
LAYER_TYPES = (MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, DOCKER_LAYER_GZIP)

NORMALIZED_CREATED = "1980-01-01T00:00:01Z"


class ImageFormatError(ValueError):
    """A manifest or config that is not what the OCI image spec describes."""


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @classmethod
    def from_json(cls, data: Any) -> Descriptor:
        if not isinstance(data, dict):
            raise ImageFormatError("a descriptor must be an object")
        try:
            media, digest, size = data["mediaType"], data["digest"], data["size"]
        except KeyError as exc:
            raise ImageFormatError(f"descriptor without {exc.args[0]}") from None
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            raise ImageFormatError(f"unsupported digest {digest!r}")
        if not isinstance(size, int) or size < 0 or not isinstance(media, str):
            raise ImageFormatError("descriptor with a bad size or media type")
        return cls(media, digest, size)


@dataclass
class ImageConfig:
    """The parts of an OCI image config Spruce reads and writes."""

    architecture: str = "amd64"
    os: str = "linux"
    env: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    diff_ids: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    created: str = NORMALIZED_CREATED

    def to_json(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.env:
            config["Env"] = self.env
        if self.entrypoint:
            config["Entrypoint"] = self.entrypoint
        if self.cmd:
            config["Cmd"] = self.cmd
        if self.working_dir:
            config["WorkingDir"] = self.working_dir
        if self.user:
            config["User"] = self.user
        if self.labels:
            config["Labels"] = self.labels
        out: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "created": self.created,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
        }
        if self.history:
            out["history"] = self.history
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, raw: bytes) -> ImageConfig:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ImageFormatError(f"image config is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ImageFormatError("image config must be an object")
        rootfs = data.get("rootfs") or {}
        if rootfs.get("type") != "layers":
            raise ImageFormatError("image config rootfs.type must be 'layers'")
        config = data.get("config") or {}
        return cls(
            architecture=str(data.get("architecture", "")),
            os=str(data.get("os", "")),
            env=list(config.get("Env") or []),
            entrypoint=list(config.get("Entrypoint") or []),
            cmd=list(config.get("Cmd") or []),
            working_dir=str(config.get("WorkingDir") or ""),
            user=str(config.get("User") or ""),
            labels=dict(config.get("Labels") or {}),
            diff_ids=list(rootfs.get("diff_ids") or []),
            history=list(data.get("history") or []),
            created=str(data.get("created") or ""),
        )

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            name, _, value = item.partition("=")
            out[name] = value
        return out


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: tuple[tuple[str, str], ...] = ()
    media_type: str = MEDIA_MANIFEST

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            body["annotations"] = dict(self.annotations)
        return canonical_json(body)

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str | None = None) -> Manifest:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ImageFormatError(f"manifest is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("schemaVersion") != 2:
            raise ImageFormatError("manifest schemaVersion must be 2")
        kind = data.get("mediaType") or media_type or MEDIA_MANIFEST
        if kind in (MEDIA_INDEX, DOCKER_LIST):
            raise ImageFormatError("an image index, not an image manifest (give a digest)")
        if kind not in MANIFEST_TYPES:
            raise ImageFormatError(f"unsupported manifest media type {kind!r}")
        layers = tuple(Descriptor.from_json(d) for d in data.get("layers") or [])
        for layer in layers:
            if layer.media_type not in LAYER_TYPES:
                raise ImageFormatError(f"unsupported layer media type {layer.media_type!r}")
        annotations = tuple(sorted((data.get("annotations") or {}).items()))
        return cls(Descriptor.from_json(data.get("config")), layers, annotations, kind)
