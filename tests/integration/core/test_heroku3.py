"""heroku3, Heroku's Python client, drives Spruce unchanged (base URL aside)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import heroku3
import heroku3.api
import pytest
from support import RunningPlatform


@pytest.fixture
def conn(
    api_platform: RunningPlatform, monkeypatch: pytest.MonkeyPatch
) -> Iterator[heroku3.api.Heroku]:
    monkeypatch.setattr(heroku3.api, "HEROKU_URL", api_platform.api_url)
    yield heroku3.from_key(api_platform.api_key)


def test_heroku3_app_config_releases_scale(
    conn: heroku3.api.Heroku, api_platform: RunningPlatform
) -> None:
    name = "h3-" + uuid.uuid4().hex[:8]
    app = conn.create_app(name=name, region_id_or_name="us", stack_id_or_name="heroku-24")
    assert app.name == name
    assert name in [a.name for a in conn.apps()]

    config = app.config()
    config["GREETING"] = "hello"
    config.update({"COLOR": "green", "SIZE": "10"})
    fresh = conn.app(name).config().to_dict()
    assert fresh == {"GREETING": "hello", "COLOR": "green", "SIZE": "10"}
    del config["SIZE"]
    assert "SIZE" not in conn.app(name).config().to_dict()

    releases = app.releases()
    descs = [r.description for r in releases]
    assert descs[0] == "Initial release"
    assert "Set GREETING config vars" in descs and "Remove SIZE config vars" in descs

    # A slug with process types gives the app a formation to scale.
    api = api_platform.client()
    slug = api.post(
        f"/apps/{name}/slugs", json={"process_types": {"web": "sleep 1000", "worker": "sleep 1000"}}
    ).json()
    api.post(f"/apps/{name}/releases", json={"slug": slug["id"]})
    formation = app.process_formation()
    assert formation["worker"].quantity == 0
    formation["worker"].scale(1)
    assert conn.app(name).process_formation()["worker"].quantity == 1
    app.batch_scale_formation_processes({"web": 0, "worker": 0})
    assert {f.type: f.quantity for f in conn.app(name).process_formation()} == {
        "web": 0,
        "worker": 0,
    }

    log = app.get_log(lines=50)
    assert "app[api]: Set GREETING config vars by user" in log
    assert "app[api]: Remove SIZE config vars by user" in log

    rollback_to = releases[1]
    app.rollback(rollback_to.id)
    assert conn.app(name).config().to_dict() == {"GREETING": "hello"}
    app.delete()
    assert name not in [a.name for a in conn.apps()]
