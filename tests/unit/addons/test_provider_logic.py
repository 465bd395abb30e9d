"""Pure logic: redis settings validation, config rendering, binaries, state files."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from pathlib import Path

import pytest

from spruce.addons.base import InvalidSettingError, MissingBinaryError
from spruce.addons.kvs import (
    RedisProvider,
    _needs_certificate,
    render_config,
    validate_keyspace_flags,
    validate_policy,
    validate_timeout,
)
from spruce.addons.pgcluster import grant_traverse
from spruce.addons.runtime import StateFile, find_postgres_bindir, find_redis_server, redact


def test_setting_validation() -> None:
    assert validate_policy("volatile-ttl") == "volatile-ttl"
    with pytest.raises(InvalidSettingError, match="noeviction"):
        validate_policy("lru")
    assert validate_timeout("0") == 0
    with pytest.raises(InvalidSettingError):
        validate_timeout("soon")
    assert validate_keyspace_flags("") == ""
    assert validate_keyspace_flags("Ex") == "Ex"
    with pytest.raises(InvalidSettingError, match="K and/or E"):
        validate_keyspace_flags("g$")


def test_render_config(tmp_path: Path) -> None:
    entry = {
        "port": 7001,
        "tls_port": 7002,
        "password": "psecret",
        "admin_password": "asecret",
        "settings": {
            "maxmemory_policy": "allkeys-lfu",
            "timeout": 9,
            "notify_keyspace_events": "Kx",
        },
    }
    plan = RedisProvider(tmp_path).plan("premium-0")
    text = render_config(tmp_path, entry, plan)
    lines = set(text.splitlines())
    assert "psecret" not in text and "asecret" not in text  # only hashes on disk
    assert {
        "port 7001",
        "tls-port 7002",
        "user default on #" + hashlib.sha256(b"psecret").hexdigest() + " ~* &* +@all -@admin",
        "appendonly yes",
        f"maxmemory {50 * 1024 * 1024}",
        "maxclients 40",
        "maxmemory-policy allkeys-lfu",
        "timeout 9",
        'notify-keyspace-events "Kx"',
        "bind 127.0.0.1",
    } <= lines


def test_state_file_is_private_and_atomic(tmp_path: Path) -> None:
    sf = StateFile(tmp_path / "deep" / "state.json")
    assert sf.load() == {}
    sf.save({"a": {"password": "x"}})
    assert stat.S_IMODE(os.stat(sf.path).st_mode) == 0o600
    assert sf.load() == {"a": {"password": "x"}}
    assert not sf.path.with_suffix(".tmp").exists()


def test_redact() -> None:
    assert redact("auth failed for pw123 at host", ["pw123", ""]) == (
        "auth failed for [REDACTED] at host"
    )


def test_missing_binaries_name_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(MissingBinaryError, match="not found at"):
        find_redis_server(str(tmp_path / "nope"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaryError, match="apt-get install redis-server"):
        find_redis_server()
    with pytest.raises(MissingBinaryError, match="apt-get install postgresql"):
        find_postgres_bindir(system_glob=str(tmp_path / "pg" / "*" / "bin"))
    with pytest.raises(MissingBinaryError, match="in /nonexistent"):
        find_postgres_bindir("/nonexistent")


def test_postgres_bindir_newest_version_first(tmp_path: Path) -> None:
    for version in ("9", "15", "13"):
        d = tmp_path / version / "bin"
        d.mkdir(parents=True)
        for name in ("postgres", "initdb"):
            (d / name).write_text("")
    found = find_postgres_bindir(system_glob=str(tmp_path / "*" / "bin"))
    assert found == tmp_path / "15" / "bin"
    assert find_postgres_bindir(str(tmp_path / "9" / "bin")) == tmp_path / "9" / "bin"


def test_grant_traverse_adds_only_search_bit(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    target = closed / "inner" / "data"
    target.mkdir(parents=True)
    closed.chmod(0o700)
    logged: list[str] = []
    grant_traverse(target, uid=54321, gid=54321, log=lambda a, m: logged.append(m))
    assert stat.S_IMODE(os.stat(closed).st_mode) == 0o701
    assert any(str(closed) in m for m in logged)


def test_certificate_renewal_window(tmp_path: Path) -> None:
    from spruce.certs.ca import InternalCA

    ca = InternalCA(tmp_path / "ca")
    path = tmp_path / "server.pem"
    assert _needs_certificate(path)
    path.write_text(ca.issue(["localhost"], validity=dt.timedelta(days=10)).cert_pem)
    assert _needs_certificate(path)
    path.write_text(ca.issue(["localhost"]).cert_pem)
    assert not _needs_certificate(path)
