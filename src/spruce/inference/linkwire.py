"""`PlatformLink` over a unix socket: `LinkServer` (control plane) and `RemoteLink` (inference).

One connection per call. The caller writes one JSON line `{"method", "params"}` and reads one
JSON line back: `{"result": ...}` or `{"error": {"status", "message"}}`. `open_stdio` answers
`{"result": null}` and then the connection *is* the dyno's stdin/stdout, byte for byte, until
either side closes. The framing functions are pure (bytes in, values out) and unit-tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .link import (
    CommandResult,
    KeyGrant,
    Limits,
    LinkError,
    McpProcessType,
    PlatformLink,
    PostgresCredentials,
    StdioSession,
    Usage,
)

log = logging.getLogger(__name__)

MAX_LINE = 16 * 1024 * 1024  # command output can be large; this bounds one reply
METHODS = (
    "verify_key",
    "record_usage",
    "run_command",
    "mcp_process_types",
    "open_stdio",
    "postgres_credentials",
)


class WireError(ValueError):
    """A malformed frame."""


def encode(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if not line.endswith(b"\n"):
        raise WireError("truncated frame")
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise WireError(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise WireError("a frame is a JSON object")
    return obj


def decode_call(line: bytes) -> tuple[str, dict[str, Any]]:
    obj = decode(line)
    method, params = obj.get("method"), obj.get("params", {})
    if method not in METHODS or not isinstance(params, dict):
        raise WireError(f"unknown method {method!r}")
    return str(method), params


def result_of(method: str, value: Any) -> Any:
    """Rebuild the typed result of `method` from its JSON form."""
    if value is None:
        return None
    if method == "verify_key":
        limits = Limits(**value.pop("limits", {}))
        return KeyGrant(limits=limits, **value)
    if method == "run_command":
        return CommandResult(**value)
    if method == "mcp_process_types":
        return [McpProcessType(**v) for v in value]
    if method == "postgres_credentials":
        return PostgresCredentials(**value)
    return value


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class LinkServer:
    """Serves any `PlatformLink` on a unix socket (mode 0600: only the platform's user)."""

    def __init__(self, link: PlatformLink, path: Path) -> None:
        self.link = link
        self.path = Path(path)
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, self.path, limit=MAX_LINE)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        """Stop listening, and end the calls in flight (open stdio sessions included)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._handlers:  # a moment to finish (a closing session reaps its dyno)
            await asyncio.wait(list(self._handlers), timeout=2)
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            line = await reader.readline()
            if not line:
                return
            try:
                method, params = decode_call(line)
                if method == "open_stdio":
                    session = await self.link.open_stdio(**params)
                    writer.write(encode({"result": None}))
                    await writer.drain()
                    await _splice(reader, writer, session)
                    return
                result: Any = None
                if method == "record_usage":
                    await self.link.record_usage(Usage(**params["usage"]))
                else:
                    result = await getattr(self.link, method)(**params)
                writer.write(encode({"result": _plain(result)}))
            except LinkError as e:
                writer.write(encode({"error": {"status": e.status, "message": e.message}}))
            except (WireError, TypeError, KeyError) as e:
                writer.write(encode({"error": {"status": 400, "message": f"bad call: {e}"}}))
            except Exception:
                log.exception("platform link call failed")
                writer.write(encode({"error": {"status": 500, "message": "platform error"}}))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()


async def _splice(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: StdioSession
) -> None:
    """Copy caller -> dyno stdin and dyno stdout -> caller until either side ends."""

    async def upstream() -> None:
        while data := await reader.read(65536):
            session.writer.write(data)
            await session.writer.drain()
        with contextlib.suppress(OSError, AttributeError, RuntimeError):
            session.writer.write_eof()

    async def downstream() -> None:
        while data := await session.reader.read(65536):
            writer.write(data)
            await writer.drain()

    tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()


class RemoteLink:
    """The inference server's side: a `PlatformLink` that calls a `LinkServer`."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_unix_connection(self.path, limit=MAX_LINE)
        except OSError as e:
            raise LinkError(503, "the platform is not reachable") from e

    async def _call(self, method: str, params: dict[str, Any], timeout: float) -> Any:
        reader, writer = await self._open()
        try:
            writer.write(encode({"method": method, "params": params}))
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
            reply = decode(line)
        except (TimeoutError, WireError, ConnectionError) as e:
            raise LinkError(503, f"the platform did not answer {method}") from e
        finally:
            writer.close()
        if "error" in reply:
            err = reply["error"]
            raise LinkError(int(err.get("status", 500)), str(err.get("message", "")))
        return result_of(method, reply.get("result"))

    async def verify_key(self, key: str) -> KeyGrant | None:
        grant: KeyGrant | None = await self._call("verify_key", {"key": key}, self.timeout)
        return grant

    async def record_usage(self, usage: Usage) -> None:
        await self._call("record_usage", {"usage": dataclasses.asdict(usage)}, self.timeout)

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
        params = {
            "addon_id": addon_id,
            "app_name": app_name,
            "command": command,
            "size": size,
            "ttl_seconds": ttl_seconds,
            "env": dict(env or {}),
        }
        result: CommandResult = await self._call("run_command", params, ttl_seconds + 30)
        return result

    async def mcp_process_types(self, addon_id: str) -> list[McpProcessType]:
        result: list[McpProcessType] = await self._call(
            "mcp_process_types", {"addon_id": addon_id}, self.timeout
        )
        return result

    async def open_stdio(
        self, addon_id: str, server_id: str, *, size: str, ttl_seconds: int
    ) -> StdioSession:
        reader, writer = await self._open()
        params = {
            "addon_id": addon_id,
            "server_id": server_id,
            "size": size,
            "ttl_seconds": ttl_seconds,
        }
        try:
            writer.write(encode({"method": "open_stdio", "params": params}))
            await writer.drain()
            reply = decode(await asyncio.wait_for(reader.readline(), self.timeout))
        except (TimeoutError, WireError, ConnectionError) as e:
            writer.close()
            raise LinkError(503, "the platform did not open the MCP session") from e
        if "error" in reply:
            writer.close()
            err = reply["error"]
            raise LinkError(int(err.get("status", 500)), str(err.get("message", "")))

        async def closer() -> None:
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

        return StdioSession(reader, writer, closer)

    async def postgres_credentials(
        self, addon_id: str, app_name: str, attachment: str
    ) -> PostgresCredentials:
        params = {"addon_id": addon_id, "app_name": app_name, "attachment": attachment}
        result: PostgresCredentials = await self._call("postgres_credentials", params, self.timeout)
        return result
