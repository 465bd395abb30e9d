"""The platform's `PlatformLink`: the inference server's questions answered by services.

An adapter in, like the API: keys come from the heroku-inference provider (it keeps their
hashes), apps and attachments from services, and every tool run is a real one-off dyno of
the target app, started through services' DynoBackend with `attach` and read through the
dyno rendezvous (TLS, the `heroku run` protocol), so its output never touches the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from spruce.addons.inference import InferenceProvider
from spruce.services import Services
from spruce.services.errors import ServiceError
from spruce.services.views import AppView

from .link import (
    CommandResult,
    KeyGrant,
    Limits,
    LinkError,
    McpProcessType,
    PostgresCredentials,
    StdioSession,
    Usage,
)
from .locallink import MAX_OUTPUT, namespace_for

log = logging.getLogger(__name__)

FIRST_CHUNK = b"rendezvous\r\n"
EXIT_MARK = "\uffff heroku-command-exit-status:".encode()
EOT = b"\x04"


def split_exit_status(data: bytes) -> tuple[bytes, int | None]:
    """The output without the rendezvous' exit line, and the status it gives."""
    at = data.rfind(EXIT_MARK)
    if at < 0:
        return data, None
    tail = data[at + len(EXIT_MARK) :].strip()
    try:
        status = int(tail.split()[0]) if tail else None
    except ValueError:
        status = None
    return data[:at], status


class ServicesLink:
    def __init__(self, services: Services, provider: InferenceProvider, ca_file: Path) -> None:
        self.services = services
        self.provider = provider
        self.ca_file = ca_file

    # -- keys and usage --------------------------------------------------------------------
    async def verify_key(self, key: str) -> KeyGrant | None:
        found = self.provider.grant(key)
        if found is None:
            return None
        addon_id, entry = found
        try:
            addon = self.services.addons.get_internal(addon_id)
        except ServiceError:
            return None
        model_id = self.provider.model_id(addon_id)
        spec = self.provider.spec(model_id)
        limits = Limits(spec.requests_per_minute, spec.tokens_per_minute) if spec else Limits()
        return KeyGrant(
            addon_id=addon.id,
            addon_name=addon.name,
            app_id=addon.app.id,
            app_name=addon.app.name,
            model_id=model_id,
            limits=limits,
            created_at=str(entry.get("created", "")),
        )

    async def record_usage(self, usage: Usage) -> None:
        await asyncio.to_thread(
            self.provider.record_usage,
            usage.addon_id,
            usage.kind,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            tool_calls=usage.tool_calls,
        )

    # -- apps --------------------------------------------------------------------------------
    def _attached_app(self, addon_id: str, app_name: str) -> AppView:
        try:
            app = self.services.apps.get_internal(app_name)
        except ServiceError:
            raise LinkError(404, f"Couldn't find that app ({app_name}).") from None
        if app.id not in self.services.addons.attached_app_ids(addon_id):
            raise LinkError(
                403,
                f"The model resource is not attached to {app.name}: attach it there "
                f"(heroku ai:models:attach) to run dynos in that app.",
            )
        return app

    async def _attach(
        self, addon_id: str, app: AppView, command: str, env: Mapping[str, str], size: str
    ) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
        """Start an attached one-off and meet it; (dyno name, its output, its input)."""
        addon = self.services.addons.get_internal(addon_id)
        try:
            info = await self.services.dynos.run_for_addon(
                app, command, dict(env), size, addon.name
            )
        except ServiceError as e:
            raise LinkError(e.status if 400 <= e.status < 500 else 502, e.message) from None
        assert info.attach_url, "an attached one-off has a rendezvous URL"
        where = urlsplit(info.attach_url)
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            reader, writer = await asyncio.open_connection(
                where.hostname, where.port, ssl=ctx, limit=MAX_OUTPUT * 2
            )
            writer.write(unquote(where.path.lstrip("/")).encode() + b"\r\n")
            await writer.drain()
            first = await reader.readexactly(len(FIRST_CHUNK))
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as e:
            await self.services.dynos.stop_for_addon(app, info.name)
            raise LinkError(502, f"could not attach to the one-off dyno: {e}") from None
        if first != FIRST_CHUNK:
            writer.close()
            raise LinkError(502, "the one-off dyno's rendezvous answered unexpectedly")
        return info.name, reader, writer

    async def run_command(
        self,
        addon_id: str,
        app_name: str,
        command: str,
        *,
        size: str,
        ttl_seconds: int,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        app = self._attached_app(addon_id, app_name)
        name, reader, writer = await self._attach(addon_id, app, command, env or {}, size)
        writer.write(EOT)  # no input: a command reading stdin sees its end
        chunks: list[bytes] = []
        size_read = 0
        timed_out = False

        async def read_all() -> None:
            nonlocal size_read
            while chunk := await reader.read(65536):
                if size_read <= MAX_OUTPUT:
                    chunks.append(chunk)
                size_read += len(chunk)

        try:
            await asyncio.wait_for(read_all(), ttl_seconds)
        except TimeoutError:
            timed_out = True
            await self.services.dynos.stop_for_addon(app, name)
        except (OSError, ssl.SSLError):
            pass  # the connection ended: what was read is the output
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)
        out, status = split_exit_status(b"".join(chunks))
        text = out.decode(errors="replace")
        if size_read > MAX_OUTPUT:
            text = text[:MAX_OUTPUT] + "\n[output truncated]"
        return CommandResult(
            exit_status=status if status is not None else -1,
            stdout=text,
            stderr="",  # a dyno's attached output is one stream, as with `heroku run`
            timed_out=timed_out,
        )

    async def mcp_process_types(self, addon_id: str) -> list[McpProcessType]:
        found = []
        for app_id in self.services.addons.attached_app_ids(addon_id):
            try:
                app = self.services.apps.get_internal(app_id)
            except ServiceError:
                continue
            for f in self.services.formation.list(app.id):
                if not f.type.startswith("mcp") or not f.command:
                    continue
                sid = f"{app.id}:{f.type}"
                found.append(
                    McpProcessType(
                        id=sid,
                        app_id=app.id,
                        app_name=app.name,
                        process_type=f.type,
                        command=f.command,
                        namespace=namespace_for(sid),
                        created_at=f.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        updated_at=f.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    )
                )
        return found

    async def open_stdio(
        self, addon_id: str, server_id: str, *, size: str, ttl_seconds: int
    ) -> StdioSession:
        for server in await self.mcp_process_types(addon_id):
            if server.id == server_id:
                break
        else:
            raise LinkError(404, f"no MCP server {server_id}")
        app = self._attached_app(addon_id, server.app_name)
        name, raw, writer = await self._attach(addon_id, app, server.command, {}, size)
        # MCP over stdio is one JSON message a line: pass lines on, but not the exit line
        lines = asyncio.StreamReader(limit=MAX_OUTPUT * 2)

        async def pump() -> None:
            try:
                while line := await raw.readline():
                    if not line.startswith(EXIT_MARK):
                        lines.feed_data(line)
            except (OSError, ssl.SSLError, ValueError):
                pass
            finally:
                lines.feed_eof()

        task = asyncio.create_task(pump())
        loop = asyncio.get_running_loop()
        killer = loop.call_later(
            ttl_seconds,
            lambda: asyncio.ensure_future(self.services.dynos.stop_for_addon(app, name)),
        )

        async def closer() -> None:
            killer.cancel()
            with contextlib.suppress(Exception):
                writer.write(EOT)
            try:
                await asyncio.wait_for(asyncio.shield(task), 3)
            except (TimeoutError, asyncio.CancelledError):
                await self.services.dynos.stop_for_addon(app, name)
            task.cancel()
            writer.close()

        return StdioSession(lines, writer, closer)

    async def postgres_credentials(
        self, addon_id: str, app_name: str, attachment: str
    ) -> PostgresCredentials:
        """The attachment's credentials; the tools only read through them (a READ ONLY
        transaction with a statement timeout)."""
        app = self._attached_app(addon_id, app_name)
        name = attachment.upper().removesuffix("_URL")
        url = self.services.releases.config(app.id).get(f"{name}_URL")
        if not url or not url.startswith(("postgres://", "postgresql://")):
            raise LinkError(404, f"{app.name} has no Postgres attachment named {name}")
        u = urlsplit(url)
        return PostgresCredentials(
            host=u.hostname or "127.0.0.1",
            port=u.port or 5432,
            database=unquote(u.path.lstrip("/")),
            user=unquote(u.username or ""),
            password=unquote(u.password or ""),
        )
