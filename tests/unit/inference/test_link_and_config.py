"""The link's wire (framing, a LinkServer/RemoteLink pair on a real unix socket), the
catalogue and the configuration file, and dyno_run_command's quoting."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from spruce.inference.catalog import CatalogError, load_catalog, parse_catalog
from spruce.inference.config import ConfigError, load_config
from spruce.inference.link import KeyGrant, Limits, LinkError, PlatformLink, Usage
from spruce.inference.linkwire import LinkServer, RemoteLink, WireError, decode, decode_call, encode
from spruce.inference.locallink import LocalApp, LocalLink, key_hash
from spruce.inference.tools import command_line


def test_frames() -> None:
    assert (
        encode({"method": "verify_key", "params": {"key": "k"}})
        == b'{"method":"verify_key","params":{"key":"k"}}\n'
    )
    assert decode_call(b'{"method":"mcp_process_types","params":{"addon_id":"a"}}\n') == (
        "mcp_process_types",
        {"addon_id": "a"},
    )
    for bad in (
        b'{"method":"x"}',
        b"[1]\n",
        b"{nope\n",
        b'{"method":"rm","params":{}}\n',
        b'{"method":"verify_key","params":[]}\n',
    ):
        with pytest.raises(WireError):
            decode_call(bad) if bad.endswith(b"\n") else decode(bad)


def test_local_link_is_a_platform_link() -> None:
    assert isinstance(LocalLink(), PlatformLink) and isinstance(
        RemoteLink(Path("/x")), PlatformLink
    )


async def test_remote_link_round_trip(tmp_path: Path) -> None:
    local = LocalLink()
    app = LocalApp("demo", "id-demo", tmp_path)
    app.mcp["mcp-cat"] = "cat"
    local.add_app(app)
    g = KeyGrant("ad-1", "inference-x", "id-demo", "demo", "m", Limits(5, 100), "t")
    local.add_key("inf-secret", g)
    assert "inf-secret" not in local._keys and key_hash("inf-secret") in local._keys
    server = LinkServer(local, tmp_path / "link.sock")
    await server.start()
    assert (tmp_path / "link.sock").stat().st_mode & 0o777 == 0o600
    remote = RemoteLink(tmp_path / "link.sock")
    try:
        assert await remote.verify_key("inf-secret") == g
        assert await remote.verify_key("inf-other") is None
        await remote.record_usage(Usage("ad-1", "id-demo", "m", "chat", 1, 2))
        assert local.usage == [Usage("ad-1", "id-demo", "m", "chat", 1, 2)]
        res = await remote.run_command(
            "ad-1",
            "demo",
            "echo $GREETING; exit 4",
            size="basic",
            ttl_seconds=5,
            env={"GREETING": "hi"},
        )
        assert (res.exit_status, res.stdout, res.timed_out) == (4, "hi\n", False)
        with pytest.raises(LinkError) as e:
            await remote.run_command("ad-1", "elsewhere", "true", size="basic", ttl_seconds=5)
        assert e.value.status == 403 and "not attached" in e.value.message
        (server_type,) = await remote.mcp_process_types("ad-1")
        assert server_type.process_type == "mcp-cat" and server_type.namespace.count("-") == 1
        # a stdio session is the socket itself: bytes both ways, through `cat`
        stdio = await remote.open_stdio("ad-1", server_type.id, size="basic", ttl_seconds=5)
        stdio.writer.write(b'{"jsonrpc":"2.0"}\n')
        await stdio.writer.drain()
        assert await asyncio.wait_for(stdio.reader.readline(), 5) == b'{"jsonrpc":"2.0"}\n'
        await stdio.close()
        with pytest.raises(LinkError) as e:
            await remote.postgres_credentials("ad-1", "demo", "DATABASE")
        assert e.value.status == 404
    finally:
        await server.close()
    with pytest.raises(LinkError) as e:
        await remote.verify_key("inf-secret")
    assert e.value.status == 503


async def test_link_server_answers_bad_calls(tmp_path: Path) -> None:
    server = LinkServer(LocalLink(), tmp_path / "l.sock")
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(tmp_path / "l.sock")
        writer.write(b'{"method":"run_command","params":{"nope":1}}\n')
        reply = json.loads(await reader.readline())
        writer.close()
        assert reply["error"]["status"] == 400
    finally:
        await server.close()


def test_default_catalogue() -> None:
    specs = load_catalog(None)
    assert [(s.id, s.type, s.backend, s.gguf) for s in specs] == [
        ("smollm2-135m-instruct", "text-to-text", "local", "builtin:smollm2"),
        ("all-minilm-l6-v2", "text-to-embedding", "local", "builtin:minilm"),
    ]


@pytest.mark.parametrize(
    ("models", "words"),
    [
        ([], "empty"),
        ([{"id": "x", "type": "text-to-text", "backend": "local"}], "needs gguf"),
        ([{"id": "x", "type": "speech", "backend": "local"}], "type must be"),
        ([{"id": "x y", "type": "text-to-text", "backend": "local"}], "id must be"),
        (
            [{"id": "x", "type": "text-to-image", "backend": "local", "gguf": "a"}],
            "no local image model",
        ),
        ([{"id": "x", "type": "text-to-text", "backend": "upstream", "url": "ftp://h"}], "url"),
        (
            [
                {
                    "id": "x",
                    "type": "text-to-text",
                    "backend": "upstream",
                    "url": "http://h",
                    "api_key_env": "SPRUCE_NOT_SET_X",
                }
            ],
            "SPRUCE_NOT_SET_X is not set",
        ),
        (
            [{"id": "x", "type": "text-to-text", "backend": "local", "gguf": "a", "slots": 0}],
            "slots",
        ),
        (
            [{"id": "x", "type": "text-to-text", "backend": "local", "gguf": "a", "colour": "red"}],
            "unknown field",
        ),
        ([{"id": "x", "type": "text-to-text", "backend": "local", "gguf": "a"}] * 2, "twice"),
    ],
)
def test_catalogue_errors(models: list[dict[str, object]], words: str) -> None:
    with pytest.raises(CatalogError) as e:
        parse_catalog({"models": models})
    assert words in str(e.value)


def test_catalogue_file_keeps_keys_out_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIG_KEY", "sk-123")
    f = tmp_path / "models.yaml"
    f.write_text(
        "models:\n  - {id: big, type: text-to-text, backend: upstream, url: 'https://h/v1/', api_key_env: BIG_KEY, native_tools: true}\n"
    )
    (spec,) = load_catalog(f)
    assert spec.api_key == "sk-123" and spec.url == "https://h/v1" and spec.upstream_model == "big"
    assert "sk-123" not in repr(spec)
    f.write_text("models: [")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(f)


def test_config_file(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    f = tmp_path / "inference.yaml"
    f.write_text(
        "listen: ['127.0.0.1:8443', '127.0.0.3:443', '[::1]:9000']\ncertificate: c.pem\nprivate_key: k.pem\nlink: /run/l.sock\n"
    )
    cfg = load_config(f)
    assert cfg.listen == (("127.0.0.1", 8443), ("127.0.0.3", 443), ("::1", 9000))
    assert cfg.certificate == tmp_path / "c.pem" and cfg.link == Path("/run/l.sock")
    assert cfg.cache_dir == tmp_path / "inference-cache" and cfg.models is None
    for text, words in [
        (
            "listen: ['example.com:80']\ncertificate: c.pem\nprivate_key: k.pem\nlink: l",
            "IP address",
        ),
        ("listen: ['127.0.0.1']\ncertificate: c.pem\nprivate_key: k.pem\nlink: l", "host:port"),
        (
            "listen: ['127.0.0.1:1']\ncertificate: nope.pem\nprivate_key: k.pem\nlink: l",
            "does not exist",
        ),
        ("listen: ['127.0.0.1:1']\ncertificate: c.pem\nprivate_key: k.pem", "link is required"),
        ("listen: ['127.0.0.1:1']\nport: 3", "unknown setting"),
    ]:
        f.write_text(text)
        with pytest.raises(ConfigError, match=words):
            load_config(f)


def test_serve_refuses_a_bad_config_before_binding(tmp_path: Path) -> None:
    import subprocess

    f = tmp_path / "bad.yaml"
    f.write_text("listen: 3\n")
    r = subprocess.run(
        [sys.executable, "-m", "spruce.inference", "serve", "--config", str(f)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "listen is required" in r.stderr


def test_command_line_quotes_every_argument() -> None:
    params = {"type": "object", "properties": {"path": {}, "n": {}}}
    assert command_line("ls {path}", params, {"path": "a b; rm -rf /"}) == "ls 'a b; rm -rf /'"
    assert command_line("head", params, {"n": 3, "path": "x"}) == "head x 3"
    assert command_line("echo {missing}", params, {}) == "echo {missing}"
