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


def _public_key(comment: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    )
    return f"{raw.decode()} {comment}\n"


def test_heroku3_with_its_default_arguments(
    conn: heroku3.api.Heroku, api_platform: RunningPlatform
) -> None:
    """What a user's script calls, with heroku3's own defaults: create_app() sends
    stack "cedar" and no name, every listing sends a Range on the model's order_by
    (`id ..; ;`, domains on `domain`), turning things off sends 0, and rollback reads
    the last release of an ascending listing."""
    app = conn.create_app()
    assert app.name and app.stack.name == "heroku-24"
    assert app.name in [a.name for a in conn.apps()]
    assert app.config().to_dict() == {}
    assert list(app.addons()) == []
    assert [d.hostname for d in app.domains()] == [f"{app.name}.localhost"]
    assert list(app.collaborators())[0].user.email == conn.account().email

    api = api_platform.client()
    slug = api.post(
        f"/apps/{app.name}/slugs", json={"process_types": {"web": "sleep 1000", "worker": "x"}}
    ).json()
    api.post(f"/apps/{app.name}/releases", json={"slug": slug["id"]})
    formation = app.process_formation()
    assert sorted(f.type for f in formation) == ["web", "worker"]
    scaled = app.scale_formation_process("worker", 0)
    assert scaled.type == "worker" and scaled.quantity == 0

    app.config()["COLOR"] = "blue"
    releases = app.releases()
    assert [r.version for r in releases] == [1, 2, 3]
    latest = app.rollback(releases[1].id)
    assert latest.version == 4 and latest.description == "Rollback to v2"
    assert conn.app(app.name).config().to_dict() == {}

    app.enable_maintenance_mode()
    assert conn.app(app.name).maintenance is True
    app.disable_maintenance_mode()  # sends {"maintenance": 0}
    assert conn.app(app.name).maintenance is False
    app.enable_feature("preboot")
    app.disable_feature("preboot")  # sends {"enabled": 0}
    assert not [f for f in app.features() if f.name == "preboot" and f.enabled]

    account = conn.account()
    key = account.add_key(_public_key("dev@laptop"))
    assert key.fingerprint.startswith("SHA256:") and key.comment == "dev@laptop"
    assert [k.id for k in conn.keys()] == [key.id]
    account.remove_key(key.fingerprint)
    assert list(conn.keys()) == []

    features = {f.name: f for f in conn.features()}
    assert features["dyno-metadata-on-new-apps"].enabled is False
    account.enable_feature("dyno-metadata-on-new-apps")
    second = conn.create_app()
    assert [f.name for f in second.features() if f.enabled] == ["runtime-dyno-metadata"]
    account.disable_feature("dyno-metadata-on-new-apps")  # sends 0
    assert not {f.name: f for f in conn.labs()}["dyno-metadata-on-new-apps"].enabled

    assert [a.id for a in conn.oauthauthorizations()]
    app.delete()
    second.delete()
    assert app.name not in [a.name for a in conn.apps()]
