"""Small helpers for Spruce's built-in CNBs (stdlib only): TOML out, Heroku-style logs."""

from __future__ import annotations

import json
import os
import sys
import time

_STARTED = time.monotonic()


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_layer_toml(
    layers_dir: str,
    name: str,
    *,
    launch: bool = False,
    build: bool = False,
    cache: bool = False,
    metadata: dict[str, object] | None = None,
) -> None:
    lines = [
        "[types]",
        f"launch = {toml_value(launch)}",
        f"build = {toml_value(build)}",
        f"cache = {toml_value(cache)}",
    ]
    if metadata:
        lines.append("[metadata]")
        lines += [f"{k} = {toml_value(v)}" for k, v in sorted(metadata.items())]
    with open(os.path.join(layers_dir, name + ".toml"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def read_layer_metadata(layers_dir: str, name: str) -> dict[str, object]:
    import tomllib

    try:
        with open(os.path.join(layers_dir, name + ".toml"), "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    meta = data.get("metadata")
    return meta if isinstance(meta, dict) else {}


def write_processes(layers_dir: str, processes: list[tuple[str, list[str], bool]]) -> None:
    """launch.toml with (type, command, default) processes."""
    out = []
    for kind, command, default in processes:
        out += [
            "[[processes]]",
            f"type = {toml_value(kind)}",
            f"command = {toml_value(command)}",
            f"default = {toml_value(default)}",
            "",
        ]
    with open(os.path.join(layers_dir, "launch.toml"), "w") as fh:
        fh.write("\n".join(out))


def write_env(layer_dir: str, name: str, value: str, sub: str = "env") -> None:
    directory = os.path.join(layer_dir, sub)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as fh:
        fh.write(value)


def header(title: str) -> None:
    print(f"\n## {title}\n", flush=True)


def bullet(text: str, level: int = 0) -> None:
    print("  " * level + "- " + text, flush=True)


def done() -> None:
    bullet(f"Done (finished in {time.monotonic() - _STARTED:.1f}s)")


def fail(message: str) -> None:
    print("\n! " + message.replace("\n", "\n! "), file=sys.stderr, flush=True)
    sys.exit(1)


def platform_env(
    platform_dir: str, deny: frozenset[str] | set[str] = frozenset()
) -> dict[str, str]:
    """User-provided variables (<platform>/env/), as a buildpack with clear-env would read them."""
    out: dict[str, str] = {}
    env_dir = os.path.join(platform_dir, "env")
    if os.path.isdir(env_dir):
        for name in sorted(os.listdir(env_dir)):
            path = os.path.join(env_dir, name)
            if name not in deny and os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    out[name] = fh.read()
    return out
