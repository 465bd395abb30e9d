"""Safe tarball handling: source tarballs in, slugs out.

Source tarballs come from users, so extraction refuses anything that would land outside the
destination (absolute paths, `..`, links pointing out, devices). Slugs are gzipped tars of the
build dir with `./`-relative entries, identified by a Heroku-style `SHA256:<hex>` checksum.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from spruce.services.model import SourceError


class SourceArchiveError(SourceError):
    """A tarball that is not one, or that tries to write outside its destination."""


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    normalized = posixpath.normpath(name)
    if name.startswith("/") or normalized == ".." or normalized.startswith("../"):
        raise SourceArchiveError(f"refusing {name!r}: path escapes the destination")
    if member.isdev() or member.isfifo():
        raise SourceArchiveError(f"refusing {name!r}: device files and FIFOs are not allowed")
    if member.issym() or member.islnk():
        target = member.linkname
        if target.startswith("/"):
            raise SourceArchiveError(f"refusing link {name!r} -> {target!r}: absolute target")
        base = posixpath.dirname(normalized) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if resolved == ".." or resolved.startswith("../"):
            raise SourceArchiveError(
                f"refusing link {name!r} -> {target!r}: target escapes the destination"
            )


def extract_tarball(archive: str | os.PathLike[str], dest_dir: str | os.PathLike[str]) -> Path:
    """Extract a .tgz/.tar.gz/.tar into dest_dir (created), refusing unsafe entries.

    Raises SourceArchiveError with a message fit for the user.
    """
    archive_path = Path(archive)
    dest = Path(dest_dir)
    if not archive_path.is_file():
        raise SourceArchiveError(f"source archive {archive_path.name!r} does not exist")
    try:
        tar = tarfile.open(archive_path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceArchiveError(
            f"{archive_path.name!r} is not a tar archive (.tgz, .tar.gz or .tar expected)"
        ) from exc
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise SourceArchiveError(f"{archive_path.name!r} is corrupt: {exc}") from exc
        for member in members:
            _check_member(member)
        dest.mkdir(parents=True, exist_ok=True)
        try:
            # The "data" filter re-checks at extraction time against links already written.
            tar.extractall(dest, filter="data")
        except tarfile.FilterError as exc:
            raise SourceArchiveError(f"refusing unsafe archive entry: {exc}") from exc
        except (tarfile.TarError, EOFError) as exc:
            raise SourceArchiveError(f"{archive_path.name!r} is corrupt: {exc}") from exc
    return dest


def extract_source_tarball(
    archive: str | os.PathLike[str], dest_dir: str | os.PathLike[str]
) -> Path:
    """Extract an app's source tarball; return the app root to build.

    Archives made by GitHub & co. wrap the tree in one top-level directory; like Heroku's
    build API, that directory is then taken as the app root.
    """
    dest = extract_tarball(archive, dest_dir)
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return dest


@dataclass(frozen=True)
class Slug:
    path: Path
    size: int
    checksum: str  # "SHA256:<hex>"


def sha256_checksum(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"SHA256:{digest.hexdigest()}"


def create_slug(build_dir: str | os.PathLike[str], slugs_dir: str | os.PathLike[str]) -> Slug:
    """Write build_dir as slugs_dir/<uuid>.tgz; entries are `./`-relative."""
    out_dir = Path(slugs_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{uuid.uuid4()}.tgz"
    tmp = path.with_suffix(".tgz.part")
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        tar.add(str(build_dir), arcname=".", recursive=True)
    os.replace(tmp, path)
    return Slug(path=path, size=path.stat().st_size, checksum=sha256_checksum(path))


def unpack_slug(slug_path: str | os.PathLike[str], dest_dir: str | os.PathLike[str]) -> Path:
    """Unpack a slug into dest_dir with the same safety rules as source tarballs."""
    return extract_tarball(slug_path, dest_dir)
