"""`spruce mcp`: the MCP server over stdio, for editors and agent hosts.

The tools run in the platform's process (spruce/mcp/server.py); this process relays
stdio to `<api>/mcp` with the user's API key, message for message. It does the two things
only the user's machine can: `deploy_to_heroku`'s rootUri folder is packed and uploaded
here (POST /sources), and `pg_psql`'s `file` is read here, before the call goes on.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

ACCEPT = "application/vnd.heroku+json; version=3"
SKIP = {".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules"}
MAX_SOURCE = 512 * 1024 * 1024


class BridgeError(Exception):
    pass


def pack_folder(root: Path, app_json: str | None) -> bytes:
    """A gzipped tarball of `root` (without VCS and dependency folders), with `app_json`
    as its app.json when given (Heroku's tool deploys the appJson it is handed)."""
    if not root.is_dir():
        raise BridgeError(f"rootUri {root} is not a folder on this machine.")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part in SKIP for part in rel.parts) or path.is_symlink() and not path.exists():
                continue
            if app_json is not None and rel == Path("app.json"):
                continue
            if path.is_file() or path.is_dir():
                tar.add(path, arcname=str(rel), recursive=False)
            if buf.tell() > MAX_SOURCE:
                raise BridgeError(f"{root} is larger than {MAX_SOURCE // 2**20} MB packed.")
        if app_json is not None:
            data = app_json.encode()
            info = tarfile.TarInfo("app.json")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Bridge:
    def __init__(self, api_url: str, api_key: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key

    def _client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {self.api_key}", "User-Agent": "spruce-mcp"},
            timeout=httpx2.Timeout(30.0, read=None),
        )

    async def upload(self, http: httpx2.AsyncClient, data: bytes) -> str:
        resp = await http.post(f"{self.api_url}/sources", headers={"Accept": ACCEPT})
        if resp.status_code >= 400:
            raise BridgeError(f"POST /sources failed: {resp.json().get('message', resp.text)}")
        blob = resp.json()["source_blob"]
        put = await http.put(blob["put_url"], content=data)
        if put.status_code >= 400:
            raise BridgeError(f"uploading the source failed (HTTP {put.status_code}).")
        return str(blob["get_url"])

    async def rewrite(self, http: httpx2.AsyncClient, params: dict[str, Any]) -> None:
        """Do in place what only this machine can: pack rootUri, read pg_psql's file."""
        args = params.get("arguments")
        if not isinstance(args, dict):
            return
        name = params.get("name")
        if name == "deploy_to_heroku" and args.get("rootUri") and not args.get("tarballUri"):
            root = Path(str(args["rootUri"]).removeprefix("file://")).expanduser()
            app_json = args.get("appJson") if isinstance(args.get("appJson"), str) else None
            data = await anyio.to_thread.run_sync(pack_folder, root, app_json)
            args["tarballUri"] = await self.upload(http, data)
        elif name == "pg_psql" and args.get("file") and not args.get("command"):
            path = Path(str(args["file"])).expanduser()
            try:
                args["command"] = path.read_text()
            except OSError as e:
                raise BridgeError(f"cannot read {path}: {e.strerror}") from None
            del args["file"]

    async def run(self) -> None:
        async with (
            stdio_server() as (stdin, stdout),
            self._client() as http,
            streamable_http_client(f"{self.api_url}/mcp", http_client=http) as (up_read, up_write),
            anyio.create_task_group() as tg,
        ):

            async def down() -> None:
                async for msg in up_read:
                    if isinstance(msg, Exception):
                        continue  # the transport logs what it could not parse
                    await stdout.send(msg)

            async def answer_error(request_id: Any, message: str) -> None:
                result = types.CallToolResult(
                    content=[types.TextContent(text=message)], is_error=True
                ).model_dump(by_alias=True, exclude_none=True)
                reply = types.JSONRPCResponse(jsonrpc="2.0", id=request_id, result=result)
                await stdout.send(SessionMessage(reply))

            tg.start_soon(down)
            async for msg in stdin:
                if isinstance(msg, Exception):
                    continue
                m = msg.message
                if isinstance(m, types.JSONRPCRequest) and m.method == "tools/call" and m.params:
                    try:
                        await self.rewrite(http, m.params)
                    except BridgeError as e:
                        await answer_error(m.id, str(e))
                        continue
                await up_write.send(msg)
            tg.cancel_scope.cancel()


def serve(api_url: str, api_key: str) -> None:
    try:
        anyio.run(Bridge(api_url, api_key).run)
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001 - one sentence on stderr; stdout is the protocol
        print(f"spruce mcp: {type(e).__name__}: {e}", file=sys.stderr)
        raise SystemExit(1) from None


__all__ = ["Bridge", "BridgeError", "pack_folder", "serve"]
