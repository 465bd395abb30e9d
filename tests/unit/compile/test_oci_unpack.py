"""Unpacking OCI layers: the layer-tree cache composed with hard links gives the same root as
applying the layers one after another, whiteouts and opaque directories included."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from spruce.compile.oci.unpack import UnpackError, apply_layer, extract_layer, merge_layer


def layer(path: Path, entries: list[tuple[str, str | None]]) -> Path:
    """A gzip'd tar: (name, text) files, (name/, None) directories, (name -> target) links."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in entries:
            info = tarfile.TarInfo(name.rstrip("/").split(" -> ")[0])
            info.mtime = 315532801
            if " -> " in name:
                info.type, info.linkname = tarfile.SYMTYPE, name.split(" -> ")[1]
                tar.addfile(info)
            elif text is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = text.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return path


def tree(root: Path) -> dict[str, str]:
    out = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(current) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_text()
    return out


def test_composed_root_equals_applied_layers(tmp_path: Path) -> None:
    blobs = [
        layer(tmp_path / "1.tgz", [("usr/", None), ("usr/a", "a1"), ("etc/", None),
                                   ("etc/keep", "k"), ("etc/drop", "d"), ("opq/", None),
                                   ("opq/old", "o"), ("bin -> usr/bin", None)]),
        layer(tmp_path / "2.tgz", [("etc/.wh.drop", ""), ("opq/.wh..wh..opq", ""),
                                   ("opq/new", "n"), ("usr/a", "a2"), ("workspace/", None),
                                   ("workspace/app.py", "print(1)")]),
    ]  # fmt: skip
    applied = tmp_path / "applied"
    applied.mkdir()
    for blob in blobs:
        apply_layer(blob, applied, keep_owner=False)
    composed = tmp_path / "composed"
    composed.mkdir()
    trees = [
        extract_layer(b, tmp_path / "layers", f"sha256:{i:064x}", False)
        for i, b in enumerate(blobs)
    ]
    for t in trees:
        merge_layer(t, composed, keep_owner=False)
    assert tree(composed) == tree(applied)
    assert tree(composed) == {
        "usr": "dir", "usr/a": "a2", "etc": "dir", "etc/keep": "k", "opq": "dir",
        "opq/new": "n", "bin": "-> usr/bin", "workspace": "dir", "workspace/app.py": "print(1)",
    }  # fmt: skip
    # Files are the layer's own inodes (no copy); the layer tree is extracted once.
    assert (
        os.stat(composed / "workspace/app.py").st_ino
        == os.stat(trees[1] / "workspace/app.py").st_ino
    )
    assert extract_layer(blobs[0], tmp_path / "layers", "sha256:" + "0" * 64, False) == trees[0]


def test_paths_leaving_the_root_are_refused(tmp_path: Path) -> None:
    bad = layer(tmp_path / "bad.tgz", [("../escape", "x")])
    with pytest.raises(UnpackError, match="leaves the root"):
        extract_layer(bad, tmp_path / "layers", "sha256:" + "1" * 64, False)
    through = layer(tmp_path / "sym.tgz", [("link -> /etc", None), ("link/passwd", "x")])
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UnpackError, match="symlink"):
        apply_layer(through, root, keep_owner=False)
