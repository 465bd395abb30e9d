"""The inference server's configuration file (YAML or JSON; see docs/inference.md).

listen: ["127.0.0.1:8443", "127.0.0.3:443"]   # host:port; 443 needs root
certificate: /path/inference.pem              # PEM chain (leaf first)
private_key: /path/inference.key
link: /path/inference-link.sock               # the control plane's LinkServer
models: /path/models.yaml                     # optional; default: the local models
cache_dir: /path/cache                        # converted model files
max_waiting: 64                               # queued requests per model
key_cache_seconds: 5                          # how long a verified key is trusted
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ServerConfig:
    listen: tuple[tuple[str, int], ...]
    certificate: Path
    private_key: Path
    link: Path
    cache_dir: Path
    models: Path | None = None
    max_waiting: int = 64
    key_cache_seconds: float = 5.0
    log_level: str = "info"


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen: {value!r} is not host:port")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(f"listen: {host!r} must be an IP address") from None
    return host, int(port)


def load_config(path: Path) -> ServerConfig:
    text = Path(path).read_text()
    try:
        raw: Any = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    known = set(ServerConfig.__dataclass_fields__)
    if unknown := set(raw) - known:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    base = Path(path).resolve().parent

    def file(name: str, required: bool = True) -> Path | None:
        v = raw.get(name)
        if v is None:
            if required:
                raise ConfigError(f"{path}: {name} is required")
            return None
        p = Path(str(v)).expanduser()
        return p if p.is_absolute() else base / p

    listen = raw.get("listen")
    if isinstance(listen, str):
        listen = [listen]
    if not isinstance(listen, list) or not listen:
        raise ConfigError(f"{path}: listen is required: a list of host:port")
    cert, key, link = file("certificate"), file("private_key"), file("link")
    assert cert and key and link
    for p in (cert, key):
        if not p.is_file():
            raise ConfigError(f"{path}: {p} does not exist")
    cache = file("cache_dir", required=False) or base / "inference-cache"
    return ServerConfig(
        listen=tuple(parse_listen(str(v)) for v in listen),
        certificate=cert,
        private_key=key,
        link=link,
        cache_dir=cache,
        models=file("models", required=False),
        max_waiting=int(raw.get("max_waiting", 64)),
        key_cache_seconds=float(raw.get("key_cache_seconds", 5.0)),
        log_level=str(raw.get("log_level", "info")),
    )
