"""Reproducible OCI layers: a gzip'd tar whose bytes depend only on the files' content.

The same tree always gives the same blob: entries are sorted, every mtime is one constant
(the CNB lifecycle's 1980-01-01T00:00:01Z), owners are fixed numbers without names, gzip
carries no timestamp or file name. Two digests come out, as the OCI image spec wants: the
`diff_id` (sha256 of the tar) for the config's rootfs, the `digest` of the compressed blob
for the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# What the CNB lifecycle uses for layer mtimes and the image's `created` time.
NORMALIZED_MTIME = 315532801
COMPRESS_LEVEL = 1  # speed over a few percent of size: the registry is local

ROOT = (0, 0)


class LayerError(ValueError):
    """A tree that cannot become a layer (a bad path name)."""


@dataclass(frozen=True)
class LayerBlob:
    digest: str  # "sha256:<hex>" of the gzip blob (manifest)
    diff_id: str  # "sha256:<hex>" of the uncompressed tar (config rootfs)
    size: int  # bytes of the gzip blob
    path: Path  # where the blob was written


@dataclass(frozen=True)
class _Entry:
    kind: str  # "dir" | "file" | "symlink" | "data"
    mode: int
    owner: tuple[int, int]
    source: Path | None = None
    data: bytes = b""
    target: str = ""


class _HashingWriter(io.RawIOBase):
    """Write-through to `sink`, hashing and counting what passes."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(b)
        self.hash.update(data)
        self.count += len(data)
        self.sink.write(data)
        return len(data)


def _check_name(name: str) -> str:
    clean = name.strip("/")
    parts = clean.split("/")
    if not clean or any(p in ("", ".", "..") for p in parts):
        raise LayerError(f"invalid path in layer: {name!r}")
    return clean


class LayerWriter:
    """Collect entries, then `finish()` writes the blob into `dest_dir`."""

    def __init__(self, dest_dir: Path, mtime: int = NORMALIZED_MTIME) -> None:
        self.dest_dir = Path(dest_dir)
        self.mtime = mtime
        self._entries: dict[str, _Entry] = {}

    def _put(self, name: str, entry: _Entry) -> None:
        clean = _check_name(name)
        parts = clean.split("/")
        for i in range(1, len(parts)):  # parents a tar reader would otherwise invent
            parent = "/".join(parts[:i])
            if parent not in self._entries:
                self._entries[parent] = _Entry("dir", 0o755, ROOT)
        self._entries[clean] = entry

    def add_dir(self, name: str, mode: int = 0o755, owner: tuple[int, int] = ROOT) -> None:
        self._put(name, _Entry("dir", mode, owner))

    def add_data(
        self, name: str, data: bytes, mode: int = 0o644, owner: tuple[int, int] = ROOT
    ) -> None:
        self._put(name, _Entry("data", mode, owner, data=data))

    def add_symlink(self, name: str, target: str, owner: tuple[int, int] = ROOT) -> None:
        self._put(name, _Entry("symlink", 0o777, owner, target=target))

    def add_tree(
        self, source: Path, name: str, owner: tuple[int, int] = ROOT, skip_root: bool = False
    ) -> None:
        """`source` and everything below it, as `name/...`; sockets and devices are left out."""
        source = Path(source)
        if not skip_root:
            self._put(name, _Entry("dir", stat.S_IMODE(source.stat().st_mode), owner))
        for root, dirs, files in os.walk(source):
            dirs.sort()
            rel_root = os.path.relpath(root, source)
            for child in [*dirs, *files]:
                full = os.path.join(root, child)
                rel = child if rel_root == "." else f"{rel_root}/{child}"
                self.add_path(Path(full), f"{name.strip('/')}/{rel}", owner)
            # os.walk does not descend into symlinked directories: they are links here.

    def add_path(self, path: Path, name: str, owner: tuple[int, int] = ROOT) -> None:
        """One entry (no recursion) for a file, directory or symlink on disk."""
        st = path.lstat()
        mode = stat.S_IMODE(st.st_mode) & 0o777
        if stat.S_ISLNK(st.st_mode):
            self._put(name, _Entry("symlink", 0o777, owner, target=os.readlink(path)))
        elif stat.S_ISDIR(st.st_mode):
            self._put(name, _Entry("dir", mode, owner))
        elif stat.S_ISREG(st.st_mode):
            self._put(name, _Entry("file", mode, owner, source=path))

    def __len__(self) -> int:
        return len(self._entries)

    def finish(self) -> LayerBlob:
        self.dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.dest_dir, prefix=".layer-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                compressed = _HashingWriter(out)
                with gzip.GzipFile(
                    filename="",
                    mode="wb",
                    fileobj=compressed,
                    mtime=0,
                    compresslevel=COMPRESS_LEVEL,
                ) as gz:
                    plain = _HashingWriter(gz)  # type: ignore[arg-type]
                    self._write_tar(plain)
            digest = "sha256:" + compressed.hash.hexdigest()
            blob = self.dest_dir / digest.replace(":", "-")
            os.replace(tmp, blob)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return LayerBlob(digest, "sha256:" + plain.hash.hexdigest(), compressed.count, blob)

    def _write_tar(self, sink: _HashingWriter) -> None:
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self._entries, key=lambda n: n.split("/")):
                entry = self._entries[name]
                info = tarfile.TarInfo(name)
                info.mtime = self.mtime
                info.uid, info.gid = entry.owner
                info.uname = info.gname = ""
                info.mode = entry.mode
                if entry.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif entry.kind == "symlink":
                    info.type = tarfile.SYMTYPE
                    info.linkname = entry.target
                    tar.addfile(info)
                elif entry.kind == "data":
                    info.size = len(entry.data)
                    tar.addfile(info, io.BytesIO(entry.data))
                else:
                    assert entry.source is not None
                    with open(entry.source, "rb") as fh:
                        info.size = os.fstat(fh.fileno()).st_size
                        tar.addfile(info, fh)


def diff_id_of(blob: Path) -> str:
    """The diff_id of a gzip'd (or plain) tar blob."""
    digest = hashlib.sha256()
    with open(blob, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw  # type: ignore[assignment]
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()
