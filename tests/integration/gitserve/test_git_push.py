"""gitserve under a real uvicorn server, driven by the real `git` client."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from spruce.compile.runner import BuildFailed, BuildRequest, run_build
from spruce.gitserve import GitAccessError, GitServer, PushContext
from spruce.netutil import free_port

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "apps"
KEY = "s3cret-api-key"


@dataclass
class Harness:
    url: str
    repos: Path
    tmp: Path
    pushes: list[PushContext] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    on_push: Callable[[PushContext, Callable[[str], None]], Awaitable[bool]] | None = None

    def remote(self, app: str, password: str = KEY) -> str:
        return self.url.replace("http://", f"http://heroku:{password}@") + f"/{app}.git"


def git_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "LANG": "C",
    }


def git(cwd: Path, *args: str) -> str:
    env = git_env(cwd.parent)
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def make_repo(path: Path, source: Path | None = None, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    if source is not None:
        subprocess.run(["cp", "-a", f"{source}/.", str(path)], check=True)
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "initial")
    return path


async def agit(
    cwd: Path, *args: str, on_line: Callable[[str], None] | None = None
) -> tuple[int, str]:
    """Run git asynchronously; return (exit code, stderr), feeding stderr lines as they come."""
    proc = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, env=git_env(cwd.parent),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines = []
    buf = b""
    while chunk := await proc.stderr.read(1024):
        buf += chunk
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode(errors="replace").split("\r")[-1]
            lines.append(line)
            if on_line is not None:
                on_line(line)
    lines.append(buf.decode(errors="replace"))
    return await asyncio.wait_for(proc.wait(), 60), "\n".join(lines)


def server_ref(repos: Path, app: str, ref: str = "refs/heads/main") -> str | None:
    out = subprocess.run(
        ["git", "--git-dir", str(repos / f"{app}.git"), "rev-parse", "--verify", "-q", ref],
        capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip() or None


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async def authenticate(password: str) -> str | None:
        return "alice@example.com" if password == KEY else None

    async def authorize(user: str, app: str) -> None:
        if app == "no-such-app":
            raise GitAccessError(f"Couldn't find that app: {app}", status=404)
        if app == "private-app":
            raise GitAccessError("You do not have access to the app private-app.", status=403)

    h = Harness(url="", repos=tmp_path / "repos", tmp=tmp_path)

    async def on_push(ctx: PushContext, output: Callable[[str], None]) -> bool:
        h.pushes.append(ctx)
        assert h.on_push is not None
        return await h.on_push(ctx, output)

    server = GitServer(h.repos, authenticate, authorize, on_push)
    port = free_port()
    config = uvicorn.Config(server, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    for _ in range(200):
        if uv.started:
            break
        await asyncio.sleep(0.02)
    h.url = f"http://127.0.0.1:{port}"
    yield h
    uv.should_exit = True
    await asyncio.wait_for(task, 10)


async def test_push_main_builds_and_streams_output_while_running(harness: Harness) -> None:
    seen_first = asyncio.Event()

    async def on_push(ctx: PushContext, output: Callable[[str], None]) -> bool:
        output("-----> Build started")
        # Only continue once the pusher has printed the first line: proves streaming.
        await asyncio.wait_for(seen_first.wait(), 20)
        src = await ctx.export(harness.tmp / "export")
        result = await run_build(
            BuildRequest(
                source_dir=src, work_dir=harness.tmp / "work", cache_dir=harness.tmp / "cache",
                slugs_dir=harness.tmp / "slugs", source_version=ctx.new_sha,
            ),
            output,
        )  # fmt: skip
        output(f"       Released {sorted(result.process_types)}")
        return True

    harness.on_push = on_push
    work = make_repo(harness.tmp / "client" / "app", EXAMPLES / "worker-only")

    def watch(line: str) -> None:
        if "remote: -----> Build started" in line:
            seen_first.set()

    rc, err = await agit(work, "push", harness.remote("demo"), "main", on_line=watch)
    assert rc == 0, err
    assert "remote: -----> Procfile app detected" in err
    assert "remote:        Released ['worker']" in err
    head = git(work, "rev-parse", "HEAD").strip()
    assert server_ref(harness.repos, "demo") == head
    ctx = harness.pushes[0]
    assert (ctx.app_name, ctx.user, ctx.ref, ctx.new_sha) == (
        "demo",
        "alice@example.com",
        "refs/heads/main",
        head,
    )
    assert ctx.old_sha == "0" * 40

    # clone gets the deployed code back
    rc, err = await agit(harness.tmp / "client", "clone", harness.remote("demo"), "cloned")
    assert rc == 0, err
    assert (harness.tmp / "client" / "cloned" / "worker.sh").read_text() == (
        EXAMPLES / "worker-only" / "worker.sh"
    ).read_text()


async def test_failed_build_rejects_push_and_keeps_old_ref(harness: Harness) -> None:
    async def ok(ctx: PushContext, output: Callable[[str], None]) -> bool:
        return True

    harness.on_push = ok
    work = make_repo(
        harness.tmp / "client" / "app", files={"Procfile": "web: python3 -m http.server $PORT\n"}
    )
    rc, err = await agit(work, "push", harness.remote("demo"), "main")
    assert rc == 0, err
    first = server_ref(harness.repos, "demo")

    async def failing_build(ctx: PushContext, output: Callable[[str], None]) -> bool:
        src = await ctx.export(harness.tmp / "export2")
        try:
            await run_build(
                BuildRequest(
                    source_dir=src, work_dir=harness.tmp / "work", cache_dir=harness.tmp / "cache",
                    slugs_dir=harness.tmp / "slugs",
                ),
                output,
            )  # fmt: skip
        except BuildFailed:
            return False
        return True

    harness.on_push = failing_build
    (work / "Procfile").unlink()
    (work / "README").write_text("nothing to detect here\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "break it")
    rc, err = await agit(work, "push", harness.remote("demo"), "main")
    assert rc != 0
    assert "remote:  !     No default language could be detected for this app." in err
    assert "[remote rejected] main -> main" in err
    assert server_ref(harness.repos, "demo") == first
    new = git(work, "rev-parse", "HEAD").strip()
    probe = subprocess.run(
        ["git", "--git-dir", str(harness.repos / "demo.git"), "cat-file", "-e", new],
        capture_output=True,
    )
    assert probe.returncode != 0, "rejected objects must not stay in the repository"


async def test_other_branch_kept_without_a_build(harness: Harness) -> None:
    """As on Heroku: another branch is accepted (exit 0) and stored, and nothing builds."""

    async def never(ctx: PushContext, output: Callable[[str], None]) -> bool:
        raise AssertionError("on_push must not run for other branches")

    harness.on_push = never
    work = make_repo(harness.tmp / "client" / "app", files={"Procfile": "web: x\n"})
    rc, err = await agit(work, "push", harness.remote("demo"), "main:feature")
    assert rc == 0, err
    assert "remote: Pushed to non-main branch, skipping build." in err
    assert "remote: To deploy it: git push <remote> feature:main" in err
    assert (
        server_ref(harness.repos, "demo", "refs/heads/feature")
        == git(work, "rev-parse", "HEAD").strip()
    )
    assert server_ref(harness.repos, "demo") is None
    assert harness.pushes == []


async def test_bad_password_and_missing_credentials(harness: Harness) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.get(
            f"{harness.url}/demo.git/info/refs", params={"service": "git-receive-pack"}
        )
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic ")
        r = await client.get(
            f"{harness.url}/demo.git/info/refs",
            params={"service": "git-upload-pack"},
            auth=("heroku", "wrong"),
        )
        assert r.status_code == 401
        assert "wrong" not in r.text
    work = make_repo(harness.tmp / "client" / "app", files={"Procfile": "web: x\n"})
    rc, err = await agit(work, "push", harness.remote("demo", password="wrong"), "main")
    assert rc != 0
    assert "Authentication failed" in err
    assert not (harness.repos / "demo.git").exists()


async def test_unknown_app_and_forbidden_messages(harness: Harness) -> None:
    work = make_repo(harness.tmp / "client" / "app", files={"Procfile": "web: x\n"})
    rc, err = await agit(work, "push", harness.remote("no-such-app"), "main")
    assert rc != 0
    assert "Couldn't find that app: no-such-app" in err
    rc, err = await agit(work, "push", harness.remote("private-app"), "main")
    assert rc != 0
    assert "You do not have access to the app private-app." in err
    assert not (harness.repos / "no-such-app.git").exists()


async def test_concurrent_pushes_do_not_interleave(harness: Harness) -> None:
    async def ok(ctx: PushContext, output: Callable[[str], None]) -> bool:
        return True

    harness.on_push = ok
    base = make_repo(harness.tmp / "client" / "base", files={"Procfile": "web: x\n"})
    rc, err = await agit(base, "push", harness.remote("demo"), "main")
    assert rc == 0, err
    clones = []
    for name in ("a", "b"):
        rc, err = await agit(harness.tmp / "client", "clone", harness.remote("demo"), name)
        assert rc == 0, err
        clone = harness.tmp / "client" / name
        (clone / f"{name}.txt").write_text(name)
        git(clone, "add", "-A")
        git(clone, "commit", "-qm", name)
        clones.append(clone)

    first_running = asyncio.Event()
    release_first = asyncio.Event()
    active = 0
    overlaps = 0

    async def slow(ctx: PushContext, output: Callable[[str], None]) -> bool:
        nonlocal active, overlaps
        active += 1
        overlaps += active > 1
        output(f"building {ctx.new_sha[:7]}")
        if not first_running.is_set():
            first_running.set()
            await asyncio.wait_for(release_first.wait(), 30)
        active -= 1
        return True

    harness.on_push = slow
    push_a = asyncio.create_task(agit(clones[0], "push", harness.remote("demo"), "main"))
    await asyncio.wait_for(first_running.wait(), 30)
    waiting = asyncio.Event()

    def watch(line: str) -> None:
        if "Another push to demo is in progress" in line:
            waiting.set()

    push_b = asyncio.create_task(
        agit(clones[1], "push", harness.remote("demo"), "main", on_line=watch)
    )
    await asyncio.wait_for(waiting.wait(), 30)
    release_first.set()
    (rc_a, err_a), (rc_b, err_b) = await asyncio.gather(push_a, push_b)
    assert rc_a == 0, err_a
    assert rc_b != 0
    assert "main was updated by another push meanwhile" in err_b
    assert overlaps == 0
    assert server_ref(harness.repos, "demo") == git(clones[0], "rev-parse", "HEAD").strip()


async def test_mounted_under_a_prefix_in_starlette(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    async def authenticate(password: str) -> str | None:
        return "u" if password == KEY else None

    async def authorize(user: str, app: str) -> None:
        return None

    async def on_push(ctx: PushContext, output: Callable[[str], None]) -> bool:
        output("mounted build")
        return True

    git_server = GitServer(tmp_path / "repos", authenticate, authorize, on_push)
    port = free_port()
    app = Starlette(routes=[Mount("/git", app=git_server)])
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(uv.serve())
    try:
        for _ in range(200):
            if uv.started:
                break
            await asyncio.sleep(0.02)
        remote = f"http://heroku:{KEY}@127.0.0.1:{port}/git/demo.git"
        work = make_repo(tmp_path / "client" / "app", files={"Procfile": "web: x\n"})
        rc, err = await agit(work, "push", remote, "HEAD:master")
        assert rc == 0, err
        assert "remote: mounted build" in err
        rc, err = await agit(tmp_path / "client", "clone", remote, "copy")
        assert rc == 0, err
        assert (
            git(tmp_path / "client" / "copy", "rev-parse", "--abbrev-ref", "HEAD").strip()
            == "master"
        )
    finally:
        uv.should_exit = True
        await asyncio.wait_for(task, 10)
        await git_server.close()  # the integrator calls this on shutdown
