"""`spruce up --exec-host ADDRESS`: Heroku Exec's two listeners on one loopback address,
as Heroku's CLI needs them: the exec manager (the API over TLS, `/api/v2`) on port 443,
where HEROKU_EXEC_URL points, and the SSH gateway on port 80 (the CLI's fixed port). Both
ports need root (or CAP_NET_BIND_SERVICE)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spruce.certs.ca import InternalCA
from spruce.dynos.exec_gateway import EXEC_PORT, ExecGateway
from spruce.dynos.manager import DynoManager

MANAGER_PORT = 443


@dataclass
class ExecHost:
    gateway: ExecGateway
    sock: socket.socket
    """The exec manager: the API served over TLS on MANAGER_PORT."""
    tls: tuple[Path, Path]
    url: str
    """HEROKU_EXEC_URL for Heroku's CLI."""


def make_exec_host(
    address: str | None,
    home: Path,
    ca: InternalCA,
    manager: DynoManager,
    bind: Callable[[str, int], socket.socket],
) -> ExecHost | None:
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise OSError(f"--exec-host: {address!r} is not an IP address") from None
    if not ip.is_loopback:
        raise OSError(
            f"--exec-host: {address} is not a loopback address; Heroku Exec listens on "
            "loopback only (e.g. 127.0.0.5)"
        )
    host = str(ip)
    try:
        sock = bind(host, MANAGER_PORT)
    except OSError as e:
        raise OSError(f"--exec-host: {e} (ports 443 and 80 need root)") from None
    certs = home / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    tls = (certs / "exec.pem", certs / "exec.key")
    ca.issue_to_files(*tls, ["localhost"], [host])
    gateway = ExecGateway(manager, host, home / "exec" / "ssh_host_ed25519_key", EXEC_PORT)
    shown = f"[{host}]" if ip.version == 6 else host
    return ExecHost(gateway, sock, tls, f"https://{shown}/")
