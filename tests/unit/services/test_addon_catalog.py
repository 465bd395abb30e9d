"""The add-on catalog: services by name and alias, plans, default attachment names."""

from __future__ import annotations

from pathlib import Path

import pytest

from spruce.addons import PostgresProvider, RedisProvider
from spruce.services.addon_catalog import AddonCatalog, default_attachment_name, service_id
from spruce.services.errors import InvalidParams, NotFound


@pytest.fixture
def catalog(tmp_path: Path) -> AddonCatalog:
    return AddonCatalog([RedisProvider(tmp_path), PostgresProvider(tmp_path)])


def test_resolve_names_aliases_and_default_plans(catalog: AddonCatalog) -> None:
    provider, plan = catalog.resolve("heroku-redis:mini")
    assert provider.name == "heroku-redis" and plan.limits == {
        "memory_bytes": 25 * 1024 * 1024,
        "connections": 20,
    }
    assert catalog.resolve("spruce-kvs")[1].name == "mini"
    provider, plan = catalog.resolve("heroku-postgresql")
    assert provider.config_var_name == "DATABASE" and plan.name == "essential-0"
    assert plan.limits["connections"] == 20 and plan.limits["storage_bytes"] == 1024**3
    assert catalog.provider(service_id("heroku-redis")).name == "heroku-redis"
    assert [p.name for p in catalog] == ["heroku-redis", "heroku-postgresql"]


def test_kvs_plan_list_matches_heroku(catalog: AddonCatalog) -> None:
    names = [p.name for p in catalog.provider("heroku-redis").plans]
    assert names == ["mini"] + [f"premium-{n}" for n in (0, 1, 2, 3, 4, 5, 7, 9, 10, 12, 14)]
    premium_5 = catalog.plan("heroku-redis", "premium-5")
    assert premium_5.limits == {"memory_bytes": 1024**3, "connections": 1000}
    assert premium_5.name == "heroku-redis:premium-5"


def test_unknown_plan_and_service(catalog: AddonCatalog) -> None:
    with pytest.raises(InvalidParams) as err:
        catalog.resolve("heroku-postgresql:hobby-dev")
    assert "essential-0" in err.value.message and "hobby-dev" in err.value.message
    with pytest.raises(InvalidParams, match="heroku-redis"):
        catalog.resolve("memcachier:dev")
    with pytest.raises(NotFound):
        catalog.service("memcachier")
    with pytest.raises(InvalidParams, match="plan is required"):
        catalog.resolve("  ")


def test_duplicate_registration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="twice"):
        AddonCatalog([RedisProvider(tmp_path), RedisProvider(tmp_path / "other")])


def test_attachment_names(catalog: AddonCatalog) -> None:
    pg = catalog.provider("heroku-postgresql")
    assert default_attachment_name(pg, []) == "DATABASE"
    assert default_attachment_name(pg, ["DATABASE"]) == "HEROKU_POSTGRESQL_AMBER"
    assert (
        default_attachment_name(pg, ["DATABASE", "HEROKU_POSTGRESQL_AMBER"])
        == "HEROKU_POSTGRESQL_AQUA"
    )
    kvs = catalog.provider("spruce-kvs")
    assert default_attachment_name(kvs, ["DATABASE"]) == "REDIS"
    assert default_attachment_name(kvs, ["REDIS"]) == "HEROKU_REDIS_AMBER"
