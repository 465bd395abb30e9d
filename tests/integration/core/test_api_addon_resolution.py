"""Add-on and attachment resolution by every name Heroku's clients use, and the
Accept-Inclusion / Accept-Expansion headers, through the real API against Heroku's schema."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from support import RunningPlatform, start_platform

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "data" / "heroku-platform-api-schema.json").read_text()
)
DEFS = SCHEMA["definitions"]
INCLUDE = {"Accept-Inclusion": "addon:plan,config_vars"}
EXPAND = {"Accept-Expansion": "addon_service,plan"}


def check(resource: str, item: Any) -> None:
    """Valid against the resource's schema (strict where it is), every property present."""
    schema = {"$ref": f"#/definitions/{resource}", "definitions": DEFS}
    jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    ).validate(item)
    missing = set(DEFS[resource].get("properties", {})) - set(item)
    assert not missing, f"{resource} lacks {missing}"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(tmp_path_factory.mktemp("resolve-home"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def world(platform: RunningPlatform) -> dict[str, Any]:
    """App A with a Postgres (DATABASE) and a Key-Value Store (REDIS); app B has A's
    database attached as OTHER_DB."""
    api = platform.client()
    a, b = f"res-a-{uuid.uuid4().hex[:6]}", f"res-b-{uuid.uuid4().hex[:6]}"
    for name in (a, b):
        assert api.post("/apps", json={"name": name}).status_code == 201
    pg = api.post(f"/apps/{a}/addons", json={"plan": "heroku-postgresql:essential-0"})
    assert pg.status_code == 201, pg.text
    kvs = api.post(f"/apps/{a}/addons", json={"plan": "heroku-redis:mini"})
    assert kvs.status_code == 201, kvs.text
    other = api.post(
        "/addon-attachments", json={"app": b, "addon": pg.json()["id"], "name": "OTHER_DB"}
    )
    assert other.status_code == 201, other.text
    return {"api": api, "a": a, "b": b, "pg": pg.json(), "kvs": kvs.json(), "other": other.json()}


def resolve(api: httpx.Client, body: dict[str, Any], **headers: str) -> httpx.Response:
    return api.post("/actions/addon-attachments/resolve", json=body, headers=headers)


@pytest.mark.parametrize(
    "form", ["DATABASE", "DATABASE_URL", "database_url", "app::DATABASE", "app::DATABASE_URL"]
)
def test_attachment_by_name_config_var_and_app_prefix(world: dict[str, Any], form: str) -> None:
    api, a = world["api"], world["a"]
    ident = form.replace("app::", f"{a}::")
    body = {"addon_attachment": ident} | ({} if "::" in ident else {"app": a})
    r = resolve(api, body)
    assert r.status_code == 200, r.text
    assert [(x["name"], x["app"]["name"]) for x in r.json()] == [("DATABASE", a)]
    assert r.json()[0]["addon"]["id"] == world["pg"]["id"]
    for item in r.json():
        check("add-on-attachment", item)


def test_attachment_by_addon_name_and_id_and_attachment_id(world: dict[str, Any]) -> None:
    api, a, b, pg = world["api"], world["a"], world["b"], world["pg"]
    for ident in (pg["name"], pg["id"]):
        # With an app: that app's attachments of the add-on; without: every one visible.
        r = resolve(api, {"addon_attachment": ident, "app": a})
        assert [x["name"] for x in r.json()] == ["DATABASE"], r.text
        r = resolve(api, {"addon_attachment": ident})
        assert sorted((x["app"]["name"], x["name"]) for x in r.json()) == sorted(
            [(a, "DATABASE"), (b, "OTHER_DB")]
        )
    r = resolve(api, {"addon_attachment": world["other"]["id"]})
    assert [(x["app"]["name"], x["name"]) for x in r.json()] == [(b, "OTHER_DB")]
    r = resolve(api, {"addon_attachment": f"{b}::OTHER_DB_URL"})
    assert [x["id"] for x in r.json()] == [world["other"]["id"]]


def test_resolution_filters_by_service_and_answers_not_found(world: dict[str, Any]) -> None:
    api, a = world["api"], world["a"]
    body = {"addon_attachment": "DATABASE_URL", "app": a}
    r = resolve(api, body | {"addon_service": "heroku-postgresql"})
    assert [x["name"] for x in r.json()] == ["DATABASE"]
    for miss in (body | {"addon_service": "heroku-redis"}, {"addon_attachment": "NOPE", "app": a}):
        r = resolve(api, miss)
        assert r.status_code == 404 and r.json()["id"] == "not_found", r.text
    r = resolve(api, {"app": a})
    assert r.status_code == 422 and set(r.json()) >= {"id", "message"}


def test_addon_resolve_takes_the_same_forms(world: dict[str, Any]) -> None:
    api, a, pg = world["api"], world["a"], world["pg"]
    for body in (
        {"addon": "DATABASE", "app": a},
        {"addon": "DATABASE_URL", "app": a},
        {"addon": f"{a}::DATABASE"},
        {"addon": f"{world['b']}::OTHER_DB_URL"},
        {"addon": pg["name"]},
        {"addon": pg["id"]},
    ):
        r = api.post("/actions/addons/resolve", json=body)
        assert r.status_code == 200, (body, r.text)
        assert [x["id"] for x in r.json()] == [pg["id"]]
        check("add-on", r.json()[0])
    r = api.post(
        "/actions/addons/resolve", json={"addon": "REDIS_URL", "app": a, "addon_service": "x"}
    )
    assert r.status_code == 404 and r.json()["id"] == "not_found"


def _without_inclusions(att: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(att)
    out.pop("config_vars", None)
    out["addon"].pop("plan", None)
    return out


def test_accept_inclusion_on_attachments(world: dict[str, Any]) -> None:
    api, a = world["api"], world["a"]
    config = api.get(f"/apps/{a}/config-vars").json()
    plain = api.get(f"/apps/{a}/addon-attachments").json()
    # Without the header: exactly Heroku's schema (its attachment.addon takes no extra member).
    for att in plain:
        check("add-on-attachment", att)
        assert "config_vars" not in att and "plan" not in att["addon"]
    included = api.get(f"/apps/{a}/addon-attachments", headers=INCLUDE).json()
    assert [_without_inclusions(x) for x in included] == plain
    plans = {x["id"]: x["plan"] for x in api.get(f"/apps/{a}/addons").json()}
    for att in included:
        check("add-on-attachment", _without_inclusions(att))
        jsonschema.validate(att["addon"]["plan"]["id"], DEFS["plan"]["definitions"]["id"])
        assert att["addon"]["plan"] == plans[att["addon"]["id"]]
        assert att["config_vars"] and set(att["config_vars"]) <= set(config)
        assert f"{att['name']}_URL" in att["config_vars"]
    by_name = {x["name"]: x for x in included}
    assert by_name["DATABASE"]["addon"]["plan"]["name"] == "heroku-postgresql:essential-0"
    assert by_name["DATABASE"]["config_vars"] == ["DATABASE_URL"]
    # One of the two asked: only that one; the same on every attachment endpoint.
    only = api.get(f"/apps/{a}/addon-attachments", headers={"Accept-Inclusion": "config_vars"})
    assert all("config_vars" in x and "plan" not in x["addon"] for x in only.json())
    pg_id = world["pg"]["id"]
    for resp in (
        resolve(api, {"addon_attachment": "DATABASE_URL", "app": a}, **INCLUDE),
        api.get(f"/addons/{pg_id}/addon-attachments", headers=INCLUDE),
        api.get(f"/apps/{a}/addon-attachments/DATABASE", headers=INCLUDE),
        api.get("/addon-attachments", headers=INCLUDE),
    ):
        assert resp.status_code == 200, resp.text
        for att in resp.json() if isinstance(resp.json(), list) else [resp.json()]:
            assert "plan" in att["addon"] and "config_vars" in att, resp.request.url


def test_accept_expansion_on_addons_and_apps(world: dict[str, Any]) -> None:
    api, a = world["api"], world["a"]
    plain = api.get(f"/apps/{a}/addons").json()
    expanded = api.get(f"/apps/{a}/addons", headers=EXPAND).json()
    assert len(expanded) == len(plain) == 2
    for short, full in zip(plain, expanded, strict=True):
        check("add-on", short)
        # The references became the resources they name, each valid against its own schema.
        check("plan", full["plan"])
        check("add-on-service", full["addon_service"])
        assert {k: full["plan"][k] for k in ("id", "name")} == short["plan"]
        assert {k: full["addon_service"][k] for k in ("id", "name")} == short["addon_service"]
        assert isinstance(full["plan"]["price"]["cents"], int)
        rest = {k: v for k, v in full.items() if k not in ("plan", "addon_service")}
        assert rest == {k: v for k, v in short.items() if k not in ("plan", "addon_service")}
    only_plan = api.get(f"/addons/{world['pg']['id']}", headers={"Accept-Expansion": "plan"})
    assert "price" in only_plan.json()["plan"]
    assert set(only_plan.json()["addon_service"]) == {"id", "name"}
    r = api.post(
        "/actions/addons/resolve", json={"addon": "DATABASE_URL", "app": a}, headers=EXPAND
    )
    check("plan", r.json()[0]["plan"])
    # Apps: the region (and stacks) expand the same way; unknown names are ignored.
    app = api.get(f"/apps/{a}", headers={"Accept-Expansion": "region, nonsense"}).json()
    check("region", app["region"])
    assert app["region"]["name"] == "us"
    assert set(api.get(f"/apps/{a}").json()["region"]) == {"id", "name"}
