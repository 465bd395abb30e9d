"""Small in-process implementations of services' ports, for tests of the business rules.

Each one records what services asked of it and answers as the real adapter would, without a
process, a port or a file outside the test's directory. They are not the real parts: the
integration tests drive those (tests/integration, tests/e2e).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import tarfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spruce.services import Ports, Services, ServiceSettings
from spruce.services.acm_lifecycle import Policy
from spruce.services.acm_model import OrderRecord, Publication
from spruce.services.events import EventBus
from spruce.services.model import (
    AddonError,
    AppRoute,
    AppRuntime,
    BuildFailed,
    BuildRequest,
    BuildResult,
    DrainSpec,
    DynoInfo,
    DynoNotFound,
    ImageBuildRequest,
    ImageBuildResult,
    IssuedCertificate,
    Plan,
    RouteCertificate,
    SourceError,
    WebEndpoint,
)
from spruce.services.settings import PlatformAddresses
from spruce.store.db import Store

ADDRESSES = PlatformAddresses(
    api_url="http://api.test",
    git_url="https://git.test",
    web_url_template="http://{app}.apps.test/",
    app_domain="apps.test",
)


@dataclass
class Line:
    seq: int
    source: str
    process: str
    message: str
    ts: float = 0.0


class FakeLogs:
    def __init__(self) -> None:
        self.lines: dict[str, list[Line]] = {}
        self.drains: dict[str, list[DrainSpec]] = {}
        self.removed: list[str] = []
        self._seq = itertools.count(1)

    def emit(
        self, app_id: str, source: str, process: str, message: str, ts: float | None = None
    ) -> None:
        self.lines.setdefault(app_id, []).append(Line(next(self._seq), source, process, message))

    def messages(self, app_id: str) -> list[str]:
        return [ln.message for ln in self.lines.get(app_id, [])]

    def head(self, app_id: str) -> int:
        lines = self.lines.get(app_id)
        return lines[-1].seq if lines else 0

    def lines_after(
        self, app_id: str, seq: int, source: str | None = None, dyno: str | None = None
    ) -> tuple[Sequence[Line], int]:
        found = [
            ln
            for ln in self.lines.get(app_id, [])
            if ln.seq > seq
            and (source is None or ln.source == source)
            and (dyno is None or ln.process == dyno)
        ]
        return found, max([seq, self.head(app_id)])

    def create_session(
        self, app_id: str, lines: int, tail: bool, source: str | None, dyno: str | None
    ) -> str:
        if lines > 1500:
            raise ValueError("lines must be at most 1500")
        return f"session-{uuid.uuid4()}"

    def check_drain_url(self, url: str) -> None:
        if not url.startswith(("syslog://", "syslog+tls://", "https://", "http://")):
            raise ValueError(f"unsupported drain URL {url!r}")

    def set_drains(self, app_id: str, drains: Iterable[DrainSpec]) -> None:
        self.drains[app_id] = list(drains)

    def drain_state(self, drain_id: str) -> str | None:
        return "connected"

    def remove_app(self, app_id: str) -> None:
        self.removed.append(app_id)


class FakeDynos:
    """A dyno backend that keeps dynos as records and runs one-offs to a scripted end."""

    def __init__(self) -> None:
        self.converged: list[AppRuntime] = []
        self.removed: list[str] = []
        self.restarts: list[tuple[str, str | None, str | None]] = []
        self.one_offs: list[tuple[AppRuntime, str, str]] = []
        self.one_off_exit: int | None = 0
        self.one_off_output: list[str] = []
        self.one_off_fault: Exception | None = None
        self.one_off_delay = 0.0
        self.logs: FakeLogs | None = None
        self._dynos: dict[str, list[DynoInfo]] = {}
        self._waits: dict[tuple[str, str], asyncio.Future[int | None]] = {}

    @property
    def warnings(self) -> Sequence[str]:
        return ()

    async def start(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _dyno(self, app: AppRuntime, name: str, ptype: str, size: str, command: str) -> DynoInfo:
        now = time.time()
        return DynoInfo(
            id=str(uuid.uuid4()),
            app_id=app.app_id,
            name=name,
            type=ptype,
            state="up",
            size=size,
            command=command,
            release_id=app.release_id,
            release_version=app.release_version,
            host="127.0.0.1",
            port=5000,
            pid=None,
            created_at=now,
            updated_at=now,
        )

    async def converge(self, app: AppRuntime) -> None:
        self.converged.append(app)
        dynos = []
        for ptype, (quantity, size) in sorted(app.formation.items()):
            command = app.process_types.get(ptype, "")
            dynos += [
                self._dyno(app, f"{ptype}.{i}", ptype, size, command)
                for i in range(1, quantity + 1)
            ]
        self._dynos[app.app_id] = dynos

    async def remove_app(self, app_id: str) -> None:
        self.removed.append(app_id)
        self._dynos.pop(app_id, None)

    def dynos(self, app_id: str) -> list[DynoInfo]:
        return list(self._dynos.get(app_id, []))

    def web_endpoints(self, app_id: str) -> list[WebEndpoint]:
        return [
            WebEndpoint(d.name, d.id, d.host, d.port or 0)
            for d in self.dynos(app_id)
            if d.type == "web" and d.state == "up"
        ]

    async def restart(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        if dyno_name and not any(d.name == dyno_name for d in self.dynos(app_id)):
            raise DynoNotFound(f"no dyno {dyno_name!r}")
        self.restarts.append((app_id, process_type, dyno_name))

    async def stop(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        self._dynos[app_id] = [
            d
            for d in self.dynos(app_id)
            if not (d.name == dyno_name or (process_type and d.type == process_type))
        ]

    async def run_one_off(
        self,
        app: AppRuntime,
        command: str,
        env: dict[str, str] | None = None,
        size: str | None = None,
        attach: bool = False,
        tty: bool = False,
        process_type: str = "run",
    ) -> DynoInfo:
        if self.one_off_fault is not None:
            raise self.one_off_fault
        name = f"{process_type}.{1000 + len(self.one_offs)}"
        self.one_offs.append((app, command, name))
        info = self._dyno(app, name, process_type, size or "basic", command)
        if attach:
            info = replace(info, attach_url=f"rendezvous://127.0.0.1:5001/{uuid.uuid4()}")
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waits[(app.app_id, name)] = fut

        async def finish() -> None:
            await asyncio.sleep(self.one_off_delay)
            if self.logs is not None:
                for line in self.one_off_output:
                    self.logs.emit(app.app_id, "app", name, line)
            if not fut.done():
                fut.set_result(self.one_off_exit)

        asyncio.get_running_loop().create_task(finish())
        return info

    async def wait_one_off(
        self, app_id: str, name: str, timeout: float | None = None
    ) -> int | None:
        fut = self._waits.get((app_id, name))
        if fut is None:
            raise DynoNotFound(f"no one-off dyno {name!r}")
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return None

    async def run_inside(self, app_id: str, dyno_name: str, command: str) -> DynoInfo:
        for d in self.dynos(app_id):
            if d.name == dyno_name:
                return replace(d, attach_url="rendezvous://127.0.0.1:5001/inside")
        raise DynoNotFound(f"dyno {dyno_name!r} is not running")

    def note_request(self, app_id: str) -> None:
        pass

    def usage(self, app_id: str) -> list[Any]:
        return []

    def wake(self, app_id: str) -> None:
        pass


class FakeBuilds:
    """Builds a 'slug' from the Procfile of the source: a tarball of it, nothing compiled."""

    def __init__(self) -> None:
        self.requests: list[BuildRequest] = []
        self.fail_with: str | None = None
        self.fault: Exception | None = None

    async def build(self, request: BuildRequest, output: Any) -> BuildResult:
        self.requests.append(request)
        if self.fault is not None:
            raise self.fault
        output("-----> Faking a build")
        if self.fail_with is not None:
            raise BuildFailed(self.fail_with)
        procfile = request.source_dir / "Procfile"
        types: dict[str, str] = {}
        if procfile.exists():
            for line in procfile.read_text().splitlines():
                name, _, cmd = line.partition(":")
                if cmd.strip():
                    types[name.strip()] = cmd.strip()
        request.slugs_dir.mkdir(parents=True, exist_ok=True)
        slug = request.slugs_dir / f"{uuid.uuid4()}.tgz"
        with tarfile.open(slug, "w:gz") as tar:
            tar.add(request.source_dir, arcname=".")
        return BuildResult(
            slug_path=slug,
            slug_size=slug.stat().st_size,
            checksum="SHA256:" + "0" * 64,
            process_types=types,
            buildpack_description="Fake",
            buildpacks=["fake"],
            stack=request.stack,
        )

    def extract_source(self, archive: Path, dest: Path) -> Path:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")
        except tarfile.TarError as e:
            raise SourceError(str(e)) from None
        return dest


class FakeImages:
    """A Fir 'registry' of its own: an image's digest is the hash of the Procfile it was built
    from, so the same source gives the same digest, as with the real builder."""

    REGISTRY = "registry.test"

    def __init__(self) -> None:
        self.requests: list[ImageBuildRequest] = []
        self.images: set[str] = set()
        self.fail_with: str | None = None

    def image_repository(self, app_id: str) -> str:
        return f"{self.REGISTRY}/apps/{app_id}"

    async def copy_image(self, image: str, app_id: str) -> str:
        self.images.add(f"{self.image_repository(app_id)}@{image.split('@', 1)[1]}")
        return self.image_repository(app_id)

    async def build_image(self, request: ImageBuildRequest, output: Any) -> ImageBuildResult:
        import hashlib

        self.requests.append(request)
        output("===> DETECTING")
        if self.fail_with is not None:
            output(f"ERROR: {self.fail_with}")
            raise BuildFailed(self.fail_with)
        procfile = request.source_dir / "Procfile"
        text = procfile.read_text() if procfile.exists() else ""
        types: dict[str, dict[str, Any]] = {}
        for line in text.splitlines():
            name, _, cmd = line.partition(":")
            if cmd.strip():
                types[name.strip()] = {
                    "name": name.strip(),
                    "display_cmd": f"bash -c '{cmd.strip()}'",
                    "command": f"/cnb/process/{name.strip()}",
                    "working_dir": "/workspace",
                    "default": name.strip() == "web",
                }
        output("===> EXPORTING")
        digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        repo = self.image_repository(request.app_id)
        self.images.add(f"{repo}@{digest}")
        return ImageBuildResult(
            image=f"{repo}@{digest}",
            digest=digest,
            image_repo=repo,
            process_types=types,
            buildpacks=[{"id": "heroku/procfile", "version": "0.1.0", "homepage": ""}],
            base_image_name="spruce/base:test",
            base_top_layer="sha256:" + "1" * 64,
            architecture="amd64",
        )

    async def image_exists(self, image: str) -> bool:
        return image in self.images


class FakeRoutes:
    def __init__(self) -> None:
        self.apps: dict[str, AppRoute] = {}
        self.by_app: dict[str, list[RouteCertificate]] = {}
        self.upserts = 0
        self.cert_updates = 0

    def replace_table(
        self,
        apps: Sequence[AppRoute],
        certificates: Mapping[str, Sequence[RouteCertificate]],
        default: RouteCertificate | None,
    ) -> None:
        self.apps = {a.id: a for a in apps}
        self.by_app = {k: list(v) for k, v in certificates.items()}

    def upsert_app(self, route: AppRoute) -> None:
        self.upserts += 1
        self.apps[route.id] = route

    def remove_app(self, app_id: str) -> None:
        self.apps.pop(app_id, None)

    def set_app_certificates(self, app_id: str, certificates: Sequence[RouteCertificate]) -> None:
        self.cert_updates += 1
        self.by_app[app_id] = list(certificates)
        if not certificates:
            del self.by_app[app_id]

    @property
    def certificates(self) -> list[RouteCertificate]:
        return [c for certs in self.by_app.values() for c in certs]


class FakeIssuer:
    def __init__(self) -> None:
        self.issued: list[tuple[str, ...]] = []

    def issue(self, hostnames: Sequence[str]) -> IssuedCertificate:
        self.issued.append(tuple(hostnames))
        names = ",".join(hostnames)
        return IssuedCertificate(f"CERT {names}", f"KEY {names}")


class Clock:
    """A settable 'now' for ACM's scheduler and the fake CA (starts at the real time)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class FakeAuthority:
    """services' CertificateAuthority in the test's process, as an ACME CA behaves: an order
    goes new -> authorizing (challenges written to the record first: one HTTP-01 token per
    plain name, a DNS-01 value per wildcard) -> finalizing -> valid, with a real certificate
    dated by the test's clock. Problems and refusals are scripted per hostname."""

    directory = "https://ca.test/directory"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.problems: dict[str, str] = {}  # hostname -> pre-check problem
        self.refusals: dict[str, str] = {}  # hostname -> the CA's validation failure
        self.rate_limited_until: dt.datetime | None = None
        self.poll = dt.timedelta(0)  # the wait after challenges are answered
        self.validity = dt.timedelta(days=90)
        self.checked: list[str] = []
        self.begun: list[tuple[str, ...]] = []
        self.steps: list[tuple[str, str | None]] = []  # (stage before, order URL)
        self.abandoned: list[tuple[str, ...]] = []
        self.answered: list[str] = []  # tokens the CA was asked to validate
        self.before_answer: Callable[[list[str]], None] = lambda tokens: None
        self.before_step: Callable[[str], None] = lambda stage: None
        self.restored: list[dict[str, Any]] = []
        self._account: dict[str, Any] = {"key": f"key-{uuid.uuid4().hex[:8]}", "uri": None}
        self._orders = itertools.count(1)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake ACME CA")])

    def account(self) -> dict[str, Any] | None:
        return dict(self._account)

    def restore_account(self, data: dict[str, Any]) -> None:
        self.restored.append(data)
        self._account = dict(data)

    def problem(self, hostname: str, dns_target: str, order_hostnames: Sequence[str]) -> str | None:
        self.checked.append(hostname)
        return self.problems.get(hostname)

    def begin(self, hostnames: Sequence[str]) -> OrderRecord:
        self.begun.append(tuple(hostnames))
        leaf = ec.generate_private_key(ec.SECP256R1())
        return OrderRecord(tuple(hostnames), _pem_key(leaf), self.clock())

    def advance(self, record: OrderRecord) -> OrderRecord:
        self.steps.append((record.stage, record.order_url))
        self.before_step(record.stage)
        self._account["uri"] = "https://ca.test/account/1"
        now = self.clock()
        if self.rate_limited_until is not None and now < self.rate_limited_until:
            return replace(
                record,
                retry_at=self.rate_limited_until,
                rate_limited=True,
                problem="The certificate authority asked Spruce to wait (rate limit): slow down",
            )
        if record.stage == "new":
            pubs = tuple(
                Publication("dns-01", f"_acme-challenge.{h[2:]}", f"txt-{h}")
                if h.startswith("*.")
                else Publication("http-01", f"token-{uuid.uuid4().hex[:12]}", f"ka-{h}")
                for h in record.hostnames
            )
            url = f"https://ca.test/order/{next(self._orders)}"
            return replace(record, stage="authorizing", order_url=url, publications=pubs)
        if record.stage == "authorizing":
            tokens = [p.name for p in record.publications if p.kind == "http-01"]
            self.before_answer(tokens)  # (the CA fetches them now)
            self.answered += tokens
            failed = tuple((h, self.refusals[h]) for h in record.hostnames if h in self.refusals)
            if failed:
                return replace(
                    record, stage="invalid", publications=(), failed=failed, problem=failed[0][1]
                )
            return replace(record, stage="finalizing", retry_at=now + self.poll)
        if record.stage == "finalizing":
            return replace(
                record,
                stage="valid",
                publications=(),
                retry_at=None,
                certificate_pem=self._certificate(record),
            )
        return record

    def abandon(self, record: OrderRecord) -> OrderRecord:
        self.abandoned.append(record.hostnames)
        return replace(record, stage="invalid", publications=(), problem="Order abandoned.")

    def _certificate(self, record: OrderRecord) -> str:
        key = serialization.load_pem_private_key(record.key_pem.encode(), None)
        now = self.clock()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, record.hostnames[0])]))
            .issuer_name(self._name)
            .public_key(key.public_key())  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + self.validity)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(h) for h in record.hostnames]),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


class FakeProvider:
    """An add-on service whose 'servers' are dict entries."""

    rotate_on_detach = False

    def __init__(
        self,
        name: str = "heroku-redis",
        config_var_name: str = "REDIS",
        color_prefix: str = "HEROKU_REDIS",
        aliases: tuple[str, ...] = (),
    ) -> None:
        self._name = name
        self._config_var_name = config_var_name
        self._color_prefix = color_prefix
        self._aliases = aliases
        self.addons: dict[str, dict[str, str]] = {}
        self.started: list[str] = []
        self.fail_start = False
        self.fail_provision = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def aliases(self) -> tuple[str, ...]:
        return self._aliases

    @property
    def human_name(self) -> str:
        return self._name.title()

    @property
    def config_var_name(self) -> str:
        return self._config_var_name

    @property
    def color_prefix(self) -> str:
        return self._color_prefix

    @property
    def plans(self) -> tuple[Plan, ...]:
        return (Plan("mini", "Mini", {"connections": 20}, default=True), Plan("big", "Big"))

    async def start(self, addon_ids_to_run: Iterable[str]) -> None:
        if self.fail_start:
            raise AddonError("the server binary is missing")
        self.started += list(addon_ids_to_run)

    async def stop(self) -> None:
        pass

    async def provision(
        self,
        addon_id: str,
        plan_name: str | None,
        options: dict[str, str] | None = None,
        region: str | None = None,
    ) -> dict[str, str]:
        if self.fail_provision:
            raise AddonError("no room for another server")
        self.addons[addon_id] = {"URL": f"fake://{addon_id}:secret@127.0.0.1/"}
        return dict(self.addons[addon_id])

    async def deprovision(self, addon_id: str) -> None:
        self.addons.pop(addon_id, None)

    async def change_plan(self, addon_id: str, plan_name: str) -> None:
        pass

    async def reset_credentials(self, addon_id: str) -> dict[str, str]:
        self.addons[addon_id] = {"URL": f"fake://{addon_id}:rotated@127.0.0.1/"}
        return dict(self.addons[addon_id])

    async def info(self, addon_id: str) -> list[tuple[str, str]]:
        return [("Plan", "Mini")]

    def key_value_store(self) -> None:
        return None

    def postgres(self) -> None:
        return None


class FakeTelemetry:
    """The TelemetryExporter: keeps the targets it is handed."""

    def __init__(self) -> None:
        self.targets: dict[str, Any] = {}
        self.usage: dict[str, list[Any]] = {}
        self.dropped: dict[str, int] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def set_target(self, target: Any) -> None:
        self.targets[target.app_id] = target

    def remove_app(self, app_id: str) -> None:
        self.targets.pop(app_id, None)

    def record_dyno_usage(self, app_id: str, usage: Any) -> None:
        self.usage[app_id] = list(usage)

    def drops(self, drain_id: str) -> int:
        return self.dropped.get(drain_id, 0)

    def receive(self, app_id: str, signal: str, payload: bytes, content_type: str) -> None:
        pass


@dataclass
class Harness:
    services: Services
    events: EventBus
    dynos: FakeDynos
    builds: FakeBuilds
    logs: FakeLogs
    routes: FakeRoutes
    issuer: FakeIssuer
    providers: list[FakeProvider] = field(default_factory=list)
    authority: FakeAuthority | None = None
    clock: Clock | None = None
    images: FakeImages = field(default_factory=FakeImages)
    telemetry: FakeTelemetry = field(default_factory=FakeTelemetry)


ACM_POLICY = Policy(
    max_attempts=3, first_retry=dt.timedelta(minutes=1), max_retry=dt.timedelta(minutes=10)
)


def make_services(
    store: Store,
    home: Path,
    providers: list[FakeProvider] | None = None,
    authority: FakeAuthority | None = None,
    clock: Clock | None = None,
) -> Harness:
    events = EventBus()
    logs = FakeLogs()
    dynos = FakeDynos()
    dynos.logs = logs
    builds = FakeBuilds()
    routes = FakeRoutes()
    issuer = FakeIssuer()
    providers = providers if providers is not None else [FakeProvider()]
    the_clock = clock or Clock()
    authority = authority or FakeAuthority(the_clock)
    images = FakeImages()
    telemetry = FakeTelemetry()
    services = Services(
        store,
        events,
        Ports(
            dynos=dynos,
            builds=builds,
            logs=logs,
            routes=routes,
            issuer=issuer,
            addon_providers=tuple(providers),
            authority=authority,
            images=images,
            telemetry=telemetry,
        ),
        ADDRESSES,
        home,
        ServiceSettings(acm=ACM_POLICY, clock=the_clock),
    )
    return Harness(
        services,
        events,
        dynos,
        builds,
        logs,
        routes,
        issuer,
        providers,
        authority=authority,
        clock=the_clock,
        images=images,
        telemetry=telemetry,
    )
