"""Data residency: two regions, an app in a space of each, and nothing of one region's app
on the other's data root (checked by where its files are)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import TUNING, WEB, Deployer
from support import RunningPlatform, start_platform, wait_for

REGIONS = ("north", "south")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(
        tmp_path_factory.mktemp("regions-home"),
        extra_env={"SPRUCE_TUNING": json.dumps(TUNING)},
        extra_args=["--region", "north=North room", "--region", "south=South room"],
    )
    yield p
    p.stop()


@pytest.fixture(scope="module")
def deploy(platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> Deployer:
    return Deployer(platform, tmp_path_factory.mktemp("repos"))


def files_under(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*")] if root.exists() else []


def test_each_regions_apps_keep_their_data_in_their_region(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    api = platform.client()
    tag = uuid.uuid4().hex[:6]
    team = f"res-{tag}"
    assert api.post("/teams", json={"name": team}).status_code == 201
    apps: dict[str, dict[str, str]] = {}
    for region in REGIONS:
        space = f"{region}-{tag}"
        r = api.post("/spaces", json={"name": space, "team": team, "region": region})
        assert r.status_code == 201, r.text
        wait_for(lambda s=space: api.get(f"/spaces/{s}").json()["state"] == "allocated", 20)
        name = f"{region}-app-{tag}"
        r = api.post("/teams/apps", json={"name": name, "space": space})
        assert r.status_code == 201, r.text
        app_id = r.json()["id"]
        assert r.json()["region"]["name"] == region
        ids = {"app": app_id, "name": name}
        for plan in ("heroku-redis:mini", "heroku-postgresql:essential-0"):
            r = api.post(f"/apps/{name}/addons", json={"plan": plan})
            assert r.status_code in (200, 201), r.text
            ids[plan.split(":")[0]] = r.json()["id"]
        repo = deploy.repo(
            name, files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text=region)}
        )
        res = deploy.push(repo, name)
        assert res.returncode == 0, res.stderr
        deploy.wait_serving(name, region)
        apps[region] = ids

    home = platform.home
    for region, ids in apps.items():
        root = home / "regions" / region
        mine = files_under(root)
        # Its build cache, slug, unpacked slug or release copy, and add-on data are here ...
        assert (root / "cache" / ids["app"]).is_dir()
        assert any(f.startswith("slugs/") and f.endswith(".tgz") for f in mine), mine[:20]
        assert any(f.startswith(("dynos/apps/" + ids["app"], "dynos/slugs/")) for f in mine)
        assert (root / "addons" / "redis" / ids["heroku-redis"] / "redis.conf").is_file()
        databases = [d for d in (root / "addons" / "postgres").glob("PG_*/*") if d.name.isdigit()]
        assert len(databases) == 1, databases  # this region's one database, its files here
        # ... and none of it in the platform's own places.
        assert not (home / "cache" / ids["app"]).exists()
        assert not (home / "dynos" / "apps" / ids["app"]).exists()
        assert not (home / "addons" / "redis" / ids["heroku-redis"]).exists()
        # Nothing of the other region's app on this region's root.
        other = apps[REGIONS[1] if region == REGIONS[0] else REGIONS[0]]
        for f in mine:
            for value in (other["app"], other["heroku-redis"], other["heroku-postgresql"]):
                assert value not in f, (region, f)
    # The two regions' slugs are different files, each under its own root.
    north = {f for f in files_under(home / "regions" / "north") if f.startswith("slugs/")}
    south = {f for f in files_under(home / "regions" / "south") if f.startswith("slugs/")}
    assert north and south and not north & south
