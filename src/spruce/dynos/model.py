"""The local backend's settings and checks (the values it exchanges are services' types)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from spruce.dynos.sizes import DynoError, InvalidFormation, get_size
from spruce.services.model import AppRuntime, DynoInfo, DynoState
from spruce.services.settings import AppSettings

MAX_FORMATION_LIMIT = AppSettings.BOUNDS["formation_limit"].high
MAX_BOOT_TIMEOUT = AppSettings.BOUNDS["boot_timeout"].high

PROCESS_TYPE_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
DYNO_NAME_RE = re.compile(r"^([a-zA-Z0-9_-]{1,63})\.([0-9]{1,6})$")
FIR_DYNO_NAME_RE = re.compile(r"^([a-z0-9-]{1,63})-([0-9a-z]{10})-([0-9a-z]{5})$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FEATURES = frozenset({"preboot", "log-runtime-metrics", "runtime-dyno-metadata"})
STATES = tuple(DynoState)


class Intent(StrEnum):
    """What a formation dyno's supervisor should do next."""

    RUN = "run"
    IDLE = "idle"  # Eco sleeping: stopped until a request wakes it
    RETIRE = "retire"  # leave for good (scaled down, replaced, app removed)


def validate_runtime(app: AppRuntime, slug_dir: Path | None) -> None:
    """Raise a DynoError (a ValueError) describing the first problem found."""
    if not isinstance(app.app_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", app.app_id):
        raise DynoError(f"invalid app id {app.app_id!r}")
    if not app.release_id or not isinstance(app.release_id, str):
        raise DynoError("release_id is required")
    if app.generation == "fir":
        if app.image is None:
            raise DynoError("a Fir release runs an OCI image: the runtime has none")
    elif app.generation != "cedar":
        raise DynoError(f"unknown generation {app.generation!r}")
    elif slug_dir is None or not Path(slug_dir).is_dir():
        raise DynoError("the release's slug directory does not exist")
    if not (isinstance(app.boot_timeout, int | float) and 0 < app.boot_timeout <= MAX_BOOT_TIMEOUT):
        raise DynoError(f"boot_timeout must be between 0 and {MAX_BOOT_TIMEOUT} seconds")
    for ptype, command in app.process_types.items():
        if not PROCESS_TYPE_RE.match(ptype):
            raise InvalidFormation(f"invalid process type {ptype!r}")
        if not isinstance(command, str) or not command.strip():
            raise InvalidFormation(f"process type {ptype!r} has no command")
    for ptype, spec in app.formation.items():
        try:
            quantity, size = spec
        except (TypeError, ValueError):
            raise InvalidFormation(f"formation for {ptype!r} must be (quantity, size)") from None
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 0 <= quantity <= MAX_FORMATION_LIMIT
        ):
            raise InvalidFormation(
                f"quantity for {ptype!r} must be an integer 0..{MAX_FORMATION_LIMIT}"
            )
        get_size(size)
        if quantity and ptype not in app.process_types:
            raise InvalidFormation(f"no process type {ptype!r} in this release")
    for key, value in app.config.items():
        if not ENV_NAME_RE.match(key):
            raise DynoError(f"invalid config var name {key!r}")
        if not isinstance(value, str) or "\0" in value:
            raise DynoError(f"config var {key} must be a string without NUL bytes")


@dataclass
class DynoSettings:
    """Timers and limits; Heroku's values by default, short ones in tests."""

    boot_timeout: float | None = None
    """Overrides every app's boot_timeout when set (tests)."""
    stop_grace: float = 30.0
    """SIGTERM -> SIGKILL (R12)."""
    crash_restart_delays: tuple[float, ...] = (0.0,)
    """Delay before restart n (1-based) of a crashing dyno; beyond the list, the cool-off."""
    crash_cooloff_base: float = 20.0
    crash_cooloff_max: float = 20 * 60.0
    crash_reset_after: float = 20 * 60.0
    """A dyno that stays up this long forgets its past crashes."""
    memory_quota_mb: dict[str, float] = field(default_factory=dict)
    """Overrides of sizes' memory quotas, by size name (tests use tiny ones)."""
    disk_quota_mb: dict[str, float] = field(default_factory=dict)
    """Overrides of sizes' disk quotas (4x memory, 2..64 GB), by size name (tests)."""
    memory_check_interval: float = 1.0
    r14_interval: float = 20.0
    """Minimum time between two R14 lines for one dyno."""
    boot_poll_interval: float = 0.1
    sleep_after: float = 30 * 60.0
    sleep_check_interval: float = 10.0
    metrics_interval: float = 20.0
    rendezvous_timeout: float = 60.0
    """A one-off's secret expires (and the dyno is stopped) when nobody attaches in time."""
    rendezvous_host: str = "127.0.0.1"
    preboot_extra_wait: float = 120.0
    isolation: str = "auto"
    """auto: users + bwrap + cgroups when root, with warnings for what is missing; off: none."""
    uid_base: int = 61000
    uid_count: int = 4000
    sandbox_ro_paths: tuple[str, ...] = (
        "/usr",
        "/etc",
        "/opt",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/lib32",
        "/libx32",
    )
    """System paths visible (read-only) inside a dyno's sandbox."""
    image_ro_paths: tuple[str, ...] = ()
    """More host paths for Fir dynos beyond those their image names (tests, odd hosts)."""
    regions_root: Path | None = None
    """Where regions keep their data (`<home>/regions`): a space's apps' unpacked slugs and
    images and release copies go under `<region>/dynos` (data residency)."""
    cgroup_root: Path = Path("/sys/fs/cgroup")
    cgroup_name: str = "spruce"
    base_path: str = "/usr/local/bin:/usr/bin:/bin"

    def cooloff(self, crash_count: int) -> float:
        """Delay before restarting after the crash_count-th consecutive crash (1-based)."""
        if crash_count <= len(self.crash_restart_delays):
            return self.crash_restart_delays[crash_count - 1]
        n = crash_count - len(self.crash_restart_delays) - 1
        return float(min(self.crash_cooloff_base * (2 ** min(n, 30)), self.crash_cooloff_max))

    def quota_mb(self, size_name: str) -> float:
        return float(self.memory_quota_mb.get(size_name, get_size(size_name).memory_mb))


def parse_dyno_name(name: str) -> tuple[str, int]:
    m = DYNO_NAME_RE.match(name or "")
    if not m:
        raise DynoError(f"invalid dyno name {name!r}")
    return m.group(1), int(m.group(2))


def check_dyno_name(name: str) -> None:
    """A Cedar (web.1) or Fir (web-848cd4f64d-pvpr2) dyno name, or a DynoError."""
    if not (DYNO_NAME_RE.match(name or "") or FIR_DYNO_NAME_RE.match(name or "")):
        raise DynoError(f"invalid dyno name {name!r}")


__all__ = [
    "DYNO_NAME_RE",
    "FIR_DYNO_NAME_RE",
    "ENV_NAME_RE",
    "FEATURES",
    "Intent",
    "PROCESS_TYPE_RE",
    "STATES",
    "check_dyno_name",
    "AppRuntime",
    "DynoInfo",
    "DynoSettings",
    "parse_dyno_name",
    "validate_runtime",
]
