"""The manifests the backend writes, checked against current Kubernetes schemas, and the
pod-to-dyno translation (no cluster needed)."""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from spruce.dynos.backends.kubernetes import (
    HostSlugImages,
    RegistryImages,
    RegistryLogin,
    names,
    pods,
    validate_app,
)
from spruce.dynos.backends.kubernetes.manifests import (
    DynoSpec,
    KubernetesSettings,
    config_secret,
    deployment,
    one_off_pod,
    release_job,
    restarted,
    validate,
)
from spruce.dynos.images import template_hash
from spruce.dynos.model import FIR_DYNO_NAME_RE, AppRuntime, DynoSettings
from spruce.dynos.sizes import DynoError
from spruce.services.model import SlugArtifact

kubernetes_validate = pytest.importorskip("kubernetes_validate")
VERSIONS = ["1.25", "1.30", "1.37"]


def app(**kw: Any) -> AppRuntime:
    args: dict[str, Any] = dict(
        app_id="0b7c7a4e-5d1f-4c57-9a57-3f1b2f6f0c11",
        app_name="My_App.With-A-Very-Long-Name-Indeed-123",
        release_id="r1",
        release_version=7,
        slug=SlugArtifact("s1", Path("/srv/slugs/r1")),
        process_types={"web": "bin/web", "queue_worker": "bin/worker --fast"},
        formation={"web": (2, "eco"), "queue_worker": (1, "performance-l")},
        config={"DATABASE_URL": "postgres://u:secret@h/db"},
        features={"preboot", "runtime-dyno-metadata"},
    )
    args.update(kw)
    return AppRuntime(**args)


def spec(a: AppRuntime, ptype: str = "web", name: str = "web.1", **kw: Any) -> DynoSpec:
    image = HostSlugImages("spruce.local/busybox:1", host_usr=True).image_for(a)
    args: dict[str, Any] = dict(
        app=a, process_type=ptype, name=name, size="eco", command=a.process_types.get(ptype, "x"),
        secret="myapp-config-1", image=image, port=21000,
    )  # fmt: skip
    args.update(kw)
    return DynoSpec(**args)


DS = DynoSettings()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("host_network", [True, False])
def test_every_manifest_is_valid_for_current_kubernetes(version: str, host_network: bool) -> None:
    ks = KubernetesSettings(host_network=host_network)
    a = app()
    made = [
        config_secret(a, "myapp-config-1"),
        deployment(spec(a), DS, ks),
        deployment(spec(a, "queue_worker", "queue_worker.1", port=None), DS, ks, replicas=0),
        deployment(spec(a, image=RegistryImages(lambda _: "reg/app:v7").image_for(a)), DS, ks),
        one_off_pod(spec(a, "run", "run.1234", command="bash", one_off=True), DS, ks),
        one_off_pod(spec(a, "run", "run.99", command="bash", one_off=True, attach=True, tty=True), DS, ks),
        deployment(spec(a, node_selector=(("topology.kubernetes.io/region", "eu"),)), DS, ks),
        release_job(spec(a, "release", "release.42", command="rake db:migrate", one_off=True), DS, ks),
        restarted(deployment(spec(a), DS, ks), 21001, "2026-12-03T00:00:00+00:00"),
        deployment(spec(a, image=FIR.image_for(a)), DS, ks),
        *FIR.pull_secrets(),
    ]  # fmt: skip
    for manifest in made:
        validate(manifest, version)
        name = manifest["metadata"]["name"]
        assert len(name) <= 63 and name == name.lower(), name


FIR = RegistryImages(
    lambda _: "127.0.0.1:5001/app@sha256:" + "0" * 64,
    login=lambda: RegistryLogin("127.0.0.1:5001", "spruce", "s3cret"),
    host_paths=("/usr", "/nonexistent"),
)


def test_fir_images_run_their_processes_with_the_registry_login_and_host_paths() -> None:
    a = app()
    image = FIR.image_for(a)
    web = deployment(spec(a, image=image), DS, KubernetesSettings())["spec"]["template"]["spec"]
    (c,) = web["containers"]
    assert c["command"] == ["/bin/bash", "-c", "exec /cnb/process/web"]
    assert web["imagePullSecrets"] == [{"name": "spruce-registry"}]
    assert web["volumes"] == [{"name": "host-0", "hostPath": {"path": "/usr", "type": "Directory"}}]
    assert c["volumeMounts"] == [{"name": "host-0", "mountPath": "/usr", "readOnly": True}]
    run = one_off_pod(spec(a, "run", "run.1", command="launcher rake x", one_off=True,
                           image=image), DS, KubernetesSettings())  # fmt: skip
    assert run["spec"]["containers"][0]["command"] == ["/bin/bash", "-c", "launcher rake x"]
    job = release_job(spec(a, "release", "release.1", command="x", one_off=True, image=image),
                      DS, KubernetesSettings())  # fmt: skip
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-1] == (
        "exec /cnb/process/release"
    )
    (secret,) = FIR.pull_secrets()
    assert secret["type"] == "kubernetes.io/dockerconfigjson" and "s3cret" not in repr(secret)
    assert "s3cret" not in repr(RegistryLogin("h", "u", "s3cret"))
    assert RegistryImages(lambda _: "r/a@sha256:1").image_for(a).pull_secrets == ()


def test_one_pull_secret_logs_in_to_every_regions_registry() -> None:
    logins = [RegistryLogin("127.0.0.1:5001", "spruce", "a1"), RegistryLogin("127.0.0.1:5002", "spruce", "b2")]  # fmt: skip
    (secret,) = RegistryImages(lambda _: "x@sha256:1", logins=lambda: logins).pull_secrets()
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert {s: base64.b64decode(v["auth"]).decode() for s, v in config["auths"].items()} == {
        "127.0.0.1:5001": "spruce:a1",
        "127.0.0.1:5002": "spruce:b2",
    }


def test_a_bad_manifest_is_refused_by_the_schema() -> None:
    bad = deployment(spec(app()), DS, KubernetesSettings())
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(bad, "1.30")


def test_heroku_rules_in_the_web_deployment() -> None:
    ds = DynoSettings(stop_grace=30.0)
    d = deployment(spec(app(boot_timeout=60.0)), ds, KubernetesSettings())
    pod = d["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["hostNetwork"] is True and pod["terminationGracePeriodSeconds"] == 30
    assert c["startupProbe"]["tcpSocket"] == {"port": 21000, "host": "127.0.0.1"}
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 60
    assert c["ports"] == [
        {"name": "web", "containerPort": 21000, "protocol": "TCP", "hostPort": 21000}
    ]
    assert {"name": "PORT", "value": "21000"} in c["env"] and {
        "name": "DYNO",
        "value": "web.1",
    } in c["env"]
    assert c["envFrom"] == [{"secretRef": {"name": "myapp-config-1"}}]
    assert c["resources"] == {
        "requests": {"memory": "512Mi", "cpu": "100m"},
        "limits": {"memory": "1024Mi"},
    }
    assert d["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert "postgres" not in str(d)  # config vars live in the Secret only
    no_preboot = deployment(spec(app(features=set())), ds, KubernetesSettings())
    assert no_preboot["spec"]["strategy"] == {"type": "Recreate"}
    worker = deployment(
        spec(app(), "queue_worker", "queue_worker.1", port=None), ds, KubernetesSettings()
    )
    wc = worker["spec"]["template"]["spec"]["containers"][0]
    assert "startupProbe" not in wc and not any(e["name"] == "PORT" for e in wc["env"])
    anti = worker["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"][names.PROCESS_TYPE] == "queue_worker"
    where = (("topology.kubernetes.io/region", "eu"),)
    for placed in (
        deployment(spec(app(), node_selector=where), ds, KubernetesSettings()),
        {"spec": {"template": one_off_pod(spec(app(), one_off=True, node_selector=where), ds,
                                          KubernetesSettings())}},
    ):  # fmt: skip
        assert placed["spec"]["template"]["spec"]["nodeSelector"] == dict(where)
    pod_net = deployment(spec(app()), ds, KubernetesSettings(host_network=False))
    assert "hostNetwork" not in pod_net["spec"]["template"]["spec"]


def test_the_spec_hash_ignores_port_and_restarts_but_not_the_release() -> None:
    ks, a = KubernetesSettings(), app()
    base = deployment(spec(a), DS, ks)
    h = base["metadata"]["annotations"][names.SPEC_HASH]
    assert deployment(spec(a, port=22222), DS, ks)["metadata"]["annotations"][names.SPEC_HASH] == h
    other = deployment(spec(app(release_id="r2")), DS, ks)
    assert other["metadata"]["annotations"][names.SPEC_HASH] != h
    moved = deployment(spec(a, secret="myapp-config-2"), DS, ks)
    assert moved["metadata"]["annotations"][names.SPEC_HASH] != h
    again = restarted(base, 23000, "now")
    c = again["spec"]["template"]["spec"]["containers"][0]
    assert c["ports"][0]["containerPort"] == c["ports"][0]["hostPort"] == 23000
    assert (
        c["startupProbe"]["tcpSocket"]["port"] == c["readinessProbe"]["tcpSocket"]["port"] == 23000
    )
    assert {"name": "PORT", "value": "23000"} in c["env"]


def test_names_are_dns_labels_and_distinct() -> None:
    assert names.object_name("myapp", "web", "1") == "myapp-web-1"
    a, b = (
        names.object_name("app", "queue_worker", "1"),
        names.object_name("app", "queue-worker", "1"),
    )
    assert a != b and a.startswith("app-queue-worker-")
    assert names.label_value("web.1") == "web.1"
    assert names.label_value("x" * 80).startswith("h-") and len(names.label_value("x" * 80)) <= 63


def pod(**status: Any) -> dict[str, Any]:
    c = {"name": "dyno", "restartCount": 0, "started": False, **status.pop("c", {})}
    return {
        "metadata": {
            "uid": "u1", "name": "myapp-web-1-abc", "creationTimestamp": "2026-12-03T10:00:00Z",
            "labels": {names.DYNO: "web.1", names.PROCESS_TYPE: "web"},
            "annotations": {names.APP_ID: "a1", names.PORT: "21000", names.COMMAND: "bin/web",
                            names.SIZE: "eco", names.RELEASE_VERSION: "3"},
            **status.pop("meta", {}),
        },
        "spec": {"nodeName": "vm"},
        "status": {"phase": "Running", "podIP": "192.0.2.2", "containerStatuses": [c], **status},
    }  # fmt: skip


RUNNING = {"state": {"running": {"startedAt": "2026-12-03T10:00:01Z"}}, "containerID": "c://1"}


def killed(reason: str, ran: int, code: int = 137) -> dict[str, Any]:
    began = datetime.datetime(2026, 12, 3, 10, 0, 1, tzinfo=datetime.UTC)
    finished = (began + datetime.timedelta(seconds=ran)).isoformat().replace("+00:00", "Z")
    return {
        "restartCount": 1,
        "containerID": "c://2",
        "state": {"running": {"startedAt": "2026-12-03T10:01:00Z"}},
        "lastState": {"terminated": {"exitCode": code, "reason": reason,
                      "startedAt": "2026-12-03T10:00:01Z",
                      "finishedAt": finished}},
    }  # fmt: skip


def test_pod_states_and_lines_of_a_boot() -> None:
    start = pods.view(pod(phase="Pending", containerStatuses=[]))
    assert start.state == "starting" and start.port == 21000 and start.dyno == "web.1"
    booting = pods.view(pod(c=RUNNING))
    assert booting.state == "starting"
    assert pods.lines(start, booting, 60) == ["Starting process with command `bin/web`"]
    up = pods.view(pod(c={**RUNNING, "started": True, "ready": True},
                       conditions=[{"type": "Ready", "status": "True"}]))  # fmt: skip
    assert up.state == "up" and up.ready
    assert pods.lines(booting, up, 60) == ["State changed from starting to up"]


def test_r10_when_the_startup_deadline_killed_it() -> None:
    booting = pods.view(pod(c=RUNNING))
    after = pods.view(pod(c=killed("Error", 62)))
    assert pods.lines(booting, after, 60) == [
        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 60 seconds of launch",
        "Stopping process with SIGKILL",
        "Process exited with status 137",
        "State changed from starting to crashed",
        "State changed from crashed to starting",
        "Starting process with command `bin/web`",
    ]  # fmt: skip
    # A crash before the deadline is a crash, not R10.
    early = pods.view(pod(c=killed("Error", 3, code=1)))
    assert pods.lines(booting, early, 60)[:2] == [
        "Process exited with status 1", "State changed from starting to crashed"
    ]  # fmt: skip


def test_r15_when_the_kernel_killed_it_at_twice_the_quota() -> None:
    up = pods.view(pod(c={**RUNNING, "started": True}))
    oom = pods.view(pod(c={**killed("OOMKilled", 30), "started": False,
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}))  # fmt: skip
    assert oom.state == "crashed"
    assert pods.lines(up, oom, 60) == [
        "Error R15 (Memory quota vastly exceeded)",
        "Stopping process with SIGKILL",
        "Process exited with status 137",
        "State changed from up to crashed",
    ]


def test_a_deleted_pod_is_down_and_not_routable() -> None:
    up = pods.view(pod(c={**RUNNING, "started": True, "ready": True},
                       conditions=[{"type": "Ready", "status": "True"}]))  # fmt: skip
    going = pods.view(pod(c={**RUNNING, "started": True, "ready": True},
                          conditions=[{"type": "Ready", "status": "True"}],
                          meta={"deletionTimestamp": "2026-12-03T10:05:00Z"}))  # fmt: skip
    assert going.state == "down" and not going.ready
    assert pods.lines(up, going, 60) == [
        "Stopping all processes with SIGTERM", "State changed from up to down"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "change, message",
    [
        ({"formation": {"web": (1, "huge")}}, "unknown dyno size"),
        ({"formation": {"web": (101, "eco")}}, "quantity"),
        ({"formation": {"clock": (1, "eco")}}, "no process type"),
        ({"process_types": {"web two": "x"}}, "invalid process type"),
        ({"config": {"1BAD": "x"}}, "invalid config var name"),
        ({"config": {"TOKEN": "a\0b"}}, "TOKEN must be a string"),
        ({"release_id": ""}, "release_id"),
    ],
)
def test_bad_input_is_refused_before_the_cluster_is_touched(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(DynoError, match=message) as err:
        validate_app(app(**change))
    assert "secret" not in str(err.value)  # no config value in the message
    validate_app(
        app(generation="fir", slug=SlugArtifact("s2", Path("/nonexistent")))
    )  # fine on Kubernetes


def test_fir_images_dynos_have_fir_pod_style_names() -> None:
    a = app(release_id="r9")
    fir_hash = template_hash("r9", "web", "eco")
    image = FIR.image_for(a)
    d = deployment(spec(a, image=image, fir_hash=fir_hash), DS, KubernetesSettings())
    validate(d, "1.30")
    template = d["spec"]["template"]
    assert template["metadata"]["annotations"][names.FIR_HASH] == fir_hash
    assert d["metadata"]["name"].endswith("-web-1")  # the Deployment keeps its dyno key
    (c,) = template["spec"]["containers"]
    assert not {"DYNO", "PS"} & {e["name"] for e in c["env"]}
    assert {"name": "SPRUCE_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in c["env"]  # fmt: skip
    # The shell the pod runs makes $DYNO from the pod's name, as the API names the dyno.
    script = c["command"][-1].replace(
        "exec /cnb/process/web", 'echo "$DYNO $PS ${SPRUCE_POD_NAME-}"'
    )
    out = subprocess.run(
        ["/bin/sh", "-c", script], env={"SPRUCE_POD_NAME": "my-app-web-1-5d8f7c9b4-pvpr2"},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out == f"web-{fir_hash}-pvpr2 web-{fir_hash}-pvpr2 \n"

    body = pod(meta={"name": "my-app-web-1-5d8f7c9b4-pvpr2"})
    body["metadata"]["annotations"][names.FIR_HASH] = fir_hash
    v = pods.view(body)
    assert (v.dyno, v.heroku_name) == ("web.1", f"web-{fir_hash}-pvpr2")
    assert FIR_DYNO_NAME_RE.match(v.heroku_name)
    assert pods.dyno_info(v, "127.0.0.1").name == v.heroku_name
    # No pod yet (or asleep): a stand-in name, the same at every call.
    idle = pods.idle_name("web.1", {**d, "metadata": {**d["metadata"], "uid": "u-1"}})
    assert FIR_DYNO_NAME_RE.match(idle) and idle.startswith(f"web-{fir_hash}-")
    assert idle == pods.idle_name("web.1", {**d, "metadata": {**d["metadata"], "uid": "u-1"}})
    # A Fir one-off's name is its own (run-<hash>-<5>), and so is its pod's.
    name = f"run-{template_hash('r9', 'run', 'eco')}-bcdfg"
    run = one_off_pod(spec(a, "run", name, command="launcher x", one_off=True, image=image),
                      DS, KubernetesSettings())  # fmt: skip
    validate(run, "1.30")
    assert run["metadata"]["name"].endswith(name[4:])
    assert {"name": "DYNO", "value": name} in run["spec"]["containers"][0]["env"]
    assert pods.view(run).heroku_name == name
