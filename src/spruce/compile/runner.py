"""The classic buildpack runner: detect, compile, release, then the slug.

`run_build` turns a source tree into a slug the way Heroku's Cedar build system does:
`.slugignore` is applied, each buildpack's `bin/detect` / `bin/compile BUILD_DIR CACHE_DIR
ENV_DIR` / `bin/release BUILD_DIR` run as real processes (optionally as an unprivileged user),
compile output streams to the caller line by line, and the build dir becomes a gzipped tarball.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spruce.services.model import BuildFailed, BuildRequest, BuildResult

from .archive import create_slug
from .buildpacks import (
    BUILTIN_DIR,
    DETECTION_ORDER,
    Buildpack,
    BuildpackError,
    builtin,
    resolve_buildpack,
    stage_builtin,
)
from .procfile import ProcfileError, parse_procfile
from .slugignore import apply_slugignore

Output = Callable[[str], None]

# Variables from the platform's own environment that buildpacks need to reach package
# registries the way the host is configured (pip/npm/uv settings, CA bundles, proxies).
_PASSTHROUGH_PREFIXES = (
    "PIP_", "UV_", "NPM_CONFIG_", "npm_config_", "PYENV", "BUNDLE_MIRROR__",
)  # fmt: skip
_PASSTHROUGH = {
    "PATH", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
    "HTTPS_PROXY", "NO_PROXY", "SPRUCE_PYTHON_DIRS", "SPRUCE_DOTNET_ROOT", "DOTNET_ROOT",
    # Go and Java: the host's Go module proxy settings and JDK directory.
    "GOPROXY", "GONOSUMDB", "GONOPROXY", "GOPRIVATE", "GOSUMDB", "SPRUCE_JVM_DIR",
}  # fmt: skip


class BuildTimeout(BuildFailed):
    pass


@dataclass
class _Ctx:
    req: BuildRequest
    output: Output
    build_dir: Path
    env_dir: Path
    home: Path
    exports: list[Path] = field(default_factory=list)


def _stack_label(stack: str) -> str:
    return "-".join(part.capitalize() for part in stack.split("-"))


def passthrough_env() -> dict[str, str]:
    """The platform's own variables that buildpacks (classic and CNB) inherit."""
    return {
        k: v
        for k, v in os.environ.items()
        if k in _PASSTHROUGH or k.startswith(_PASSTHROUGH_PREFIXES)
    }


def pyenv_pin() -> dict[str, str]:
    """PYENV_VERSION naming the platform's own Python when it is one of pyenv's.

    Builds run in the app's directory, where pyenv's `python3` shim would pick the interpreter
    the app's .python-version names (say 3.8): buildpacks written in Python must keep running
    on the platform's Python whatever the app asks for.
    """
    versions = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
    base = Path(sys.base_prefix)
    if base.parent == versions:
        return {"PYENV_VERSION": base.name}
    return {}


def _base_env(ctx: _Ctx) -> dict[str, str]:
    env = passthrough_env()
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(HOME=str(ctx.home), STACK=ctx.req.stack, TMPDIR=str(ctx.home / "tmp"))
    for name, value in pyenv_pin().items():
        env.setdefault(name, value)
    if ctx.req.source_version:
        env["SOURCE_VERSION"] = ctx.req.source_version
    return env


async def _run(
    ctx: _Ctx, argv: Sequence[str], on_line: Output | None, capture: bool = False
) -> tuple[int, str]:
    """Run one buildpack executable in its own process group.

    Streaming mode passes stdout+stderr lines to on_line as they come; capture mode returns
    stdout (detect, release) and passes stderr lines to the build output.
    """
    preexec: dict[str, Any] = {}
    if ctx.req.run_as is not None and os.geteuid() == 0:
        uid, gid = ctx.req.run_as
        preexec = {"user": uid, "group": gid, "extra_groups": []}
    if ctx.exports:
        # Multi-buildpack: earlier buildpacks' `export` files are sourced before later ones run.
        sources = "; ".join(f'. "{p}"' for p in ctx.exports)
        argv = ["bash", "-c", f'{sources}; exec "$@"', "buildpack", *argv]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if not capture else asyncio.subprocess.PIPE,
        cwd=ctx.build_dir,
        env=_base_env(ctx),
        start_new_session=True,
        **preexec,
    )
    pump: asyncio.Task[None] | None = None
    try:
        if capture:
            out, err = await proc.communicate()
            for line in err.decode(errors="replace").splitlines():
                ctx.output(line)
            return_text = out.decode("utf-8", errors="replace")
        else:
            assert proc.stdout is not None
            pump = asyncio.create_task(_pump_lines(proc.stdout, on_line))
            # Process.wait() also waits for the pipes to close, which a daemon left behind by
            # the step would hold open: watch the exit status instead, then end the group.
            while proc.returncode is None:
                await asyncio.sleep(0.05)
            _kill_group(proc)
            try:
                await asyncio.wait_for(asyncio.shield(pump), 5)
            except TimeoutError:  # something escaped the process group and keeps stdout
                pump.cancel()
                transport = getattr(proc, "_transport", None)
                if transport is not None:
                    transport.close()
            return _returncode(proc), ""
        rc = await proc.wait()
    except BaseException:
        _kill_group(proc)
        if pump is not None:
            pump.cancel()
        await proc.wait()
        raise
    _kill_group(proc)  # stray background children must not outlive their step
    return rc, return_text


async def _pump_lines(stream: asyncio.StreamReader, on_line: Output | None) -> None:
    """Split output into lines without a line-length limit (npm can print long ones)."""
    pending = b""
    while chunk := await stream.read(65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            if on_line is not None:
                on_line(raw.decode("utf-8", errors="replace").rstrip("\r"))
    if pending and on_line is not None:
        on_line(pending.decode("utf-8", errors="replace").rstrip("\r"))


def _returncode(proc: asyncio.subprocess.Process) -> int:
    assert proc.returncode is not None
    return proc.returncode


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _prepare(req: BuildRequest) -> _Ctx:
    if req.work_dir.exists():
        shutil.rmtree(req.work_dir)
    build_dir = req.work_dir / "app"
    env_dir = req.work_dir / "env"
    home = req.work_dir / "home"
    # Like Heroku, the slug never carries the repository itself.
    shutil.copytree(req.source_dir, build_dir, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    for directory in (env_dir, home / "tmp", req.cache_dir):
        directory.mkdir(parents=True, exist_ok=True)
    for name, value in req.env.items():
        if not name or "/" in name or name in (".", ".."):
            raise BuildFailed(f"invalid config var name {name!r}")
        (env_dir / name).write_text(value)
    return _Ctx(req=req, output=lambda _line: None, build_dir=build_dir, env_dir=env_dir, home=home)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _stage_buildpack(ctx: _Ctx, index: int, bp: Buildpack) -> Buildpack:
    """Copy the buildpack into the work dir: it may write `export`, and run_as must read it."""
    dest = ctx.req.work_dir / "buildpacks" / str(index)
    if bp.path.parent == BUILTIN_DIR:
        stage_builtin(bp.path, dest)
    else:
        shutil.copytree(bp.path, dest, symlinks=True)
    for exe in (dest / "bin").iterdir():
        if exe.is_file():
            exe.chmod(exe.stat().st_mode | 0o755)
    if ctx.req.run_as is not None and os.geteuid() == 0:
        _chown_tree(dest.parent, *ctx.req.run_as)
    return Buildpack(ref=bp.ref, path=dest)


async def _detect(ctx: _Ctx, bp: Buildpack) -> str | None:
    rc, out = await _run(ctx, [str(bp.path / "bin" / "detect"), str(ctx.build_dir)], None, True)
    if rc != 0:
        return None
    first = out.strip().splitlines()
    return first[0].strip() if first else bp.ref


async def _select(ctx: _Ctx) -> list[tuple[Buildpack, str]]:
    req, output = ctx.req, ctx.output
    cache = req.buildpack_cache_dir or (req.cache_dir.parent / ".buildpacks")
    if not req.buildpacks:
        output("-----> Determining which buildpack to use for this app")
        tried = []
        for index, name in enumerate(DETECTION_ORDER):
            bp = _stage_buildpack(ctx, index, builtin(name))
            tried.append(bp.ref)
            description = await _detect(ctx, bp)
            if description is not None:
                return [(bp, description)]
        raise BuildFailed(
            "No default language could be detected for this app.\n"
            f"Tried buildpacks: {', '.join(tried)}.\n"
            "Add a Procfile or a language file (requirements.txt, package.json, ...), "
            "or set a buildpack explicitly."
        )
    if len(req.buildpacks) == 1:
        output(f"-----> Using buildpack: {req.buildpacks[0]}")
    else:
        output("-----> Using buildpacks:")
        for i, ref in enumerate(req.buildpacks, start=1):
            output(f"       {i}. {ref}")
    chosen = []
    for index, ref in enumerate(req.buildpacks):
        try:
            resolved = await resolve_buildpack(ref, cache)
        except BuildpackError as exc:
            raise BuildFailed(str(exc)) from exc
        bp = _stage_buildpack(ctx, index, resolved)
        description = await _detect(ctx, bp)
        if description is None:
            raise BuildFailed(f"App not compatible with buildpack: {ref}")
        chosen.append((bp, description))
    return chosen


async def _release(ctx: _Ctx, bp: Buildpack) -> dict[str, Any]:
    release = bp.path / "bin" / "release"
    if not release.is_file():
        return {}
    rc, out = await _run(ctx, [str(release), str(ctx.build_dir)], None, True)
    if rc != 0:
        raise BuildFailed(f"{bp.ref}: bin/release exited with status {rc}")
    try:
        data = yaml.safe_load(out) if out.strip() else {}
    except yaml.YAMLError as exc:
        raise BuildFailed(f"{bp.ref}: bin/release printed invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BuildFailed(f"{bp.ref}: bin/release must print a YAML mapping")
    return data


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    # YAML 1.1 reads `yes`/`on` as booleans; keep what a shell would see.
    return {
        str(k): (str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in value.items()
        if v is not None
    }


def _check_reachable(path: Path, uid: int, gid: int) -> None:
    """run_as needs search permission on every parent of the work and cache dirs."""
    for parent in [path, *path.parents]:
        try:
            st = parent.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            raise BuildFailed(
                f"the build user (uid {uid}) cannot reach {path}: {parent} is not searchable "
                "by it; put work and cache dirs under a directory with mode 0755"
            )


async def _build(ctx: _Ctx) -> BuildResult:
    req, output = ctx.req, ctx.output
    removed = apply_slugignore(ctx.build_dir)
    if removed:
        output(f"-----> Removed {len(removed)} path(s) listed in .slugignore")
    if req.run_as is not None and os.geteuid() == 0:
        uid, gid = req.run_as
        for path in (req.work_dir, req.cache_dir):
            _check_reachable(path, uid, gid)
            await asyncio.to_thread(_chown_tree, path, uid, gid)
    selected = await _select(ctx)
    release: dict[str, Any] = {}
    for bp, description in selected:
        output(f"-----> {description} app detected")
        argv = [str(bp.path / "bin" / "compile"), str(ctx.build_dir), str(req.cache_dir)]
        rc, _ = await _run(ctx, [*argv, str(ctx.env_dir)], output)
        if rc != 0:
            raise BuildFailed(f"Failed to compile {description} app ({bp.ref} exited {rc}).")
        if (bp.path / "export").is_file():
            ctx.exports.append(bp.path / "export")
        # Heroku uses the last buildpack's release output (the app's primary language).
        release = await _release(ctx, bp)

    defaults = _str_map(release.get("default_process_types"))
    procfile = ctx.build_dir / "Procfile"
    declared: dict[str, str] = {}
    if procfile.is_file():
        try:
            declared = parse_procfile(procfile.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise BuildFailed("Procfile is not a text file: it must be UTF-8 text.") from None
        except ProcfileError as exc:
            raise BuildFailed(str(exc)) from exc
    output("-----> Discovering process types")
    if procfile.is_file():
        output(f"       Procfile declares types     -> {', '.join(declared) or '(none)'}")
    if defaults:
        output(f"       Default types for buildpack -> {', '.join(defaults)}")
    process_types = {**defaults, **declared}

    output("-----> Compressing...")
    slug = await asyncio.to_thread(create_slug, ctx.build_dir, req.slugs_dir)
    output(f"       Done: {slug.size / 1e6:.1f}M")
    addons = release.get("addons") or []
    return BuildResult(
        slug_path=slug.path,
        slug_size=slug.size,
        checksum=slug.checksum,
        process_types=process_types,
        buildpack_description=selected[-1][1],
        buildpacks=[bp.ref for bp, _ in selected],
        stack=req.stack,
        config_vars=_str_map(release.get("config_vars")),
        addons=[str(a) for a in addons] if isinstance(addons, list) else [],
    )


async def run_build(req: BuildRequest, output: Output) -> BuildResult:
    """Build `req.source_dir` into a slug; raise BuildFailed (message already output)."""
    started = time.monotonic()
    output(f"-----> Building on the {_stack_label(req.stack)} stack")
    try:
        ctx = await asyncio.to_thread(_prepare, req)
        ctx.output = output
        async with asyncio.timeout(req.timeout):
            result = await _build(ctx)
    except TimeoutError:
        message = f"Build timed out after {req.timeout:g} seconds and was stopped."
        _fail(output, message)
        raise BuildTimeout(message) from None
    except BuildFailed as exc:
        _fail(output, exc.message)
        raise
    except OSError as exc:
        message = f"Build failed: {exc.strerror or exc}"
        _fail(output, message)
        raise BuildFailed(message) from exc
    finally:
        if not req.keep_work_dir:
            await asyncio.to_thread(shutil.rmtree, req.work_dir, True)
    result.duration = time.monotonic() - started
    return result


def _fail(output: Output, message: str) -> None:
    output(" !")
    for line in message.splitlines():
        output(f" !     {line}")
