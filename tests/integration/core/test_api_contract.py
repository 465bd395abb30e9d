"""Every core resource, through the real API, validated against Heroku's schema."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from support import RunningPlatform, wait_for

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "data" / "heroku-platform-api-schema.json").read_text()
)
# The schema pins git_url and web_url to Heroku's hosts; Spruce serves both from its own, by design.
del SCHEMA["definitions"]["app"]["definitions"]["git_url"]["pattern"]
del SCHEMA["definitions"]["app"]["definitions"]["web_url"]["pattern"]
# Fields Spruce returns beyond this older schema file (Fir-era additions); all others must match.
FORMAT_CHECKER = jsonschema.Draft4Validator.FORMAT_CHECKER


def check(resource: str, data: Any) -> None:
    """Validate against the resource's schema and require every documented property."""
    schema = {"$ref": f"#/definitions/{resource}", "definitions": SCHEMA["definitions"]}
    items = data if isinstance(data, list) else [data]
    props = SCHEMA["definitions"][resource].get("properties", {})
    for item in items:
        jsonschema.Draft4Validator(schema, format_checker=FORMAT_CHECKER).validate(item)
        missing = set(props) - set(item)
        assert not missing, f"{resource} lacks {missing}"


def error_of(resp: httpx.Response, status: int, id_: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"id", "message"} and body["id"] == id_
    return str(body["message"])


@pytest.fixture(scope="module")
def api(api_platform: RunningPlatform) -> httpx.Client:
    return api_platform.client()


def test_account_and_rate_limits(api: httpx.Client) -> None:
    r = api.get("/account")
    assert r.status_code == 200
    check("account", r.json())
    assert r.headers["Request-Id"]
    assert int(r.headers["RateLimit-Remaining"]) > 0
    rl = api.get("/account/rate-limits").json()
    check("rate-limit", rl)


def test_auth_errors(api_platform: RunningPlatform) -> None:
    with httpx.Client(base_url=api_platform.api_url) as anon:
        error_of(anon.get("/apps"), 401, "unauthorized")
        error_of(anon.get("/apps", headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
        # HTTP Basic with the key as password (heroku3, git credential helpers).
        assert anon.get("/account", auth=("", api_platform.api_key)).status_code == 200
        assert anon.get("/account", auth=("anyone", api_platform.api_key)).status_code == 200


@pytest.mark.parametrize(
    "accept", ["3", "3.sdk", "3.fir", "3.cedar-acm", "3.run-inside", "3.account-quotas"]
)
def test_accept_variants(api: httpx.Client, accept: str) -> None:
    r = api.get("/account", headers={"Accept": f"application/vnd.heroku+json; version={accept}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")


def test_app_lifecycle(api: httpx.Client) -> None:
    name = "c-" + uuid.uuid4().hex[:8]
    r = api.post("/apps", json={"name": name, "region": "us", "stack": "heroku-24"})
    assert r.status_code == 201, r.text
    app = r.json()
    check("app", app)
    assert app["name"] == name and app["git_url"].endswith(f"/{name}.git")
    check("app", api.get(f"/apps/{name}").json())
    check("app", api.get(f"/apps/{app['id']}").json())
    listing = api.get("/apps").json()
    check("app", listing)
    assert name in [a["name"] for a in listing]
    assert name in [a["name"] for a in api.get("/users/~/apps").json()]
    r = api.patch(f"/apps/{name}", json={"maintenance": True, "build_stack": "heroku-22"})
    assert r.json()["maintenance"] is True and r.json()["build_stack"]["name"] == "heroku-22"
    new = name + "-r"
    r = api.patch(f"/apps/{name}", json={"name": new})
    assert r.status_code == 200 and r.json()["name"] == new
    error_of(api.get(f"/apps/{name}"), 404, "not_found")
    generated = api.post("/apps", json={}).json()
    assert generated["name"]
    r = api.delete(f"/apps/{new}")
    check("app", r.json())
    error_of(api.get(f"/apps/{new}"), 404, "not_found")
    api.delete(f"/apps/{generated['name']}")


def test_app_errors(api: httpx.Client) -> None:
    assert "Name must" in error_of(
        api.post("/apps", json={"name": "Bad_Name"}), 422, "invalid_params"
    )
    name = "e-" + uuid.uuid4().hex[:8]
    api.post("/apps", json={"name": name})
    assert "taken" in error_of(api.post("/apps", json={"name": name}), 422, "invalid_params")
    error_of(api.post("/apps", json={"region": "mars"}), 422, "invalid_params")
    error_of(
        api.post("/apps", content=b"{not json", headers={"Content-Type": "application/json"}),
        422,
        "invalid_params",
    )
    error_of(api.get("/no-such-endpoint"), 404, "not_found")
    api.delete(f"/apps/{name}")


def test_config_vars_and_releases(api: httpx.Client) -> None:
    name = "cf-" + uuid.uuid4().hex[:8]
    api.post("/apps", json={"name": name})
    assert api.get(f"/apps/{name}/config-vars").json() == {}
    r = api.patch(f"/apps/{name}/config-vars", json={"FOO": "bar", "BAZ": "1"})
    assert r.json() == {"FOO": "bar", "BAZ": "1"}
    r = api.patch(f"/apps/{name}/config-vars", json={"FOO": None})
    assert r.json() == {"BAZ": "1"}
    error_of(api.patch(f"/apps/{name}/config-vars", json={"BAD-KEY": "x"}), 422, "invalid_params")
    error_of(api.patch(f"/apps/{name}/config-vars", json=["x"]), 422, "invalid_params")
    rels = api.get(f"/apps/{name}/releases").json()
    check("release", rels)
    assert [r["description"] for r in rels] == [
        "Initial release",
        "Set FOO, BAZ config vars",
        "Remove FOO config vars",
    ]
    assert [r["current"] for r in rels] == [False, False, True]
    v2 = api.get(f"/apps/{name}/releases/2").json()
    check("release", v2)
    assert api.get(f"/apps/{name}/releases/{v2['id']}").json()["version"] == 2
    assert api.get(f"/apps/{name}/releases/2/config-vars").json() == {"FOO": "bar", "BAZ": "1"}
    error_of(api.get(f"/apps/{name}/releases/42"), 404, "not_found")
    r = api.post(f"/apps/{name}/releases", json={"release": v2["id"]})
    assert r.status_code == 201
    check("release", r.json())
    assert r.json()["description"] == "Rollback to v2" and r.json()["version"] == 4
    assert api.get(f"/apps/{name}/config-vars").json() == {"FOO": "bar", "BAZ": "1"}
    api.delete(f"/apps/{name}")


def test_range_pagination(api: httpx.Client) -> None:
    name = "rg-" + uuid.uuid4().hex[:8]
    api.post("/apps", json={"name": name})
    for i in range(5):
        api.patch(f"/apps/{name}/config-vars", json={"N": str(i)})
    r = api.get(f"/apps/{name}/releases", headers={"Range": "version ..; max=2, order=desc"})
    assert r.status_code == 206
    assert [x["version"] for x in r.json()] == [6, 5]
    nxt = r.headers["Next-Range"]
    r2 = api.get(f"/apps/{name}/releases", headers={"Range": nxt})
    assert [x["version"] for x in r2.json()] == [4, 3]
    full = api.get(f"/apps/{name}/releases", headers={"Range": "version ..; max=1000"})
    assert full.status_code == 200 and len(full.json()) == 6
    error_of(api.get(f"/apps/{name}/releases", headers={"Range": "bogus"}), 422, "invalid_params")
    api.delete(f"/apps/{name}")


def test_formation(api: httpx.Client) -> None:
    name = "fm-" + uuid.uuid4().hex[:8]
    api.post("/apps", json={"name": name})
    slug = api.post(
        f"/apps/{name}/slugs",
        json={"process_types": {"web": "python -m http.server $PORT", "worker": "sleep 1000"}},
    )
    assert slug.status_code == 201
    check("slug", slug.json())
    rel = api.post(f"/apps/{name}/releases", json={"slug": slug.json()["id"]})
    assert rel.status_code == 201 and rel.json()["slug"]["id"] == slug.json()["id"]
    forms = api.get(f"/apps/{name}/formation").json()
    check("formation", forms)
    assert {f["type"]: f["quantity"] for f in forms} == {"web": 1, "worker": 0}
    # The Heroku CLI sends quantities as strings.
    r = api.patch(
        f"/apps/{name}/formation",
        json={
            "updates": [
                {"type": "worker", "quantity": "1", "size": "standard-1X"},
                {"type": "web", "quantity": 2, "size": "standard-2x"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    check("formation", r.json())
    got = {f["type"]: (f["quantity"], f["size"]) for f in api.get(f"/apps/{name}/formation").json()}
    assert got == {"web": (2, "Standard-2X"), "worker": (1, "Standard-1X")}
    r = api.patch(f"/apps/{name}/formation/worker", json={"quantity": 0})
    check("formation", r.json())
    assert api.get(f"/apps/{name}/formation/worker").json()["quantity"] == 0
    error_of(
        api.patch(f"/apps/{name}/formation", json={"updates": [{"type": "clock", "quantity": 1}]}),
        404,
        "not_found",
    )
    error_of(
        api.patch(
            f"/apps/{name}/formation", json={"updates": [{"type": "web", "quantity": "two"}]}
        ),
        422,
        "invalid_params",
    )
    error_of(
        api.patch(f"/apps/{name}/formation", json={"updates": [{"type": "web", "size": "huge"}]}),
        422,
        "invalid_params",
    )
    error_of(
        api.patch(f"/apps/{name}/formation", json={"updates": [{"type": "web", "quantity": 101}]}),
        422,
        "invalid_params",
    )
    api.delete(f"/apps/{name}")


def test_features(api: httpx.Client) -> None:
    name = "ft-" + uuid.uuid4().hex[:8]
    api.post("/apps", json={"name": name})
    feats = api.get(f"/apps/{name}/features").json()
    check("app-feature", feats)
    names = {f["name"] for f in feats}
    assert {
        "http-session-affinity",
        "preboot",
        "http-disable-keepalive-to-dyno",
        "http-disable-http2",
        "http-end-to-end-continue",
        "runtime-dyno-metadata",
        "log-runtime-metrics",
    } <= names
    r = api.patch(f"/apps/{name}/features/preboot", json={"enabled": True})
    check("app-feature", r.json())
    assert api.get(f"/apps/{name}/features/preboot").json()["enabled"] is True
    error_of(
        api.patch(f"/apps/{name}/features/preboot", json={"enabled": "yes"}), 422, "invalid_params"
    )
    error_of(api.get(f"/apps/{name}/features/teleport"), 404, "not_found")
    api.delete(f"/apps/{name}")


def test_regions_stacks_sizes(api: httpx.Client) -> None:
    regions = api.get("/regions").json()
    check("region", regions)
    check("region", api.get("/regions/us").json())
    stacks = api.get("/stacks").json()
    check("stack", stacks)
    assert {s["name"] for s in stacks} >= {"heroku-24"}
    sizes = api.get("/dyno-sizes").json()
    assert {"eco", "basic", "standard-1x", "standard-2x", "performance-m", "performance-l"} <= {
        s["name"] for s in sizes
    }


def test_pipeline_couplings_404_for_apps_info(api: httpx.Client) -> None:
    name = "pc-" + uuid.uuid4().hex[:8]
    api.post("/apps", json={"name": name})
    error_of(api.get(f"/apps/{name}/pipeline-couplings"), 404, "not_found")
    api.delete(f"/apps/{name}")


def test_acm_enable_refresh_disable(api: httpx.Client) -> None:
    """ACM without an ACME directory issues from the internal CA (SQLite and PostgreSQL)."""
    import time

    name = "acm-" + uuid.uuid4().hex[:8]
    host = f"www.{name}.example"
    assert api.post("/apps", json={"name": name}).json()["acm"] is False
    api.post(f"/apps/{name}/domains", json={"hostname": host})
    error_of(api.patch(f"/apps/{name}/acm", json={"acm_refresh": True}), 422, "invalid_params")
    r = api.post(f"/apps/{name}/acm", json={})
    assert r.status_code == 200 and r.json()["acm"] is True
    check("app", r.json())
    deadline = time.monotonic() + 30
    while (d := api.get(f"/apps/{name}/domains/{host}").json())["acm_status"] != "cert issued":
        assert time.monotonic() < deadline, d
        time.sleep(0.2)
    check("domain", api.get(f"/apps/{name}/domains").json())
    assert d["acm_status_reason"] is None and d["sni_endpoint"]["name"]
    [endpoint] = api.get(f"/apps/{name}/sni-endpoints").json()
    assert endpoint["name"] == d["sni_endpoint"]["name"] and endpoint["domains"] == [d["id"]]
    assert endpoint["ssl_cert"]["acm"] is True and endpoint["ssl_cert"]["cert_domains"] == [host]
    error_of(api.delete(f"/apps/{name}/sni-endpoints/{endpoint['name']}"), 422, "invalid_params")
    error_of(api.patch(f"/apps/{name}/acm", json={"acm_refresh": "yes"}), 422, "invalid_params")
    r = api.patch(f"/apps/{name}/acm", json={"acm_refresh": True})
    assert r.status_code == 200 and r.json()["acm"] is True
    r = api.delete(f"/apps/{name}/acm")
    assert r.status_code == 200 and r.json()["acm"] is False
    check("app", r.json())
    assert api.get(f"/apps/{name}/sni-endpoints").json() == []
    assert api.get(f"/apps/{name}/domains/{host}").json()["acm_status"] is None
    api.delete(f"/apps/{name}")


def test_pipelines_couplings_promotions_and_review_app_config(api: httpx.Client) -> None:
    base = "pl-" + uuid.uuid4().hex[:8]
    src, dst = f"{base}-dev", f"{base}-stg"
    for name in (src, dst):
        assert api.post("/apps", json={"name": name}).status_code == 201
    r = api.post("/pipelines", json={"name": base, "generation": {"name": "cedar"}})
    assert r.status_code == 201, r.text
    pipeline = r.json()
    check("pipeline", pipeline)
    assert pipeline["generation"]["name"] == "cedar" and pipeline["owner"]["type"] == "user"
    assert [p["id"] for p in api.get(f"/pipelines?eq[name]={base}").json()] == [pipeline["id"]]
    check("pipeline", api.get(f"/pipelines/{base}").json())
    for app, stage in ((src, "development"), (dst, "staging")):
        r = api.post(
            "/pipeline-couplings", json={"app": app, "pipeline": pipeline["id"], "stage": stage}
        )
        assert r.status_code == 201, r.text
        check("pipeline-coupling", r.json())
    coupling = api.get(f"/apps/{src}/pipeline-couplings").json()
    check("pipeline-coupling", coupling)
    assert coupling["pipeline"] == {"id": pipeline["id"], "name": base}
    check("pipeline-coupling", api.get(f"/pipelines/{pipeline['id']}/pipeline-couplings").json())
    msg = error_of(
        api.post(
            "/pipeline-couplings", json={"app": src, "pipeline": pipeline["id"], "stage": "qa"}
        ),
        422,
        "invalid_params",
    )
    assert "Stage must be one of" in msg
    apps = api.post("/filters/apps", json={"in": {"id": [coupling["app"]["id"]]}}).json()
    assert [a["name"] for a in apps] == [src]

    body = {
        "pipeline": {"id": pipeline["id"]},
        "source": {"app": {"id": coupling["app"]["id"]}},
        "targets": [{"app": {"id": api.get(f"/apps/{dst}").json()["id"]}}],
    }
    assert "no release with code" in error_of(
        api.post("/pipeline-promotions", json=body), 422, "invalid_params"
    )
    slug = api.post(
        f"/apps/{src}/slugs", json={"process_types": {"worker": "true"}, "commit": "c0ffee"}
    )
    assert slug.status_code == 201, slug.text
    api.post(f"/apps/{src}/releases", json={"slug": slug.json()["id"]}).raise_for_status()
    r = api.post("/pipeline-promotions", json=body)
    assert r.status_code == 201, r.text
    check("pipeline-promotion", r.json())

    def done() -> Any:
        targets = api.get(f"/pipeline-promotions/{r.json()['id']}/promotion-targets").json()
        return targets if all(t["status"] != "pending" for t in targets) else None

    targets = wait_for(done, 30, interval=0.2, what="the promotion")
    check("pipeline-promotion-target", targets)
    assert targets[0]["status"] == "succeeded", targets
    release = api.get(f"/apps/{dst}/releases/{targets[0]['release']['id']}").json()
    assert release["description"] == f"Promote {src} v2 c0ffee"
    assert api.get(f"/pipeline-promotions/{r.json()['id']}").json()["status"] == "completed"
    check("release", api.get(f"/pipelines/{pipeline['id']}/latest-releases").json())

    r = api.post(f"/pipelines/{pipeline['id']}/review-app-config", json={"repo": src})
    assert r.status_code == 201, r.text
    check("review-app-config", r.json())
    assert api.get(f"/pipelines/{pipeline['id']}/repo").json()["full_name"] == src
    error_of(api.get(f"/pipelines/{pipeline['id']}/repo/branches/none"), 404, "not_found")
    assert api.get(f"/pipelines/{pipeline['id']}/review-apps").json() == []
    check("review-app-config", api.delete(f"/pipelines/{pipeline['id']}/review-app-config").json())
    check("pipeline", api.delete(f"/pipelines/{pipeline['id']}").json())
    error_of(api.get(f"/apps/{src}/pipeline-couplings"), 404, "not_found")
    for name in (src, dst):
        api.delete(f"/apps/{name}")
