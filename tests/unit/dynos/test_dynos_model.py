"""Pure logic of the dyno manager: sizes, validation, restart policy, protocol bits, lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from spruce.dynos import SIZES, AppRuntime, DynoSettings, InvalidFormation, UnknownSize, get_size
from spruce.dynos.metrics import LoadAverage, load_line, mem_running_line, memory_line
from spruce.dynos.model import parse_dyno_name, validate_runtime
from spruce.dynos.process import MemSample
from spruce.dynos.rendezvous import exit_status_line, parse_secret_line
from spruce.dynos.sizes import DynoError


def test_sizes_are_heroku_s() -> None:
    assert [s.name for s in SIZES][:6] == [
        "eco",
        "basic",
        "standard-1x",
        "standard-2x",
        "performance-m",
        "performance-l",
    ]
    assert get_size("Standard-2X").memory_mb == 1024
    assert get_size("performance-m").memory_mb == 2560
    assert get_size("performance-l").memory_mb == 14336
    assert get_size("eco").sleeps and not get_size("basic").sleeps
    assert get_size(None).name == "standard-1x"
    assert get_size("hobby").name == "basic"
    for bad in ("standard-3x", "  x ", 5):
        with pytest.raises(UnknownSize):
            get_size(bad)  # type: ignore[arg-type]
    assert issubclass(UnknownSize, ValueError)


def app(tmp_path: Path, **kw: object) -> AppRuntime:
    args: dict[str, object] = dict(
        app_id="a1",
        app_name="demo",
        release_id="r1",
        release_version=1,
        slug=None,
        process_types={"web": "x"},
        formation={"web": (1, "basic")},
    )
    args.update(kw)
    return AppRuntime(**args)  # type: ignore[arg-type]


def test_validation(tmp_path: Path) -> None:
    validate_runtime(app(tmp_path), tmp_path)
    cases: list[dict[str, object]] = [
        {"formation": {"web": (1, "mega")}},
        {"formation": {"web": ("2", "basic")}},
        {"formation": {"web": (True, "basic")}},
        {"formation": {"web": 1}},
        {"formation": {"worker": (1, "basic")}},
        {"process_types": {"we b": "x"}},
        {"process_types": {"web": " "}},
        {"config": {"1A": "x"}},
        {"config": {"A": 1}},
        {"config": {"A": "a\0b"}},
        {"generation": "fir"},
        {"boot_timeout": 0},
        {"app_id": "../etc"},
    ]
    for case in cases:
        with pytest.raises(DynoError):
            validate_runtime(app(tmp_path, **case), tmp_path)
    with pytest.raises(DynoError, match="slug directory"):
        validate_runtime(app(tmp_path), tmp_path / "missing")
    # A process type without dynos may lack a command; quantity 0 of a missing type is fine.
    validate_runtime(app(tmp_path, formation={"web": (1, "basic"), "worker": (0, "eco")}), tmp_path)
    # The same bound as the app settings' formation_limit (1000).
    validate_runtime(app(tmp_path, formation={"web": (1000, "basic")}), tmp_path)
    with pytest.raises(InvalidFormation):
        validate_runtime(app(tmp_path, formation={"web": (1001, "basic")}), tmp_path)


def test_crash_cooloff_grows_to_a_cap() -> None:
    s = DynoSettings()
    delays = [s.cooloff(n) for n in range(1, 12)]
    assert delays[0] == 0.0  # first restart at once
    assert delays[1] == 20.0 and delays[2] == 40.0
    assert all(b >= a for a, b in zip(delays, delays[1:], strict=False))
    assert max(delays) == 20 * 60.0 and s.cooloff(1000) == 20 * 60.0
    t = DynoSettings(crash_restart_delays=(0.0, 0.0), crash_cooloff_base=1, crash_cooloff_max=3)
    assert [t.cooloff(n) for n in range(1, 7)] == [0.0, 0.0, 1, 2, 3, 3]


def test_quota_override() -> None:
    s = DynoSettings(memory_quota_mb={"basic": 10})
    assert s.quota_mb("basic") == 10 and s.quota_mb("standard-2x") == 1024


def test_dyno_names() -> None:
    assert parse_dyno_name("web.1") == ("web", 1)
    assert parse_dyno_name("run.1234") == ("run", 1234)
    for bad in ("web", "web.", ".1", "web.x", "a b.1", ""):
        with pytest.raises(DynoError):
            parse_dyno_name(bad)


def test_rendezvous_secret_line() -> None:
    assert parse_secret_line(b"abc") == (None, b"abc")
    assert parse_secret_line(b"abc\r\n") == ("abc", b"")
    assert parse_secret_line(b"abc\nmore") == ("abc", b"more")
    for bad in (b"\r\n", b"\xff\xfe\n", b"x" * 600):
        with pytest.raises(ValueError):
            parse_secret_line(bad)
    assert exit_status_line(3) == "\uffff heroku-command-exit-status: 3\n".encode()


def test_metrics_lines() -> None:
    m = MemSample(600.0, 590.5, 9.25, 0.25, 1234, 56, 1)
    assert mem_running_line(m, 512) == "Process running mem=600M(117.2%)"
    line = memory_line("web.1", "app-id", "dyno-id", m, 512)
    assert line == (
        "source=web.1 dyno=heroku.app-id.dyno-id sample#memory_total=600.00MB "
        "sample#memory_rss=590.50MB sample#memory_cache=9.25MB sample#memory_swap=0.25MB "
        "sample#memory_pgpgin=1234pages sample#memory_pgpgout=56pages "
        "sample#memory_quota=512.00MB"
    )
    load = LoadAverage()
    for _ in range(60):
        load.update(2, 20)
    assert 1.9 < load.avg[0] <= 2.0 and load.avg[0] > load.avg[1] > load.avg[2] > 0
    assert load_line("web.1", "a", "d", load).startswith(
        "source=web.1 dyno=heroku.a.d sample#load_avg_1m=2.00 sample#load_avg_5m="
    )
