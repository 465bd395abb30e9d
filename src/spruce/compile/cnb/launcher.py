#!/usr/bin/python3 -I
"""Spruce's CNB launcher (Platform API 0.15 `launcher`), and the env rules the builder shares.

This file is copied as is into every image as `/cnb/lifecycle/launcher`, with symlinks
`/cnb/process/<type>` to it, so it uses the standard library only. It:
  * picks the process: `$0` named after a process type in `<layers>/config/metadata.toml`
    runs that process (user arguments replace its default `args`); `launcher -- CMD ARGS`
    runs CMD directly; `launcher CMD ARGS` runs CMD in bash (how `heroku run` / `run:inside`
    reach a Fir dyno);
  * builds the launch environment: each buildpack's launch layers in build order, layers in
    name order: `bin/` on PATH and `lib/` on LD_LIBRARY_PATH, then `env/`, `env.launch/` and
    `env.launch/<type>/` files with the spec's suffixes (override, default, prepend, append,
    delim); then it runs `exec.d/` and `exec.d/<type>/` executables, which write TOML to fd 3;
  * with bash (not for direct processes) sources `profile.d/` scripts and `<app>/.profile`;
  * replaces itself with the process (exec), so signals and the exit status are the app's.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tomllib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

DEFAULT_LAYERS = "/layers"
DEFAULT_APP = "/workspace"
PROCESS_DIR = "/cnb/process"
LAUNCH_PATH_VARS = (("bin", "PATH"), ("lib", "LD_LIBRARY_PATH"))
BUILD_PATH_VARS = (
    ("bin", "PATH"),
    ("lib", "LD_LIBRARY_PATH"),
    ("lib", "LIBRARY_PATH"),
    ("include", "CPATH"),
    ("pkgconfig", "PKG_CONFIG_PATH"),
)
POSIX_PATH_VARS = frozenset(var for _, var in BUILD_PATH_VARS)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ACTIONS = ("override", "default", "prepend", "append", "delim")


class LaunchError(Exception):
    """Launch failed before the process ran; `code` follows the spec (80-89)."""

    def __init__(self, message: str, code: int = 80) -> None:
        super().__init__(message)
        self.code = code


def escape_id(buildpack_id: str) -> str:
    """A buildpack's directory name under <layers>: `/` becomes `_` (as the lifecycle does)."""
    return buildpack_id.replace("/", "_")


# -- environment modification rules (buildpack spec, "Provided by the Buildpacks") ----------
def read_env_dir(directory: str) -> list[tuple[str, str, str]]:
    """(name, action, value) for each file of an env dir, in file-name order.

    The variable is the file name up to its first period; the suffix picks the action and a
    file without one overrides. Contents are used byte for byte (no shell, no stripping).
    """
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out: list[tuple[str, str, str]] = []
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        var, _, suffix = name.partition(".")
        action = suffix or "override"
        if action not in _ACTIONS or not _ENV_NAME.match(var):
            continue
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            out.append((var, action, fh.read()))
    return out


def apply_env_dir(env: MutableMapping[str, str], directory: str) -> None:
    """Apply one env dir's files to `env` (delimiters come from `<VAR>.delim` in that dir)."""
    entries = read_env_dir(directory)
    delims = {var: value for var, action, value in entries if action == "delim"}
    for var, action, value in entries:
        current = env.get(var, "")
        delim = delims.get(var, "")
        if action == "override":
            env[var] = value
        elif action == "default":
            if not current:
                env[var] = value
        elif action == "prepend":
            env[var] = value + delim + current if current else value
        elif action == "append":
            env[var] = current + delim + value if current else value


def prepend_layer_paths(
    env: MutableMapping[str, str], layer_dirs: Sequence[str], kinds: Sequence[tuple[str, str]]
) -> None:
    """Put the layers' bin/, lib/... first on the path variables, keeping `layer_dirs` order."""
    for sub, var in kinds:
        found = [os.path.join(d, sub) for d in layer_dirs if os.path.isdir(os.path.join(d, sub))]
        if found:
            current = env.get(var, "")
            env[var] = os.pathsep.join(found + ([current] if current else []))


def apply_layers_env(
    env: MutableMapping[str, str],
    buildpacks: Sequence[Sequence[str]],
    phase: str,
    process: str | None = None,
) -> None:
    """Apply the env of each buildpack's layers (a list per buildpack, in build order).

    phase "launch" uses env/, env.launch/ and env.launch/<process>/; phase "build" uses env/
    and env.build/. Layers of one buildpack come in name order.
    """
    kinds = LAUNCH_PATH_VARS if phase == "launch" else BUILD_PATH_VARS
    for layer_dirs in buildpacks:
        ordered = sorted(layer_dirs, key=os.path.basename)
        prepend_layer_paths(env, ordered, kinds)
        for layer in ordered:
            apply_env_dir(env, os.path.join(layer, "env"))
            if phase == "launch":
                apply_env_dir(env, os.path.join(layer, "env.launch"))
                if process:
                    apply_env_dir(env, os.path.join(layer, "env.launch", process))
            else:
                apply_env_dir(env, os.path.join(layer, "env.build"))


# -- the launch process -----------------------------------------------------------------------
@dataclass
class Process:
    type: str
    command: list[str]
    args: list[str] = field(default_factory=list)
    direct: bool = True
    working_dir: str = ""
    exec_env: list[str] = field(default_factory=lambda: ["*"])


@dataclass
class Metadata:
    buildpacks: list[str]  # ids in build order
    processes: dict[str, Process]
    default_process: str | None


def load_metadata(layers_dir: str) -> Metadata:
    path = os.path.join(layers_dir, "config", "metadata.toml")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return Metadata([], {}, None)
    except tomllib.TOMLDecodeError as exc:
        raise LaunchError(f"{path} is not valid TOML: {exc}") from None
    processes: dict[str, Process] = {}
    for item in data.get("processes", []):
        command = item.get("command", [])
        if isinstance(command, str):
            command = [command]
        processes[str(item["type"])] = Process(
            type=str(item["type"]),
            command=[str(c) for c in command],
            args=[str(a) for a in item.get("args", [])],
            direct=bool(item.get("direct", True)),
            working_dir=str(item.get("working-dir", "")),
            exec_env=[str(e) for e in item.get("exec-env", ["*"])] or ["*"],
        )
    ids = [str(b["id"]) for b in data.get("buildpacks", [])]
    default = data.get("buildpack-default-process-type")
    return Metadata(ids, processes, str(default) if default else None)


def launch_layers(layers_dir: str, buildpack_ids: Sequence[str]) -> list[list[str]]:
    """The layer directories present for each buildpack (the image holds only launch layers)."""
    out: list[list[str]] = []
    for bp in buildpack_ids:
        root = os.path.join(layers_dir, escape_id(bp))
        try:
            names = sorted(os.listdir(root))
        except FileNotFoundError:
            out.append([])
            continue
        out.append([os.path.join(root, n) for n in names if os.path.isdir(os.path.join(root, n))])
    return out


def _parse_exec_d_output(raw: bytes, source: str) -> dict[str, str]:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LaunchError(f"exec.d {source} wrote invalid TOML: {exc}", 83) from None
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str) or not _ENV_NAME.match(key):
            raise LaunchError(f"exec.d {source}: {key!r} must be a string variable", 83)
        out[key] = value
    return out


def run_exec_d(executable: str, env: Mapping[str, str], cwd: str) -> dict[str, str]:
    """Run one exec.d executable with fd 3 open for its TOML output."""
    import subprocess

    read_fd, write_fd = os.pipe()

    def give_fd3() -> None:
        os.dup2(write_fd, 3)

    try:
        proc = subprocess.Popen(
            # fd 3 is listed too: subprocess closes what pass_fds lacks after preexec_fn runs.
            [executable],
            env=dict(env),
            cwd=cwd,
            pass_fds=(write_fd, 3),
            preexec_fn=give_fd3,
        )
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        raise LaunchError(f"exec.d {executable}: {exc.strerror}", 83) from None
    os.close(write_fd)
    chunks = []
    with os.fdopen(read_fd, "rb") as reader:
        while chunk := reader.read(65536):
            chunks.append(chunk)
    if proc.wait() != 0:
        raise LaunchError(f"exec.d {executable} exited with status {proc.returncode}", 83)
    return _parse_exec_d_output(b"".join(chunks), executable)


def apply_exec_d(
    env: MutableMapping[str, str],
    buildpacks: Sequence[Sequence[str]],
    process: str | None,
    cwd: str,
) -> None:
    for sub in ("exec.d", *([os.path.join("exec.d", process)] if process else [])):
        for layer_dirs in buildpacks:
            for layer in sorted(layer_dirs, key=os.path.basename):
                directory = os.path.join(layer, sub)
                if not os.path.isdir(directory):
                    continue
                for name in sorted(os.listdir(directory)):
                    path = os.path.join(directory, name)
                    if os.path.isfile(path):
                        env.update(run_exec_d(path, env, cwd))


def profile_scripts(
    buildpacks: Sequence[Sequence[str]], process: str | None, app: str
) -> list[str]:
    scripts: list[str] = []
    for sub in ("profile.d", *([os.path.join("profile.d", process)] if process else [])):
        for layer_dirs in buildpacks:
            for layer in sorted(layer_dirs, key=os.path.basename):
                directory = os.path.join(layer, sub)
                if os.path.isdir(directory):
                    scripts += [
                        os.path.join(directory, n)
                        for n in sorted(os.listdir(directory))
                        if os.path.isfile(os.path.join(directory, n))
                    ]
    if os.path.isfile(os.path.join(app, ".profile")):
        scripts.append(os.path.join(app, ".profile"))
    return scripts


@dataclass
class Plan:
    """What to exec: argv, env and working directory (`resolve` computes it, `main` execs)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    process_type: str | None


def _eligible(process: Process, exec_env: str) -> bool:
    return "*" in process.exec_env or exec_env in process.exec_env


def resolve(argv: Sequence[str], environ: Mapping[str, str]) -> Plan:
    """Decide the process and build its environment, as the Platform spec's launcher does."""
    env = dict(environ)
    layers = env.pop("CNB_LAYERS_DIR", DEFAULT_LAYERS)
    app = env.pop("CNB_APP_DIR", DEFAULT_APP)
    env.pop("CNB_PROCESS_TYPE", None)
    exec_env = env.get("CNB_EXEC_ENV", "production")
    path = env.get("PATH", "").split(os.pathsep)
    while path and path[0].rstrip("/") == PROCESS_DIR:
        path.pop(0)
    env["PATH"] = os.pathsep.join(path)

    meta = load_metadata(layers)
    name = os.path.basename(argv[0]) if argv else "launcher"
    user_args = list(argv[1:])
    process_type: str | None = None
    if name in meta.processes:
        process = meta.processes[name]
        if not _eligible(process, exec_env):
            raise LaunchError(f"process type {name!r} is not available in {exec_env}", 82)
        process_type = name
        command, args = process.command, (user_args or process.args)
        direct = process.direct
        cwd = process.working_dir or app
    elif user_args and user_args[0] == "--":
        if len(user_args) < 2:
            raise LaunchError("launcher --: no command given", 82)
        command, args, direct, cwd = [user_args[1]], user_args[2:], True, app
    elif user_args:
        command, args, direct, cwd = [user_args[0]], user_args[1:], False, app
    else:
        default = meta.default_process
        if default is None or default not in meta.processes:
            raise LaunchError("no process type given and the image has no default process", 82)
        return resolve([os.path.join(PROCESS_DIR, default)], environ)

    buildpacks = launch_layers(layers, meta.buildpacks)
    apply_layers_env(env, buildpacks, "launch", process_type)
    apply_exec_d(env, buildpacks, process_type, app)
    if direct:
        return Plan([*command, *args], env, cwd, process_type)
    # Shell strategy: one bash sources the profile scripts, then runs the command string.
    sources = "".join(
        f". {shlex.quote(s)}\n" for s in profile_scripts(buildpacks, process_type, app)
    )
    script = " ".join([command[0], *(shlex.quote(a) for a in [*command[1:], *args])])
    body = f"{sources}cd {shlex.quote(cwd)}\neval {shlex.quote(script)}\n"
    return Plan(["bash", "-c", body], env, app, process_type)


def main(argv: Sequence[str]) -> int:
    try:
        plan = resolve(argv, os.environ)
        os.chdir(plan.cwd)
        os.execvpe(plan.argv[0], plan.argv, plan.env)
    except LaunchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.code
    except OSError as exc:
        print(f"ERROR: failed to launch: {plan.argv[0]}: {exc.strerror}", file=sys.stderr)
        return 81
    return 0  # not reached: exec replaced the process


if __name__ == "__main__":
    sys.exit(main(sys.argv))
