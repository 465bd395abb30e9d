"""Values that cross the ports: what services hand to the parts they drive, and get back.

Adapters (dynos/, compile/, logs/, router/, addons/, certs/) import these types; services
never import the adapters. Everything here is plain data.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Generation(StrEnum):
    CEDAR = "cedar"
    FIR = "fir"


@dataclass(frozen=True)
class RequestSample:
    """One request the router answered, as it measured it (from its log line)."""

    app_id: str
    at: float
    """Seconds since the epoch."""
    status: int | None
    service_ms: int | None
    code: str | None
    """The H code, when the router answered with one."""


@dataclass(frozen=True)
class DynoSample:
    """One dyno's memory and load as the dyno backend measured them."""

    app_id: str
    dyno: str
    at: float
    memory_mb: float
    memory_quota_mb: float
    load_avg_1m: float


class DynoState(StrEnum):
    """A dyno's state as the Platform API reports it."""

    STARTING = "starting"
    UP = "up"
    CRASHED = "crashed"
    IDLE = "idle"
    DOWN = "down"


class ReleaseStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BuildStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# -- dynos ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlugArtifact:
    """The code of a release: a slug tarball the dyno backend unpacks (once per slug)."""

    id: str
    path: Path


@dataclass(frozen=True)
class ImageArtifact:
    """The code of a Fir release: an OCI image the dyno backend pulls by digest."""

    id: str
    """The oci-image resource's id."""
    image: str
    """registry/repository@sha256:... (pulled by digest, unpacked once per digest)."""
    digest: str


@dataclass(frozen=True)
class EgressRule:
    """One rule of a space's outbound ruleset: traffic to `target` (an IPv4 CIDR) on ports
    from_port..to_port over `protocol` (tcp, udp, icmp, or -1 for every protocol)."""

    target: str
    from_port: int
    to_port: int
    protocol: str


@dataclass(frozen=True)
class SpaceNetwork:
    """The network an app in a space runs in: its space and the space's current outbound
    ruleset (what its dynos may reach beyond the space)."""

    space_id: str
    space_name: str
    outbound: tuple[EgressRule, ...]


@dataclass
class AppRuntime:
    """The desired state of one app's dynos, as the dyno backend receives it."""

    app_id: str
    app_name: str
    release_id: str
    release_version: int
    slug: SlugArtifact | None
    process_types: dict[str, str]
    """type -> command (Cedar: run in bash; Fir: shown, the image's /cnb/process/<type> runs)."""
    formation: dict[str, tuple[int, str]]
    config: dict[str, str] = field(default_factory=dict)
    features: set[str] = field(default_factory=set)
    boot_timeout: float = 60.0
    generation: str = Generation.CEDAR
    image: ImageArtifact | None = None
    """Fir releases: the image (slug is None); Cedar: None."""
    region: str = ""
    """The app's region (its space's): a Kubernetes backend may pin its dynos to nodes there."""
    metadata: dict[str, str] = field(default_factory=dict)
    """Fir: Heroku's dyno metadata (HEROKU_APP_ID, HEROKU_RELEASE_CREATED_AT, ...) and the
    platform's OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT), under the app's config vars."""
    network: SpaceNetwork | None = None
    """Apps in a space: the space's network (a local backend enforces its outbound rules
    and lets the space's dynos reach each other); None on the Common Runtime."""


@dataclass(frozen=True)
class DynoInfo:
    """One dyno as the API shows it (`GET /apps/{app}/dynos`)."""

    id: str
    app_id: str
    name: str
    type: str
    state: str
    size: str
    command: str
    release_id: str
    release_version: int
    host: str
    port: int | None
    pid: int | None
    created_at: float
    updated_at: float
    attach_url: str | None = None


@dataclass(frozen=True)
class WebEndpoint:
    """Where the router may send an app's requests: one up web dyno."""

    dyno_name: str
    dyno_id: str
    host: str
    port: int


class DynoError(ValueError):
    """Input a dyno backend refuses (the API answers 422 with its message)."""


class DynoNotFound(LookupError):
    """No such app or dyno in the backend (the API answers 404)."""


# -- the router's table ------------------------------------------------------------------
@dataclass(frozen=True)
class RouteDyno:
    name: str
    host: str
    port: int
    state: str  # up | starting | crashed | down


@dataclass(frozen=True)
class AppRoute:
    """Everything a router worker needs to route one app."""

    id: str
    name: str
    hostnames: tuple[str, ...]
    maintenance: bool
    released: bool
    features: tuple[str, ...]
    maintenance_page_url: str | None
    error_page_url: str | None
    web_quantity: int
    sleeping: bool
    dynos: tuple[RouteDyno, ...]
    eco_quota_exhausted: bool = False
    acme_challenges: tuple[tuple[str, str], ...] = ()
    """(token, key authorization) of the app's ACM orders: the router answers HTTP-01."""
    inbound_rules: tuple[tuple[str, str], ...] | None = None
    """A space's app: its trusted IP ranges as (source CIDR, allow|deny), first match
    decides, no match refused (H84). None outside a space."""


@dataclass(frozen=True)
class RouteCertificate:
    id: str
    hostnames: tuple[str, ...]
    cert_pem: str
    key_pem: str


# -- logs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DrainSpec:
    id: str
    """The drain's id in the Platform API (a UUID)."""
    url: str
    token: str
    """`d.<uuid>`: the syslog hostname field and the Logplex-Drain-Token header."""
    app_name: str = ""


# -- telemetry -----------------------------------------------------------------------------
class Signal(StrEnum):
    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"


@dataclass(frozen=True)
class TelemetryDrainSpec:
    """One telemetry drain as the exporter needs it (headers opened from the store)."""

    id: str
    signals: frozenset[str]
    exporter_type: str
    """otlphttp (protobuf over HTTP, a URL) or otlp (gRPC, host:port)."""
    endpoint: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TelemetryTarget:
    """Everything the exporter needs for one app: the Heroku resource attributes its
    signals carry and the drains that receive them (the app's and its space's)."""

    app_id: str
    resource: tuple[tuple[str, str], ...]
    drains: tuple[TelemetryDrainSpec, ...]


@dataclass(frozen=True)
class DynoUsage:
    """One running dyno's resource use, sampled by the dyno backend."""

    name: str
    type: str
    memory_bytes: int
    memory_limit_bytes: int
    cpu_seconds: float
    restarts: int


def new_drain_token() -> str:
    """A drain token as Logplex makes them: `d.` + a UUID."""
    return f"d.{uuid.uuid4()}"


@dataclass(frozen=True)
class LogLine:
    seq: int
    ts: float
    source: str
    process: str
    message: str


# -- builds --------------------------------------------------------------------------------
@dataclass
class BuildRequest:
    source_dir: Path  # checked-out app tree; copied, never modified
    work_dir: Path  # scratch space for this build (emptied first)
    cache_dir: Path  # CACHE_DIR, kept per app between builds
    slugs_dir: Path  # where the slug tarball is written
    buildpacks: list[str] = field(default_factory=list)  # empty: auto-detect built-ins
    env: dict[str, str] = field(default_factory=dict)  # config vars -> ENV_DIR files
    stack: str = "heroku-24"
    timeout: float = 15 * 60.0
    run_as: tuple[int, int] | None = None  # (uid, gid) for buildpack executables
    buildpack_cache_dir: Path | None = None  # downloaded URL buildpacks (default: cache_dir/..)
    source_version: str | None = None  # commit sha, exported as SOURCE_VERSION
    keep_work_dir: bool = False  # leave work_dir behind (debugging); the slug is elsewhere


@dataclass
class BuildResult:
    slug_path: Path
    slug_size: int
    checksum: str  # "SHA256:<hex>"
    process_types: dict[str, str]
    buildpack_description: str  # e.g. "Python"
    buildpacks: list[str]
    stack: str
    config_vars: dict[str, str] = field(default_factory=dict)  # from the last bin/release
    addons: list[str] = field(default_factory=list)
    duration: float = 0.0


@dataclass
class ImageBuildRequest:
    """A Fir build: source in, an OCI image pushed to the platform's registry out."""

    app_id: str  # names the image repository (apps/<app_id>) in the registry
    source_dir: Path  # checked-out app tree; copied, never modified
    work_dir: Path  # scratch space for this build (emptied first)
    cache_dir: Path  # the app's CNB cache, kept between builds (same filesystem as work_dir)
    buildpacks: list[str] = field(default_factory=list)  # empty: project.toml, else builder
    env: dict[str, str] = field(default_factory=dict)  # config vars -> <platform>/env/
    timeout: float = 15 * 60.0
    source_version: str | None = None  # commit sha
    previous_image: str | None = None  # the current release's image (layer reuse)
    buildpack_cache_dir: Path | None = None


@dataclass
class ImageBuildResult:
    image: str  # registry/repository@sha256:...
    digest: str
    image_repo: str  # registry/repository
    process_types: dict[str, dict[str, Any]]  # {type: {name, display_cmd, command, ...}}
    buildpacks: list[dict[str, str]]  # [{id, version, homepage}]
    base_image_name: str
    base_top_layer: str
    architecture: str
    uploaded_blobs: int = 0
    duration: float = 0.0


class BuildFailed(Exception):
    """The build failed for a reason the user can act on (shown in the build output)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SourceError(ValueError):
    """A source archive that cannot be used (not a tarball, unsafe paths, too big)."""


# -- add-ons -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    name: str
    human_name: str
    limits: dict[str, Any] = field(default_factory=dict)
    """Plan limits: memory_bytes, connections, storage_bytes, tables... (as applicable)."""
    default: bool = False


@dataclass(frozen=True)
class CliCommand:
    """A client command for `redis:cli` / `pg:psql`: the password travels in env, not argv."""

    argv: list[str]
    env: dict[str, str]
    host: str
    port: int
    user: str | None = None
    database: str | None = None


@dataclass(frozen=True)
class Backup:
    id: str
    created: str
    size: int
    database: str
    addon_id: str
    path: str


@dataclass(frozen=True)
class QueryResult:
    """What one SQL statement gave: its command tag, and rows when it returns any."""

    status: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False
    """More rows came back than a caller is handed (`QUERY_ROW_LIMIT`)."""


class AddonError(Exception):
    """Base of every add-on provider error; messages never carry secrets."""


class InvalidSettingError(AddonError, ValueError):
    """A bad value for an add-on setting (maxmemory policy, timeout, ...)."""


# -- certificates --------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedCertificate:
    cert_pem: str
    key_pem: str
    not_after: dt.datetime | None = None


# -- git history (pipelines:diff) ------------------------------------------------------------
@dataclass(frozen=True)
class Commit:
    sha: str
    date: str
    """ISO 8601, as git prints it."""
    author: str
    message: str
    """The first line."""
