"""Fir apps end to end: git push builds with CNBs into an OCI image in the registry, the
release runs it, and the router serves it. One platform for the module; each example is
pushed once, and the later tests reuse those apps (rollback, run, buildpacks, digests).

.NET: no SDK can be installed on this machine, so the platform gets a stand-in SDK root
(SPRUCE_DOTNET_ROOT with sdk/8.0.408 and a `dotnet` script that leaves what `dotnet publish`
leaves: an executable per project). Spruce's side runs for real: detection, SDK choice,
process-type naming, the image and the launch; the missing-SDK failure uses a version the
stand-in lacks.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import TUNING, Deployer
from support import RunningPlatform, start_platform, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
        reason="Fir needs docker-registry and bubblewrap (Debian packages)",
    ),
]
FIR_WEB = re.compile(r"^web-[0-9a-z]+-[0-9a-z]{5}$")  # how Heroku's CLI recognises Fir
EXAMPLES = {  # example -> what its web page says (None: no web process)
    "static-site": "<",
    "node-web": "Hello",
    "python-web": "Hello",
    "release-phase": "release-phase app version",
    "worker-only": None,
}
PUSHED: dict[str, str] = {}  # example -> app name, for the tests that reuse them

FAKE_DOTNET = r"""#!/bin/bash
# Stand-in for `dotnet publish PROJECT --configuration Release --output OUT` (no SDK here):
# it writes OUT/<project name>, an executable that serves its name on --urls' port.
set -eu
[ "$1" = publish ] || { echo "stand-in dotnet: only publish" >&2; exit 1; }
project="$2"; shift 2
while [ $# -gt 0 ]; do case "$1" in --output) out="$2"; shift 2;; *) shift;; esac; done
name=$(basename "$project"); name="${name%.*}"
mkdir -p "$out"
cat > "$out/$name" <<APP
#!/bin/bash
for a in "\$@"; do case "\$a" in http*) port="\${a##*:}";; esac; done
[ -n "\${port:-}" ] || exec sleep infinity
exec python3 -c "import http.server as h
class H(h.BaseHTTPRequestHandler):
    def do_GET(s):
        s.send_response(200); s.end_headers(); s.wfile.write(b'dotnet $name')
h.HTTPServer(('', \$port), H).serve_forever()"
APP
chmod +x "$out/$name"
echo "  $name -> $out"
"""
CSPROJ = (
    '<Project Sdk="Microsoft.NET.Sdk.{kind}"><PropertyGroup><TargetFramework>net8.0'
    "</TargetFramework></PropertyGroup></Project>"
)


def _fake_dotnet_root(root: Path) -> Path:
    (root / "sdk" / "8.0.408").mkdir(parents=True)
    (root / "dotnet").write_text(FAKE_DOTNET)
    (root / "dotnet").chmod(0o755)
    for p in [root, *root.parents]:
        if str(p) == "/":
            break
        p.chmod(p.stat().st_mode | 0o055)  # the build user and the dynos must reach it
    return root


@pytest.fixture(scope="module")
def fir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    dotnet = _fake_dotnet_root(tmp_path_factory.mktemp("dotnet"))
    p = start_platform(
        tmp_path_factory.mktemp("fir-home"),
        extra_env={"SPRUCE_TUNING": json.dumps(TUNING), "SPRUCE_DOTNET_ROOT": str(dotnet)},
    )
    yield p
    p.stop()


@pytest.fixture(scope="module")
def deploy(fir: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> Deployer:
    return Deployer(fir, tmp_path_factory.mktemp("fir-repos"))


def new_fir_app(p: RunningPlatform, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    r = p.client().post("/apps", json={"name": name, "generation": "fir"})
    assert r.status_code == 201, r.text
    assert r.json()["stack"]["name"] == "cnb" and r.json()["generation"]["name"] == "fir"
    return name


def registry_auth(p: RunningPlatform) -> tuple[str, str, str]:
    """(user:password, the CA, the registry's host:port) of the supervised registry."""
    password = (p.home / "registry" / "password").read_text().strip()
    port = (p.home / "registry" / "port").read_text().strip()
    return f"spruce:{password}", str(p.home / "ca" / "ca.pem"), f"127.0.0.1:{port}"


def skopeo_inspect(p: RunningPlatform, image: str) -> dict[str, Any]:
    creds, ca, _ = registry_auth(p)
    certs = Path(ca).parent / "skopeo-certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(ca, certs / "ca.crt")
    out = subprocess.run(
        ["skopeo", "inspect", "--creds", creds, "--cert-dir", str(certs), f"docker://{image}"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)  # type: ignore[no-any-return]


def oci_image_of_release(p: RunningPlatform, app: str, release: dict[str, Any]) -> dict[str, Any]:
    images = p.client().get(f"/apps/{app}/oci-images/{release['oci_image']['id']}").json()
    assert isinstance(images, list) and len(images) == 1  # an array, as v6 says
    return images[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_every_example_pushes_builds_an_image_and_serves(
    fir: RunningPlatform, deploy: Deployer, example: str
) -> None:
    app = new_fir_app(fir, "fir-" + example.split("-")[0])
    res = deploy.push(deploy.repo(app, example=example), app)
    assert res.returncode == 0, res.stderr[-4000:]
    out = res.stderr
    phases = [out.index(f"remote: ===> {ph}") for ph in ("ANALYZING", "DETECTING", "RESTORING",
                                                           "BUILDING", "EXPORTING")]  # fmt: skip
    assert phases == sorted(phases), out  # the lifecycle's phases, streamed in order
    assert "*** Images (sha256:" in out and "Released v" in out
    api = fir.client()
    release = api.get(f"/apps/{app}/releases").json()[-1]
    assert release["slug"] is None and release["oci_image"] and release["status"] == "succeeded"
    image = oci_image_of_release(fir, app, release)
    expected = {"id", "digest", "architecture", "base_image_name", "base_top_layer", "commit",
                "commit_description", "image_repo", "stack", "process_types", "buildpacks",
                "created_at", "updated_at"}  # fmt: skip
    assert set(image) == expected
    assert image["stack"]["name"] == "cnb" and image["digest"].startswith("sha256:")
    for ptype, spec in image["process_types"].items():
        assert spec["command"] == f"/cnb/process/{ptype}" and spec["working_dir"] == "/workspace"
    info = api.get(f"/apps/{app}").json()
    assert info["base_image_name"] == image["base_image_name"]
    assert info["buildpacks"] == image["buildpacks"] and info["current_build_architecture"]
    # What Spruce pushed is a real OCI image: skopeo reads it from the registry by digest.
    ref = f"{image['image_repo']}@{image['digest']}"
    inspected = skopeo_inspect(fir, ref)
    assert inspected["Digest"] == image["digest"]
    assert "io.buildpacks.lifecycle.metadata" in inspected["Labels"]
    PUSHED[example] = app
    text = EXAMPLES[example]
    if text is None:  # worker-only: no web dyno until scaled, then a Fir worker runs
        api.patch(f"/apps/{app}/formation", json={"updates": [{"type": "worker", "quantity": 1}]})
        dyno = wait_for(
            lambda: [d for d in api.get(f"/apps/{app}/dynos").json() if d["state"] == "up"],
            60,
            what="worker up",
        )[0]
        assert re.match(r"^worker-[0-9a-z]{10}-[0-9a-z]{5}$", dyno["name"])
        assert dyno["size"] == "dyno-1c-0.5gb"
        return
    deploy.wait_serving(app, text, timeout=120)
    dynos = api.get(f"/apps/{app}/dynos").json()
    assert [bool(FIR_WEB.match(d["name"])) for d in dynos] == [True], dynos
    assert dynos[0]["size"] == "dyno-1c-0.5gb"
    if example == "release-phase":  # the release command ran from the image, into the push
        assert "release phase: preparing version" in out and "Release command succeeded." in out


def test_umoci_unpacks_the_pushed_image(fir: RunningPlatform, tmp_path: Path) -> None:
    app = PUSHED.get("static-site") or pytest.skip("static-site was not pushed")
    release = fir.client().get(f"/apps/{app}/releases").json()[-1]
    image = oci_image_of_release(fir, app, release)
    creds, ca, _ = registry_auth(fir)
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(ca, certs / "ca.crt")
    layout = tmp_path / "layout"
    subprocess.run(
        ["skopeo", "copy", "--src-creds", creds, "--src-cert-dir", str(certs),
         f"docker://{image['image_repo']}@{image['digest']}", f"oci:{layout}:app"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:app", str(bundle)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    rootfs = bundle / "rootfs"
    assert (rootfs / "workspace" / "public" / "index.html").is_file()
    assert (rootfs / "cnb" / "process" / "web").is_symlink()
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["cwd"] == "/workspace"


def test_release_phase_app_redeploys_rolls_back_and_runs(
    fir: RunningPlatform, deploy: Deployer
) -> None:
    app = PUSHED.get("release-phase") or pytest.skip("release-phase was not pushed")
    api = fir.client()
    repo = deploy.workdir / app
    (repo / "VERSION").write_text("2\n")
    deploy.commit(repo, "version 2")
    res = deploy.push(repo, app)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Reusing layer" in res.stderr or "Adding layer" in res.stderr
    deploy.wait_serving(app, "version 2", timeout=90)
    releases = api.get(f"/apps/{app}/releases").json()
    first, second = releases[-2], releases[-1]
    assert first["oci_image"]["id"] != second["oci_image"]["id"]
    old_name = api.get(f"/apps/{app}/dynos").json()[0]["name"]

    # Rollback redeploys the earlier image (its release phase runs again, from that image).
    r = api.post(f"/apps/{app}/releases", json={"release": first["id"]})
    assert r.status_code == 201 and r.json()["oci_image"] == first["oci_image"]
    deploy.wait_serving(app, "version 1", timeout=90)
    new_name = api.get(f"/apps/{app}/dynos").json()[0]["name"]
    assert FIR_WEB.match(new_name) and new_name != old_name  # a new release: a new "pod"

    # `heroku buildpacks` on Fir reads the latest release's image (spec 2.3's flow).
    out = fir.cli("buildpacks", "-a", app, check=True).stdout
    assert f"=== ⬢ {app} Cloud Native Buildpack (from the latest release's OCI image)" in out
    assert out.strip().endswith("heroku/procfile")

    # run / run:detached go through the image's launcher (the CLI prepends `launcher`).
    res = fir.cli("run", "-a", app, "--no-tty", "--", "echo hi-$DYNO from $(pwd); exit 3")
    assert res.returncode == 3, res.stdout + res.stderr
    assert re.search(r"hi-run-[0-9a-z]{10}-[0-9a-z]{5} from /workspace", res.stdout), res.stdout
    res = fir.cli("run:detached", "-a", app, "cat VERSION; echo detached-$CNB_LAYERS_DIR")
    name = res.stdout.split("done, ")[1].split()[0]
    wait_for(
        lambda: any("detached-/layers" in ln and name in ln for ln in deploy.logs(app, lines=200)),
        30,
        what="detached output",
    )


def test_same_source_and_buildpacks_give_the_same_digest(
    fir: RunningPlatform, deploy: Deployer
) -> None:
    first = PUSHED.get("worker-only") or pytest.skip("worker-only was not pushed")
    again = new_fir_app(fir, "fir-again")
    res = deploy.git(deploy.workdir / first, "push", "-q", _remote(fir, again), "HEAD:main",
                     check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    digests = [
        oci_image_of_release(fir, a, fir.client().get(f"/apps/{a}/releases").json()[-1])["digest"]
        for a in (first, again)
    ]
    assert digests[0] == digests[1]  # another app, a cold cache: the same image


def _remote(p: RunningPlatform, app: str) -> str:
    url = p.endpoints["git_url"].replace("https://", f"https://git:{p.api_key}@")
    return f"{url}/{app}.git"


def test_dotnet_detection_naming_and_missing_sdk(fir: RunningPlatform, deploy: Deployer) -> None:
    app = new_fir_app(fir, "fir-dotnet")
    files = {
        "src/Web/Web.csproj": CSPROJ.format(kind="Web"),
        "src/Email.Worker/Email.Worker.csproj": CSPROJ.format(kind="Worker"),
        "App.sln": 'Project("{X}") = "Web", "src\\Web\\Web.csproj", "{1}"\nEndProject\n'
        'Project("{X}") = "W", "src\\Email.Worker\\Email.Worker.csproj", "{2}"\nEndProject\n',
    }
    res = deploy.push(deploy.repo(app, files=files), app)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "heroku/dotnet" in res.stderr and "- Using .NET SDK 8.0.408" in res.stderr
    deploy.wait_serving(app, "dotnet Web", timeout=90)
    formation = {f["type"] for f in fir.client().get(f"/apps/{app}/formation").json()}
    assert formation == {"web", "email-worker"}  # Email.Worker -> email-worker

    broken = new_fir_app(fir, "fir-dotnet-sdk")
    files["global.json"] = '{"sdk": {"version": "9.0.203"}}'
    res = deploy.push(deploy.repo(broken, files=files), broken)
    assert res.returncode != 0
    assert "! .NET SDK 9.0.203 is required but is not installed on this platform." in res.stderr
    assert "Installed .NET SDKs: 8.0.408" in res.stderr
    assert "Push rejected, failed to build app with Cloud Native Buildpacks." in res.stderr
    assert fir.client().get(f"/apps/{broken}/releases").json()[-1]["version"] == 1


def test_fir_scale_sizes_and_restart_by_name(fir: RunningPlatform, deploy: Deployer) -> None:
    app = PUSHED.get("static-site") or pytest.skip("static-site was not pushed")
    api = fir.client()
    before = api.get(f"/apps/{app}/dynos").json()[0]["name"]
    res = fir.cli("ps:scale", "web=2:standard-1x", "-a", app)
    assert res.returncode != 0 and "for a fir app" in res.stdout + res.stderr
    fir.cli("ps:scale", "web=2:dyno-2c-4gb", "-a", app, check=True)

    def two_up() -> list[dict[str, Any]] | None:
        webs = [d for d in api.get(f"/apps/{app}/dynos").json() if d["state"] == "up"]
        ok = len(webs) == 2 and all(d["size"] == "dyno-2c-4gb" for d in webs)
        return webs if ok else None

    webs = wait_for(two_up, 60, what="two dyno-2c-4gb web dynos")
    names = sorted(d["name"] for d in webs)
    assert all(FIR_WEB.match(n) for n in names) and before not in names  # a new size: new pods
    assert len({n.rsplit("-", 1)[0] for n in names}) == 1  # one template hash for both
    fir.cli("ps:restart", "--dyno-name", names[0], "-a", app, check=True)
    wait_for(
        lambda: any(f"heroku[{names[0]}]: Restarting" in ln for ln in deploy.logs(app, lines=300)),
        30,
        what="restart line",
    )
    deploy.wait_serving(app, "<", timeout=60)
