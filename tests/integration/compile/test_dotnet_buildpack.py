"""The dotnet buildpack end to end (no .NET SDK is installed on this machine)."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from build_helpers import Builder

from spruce.compile import BuildFailed
from spruce.compile.buildpacks import BUILTIN_DIR

WEB = '<Project Sdk="Microsoft.NET.Sdk.Web"><PropertyGroup><TargetFramework>net8.0</TargetFramework></PropertyGroup></Project>'
WORKER = '<Project Sdk="Microsoft.NET.Sdk.Worker"><PropertyGroup><TargetFramework>net9.0</TargetFramework></PropertyGroup></Project>'


async def test_missing_sdk_fails_with_the_version_named(builder: Builder) -> None:
    app = builder.app(
        "dn",
        {
            "MyApp.csproj": WEB,
            "global.json": '{"sdk": {"version": "8.0.300", "rollForward": "latestFeature"}}',
        },
    )
    with pytest.raises(BuildFailed):
        await builder.build(app)
    assert "-----> .NET app detected" in builder.lines
    assert "-----> Using .NET SDK 8.0.408 (from global.json)" in builder.lines
    assert (
        " !     .NET SDK 8.0.408 is required but is not installed on this platform."
        in builder.lines
    )


async def test_unsupported_sdk_request_is_explained(builder: Builder) -> None:
    app = builder.app("dn", {"MyApp.csproj": WEB, "global.json": '{"sdk": {"version": "7.0.100"}}'})
    with pytest.raises(BuildFailed):
        await builder.build(app)
    assert any(
        "no supported .NET SDK satisfies global.json version 7.0.100" in line
        for line in builder.lines
    )


def release(app_dir: str) -> str:
    return subprocess.run(
        [str(BUILTIN_DIR / "dotnet" / "bin" / "release"), app_dir],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_release_registers_process_types_unless_procfile(builder: Builder) -> None:
    app = builder.app(
        "dn", {"src/Web/Web.csproj": WEB, "src/Email.Worker/Email.Worker.csproj": WORKER}
    )
    (app / "App.sln").write_text(
        'Project("{X}") = "Web", "src\\Web\\Web.csproj", "{1}"\nEndProject\n'
        'Project("{X}") = "W", "src\\Email.Worker\\Email.Worker.csproj", "{2}"\nEndProject\n'
    )
    data = yaml.safe_load(release(str(app)))
    assert data == {
        "default_process_types": {
            "web": "cd src/Web/bin/publish; ./Web --urls http://*:$PORT",
            "email-worker": "cd src/Email.Worker/bin/publish; ./Email.Worker",
        }
    }
    (app / "Procfile").write_text("web: ./custom\n")
    assert yaml.safe_load(release(str(app))) == {}
