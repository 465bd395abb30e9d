"""Telemetry drains: validation, Fir only, partial updates, access, sealed headers, and what
the exporter and the router's table are handed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from service_fakes import Harness

from spruce.services.errors import Forbidden, InvalidParams, NotFound
from spruce.services.routing import TELEMETRY_FEATURE
from spruce.services.telemetry import CEDAR_REFUSED
from spruce.services.views import UserView
from spruce.store.models import TelemetryDrain


def body(app_id: str, **over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "owner": {"id": app_id, "type": "app"},
        "signals": ["traces", "logs"],
        "exporter": {
            "type": "otlphttp",
            "endpoint": "https://otlp.example.com",
            "headers": {"x-honeycomb-team": "secret-key"},
        },
    }
    b.update(over)
    return b


def test_a_drain_for_a_fir_app_reaches_the_exporter_and_the_router(
    harness: Harness, owner: UserView
) -> None:
    s = harness.services
    app = s.apps.create(owner, "firtel", generation="fir")
    d = s.telemetry.create(owner, body(app.id))
    assert d.signals == ("traces", "logs") and d.headers == {"x-honeycomb-team": "secret-key"}
    target = harness.telemetry.targets[app.id]
    assert [x.id for x in target.drains] == [d.id]
    assert target.drains[0].headers == (("x-honeycomb-team", "secret-key"),)
    attrs = dict(target.resource)
    assert attrs["cloud.provider"] == "heroku" and attrs["heroku.app.id"] == app.id
    assert attrs["service.name"] == "firtel"
    route = s.routing.app_route(app.id)
    assert route is not None and TELEMETRY_FEATURE in route.features
    # the key is sealed at rest
    with s.store.session() as session:
        row = session.get(TelemetryDrain, d.id)
        assert row is not None and "secret-key" not in row.headers_sealed
    # several drains, each with its own signals
    d2 = s.telemetry.create(owner, body(app.id, signals=["logs"]))
    assert [x.id for x in s.telemetry.for_app(owner, "firtel")] == [d.id, d2.id]
    s.telemetry.delete(owner, d.id)
    route = s.routing.app_route(app.id)
    assert route is not None and TELEMETRY_FEATURE not in route.features  # logs only now
    s.telemetry.delete(owner, d2.id)
    assert harness.telemetry.targets[app.id].drains == ()


def test_cedar_apps_are_refused(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "cedartel")
    with pytest.raises(InvalidParams) as e:
        s.telemetry.create(owner, body(app.id))
    assert e.value.message == CEDAR_REFUSED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signals": []}, "non-empty"),
        ({"signals": ["traces", "traces"]}, "twice"),
        ({"signals": ["spans"]}, "Invalid signal"),
        ({"exporter": {"type": "zipkin", "endpoint": "x"}}, "otlphttp or otlp"),
        ({"exporter": {"type": "otlphttp", "endpoint": "otlp.example.com:4317"}}, "http"),
        ({"exporter": {"type": "otlp", "endpoint": "https://x.example.com"}}, "host:port"),
        ({"exporter": {"type": "otlp", "endpoint": "a:1", "headers": {"bad name": "v"}}}, "name"),
        (
            {"exporter": {"type": "otlp", "endpoint": "a:1", "headers": {"k": "v" * 1001}}},
            "1000",
        ),
        (
            {
                "exporter": {
                    "type": "otlp",
                    "endpoint": "a:1",
                    "headers": {f"h{i}": "v" for i in range(21)},
                }
            },
            "20",
        ),
        ({"exporter": {"type": "otlphttp", "endpoint": "https://" + "a" * 1000}}, "1000"),
        ({"extra": 1}, "Unexpected"),
    ],
)
def test_bad_drains_are_refused_with_a_sentence(
    harness: Harness, owner: UserView, change: dict[str, Any], message: str
) -> None:
    s = harness.services
    app = s.apps.create(owner, "badtel", generation="fir")
    with pytest.raises(InvalidParams, match=message):
        s.telemetry.create(owner, body(app.id, **change))


def test_missing_fields_and_space_owners(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "misstel", generation="fir")
    with pytest.raises(InvalidParams, match="Missing required params: exporter"):
        s.telemetry.create(owner, {"owner": {"id": app.id, "type": "app"}, "signals": ["logs"]})
    with pytest.raises(NotFound, match="space"):
        s.telemetry.create(owner, body(app.id, owner={"id": app.id, "type": "space"}))


def test_a_partial_exporter_is_merged(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "patchtel", generation="fir")
    d = s.telemetry.create(owner, body(app.id))
    d = s.telemetry.update(owner, d.id, {"exporter": {"headers": {"a": "b"}}})
    assert d.endpoint == "https://otlp.example.com" and d.headers == {"a": "b"}
    d = s.telemetry.update(owner, d.id, {"signals": ["metrics"]})
    assert d.signals == ("metrics",) and d.exporter_type == "otlphttp"
    with pytest.raises(InvalidParams, match="host:port"):
        s.telemetry.update(owner, d.id, {"exporter": {"type": "otlp"}})
    d = s.telemetry.update(owner, d.id, {"exporter": {"type": "otlp", "endpoint": "c:4317"}})
    assert (d.exporter_type, d.endpoint) == ("otlp", "c:4317")
    assert harness.telemetry.targets[app.id].drains[0].endpoint == "c:4317"


def test_others_cannot_see_a_drain(harness: Harness, owner: UserView, tmp_path: Path) -> None:
    s = harness.services
    app = s.apps.create(owner, "privtel", generation="fir")
    d = s.telemetry.create(owner, body(app.id))
    other = s.accounts.create_user("other@example.com")[0]
    with pytest.raises(NotFound):
        s.telemetry.get(other, d.id)
    with pytest.raises(NotFound):
        s.telemetry.delete(other, d.id)
    with pytest.raises(NotFound):
        s.telemetry.get(owner, "not-a-uuid")


def test_drops_are_reported_in_the_apps_log_once(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "droptel", generation="fir")
    d = s.telemetry.create(owner, body(app.id))
    s.telemetry.report_drops()
    assert not [x for x in harness.logs.messages(app.id) if "L10" in x]
    harness.telemetry.dropped[d.id] = 7
    s.telemetry.report_drops()
    s.telemetry.report_drops()  # nothing new: no second line
    lines = [x for x in harness.logs.messages(app.id) if "L10" in x]
    assert len(lines) == 1 and "dropped 7 signals" in lines[0] and "otlp.example.com" in lines[0]
    assert "secret-key" not in lines[0]


def test_a_space_drain_takes_every_app_in_the_space(harness: Harness, owner: UserView) -> None:
    s = harness.services
    s.teams.create(owner, "teltm")
    space = s.spaces.create(owner, "telsp", "teltm", generation="fir")
    s.spaces.allocate(space.id)
    inside = s.apps.create(owner, "telin", placement=s.spaces.placement(owner, None, "telsp", None))
    outside = s.apps.create(owner, "telout", generation="fir")
    d = s.telemetry.create(owner, body(space.id, owner={"id": "telsp", "type": "space"}))
    assert d.owner_type == "space" and d.owner.id == space.id and d.owner.name == "telsp"
    assert [x.id for x in s.telemetry.for_space(owner, "telsp")] == [d.id]
    assert s.telemetry.get(owner, d.id).owner.name == "telsp"
    assert [x.id for x in harness.telemetry.targets[inside.id].drains] == [d.id]
    assert outside.id not in harness.telemetry.targets  # not in the space: untouched
    # the app's own drain and the space's both reach it
    own = s.telemetry.create(owner, body(inside.id))
    assert {x.id for x in harness.telemetry.targets[inside.id].drains} == {d.id, own.id}
    # someone outside the space's team sees neither the space's drains nor the drain
    stranger, _ = s.accounts.create_user("stranger-tel@example.com")
    with pytest.raises(Forbidden):  # as for the space itself
        s.telemetry.for_space(stranger, "telsp")
    with pytest.raises(NotFound):
        s.telemetry.get(stranger, d.id)
    s.telemetry.delete(owner, d.id)
    assert [x.id for x in harness.telemetry.targets[inside.id].drains] == [own.id]


def test_a_cedar_space_refuses_a_drain(harness: Harness, owner: UserView) -> None:
    s = harness.services
    s.teams.create(owner, "celtm")
    s.spaces.create(owner, "celsp", "celtm", generation="cedar")
    with pytest.raises(InvalidParams, match="only available for Fir"):
        s.telemetry.create(owner, body("x", owner={"id": "celsp", "type": "space"}))
