"""`spruce mcp`: the MCP server over stdio, for editors and agent hosts.

The tools run in the platform's process (spruce/mcp/server.py); this process relays
stdio to `<api>/mcp` (Streamable HTTP) with the user's API key. It is a byte relay: each
newline-delimited JSON-RPC message from the host is POSTed as it came, and each message
of the answer (a JSON body, or the events of an SSE stream) is written back as one line,
unparsed. It reads a message only to route it (its id and method) and for the two things
only the user's machine can do: `deploy_to_heroku`'s rootUri folder is packed and
uploaded here (POST /sources), and `pg_psql`'s `file` is read here, before the call goes
on. Spruce's server sends nothing outside a request's own stream (no sampling, no list
changes), so the relay opens no standalone GET stream.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import anyio
import httpx2

ACCEPT = "application/vnd.heroku+json; version=3"
SKIP = {".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules"}
MAX_SOURCE = 512 * 1024 * 1024
SESSION = "mcp-session-id"
VERSION = "mcp-protocol-version"
INTERNAL_ERROR, PARSE_ERROR = -32603, -32700
# Only a tools/call of these is read closer (and maybe rewritten) on its way up.
LOCAL_TOOLS = (b"deploy_to_heroku", b"pg_psql")
EOF_GRACE = 2.0  # seconds answers in flight may take once the host closes stdin


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
        self.session_id: str | None = None
        self.protocol_version: str | None = None

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

    async def rewrite(self, http: httpx2.AsyncClient, params: dict[str, Any]) -> bool:
        """Do in place what only this machine can: pack rootUri, read pg_psql's file.
        True if `params` changed."""
        args = params.get("arguments")
        if not isinstance(args, dict):
            return False
        name = params.get("name")
        if name == "deploy_to_heroku" and args.get("rootUri") and not args.get("tarballUri"):
            root = Path(str(args["rootUri"]).removeprefix("file://")).expanduser()
            app_json = args.get("appJson") if isinstance(args.get("appJson"), str) else None
            data = await anyio.to_thread.run_sync(pack_folder, root, app_json)
            args["tarballUri"] = await self.upload(http, data)
            return True
        if name == "pg_psql" and args.get("file") and not args.get("command"):
            path = Path(str(args["file"])).expanduser()
            try:
                args["command"] = path.read_text()
            except OSError as e:
                raise BridgeError(f"cannot read {path}: {e.strerror}") from None
            del args["file"]
            return True
        return False

    # -- the relay ----------------------------------------------------------------------
    @staticmethod
    def write(line: bytes) -> None:
        """One message to the host: a line on stdout (written whole, then flushed)."""
        out = sys.stdout.buffer
        out.write(line.rstrip(b"\r\n") + b"\n")
        out.flush()

    def answer_error(self, request_id: Any, code: int, message: str) -> None:
        error = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
        self.write(json.dumps(error).encode())

    def answer_tool_error(self, request_id: Any, message: str) -> None:
        result = {"content": [{"type": "text", "text": message}], "isError": True}
        self.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).encode())

    def headers(self) -> dict[str, str]:
        h = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if self.session_id:
            h[SESSION] = self.session_id
        if self.protocol_version:
            h[VERSION] = self.protocol_version
        return h

    async def post(
        self, http: httpx2.AsyncClient, body: bytes, request_id: Any, initialize: bool
    ) -> None:
        """POST one message; write back every message of the answer. A request that gets
        no answer (HTTP error, lost connection) gets a JSON-RPC error, so the host never
        waits forever."""
        is_request = request_id is not None
        try:
            async with http.stream(
                "POST", f"{self.api_url}/mcp", content=body, headers=self.headers()
            ) as resp:
                if initialize and resp.headers.get(SESSION):
                    self.session_id = resp.headers[SESSION]
                if resp.status_code >= 400:
                    if is_request:
                        self.answer_error(request_id, INTERNAL_ERROR, await _http_error(resp))
                    return
                kind = resp.headers.get("content-type", "")
                answered = False
                if kind.startswith("text/event-stream"):
                    async for event in httpx2.EventSource(resp, max_event_size=None):
                        if event.data:
                            data = event.data.encode()
                            if initialize:
                                self._note_version(data)
                            self.write(data)
                            if _is_answer(data):
                                answered = True
                                break  # the request's stream ends with its answer
                elif kind.startswith("application/json"):
                    data = await resp.aread()
                    if data.strip():
                        if initialize:
                            self._note_version(data)
                        self.write(data)
                        answered = True
                if is_request and not answered:
                    self.answer_error(request_id, INTERNAL_ERROR, "The platform sent no answer.")
        except httpx2.HTTPError as e:
            if is_request:
                self.answer_error(
                    request_id, INTERNAL_ERROR, f"Cannot reach Spruce at {self.api_url}: {e}"
                )

    def _note_version(self, data: bytes) -> None:
        """The protocol version the initialize answer agreed, for the requests after it."""
        try:
            result = json.loads(data).get("result") or {}
        except ValueError:
            return
        if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
            self.protocol_version = result["protocolVersion"]

    async def relay(self, http: httpx2.AsyncClient, line: bytes, tg: Any) -> None:
        """One line from the host: routed by its id and method, passed on as it came
        (unless a local tool's arguments were rewritten)."""
        try:
            msg = json.loads(line)
        except ValueError:
            self.answer_error(None, PARSE_ERROR, "Parse error: a line that is not JSON.")
            return
        if not isinstance(msg, dict):
            tg.start_soon(self.post, http, line, None, False)  # a batch: passed on as it is
            return
        method, request_id = msg.get("method"), msg.get("id")
        if method is None:
            request_id = None  # a response of the host's (to a server request): no answer
        if method == "tools/call" and any(t in line for t in LOCAL_TOOLS):
            tg.start_soon(self.local_call, http, msg, line, request_id)
        elif method == "initialize":
            await self.post(http, line, request_id, True)  # the session id comes with it
        elif request_id is None:
            await self.post(http, line, None, False)  # notifications keep their order
        else:
            tg.start_soon(self.post, http, line, request_id, False)

    async def local_call(
        self, http: httpx2.AsyncClient, msg: dict[str, Any], line: bytes, request_id: Any
    ) -> None:
        """A call of a tool with work to do here first (a folder to pack, a file to read),
        in a task of its own: other calls go on meanwhile."""
        params = msg.get("params")
        if isinstance(params, dict):
            try:
                if await self.rewrite(http, params):
                    line = json.dumps(msg).encode()
            except BridgeError as e:
                self.answer_tool_error(request_id, str(e))
                return
        await self.post(http, line, request_id, False)

    async def run(self) -> None:
        stdin = anyio.wrap_file(sys.stdin.buffer)
        async with self._client() as http:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    async for line in stdin:
                        if line.strip():
                            await self.relay(http, line, tg)
                    # The host closed stdin: answers on their way get a moment to arrive.
                    scope.deadline = anyio.current_time() + EOF_GRACE
            if self.session_id:
                try:
                    with anyio.fail_after(5):
                        await http.delete(f"{self.api_url}/mcp", headers=self.headers())
                except (httpx2.HTTPError, TimeoutError):
                    pass


def _is_answer(data: bytes) -> bool:
    """Is this message of a request's stream its answer, not a notification (or a
    request of the server's)? Told from the bytes, unparsed: an answer's top-level
    `"result":` or `"error":` key comes before any `"method":` (the mcp library writes
    jsonrpc and id first, then result, error or method)."""
    method = data.find(b'"method":')
    answer = min(
        (i for i in (data.find(b'"result":'), data.find(b'"error":')) if i >= 0), default=-1
    )
    return answer >= 0 and (method < 0 or answer < method)


async def _http_error(resp: httpx2.Response) -> str:
    body = await resp.aread()
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        error = doc.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])  # a JSON-RPC error
        if isinstance(doc.get("message"), str):
            return f"Spruce answered HTTP {resp.status_code}: {doc['message']}"
    return f"Spruce answered HTTP {resp.status_code}."


def serve(api_url: str, api_key: str) -> None:
    try:
        anyio.run(Bridge(api_url, api_key).run)
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001 - one sentence on stderr; stdout is the protocol
        print(f"spruce mcp: {type(e).__name__}: {e}", file=sys.stderr)
        raise SystemExit(1) from None


__all__ = ["Bridge", "BridgeError", "pack_folder", "serve"]
