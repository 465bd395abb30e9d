from pathlib import Path

import pytest

from spruce.compile.dotnet import (
    DotnetError,
    choose_sdk,
    find_projects,
    process_type_name,
    process_types,
    sdk_for_framework,
    select_sdk,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("EmailWorker", "emailworker"),
        ("Email.Worker", "email-worker"),
        ("Email Worker", "email-worker"),
        ("Email_Worker", "email-worker"),
        ("Email__..Worker", "email-worker"),
        ("-Foo.Bar-", "foo-bar"),
        ("Ünïcode+Name!", "ncodename"),
        ("A" * 70, "a" * 63),
        ("x" * 62 + ".y", "x" * 62),
    ],
)
def test_process_type_names(name: str, expected: str) -> None:
    assert process_type_name(name) == expected


@pytest.mark.parametrize(
    ("version", "roll", "expected"),
    [
        ("8.0.408", None, "8.0.408"),
        ("8.0.400", None, "8.0.408"),  # patch: newest patch of the band
        ("8.0.100", "patch", "8.0.115"),
        ("8.0.200", "patch", None),  # no 8.0.2xx band
        ("8.0.200", "feature", "8.0.311"),
        ("8.0.100", "latestPatch", "8.0.115"),
        ("8.0.100", "latestFeature", "8.0.408"),
        ("8.0.100", "latestMinor", "8.0.408"),
        ("8.0.100", "latestMajor", "9.0.203"),
        ("8.0.409", "minor", None),
        ("8.0.409", "major", "9.0.105"),
        ("9.0.100", "disable", None),
        ("9.0.203", "disable", "9.0.203"),
        ("9.0.110", "latestFeature", "9.0.203"),
    ],
)
def test_sdk_roll_forward(version: str, roll: str | None, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(DotnetError, match="no supported .NET SDK"):
            select_sdk(version, roll)
    else:
        assert select_sdk(version, roll) == expected


def test_sdk_errors() -> None:
    with pytest.raises(DotnetError, match="not a .NET SDK version"):
        select_sdk("eight")
    with pytest.raises(DotnetError, match="rollForward 'sideways'"):
        select_sdk("8.0.100", "sideways")
    assert sdk_for_framework("net8.0") == "8.0.408"
    assert sdk_for_framework("net9.0") == "9.0.203"
    with pytest.raises(DotnetError, match=r"needs a .NET 7.0 SDK"):
        sdk_for_framework("net7.0")


def csproj(sdk: str, extra: str = "", tfm: str = "net8.0") -> str:
    return (
        f'<Project Sdk="{sdk}"><PropertyGroup><TargetFramework>{tfm}</TargetFramework>'
        f"{extra}</PropertyGroup></Project>"
    )


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_lone_web_project_is_web(tmp_path: Path) -> None:
    write(tmp_path, "MyApp.csproj", csproj("Microsoft.NET.Sdk.Web"))
    assert process_types(find_projects(str(tmp_path))) == {
        "web": "cd ./bin/publish; ./MyApp --urls http://*:$PORT"
    }


def test_solution_with_web_worker_console_and_library(tmp_path: Path) -> None:
    write(tmp_path, "src/Web/Web.csproj", csproj("Microsoft.NET.Sdk.Web"))
    write(tmp_path, "src/Email.Worker/Email.Worker.csproj", csproj("Microsoft.NET.Sdk.Worker"))
    write(
        tmp_path,
        "src/Tool/Tool.fsproj",
        csproj(
            "Microsoft.NET.Sdk",
            "<OutputType>Exe</OutputType><AssemblyName>Data_Tool</AssemblyName>",
        ),
    )
    write(tmp_path, "src/Lib/Lib.csproj", csproj("Microsoft.NET.Sdk"))
    sln = "\n".join(
        f'Project("{{FAE04EC0-301F-11D3-BF4B-00C04F79EFBC}}") = "{n}", "{p}", "{{1}}"\nEndProject'
        for n, p in [("Web", r"src\Web\Web.csproj"), ("W", r"src\Email.Worker\Email.Worker.csproj"),
                     ("T", r"src\Tool\Tool.fsproj"), ("L", r"src\Lib\Lib.csproj")]
    )  # fmt: skip
    write(tmp_path, "App.sln", "Microsoft Visual Studio Solution File\n" + sln)
    types = process_types(find_projects(str(tmp_path)))
    assert types == {
        "web": "cd src/Web/bin/publish; ./Web --urls http://*:$PORT",
        "email-worker": "cd src/Email.Worker/bin/publish; ./Email.Worker",
        "data-tool": "cd src/Tool/bin/publish; ./Data_Tool",
    }


def test_two_web_projects_are_named_not_web(tmp_path: Path) -> None:
    write(tmp_path, "A/Api.Public.csproj", csproj("Microsoft.NET.Sdk.Web"))
    write(tmp_path, "B/Admin.csproj", csproj("Microsoft.NET.Sdk.Web"))
    write(
        tmp_path,
        "x.sln",
        'Project("{X}") = "a", "A/Api.Public.csproj", "{1}"\nProject("{X}") = "b", "B/Admin.csproj", "{2}"\n',
    )
    assert sorted(process_types(find_projects(str(tmp_path)))) == ["admin", "api-public"]


def test_sdk_from_global_json_or_target_framework(tmp_path: Path) -> None:
    write(tmp_path, "App.csproj", csproj("Microsoft.NET.Sdk.Web", tfm="net9.0"))
    projects = find_projects(str(tmp_path))
    assert choose_sdk(str(tmp_path), projects) == ("9.0.203", "target framework net9.0")
    write(tmp_path, "global.json", '{"sdk": {"version": "8.0.300", "rollForward": "latestPatch"}}')
    assert choose_sdk(str(tmp_path), projects) == ("8.0.311", "global.json")
    write(tmp_path, "global.json", "{nope")
    with pytest.raises(DotnetError, match="global.json is not valid JSON"):
        choose_sdk(str(tmp_path), projects)


def test_project_discovery_errors(tmp_path: Path) -> None:
    with pytest.raises(DotnetError, match="no .sln"):
        find_projects(str(tmp_path))
    write(tmp_path, "A.csproj", csproj("Microsoft.NET.Sdk.Web"))
    write(tmp_path, "B.csproj", csproj("Microsoft.NET.Sdk.Web"))
    with pytest.raises(DotnetError, match="more than one project file"):
        find_projects(str(tmp_path))
    write(tmp_path, "S.sln", 'Project("{X}") = "m", "Missing/M.csproj", "{1}"\n')
    with pytest.raises(DotnetError, match="lists missing project files: Missing/M.csproj"):
        find_projects(str(tmp_path))
