"""Container images made on this machine, without a registry: docker-archive tarballs that
`ctr images import` loads into containerd's k8s.io namespace (pods use imagePullPolicy Never).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

PAUSE_IMAGE = "spruce.local/pause:3.2"
BUSYBOX_IMAGE = "spruce.local/busybox:1"
# busybox applets linked into /bin of the busybox image (what dynos in tests use).
APPLETS = (
    "sh", "cat", "echo", "env", "httpd", "ls", "mkdir", "nc", "printf", "sleep", "test",
    "true", "false", "grep", "head", "dd", "kill", "ps", "wget", "seq", "tail", "date",
)  # fmt: skip


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
    tar.addfile(info)


def _add_link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, 0
    tar.addfile(info)


def docker_archive(path: Path, tag: str, layer: bytes, entrypoint: list[str]) -> None:
    """Write a one-layer docker-archive (the format `docker save` writes)."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}])
    with tarfile.open(path, "w") as tar:
        _add_file(tar, config_name, config, 0o644)
        _add_file(tar, "layer.tar", layer, 0o644)
        _add_file(tar, "manifest.json", manifest.encode(), 0o644)


def pause_layer(pause_binary: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add_file(tar, "pause", pause_binary.read_bytes())
    return buf.getvalue()


def busybox_layer(busybox: Path) -> bytes:
    """A static busybox in /bin; /lib, /lib64 and /usr are left for the host's read-only /usr
    (mounted by a dyno that needs Python, as the local sandbox shows it)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "app", "usr", "tmp", "var", "var/tmp"):
            _add_dir(tar, d, 0o1777 if d.endswith("tmp") else 0o755)
        _add_file(tar, "bin/busybox", busybox.read_bytes())
        for applet in APPLETS:
            _add_link(tar, f"bin/{applet}", "busybox")
        _add_link(tar, "lib", "usr/lib")
        _add_link(tar, "lib64", "usr/lib64")
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/app:/bin/sh\n", 0o644)
        _add_file(tar, "etc/group", b"root:x:0:\n", 0o644)
    return buf.getvalue()


def import_image(ctr: Path, address: Path, archive: Path) -> None:
    done = subprocess.run(
        [str(ctr), "--address", str(address), "-n", "k8s.io", "images", "import", str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ctr images import {archive.name} failed: {done.stderr.strip()}")
