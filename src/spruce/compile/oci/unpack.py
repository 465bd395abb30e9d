"""Pull an image by digest and unpack it into a root filesystem cached by that digest.

Layers are applied in order as the OCI layer spec says, whiteouts included (`.wh.<name>`
removes a lower entry, `.wh..wh..opq` empties a directory of lower entries). Paths are
checked: nothing may leave the root through `..`, an absolute name, or a symlink met on the
way. The unpacked root is meant to be bound read-only; the same digest is unpacked once.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .distribution import RegistryClient
from .image import ImageConfig, Manifest
from .reference import ImageRef

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class UnpackError(ValueError):
    """A layer that would escape the root or is not a tar."""


@dataclass(frozen=True)
class UnpackedImage:
    digest: str
    rootfs: Path
    config: ImageConfig


def _safe(rootfs: Path, name: str) -> Path:
    clean = name.lstrip("/")
    while clean.startswith("./"):
        clean = clean[2:]
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UnpackError(f"layer entry {name!r} leaves the root")
    current = rootfs
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise UnpackError(f"layer entry {name!r} goes through the symlink {part!r}")
    return current / parts[-1]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def apply_layer(blob: Path, rootfs: Path, keep_owner: bool) -> None:
    """Apply one (gzip'd) tar layer onto `rootfs`."""
    added: set[Path] = set()
    try:
        tar = tarfile.open(blob, mode="r:*")
    except tarfile.TarError as exc:
        raise UnpackError(f"{blob.name} is not a tar layer: {exc}") from None
    with tar:
        for member in tar:
            target = _safe(rootfs, member.name)
            base = target.name
            if base == OPAQUE:
                parent = target.parent
                if parent.is_dir():
                    for child in parent.iterdir():
                        if child not in added:
                            _remove(child)
                continue
            if base.startswith(WHITEOUT):
                _remove(target.with_name(base[len(WHITEOUT) :]))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if member.isdir():
                if target.exists() and not target.is_dir():
                    _remove(target)
                target.mkdir(exist_ok=True)
            elif member.issym():
                _remove(target)
                os.symlink(member.linkname, target)
            elif member.islnk():
                source = _safe(rootfs, member.linkname)
                _remove(target)
                os.link(source, target)
            elif member.isfile():
                _remove(target)
                extracted = tar.extractfile(member)
                assert extracted is not None
                with extracted, open(target, "wb") as out:
                    shutil.copyfileobj(extracted, out, 1 << 20)
            else:  # devices and fifos have no place in an app image
                continue
            added.add(target)
            if not member.issym():
                os.chmod(target, member.mode & 0o7777)
            if keep_owner and os.geteuid() == 0:
                os.lchown(target, member.uid, member.gid)
            if not member.issym():
                os.utime(target, (member.mtime, member.mtime))


async def pull_image(
    client: RegistryClient, ref: ImageRef, cache_root: Path, keep_owner: bool = True
) -> UnpackedImage:
    """The image `ref` (which must carry a digest) unpacked under `cache_root/<digest hex>`."""
    if not ref.digest:
        raise UnpackError(f"{ref}: pull by digest (registry/repo@sha256:...)")
    hexdigest = ref.digest.split(":", 1)[1]
    done = cache_root / hexdigest
    if (done / "config.json").exists():
        return UnpackedImage(
            ref.digest, done / "rootfs", ImageConfig.from_bytes((done / "config.json").read_bytes())
        )
    got = await client.get_manifest(ref.repository, ref.digest)
    if got is None:
        raise UnpackError(f"{ref}: no such image in the registry")
    manifest = Manifest.from_bytes(got[0], got[1])
    config_bytes = await client.get_blob(ref.repository, manifest.config.digest)
    config = ImageConfig.from_bytes(config_bytes)
    blobs = cache_root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    paths = []
    for layer in manifest.layers:
        path = blobs / layer.digest.replace(":", "-")
        if not path.exists():
            await client.download_blob(ref.repository, layer.digest, path)
        paths.append(path)
    staging = cache_root / f".{hexdigest}.tmp"
    await asyncio.to_thread(shutil.rmtree, staging, True)
    (staging / "rootfs").mkdir(parents=True)
    for path in paths:
        await asyncio.to_thread(apply_layer, path, staging / "rootfs", keep_owner)
    os.chmod(staging / "rootfs", 0o755)
    (staging / "config.json").write_bytes(config_bytes)
    (staging / "manifest.json").write_text(json.dumps({"digest": ref.digest}))
    try:
        os.rename(staging, done)
    except OSError:  # unpacked meanwhile by someone else
        await asyncio.to_thread(shutil.rmtree, staging, True)
    return UnpackedImage(ref.digest, done / "rootfs", config)
