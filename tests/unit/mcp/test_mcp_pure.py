"""The MCP tools' pure parts: staged sources, the relay's folder tarball."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from spruce.mcp.bridge import BridgeError, _is_answer, pack_folder
from spruce.mcp.dyno_tools import staged_command
from spruce.services.errors import InvalidParams


def test_staged_command_writes_sources_in_a_fresh_folder(tmp_path: Path) -> None:
    cmd = staged_command(
        "cat a.txt sub/dir/b.sh && pwd",
        [
            {"relativePath": "a.txt", "contents": "it's 100% $HOME `x`\n"},
            {"relativePath": "sub/dir/b.sh", "contents": "two"},
        ],
    )
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout
    assert out.startswith("it's 100% $HOME `x`\ntwo/")  # b.sh has no newline: pwd follows
    assert Path(out.strip().removeprefix("it's 100% $HOME `x`\ntwo")).is_absolute()
    assert staged_command("true", []) == "true"
    for bad in ("../up", "/abs", "a/../b", "sp ace", ""):
        with pytest.raises(InvalidParams):
            staged_command("true", [{"relativePath": bad, "contents": ""}])


def test_pack_folder_skips_vcs_and_puts_app_json(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "web.py").write_text("print(1)")
    (tmp_path / "app.json").write_text('{"old": true}')
    data = pack_folder(tmp_path, '{"name": "new"}')
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert "web.py" in names and not any(n.startswith(".git") for n in names)
        assert names.count("app.json") == 1
        member = tar.extractfile("app.json")
        assert member is not None and member.read() == b'{"name": "new"}'
    with pytest.raises(BridgeError):
        pack_folder(tmp_path / "missing", None)


def test_the_relay_tells_answers_from_notifications_by_their_bytes() -> None:
    progress = b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"result":1}}'
    assert not _is_answer(progress)
    assert _is_answer(b'{"jsonrpc":"2.0","id":3,"result":{"content":[{"text":"method"}]}}')
    assert _is_answer(b'{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"no"}}')
    assert not _is_answer(b'{"jsonrpc":"2.0","id":7,"method":"ping"}')
