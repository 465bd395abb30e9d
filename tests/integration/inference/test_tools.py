"""The Heroku tools themselves, run through LocalLink's one-off "dynos" (no model involved)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from inference_harness import LocalLink, grant, local_app

from spruce.inference.link import PostgresCredentials
from spruce.inference.tools import HerokuTools, ToolSpec

HTML = b"<html><body><h1>Spruce</h1><p>A <b>self-hosted</b> Heroku.</p><script>x()</script></body></html>"


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with one line of text, offsets computed (no library writes text)."""
    stream = f"BT /F1 18 Tf 40 100 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


class Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body, ctype = (
            (tiny_pdf("Hello from a PDF"), "application/pdf")
            if self.path.endswith(".pdf")
            else (HTML, "text/html")
        )
        if self.path == "/missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def tools(tmp_path: Path) -> tuple[HerokuTools, LocalLink]:
    link = LocalLink()
    app = local_app(tmp_path, "demo")
    link.add_app(app)
    link.add_key("k", grant(app, "m", "addon-1"))
    return HerokuTools(link), link


def spec(name: str, **kw: Any) -> ToolSpec:
    return ToolSpec(
        "heroku_tool",
        name,
        name,
        "",
        kw.pop("parameters", {}),
        "demo",
        "standard-1x",
        kw.pop("ttl", 30),
        3,
        kw,
    )


class Loop:
    """One event loop for the module, in a thread: subprocess transports outlive a call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


LOOP = Loop()


def teardown_module() -> None:
    LOOP.stop()


def run(t: HerokuTools, s: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
    coro = t.run("addon-1", s, args)
    return asyncio.run_coroutine_threadsafe(coro, LOOP.loop).result(60)


def test_code_exec_python_returns_status_and_output(tools: tuple[HerokuTools, LocalLink]) -> None:
    t, link = tools
    out = run(
        t,
        spec("code_exec_python"),
        {"code": "import sys\nprint(6 * 7)\nprint('oops', file=sys.stderr)\nsys.exit(3)"},
    )
    assert out["isError"] is False
    assert json.loads(out["content"][0]["text"]) == {
        "returncode": 3,
        "stdout": "42\n",
        "stderr": "oops\n",
    }
    # the code never went through a shell's parser
    quoted = run(t, spec("code_exec_python"), {"code": "print('$(echo no) `x` \"q\"')"})
    assert json.loads(quoted["content"][0]["text"])["stdout"] == '$(echo no) `x` "q"\n'
    assert link.commands[0][1] == 'python3 -c "$SPRUCE_TOOL_CODE"'
    bad = run(t, spec("code_exec_python"), {"code": "1", "packages": ["ok; rm -rf /"]})
    assert bad["isError"] is True


def test_dyno_run_command_quotes_arguments(tools: tuple[HerokuTools, LocalLink]) -> None:
    t, _ = tools
    s = spec(
        "dyno_run_command",
        cmd="printf '%s|' {greeting}",
        parameters={
            "type": "object",
            "properties": {"greeting": {"type": "string"}, "who": {"type": "string"}},
        },
    )
    out = run(t, s, {"greeting": "hello; rm x", "who": "$USER"})
    assert out["content"][0]["text"] == "hello; rm x|$USER|"


def test_html_and_pdf_to_markdown(tools: tuple[HerokuTools, LocalLink], web: str) -> None:
    t, _ = tools
    md = run(t, spec("html_to_markdown"), {"url": web + "/page"})
    assert md["isError"] is False
    assert md["content"][0]["text"] == "# Spruce\n\nA **self-hosted** Heroku."
    pdf = run(t, spec("pdf_to_markdown"), {"url": web + "/doc.pdf"})
    assert pdf["content"][0]["text"] == "## Page 1\n\nHello from a PDF"
    missing = run(t, spec("html_to_markdown"), {"url": web + "/missing"})
    assert missing["isError"] is True and "404" in missing["content"][0]["text"]
    assert run(t, spec("html_to_markdown"), {"url": "file:///etc/passwd"})["isError"] is True


@pytest.mark.postgres
def test_postgres_query_is_read_only(
    tools: tuple[HerokuTools, LocalLink], postgres_server: Any
) -> None:
    t, link = tools
    url = postgres_server.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 1500)")
    app = link._apps["demo"]
    app.postgres["DATABASE"] = PostgresCredentials(
        "127.0.0.1", postgres_server.port, url.rsplit("/", 1)[1], "spruce", ""
    )
    out = json.loads(
        run(t, spec("postgres_run_query"), {"query": "SELECT n, n * 2 AS d FROM t ORDER BY n"})[
            "content"
        ][0]["text"]
    )
    assert out["columns"] == ["n", "d"] and out["rows"][:2] == [[1, 2], [2, 4]]
    assert len(out["rows"]) == 1000 and out["truncated"] is True
    # even with credentials that could write, the transaction is read-only
    denied = run(t, spec("postgres_run_query"), {"query": "DELETE FROM t"})
    assert denied["isError"] is True and "read-only" in denied["content"][0]["text"]
    slow = run(t, spec("postgres_run_query", ttl=1), {"query": "SELECT pg_sleep(5)"})
    assert slow["isError"] is True and "statement timeout" in slow["content"][0]["text"]
    missing = run(t, spec("postgres_get_schema", db_attachment="HEROKU_POSTGRESQL_RED"), {})
    assert missing["isError"] is True and "no Postgres attachment" in missing["content"][0]["text"]
