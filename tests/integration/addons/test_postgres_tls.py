"""Heroku Postgres as Heroku runs it: TLS required, pg_stat_statements, the allowed extensions.

Each through a real client: psql, psycopg, and a Django app configured with
dj-database-url's `ssl_require=True`, as Heroku's docs show.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio

from spruce.addons.pgconf import has_pgextwlist
from spruce.addons.postgres import PostgresProvider
from spruce.addons.runtime import find_postgres_bindir
from spruce.certs.ca import InternalCA

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def ca(module_home: Path) -> InternalCA:
    return InternalCA(module_home / "ca")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def provider(module_home: Path, ca: InternalCA):
    p = PostgresProvider(module_home, ca=ca)
    yield p
    await p.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def url(provider: PostgresProvider) -> str:
    return (await provider.provision("pg-tls", "essential-0"))["URL"]


def psql(url: str, sql: str, sslmode: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    psql_bin = shutil.which("psql") or "psql"
    dsn = url if sslmode is None else f"{url}?sslmode={sslmode}"
    return subprocess.run(
        [psql_bin, dsn, "-X", "-At", "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent", **env},
    )


async def test_url_keeps_herokus_form(url: str) -> None:
    assert url.startswith("postgres://u") and "@127.0.0.1:" in url and "?" not in url


async def test_psql_with_sslmode_require_and_plain_refused(url: str) -> None:
    res = psql(url, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", "require")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "t"
    refused = psql(url, "SELECT 1", "disable")
    assert refused.returncode != 0
    assert "no encryption" in refused.stderr
    password = url.split(":")[2].split("@")[0]
    assert password not in refused.stderr


async def test_certificate_comes_from_the_internal_ca(url: str, ca: InternalCA) -> None:
    # verify-full checks the chain against the CA and the name (the URL's 127.0.0.1)
    res = psql(
        url,
        "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        "verify-full",
        PGSSLROOTCERT=str(ca.cert_path),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith("TLSv1.")
    other = InternalCA(ca.directory.parent / "other-ca")
    bad = psql(url, "SELECT 1", "verify-ca", PGSSLROOTCERT=str(other.cert_path))
    assert bad.returncode != 0 and "certificate verify failed" in bad.stderr


async def test_psycopg_sslmode_require(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        await psycopg.AsyncConnection.connect(url, sslmode="disable")


async def test_django_with_ssl_require(url: str) -> None:
    res = subprocess.run(
        [sys.executable, str(HERE / "django_app" / "manage.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DATABASE_URL": url},
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out == {
        "sslmode": "require",
        "ssl": True,
        "tls_version": out["tls_version"],
        "users": ["ada"],
    }
    assert out["tls_version"].startswith("TLSv1.")


async def test_pg_stat_statements_in_each_database(url: str, provider: PostgresProvider) -> None:
    other = (await provider.provision("pg-tls-2", "standard-0"))["URL"]
    for u in (url, other):
        async with await psycopg.AsyncConnection.connect(u, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
                " ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"
            )
            assert await cur.fetchone() == ("public",)
            await conn.execute("CREATE TABLE IF NOT EXISTS t (x int)")
            for _ in range(3):
                await conn.execute("SELECT count(*) FROM t WHERE x > 7")
            cur = await conn.execute(
                "SELECT calls FROM pg_stat_statements WHERE query LIKE %s AND userid ="
                " (SELECT usesysid FROM pg_user WHERE usename = current_user)",
                ("SELECT count(*) FROM t WHERE x > $1",),
            )
            assert await cur.fetchone() == (3,)
            # `pg:outliers --reset` on Essential plans
            await conn.execute("SELECT _heroku.pg_stat_statements_reset()")
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_statements WHERE query LIKE 'SELECT count(*) FROM t%%'"
            )
            assert await cur.fetchone() == (0,)


@pytest.mark.skipif(
    not has_pgextwlist(find_postgres_bindir(None)),
    reason="pgextwlist (postgresql-15-pgextwlist) is not installed",
)
async def test_allowed_extensions_creatable_and_listed(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        # trusted ones and ones only pgextwlist lets a non-superuser create
        for ext in ("pgcrypto", "hstore", "citext", "uuid-ossp", "pg_trgm", "bloom", "pgrowlocks"):
            await conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{ext}"')
        cur = await conn.execute("SELECT gen_random_uuid()::text, 'a=>1'::hstore -> 'a'")
        row = await cur.fetchone()
        assert row is not None and len(row[0]) == 36 and row[1] == "1"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("CREATE EXTENSION dblink")  # not on Heroku's Essential list
        # the query `heroku pg:extensions` runs on an Essential plan
        cur = await conn.execute(
            "SELECT name, installed_version IS NOT NULL FROM pg_available_extensions WHERE name IN"
            " (SELECT unnest(string_to_array(current_setting('rds.allowed_extensions'), ',')))"
        )
        listed = dict(await cur.fetchall())
        assert listed["hstore"] is True and listed["pg_stat_statements"] is True
        assert listed["earthdistance"] is False and "dblink" not in listed
        cur = await conn.execute("SELECT current_setting('extwlist.extensions')")
        row = await cur.fetchone()
        assert row is not None and set(row[0].split(",")) == set(listed)
