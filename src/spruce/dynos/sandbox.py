"""Isolation of dynos when the platform runs as root.

Each app gets its own unprivileged uid/gid (a range, no passwd entries needed), its own copy
of the slug (owned by that uid, mode 0700, under the manager's home), and runs inside
bubblewrap with only system directories (read-only), /proc, /dev with a /dev/shm, an
/etc/hosts that resolves localhost, and its own disk (disk.py): /app writable over the slug
copy, /tmp and /var/tmp mode 1777. A cgroup v1 per dyno caps memory (a backstop above
Heroku's R15 kill) and pids. A different uid means a dyno cannot signal or ptrace another
app's processes.

Whatever is missing (not root, no bwrap, no setpriv, no cgroups) is reported once as a
warning and the dyno runs with what remains.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from spruce.dynos.disk import APP_DIR, TMP_DIR, VAR_TMP_DIR, DynoDisks
from spruce.dynos.model import DynoSettings

SANDBOX_HOME = "/app"
# Prepended to the host's /etc/hosts for every dyno: localhost resolves whatever the host has.
LOCALHOST_LINES = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


@dataclass(frozen=True)
class DynoFs:
    """What one launch of a dyno gets besides its slug: its disk, and /dev/shm's size."""

    launch_id: str
    disk_mb: int
    shm_bytes: int


@dataclass
class Cgroup:
    dirs: list[Path]
    memory_dir: Path | None

    def procs(self) -> list[int]:
        pids: set[int] = set()
        for d in self.dirs:
            try:
                pids.update(int(x) for x in (d / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return sorted(pids)

    def memory(self) -> dict[str, int] | None:
        if self.memory_dir is None:
            return None
        try:
            text = (self.memory_dir / "memory.stat").read_text()
        except OSError:
            return None
        out: dict[str, int] = {}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if value.isdigit():
                out[key] = int(value)
        return out

    def remove(self) -> bool:
        ok = True
        for d in self.dirs:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
        return ok


class Sandbox:
    def __init__(self, home: Path, settings: DynoSettings) -> None:
        self.home = home
        self.settings = settings
        self.warnings: list[str] = []
        self.users = False
        self.bwrap: str | None = None
        self.setpriv: str | None = None
        self.cgroups: dict[str, Path] = {}
        self._uids_path = home / "uids.json"
        self._uids: dict[str, int] = {}
        self._apps_dir = home / "apps"
        self._app_roots: dict[str, Path] = {}
        self.disks: DynoDisks | None = None
        self.hosts_file = home / "etc-hosts"

    # -- capability probe ---------------------------------------------------------------
    def probe(self) -> list[str]:
        self.warnings = []
        self._apps_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.isolation == "off":
            self.warnings.append("dyno isolation is off: dynos run as the platform's user")
            return self.warnings
        if os.geteuid() != 0:
            self.warnings.append(
                "not running as root: dynos run as the platform's user, without sandbox or cgroups"
            )
            return self.warnings
        self.setpriv = shutil.which("setpriv")
        if self.setpriv is None:
            self.warnings.append("setpriv not found: dynos run as root (install util-linux)")
            return self.warnings
        self.users = True
        os.chmod(self.home, 0o711)
        os.chmod(self._apps_dir, 0o711)
        self._write_hosts()
        if self._uids_path.exists():
            self._uids = {k: int(v) for k, v in json.loads(self._uids_path.read_text()).items()}
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            self.warnings.append("bubblewrap (bwrap) not found: dynos see the whole filesystem")
        else:
            probe = subprocess.run(
                [
                    bwrap,
                    *self._bwrap_fs_args(),
                    "--",
                    self.setpriv,
                    f"--reuid={self.settings.uid_base}",
                    f"--regid={self.settings.uid_base}",
                    "--clear-groups",
                    "--",
                    "/bin/sh",
                    "-c",
                    "true",
                ],
                capture_output=True,
                timeout=10,
                cwd="/",
            )
            if probe.returncode == 0:
                self.bwrap = bwrap
                disks = DynoDisks(self.home / "disks")
                why = disks.usable()
                if why is None:
                    self.disks = disks
                else:
                    self.warnings.append(
                        f"dyno disks unavailable ({why}): /tmp is a tmpfs sized by the dyno's "
                        "disk quota, /app the slug copy shared by the app's dynos"
                    )
            else:
                err = probe.stderr.decode(errors="replace").strip()[:200]
                self.warnings.append(
                    f"bubblewrap does not work here ({err}): no filesystem sandbox"
                )
        for controller in ("memory", "pids"):
            base = self.settings.cgroup_root / controller
            try:
                path = base / self.settings.cgroup_name
                path.mkdir(exist_ok=True)
                self.cgroups[controller] = path
            except OSError as e:
                self.warnings.append(f"cgroup v1 {controller} controller not writable ({e})")
        return self.warnings

    @staticmethod
    def base_hosts() -> str:
        """Every dyno's /etc/hosts starts so: localhost, then the host's own lines."""
        try:
            host = Path("/etc/hosts").read_text()
        except OSError:
            host = ""
        return LOCALHOST_LINES + host

    def passwd_file(self, uid: int) -> Path:
        """The dyno's /etc/passwd: the host's, plus `dyno` for its uid (as Heroku's dynos
        have a user; OpenSSH's sftp-server, Heroku Exec's ps:copy, refuses to run without)."""
        path = self.home / "passwd" / str(uid)
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            try:
                host = Path("/etc/passwd").read_text()
            except OSError:
                host = ""
            tmp = path.with_suffix(".tmp")
            tmp.write_text(
                host.rstrip("\n") + f"\ndyno:x:{uid}:{uid}:Dyno:{SANDBOX_HOME}:/bin/bash\n"
            )
            tmp.chmod(0o644)
            tmp.replace(path)
        return path

    def _write_hosts(self) -> None:
        tmp = self.hosts_file.with_suffix(".tmp")
        tmp.write_text(self.base_hosts())
        tmp.chmod(0o644)
        tmp.replace(self.hosts_file)

    # -- per app ---------------------------------------------------------------------------
    def place(self, app_id: str, root: Path) -> None:
        """Keep this app's release copies under `root` (its region's) instead of the home."""
        apps = root / "apps"
        if self._app_roots.get(app_id) == apps:
            return
        apps.mkdir(parents=True, exist_ok=True)
        if self.users:  # the dynos' uids walk through to their own directory
            for d in (apps, *apps.parents):
                if d == self.settings.regions_root or d == Path("/"):
                    break
                os.chmod(d, 0o711)
        self._app_roots[app_id] = apps

    def _app_dir(self, app_id: str) -> Path:
        return self._app_roots.get(app_id, self._apps_dir) / app_id

    def app_uid(self, app_id: str) -> int | None:
        if not self.users:
            return None
        uid = self._uids.get(app_id)
        if uid is None:
            used = set(self._uids.values())
            for candidate in range(
                self.settings.uid_base + 1, self.settings.uid_base + self.settings.uid_count
            ):
                if candidate not in used:
                    uid = candidate
                    break
            else:
                raise RuntimeError("no free dyno uid left in the configured range")
            self._uids[app_id] = uid
            tmp = self._uids_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._uids))
            tmp.replace(self._uids_path)
        return uid

    def prepare_slug(self, app_id: str, release_id: str, slug_dir: Path) -> tuple[Path, str]:
        """(directory on the host, HOME inside the dyno) for one release of an app.

        Without user isolation the slug directory is used in place.
        """
        uid = self.app_uid(app_id)
        if uid is None:
            return Path(slug_dir), str(slug_dir)
        app_dir = self._app_dir(app_id)
        app_dir.mkdir(exist_ok=True)
        os.chown(app_dir, uid, uid)
        os.chmod(app_dir, 0o700)
        target = app_dir / "releases" / release_id
        if not target.exists():
            staging = app_dir / "releases" / f".{release_id}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(slug_dir, staging, symlinks=True)
            for root, dirs, files in os.walk(staging):
                for name in [*dirs, *files]:
                    os.lchown(os.path.join(root, name), uid, uid)
            os.chown(staging, uid, uid)
            os.chown(staging.parent, uid, uid)
            staging.rename(target)
        return target, (SANDBOX_HOME if self.bwrap else str(target))

    def prepare_workspace(self, app_id: str, release_id: str, source: Path) -> Path:
        """A Fir release's writable copy of its image's /workspace (owned by the app's uid
        when users are isolated); the unpacked image itself stays untouched."""
        uid = self.app_uid(app_id)
        app_dir = self._app_dir(app_id)
        app_dir.mkdir(parents=True, exist_ok=True)
        target = app_dir / "releases" / release_id
        if target.exists():
            return target
        staging = app_dir / "releases" / f".{release_id}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, staging, symlinks=True)
        if uid is not None:
            os.chown(app_dir, uid, uid)
            os.chmod(app_dir, 0o700)
            for root, dirs, files in os.walk(staging):
                for name in [*dirs, *files]:
                    os.lchown(os.path.join(root, name), uid, uid)
            os.chown(staging, uid, uid)
            os.chown(staging.parent, uid, uid)
        staging.rename(target)
        return target

    def gc_releases(self, app_id: str, keep: set[str]) -> None:
        releases = self._app_dir(app_id) / "releases"
        if not releases.is_dir():
            return
        for entry in releases.iterdir():
            if entry.name not in keep and not entry.name.startswith("."):
                shutil.rmtree(entry, ignore_errors=True)

    def remove_app(self, app_id: str) -> None:
        shutil.rmtree(self._app_dir(app_id), ignore_errors=True)
        self._app_roots.pop(app_id, None)

    # -- per dyno --------------------------------------------------------------------------
    def cgroup(self, key: str, memory_limit: int, pids_max: int) -> Cgroup | None:
        if not self.cgroups:
            return None
        dirs: list[Path] = []
        memory_dir = None
        for controller, base in self.cgroups.items():
            d = base / key
            try:
                d.mkdir(exist_ok=True)
                if controller == "memory":
                    (d / "memory.limit_in_bytes").write_text(str(memory_limit))
                    memory_dir = d
                else:
                    (d / "pids.max").write_text(str(pids_max))
            except OSError:
                continue
            dirs.append(d)
        return Cgroup(dirs, memory_dir) if dirs else None

    def existing_cgroup(self, dirs: list[str]) -> Cgroup:
        paths = [Path(d) for d in dirs]
        mem = next((p for p in paths if "/memory/" in str(p)), None)
        return Cgroup(paths, mem)

    def _bwrap_fs_args(
        self,
        disk_dir: Path | None = None,
        tmp_bytes: int = 64 << 20,
        shm_bytes: int = 64 << 20,
        hosts: Path | None = None,
    ) -> list[str]:
        # A pid namespace hides other apps' processes; the dyno's processes keep the process
        # group the manager gave them, so signals to the group still reach all of them.
        args = [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            # POSIX shared memory counts against the dyno's memory, as on Heroku.
            *("--perms", "1777", "--size", str(shm_bytes), "--tmpfs", "/dev/shm"),
            *("--perms", "0755", "--dir", "/var"),
        ]
        if disk_dir is not None:
            args += ["--bind", str(disk_dir / TMP_DIR), "/tmp"]
            args += ["--bind", str(disk_dir / VAR_TMP_DIR), "/var/tmp"]
        else:
            # No disk of its own: still writable and bounded, by the disk quota (in memory).
            for path in ("/tmp", "/var/tmp"):
                args += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", path]
        made: set[str] = set()
        for p in self.settings.sandbox_ro_paths:
            if os.path.islink(p):
                args += ["--symlink", os.readlink(p), p]
            elif os.path.exists(p):
                # bwrap copies a missing parent's mode (0700 for /root): make them traversable.
                parents = [str(a) for a in reversed(Path(p).parents) if str(a) != "/"]
                for parent in parents:
                    if parent not in made:
                        args += ["--perms", "0755", "--dir", parent]
                        made.add(parent)
                args += ["--ro-bind", p, p]
        hosts = hosts or self.hosts_file
        if hosts.exists():
            args += ["--ro-bind", str(hosts), "/etc/hosts"]
        return args

    def wrap(
        self,
        argv: list[str],
        host_dir: Path,
        uid: int | None,
        cgroup: Cgroup | None,
        hostname: str,
        fs: DynoFs | None = None,
        hosts: Path | None = None,
    ) -> list[str]:
        """The command line that starts argv inside the dyno's sandbox (`hosts`: its
        /etc/hosts when not the platform's, i.e. its space's)."""
        if uid is None or self.setpriv is None:
            return argv
        inner = [
            self.setpriv,
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--no-new-privs",
            "--",
            *argv,
        ]
        if self.bwrap:
            disk_dir = self.disk_dir(fs)
            disk_mb = fs.disk_mb if fs else 64
            inner = [
                self.bwrap,
                *self._bwrap_fs_args(
                    disk_dir, disk_mb << 20, fs.shm_bytes if fs else 64 << 20, hosts
                ),
                "--hostname",
                hostname[:63],
                "--ro-bind",
                str(self.passwd_file(uid)),
                "/etc/passwd",
                "--bind",
                str(disk_dir / APP_DIR if disk_dir else host_dir),
                SANDBOX_HOME,
                "--chdir",
                SANDBOX_HOME,
                "--",
                *inner,
            ]
            inner = self.wrap_disk(inner, fs, host_dir)
        return self.in_cgroup(inner, cgroup)

    def enter(self, argv: list[str], pid: int, uid: int | None) -> list[str] | None:
        """argv run inside the sandbox that process `pid` is in (run:inside): its mounts,
        /app and /tmp, its pid namespace; None when that cannot be done here."""
        nsenter = shutil.which("nsenter")
        if not self.users or self.setpriv is None or uid is None or nsenter is None:
            return None
        ns = ["--mount", "--uts", "--ipc", "--pid", "--net", "--root", "--wd"]
        drop = [self.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        return [nsenter, f"--target={pid}", *ns, "--", *drop, "--no-new-privs", "--", *argv]

    def disk_dir(self, fs: DynoFs | None) -> Path | None:
        """Where a launch's disk is mounted (in its own namespace), if it gets one."""
        if fs is None or self.disks is None:
            return None
        return self.disks.mount_dir(fs.launch_id)

    def wrap_disk(self, argv: list[str], fs: DynoFs | None, lower: Path | None) -> list[str]:
        """argv started once the launch's disk is mounted (as is, without disks)."""
        disk_dir = self.disk_dir(fs)
        if disk_dir is None or self.disks is None or fs is None:
            return argv
        return self.disks.wrap(argv, disk_dir, lower, fs.disk_mb)

    def release_disk(self, fs: DynoFs | None) -> None:
        disk_dir = self.disk_dir(fs)
        if disk_dir is not None and self.disks is not None:
            self.disks.release(disk_dir)

    @staticmethod
    def in_netns(argv: list[str], netns: str | None) -> list[str]:
        """argv, started inside a network namespace (a space's dyno), as is without one."""
        if netns is None:
            return argv
        return ["nsenter", f"--net={netns}", "--", *argv]

    @staticmethod
    def in_cgroup(argv: list[str], cgroup: Cgroup | None) -> list[str]:
        """argv, started inside the dyno's cgroup (joined before exec)."""
        if cgroup is None:
            return argv
        joins = " && ".join(
            f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in cgroup.dirs
        )
        return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *argv]

    def bwrap_for_images(self) -> str | None:
        """Fir dynos always run in their image's root: bwrap even without user isolation."""
        if self.settings.isolation == "off":
            return None
        return self.bwrap or shutil.which("bwrap")
