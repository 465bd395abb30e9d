import io
import tarfile
from pathlib import Path

import pytest

from spruce.compile.archive import (
    SourceArchiveError,
    create_slug,
    extract_source_tarball,
    sha256_checksum,
    unpack_slug,
)


def tarball(path: Path, members: list[tuple[str, str, str]], mode: str = "w:gz") -> Path:
    """members: (kind, name, data-or-link-target)."""
    with tarfile.open(path, mode) as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                raw = data.encode()
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tar.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = data
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
    return path


def test_extracts_tgz_and_plain_tar(tmp_path: Path) -> None:
    for mode, name in (("w:gz", "src.tgz"), ("w", "src.tar")):
        archive = tarball(
            tmp_path / name,
            [
                ("dir", "app", ""),
                ("file", "app/Procfile", "web: x\n"),
                ("symlink", "app/link", "Procfile"),
            ],
            mode,
        )
        root = extract_source_tarball(archive, tmp_path / f"out-{name}")
        assert root == tmp_path / f"out-{name}" / "app"  # a lone top-level dir is the app root
        assert (root / "Procfile").read_text() == "web: x\n"
        assert (root / "link").resolve() == (root / "Procfile").resolve()


def test_flat_tarball_root_is_the_destination(tmp_path: Path) -> None:
    archive = tarball(
        tmp_path / "flat.tgz", [("file", "./Procfile", "web: x\n"), ("dir", "./lib", "")]
    )
    assert extract_source_tarball(archive, tmp_path / "out") == tmp_path / "out"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("file", "../evil", "x")], "escapes the destination"),
        ([("file", "/etc/evil", "x")], "escapes the destination"),
        ([("file", "a/../../evil", "x")], "escapes the destination"),
        ([("symlink", "link", "/etc")], "absolute target"),
        ([("symlink", "a/link", "../../outside")], "target escapes"),
        ([("hardlink", "h", "../x")], "target escapes"),
        ([("fifo", "pipe", "")], "device files and FIFOs"),
    ],
)
def test_refuses_unsafe_entries(
    tmp_path: Path, members: list[tuple[str, str, str]], message: str
) -> None:
    archive = tarball(tmp_path / "bad.tgz", members)
    with pytest.raises(SourceArchiveError, match=message):
        extract_source_tarball(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_refuses_writing_through_a_symlinked_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # "d" points inside the archive's root at first glance, but a nested link then escapes.
    archive = tarball(
        tmp_path / "bad.tgz",
        [
            ("dir", "a", ""),
            ("symlink", "a/up", ".."),
            ("symlink", "a/up/x", "../outside"),
            ("file", "a/up/x/f", "pwned"),
        ],
    )
    with pytest.raises(SourceArchiveError):
        extract_source_tarball(archive, tmp_path / "out")
    assert not (outside / "f").exists()


def test_not_a_tarball(tmp_path: Path) -> None:
    junk = tmp_path / "source.tgz"
    junk.write_bytes(b"PK\x03\x04 this is a zip, not a tar")
    with pytest.raises(SourceArchiveError, match="is not a tar archive"):
        extract_source_tarball(junk, tmp_path / "out")
    with pytest.raises(SourceArchiveError, match="does not exist"):
        extract_source_tarball(tmp_path / "missing.tgz", tmp_path / "out")


def test_slug_round_trip_and_checksum(tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / ".profile.d").mkdir(parents=True)
    (build / "Procfile").write_text("web: ./run\n")
    (build / "run").write_text("#!/bin/sh\n")
    (build / "run").chmod(0o755)
    (build / ".profile.d" / "x.sh").write_text("export A=1\n")
    (build / "current").symlink_to("run")
    slug = create_slug(build, tmp_path / "slugs")
    assert slug.path.parent == tmp_path / "slugs" and slug.path.suffix == ".tgz"
    assert slug.size == slug.path.stat().st_size
    assert slug.checksum == sha256_checksum(slug.path)
    assert slug.checksum.startswith("SHA256:") and len(slug.checksum) == 7 + 64
    with tarfile.open(slug.path) as tar:
        assert all(n == "." or n.startswith("./") for n in tar.getnames())
    dest = unpack_slug(slug.path, tmp_path / "app")
    assert (dest / "Procfile").read_text() == "web: ./run\n"
    assert (dest / "run").stat().st_mode & 0o111
    assert (dest / ".profile.d" / "x.sh").exists()
    assert (dest / "current").is_symlink()
