"""Where a space's app's files go: its region's data root (git repository, build logs)."""

from __future__ import annotations

import subprocess

from service_fakes import Harness

from spruce.services.residency import app_data_root, app_region, repository_of
from spruce.services.views import UserView


def test_a_space_apps_repository_and_build_logs_are_on_its_regions_root(
    harness: Harness, owner: UserView
) -> None:
    s = harness.services
    home = s.builds.home
    s.teams.create(owner, "restm")
    space = s.spaces.create(owner, "ressp", "restm")
    s.spaces.allocate(space.id)
    inside = s.apps.create(owner, "resin", placement=s.spaces.placement(owner, None, "ressp", None))
    outside = s.apps.create(owner, "resout")
    region = home / "regions" / space.region
    assert app_data_root(s.store, home, "resin") == region
    assert app_data_root(s.store, home, inside.id) == region
    assert app_region(s.store, inside.id) == space.region
    assert (
        app_data_root(s.store, home, "resout") == home and app_region(s.store, outside.id) is None
    )
    assert repository_of(s.store, home, "resin") == region / "repos" / "resin.git"
    assert repository_of(s.store, home, "resout") == home / "repos" / "resout.git"
    # a build's log is written where its app's data is
    build = s.builds.create_pending(owner, inside.id, {"url": "git:1"})
    path, running = s.builds.output(build.id)
    assert path == region / "builds" / f"{build.id}.log" and path.is_file() and running
    s.builds._append_output(build.id, "-----> written in the region")
    assert "written in the region" in path.read_text()
    assert not (home / "builds" / f"{build.id}.log").exists()
    other = s.builds.create_pending(owner, outside.id, {"url": "git:2"})
    assert s.builds.output(other.id)[0] == home / "builds" / f"{other.id}.log"


def test_a_repository_from_before_regions_moves_to_its_region_once(
    harness: Harness, owner: UserView
) -> None:
    s = harness.services
    home = s.builds.home
    s.teams.create(owner, "movtm")
    space = s.spaces.create(owner, "movsp", "movtm")
    s.spaces.allocate(space.id)
    s.apps.create(owner, "movin", placement=s.spaces.placement(owner, None, "movsp", None))
    old = home / "repos" / "movin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(old)], check=True)
    repo = repository_of(s.store, home, "movin")
    assert repo == home / "regions" / space.region / "repos" / "movin.git"
    assert (repo / "HEAD").is_file() and not old.exists()
    assert repository_of(s.store, home, "movin") == repo  # found there from then on
