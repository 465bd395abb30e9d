"""Heroku's CLI v11, unchanged, against a Fir app: buildpacks from the release's OCI image,
`run` through the launcher, Fir dyno names and sizes."""

from __future__ import annotations

import re
import shutil
import uuid

import pytest
from compat_support import HerokuCLI
from support import REPO, RunningPlatform, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
        reason="Fir needs docker-registry and bubblewrap (Debian packages)",
    ),
]


@pytest.fixture(scope="module")
def fir_app(
    heroku: HerokuCLI, platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory
) -> str:
    name = f"hkfir-{uuid.uuid4().hex[:6]}"
    r = platform.client().post("/apps", json={"name": name, "generation": "fir"})
    assert r.status_code == 201, r.text
    assert "has no Buildpacks." in heroku("buildpacks", "-a", name).stdout
    repo = tmp_path_factory.mktemp("fir-repo") / name
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", repo)
    heroku.git("init", "-q", "-b", "main", cwd=repo)
    heroku.git("add", "-A", cwd=repo)
    heroku.git("commit", "-q", "-m", "first", cwd=repo)
    heroku("git:remote", "-a", name, cwd=repo)
    push = heroku.git("push", "heroku", "main", cwd=repo)
    assert "===> EXPORTING" in push.stderr and "Released v2" in push.stderr
    return name


def test_buildpacks_lists_the_images_cnbs(heroku: HerokuCLI, fir_app: str) -> None:
    out = heroku("buildpacks", "-a", fir_app).stdout
    # The CLI drops the ⬢ when colour is off (NO_COLOR, as these tests run it).
    assert out.splitlines()[0].replace("⬢ ", "") == (
        f"=== {fir_app} Cloud Native Buildpack (from the latest release's OCI image)"
    )
    assert out.strip().splitlines()[-1] == "heroku/procfile"


def test_info_ps_and_run_on_fir(heroku: HerokuCLI, fir_app: str) -> None:
    info = heroku("apps:info", "-a", fir_app).stdout
    assert "cnb" in info and "Slug Size" not in info

    def ps_up() -> str | None:
        out = heroku("ps", "-a", fir_app).stdout
        return out if ": up " in out else None

    ps = wait_for(ps_up, 60, what="web up")
    assert re.search(r"web-[0-9a-z]{10}-[0-9a-z]{5}: up", ps), ps
    assert "dyno-1c-0.5gb" in ps
    # The CLI prepends `launcher` (stack cnb): the command sees the image's environment.
    res = heroku("run", "-a", fir_app, "--", "echo at-$(pwd)-$CNB_LAYERS_DIR; exit 4", check=False)
    assert "at-/workspace-/layers" in res.stdout, res.stdout + res.stderr
    assert res.returncode == 4


def test_heroku_exec_commands_are_refused_by_the_server_on_fir(
    heroku: HerokuCLI, platform: RunningPlatform
) -> None:
    # An app with no build yet: the refusal comes before anything about the dyno. The CLI's
    # own Fir check compares `generation` with a string and misses Spruce's object, so the
    # answer is the server's (the runtime-heroku-exec feature refused on Fir).
    name = f"hkexec-{uuid.uuid4().hex[:6]}"
    r = platform.client().post("/apps", json={"name": name, "generation": "fir"})
    assert r.status_code == 201, r.text
    for argv in (
        ("ps:exec",),
        ("ps:copy", "/app/Procfile"),
        ("ps:forward", "8080"),
        ("ps:socks",),
    ):
        res = heroku(*argv, "-a", name, check=False)
        assert res.returncode != 0, (argv, res.stdout)
        said = " ".join(res.stderr.split())
        assert "This command is unavailable for this app." in said, (argv, res.stderr)
        assert "run:inside" in said, (argv, res.stderr)
