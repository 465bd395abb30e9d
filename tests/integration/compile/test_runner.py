"""run_build behaviour with test-written buildpacks and the built-in ones."""

from __future__ import annotations

import asyncio
import http.server
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from build_helpers import Builder, make_buildpack

from spruce.compile import BuildFailed, BuildTimeout, ensure_build_user


async def test_failing_compile_streams_output_then_fails(builder: Builder) -> None:
    bp = make_buildpack(
        builder.root / "bp",
        detect='echo "Broken"',
        compile_='echo "-----> Compiling"; echo "       step 1"; echo "oops" >&2; exit 3',
    )
    with pytest.raises(BuildFailed) as err:
        await builder.build(builder.app("a", {"x": "1"}), buildpacks=[str(bp)])
    assert err.value.message == f"Failed to compile Broken app ({bp} exited 3)."
    i = builder.lines.index("-----> Compiling")
    assert builder.lines[i : i + 3] == ["-----> Compiling", "       step 1", "oops"]
    assert builder.lines[-1] == f" !     Failed to compile Broken app ({bp} exited 3)."
    assert (
        not list((builder.root / "slugs").glob("*")) if (builder.root / "slugs").exists() else True
    )


async def test_timeout_stops_the_build_and_its_processes(builder: Builder) -> None:
    pidfile = builder.root / "pid"
    bp = make_buildpack(
        builder.root / "bp",
        detect='echo "Slow"',
        compile_=f'echo "-----> Sleeping"; sleep 60 & echo $! > {pidfile}; wait',
    )
    started = time.monotonic()
    with pytest.raises(BuildTimeout, match="timed out after 1.5 seconds"):
        await builder.build(builder.app("a", {"x": "1"}), buildpacks=[str(bp)], timeout=1.5)
    assert time.monotonic() - started < 10
    pid = int(pidfile.read_text())
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the compile's child process survived the timeout")
    assert " !     Build timed out after 1.5 seconds and was stopped." in builder.lines


async def test_background_process_left_by_compile_does_not_hold_the_build(builder: Builder) -> None:
    bp = make_buildpack(
        builder.root / "bp",
        detect='echo "Daemon"',
        compile_='(sleep 60 &); echo "-----> left a daemon"',
    )
    started = time.monotonic()
    result = await builder.build(builder.app("a", {"x": "1"}), buildpacks=[str(bp)])
    assert time.monotonic() - started < 15
    assert "-----> left a daemon" in builder.lines
    assert result.buildpack_description == "Daemon"


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path, http.server.ThreadingHTTPServer]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, server
    server.shutdown()


async def test_url_buildpack_is_downloaded_cached_and_used(
    builder: Builder, http_dir: tuple[str, Path, object]
) -> None:
    base, www, server = http_dir
    bp = make_buildpack(
        builder.root / "custom-buildpack-main",
        detect='[ -f "$1/custom.txt" ] && echo "Custom"',
        compile_='echo "-----> custom compile, ENV_DIR has $(ls "$3" | tr "\\n" " ")"; cp "$1/custom.txt" "$1/built.txt"',
        release='printf -- "---\\ndefault_process_types:\\n  web: ./serve\\nconfig_vars:\\n  FROM_BP: from-bp\\n  ENABLED: yes\\n"',
    )
    with tarfile.open(www / "bp.tgz", "w:gz") as tar:
        tar.add(bp, arcname="custom-buildpack-main")  # GitHub-style top-level directory
    url = f"{base}/bp.tgz"
    app = builder.app("a", {"custom.txt": "hi"})
    result = await builder.build(app, buildpacks=[url], env={"B_VAR": "2", "A_VAR": "1"})
    assert result.buildpacks == [url]
    assert result.buildpack_description == "Custom"
    assert result.process_types == {"web": "./serve"}
    assert result.config_vars == {"FROM_BP": "from-bp", "ENABLED": "true"}
    assert "-----> custom compile, ENV_DIR has A_VAR B_VAR " in builder.lines
    with tarfile.open(result.slug_path) as tar:
        assert "./built.txt" in tar.getnames()
    server.shutdown()  # type: ignore[attr-defined]
    again = await builder.build(app, buildpacks=[url])  # served from the buildpack cache
    assert again.buildpack_description == "Custom"


async def test_url_buildpack_download_errors(
    builder: Builder, http_dir: tuple[str, Path, object]
) -> None:
    base, www, _ = http_dir
    (www / "junk.tgz").write_text("not a tarball")
    app = builder.app("a", {"x": "1"})
    with pytest.raises(BuildFailed, match="HTTP 404"):
        await builder.build(app, buildpacks=[f"{base}/missing.tgz"])
    with pytest.raises(BuildFailed, match="is not a usable tarball"):
        await builder.build(app, buildpacks=[f"{base}/junk.tgz"])
    with pytest.raises(BuildFailed, match="unknown buildpack 'heroku/cobol'"):
        await builder.build(app, buildpacks=["heroku/cobol"])


async def test_multi_buildpack_exports_and_last_release_wins(builder: Builder) -> None:
    first = make_buildpack(
        builder.root / "first",
        detect='echo "First"',
        compile_='echo "export FROM_FIRST=hello" > "$(dirname "$0")/../export"; echo first > "$1/first.txt"',
        release='printf -- "---\\ndefault_process_types:\\n  web: first-web\\n  worker: first-worker\\n"',
    )
    second = make_buildpack(
        builder.root / "second",
        detect='echo "Second"',
        compile_='echo "-----> second sees FROM_FIRST=$FROM_FIRST and $(cat "$1/first.txt")"',
        release='printf -- "---\\ndefault_process_types:\\n  web: second-web\\n"',
    )
    result = await builder.build(builder.app("a", {"x": "1"}), buildpacks=[str(first), str(second)])
    assert "-----> second sees FROM_FIRST=hello and first" in builder.lines
    assert result.process_types == {"web": "second-web"}
    assert result.buildpack_description == "Second"
    assert result.buildpacks == [str(first), str(second)]
    assert builder.lines[1:4] == [
        "-----> Using buildpacks:",
        f"       1. {first}",
        f"       2. {second}",
    ]


async def test_incompatible_or_undetectable_apps(builder: Builder) -> None:
    app = builder.app("a", {"README": "hello"})
    with pytest.raises(BuildFailed) as err:
        await builder.build(app)
    assert "No default language could be detected for this app." in err.value.message
    assert (
        "Tried buildpacks: heroku/ruby, heroku/python, heroku/java, heroku/php, heroku/go, "
        "heroku/dotnet, heroku/nodejs, heroku/static, heroku/procfile." in err.value.message
    )
    with pytest.raises(BuildFailed, match="App not compatible with buildpack: heroku/python"):
        await builder.build(app, buildpacks=["heroku/python"])
    (app / "Procfile").write_text("web: ok\nweb.1: not a valid type\n")
    with pytest.raises(BuildFailed, match="Procfile line 2"):
        await builder.build(app)


async def test_python_patch_fallback_and_missing_minor(builder: Builder) -> None:
    app = builder.app(
        "py",
        {
            ".python-version": "3.12.99\n",
            "pyproject.toml": '[project]\nname="x"\nversion="1"\ndependencies=[]\n',
        },
    )
    result = await builder.build(app)
    assert result.buildpack_description == "Python"
    assert any("Python 3.12.99 is not installed on this platform; using Python 3.12." in line
               for line in builder.lines)  # fmt: skip
    assert "       No dependencies declared in [project].dependencies" in builder.lines
    (app / ".python-version").write_text("3.14\n")
    with pytest.raises(BuildFailed):
        await builder.build(app)
    assert " !     Error: Python 3.14 isn't available on this platform." in builder.lines
    (app / ".python-version").unlink()
    (app / "runtime.txt").write_text("python-3.11.7\n")
    await builder.build(app)
    assert "-----> Using Python 3.11.7 specified in runtime.txt" in builder.lines


async def test_python_uv_lock(builder: Builder) -> None:
    app = builder.app("uvapp", {
        ".python-version": "3.12",
        "pyproject.toml": '[project]\nname = "uvapp"\nversion = "0.1.0"\nrequires-python = ">=3.12"\ndependencies = ["six"]\n',
        "Procfile": "worker: python -c 'import six; print(six.__version__)'\n",
    })  # fmt: skip
    # Lock with the same uv the buildpack will install (from the package index).
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", f'python3 -m venv {builder.root}/uvv && {builder.root}/uvv/bin/pip install -q uv '
        f'&& cd {app} && {builder.root}/uvv/bin/uv lock -q',
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    result = await builder.build(app)
    assert (
        "-----> Installing dependencies using 'uv sync --locked --no-default-groups'"
        in builder.lines
    )
    slug_names = tarfile.open(result.slug_path).getnames()
    assert any(n.endswith("site-packages/six.py") for n in slug_names)


@pytest.fixture
def open_root() -> Iterator[Path]:
    """A work root the build user can traverse (pytest's tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="spruce-build-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_run_as_unprivileged_build_user(open_root: Path, tmp_path: Path) -> None:
    assert os.geteuid() == 0, "Spruce's build tests run as root, like spruced"
    uid, gid = ensure_build_user()
    with pytest.raises(BuildFailed, match="cannot reach"):
        await Builder(root=tmp_path).build(
            Builder(root=tmp_path).app("a", {"x": "1"}), run_as=(uid, gid)
        )
    builder = Builder(root=open_root)
    bp = make_buildpack(
        builder.root / "bp",
        detect='echo "Who"',
        compile_='echo "-----> running as $(id -un) home=$HOME"; touch "$1/made"; touch "$2/cached"',
    )
    result = await builder.build(
        builder.app("a", {"x": "1"}), buildpacks=[str(bp)], run_as=(uid, gid)
    )
    assert any(line.startswith("-----> running as spruce-build home=") for line in builder.lines)
    assert (builder.root / "cache" / "a" / "cached").stat().st_uid == uid
    assert "./made" in tarfile.open(result.slug_path).getnames()
