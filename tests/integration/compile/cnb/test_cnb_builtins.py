"""Spruce's built-in CNBs on real apps: detection in Heroku's builder order, the process
types they declare, serving from the unpacked image, warm rebuilds, .NET's errors as on Cedar."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from cnb_support import FirBuilder, needs_tools

from spruce.compile import BuildFailed
from spruce.compile.cnb.launch import prepare_launch
from spruce.compile.oci import ImageRef
from spruce.compile.oci.unpack import pull_image
from spruce.netutil import free_port

pytestmark = [needs_tools, pytest.mark.slow]
EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "apps"


async def _serve_and_get(fir: FirBuilder, image_ref: str, process: str = "web") -> str:
    image = await pull_image(fir.client, ImageRef.parse(image_ref), fir.root / "images")
    port = free_port()
    launch = prepare_launch(image, {"PORT": str(port)}, process_type=process)
    proc = subprocess.Popen(launch.argv, env=launch.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
            return response.read().decode()
    finally:
        proc.kill()
        proc.wait()


async def test_python_app_builds_serves_and_rebuilds_warm(fir: FirBuilder) -> None:
    app = fir.root / "src" / "python-web"
    shutil.copytree(EXAMPLES / "python-web", app)
    first = await fir.build(app, repo="apps/python-web")
    out = fir.output
    assert "2 of 2 buildpacks participating" in out
    assert "heroku/python   0.1.0" in out and "heroku/procfile 0.1.0" in out
    assert "## Python" in out and "## Procfile Buildpack" in out
    assert "Adding layer 'heroku/python:venv'" in out
    web = first.process_types["web"]
    assert web["command"] == "/cnb/process/web" and web["default"] is True
    assert web["display_cmd"].startswith("bash -c 'gunicorn ")
    assert [b["id"] for b in first.buildpacks] == ["heroku/python", "heroku/procfile"]
    assert first.base_image_name.startswith("spruce/base:")
    assert await _serve_and_get(fir, first.image)

    second = await fir.build(app, repo="apps/python-web")
    assert "Using cached virtual environment (dependency files unchanged)" in fir.output
    assert "Reusing layer 'heroku/python:venv'" in fir.output
    assert second.digest == first.digest  # same source, same buildpacks: same image
    assert second.uploaded_blobs == []  # a warm rebuild uploads nothing


async def test_node_app_gets_npm_start(fir: FirBuilder) -> None:
    app = fir.root / "src" / "node-web"
    shutil.copytree(EXAMPLES / "node-web", app)
    result = await fir.build(app, repo="apps/node-web")
    assert "1 of 2 buildpacks participating" in fir.output  # no Procfile: procfile drops out
    assert result.process_types["web"]["display_cmd"] == "bash -c 'npm start'"
    assert await _serve_and_get(fir, result.image)


async def test_procfile_keys_follow_the_cnb_rule(fir: FirBuilder) -> None:
    app = fir.app("procs", {"Procfile": "Web: python3 -m http.server $PORT\nmy_worker: sleep 1\n"})
    result = await fir.build(app, repo="apps/procs")
    assert "! Warning: Process type 'Web' has upper case letters: using 'web'" in fir.lines
    assert "! Warning: Process type 'my_worker' has underscores: using 'my-worker'" in fir.lines
    assert sorted(result.process_types) == ["my-worker", "web"]
    assert result.process_types["web"]["default"] is True


WEB = (
    '<Project Sdk="Microsoft.NET.Sdk.Web"><PropertyGroup><TargetFramework>net8.0'
    "</TargetFramework></PropertyGroup></Project>"
)


async def test_dotnet_missing_sdk_reads_as_on_cedar(fir: FirBuilder) -> None:
    app = fir.app(
        "dn",
        {
            "MyApp.csproj": WEB,
            "global.json": '{"sdk": {"version": "8.0.300", "rollForward": "latestFeature"}}',
        },
    )
    with pytest.raises(BuildFailed):
        await fir.build(app, repo="apps/dn")
    assert "heroku/dotnet" in fir.output
    assert "- Using .NET SDK 8.0.408 (from global.json)" in fir.lines
    assert "! .NET SDK 8.0.408 is required but is not installed on this platform." in fir.lines
    assert "ERROR: failed to build: exit status 1 (buildpack heroku/dotnet@0.1.0)" in fir.lines


async def test_project_toml_chooses_the_group_and_env(fir: FirBuilder) -> None:
    project = (
        '[_]\nschema-version = "0.2"\n\n[[io.buildpacks.group]]\nid = "heroku/procfile"\n\n'
        '[[io.buildpacks.build.env]]\nname = "GREETING"\nvalue = "hi"\n'
    )
    app = fir.app("pt", {"project.toml": project, "Procfile": "web: echo $PORT\n",
                         "requirements.txt": ""})  # fmt: skip
    result = await fir.build(app, repo="apps/pt")
    assert [b["id"] for b in result.buildpacks] == ["heroku/procfile"]  # python not used
    bad = fir.app("bad", {"project.toml": '[_]\nschema-version = "0.1"\n', "Procfile": "web: x\n"})
    with pytest.raises(BuildFailed, match="schema-version"):
        await fir.build(bad, repo="apps/bad")
