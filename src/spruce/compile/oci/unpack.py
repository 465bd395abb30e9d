"""Pull an image by digest and unpack it into a root filesystem cached by that digest.

Layers are applied in order as the OCI layer spec says, whiteouts included (`.wh.<name>`
removes a lower entry, `.wh..wh..opq` empties a directory of lower entries). Paths are
checked: nothing may leave the root through `..`, an absolute name, or a symlink met on the
way. The unpacked root is meant to be bound read-only; the same digest is unpacked once.

Each layer is also extracted once, by its digest, into a tree of its own (whiteouts kept as
marker files); a root is then composed from those trees with hard links. A new image that
shares most layers with an earlier one (a rebuild that changed only the app) costs one small
extraction and a walk of links, not a decompression of every layer again.
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


def apply_layer(blob: Path, rootfs: Path, keep_owner: bool, literal: bool = False) -> None:
    """Apply one (gzip'd) tar layer onto `rootfs` (`literal`: extract whiteouts as marker
    files instead of applying them, for a layer's own tree)."""
    added: set[Path] = set()
    try:
        tar = tarfile.open(blob, mode="r:*")
    except tarfile.TarError as exc:
        raise UnpackError(f"{blob.name} is not a tar layer: {exc}") from None
    with tar:
        for member in tar:
            target = _safe(rootfs, member.name)
            base = target.name
            if literal and base.startswith(WHITEOUT):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
                continue
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


def extract_layer(blob: Path, layers_root: Path, digest: str, keep_owner: bool) -> Path:
    """The layer's own tree under `layers_root/<digest hex>` (extracted once)."""
    done = layers_root / digest.split(":", 1)[1]
    if done.is_dir():
        return done
    staging = layers_root / f".{done.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    apply_layer(blob, staging, keep_owner, literal=True)
    os.rename(staging, done)
    return done


def _copy_meta(source: Path, target: Path, keep_owner: bool) -> None:
    st = source.lstat()
    os.chmod(target, st.st_mode & 0o7777)
    if keep_owner and os.geteuid() == 0:
        os.lchown(target, st.st_uid, st.st_gid)


def merge_layer(layer: Path, rootfs: Path, keep_owner: bool) -> None:
    """Apply a layer's tree onto `rootfs`: files become hard links to the layer's (same
    inode: same mode, owner and content), directories and symlinks are made anew."""
    dirs: list[tuple[Path, Path]] = []
    for current, subdirs, files in os.walk(layer):
        rel = os.path.relpath(current, layer)
        names = sorted(subdirs + files)
        subdirs.sort()
        if OPAQUE in names:
            parent = _safe(rootfs, os.path.join(rel, OPAQUE)).parent
            if parent.is_dir():
                for child in parent.iterdir():
                    if child.name not in names:
                        _remove(child)
        for name in names:
            if name == OPAQUE:
                continue
            source = Path(current) / name
            target = _safe(rootfs, os.path.join(rel, name))
            if name.startswith(WHITEOUT):
                _remove(target.with_name(name[len(WHITEOUT) :]))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                _remove(target)
                os.symlink(os.readlink(source), target)
            elif source.is_dir():
                if target.exists() and (target.is_symlink() or not target.is_dir()):
                    _remove(target)
                target.mkdir(exist_ok=True)
                dirs.append((source, target))
            else:
                _remove(target)
                os.link(source, target)
    for source, target in reversed(dirs):  # after their children: keep the layer's mtimes
        _copy_meta(source, target, keep_owner)
        st = source.stat()
        os.utime(target, (st.st_mtime, st.st_mtime))


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
    layers_root = cache_root / "layers"
    for path, layer in zip(paths, manifest.layers, strict=True):
        tree = await asyncio.to_thread(extract_layer, path, layers_root, layer.digest, keep_owner)
        await asyncio.to_thread(merge_layer, tree, staging / "rootfs", keep_owner)
    os.chmod(staging / "rootfs", 0o755)
    (staging / "config.json").write_bytes(config_bytes)
    (staging / "manifest.json").write_text(json.dumps({"digest": ref.digest}))
    try:
        os.rename(staging, done)
    except OSError:  # unpacked meanwhile by someone else
        await asyncio.to_thread(shutil.rmtree, staging, True)
    return UnpackedImage(ref.digest, done / "rootfs", config)
