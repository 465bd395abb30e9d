"""The control plane process (`spruce up`): one asyncio loop that runs the API, the git
endpoint and the runtime, and starts the router workers and add-on servers."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

import uvicorn
from starlette.routing import Mount

from spruce.addons import AddonError, AddonServices, PostgresProvider, RedisProvider, log_to_sink
from spruce.api.app import create_api
from spruce.certs.ca import InternalCA
from spruce.config import Endpoints, Settings
from spruce.dynos import DynoManager, DynoSettings
from spruce.logs import LogRouter
from spruce.netutil import free_port
from spruce.router.supervisor import RouterSupervisor
from spruce.router.timers import RouterTimers
from spruce.runtime.dynos import DynoRuntime
from spruce.runtime.git import make_git_server
from spruce.runtime.routes import RouteFeed
from spruce.services import Services
from spruce.services.builds import BuildSettings
from spruce.services.dynos import Dynos
from spruce.store.db import Store

log = logging.getLogger("spruce")


def tuning_from_env() -> dict[str, dict[str, Any]]:
    """Timers and limits for tests and small machines: SPRUCE_TUNING='{"dynos": {...}}'.

    Sections: dynos (spruce.dynos.DynoSettings), router (RouterTimers), build (BuildSettings).
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


def operator_key(services: Services, home: Path, email: str) -> str:
    """The first user's API key, created on the first start and kept (0600) in the home."""
    cred = home / "credentials.json"
    if cred.exists():
        data = json.loads(cred.read_text())
        try:
            services.accounts.authenticate(data["api_key"])
            return str(data["api_key"])
        except Exception:
            log.warning("the stored operator key is no longer valid; issuing a new one")
    user = services.accounts.first_operator()
    if user is None:
        user, key = services.accounts.create_user(email, name="Operator", operator=True)
    else:
        key = services.accounts.create_key(user.id, "operator key")
    fd = os.open(cred, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"email": user.email, "api_key": key}, f)
    return key


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = Path(settings.home).expanduser().resolve()
        self.lock = HomeLock(self.home)
        self._stop = asyncio.Event()
        self._servers: list[uvicorn.Server] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.store: Store | None = None
        self.services: Services | None = None
        self.endpoints: Endpoints | None = None
        self.router: RouterSupervisor | None = None
        self.route_feed: RouteFeed | None = None

    # -- lifecycle -------------------------------------------------------------
    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, 0o700)
        self.lock.acquire()
        self.store = Store.open(self.home)
        self.log_router = LogRouter()
        self.tuning = tuning = tuning_from_env()
        addon_log = log_to_sink(self.log_router, self._addon_app, "addons")
        self.addon_services = AddonServices(
            [
                RedisProvider(
                    self.home, log=addon_log, on_config_changed=self._addon_config_changed
                ),
                PostgresProvider(
                    self.home, log=addon_log, on_config_changed=self._addon_config_changed
                ),
            ]
        )
        self.services = Services(
            self.store,
            home=self.home,
            log_router=self.log_router,
            build_settings=BuildSettings(**tuning.get("build", {})),
            addon_services=self.addon_services,
            app_domain=self.settings.domain,
        )
        self.ca = InternalCA(self.home / "ca")
        dyno_settings = DynoSettings(**tuning.get("dynos", {}))
        # Slugs built with an interpreter outside /usr (pyenv's) need it inside the sandbox.
        dyno_settings.sandbox_ro_paths = tuple(dyno_settings.sandbox_ro_paths) + interpreter_roots()
        self.dyno_manager = DynoManager(
            self.home / "dynos",
            self.log_router,
            dyno_settings,
            on_change=self._dynos_changed,
            ca=self.ca,
        )
        self.dyno_runtime = DynoRuntime(self.services, self.dyno_manager, self.home)
        self.services.dynos = Dynos(self.services, self.dyno_runtime)
        assert self.services.builds is not None
        self.services.builds.release_phase = self.dyno_runtime.release_phase

    async def start(self) -> Endpoints:
        assert self.services is not None
        s = self.settings
        api_sock = bind_socket(s.host, s.api_port)
        git_sock = bind_socket(s.host, s.git_port)
        api_port = api_sock.getsockname()[1]
        api_url = _url("http", s.host, api_port)
        git_url = _url("https", s.host, git_sock.getsockname()[1])
        key = operator_key(self.services, self.home, s.operator_email)
        # One port for IPv4 and IPv6: pick it once when asked for "any".
        http_port = s.http_port or free_port(s.host)
        https_port = s.https_port or free_port(s.host)
        urls = {
            "api_url": api_url,
            "git_url": git_url,
            "web_url_template": f"http://{{app}}.{s.domain}:{http_port}/",
            "ca_pem": self.ca.cert_pem,
        }
        await self.log_router.start()
        for app in self.services.apps.all():
            self.services.logs.sync(app.id)
        assert self.services.addons is not None
        try:
            await self.addon_services.start(self.services.addons.running_ids())
        except AddonError as e:  # one broken add-on must not keep the platform down
            log.error("some add-on servers did not start: %s", e)
        await self.dyno_manager.start()
        for warning in self.dyno_manager.warnings:
            log.warning("%s", warning)
        self.git = make_git_server(self.services, self.home / "repos")
        api = create_api(self.services, urls, [Mount("/git", app=self.git)])  # type: ignore[arg-type]
        self._serve(api, [api_sock])
        cert = self.home / "certs" / "local.pem"
        keyfile = self.home / "certs" / "local.key"
        cert.parent.mkdir(exist_ok=True)
        hosts = sorted({"localhost", s.domain} - {""})
        ips = [s.host] if _is_ip(s.host) else ["127.0.0.1"]
        self.ca.issue_to_files(cert, keyfile, hosts, ips)
        self._serve(self.git, [git_sock], ssl=(cert, keyfile))
        await self._start_router(http_port, https_port)
        await self.dyno_runtime.converge_all()
        self.endpoints = Endpoints(
            api_url=api_url,
            router_http_url=_url("http", s.host, http_port),
            router_https_url=_url("https", s.host, https_port),
            git_url=urls["git_url"],
            api_key=key,
            app_domain=s.domain,
            ca_bundle=str(self.ca.cert_path),
        )
        self.endpoints.write(
            s.endpoints_path if s.home == self.home else self.home / "endpoints.json"
        )
        return self.endpoints

    async def _start_router(self, http_port: int, https_port: int) -> None:
        s = self.settings
        assert self.services is not None
        feed = RouteFeed(self.services, self.dyno_manager, None, s.domain, self.ca, self.home)  # type: ignore[arg-type]
        hosts = [s.host]
        if s.host == "127.0.0.1" and _ipv6_loopback():
            hosts.append("::1")  # Heroku's IPv6 is "coming soon"; Spruce listens on both
        supervisor = RouterSupervisor(
            http_addrs=[(h, http_port) for h in hosts],
            https_addrs=[(h, https_port) for h in hosts],
            workers=s.router_workers,
            log_sink=self.log_router,
            on_wake=feed.on_wake,
            timers=RouterTimers(**self.tuning.get("router", {})),
            run_dir=self.home / "run",
            on_activity=feed.on_activity,
            snapshot=feed.snapshot(),
        )
        feed.supervisor = supervisor
        await supervisor.start()
        self.router, self.route_feed = supervisor, feed

    def _addon_app(self, addon_id: str) -> str | None:
        try:
            return self.services.addons.get(addon_id).app_id  # type: ignore[union-attr]
        except Exception:
            return None

    def _addon_config_changed(self, addon_id: str, config: dict[str, str]) -> None:
        """A provider moved a server (its old port was taken): release the new URLs."""
        assert self.services is not None and self.services.addons is not None
        addon = self.services.addons.get(addon_id)
        self.services.addons.apply_config(None, addon, config, "Update {name} (server moved)")

    def _dynos_changed(self, app_id: str) -> None:
        """The dyno manager changed an app's dynos: the router's table follows."""
        if self.route_feed is not None:
            self.route_feed.mark(app_id)

    def _serve(
        self, app: Any, socks: list[socket.socket], ssl: tuple[Path, Path] | None = None
    ) -> None:
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            ssl_certfile=str(ssl[0]) if ssl else None,
            ssl_keyfile=str(ssl[1]) if ssl else None,
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign,attr-defined]
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
        for server in self._servers:
            server.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.router is not None:
            await self.router.stop()
        if getattr(self, "dyno_manager", None) is not None:
            await self.dyno_manager.shutdown()
        if getattr(self, "git", None) is not None:
            await self.git.close()
        if getattr(self, "addon_services", None) is not None:
            await self.addon_services.stop()
        if getattr(self, "log_router", None) is not None:
            await self.log_router.stop()
        if self.store is not None:
            self.store.dispose()
        try:
            (self.home / "endpoints.json").unlink()
        except FileNotFoundError:
            pass
        self.lock.release()


async def run_platform(settings: Settings, announce: Any = print) -> None:
    platform = Platform(settings)
    try:
        platform.prepare()
        ep = await platform.start()
        announce(ep)
        await platform.run_until_stopped()
    finally:
        await platform.stop()
