import json

import pytest

from spruce.services.appjson import AppJsonError, parse_app_json, resolve_env

FULL = {
    "name": "Small Sharp Tool",
    "description": "This app does one little thing, and does it well.",
    "keywords": ["productivity"],
    "env": {
        "SECRET_TOKEN": {
            "description": "A secret key for verifying cookies.",
            "generator": "secret",
        },
        "WEB_CONCURRENCY": {"description": "Workers", "value": "5"},
        "API_HOST": {"description": "Where the API lives", "required": True},
        "OPTIONAL": {"required": False},
        "SHORT": "shorthand",
    },
    "formation": {"web": {"quantity": 2, "size": "standard-1x"}, "worker": {"quantity": 0}},
    "addons": [
        "heroku-redis",
        {"plan": "heroku-postgresql:essential-0", "as": "DB", "options": {"version": "16"}},
    ],
    "buildpacks": [{"url": "heroku/python"}, {"url": "https://example.com/bp.tgz"}],
    "scripts": {"postdeploy": "python manage.py seed", "pr-predestroy": {"command": "./cleanup"}},
    "environments": {"test": {"scripts": {"test": "pytest"}}},
    "stack": "heroku-24",
}


def test_full_manifest() -> None:
    m = parse_app_json(json.dumps(FULL))
    assert m.name == "Small Sharp Tool"
    assert m.env["SECRET_TOKEN"].generator == "secret"
    assert m.env["WEB_CONCURRENCY"].value == "5"
    assert m.env["OPTIONAL"].required is False
    assert m.env["SHORT"].value == "shorthand"
    assert m.formation["web"].quantity == 2 and m.formation["web"].size == "standard-1x"
    assert m.formation["worker"].quantity == 0 and m.formation["worker"].size is None
    assert [a.plan for a in m.addons] == ["heroku-redis", "heroku-postgresql:essential-0"]
    assert m.addons[1].as_name == "DB" and m.addons[1].options == {"version": "16"}
    assert m.buildpacks == ["heroku/python", "https://example.com/bp.tgz"]
    assert m.scripts == {"postdeploy": "python manage.py seed", "pr-predestroy": "./cleanup"}
    assert m.environments["test"]["scripts"]["test"] == "pytest"
    assert m.stack == "heroku-24"


def test_empty_object_is_a_valid_manifest() -> None:
    m = parse_app_json("{}")
    assert m.env == {} and m.formation == {} and m.addons == [] and m.name is None


def test_every_error_is_reported_with_its_path() -> None:
    bad = {
        "name": 3,
        "env": {
            "A": {"generator": "uuid"},
            "B": {"value": 5},
            "bad-name": "x",
            "C": {"required": "yes"},
        },
        "formation": {"web": {"quantity": -1}, "w eb": {}},
        "addons": [7],
        "buildpacks": [{"uri": "x"}],
        "scripts": {"postdeploy": ["a"]},
    }
    with pytest.raises(AppJsonError) as err:
        parse_app_json(json.dumps(bad))
    assert err.value.errors == [
        "name: must be a string",
        'env.A.generator: must be "secret"',
        "env.B.value: must be a string",
        "env.bad-name: not a valid config var name",
        "env.C.required: must be true or false",
        "formation.web.quantity: must be a whole number >= 0",
        "formation.w eb: not a valid process type name",
        "addons[0]: must be a plan string or an object with a plan",
        "buildpacks[0]: must be an object with a url",
        "scripts.postdeploy: must be a command string",
    ]
    assert "app.json is invalid" in str(err.value)


def test_invalid_json_names_the_position() -> None:
    with pytest.raises(AppJsonError, match="line 1 column"):
        parse_app_json('{"name": }')
    with pytest.raises(AppJsonError, match="top level"):
        parse_app_json("[]")


def test_resolve_env_applies_given_generator_value_and_required() -> None:
    m = parse_app_json(json.dumps(FULL))
    env = resolve_env(m, {"API_HOST": "api.example.com", "EXTRA": "1", "WEB_CONCURRENCY": "9"})
    assert env["API_HOST"] == "api.example.com"
    assert env["WEB_CONCURRENCY"] == "9"  # given beats the default value
    assert env["SHORT"] == "shorthand"
    assert env["EXTRA"] == "1"
    assert "OPTIONAL" not in env
    secret = env["SECRET_TOKEN"]
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert resolve_env(m, {"API_HOST": "x"})["SECRET_TOKEN"] != secret


def test_resolve_env_lists_missing_required_vars() -> None:
    m = parse_app_json(
        json.dumps({"env": {"A": {"description": "the a"}, "B": {}, "C": {"value": "c"}}})
    )
    with pytest.raises(AppJsonError) as err:
        resolve_env(m, {"B": ""})
    assert err.value.errors == [
        "env.A: required config var has no value (the a)",
        "env.B: required config var has no value",
    ]
