"""Typed events, per-app settings and the platform's addresses."""

from __future__ import annotations

import logging

import pytest

from spruce.services.errors import InvalidParams
from spruce.services.events import AppChanged, AppCreated, EventBus, FormationChanged
from spruce.services.settings import AppSettings, PlatformAddresses


def test_subscribers_get_only_the_type_they_asked_for() -> None:
    bus = EventBus()
    created: list[AppCreated] = []
    changed: list[AppChanged] = []
    bus.subscribe(AppCreated, created.append)
    bus.subscribe(AppChanged, changed.append)
    bus.publish(AppCreated("a1"))
    bus.publish(AppChanged("a1", renamed=True))
    bus.publish(FormationChanged("a1"))
    assert created == [AppCreated("a1")]
    assert changed == [AppChanged("a1", renamed=True)]


def test_a_failing_subscriber_does_not_fail_the_publisher(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(event: AppCreated) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(AppCreated, broken)
    bus.subscribe(AppCreated, lambda e: seen.append(e.app_id))
    with caplog.at_level(logging.ERROR):
        bus.publish(AppCreated("a2"))
    assert seen == ["a2"]
    assert "AppCreated" in caplog.text


def test_app_settings_defaults_and_bounds() -> None:
    s = AppSettings()
    assert s.as_dict() == {"boot_timeout": 60, "formation_limit": 100}
    assert s.changed({"boot_timeout": 120}).boot_timeout == 120
    for bad in (
        {"boot_timeout": 0},
        {"boot_timeout": 3601},
        {"formation_limit": 1001},
        {"formation_limit": True},
        {"formation_limit": "5"},
        {"boot_timeout": 1.5},
        {"nope": 1},
    ):
        with pytest.raises(InvalidParams):
            s.changed(bad)
    with pytest.raises(InvalidParams, match="object"):
        s.changed([1])
    # What the store holds is read leniently: a bad stored value falls back to the default.
    assert AppSettings.from_stored({"boot_timeout": 99999, "formation_limit": 7}) == AppSettings(
        60, 7
    )
    assert AppSettings.from_stored(None) == AppSettings()


def test_addresses_are_the_one_place_for_urls() -> None:
    a = PlatformAddresses(
        "http://api:5000/", "https://git:5001", "http://{app}.x.test:80/", "x.test"
    )
    assert a.default_hostname("demo") == "demo.x.test"
    assert a.web_url("demo") == "http://demo.x.test:80/"
    assert a.git_remote("demo") == "https://git:5001/demo.git"
    assert a.stream_url("builds", "b1") == "http://api:5000/streams/builds/b1"
