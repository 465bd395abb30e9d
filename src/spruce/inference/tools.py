"""Heroku tools for agents: each call runs in a one-off dyno of the target app.

- `dyno_run_command`: the operator-given `cmd`; the model's arguments fill `{name}`
  placeholders in it, shell-quoted, and the ones without a placeholder are appended as
  positional arguments in the order of the parameter schema.
- `code_exec_python|node|ruby|go`: the code travels in an environment variable (never
  through the shell's parser); `packages` are installed into a temporary directory first.
- `postgres_get_schema` / `postgres_run_query`: through the platform's read-only credentials
  for the app's attachment, in a READ ONLY transaction with a statement timeout.
- `html_to_markdown` / `pdf_to_markdown`: the page is fetched inside the dyno (the app's
  network, not the inference server's) and converted here with markdownify / pypdf.

A tool answers an MCP-shaped result: `{"content": [{"type": "text", "text"}], "isError"}`.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from .link import LinkError, PlatformLink

MAX_ROWS = 1000
MAX_FETCH = 10 * 1024 * 1024
PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],=<>!~@/^]*$")

HEROKU_TOOLS = (
    "dyno_run_command",
    "postgres_get_schema",
    "postgres_run_query",
    "code_exec_python",
    "code_exec_node",
    "code_exec_ruby",
    "code_exec_go",
    "html_to_markdown",
    "pdf_to_markdown",
)
_CODE_PARAMS = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "The program to run."},
        "packages": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["code"],
}
_URL_PARAMS = {
    "type": "object",
    "properties": {"url": {"type": "string", "description": "An http(s) URL."}},
    "required": ["url"],
}
_DESCRIPTIONS = {
    "postgres_get_schema": "Get the schema (tables and columns) of the app's Postgres database.",
    "postgres_run_query": "Run a read-only SQL query on the app's Postgres database.",
    "code_exec_python": "Run Python code and return its exit status, stdout and stderr.",
    "code_exec_node": "Run Node.js code and return its exit status, stdout and stderr.",
    "code_exec_ruby": "Run Ruby code and return its exit status, stdout and stderr.",
    "code_exec_go": "Run a Go program (package main) and return its exit status and output.",
    "html_to_markdown": "Fetch a web page and return it as Markdown.",
    "pdf_to_markdown": "Fetch a PDF document and return its text as Markdown.",
}
_RUNNERS = {
    "python": 'python3 -c "$SPRUCE_TOOL_CODE"',
    "node": 'node -e "$SPRUCE_TOOL_CODE"',
    "ruby": 'ruby -e "$SPRUCE_TOOL_CODE"',
    "go": 'd=$(mktemp -d) && printf %s "$SPRUCE_TOOL_CODE" > "$d/main.go" && go run "$d/main.go"',
}
_INSTALLERS = {
    "python": 'p=$(mktemp -d) && python3 -m pip install -q --target "$p" {pkgs} >&2 && export PYTHONPATH="$p"',
    "node": 'p=$(mktemp -d) && npm install -s --prefix "$p" {pkgs} >&2 && export NODE_PATH="$p/node_modules"',
    "ruby": "gem install --silent {pkgs} >&2",
    "go": "true",
}
_FETCH = (
    "python3 -c 'import os,sys,base64,urllib.request as u;"
    'r=u.urlopen(os.environ["SPRUCE_TOOL_URL"],timeout=float(os.environ["SPRUCE_TOOL_TIMEOUT"]));'
    f"sys.stdout.write(base64.b64encode(r.read({MAX_FETCH})).decode())'"
)


@dataclass
class ToolSpec:
    """One tool of an agent request, as validated by agents.plan."""

    type: str  # heroku_tool | mcp
    name: str  # heroku tool name, or the MCP tool's namespaced name
    function: str  # the name the model sees
    description: str
    parameters: dict[str, Any]
    app_name: str
    size: str
    ttl_seconds: int
    max_calls: int
    tool_params: dict[str, Any] = field(default_factory=dict)
    calls: int = 0


def text_result(text: str, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


def describe(name: str, tool_params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The description and parameter schema a Heroku tool shows the model."""
    if name == "dyno_run_command":
        desc = tool_params.get("description") or f"Run `{tool_params.get('cmd', '')}` in a dyno."
        params = tool_params.get("parameters") or {"type": "object", "properties": {}}
        return str(desc), dict(params)
    if name == "postgres_get_schema":
        return _DESCRIPTIONS[name], {"type": "object", "properties": {}}
    if name == "postgres_run_query":
        return _DESCRIPTIONS[name], {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "One SQL statement."}},
            "required": ["query"],
        }
    if name.startswith("code_exec_"):
        return _DESCRIPTIONS[name], _CODE_PARAMS
    return _DESCRIPTIONS[name], _URL_PARAMS


def command_line(cmd: str, parameters: dict[str, Any], args: dict[str, Any]) -> str:
    """`cmd` with the model's arguments, every value shell-quoted."""

    def text(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v)

    used: set[str] = set()

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in args:
            used.add(name)
            return shlex.quote(text(args[name]))
        return m.group(0)

    line = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", fill, cmd)
    order = list((parameters.get("properties") or {}).keys())
    rest = [k for k in order if k in args and k not in used]
    rest += sorted(k for k in args if k not in used and k not in order)
    return " ".join([line, *(shlex.quote(text(args[k])) for k in rest)])


class HerokuTools:
    def __init__(self, link: PlatformLink) -> None:
        self.link = link

    async def run(self, addon_id: str, tool: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
        try:
            if tool.name == "dyno_run_command":
                return await self._command(addon_id, tool, args)
            if tool.name.startswith("code_exec_"):
                return await self._code(addon_id, tool, args)
            if tool.name == "postgres_get_schema":
                return await self._schema(addon_id, tool)
            if tool.name == "postgres_run_query":
                return await self._query(addon_id, tool, args)
            return await self._document(addon_id, tool, args)
        except LinkError as e:
            return text_result(e.message, True)

    async def _command(self, addon_id: str, tool: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
        cmd = tool.tool_params.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            return text_result("dyno_run_command needs tool_params.cmd", True)
        line = command_line(cmd, tool.parameters, args)
        res = await self.link.run_command(
            addon_id, tool.app_name, line, size=tool.size, ttl_seconds=tool.ttl_seconds
        )
        text = res.stdout + (("\n" if res.stdout else "") + res.stderr if res.stderr else "")
        if res.timed_out:
            text += f"\n[killed after {tool.ttl_seconds} s]"
        return text_result(text, res.exit_status != 0 or res.timed_out)

    async def _code(self, addon_id: str, tool: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
        lang = tool.name.removeprefix("code_exec_")
        code = args.get("code")
        if not isinstance(code, str):
            return text_result("code is required", True)
        packages = args.get("packages") or []
        if not isinstance(packages, list) or not all(
            isinstance(p, str) and PACKAGE.match(p) for p in packages
        ):
            return text_result("packages must be a list of package names", True)
        line = _RUNNERS[lang]
        if packages:
            pkgs = " ".join(shlex.quote(p) for p in packages)
            line = _INSTALLERS[lang].format(pkgs=pkgs) + " && " + line
        res = await self.link.run_command(
            addon_id,
            tool.app_name,
            line,
            size=tool.size,
            ttl_seconds=tool.ttl_seconds,
            env={"SPRUCE_TOOL_CODE": code},
        )
        stderr = res.stderr + (f"\n[killed after {tool.ttl_seconds} s]" if res.timed_out else "")
        out = {"returncode": res.exit_status, "stdout": res.stdout, "stderr": stderr}
        return text_result(json.dumps(out), False)

    async def _connect(self, addon_id: str, tool: ToolSpec) -> Any:
        import psycopg

        attachment = str(tool.tool_params.get("db_attachment") or "DATABASE")
        creds = await self.link.postgres_credentials(addon_id, tool.app_name, attachment)
        conn = await psycopg.AsyncConnection.connect(
            **creds.connect_kwargs(), connect_timeout=10, autocommit=False
        )
        await conn.execute("SET TRANSACTION READ ONLY")
        await conn.execute(f"SET LOCAL statement_timeout = {int(tool.ttl_seconds * 1000)}")
        return conn

    async def _schema(self, addon_id: str, tool: ToolSpec) -> dict[str, Any]:
        import psycopg

        try:
            conn = await self._connect(addon_id, tool)
            async with conn:
                cur = await conn.execute(
                    "SELECT table_schema, table_name, column_name, data_type, is_nullable "
                    "FROM information_schema.columns WHERE table_schema NOT IN "
                    "('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg_toast%' "
                    "ORDER BY table_schema, table_name, ordinal_position"
                )
                rows = await cur.fetchall()
        except psycopg.Error as e:
            return text_result(f"database error: {e}", True)
        tables: dict[str, list[str]] = {}
        for schema, table, column, dtype, nullable in rows:
            name = table if schema == "public" else f"{schema}.{table}"
            null = "" if nullable == "YES" else " not null"
            tables.setdefault(name, []).append(f"{column} {dtype}{null}")
        text = "\n".join(f"{t}({', '.join(cols)})" for t, cols in tables.items())
        return text_result(text or "(no tables)")

    async def _query(self, addon_id: str, tool: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
        import psycopg

        query = args.get("query")
        if not isinstance(query, str) or not query.strip():
            return text_result("query is required", True)
        try:
            conn = await self._connect(addon_id, tool)
            async with conn:
                cur = await conn.execute(query.encode())  # bytes: no client-side % parsing
                if cur.description is None:
                    return text_result(json.dumps({"rowcount": cur.rowcount}))
                columns = [d.name for d in cur.description]
                rows = await cur.fetchmany(MAX_ROWS + 1)
        except psycopg.Error as e:
            return text_result(f"database error: {e}", True)
        out = {
            "columns": columns,
            "rows": [list(r) for r in rows[:MAX_ROWS]],
            "truncated": len(rows) > MAX_ROWS,
        }
        return text_result(json.dumps(out, default=str))

    async def _document(
        self, addon_id: str, tool: ToolSpec, args: dict[str, Any]
    ) -> dict[str, Any]:
        url = args.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return text_result("url must be an http(s) URL", True)
        res = await self.link.run_command(
            addon_id,
            tool.app_name,
            _FETCH,
            size=tool.size,
            ttl_seconds=tool.ttl_seconds,
            env={"SPRUCE_TOOL_URL": url, "SPRUCE_TOOL_TIMEOUT": str(tool.ttl_seconds)},
        )
        if res.exit_status != 0:
            return text_result(f"fetching {url} failed: {res.stderr.strip()[-500:]}", True)
        try:
            data = base64.b64decode(res.stdout, validate=True)
        except (binascii.Error, ValueError):
            return text_result(f"fetching {url} returned garbled data", True)
        if tool.name == "pdf_to_markdown":
            return pdf_markdown(data)
        return text_result(html_markdown(data.decode("utf-8", errors="replace")))


def html_markdown(html: str) -> str:
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()  # markdownify would keep their text
    md = MarkdownConverter(heading_style="ATX").convert_soup(soup)
    return re.sub(r"\n{3,}", "\n\n", md).strip()


def pdf_markdown(data: bytes) -> dict[str, Any]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [p.extract_text() or "" for p in reader.pages]
    except (PyPdfError, ValueError, OSError) as e:
        return text_result(f"not a readable PDF: {e}", True)
    parts = [f"## Page {i}\n\n{t.strip()}" for i, t in enumerate(pages, 1)]
    return text_result("\n\n".join(parts).strip())
