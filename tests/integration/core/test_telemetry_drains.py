"""The telemetry-drain API and `spruce telemetry:*` against a real `spruce up` (SQLite and
PostgreSQL): shapes, Heroku's errors, access, partial updates, the CLI's output."""

from __future__ import annotations

import re
import uuid
from typing import Any

from support import RunningPlatform

SDK = "application/vnd.heroku+json; version=3.sdk"


def fir_app(p: RunningPlatform) -> dict[str, Any]:
    r = p.client().post("/apps", json={"name": f"tel-{uuid.uuid4().hex[:8]}", "generation": "fir"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def drain_body(app_id: str, **exporter: Any) -> dict[str, Any]:
    return {
        "owner": {"id": app_id, "type": "app"},
        "signals": ["traces", "metrics", "logs"],
        "exporter": {"type": "otlphttp", "endpoint": "https://otlp.example.com", **exporter},
    }


def test_the_resource_round_trip(api_platform: RunningPlatform) -> None:
    app = fir_app(api_platform)
    api = api_platform.client()
    api.headers["Accept"] = SDK
    made = []
    for i in range(3):
        r = api.post("/telemetry-drains", json=drain_body(app["id"], headers={"k": str(i)}))
        assert r.status_code == 201, r.text
        made.append(r.json())
    d = made[0]
    assert set(d) == {"id", "created_at", "updated_at", "owner", "signals", "exporter"}
    assert d["owner"] == {"id": app["id"], "type": "app"}
    assert d["exporter"] == {
        "type": "otlphttp",
        "endpoint": "https://otlp.example.com",
        "headers": {"k": "0"},
    }
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", d["created_at"])
    listed = api.get(f"/apps/{app['name']}/telemetry-drains").json()
    # Range's default (field id), as for every list of the API
    assert [x["id"] for x in listed] == sorted(x["id"] for x in made)
    r = api.patch(f"/telemetry-drains/{d['id']}", json={"exporter": {"headers": {}}})
    assert r.status_code == 200 and r.json()["exporter"]["endpoint"] == "https://otlp.example.com"
    assert r.json()["exporter"]["headers"] == {}
    assert api.get(f"/telemetry-drains/{d['id']}").json() == r.json()
    assert api.delete(f"/telemetry-drains/{d['id']}").json()["id"] == d["id"]
    r = api.get(f"/telemetry-drains/{d['id']}")
    assert r.status_code == 404 and r.json()["id"] == "not_found"


def test_errors_are_herokus(api_platform: RunningPlatform) -> None:
    app = fir_app(api_platform)
    api = api_platform.client()
    r = api.post("/telemetry-drains", json={**drain_body(app["id"]), "signals": ["spans"]})
    assert r.status_code == 422 and r.json()["id"] == "invalid_params"
    assert "Invalid signal" in r.json()["message"]
    r = api.post("/telemetry-drains", json=drain_body(app["id"], type="otlp"))
    assert r.status_code == 422 and "host:port" in r.json()["message"]
    cedar = api.post("/apps", json={"name": f"ced-{uuid.uuid4().hex[:8]}"}).json()
    r = api.post("/telemetry-drains", json=drain_body(cedar["id"]))
    assert r.status_code == 422 and "Fir" in r.json()["message"]
    r = api.get("/spaces/nope/telemetry-drains")
    assert r.status_code == 404 and r.json()["message"] == "Couldn't find that space."
    # someone else's drain is not found, as for any app one cannot see
    mine = api.post("/telemetry-drains", json=drain_body(app["id"])).json()
    key = api_platform.cli(
        "users:create", f"eve-{uuid.uuid4().hex[:6]}@example.com", "--home",
        str(api_platform.home), check=True,
    ).stdout.strip().split()[-1]  # fmt: skip
    eve = api_platform.client(key)
    for call in (eve.get, eve.delete):
        r = call(f"/telemetry-drains/{mine['id']}")
        assert r.status_code == 404 and r.json()["id"] == "not_found"
    r = eve.patch(f"/telemetry-drains/{mine['id']}", json={"signals": ["logs"]})
    assert r.status_code == 404
    # the platform's OTLP endpoint refuses a token it did not make
    r = api.post(
        f"/spruce/otlp/{app['id']}/{'0' * 40}/v1/traces",
        content=b"",
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status_code == 404
    assert api.get(f"/telemetry-drains/{mine['id']}").json()["signals"] == [
        "traces",
        "metrics",
        "logs",
    ]


def test_the_spruce_cli(api_platform: RunningPlatform) -> None:
    app = fir_app(api_platform)["name"]
    cli = api_platform.cli
    assert cli("telemetry", "-a", app).stdout.strip() == f"There are no telemetry drains in {app}"
    res = cli("telemetry:add", "https://otlp.example.com", "-a", app, "--signals", "traces,logs",
              "--headers", '{"x-key": "K"}', check=True)  # fmt: skip
    assert res.stdout.strip() == "successfully added drain https://otlp.example.com"
    out = cli("telemetry", "-a", app).stdout
    assert out.splitlines()[0] == f"=== {app} Telemetry Drains"
    drain_id = re.findall(r"[0-9a-f-]{36}", out)[0]
    assert "traces,logs" in out and "https://otlp.example.com" in out
    info = cli("telemetry:info", drain_id, check=True).stdout
    assert info.splitlines() == [
        f"=== {drain_id}",
        f"App:       ⬢ {app}",
        "Signals:   traces, logs",
        "Endpoint:  https://otlp.example.com",
        "Transport: HTTP",
        'Headers:   {"x-key":"K"}',
    ]
    res = cli("telemetry:update", drain_id, "--transport", "grpc", "--endpoint", "c.example:4317",
              check=True)  # fmt: skip
    assert f"Updating telemetry drain {drain_id}... done" in res.stderr
    assert "Transport: gRPC" in res.stdout and "c.example:4317" in res.stdout
    res = cli("telemetry:update", drain_id)
    assert res.returncode == 1
    assert "Requires either --signals, --endpoint, --transport or HEADERS" in res.stderr
    res = cli("telemetry:add", "https://x.example.com", "-a", app, "--signals", "nope")
    assert res.returncode == 1 and "Invalid signal option: nope." in res.stderr
    res = cli("telemetry:add", "https://x.example.com", "-a", app, "--transport", "udp")
    assert "Expected --transport=udp to be one of: http, grpc" in res.stderr
    res = cli("telemetry:remove", "-a", app, check=True)
    assert f"Removing all telemetry drains from app {app}... done" in res.stderr
    assert "There are no telemetry drains" in cli("telemetry", "-a", app).stdout
