"""Smart-HTTP git endpoint (raw ASGI) that builds on push, like `git push heroku main`.

Routes, for bare repositories `<app>.git` (created on first authorized access; where each is
kept is the `repos` locator's choice: a space's app's under its region's root):
  GET  /<app>.git/info/refs?service=git-upload-pack|git-receive-pack
  POST /<app>.git/git-upload-pack
  POST /<app>.git/git-receive-pack

`git upload-pack` / `git receive-pack --stateless-rpc` do the git work. Every repo has a
pre-receive hook (hook.py) that calls back into this server over a unix socket; the server
runs `on_push` while the push is still open and relays its output to the hook, which git sends
to the pusher as `remote:` lines. `on_push` returning False makes the hook fail, so
receive-pack drops the pushed objects (quarantine) and leaves the ref untouched.
Pushes to one app are serialized: a second push waits for the first to finish, then is
rejected if the ref it was based on has moved. Pushes to other branches are kept, unbuilt.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .export import ExportError, export_tree
from .history import RepoOf, repo_locator
from .pktline import service_advertisement_header

log = logging.getLogger(__name__)

ZERO_SHA = "0" * 40
DEPLOY_REFS = ("refs/heads/main", "refs/heads/master")
SERVICES = ("git-upload-pack", "git-receive-pack")
_ROUTE = re.compile(r"^/(?P<app>[a-z0-9][a-z0-9-]{0,62})\.git/(?P<op>info/refs|git-upload-pack|git-receive-pack)$")  # fmt: skip
_HOOK = Path(__file__).with_name("hook.py")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Output = Callable[[str], None]


class GitAccessError(Exception):
    """Raised by `authorize`: the message is shown to the git user (404 unknown app, 403...)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class PushContext:
    app_name: str
    user: Any
    ref: str  # refs/heads/main or refs/heads/master
    old_sha: str  # ZERO_SHA on the first push
    new_sha: str
    repo_path: Path
    export: Callable[[Path], Awaitable[Path]]  # export(dest_dir): the pushed tree -> dest_dir


Authenticate = Callable[[str], Awaitable[Any]]
Authorize = Callable[[Any, str], Awaitable[None]]
OnPush = Callable[[PushContext, Output], Awaitable[bool]]


@dataclass
class _Push:
    app_name: str
    user: Any
    repo: Path
    lock: asyncio.Lock
    holds_lock: bool = False
    ref: str | None = None


@dataclass
class _AppState:
    init_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # creating the bare repo
    push_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one push at a time


class GitServer:
    def __init__(
        self,
        repos: str | os.PathLike[str] | RepoOf,
        authenticate: Authenticate,
        authorize: Authorize,
        on_push: OnPush,
        *,
        realm: str = "Spruce",
        git: str = "git",
    ) -> None:
        self.repo_of = repo_locator(repos if callable(repos) else Path(repos))
        self.authenticate = authenticate
        self.authorize = authorize
        self.on_push = on_push
        self.realm = realm
        self.git = git
        self._pushes: dict[str, _Push] = {}
        self._apps: dict[str, _AppState] = {}
        self._socket_dir: str | None = None
        self._hook_server: asyncio.AbstractServer | None = None
        self._start_lock = asyncio.Lock()

    async def export_head(self, app_name: str, dest_dir: Path) -> Path:
        """The app's pushed source (its repository's HEAD) as files in dest_dir."""
        repo = self.repo_of(app_name)
        if not (repo / "HEAD").exists():
            raise ExportError(f"Nothing was pushed to {app_name} yet: there is no source.")
        return await export_tree(repo, "HEAD", Path(dest_dir), git=self.git)

    # -- ASGI ---------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        root_path = scope.get("root_path", "")
        if root_path and path.startswith(root_path):  # mounted under a prefix
            path = path[len(root_path) :]
        match = _ROUTE.match(path)
        if match is None:
            await _text(send, 404, "Not found: git URLs look like /<app>.git\n")
            return
        app_name, op = match.group("app"), match.group("op")
        method = scope["method"]
        if op == "info/refs":
            if method not in ("GET", "HEAD"):
                await _text(send, 405, "Method not allowed\n")
                return
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            service = (query.get("service") or [""])[0]
            if service not in SERVICES:
                await _text(send, 403, "Only smart HTTP git is supported: upgrade git.\n")
                return
        else:
            if method != "POST":
                await _text(send, 405, "Method not allowed\n")
                return
            service = op
        user = await self._check_auth(scope, send)
        if user is None:
            return
        try:
            await self.authorize(user, app_name)
        except GitAccessError as exc:
            await _text(send, exc.status, exc.message.rstrip("\n") + "\n")
            return
        repo = await self._ensure_repo(app_name)
        if op == "info/refs":
            await self._advertise(send, service, repo)
        else:
            await self._rpc(scope, receive, send, service, repo, app_name, user)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def close(self) -> None:
        if self._hook_server is not None:
            self._hook_server.close()
            await self._hook_server.wait_closed()
            self._hook_server = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    # -- auth ---------------------------------------------------------------------------
    async def _check_auth(self, scope: Scope, send: Send) -> Any:
        header = _header(scope, b"authorization")
        password = None
        if header and header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if ":" in decoded:
                password = decoded.split(":", 1)[1]
        if not password:
            await self._unauthorized(send, "Authentication required: use your API key as password")
            return None
        user = await self.authenticate(password)
        if user is None:
            await self._unauthorized(send, "Invalid credentials: use your API key as password")
        return user

    async def _unauthorized(self, send: Send, message: str) -> None:
        realm = self.realm.replace('"', "")
        await _text(
            send, 401, message + "\n", [(b"www-authenticate", f'Basic realm="{realm}"'.encode())]
        )

    # -- repositories -------------------------------------------------------------------
    async def _ensure_repo(self, app_name: str) -> Path:
        repo = self.repo_of(app_name)
        state = self._apps.setdefault(app_name, _AppState())
        if not (repo / "HEAD").exists():
            async with state.init_lock:
                if not (repo / "HEAD").exists():
                    repo.parent.mkdir(parents=True, exist_ok=True)
                    await _git(
                        self.git, "init", "--bare", "--quiet", "--initial-branch=main", str(repo)
                    )
        self._install_hook(repo)
        return repo

    def _install_hook(self, repo: Path) -> None:
        hook = repo / "hooks" / "pre-receive"
        script = f"#!/bin/sh\nexec '{sys.executable}' '{_HOOK}'\n"
        if not hook.exists() or hook.read_text() != script:
            hook.parent.mkdir(exist_ok=True)
            tmp = hook.with_suffix(".tmp")
            tmp.write_text(script)
            tmp.chmod(0o755)
            os.replace(tmp, hook)

    # -- git protocol -------------------------------------------------------------------
    async def _advertise(self, send: Send, service: str, repo: Path) -> None:
        cmd = service.removeprefix("git-")
        out = await _git(self.git, cmd, "--stateless-rpc", "--advertise-refs", str(repo))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", f"application/x-{service}-advertisement".encode()),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": service_advertisement_header(service) + out}
        )

    async def _rpc(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        service: str,
        repo: Path,
        app_name: str,
        user: Any,
    ) -> None:
        if _header(scope, b"content-type") != f"application/x-{service}-request":
            await _text(send, 415, f"Expected Content-Type application/x-{service}-request\n")
            return
        env = dict(os.environ)
        push: _Push | None = None
        push_id = ""
        if service == "git-receive-pack":
            await self._ensure_hook_server()
            assert self._socket_dir is not None
            push_id = secrets.token_hex(16)
            state = self._apps.setdefault(app_name, _AppState())
            push = _Push(app_name=app_name, user=user, repo=repo, lock=state.push_lock)
            self._pushes[push_id] = push
            env.update(SPRUCE_GITSERVE_SOCKET=self._socket_path, SPRUCE_PUSH_ID=push_id)
        proc = await asyncio.create_subprocess_exec(
            self.git, service.removeprefix("git-"), "--stateless-rpc", str(repo),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        gzipped = _header(scope, b"content-encoding") in ("gzip", "x-gzip")
        feeder = asyncio.create_task(_feed(receive, proc, gzipped))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", f"application/x-{service}-result".encode()),
                        (b"cache-control", b"no-cache"),
                    ],
                }
            )
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            feeder.cancel()
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            if push is not None:
                self._pushes.pop(push_id, None)
                if push.ref is not None:
                    await self._point_head(repo, push.ref)
                if push.holds_lock:
                    push.lock.release()

    async def _point_head(self, repo: Path, ref: str) -> None:
        """Make HEAD name the deployed branch so `git clone` checks it out."""
        current = (
            await _git(self.git, "--git-dir", str(repo), "symbolic-ref", "HEAD", check=False)
        ).strip()
        exists = await _git(
            self.git,
            "--git-dir",
            str(repo),
            "rev-parse",
            "--verify",
            "-q",
            current.decode(),
            check=False,
        )
        if not exists.strip():
            await _git(self.git, "--git-dir", str(repo), "symbolic-ref", "HEAD", ref, check=False)

    # -- the pre-receive hook callback --------------------------------------------------
    @property
    def _socket_path(self) -> str:
        assert self._socket_dir is not None
        return os.path.join(self._socket_dir, "hook.sock")

    async def _ensure_hook_server(self) -> None:
        async with self._start_lock:
            if self._hook_server is None:
                self._socket_dir = tempfile.mkdtemp(prefix="spruce-git-")
                self._hook_server = await asyncio.start_unix_server(
                    self._on_hook, path=self._socket_path
                )

    async def _on_hook(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await reader.readline()
            request = json.loads(raw)
            ok = await self._handle_push(request, _HookOutput(writer))
        except Exception:  # the pusher gets a clean rejection; details go to our log
            log.exception("git push hook failed")
            ok = False
            _write(writer, {"line": " !     Push failed: internal error in the build server."})
        _write(writer, {"ok": ok})
        try:
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        except ConnectionError:
            pass

    async def _handle_push(self, request: Mapping[str, Any], output: _HookOutput) -> bool:
        push = self._pushes.get(str(request.get("push_id")))
        if push is None:
            output(" !     Unknown push; push again.")
            return False
        updates = [tuple(u) for u in request.get("updates", []) if len(u) == 3]
        deploys = [u for u in updates if u[2] in DEPLOY_REFS]
        for _old, new, ref in deploys:
            if new == ZERO_SHA:
                output(f" !     Deleting {ref.removeprefix('refs/heads/')} is not allowed.")
                return False
        if len(deploys) > 1:
            output(" !     Push either main or master, not both at once.")
            return False
        # Like Heroku, other branches (and tags) are kept without a build.
        for _old, new, ref in updates:
            if ref not in DEPLOY_REFS and ref.startswith("refs/heads/") and new != ZERO_SHA:
                branch = ref.removeprefix("refs/heads/")
                output("Pushed to non-main branch, skipping build.")
                output(f"To deploy it: git push <remote> {branch}:main")
        if not deploys:
            return True
        old, new, ref = deploys[0]
        if push.lock.locked() and not push.holds_lock:
            output(
                f"-----> Another push to {push.app_name} is in progress; waiting for it to finish..."
            )
        await push.lock.acquire()
        push.holds_lock = True
        current = (
            await _git(
                self.git,
                "--git-dir",
                str(push.repo),
                "rev-parse",
                "--verify",
                "-q",
                ref,
                check=False,
            )
        ).decode().strip() or ZERO_SHA
        if current != old:
            output(
                f" !     {ref.removeprefix('refs/heads/')} was updated by another push meanwhile."
            )
            output(" !     Fetch, merge and push again.")
            return False
        env = {k: str(v) for k, v in (request.get("env") or {}).items()}

        async def export(dest_dir: Path) -> Path:
            return await export_tree(push.repo, new, Path(dest_dir), env, git=self.git)

        ctx = PushContext(
            app_name=push.app_name, user=push.user, ref=ref, old_sha=old, new_sha=new,
            repo_path=push.repo, export=export,
        )  # fmt: skip
        accepted = bool(await self.on_push(ctx, output))
        if accepted:
            push.ref = ref
        return accepted


class _HookOutput:
    """The `output` callable given to on_push: one `remote:` line per call, thread-safe."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def __call__(self, line: str) -> None:
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self, line)
            return
        for part in str(line).splitlines() or [""]:
            _write(self._writer, {"line": part})


def _write(writer: asyncio.StreamWriter, message: Mapping[str, Any]) -> None:
    if not writer.is_closing():
        writer.write(json.dumps(message).encode() + b"\n")


async def _feed(receive: Receive, proc: asyncio.subprocess.Process, gzipped: bool) -> None:
    """Copy the request body (maybe gzip-encoded) into the git process's stdin."""
    assert proc.stdin is not None
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body = message.get("body", b"")
            if inflater is not None:
                body = inflater.decompress(body)
            if body:
                proc.stdin.write(body)
                await proc.stdin.drain()
            if not message.get("more_body", False):
                break
        if inflater is not None:
            proc.stdin.write(inflater.flush())
    except (ConnectionError, zlib.error):
        pass
    finally:
        proc.stdin.close()


async def _git(git: str, *args: str, check: bool = True) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        git, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {err.decode(errors='replace').strip()}")
    return out


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _text(
    send: Send, status: int, body: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = body.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": data})
