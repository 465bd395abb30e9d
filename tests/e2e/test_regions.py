"""Data residency: two regions, an app in a space of each, and nothing of one region's app
on the other's data root (checked by where its files are and which processes serve it), kept
across a restart of the platform."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
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


def postgres_servers() -> dict[str, int]:
    """Each running postgres server's data directory and port, from /proc."""
    found: dict[str, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if Path(argv[0]).name == "postgres" and "-D" in argv:
            ports = [a.removeprefix("port=") for a in argv if a.startswith("port=")]
            if ports:
                found[argv[argv.index("-D") + 1]] = int(ports[0])
    return found


def url_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


APPS: dict[str, dict[str, str]] = {}


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
        ids["pushed"] = res.stderr
        ids["build"] = api.get(f"/apps/{name}/builds").json()[-1]["id"]
        ids["database_url"] = api.get(f"/apps/{name}/config-vars").json()["DATABASE_URL"]
        apps[region] = ids
    APPS.update(apps)

    home = platform.home
    for region, ids in apps.items():
        root = home / "regions" / region
        mine = files_under(root)
        # Its build cache, slug, unpacked slug or release copy, and add-on data are here ...
        assert (root / "cache" / ids["app"]).is_dir()
        assert any(f.startswith("slugs/") and f.endswith(".tgz") for f in mine), mine[:20]
        assert any(f.startswith(("dynos/apps/" + ids["app"], "dynos/slugs/")) for f in mine)
        assert (root / "addons" / "redis" / ids["heroku-redis"] / "redis.conf").is_file()
        # its database is served by the region's own PostgreSQL, whose data dir is here
        datadir = root / "addons" / "postgres" / "cluster"
        assert (datadir / "PG_VERSION").is_file()
        assert postgres_servers().get(str(datadir)) == url_port(ids["database_url"])
        # its git repository and its build's log
        assert (root / "repos" / f"{ids['name']}.git" / "HEAD").is_file()
        log = root / "builds" / f"{ids['build']}.log"
        lines = [line.strip() for line in log.read_text().splitlines() if line.strip()]
        assert lines and all(line in ids["pushed"] for line in lines[:3]), (lines, ids["pushed"])
        # ... and none of it in the platform's own places.
        assert not (home / "cache" / ids["app"]).exists()
        assert not (home / "dynos" / "apps" / ids["app"]).exists()
        assert not (home / "addons" / "redis" / ids["heroku-redis"]).exists()
        assert not (home / "repos" / f"{ids['name']}.git").exists()
        assert not (home / "builds" / f"{ids['build']}.log").exists()
        # The git endpoint finds the repository where it is (a fetch of what was pushed).
        ls = deploy.git(home, "ls-remote", deploy.push_url(ids["name"]), "refs/heads/main")
        assert ls.stdout.strip(), ls.stderr
        # Nothing of the other region's app on this region's root.
        other = apps[REGIONS[1] if region == REGIONS[0] else REGIONS[0]]
        for f in mine:
            for key in ("app", "name", "build", "heroku-redis", "heroku-postgresql"):
                assert other[key] not in f, (region, f)
    # One PostgreSQL server per region, each on its own port; the platform's own cluster
    # (for apps outside a space) is not one of them.
    ports = {url_port(a["database_url"]) for a in apps.values()}
    assert len(ports) == 2, ports
    assert str(home / "addons" / "postgres" / "cluster") not in {
        d for d, port in postgres_servers().items() if port in ports
    }
    # The two regions' slugs are different files, each under its own root.
    north = {f for f in files_under(home / "regions" / "north") if f.startswith("slugs/")}
    south = {f for f in files_under(home / "regions" / "south") if f.startswith("slugs/")}
    assert north and south and not north & south


def registry_servers() -> set[str]:
    """The config file of each running docker-registry."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if Path(argv[0]).name == "docker-registry" and "serve" in argv:
            found.add(argv[argv.index("serve") + 1])
    return found


@pytest.mark.skipif(
    shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
    reason="Fir needs docker-registry and bubblewrap (Debian packages)",
)
def test_a_fir_apps_image_is_kept_in_its_regions_registry(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    api = platform.client()
    tag = uuid.uuid4().hex[:6]
    team, space, name = f"fir-{tag}", f"fir-south-{tag}", f"fir-south-app-{tag}"
    assert api.post("/teams", json={"name": team}).status_code == 201
    r = api.post(
        "/spaces", json={"name": space, "team": team, "region": "south", "generation": "fir"}
    )
    assert r.status_code == 201, r.text
    wait_for(lambda: api.get(f"/spaces/{space}").json()["state"] == "allocated", 20)
    r = api.post("/teams/apps", json={"name": name, "space": space})
    assert r.status_code == 201 and r.json()["generation"]["name"] == "fir", r.text
    app_id = r.json()["id"]
    res = deploy.push(deploy.repo(name, example="static-site"), name)
    assert res.returncode == 0, res.stderr[-3000:]
    deploy.wait_serving(name, "<", timeout=120)
    release = api.get(f"/apps/{name}/releases").json()[-1]
    image = api.get(f"/apps/{name}/oci-images/{release['oci_image']['id']}").json()[0]
    home = platform.home
    south = home / "regions" / "south" / "registry"
    port = (south / "port").read_text().strip()
    # The image was pushed to south's own registry, which runs on south's root ...
    assert image["image_repo"] == f"127.0.0.1:{port}/apps/{app_id}"
    assert str(south / "config.yml") in registry_servers()
    digest = image["digest"].removeprefix("sha256:")
    blobs = "docker/registry/v2/blobs/sha256"
    manifest = south / "storage" / blobs / digest[:2] / digest / "data"
    assert manifest.is_file()  # the image's manifest, and its layers beside it
    layers = json.loads(manifest.read_bytes())["layers"]
    for layer in layers:
        hexd = layer["digest"].removeprefix("sha256:")
        assert (south / "storage" / blobs / hexd[:2] / hexd / "data").is_file()
    # ... and neither the platform's registry nor north's has any of it.
    for other in (home / "registry" / "storage", home / "regions" / "north" / "registry"):
        assert not any(digest in f for f in files_under(other)), other
    # The dyno runs from the image unpacked on south's root.
    assert (home / "regions" / "south" / "dynos" / "images").is_dir()
    assert not (home / "dynos" / "images" / image["digest"]).exists()
    APPS["fir"] = {"name": name, "registry": str(south / "config.yml")}

    # Promoted to a Fir app in north, the image is copied to north's registry first.
    far_space, far = f"fir-north-{tag}", f"fir-north-app-{tag}"
    r = api.post(
        "/spaces", json={"name": far_space, "team": team, "region": "north", "generation": "fir"}
    )
    assert r.status_code == 201, r.text
    wait_for(lambda: api.get(f"/spaces/{far_space}").json()["state"] == "allocated", 20)
    r = api.post("/teams/apps", json={"name": far, "space": far_space})
    assert r.status_code == 201, r.text
    far_id = r.json()["id"]
    r = api.post("/pipelines", json={"name": f"fir-{tag}", "generation": {"name": "fir"}})
    assert r.status_code == 201, r.text
    pipeline = r.json()["id"]
    for app, stage in ((app_id, "staging"), (far_id, "production")):
        r = api.post("/pipeline-couplings", json={"app": app, "pipeline": pipeline, "stage": stage})
        assert r.status_code == 201, r.text
    r = api.post(
        "/pipeline-promotions",
        json={
            "pipeline": {"id": pipeline},
            "source": {"app": {"id": app_id}},
            "targets": [{"app": {"id": far_id}}],
        },
    )
    assert r.status_code == 201, r.text
    promotion = r.json()["id"]

    def promoted() -> dict[str, Any] | None:
        (t,) = api.get(f"/pipeline-promotions/{promotion}/promotion-targets").json()
        return t if t["status"] != "pending" else None

    target = wait_for(promoted, 120, what="the promotion")
    assert target["status"] == "succeeded", target
    far_release = api.get(f"/apps/{far}/releases").json()[-1]
    far_image = api.get(f"/apps/{far}/oci-images/{far_release['oci_image']['id']}").json()[0]
    north = home / "regions" / "north" / "registry"
    north_port = (north / "port").read_text().strip()
    assert far_image["image_repo"] == f"127.0.0.1:{north_port}/apps/{far_id}"
    assert far_image["digest"] == image["digest"]
    assert (north / "storage" / blobs / digest[:2] / digest / "data").is_file()
    for layer in layers:
        hexd = layer["digest"].removeprefix("sha256:")
        assert (north / "storage" / blobs / hexd[:2] / hexd / "data").is_file()
    deploy.wait_serving(far, "<", timeout=120)


def test_a_regions_database_keeps_its_rows_across_a_restart(platform: RunningPlatform) -> None:
    """A row written in south's database is there after `spruce` restarts, served again by
    south's own server on south's data root."""
    assert APPS, "runs after the placement test"
    south = APPS["south"]
    with psycopg.connect(south["database_url"], autocommit=True, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('written in south')")
    assert platform.stop() == 0
    datadir = platform.home / "regions" / "south" / "addons" / "postgres" / "cluster"
    assert str(datadir) not in postgres_servers()  # stopped with the platform
    again = start_platform(platform.home, extra_env=platform.env, extra_args=platform.extra_args)
    try:
        api = again.client()
        url = api.get(f"/apps/{south['name']}/config-vars").json()["DATABASE_URL"]

        def served() -> bool:
            return postgres_servers().get(str(datadir)) == url_port(url)

        wait_for(served, 60, what="south's PostgreSQL")
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute("SELECT note FROM kept").fetchall()
        assert rows == [("written in south",)]
        if "fir" in APPS:  # south's registry holds images: it is started with the platform
            wait_for(lambda: APPS["fir"]["registry"] in registry_servers(), 30, what="registry")
    finally:
        again.stop()
