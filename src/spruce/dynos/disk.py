"""Each dyno's own ephemeral disk, separate from its memory (when the platform runs as root).

A Heroku dyno has a writable, ephemeral filesystem of its own: `/app` (the slug, with the
dyno's changes on top) and `/tmp`. Spruce gives every launch of a dyno a fresh ext4
filesystem on a loop device, sized by the dyno (`disk_quota_mb`), made inside a private
mount namespace just before the sandbox starts:

- `/app` is an overlay: the release's slug copy (shared by the app's dynos, never written)
  below, the dyno's changes on its disk above;
- `/tmp` and `/var/tmp` are directories of mode 1777 on the same disk.

The image file is unlinked as soon as it is mounted, and the mounts live only in the dyno's
mount namespace: when the dyno's last process ends the kernel releases the loop device and
the space, so nothing leaks, not even after a `kill -9` of the platform. A dyno that fills
its disk gets ENOSPC; the host's filesystems are untouched.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
from pathlib import Path

from spruce.dynos.sizes import get_size

DISK_PER_MEMORY = 4
MIN_DISK_MB = 2048
MAX_DISK_MB = 64 * 1024
APP_DIR = "app"
TMP_DIR = "tmp"
VAR_TMP_DIR = "var-tmp"

# Runs as root, in the dyno's own mount namespace, before bwrap: $1 image file, $2 mount
# point, $3 the slug copy (the overlay's lower layer, or "-" for none), $4 size in bytes,
# then "--" and the command to exec. Tools by absolute path: the dyno's PATH is not ours.
_SCRIPT = r"""
set -e
img=$1 mnt=$2 lower=$3 size=$4
shift 5
{mkdir} -p "$mnt"
{rm} -f "$img"
{truncate} -s "$size" "$img"
if ! {mkfs} -q -F -m 0 -O ^has_journal -E lazy_itable_init=1,nodiscard "$img" >&2 \
   || ! {mount} -o loop,nosuid,nodev,noinit_itable "$img" "$mnt"; then
  {rm} -f "$img"
  echo "spruce: could not make the dyno's disk" >&2
  exit 1
fi
{rm} -f "$img"
{mkdir} "$mnt/tmp" "$mnt/var-tmp" "$mnt/app" "$mnt/.upper" "$mnt/.work"
{chmod} 1777 "$mnt/tmp" "$mnt/var-tmp"
if [ "$lower" != "-" ]; then
  {chown} --reference="$lower" "$mnt/.upper"
  {chmod} --reference="$lower" "$mnt/.upper"
  {mount} -t overlay overlay -o "lowerdir=$lower,upperdir=$mnt/.upper,workdir=$mnt/.work" \
    "$mnt/app"
fi
exec "$@"
"""
_TOOLS = {
    "mkdir": "mkdir",
    "rm": "rm",
    "truncate": "truncate",
    "mkfs": "mkfs.ext4",
    "mount": "mount",
    "chmod": "chmod",
    "chown": "chown",
}
_SEARCH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def disk_quota_mb(size_name: str, overrides: dict[str, float] | None = None) -> int:
    """A dyno's disk: 4x its memory, at least 2 GB, at most 64 GB (overridable by size)."""
    size = get_size(size_name)
    for key in (size.name, size.display_name, size_name):
        if overrides and key in overrides:
            return max(1, int(overrides[key]))
    return int(min(MAX_DISK_MB, max(MIN_DISK_MB, size.memory_mb * DISK_PER_MEMORY)))


class DynoDisks:
    """Where launches' disks are mounted (`home/disks/<launch id>`), and the wrapper argv."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.unshare = shutil.which("unshare", path=_SEARCH)
        found = {k: shutil.which(v, path=_SEARCH) for k, v in _TOOLS.items()}
        self.tools = all(found.values())
        self.script = _SCRIPT.format(**{k: shlex.quote(v or k) for k, v in found.items()})

    def usable(self) -> str | None:
        """None when disks work here, else why not (tried once, with a tiny disk)."""
        if self.unshare is None or not self.tools:
            return "unshare, mkfs.ext4 or mount not found (install util-linux, e2fsprogs)"
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / ".probe"
        try:
            res = subprocess.run(
                self.wrap(["/bin/sh", "-c", f"touch {probe}/tmp/x"], probe, None, 16),
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return str(e)
        finally:
            self.release(probe)
        if res.returncode != 0:
            return res.stderr.decode(errors="replace").strip()[-200:] or "probe failed"
        return None

    def mount_dir(self, launch_id: str) -> Path:
        return self.root / launch_id

    def wrap(self, argv: list[str], mount_dir: Path, lower: Path | None, size_mb: int) -> list[str]:
        """argv, started after its disk is made and mounted at mount_dir."""
        assert self.unshare is not None
        image = mount_dir.with_name(f".{mount_dir.name}.img")
        return [
            self.unshare,
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            self.script,
            "spruce-disk",
            str(image),
            str(mount_dir),
            str(lower) if lower is not None else "-",
            str(size_mb * 1024 * 1024),
            "--",
            *argv,
        ]

    def release(self, mount_dir: Path) -> None:
        """Remove a launch's (empty) mount point and any image left by a failed start."""
        mount_dir.with_name(f".{mount_dir.name}.img").unlink(missing_ok=True)
        # Only ever an empty directory on the host: the disk was mounted in the dyno's own
        # namespace. Anything else is left alone rather than walked.
        with contextlib.suppress(OSError):
            mount_dir.rmdir()

    def release_all(self) -> None:
        """At start, after leftover dynos are ended: their mount points are empty now."""
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.is_dir():
                self.release(entry)
            else:
                entry.unlink(missing_ok=True)
