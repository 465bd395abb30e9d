"""Settings of one Spruce installation (its home) and the endpoints it publishes."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


def default_home() -> Path:
    return Path(os.environ.get("SPRUCE_HOME") or Path.home() / ".spruce").expanduser()


@dataclass(frozen=True)
class AcmeOptions:
    """ACM's certificate authority (`spruce up --acme-*`); no directory: the internal CA."""

    directory: str | None = None
    email: str | None = None
    ca_bundle: str | None = None
    """A CA bundle to trust the directory's TLS with (pebble, a private CA)."""
    dns: str | None = None
    """rfc2136://KEYNAME:SECRET@HOST:PORT/ZONE?alg=hmac-sha256: DNS-01 for wildcards."""
    resolvers: tuple[str, ...] = ()
    """IP[:PORT] of the resolvers the pre-checks ask (default: the system's)."""
    caa_identities: tuple[str, ...] = ()
    """The CA's CAA issuer domains, when its directory names none."""
    renew_before: float = 30 * 86400.0
    """Seconds before expiry that ACM renews a certificate."""


@dataclass
class Settings:
    home: Path = field(default_factory=default_home)
    host: str = "127.0.0.1"
    api_port: int = 0
    http_port: int = 0
    https_port: int = 0
    git_port: int = 0
    domain: str = "localhost"
    router_workers: int = 0  # 0 = one per core
    api_workers: int = 0
    """Processes that accept the API's connections and answer its reads (api/workers.py);
    0: the main process serves the API alone."""
    operator_email: str = "admin@spruce.local"
    acme: AcmeOptions = field(default_factory=AcmeOptions)
    # Fir images: an operator's registry instead of the supervised docker-registry.
    registry_url: str | None = None
    registry_username: str | None = None
    registry_password: str | None = field(default=None, repr=False)
    registry_ca: Path | None = None
    # Where Fir apps' dynos run: "local" (the embedded default) or "kubernetes" (a cluster).
    dyno_backend: str = "local"
    kubeconfig: Path | None = None
    kube_namespace: str = "spruce"
    kube_endpoint_host: str | None = None
    """Route to this address rather than the pods' IPs (nodes that run on this host)."""
    kube_region_label: str | None = None
    """A node label (topology.kubernetes.io/region) whose value must be the app's region."""
    kube_regions: tuple[str, ...] = ()
    """`REGION=label:KEY=VALUE` or `REGION=kubeconfig:PATH` (dynos/backends/regions.py)."""
    regions: tuple[str, ...] = ()
    """The operator's regions for spaces (`NAME[=DESCRIPTION]`; `local` when empty)."""
    # Managed inference: where its HTTPS host listens (host:port; None: a free loopback
    # port, kept across restarts) and the model catalogue (None: the two local models).
    inference_host: str | None = None
    # Heroku's data API over HTTPS on this host:port too (HEROKU_DATA_HOST; port 443).
    data_host: str | None = None
    # Heroku Exec: SSH on this address's port 80, the exec manager over HTTPS on its 443.
    exec_host: str | None = None
    models_file: Path | None = None
    # Apps' git_url as https://heroku@host:port/<app>.git: Heroku's VS Code extension lists
    # only apps whose remote names "heroku" (docs/editor.md).
    heroku_git_names: bool = False

    @property
    def endpoints_path(self) -> Path:
        return self.home / "endpoints.json"


@dataclass
class Endpoints:
    api_url: str
    router_http_url: str
    router_https_url: str
    git_url: str
    api_key: str
    app_domain: str
    ca_bundle: str = ""
    inference_url: str = ""
    data_url: str = ""
    exec_url: str = ""

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=2)
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Endpoints:
        data = json.loads(Path(path).read_text())
        return cls(**{k: data.get(k, "") for k in cls.__dataclass_fields__})
