"""The control plane process (`spruce up`) and its composition root.

`Platform.build` makes every part once, each handed the parts it needs, with nothing filled
in afterwards; `start` brings them up in order and `stop` takes them down in reverse.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route

from spruce import dashboard, startup
from spruce.addons import PostgresProvider, Provider, RedisProvider
from spruce.addons.inference import InferenceProvider
from spruce.api.app import create_api
from spruce.api.http import NO_COUNTER, QueryCounter
from spruce.api.migrate_routes import migrate_route
from spruce.api.workers import ApiWorkers
from spruce.certs import acm_setup
from spruce.certs.ca import InternalCA
from spruce.certs.issuer import InternalIssuer
from spruce.compile import ClassicBuildRunner
from spruce.compile.fir import CnbImageRunner
from spruce.config import Endpoints, Settings
from spruce.dynos import DynoManager, DynoSettings
from spruce.dynos.backends.generations import Backend, GenerationBackends
from spruce.dynos.backends.setup import make_kubernetes_backend
from spruce.dynos.exec_setup import ExecHost, make_exec_host
from spruce.dynos.rendezvous import RendezvousServer
from spruce.gitserve import GitServer
from spruce.gitserve.history import GitHistory
from spruce.gitserve.push import make_git_server
from spruce.inference.client import InferenceClient
from spruce.inference.linkwire import LinkServer
from spruce.inference.platform_link import ServicesLink
from spruce.logs import LogRouter
from spruce.mcp.endpoint import McpEndpoint, mcp_first
from spruce.netutil import free_port
from spruce.registry import (
    ExternalRegistry,
    Registry,
    RegistryConfig,
    RegistryServer,
    RegistryUnavailable,
)
from spruce.registry.regional import RegionalRegistries
from spruce.router.measures import MeasuringLogSink
from spruce.router.sink import SupervisorSink, affinity_secret
from spruce.router.supervisor import RouterSupervisor
from spruce.router.timers import RouterTimers
from spruce.services import Ports, Services, ServiceSettings
from spruce.services.accounts import Accounts
from spruce.services.builds import BuildSettings
from spruce.services.events import (
    AddonActivity,
    AddonServerMoved,
    DynosChanged,
    DynosMeasured,
    EventBus,
    RequestsMeasured,
)
from spruce.services.metrics import MetricsSettings
from spruce.services.model import RouteCertificate
from spruce.services.regions import Regions, parse_region_option
from spruce.services.residency import app_region, repository_of
from spruce.services.review_apps import ReviewAppSettings
from spruce.services.settings import PlatformAddresses
from spruce.store.db import Store
from spruce.telemetry import DrainSettings, OtlpTelemetry

log = logging.getLogger("spruce")


def tuning_from_env() -> dict[str, dict[str, Any]]:
    """Timers and limits for tests and small machines: SPRUCE_TUNING='{"dynos": {...}}'.

    Sections: dynos (spruce.dynos.DynoSettings), router (RouterTimers), build (BuildSettings),
    metrics (spruce.services.metrics.MetricsSettings), acm (spruce.certs.acm_setup.TUNABLE:
    renewal and retry times in seconds), telemetry (spruce.telemetry.DrainSettings:
    batching, queues, export timeout, metrics interval), review_apps
    (spruce.services.review_apps.ReviewAppSettings: the length of a stale day, the sweep),
    kubernetes (the Kubernetes backend's KubernetesSettings: node_lost_after, drain_seconds,
    port_range), accounts (rate_limit: API requests an account may make an hour).
    """
    raw = os.environ.get("SPRUCE_TUNING")
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("SPRUCE_TUNING must be a JSON object")
    return data


def interpreter_roots() -> tuple[str, ...]:
    """Directories of language interpreters that built slugs link against (read-only in dynos)."""
    roots = {os.environ.get("PYENV_ROOT", ""), "/root/.pyenv", "/usr/local/pyenv", "/opt/pyenv"}
    return tuple(sorted(f"{r}/versions" for r in roots if r and os.path.isdir(f"{r}/versions")))


class HomeInUse(RuntimeError):
    pass


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def bind_unix_socket(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def inference_listen(settings: Settings, home: Path) -> tuple[str, int]:
    """Where the inference host listens: --inference-host, else a free loopback port picked
    once and kept (apps' INFERENCE_URL config vars hold it)."""
    from spruce.inference.config import ConfigError, parse_listen

    if settings.inference_host:
        try:
            return parse_listen(settings.inference_host)
        except ConfigError as e:
            raise OSError(f"--inference-host: {e}") from None
    kept = home / "addons" / "inference" / "port"
    if kept.exists() and kept.read_text().strip().isdigit():
        return "127.0.0.1", int(kept.read_text())
    port = free_port("127.0.0.1")
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(f"{port}\n")
    return "127.0.0.1", port


def data_listen(settings: Settings) -> tuple[str, int] | None:
    """--data-host as (host, port), or None."""
    from spruce.inference.config import ConfigError, parse_listen

    if not settings.data_host:
        return None
    try:
        return parse_listen(settings.data_host)
    except ConfigError as e:
        raise OSError(f"--data-host: {e}") from None


def _url(scheme: str, host: str, port: int) -> str:
    h = f"[{host}]" if ":" in host else host
    return f"{scheme}://{h}:{port}"


class HomeLock:
    """An exclusive lock on the home so two platforms never share one store."""

    def __init__(self, home: Path) -> None:
        self.path = home / "spruce.lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode().strip() or "?"
            os.close(fd)
            raise HomeInUse(
                f"Spruce is already running on {self.path.parent} (pid {pid}). "
                "Stop it first, or start another with --home."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def operator_key(accounts: Accounts, home: Path, email: str) -> str:
    """The first user's API key, created on the first start and kept (0600) in the home."""
    cred = home / "credentials.json"
    if cred.exists():
        data = json.loads(cred.read_text())
        try:
            accounts.authenticate(data["api_key"])
            return str(data["api_key"])
        except Exception:
            log.warning("the stored operator key is no longer valid; issuing a new one")
    user = accounts.first_operator()
    if user is None:
        user, key = accounts.create_user(email, name="Operator", operator=True)
    else:
        key = accounts.create_key(user.id, "operator key")
    fd = os.open(cred, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"email": user.email, "api_key": key}, f)
    return key


def _note_requests(backend: Backend) -> Callable[[dict[str, int]], None]:
    def note(counts: dict[str, int]) -> None:
        for app_id in counts:
            backend.note_request(app_id)

    return note


async def dashboard_home(request: Request) -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=307)


def make_registry(settings: Settings, home: Path, ca: InternalCA) -> Registry:
    """Where Fir images go: the operator's registry (--registry), else a supervised
    docker-registry with a certificate from the internal CA."""
    if settings.registry_url:
        try:
            return ExternalRegistry(
                RegistryConfig(
                    settings.registry_url,
                    settings.registry_username,
                    settings.registry_password,
                    settings.registry_ca,
                )
            )
        except ValueError as e:
            raise OSError(str(e)) from None
    return RegistryServer.from_internal_ca(
        home / "registry", ca, log=lambda line: log.info("registry: %s", line)
    )


def make_regional_registries(
    settings: Settings, main: Registry, home: Path, ca: InternalCA, store: Store
) -> RegionalRegistries | None:
    """A docker-registry per operator region for its spaces' Fir images, storage on the
    region's data root; none with the operator's --registry (its storage is theirs)."""
    if settings.registry_url:
        return None
    declared = tuple(parse_region_option(r) for r in settings.regions)
    names = tuple(r.name for r in Regions(declared).all if r.private_capable)
    return RegionalRegistries.on_internal_ca(
        main,
        home,
        names,
        ca,
        lambda app_id: app_region(store, app_id),
        lambda line: log.info("registry %s", line),
    )


@dataclass
class Parts:
    """The whole platform, each part built once (see Platform.build)."""

    store: Store
    events: EventBus
    ca: InternalCA
    log_router: LogRouter
    telemetry: OtlpTelemetry
    dynos: Backend
    providers: tuple[Provider, ...]
    inference_link: LinkServer
    """Where the inference server asks about keys, dynos and usage (a unix socket)."""
    registry: Registry
    router: RouterSupervisor
    services: Services
    git: GitServer
    api: Starlette
    mcp: McpEndpoint
    api_sock: socket.socket
    git_sock: socket.socket
    git_tls: tuple[Path, Path]
    endpoints: Endpoints
    data_sock: socket.socket | None = None
    """--data-host: the API (for Heroku's data API) over TLS on that address."""
    data_tls: tuple[Path, Path] | None = None
    exec_host: ExecHost | None = None
    """--exec-host: Heroku Exec's manager (the API over TLS) and SSH gateway."""
    api_workers: ApiWorkers | None = None
    """--api-workers: they accept on api_sock; this process serves the API on api_unix."""
    api_unix: socket.socket | None = None


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = Path(settings.home).expanduser().resolve()
        self.lock = HomeLock(self.home)
        self._stop = asyncio.Event()
        self._servers: list[uvicorn.Server] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.parts: Parts | None = None

    # -- the composition root --------------------------------------------------------------
    def prepare(self) -> None:
        """Take the home and build every part of the platform, once."""
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, 0o700)
        self.lock.acquire()
        self.parts = self.build()

    def build(self) -> Parts:
        s = self.settings
        home = self.home
        tuning = tuning_from_env()
        api_sock = bind_socket(s.host, s.api_port)
        git_sock = bind_socket(s.host, s.git_port)
        # One port for IPv4 and IPv6: pick it once when asked for "any".
        http_port = s.http_port or free_port(s.host)
        https_port = s.https_port or free_port(s.host)
        api_url = _url("http", s.host, api_sock.getsockname()[1])
        git_url = _url("https", s.host, git_sock.getsockname()[1])
        data_at = data_listen(s)
        data_sock: socket.socket | None = None
        data_url = ""
        if data_at is not None:
            try:
                data_sock = bind_socket(*data_at)
            except OSError as e:
                raise OSError(f"--data-host: {e} (port 443 needs root)") from None
            port = data_sock.getsockname()[1]
            data_url = _url("https", data_at[0], port).removesuffix(":443")
        addresses = PlatformAddresses(
            api_url=api_url,
            # the user part is ignored by the git endpoint (the key is the password)
            git_url=git_url.replace("https://", "https://heroku@")
            if s.heroku_git_names
            else git_url,
            web_url_template=f"http://{{app}}.{s.domain}:{http_port}/",
            app_domain=s.domain,
            data_url=data_url or None,
        )
        store = Store.open(home)
        (home / "run").mkdir(exist_ok=True)
        shared_limits = home / "run" / "api-limits" if s.api_workers > 0 else None
        events = EventBus()
        ca = InternalCA(home / "ca")
        telemetry = OtlpTelemetry(DrainSettings(**tuning.get("telemetry", {})))
        log_router = LogRouter(tap=telemetry.log_line)
        registry = make_registry(s, home, ca)
        regional = make_regional_registries(s, registry, home, ca, store)
        if regional is not None:
            registry = regional

        def repos(app_name: str) -> Path:  # a space's app's repository is on its region's root
            return repository_of(store, home, app_name)

        dyno_settings = DynoSettings(**tuning.get("dynos", {}))
        dyno_settings.regions_root = home / "regions"
        # Slugs built with an interpreter outside /usr (pyenv's) need it inside the sandbox.
        dyno_settings.sandbox_ro_paths = tuple(dyno_settings.sandbox_ro_paths) + interpreter_roots()

        def dynos_changed(app_id: str) -> None:
            events.publish(DynosChanged(app_id))

        # With --dyno-backend kubernetes, one rendezvous serves `heroku run` for both.
        rendezvous = (
            RendezvousServer(ca, home / "dynos" / "rendezvous", dyno_settings.rendezvous_host)
            if s.dyno_backend == "kubernetes"
            else None
        )
        local = DynoManager(
            home / "dynos",
            log_router,
            dyno_settings,
            on_change=dynos_changed,
            ca=ca,
            registry=registry.client,
            registry_for=regional.client_for if regional is not None else None,
            rendezvous=rendezvous,
            on_sample=lambda samples: events.publish(DynosMeasured(samples)),
        )
        dynos: Backend = local
        exec_host = make_exec_host(s.exec_host, home, ca, local, bind_socket)
        if rendezvous is not None:
            fir = make_kubernetes_backend(
                s, registry, log_router, dyno_settings, dynos_changed, rendezvous,
                kube_tuning=tuning.get("kubernetes", {}),
                on_sample=lambda samples: events.publish(DynosMeasured(samples)),
            )  # fmt: skip
            dynos = GenerationBackends(local, fir, rendezvous)

        def addon_log(addon_id: str, message: str) -> None:
            events.publish(AddonActivity(addon_id, message))

        def server_moved(addon_id: str, config: dict[str, str]) -> None:
            events.publish(AddonServerMoved(addon_id, config))

        inference = InferenceProvider(
            home,
            ca,
            listen=inference_listen(s, home),
            link_path=home / "run" / "inference-link.sock",
            models=s.models_file,
            log=addon_log,
            on_config_changed=server_moved,
            serve_always=bool(s.inference_host),
        )
        providers: tuple[Provider, ...] = (
            RedisProvider(home, log=addon_log, on_config_changed=server_moved),
            PostgresProvider(home, log=addon_log, on_config_changed=server_moved, ca=ca),
            inference,
        )
        hosts = [s.host]
        if s.host == "127.0.0.1" and _ipv6_loopback():
            hosts.append("::1")  # Heroku's IPv6 is "coming soon"; Spruce listens on both
        router = RouterSupervisor(
            http_addrs=[(h, http_port) for h in hosts],
            https_addrs=[(h, https_port) for h in hosts],
            workers=s.router_workers,
            # the router's lines also carry what it measured (the dashboard's graphs)
            log_sink=MeasuringLogSink(
                log_router, lambda samples: events.publish(RequestsMeasured(samples))
            ),
            on_wake=dynos.wake,
            timers=RouterTimers(**tuning.get("router", {})),
            run_dir=home / "run",
            on_activity=_note_requests(dynos),
            span_sink=telemetry.router_spans,
        )
        certs_dir = home / "certs"
        certs_dir.mkdir(exist_ok=True)
        local_cert, local_key = certs_dir / "local.pem", certs_dir / "local.key"
        ips = [s.host] if _is_ip(s.host) else ["127.0.0.1"]
        issued = ca.issue_to_files(
            local_cert, local_key, sorted({"localhost", s.domain} - {""}), ips
        )
        data_tls: tuple[Path, Path] | None = None
        if data_at is not None:
            data_tls = (certs_dir / "data.pem", certs_dir / "data.key")
            ca.issue_to_files(*data_tls, ["localhost"], [data_at[0]])
        services = Services(
            store,
            events,
            Ports(
                dynos=dynos,
                builds=ClassicBuildRunner(),
                logs=log_router,
                routes=SupervisorSink(router, affinity_secret(certs_dir / "affinity.secret")),
                issuer=InternalIssuer(ca, certs_dir / "apps"),
                addon_providers=providers,
                # ACM orders from --acme-directory, else from the internal CA itself
                authority=acm_setup.authority(s.acme, ca, tuning.get("acm", {})),
                images=CnbImageRunner(
                    registry.address, registry.client, registry.prefix, registries=regional
                ),
                telemetry=telemetry,
                history=GitHistory(repos),
                exec_gateway=exec_host.gateway if exec_host else None,
                inference=InferenceClient(ca.cert_path),
            ),
            addresses,
            home,
            ServiceSettings(
                build=BuildSettings(**tuning.get("build", {})),
                default_certificate=RouteCertificate(
                    "default", ("localhost",), issued.cert_pem, issued.key_pem
                ),
                acm=acm_setup.policy(s.acme, tuning.get("acm", {})),
                regions=tuple(parse_region_option(r) for r in s.regions),
                metrics=MetricsSettings(**tuning.get("metrics", {})),
                review_apps=ReviewAppSettings(**tuning.get("review_apps", {})),
                shared_limits=shared_limits,
                **tuning.get("accounts", {}),
            ),
        )
        inference_link = LinkServer(
            ServicesLink(services, inference, ca.cert_path), inference.link_path
        )
        git = make_git_server(services, repos)
        counter: QueryCounter = NO_COUNTER
        if os.environ.get("SPRUCE_DEBUG_QUERIES"):  # benchmarks/api: a Spruce-Queries header
            store.count_queries()
            counter = store.queries
        mcp = McpEndpoint(services)
        api = create_api(
            services,
            ca.cert_pem,
            log_router.asgi_app,
            [
                migrate_route(git.export_head, home / "work"),
                Mount("/git", app=git),  # type: ignore[arg-type]
                Route("/mcp", mcp),
                Route("/dashboard", dashboard_home, methods=["GET"]),
                dashboard.mount(services),
            ],
            query_counter=counter,
        )
        api_workers, api_unix = None, None
        if shared_limits is not None:
            api_unix = bind_unix_socket(home / "run" / "api.sock")
            api_workers = ApiWorkers(
                s.api_workers, api_sock, home / "run" / "api.sock", shared_limits,
                store.url, addresses, services.accounts.rate_limiter.limit,
            )  # fmt: skip
        endpoints = Endpoints(
            api_url=api_url,
            router_http_url=_url("http", s.host, http_port),
            router_https_url=_url("https", s.host, https_port),
            git_url=git_url,
            api_key="",
            app_domain=s.domain,
            ca_bundle=str(ca.cert_path),
            inference_url=inference.url,
            data_url=data_url,
            exec_url=exec_host.url if exec_host else "",
        )
        return Parts(
            store=store,
            events=events,
            ca=ca,
            log_router=log_router,
            telemetry=telemetry,
            dynos=dynos,
            providers=providers,
            inference_link=inference_link,
            registry=registry,
            router=router,
            services=services,
            git=git,
            api=api,
            mcp=mcp,
            api_sock=api_sock,
            git_sock=git_sock,
            git_tls=(local_cert, local_key),
            endpoints=endpoints,
            data_sock=data_sock,
            data_tls=data_tls,
            exec_host=exec_host,
            api_workers=api_workers,
            api_unix=api_unix,
        )

    # -- lifecycle -------------------------------------------------------------------------
    async def start(
        self, progress: Callable[[str, str], None] = lambda part, what: None
    ) -> Endpoints:
        """Bring the parts up in order; `progress(part, what)` hears of each once it is up."""
        assert self.parts is not None, "prepare() first"
        p = self.parts
        services = p.services
        key = operator_key(services.accounts, self.home, self.settings.operator_email)
        p.events.attach_loop(asyncio.get_running_loop())
        progress("store", startup.describe_store(p.store.url))
        await p.log_router.start()
        services.logs.sync_all()
        await p.telemetry.start()
        services.telemetry.sync_all()
        (self.home / "run").mkdir(exist_ok=True)
        await p.inference_link.start()
        addon_ids = services.addons.running_ids()
        for failure in await services.addons.start_servers():
            # one broken add-on must not keep the platform down
            log.error("an add-on server did not start: %s", failure)
        try:
            await p.registry.start()
        except RegistryUnavailable as e:
            if self.settings.registry_url:
                raise OSError(str(e)) from None  # the operator asked for this one
            log.error("Fir builds and dynos need the registry, which did not start: %s", e)
        progress("add-ons", startup.describe_addons(addon_ids))
        await p.dynos.start()
        for warning in p.dynos.warnings:
            log.warning("%s", warning)
        api = mcp_first(p.api, p.mcp)  # MCP calls first: agents call it most
        if p.api_workers is not None and p.api_unix is not None:
            self._serve(api, [p.api_unix])  # what the workers forward
            await p.api_workers.start()
        else:
            self._serve(api, [p.api_sock])
        served = f"{p.endpoints.api_url} (git over plain HTTP at /git, MCP at /mcp)"
        if p.api_workers is not None:
            served += f", {p.api_workers.count} read worker processes"
        progress("API", served)
        self._serve(p.git, [p.git_sock], ssl=p.git_tls)
        progress("git", p.endpoints.git_url)
        if p.data_sock is not None:
            self._serve(p.api, [p.data_sock], ssl=p.data_tls)
            progress("data API", f"{p.endpoints.data_url} (pg:* and redis:*)")
        if p.exec_host is not None:
            await p.exec_host.gateway.start()
            self._serve(p.api, [p.exec_host.sock], ssl=p.exec_host.tls)
            progress("Heroku Exec", f"{p.exec_host.url} (ps:exec, ps:copy, ps:forward, ps:socks)")
        services.routing.publish_all()
        await p.router.start()
        progress(
            "router",
            f"{startup.describe_workers(p.router.workers)} on {p.endpoints.router_http_url} "
            f"and {p.endpoints.router_https_url}",
        )
        await services.start()
        await services.deployments.converge_all()
        progress("dynos", startup.describe_dynos({a: p.dynos.dynos(a) for a in p.dynos.apps()}))
        endpoints = dataclasses.replace(p.endpoints, api_key=key)
        s = self.settings
        endpoints.write(s.endpoints_path if s.home == self.home else self.home / "endpoints.json")
        self.endpoints = endpoints
        return endpoints

    @property
    def services(self) -> Services:
        assert self.parts is not None
        return self.parts.services

    @property
    def router(self) -> RouterSupervisor:
        assert self.parts is not None
        return self.parts.router

    def _serve(
        self, app: Any, socks: list[socket.socket], ssl: tuple[Path, Path] | None = None
    ) -> None:
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            # Clients that keep a connection (CLIs in a REPL, agents, the dashboard) should
            # not race uvicorn's 5 s close: a request sent as it closes is lost.
            timeout_keep_alive=65,
            ssl_certfile=str(ssl[0]) if ssl else None,
            ssl_keyfile=str(ssl[1]) if ssl else None,
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        self._servers.append(server)
        self._tasks.append(asyncio.create_task(server.serve(sockets=socks)))

    async def run_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()

    async def stop(self) -> None:
        if self.lock.fd is None:
            return  # never started: another platform holds the home
        if self.parts is not None and self.parts.api_workers is not None:
            await self.parts.api_workers.stop()  # before the API they forward to
        for server in self._servers:
            server.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        p = self.parts
        if p is not None:
            await p.mcp.stop()
            await p.router.stop()
            await p.services.stop()
            if p.exec_host is not None:
                await p.exec_host.gateway.close()
                p.exec_host.sock.close()
            await p.dynos.shutdown()
            await p.registry.stop()
            await p.git.close()
            await p.services.addons.stop_servers()
            await p.telemetry.stop()
            await p.inference_link.close()
            await p.services.inference_calls.close()
            await p.log_router.stop()
            p.store.dispose()
            for sock in (p.api_sock, p.git_sock, p.data_sock, p.api_unix):
                if sock is not None:
                    sock.close()
        try:
            (self.home / "endpoints.json").unlink()
        except FileNotFoundError:
            pass
        self.lock.release()


async def run_platform(
    settings: Settings,
    announce: Any = print,
    progress: Callable[[str, str], None] = lambda part, what: None,
) -> None:
    platform = Platform(settings)
    try:
        platform.prepare()
        ep = await platform.start(progress)
        announce(ep)
        await platform.run_until_stopped()
    finally:
        await platform.stop()
