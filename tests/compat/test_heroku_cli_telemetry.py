"""Heroku's CLI v11, unchanged: `heroku telemetry`, `telemetry:add`, `telemetry:info`,
`telemetry:update` and `telemetry:remove` against a Fir app's telemetry drains."""

from __future__ import annotations

import re
import uuid

import pytest
from compat_support import HerokuCLI
from support import RunningPlatform

pytestmark = pytest.mark.slow
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def fir_app(platform: RunningPlatform) -> str:
    name = f"hktel-{uuid.uuid4().hex[:6]}"
    r = platform.client().post("/apps", json={"name": name, "generation": "fir"})
    assert r.status_code == 201, r.text
    return name


def test_add_list_info_update_remove(heroku: HerokuCLI, fir_app: str) -> None:
    out = heroku("telemetry", "-a", fir_app).stdout
    assert out.strip() == f"There are no telemetry drains in {fir_app}"

    res = heroku(
        "telemetry:add",
        "https://otlp.example.com",
        "-a",
        fir_app,
        "--signals",
        "traces,logs",
        "--headers",
        '{"x-honeycomb-team": "KEY"}',
    )
    assert res.stdout.strip() == "successfully added drain https://otlp.example.com"
    heroku("telemetry:add", "collector.example.com:4317", "-a", fir_app, "--transport", "grpc")

    listing = heroku("telemetry", "-a", fir_app).stdout
    assert listing.splitlines()[0] == f"=== {fir_app} Telemetry Drains"
    assert len(re.findall(UUID, listing)) == 2
    by_endpoint = {m.group(2): m.group(1) for m in re.finditer(rf"({UUID})\s+\S+\s+(\S+)", listing)}
    ids = [by_endpoint["https://otlp.example.com"], by_endpoint["collector.example.com:4317"]]
    assert "https://otlp.example.com" in listing and "collector.example.com:4317" in listing
    assert "traces,logs" in listing and "traces,metrics,logs" in listing

    info = heroku("telemetry:info", ids[0]).stdout
    assert info.splitlines()[0] == f"=== {ids[0]}"
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", info, re.M))
    assert fields["App"].replace("⬢ ", "") == fir_app
    assert fields["Signals"] == "traces, logs"
    assert fields["Endpoint"] == "https://otlp.example.com"
    assert fields["Transport"] == "HTTP"
    assert fields["Headers"] == '{"x-honeycomb-team":"KEY"}'

    # a partial exporter: only the headers change, the endpoint and type stay
    res = heroku("telemetry:update", ids[0], "--headers", '{"x-other": "V"}', "--signals", "all")
    assert f"Updating telemetry drain {ids[0]}... done" in res.stderr
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", res.stdout, re.M))
    assert fields["Signals"] == "traces, metrics, logs"
    assert fields["Endpoint"] == "https://otlp.example.com"
    assert fields["Headers"] == '{"x-other":"V"}'
    res = heroku("telemetry:update", ids[1], "--transport", "http", "--endpoint", "http://c:4318")
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", res.stdout, re.M))
    assert fields["Transport"] == "HTTP" and fields["Endpoint"] == "http://c:4318"

    res = heroku("telemetry:remove", ids[0])
    assert f"Removing telemetry drain {ids[0]}... done" in res.stderr
    res = heroku("telemetry:remove", "-a", fir_app)
    assert f"Removing all telemetry drains from app {fir_app}... done" in res.stderr
    assert "There are no telemetry drains" in heroku("telemetry", "-a", fir_app).stdout


def test_errors_read_as_herokus(heroku: HerokuCLI, platform: RunningPlatform, fir_app: str) -> None:
    res = heroku(
        "telemetry:add", "https://x.example.com", "-a", fir_app, "--signals", "spans", check=False
    )
    assert res.returncode != 0
    assert "Invalid signal option: spans." in res.stderr
    cedar = f"hkced-{uuid.uuid4().hex[:6]}"
    assert platform.client().post("/apps", json={"name": cedar}).status_code == 201
    res = heroku("telemetry:add", "https://x.example.com", "-a", cedar, check=False)
    assert res.returncode != 0
    assert "only available for Fir" in res.stderr
    res = heroku("telemetry:add", "not-a-url", "-a", fir_app, check=False)
    assert res.returncode != 0 and "http(s) URL" in res.stderr
    res = heroku("telemetry:info", str(uuid.uuid4()), check=False)
    assert res.returncode != 0 and "Couldn't find that telemetry drain" in res.stderr


def test_a_space_drain(heroku: HerokuCLI, platform: RunningPlatform) -> None:
    api = platform.client()
    team, space = f"hktt-{uuid.uuid4().hex[:6]}", f"hkts-{uuid.uuid4().hex[:6]}"
    assert api.post("/teams", json={"name": team}).status_code == 201
    r = api.post("/spaces", json={"name": space, "team": team, "generation": "fir"})
    assert r.status_code == 201, r.text
    res = heroku("telemetry:add", "https://space.example.com", "--space", space)
    assert res.stdout.strip() == "successfully added drain https://space.example.com"
    listing = heroku("telemetry", "--space", space).stdout
    [drain_id] = re.findall(UUID, listing)
    assert "https://space.example.com" in listing
    [drain] = api.get(f"/spaces/{space}/telemetry-drains").json()
    assert drain["id"] == drain_id and drain["owner"]["type"] == "space"
    info = heroku("telemetry:info", drain_id).stdout
    assert space in info and "https://space.example.com" in info
    heroku("telemetry:remove", drain_id)
    assert api.get(f"/spaces/{space}/telemetry-drains").json() == []
