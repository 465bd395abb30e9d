"""What the platform's PostgreSQL cluster runs with: TLS, preloaded libraries, allowed extensions.

Heroku Postgres requires TLS, preloads `pg_stat_statements` and lets an add-on's role create
a documented list of extensions. Spruce does the same with `pg_hba.conf` (add-on roles over
`hostssl` only), `shared_preload_libraries` and pgextwlist (Debian's
`postgresql-<major>-pgextwlist`), whose `extwlist.extensions` setting is the list. The same
list is also set as `rds.allowed_extensions`, the setting Heroku's CLI reads for Essential
plans (`pg:extensions`).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from cryptography import x509

from spruce.services.model import IssuedCertificate

# Heroku's documented extensions for Essential plans; those this machine's PostgreSQL ships
# are offered (postgis, pgrouting, pg_partman, vector... when their packages are installed).
HEROKU_EXTENSIONS: tuple[str, ...] = (
    "address_standardizer",
    "address_standardizer_data_us",
    "amcheck",
    "autoinc",
    "bloom",
    "btree_gin",
    "btree_gist",
    "citext",
    "cube",
    "dict_int",
    "earthdistance",
    "fuzzystrmatch",
    "hstore",
    "hypopg",
    "insert_username",
    "intarray",
    "isn",
    "lo",
    "ltree",
    "moddatetime",
    "pg_partman",
    "pg_stat_statements",
    "pg_trgm",
    "pgcrypto",
    "pgrouting",
    "pgrowlocks",
    "pgstattuple",
    "plpgsql",
    "postgis",
    "postgis_raster",
    "postgis_tiger_geocoder",
    "postgis_topology",
    "refint",
    "seg",
    "sslinfo",
    "tablefunc",
    "tcn",
    "tsm_system_rows",
    "tsm_system_time",
    "unaccent",
    "uuid-ossp",
    "vector",
)

RENEW_BEFORE = dt.timedelta(days=30)


class CertificateSource(Protocol):
    """The internal CA (certs.ca.InternalCA) as far as the cluster needs it."""

    def issue(
        self, hostnames: Sequence[str], ips: Sequence[str] | None = None
    ) -> IssuedCertificate: ...


def pg_config(bindir: Path, what: str) -> Path | None:
    exe = bindir / "pg_config"
    if not exe.exists():
        return None
    try:
        out = subprocess.run(
            [str(exe), what], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def available_extensions(bindir: Path) -> list[str]:
    """Heroku's list, restricted to the extensions whose control files this server has."""
    share = pg_config(bindir, "--sharedir") or bindir.parent / "share"
    ext_dir = share / "extension"
    return [e for e in HEROKU_EXTENSIONS if (ext_dir / f"{e}.control").exists()]


def has_pgextwlist(bindir: Path) -> bool:
    libdir = pg_config(bindir, "--pkglibdir") or bindir.parent / "lib"
    return (libdir / "pgextwlist.so").exists()


# Rules are matched in order: the superuser (the platform itself) with or without TLS, every
# other role over TLS only. A plain connection of an add-on role finds no rule and is refused.
HBA = """\
# Written by Spruce at each start: add-on roles connect over TLS only, as on Heroku.
host     all  {admin}  127.0.0.1/32  scram-sha-256
hostssl  all  all      127.0.0.1/32  scram-sha-256
"""


def write_hba(path: Path, admin_role: str) -> None:
    path.write_text(HBA.format(admin=admin_role))


def ensure_server_certificate(
    ca: CertificateSource, cert_path: Path, key_path: Path, host: str
) -> bool:
    """Issue the server's certificate when missing or near its end; True when (re)issued."""
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE:
            return False
    ips = sorted({"127.0.0.1", host} if _is_ip(host) else {"127.0.0.1"})
    names = ["localhost"] if _is_ip(host) or host == "localhost" else [host, "localhost"]
    issued = ca.issue(names, ips)
    cert_path.write_text(issued.cert_pem)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(issued.key_pem)
    return True


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def server_settings(
    *, hba_file: Path, cert_file: Path, key_file: Path, extensions: Sequence[str], pgextwlist: bool
) -> list[str]:
    """`-c name=value` arguments for TLS, statistics and the allowed extensions."""
    allowed = ",".join(extensions)
    preload = ["pg_stat_statements"] + (["pgextwlist"] if pgextwlist else [])
    settings = {
        "hba_file": str(hba_file),
        "ssl": "on",
        "ssl_cert_file": str(cert_file),
        "ssl_key_file": str(key_file),
        "ssl_min_protocol_version": "TLSv1.2",
        "shared_preload_libraries": ",".join(preload),
        "pg_stat_statements.track": "top",
        "extwlist.extensions": allowed,
        "rds.allowed_extensions": allowed,
    }
    argv: list[str] = []
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    return argv
