"""Finding buildpacks: built-in names, local paths, http(s) tarball URLs and git URLs.

Built-ins live in ``spruce/compile/buildpacks/<name>`` and are ordinary classic buildpacks
(``bin/detect``, ``bin/compile``, ``bin/release``). Auto-detection tries them in Heroku's
builder order: languages first (ruby, python, java, php, go, dotnet, nodejs last), then static,
then procfile.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from .archive import SourceArchiveError, extract_tarball

BUILTIN_DIR = Path(__file__).parent / "buildpacks"
# Language logic shared by the classic buildpacks and the CNBs (stdlib-only modules); staging
# copies it into each built-in buildpack's lib/, where its executables import it from.
SHARED_LIB_DIR = BUILTIN_DIR / "shared"

# Heroku's order (Ruby, Python, Java, PHP, Go ...) with nodejs the last language, because so
# many apps of other languages carry a package.json; static and procfile come after them all.
DETECTION_ORDER: tuple[str, ...] = (
    "ruby", "python", "java", "php", "go", "dotnet", "nodejs", "static", "procfile",
)  # fmt: skip

# Names users type (heroku/python, heroku-community/static) and Heroku's classic buildpack
# URLs all map to our built-ins, so an app.json or `buildpacks:set` written for Heroku works.
_ALIASES: dict[str, str] = {
    "python": "python",
    "nodejs": "nodejs",
    "node": "nodejs",
    "static": "static",
    "procfile": "procfile",
    "dotnet": "dotnet",
    "go": "go",
    "ruby": "ruby",
    "java": "java",
    "php": "php",
}
_HEROKU_URLS: dict[str, str] = {
    "heroku-buildpack-python": "python",
    "heroku-buildpack-nodejs": "nodejs",
    "heroku-buildpack-static": "static",
    "heroku-buildpack-dotnet": "dotnet",
    "heroku-buildpack-go": "go",
    "heroku-buildpack-ruby": "ruby",
    "heroku-buildpack-java": "java",
    "heroku-buildpack-php": "php",
    "procfile-cnb": "procfile",
}


class BuildpackError(ValueError):
    """A buildpack reference that cannot be resolved or fetched."""


@dataclass(frozen=True)
class Buildpack:
    ref: str  # what the user asked for, as shown in build output and BuildResult
    path: Path  # directory holding bin/


def builtin_name(ref: str) -> str | None:
    """Map `heroku/python`, `python`, or a Heroku buildpack URL to a built-in name."""
    ref = ref.strip()
    lowered = ref.lower()
    if lowered.startswith(("http://", "https://")):
        tail = lowered.rstrip("/").removesuffix(".git").rsplit("/", 1)[-1]
        return _HEROKU_URLS.get(tail)
    for prefix in ("heroku/", "heroku-community/", "spruce/"):
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
            break
    return _ALIASES.get(lowered)


def builtin(name: str) -> Buildpack:
    return Buildpack(ref=f"heroku/{name}", path=BUILTIN_DIR / name)


def stage_builtin(source: Path, dest: Path) -> None:
    """Copy a built-in buildpack (classic or CNB) to `dest`, with the shared modules in lib/."""
    shutil.copytree(source, dest, symlinks=True)
    lib = dest / "lib"
    lib.mkdir(exist_ok=True)
    for module in sorted(SHARED_LIB_DIR.glob("*.py")):
        shutil.copy2(module, lib / module.name)


def _bin_root(directory: Path) -> Path:
    """A downloaded tarball may wrap the buildpack in one top-level directory."""
    if (directory / "bin").is_dir():
        return directory
    children = [c for c in directory.iterdir() if not c.name.startswith(".")]
    if len(children) == 1 and (children[0] / "bin").is_dir():
        return children[0]
    raise BuildpackError("the buildpack archive has no bin/ directory")


async def _download(url: str, cache_dir: Path, timeout: float) -> Path:
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    target = cache_dir / key
    if (target / ".complete").exists():
        return _bin_root(target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        archive = Path(tmp) / "buildpack.tgz"
        try:
            async with httpx.AsyncClient(follow_redirects=True, timeout=timeout) as client:
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise BuildpackError(
                            f"could not download buildpack {url}: HTTP {response.status_code}"
                        )
                    with archive.open("wb") as fh:
                        async for chunk in response.aiter_bytes():
                            fh.write(chunk)
        except httpx.HTTPError as exc:
            raise BuildpackError(f"could not download buildpack {url}: {exc}") from exc
        unpacked = Path(tmp) / "unpacked"
        try:
            extract_tarball(archive, unpacked)
        except SourceArchiveError as exc:
            raise BuildpackError(f"buildpack {url} is not a usable tarball: {exc}") from exc
        _bin_root(unpacked)
        (unpacked / ".complete").touch()
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)
    return _bin_root(target)


_TARBALL_SUFFIXES = (".tgz", ".tar.gz", ".tar")


def is_git_url(ref: str) -> bool:
    """A buildpack Heroku clones rather than downloads: git's own schemes, file://, or an
    http(s) URL of a repository (ending in .git, or a GitHub repository's page); each may
    name a branch, tag or commit after `#`."""
    url = ref.strip().split("#", 1)[0].rstrip("/")
    lowered = url.lower()
    if lowered.startswith(("git://", "ssh://", "git+ssh://", "file://", "git@")):
        return True
    if not lowered.startswith(("http://", "https://")):
        return False
    if lowered.endswith(".git"):
        return True
    if lowered.endswith(_TARBALL_SUFFIXES):
        return False
    host_path = lowered.split("://", 1)[1].split("/")
    return host_path[0] == "github.com" and len(host_path) == 3


async def _git(args: list[str], cwd: Path | None, timeout: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, "timed out"
    return proc.returncode or 0, out.decode(errors="replace")


async def _clone(ref: str, cache_dir: Path, timeout: float) -> Path:
    """Clone a git buildpack, as Heroku does on every build (a branch moves on); kept by
    commit, so builds that run at once each keep the tree they cloned."""
    if shutil.which("git") is None:
        raise BuildpackError(f"buildpack {ref} is a git repository, and git is not installed")
    url, _, rev = ref.strip().partition("#")
    key = hashlib.sha256(url.encode()).hexdigest()[:24]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        work = Path(tmp) / "clone"
        branch = ["--branch", rev] if rev else []
        rc, out = await _git(
            ["clone", "--quiet", "--depth", "1", *branch, url, str(work)], None, timeout
        )
        if rc != 0 and rev:  # a commit, which --branch cannot name: all of it, then check out
            shutil.rmtree(work, ignore_errors=True)
            rc, out = await _git(["clone", "--quiet", url, str(work)], None, timeout)
            if rc == 0:
                rc, out = await _git(["checkout", "--quiet", rev], work, timeout)
        if rc != 0:
            last = (out.strip().splitlines() or ["git failed"])[-1]
            raise BuildpackError(f"could not clone buildpack {ref}: {last}")
        rc, head = await _git(["rev-parse", "HEAD"], work, timeout)
        target = cache_dir / f"git-{key}-{head.strip()[:40]}"
        if not (target / ".complete").exists():
            shutil.rmtree(work / ".git", ignore_errors=True)
            _bin_root(work)
            (work / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)
            os.replace(work, target)
    return _bin_root(target)


async def resolve_buildpack(ref: str, download_cache: Path, timeout: float = 60.0) -> Buildpack:
    """Turn one user-facing reference into a directory with bin/detect, compile, release."""
    name = builtin_name(ref)
    if name is not None:
        return Buildpack(ref=ref, path=BUILTIN_DIR / name)
    if is_git_url(ref):
        return Buildpack(ref=ref, path=await _clone(ref, download_cache, timeout))
    if ref.startswith(("http://", "https://")):
        return Buildpack(ref=ref, path=await _download(ref, download_cache, timeout))
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "bin" / "compile").is_file():
            raise BuildpackError(f"buildpack {ref} has no bin/compile")
        return Buildpack(ref=ref, path=path.resolve())
    raise BuildpackError(
        f"unknown buildpack {ref!r}: use a built-in name "
        f"({', '.join('heroku/' + n for n in DETECTION_ORDER)}), a directory, a git URL "
        "or an http(s) URL of a .tgz buildpack"
    )


def detect_builtin(app_dir: str | os.PathLike[str]) -> tuple[str, str] | None:
    """(buildpack ref, description) of the first built-in whose bin/detect accepts app_dir.

    Runs the real detect scripts in DETECTION_ORDER, as a build does; None when none applies.
    """
    import subprocess

    for name in DETECTION_ORDER:
        bp = builtin(name)
        detect = bp.path / "bin" / "detect"
        # Installed package data may lose its executable bit: run through bash then.
        argv = [str(detect)] if os.access(detect, os.X_OK) else ["bash", str(detect)]
        proc = subprocess.run(
            [*argv, str(app_dir)],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if proc.returncode == 0:
            return bp.ref, (proc.stdout.strip().splitlines() or [name])[0]
    return None
