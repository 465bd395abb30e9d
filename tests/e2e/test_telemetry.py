"""Telemetry drains end to end: a Fir app pushed with drains to real OTLP receivers (HTTP
and gRPC, decoding with opentelemetry-proto) gets the router's span and the app's own child
span in one trace, dyno and router metrics, and its log lines; a dead collector costs the
requests nothing; drains survive a restart."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from e2e_support import TUNING, Deployer
from otlp_receiver import GrpcReceiver, HttpReceiver
from support import RunningPlatform, start_platform, wait_for

from spruce.netutil import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
        reason="Fir needs docker-registry and bubblewrap (Debian packages)",
    ),
]

# The app's own instrumentation, stdlib only: it continues the router's trace (the
# traceparent header it got) with a child span, exported as OTLP/JSON to the endpoint the
# platform gave it in OTEL_EXPORTER_OTLP_ENDPOINT.
APP = r"""import http.server, json, os, secrets, sys, time, urllib.request

ENDPOINT = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]


def export_child(traceparent, path):
    _, trace_id, parent_id, _ = traceparent.split("-")
    now = time.time_ns()
    span = {"traceId": trace_id, "spanId": secrets.token_hex(8), "parentSpanId": parent_id,
            "name": "app " + path, "kind": 1, "startTimeUnixNano": str(now - 1000000),
            "endTimeUnixNano": str(now)}
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.instance.id", "value": {"stringValue": os.environ["HEROKU_DYNO_ID"]}}]},
        "scopeSpans": [{"scope": {"name": "test-app"}, "spans": [span]}]}]}
    req = urllib.request.Request(ENDPOINT + "/v1/traces", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        tp = self.headers.get("traceparent", "")
        if tp and self.path != "/plain":
            export_child(tp, self.path)
        print(f"served {self.path} traceparent={tp}", flush=True)
        body = json.dumps({"traceparent": tp, "tracestate": self.headers.get("tracestate"),
                           "app_id": os.environ.get("HEROKU_APP_ID"),
                           "version": os.environ.get("HEROKU_RELEASE_VERSION")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""
TELEMETRY = {"batch_interval": 0.2, "metrics_interval": 1.0, "export_timeout": 2.0}
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[HttpReceiver, GrpcReceiver]]:
    h, g = HttpReceiver(), GrpcReceiver()
    yield h, g
    h.close()
    g.close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    tuning = dict(TUNING, telemetry=TELEMETRY)
    p = start_platform(
        tmp_path_factory.mktemp("otel-home"), extra_env={"SPRUCE_TUNING": json.dumps(tuning)}
    )
    yield p
    p.stop()


@pytest.fixture(scope="module")
def app(
    platform: RunningPlatform,
    receivers: tuple[HttpReceiver, GrpcReceiver],
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    http_rx, grpc_rx = receivers
    name = f"otel-{uuid.uuid4().hex[:6]}"
    api = platform.client()
    app_id = api.post("/apps", json={"name": name, "generation": "fir"}).json()["id"]
    for exporter in (
        {"type": "otlphttp", "endpoint": http_rx.url, "headers": {"x-team": "k1"}},
        {"type": "otlp", "endpoint": grpc_rx.endpoint, "headers": {"x-team": "k2"}},
    ):
        r = api.post(
            "/telemetry-drains",
            json={
                "owner": {"id": app_id, "type": "app"},
                "signals": ["traces", "metrics", "logs"],
                "exporter": exporter,
            },
        )
        assert r.status_code == 201, r.text
    deploy = Deployer(platform, tmp_path_factory.mktemp("otel-repos"))
    repo = deploy.repo(
        name, files={"app.py": APP, "requirements.txt": "", "Procfile": "web: python app.py\n"}
    )
    res = deploy.push(repo, name)
    assert res.returncode == 0, res.stderr[-4000:]
    wait_for(lambda: deploy.get(name, "/plain").status_code == 200, 90, what="app up")
    return name


def get(p: RunningPlatform, app: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(
        p.endpoints["router_http_url"] + path,
        headers={"Host": f"{app}.localhost", **headers},
        timeout=30,
    )


@pytest.mark.parametrize("which", ["http", "grpc"])
def test_router_and_app_spans_share_one_trace(
    platform: RunningPlatform,
    receivers: tuple[HttpReceiver, GrpcReceiver],
    app: str,
    which: str,
) -> None:
    rx = receivers[0] if which == "http" else receivers[1]
    path = f"/traced-{which}"
    r = get(
        platform, app, path, traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", tracestate="a=1"
    )
    seen = r.json()
    # the dyno got the router's traceparent: the caller's trace, the router's span as parent
    _, trace_id, router_span, flags = seen["traceparent"].split("-")
    assert trace_id == CALLER_TRACE and router_span != CALLER_SPAN and flags == "01"
    assert seen["tracestate"] == "a=1"
    app_id = seen["app_id"]
    assert seen["version"].startswith("v")

    def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
        spans = [s for s in rx.received.spans() if s["trace_id"] == CALLER_TRACE]
        server = [s for s in spans if s["span_id"] == router_span]
        child = [s for s in spans if s["name"] == f"app {path}"]
        return (server[0], child[0]) if server and child else None

    server, child = wait_for(both, 30, what=f"both spans at the {which} receiver")
    assert server["parent_id"] == CALLER_SPAN and server["kind"] == 2  # SERVER
    assert child["parent_id"] == router_span  # the app's span is the router's child
    a = server["attributes"]
    assert a["http.request.method"] == "GET" and a["url.path"] == path
    assert a["http.response.status_code"] == 200 and a["heroku.dyno"].startswith("web-")
    assert len(a["heroku.request_id"]) >= 20 and "heroku.router.service_ms" in a
    for span in (server, child):
        res = span["resource"]
        assert res["cloud.provider"] == "heroku" and res["heroku.app.id"] == app_id
        # the release the dyno runs (its HEROKU_RELEASE_VERSION) is the resource's version
        assert res["service.name"] == app and res["service.version"] == seen["version"]
        assert res["service.instance.id"]
    assert "heroku.release.commit" in server["resource"]
    assert {h.get("x-team") for h in rx.received.headers("traces")} == {
        "k1" if which == "http" else "k2"
    }


def test_a_request_without_traceparent_starts_a_trace(
    platform: RunningPlatform, receivers: tuple[HttpReceiver, GrpcReceiver], app: str
) -> None:
    seen = get(platform, app, "/fresh", traceparent="00-zz-bad-01").json()
    _, trace_id, span_id, _ = seen["traceparent"].split("-")
    assert trace_id != CALLER_TRACE and len(trace_id) == 32 and len(span_id) == 16

    def root() -> dict[str, Any] | None:
        found = [s for s in receivers[0].received.spans() if s["span_id"] == span_id]
        return found[0] if found else None

    span = wait_for(root, 30, what="the new trace's root span")
    assert span["trace_id"] == trace_id and span["parent_id"] == ""


@pytest.mark.parametrize("which", ["http", "grpc"])
def test_dyno_and_router_metrics_and_logs_arrive(
    platform: RunningPlatform,
    receivers: tuple[HttpReceiver, GrpcReceiver],
    app: str,
    which: str,
) -> None:
    rx = receivers[0] if which == "http" else receivers[1]
    for _ in range(3):
        assert get(platform, app, "/metered").status_code == 200
    assert get(platform, app, "/plain").status_code == 200
    wanted = {
        "container.memory.usage",
        "container.cpu.time",
        "heroku.dyno.restarts",
        "http.server.request.duration",
        "heroku.router.requests",
    }
    metrics = wait_for(
        lambda: (m := rx.received.metrics()) and wanted <= set(m) and m,
        40,
        what=f"dyno and router metrics at the {which} receiver",
    )
    memory = metrics["container.memory.usage"][-1]
    assert memory["value"] > 0 and memory["attributes"]["heroku.dyno"].startswith("web-")
    assert memory["resource"]["heroku.app.name"] == app
    assert max(p["count"] for p in metrics["http.server.request.duration"]) >= 3

    def lines() -> list[dict[str, Any]] | None:
        logs = rx.received.logs()
        app_lines = [x for x in logs if x["body"].startswith("served /metered")]
        router = [x for x in logs if x["attributes"]["heroku.process"] == "router"]
        return logs if app_lines and router else None

    logs = wait_for(lines, 30, what=f"app and router log lines at the {which} receiver")
    line = next(x for x in logs if x["body"].startswith("served /metered"))
    assert line["attributes"]["heroku.source"] == "app"
    assert line["resource"]["service.instance.id"].startswith("web-")


def test_the_cli_lists_drains_and_cedar_is_refused(
    platform: RunningPlatform, receivers: tuple[HttpReceiver, GrpcReceiver], app: str
) -> None:
    out = platform.cli("telemetry", "-a", app).stdout
    assert f"=== {app} Telemetry Drains" in out
    assert receivers[0].url in out and receivers[1].endpoint in out
    cedar = f"cedar-{uuid.uuid4().hex[:6]}"
    app_id = platform.client().post("/apps", json={"name": cedar}).json()["id"]
    r = platform.client().post(
        "/telemetry-drains",
        json={
            "owner": {"id": app_id, "type": "app"},
            "signals": ["logs"],
            "exporter": {"type": "otlphttp", "endpoint": "https://x.example.com"},
        },
    )
    assert r.status_code == 422 or r.status_code == 400, r.text
    assert r.json()["message"].startswith("Telemetry drains are only available for Fir")


def test_a_dead_collector_costs_requests_nothing(
    platform: RunningPlatform, receivers: tuple[HttpReceiver, GrpcReceiver], app: str
) -> None:
    """Requests with only a dead (and then a slow) collector behind the drains are as fast
    as with a live one; the lost signals are counted, not waited for."""
    drains = platform.client().get(f"/apps/{app}/telemetry-drains").json()

    def timed(n: int = 100) -> float:
        url = platform.endpoints["router_http_url"] + "/plain"
        samples = []
        with httpx.Client(headers={"Host": f"{app}.localhost"}, timeout=30) as c:
            for _ in range(n):
                t0 = time.perf_counter()
                assert c.get(url).status_code == 200
                samples.append(time.perf_counter() - t0)
        samples.sort()
        return samples[len(samples) // 2]

    live = timed()
    slow = HttpReceiver(delay=5.0)
    dead_port = free_port("127.0.0.1")  # nothing listens there
    try:
        for d, endpoint in zip(drains, (f"http://127.0.0.1:{dead_port}", slow.url), strict=True):
            r = platform.client().patch(
                f"/telemetry-drains/{d['id']}",
                json={"exporter": {"type": "otlphttp", "endpoint": endpoint}},
            )
            assert r.status_code == 200, r.text
        slow_or_dead = timed()
        wait_for(lambda: slow.hits > 0, 10, what="the slow collector reached")

        def reported() -> str | None:
            session = (
                platform.client().post(f"/apps/{app}/log-sessions", json={"lines": 1500}).json()
            )
            text = httpx.get(session["logplex_url"], timeout=30).text
            lines = [x for x in text.splitlines() if "heroku[telemetry]: Error L10" in x]
            return lines[-1] if lines else None

        line = wait_for(reported, 30, what="the drops reported in the app's log")
        assert "dropped" in line and "signals" in line
    finally:
        for d in drains:  # back as they were, for the tests after this one
            platform.client().patch(
                f"/telemetry-drains/{d['id']}", json={"exporter": d["exporter"]}
            )
        slow.close()
    live_again = timed()
    # The medians (a few ms on loopback) stay within the live runs' spread on a shared
    # machine: half as much again, plus 2 ms. A request that waited for an export would take
    # the collector's 5 s, or the export timeout.
    assert slow_or_dead < 1.5 * max(live, live_again) + 0.002, (live, slow_or_dead, live_again)


def test_drains_survive_a_restart(
    platform: RunningPlatform, receivers: tuple[HttpReceiver, GrpcReceiver], app: str
) -> None:
    """(Last in the module: the platform it leaves running is a new one on the same home.)"""
    before = platform.client().get(f"/apps/{app}/telemetry-drains").json()
    assert platform.stop() == 0
    tuning = dict(TUNING, telemetry=TELEMETRY)
    again = start_platform(platform.home, extra_env={"SPRUCE_TUNING": json.dumps(tuning)})
    try:
        after = again.client().get(f"/apps/{app}/telemetry-drains").json()
        assert after == before and len(after) == 2
        assert sorted(d["exporter"]["headers"]["x-team"] for d in after) == ["k1", "k2"]
        wait_for(lambda: get(again, app, "/plain").status_code == 200, 60, what="app back")
        seen = get(again, app, "/after-restart").json()
        span_id = seen["traceparent"].split("-")[2]
        wait_for(
            lambda: any(s["span_id"] == span_id for s in receivers[1].received.spans()),
            30,
            what="spans exported after the restart",
        )
    finally:
        again.stop()
