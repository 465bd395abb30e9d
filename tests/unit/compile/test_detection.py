"""Detection order of the built-in buildpacks (runs their real bin/detect scripts)."""

from pathlib import Path

import pytest

from spruce.compile.buildpacks import DETECTION_ORDER, builtin_name, detect_builtin


def test_order_matches_herokus_builder() -> None:
    assert DETECTION_ORDER == (
        "ruby", "python", "java", "php", "go", "dotnet", "nodejs", "static", "procfile",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["requirements.txt", "package.json", "Procfile"], ("heroku/python", "Python")),
        (["pyproject.toml"], ("heroku/python", "Python")),
        ([".python-version"], ("heroku/python", "Python")),
        (["App.csproj", "package.json"], ("heroku/dotnet", ".NET")),
        (["App.sln"], ("heroku/dotnet", ".NET")),
        (["package.json", "index.html", "Procfile"], ("heroku/nodejs", "Node.js")),
        (["public/index.html", "Procfile"], ("heroku/static", "Static")),
        (["static.json"], ("heroku/static", "Static")),
        (["Procfile", "README"], ("heroku/procfile", "Procfile")),
        (["README"], None),
        (["sub/requirements.txt"], None),
    ],
)
def test_first_matching_buildpack_wins(
    tmp_path: Path, files: list[str], expected: tuple[str, str] | None
) -> None:
    for rel in files:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n" if rel.endswith(".json") else "x\n")
    assert detect_builtin(tmp_path) == expected


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("heroku/python", "python"),
        ("python", "python"),
        ("heroku/nodejs", "nodejs"),
        ("heroku-community/static", "static"),
        ("https://github.com/heroku/heroku-buildpack-python", "python"),
        ("https://github.com/heroku/heroku-buildpack-nodejs.git", "nodejs"),
        ("heroku/procfile", "procfile"),
        ("heroku/dotnet", "dotnet"),
        ("heroku/gradle", None),
        ("https://example.com/custom.tgz", None),
    ],
)
def test_builtin_names(ref: str, name: str | None) -> None:
    assert builtin_name(ref) == name
