"""The ports: every part of the outside world that services drive, as a typed Protocol.

Each port has one adapter today and room for a second (DESIGN.md, "seams for scale"):
- DynoBackend: local processes (spruce.dynos); Kubernetes later.
- BuildRunner: classic buildpacks (spruce.compile), Cedar apps.
- ImageBuildRunner: Cloud Native Buildpacks into OCI images (spruce.compile.fir), Fir apps.
- LogPort: the log router (spruce.logs): buffers, sessions, drains.
- RouteSink: the router workers' table (spruce.router's supervisor).
- AddonProvider: the servers behind an add-on service (spruce.addons).
- CertificateIssuer: the internal CA (spruce.certs).
- CertificateAuthority: where ACM's certificates come from, order by order: an ACME CA
  (spruce.certs.acme, which answers challenges through an Http01Responder and a
  Dns01Provider) or the internal CA (spruce.certs.internal_authority).
- TelemetryExporter: OpenTelemetry export to telemetry drains over OTLP (spruce.telemetry).
- InferenceApi: the platform's inference server (spruce.inference), as a model resource's
  key calls it (spruce.inference.client).

The composition root (spruce.platform) builds one adapter for each, once, and hands them to
`Services`. Tests of the rules (tests/unit/services) use small in-process implementations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from .acm_model import OrderRecord
from .model import (
    AppRoute,
    AppRuntime,
    Backup,
    BuildRequest,
    BuildResult,
    CliCommand,
    Commit,
    DrainSpec,
    DynoInfo,
    DynoUsage,
    ImageBuildRequest,
    ImageBuildResult,
    IssuedCertificate,
    Plan,
    QueryResult,
    RouteCertificate,
    TelemetryTarget,
    WebEndpoint,
)

Output = Callable[[str], None]
"""Where a build or release phase writes its lines (the push, the build log)."""


class DynoBackend(Protocol):
    """Runs an app's dynos as its formation says; reports them back."""

    @property
    def warnings(self) -> Sequence[str]:
        """What the backend could not set up (isolation it lacks), for the operator."""
        ...

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...

    async def converge(self, app: AppRuntime) -> None:
        """Make the app's formation dynos match `app` (new release, scale, config)."""
        ...

    async def remove_app(self, app_id: str) -> None: ...

    def dynos(self, app_id: str) -> list[DynoInfo]: ...

    def web_endpoints(self, app_id: str) -> list[WebEndpoint]: ...

    async def restart(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None: ...

    async def stop(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None: ...

    async def run_one_off(
        self,
        app: AppRuntime,
        command: str,
        env: dict[str, str] | None = None,
        size: str | None = None,
        attach: bool = False,
        tty: bool = False,
        process_type: str = "run",
    ) -> DynoInfo: ...

    async def wait_one_off(
        self, app_id: str, name: str, timeout: float | None = None
    ) -> int | None:
        """The one-off's exit status once it ends (None: it never ran, or timed out)."""
        ...

    async def run_inside(self, app_id: str, dyno_name: str, command: str) -> DynoInfo: ...

    def note_request(self, app_id: str) -> None:
        """The router served the app (Eco sleeping counts from the last request)."""
        ...

    def usage(self, app_id: str) -> list[DynoUsage]:
        """Memory, CPU time and restarts of the app's running dynos (telemetry metrics)."""
        ...

    def wake(self, app_id: str) -> None: ...


class BuildRunner(Protocol):
    """Turns a source tree into a slug (classic buildpacks)."""

    async def build(self, request: BuildRequest, output: Output) -> BuildResult:
        """Raises model.BuildFailed with a message the user can act on."""
        ...

    def extract_source(self, archive: Path, dest: Path) -> Path:
        """Unpack a source tarball safely; raises model.SourceError."""
        ...


class ImageBuildRunner(Protocol):
    """Turns a source tree into an OCI image in the platform's registry (Fir: CNBs)."""

    async def build_image(self, request: ImageBuildRequest, output: Output) -> ImageBuildResult:
        """Raises model.BuildFailed (its message already written to `output`)."""
        ...

    async def image_exists(self, image: str) -> bool:
        """Whether the registry holds `image` (registry/repository@sha256:...)."""
        ...

    def image_repository(self, app_id: str) -> str:
        """registry/repository where the app's images go."""
        ...

    async def copy_image(self, image: str, app_id: str) -> str:
        """Copy `image` (registry/repository@sha256:...) into the app's repository, in the
        app's registry (a promotion to another region's app); the app's image_repository."""
        ...


class LoggedLine(Protocol):
    @property
    def ts(self) -> float: ...

    @property
    def source(self) -> str: ...

    @property
    def process(self) -> str: ...

    @property
    def message(self) -> str: ...


class LogPort(Protocol):
    """The log router: per-app buffers, log sessions and drains."""

    def emit(
        self, app_id: str, source: str, process: str, message: str, ts: float | None = None
    ) -> None: ...

    def head(self, app_id: str) -> int: ...

    def lines_after(
        self, app_id: str, seq: int, source: str | None = None, dyno: str | None = None
    ) -> tuple[Sequence[LoggedLine], int]: ...

    def create_session(
        self, app_id: str, lines: int, tail: bool, source: str | None, dyno: str | None
    ) -> str:
        """A log session's token; raises ValueError for bad parameters."""
        ...

    def check_drain_url(self, url: str) -> None:
        """Raise ValueError (with a sentence for the user) for a URL no drain can deliver to."""
        ...

    def set_drains(self, app_id: str, drains: Iterable[DrainSpec]) -> None: ...

    def drain_state(self, drain_id: str) -> str | None: ...

    def remove_app(self, app_id: str) -> None: ...


class RouteSink(Protocol):
    """The router workers' table: apps, their dynos and the certificates for SNI."""

    def replace_table(
        self,
        apps: Sequence[AppRoute],
        certificates: Mapping[str, Sequence[RouteCertificate]],
        default: RouteCertificate | None,
    ) -> None:
        """The whole table; certificates by the app they belong to."""

    def upsert_app(self, route: AppRoute) -> None: ...

    def remove_app(self, app_id: str) -> None: ...

    def set_app_certificates(self, app_id: str, certificates: Sequence[RouteCertificate]) -> None:
        """Replace one app's certificates (none: it has no more); the others stay."""


class CertificateIssuer(Protocol):
    """Signs certificates for hostnames (the internal CA today; ACME for ACM later)."""

    def issue(self, hostnames: Sequence[str]) -> IssuedCertificate: ...


class Http01Responder(Protocol):
    """Who answers `GET /.well-known/acme-challenge/<token>` on the HTTP port."""

    def publish(self, token: str, key_authorization: str) -> None:
        """Answer GET /.well-known/acme-challenge/<token> with `key_authorization`."""
        ...

    def withdraw(self, token: str) -> None:
        """Stop answering for `token` (unknown tokens are ignored)."""
        ...


class Dns01Provider(Protocol):
    """A DNS server Spruce may update, holding `_acme-challenge` TXT records (RFC 2136)."""

    @property
    def zone(self) -> str:
        """The zone this provider updates, without a trailing dot (e.g. acme.example.net)."""
        ...

    def publish(self, name: str, value: str) -> None:
        """Add a TXT record `value` at the absolute `name` (other values there are kept)."""
        ...

    def withdraw(self, name: str, value: str) -> None:
        """Remove that one TXT value at `name` (absent values are ignored)."""
        ...


class CertificateAuthority(Protocol):
    """Where ACM's certificates come from, one resumable order at a time.

    Every call may block (DNS look-ups, the CA over HTTPS): the ACM scheduler makes them from
    one worker thread, one at a time. `advance` does one step and returns the record to
    store; the HTTP-01 tokens of a record are in it (`OrderRecord.http01`) before the step
    that asks the CA to validate them, so the router has them first.
    """

    @property
    def directory(self) -> str:
        """Which CA this is (the ACME directory URL, or "internal"): the account's key."""
        ...

    def account(self) -> dict[str, Any] | None:
        """The account to keep in the store (it holds a private key), or None."""
        ...

    def restore_account(self, data: dict[str, Any]) -> None:
        """Use the account kept from an earlier run."""
        ...

    def problem(self, hostname: str, dns_target: str, order_hostnames: Sequence[str]) -> str | None:
        """Why `hostname` cannot be ordered now (DNS target, DNS-01 delegation, CAA, no DNS
        provider for a wildcard), as a sentence for `acm_status_reason`; None when it can."""
        ...

    def begin(self, hostnames: Sequence[str]) -> OrderRecord:
        """A new order's record (raises ValueError with a sentence when it cannot be made)."""
        ...

    def advance(self, record: OrderRecord) -> OrderRecord: ...

    def abandon(self, record: OrderRecord) -> OrderRecord:
        """Stop an order: withdraw what it published."""
        ...


class KeyValueStoreOps(Protocol):
    """What a Key-Value Store provider offers beyond provisioning (redis:* commands)."""

    def cli(self, addon_id: str) -> CliCommand: ...

    def settings(self, addon_id: str) -> dict[str, Any]: ...

    async def set_maxmemory_policy(self, addon_id: str, policy: str) -> None: ...

    async def set_timeout(self, addon_id: str, seconds: int) -> None: ...

    async def set_keyspace_notifications(self, addon_id: str, flags: str) -> None: ...


class PostgresOps(Protocol):
    """What a Postgres provider offers beyond provisioning (pg:* commands)."""

    def psql(self, addon_id: str) -> CliCommand: ...

    async def capture_backup(self, addon_id: str) -> Backup: ...

    def list_backups(self, addon_id: str) -> list[Backup]: ...

    def backup_path(self, addon_id: str, backup_id: str) -> Path: ...

    async def delete_backup(self, addon_id: str, backup_id: str) -> None: ...

    async def restore_backup(self, addon_id: str, source: str | Path) -> None: ...

    async def ps(self, addon_id: str) -> list[dict[str, Any]]: ...

    async def locks(self, addon_id: str) -> list[dict[str, Any]]: ...

    async def kill(self, addon_id: str, pid: int, force: bool = False) -> bool: ...

    async def stats_reset(self, addon_id: str) -> None: ...

    async def query(self, addon_id: str, statement: str, timeout: float) -> QueryResult:
        """Run SQL as the add-on's own role (pg:psql without a local psql); raises
        AddonError with the server's message when the statement fails."""
        ...


class AddonProvider(Protocol):
    """One add-on service backed by real servers. It knows add-on ids only: apps,
    attachments and config var names are the services layer's business."""

    @property
    def name(self) -> str: ...

    @property
    def aliases(self) -> tuple[str, ...]: ...

    @property
    def human_name(self) -> str: ...

    @property
    def config_var_name(self) -> str:
        """The first attachment's name: REDIS -> REDIS_URL, DATABASE -> DATABASE_URL."""
        ...

    @property
    def color_prefix(self) -> str:
        """Prefix of further attachments' names: HEROKU_POSTGRESQL -> ..._GREEN_URL."""
        ...

    @property
    def plans(self) -> tuple[Plan, ...]: ...

    @property
    def rotate_on_detach(self) -> bool:
        """Whether detaching gives the remaining attachments new credentials (a per-resource
        key, heroku-inference's: the detached app's copy must stop working)."""
        ...

    async def start(self, addon_ids_to_run: Iterable[str]) -> None: ...

    async def stop(self) -> None: ...

    async def provision(
        self,
        addon_id: str,
        plan_name: str | None,
        options: dict[str, str] | None = None,
        region: str | None = None,
    ) -> dict[str, str]:
        """Create and start the add-on; its config ({"URL": ...}) comes back. `region`: the
        app's region when it runs in a space, whose data root holds the add-on's data."""
        ...

    async def deprovision(self, addon_id: str) -> None: ...

    async def change_plan(self, addon_id: str, plan_name: str) -> None: ...

    async def reset_credentials(self, addon_id: str) -> dict[str, str]: ...

    async def info(self, addon_id: str) -> list[tuple[str, str]]: ...

    def key_value_store(self) -> KeyValueStoreOps | None:
        """This provider's redis:* operations, or None."""
        ...

    def postgres(self) -> PostgresOps | None:
        """This provider's pg:* operations, or None."""
        ...


class TelemetryExporter(Protocol):
    """Sends apps' signals to their telemetry drains over OTLP, off every request's path:
    batched, with bounded queues, so a slow or dead collector costs nothing but drops."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Flush what is queued (briefly) and end the export threads."""
        ...

    def set_target(self, target: TelemetryTarget) -> None:
        """The app's resource attributes and drains, complete (no drains: export stops)."""
        ...

    def remove_app(self, app_id: str) -> None: ...

    def record_dyno_usage(self, app_id: str, usage: Sequence[DynoUsage]) -> None:
        """The latest sample of the app's dynos (exported as container metrics)."""
        ...

    def drops(self, drain_id: str) -> int:
        """Signals this drain lost (queue full, or the collector refused or was away)."""
        ...

    def receive(self, app_id: str, signal: str, payload: bytes, content_type: str) -> None:
        """An OTLP export request a dyno sent the platform (protobuf, or OTLP JSON), for the
        app's drains of that signal; ValueError for a payload that does not decode."""
        ...


class CommitHistory(Protocol):
    """The apps' git repositories on the platform (pipelines:diff)."""

    def commits_between(self, app_name: str, base: str, head: str) -> list[Commit] | None:
        """Commits reachable from `head` and not from `base` in the app's repository,
        newest first; None when the repository does not hold both."""
        ...

    def has_branch(self, app_name: str, branch: str) -> bool:
        """Whether the app's repository has the branch (refs/heads/<branch>)."""
        ...

    def archive(self, app_name: str, branch: str, dest: Path) -> str | None:
        """Write the branch's tree to `dest` as a .tar.gz: the commit, or None when the
        repository has no such branch."""
        ...

    def rename(self, old_name: str, new_name: str) -> None:
        """The app was renamed: its repository follows (history kept, as on Heroku)."""
        ...

    def forget(self, app_name: str) -> None:
        """The app is being destroyed: its repository goes (a new app of that name starts
        with an empty one)."""
        ...


class ExecGateway(Protocol):
    """Heroku Exec's SSH side (spruce.dynos.exec_gateway): an SSH server that runs sessions
    inside running dynos, reached with a key the exec manager registers per session."""

    @property
    def tunnel_host(self) -> str:
        """The address the CLI connects to (port 80, fixed by Heroku's CLI)."""
        ...

    @property
    def host_public_key(self) -> str:
        """The server's host key, OpenSSH form (`ssh-ed25519 AAAA...`)."""
        ...

    def grant(self, app_id: str, dyno_name: str, client_key: str) -> str:
        """Let `client_key` (an OpenSSH public key) into that dyno for a while; returns the
        SSH user name it logs in as. ValueError when the key is not one; LookupError when
        the dyno is not running here; PermissionError when it started before the app's
        runtime-heroku-exec feature was on (it needs a restart, as on Heroku)."""
        ...


class InferenceApi(Protocol):
    """The platform's inference server, called as an app calls it: at a model resource's
    INFERENCE_URL with its INFERENCE_KEY. A refusal raises the ServiceError of its status
    (InvalidParams, Forbidden, RateLimited, Unavailable) with the server's message."""

    async def chat_completion(self, url: str, key: str, body: Mapping[str, Any]) -> Any:
        """`POST /v1/chat/completions` (not streamed): the `chat.completion` object."""
        ...

    async def embeddings(self, url: str, key: str, body: Mapping[str, Any]) -> Any: ...

    async def image(self, url: str, key: str, body: Mapping[str, Any]) -> Any: ...

    async def agent(self, url: str, key: str, body: Mapping[str, Any]) -> list[Any]:
        """`POST /v1/agents/heroku`: every event of the run, in order (`chat.completion`
        answers of the model, `tool.completion` results of its tool runs)."""
        ...

    async def aclose(self) -> None:
        """Close its connections (the platform's stop)."""
        ...
