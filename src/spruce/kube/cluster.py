"""A real Kubernetes v1.20.2 cluster on 127.0.0.1 for tests and docs.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and per node one containerd
and one kubelet, all with state under one temporary folder and ports picked at run time.
Teardown leaves no process, mount or changed sysctl behind. The facts behind every flag are
in shared/spec/kubernetes-here.md; docs/scale.md shows how to use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from spruce.kube import host, images, pki
from spruce.kube.binaries import Binaries, ClusterUnavailable, ensure_binaries
from spruce.netutil import free_port

LOCK_PATH = Path("/run/spruce-kube.lock")
POD_LOG_DIRS = (Path("/var/log/pods"), Path("/var/log/containers"))


@dataclass
class ClusterConfig:
    nodes: int = 1
    """One or two kubelets (each with its own containerd)."""
    state_dir: Path | None = None
    """Where all state goes (a fresh temporary folder when None); removed on teardown."""
    start_timeout: float = 180.0
    lock_timeout: float = 900.0
    """Another cluster on this machine shares /var/log/pods: wait for it to end."""
    build: bool = True
    """Build the binaries when the cache is cold (about 8 minutes)."""
    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    """Extra labels by node index ("0", "1")."""


@dataclass
class Node:
    name: str
    dir: Path
    kubelet_port: int
    containerd: subprocess.Popen[bytes] | None = None
    kubelet: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.dir / "containerd" / "containerd.sock"


@dataclass
class Teardown:
    seconds: float
    sysctls_restored: list[str]
    mounts_left: list[str]
    processes_left: list[int]
    cgroups_left: list[str]

    @property
    def clean(self) -> bool:
        return not (self.mounts_left or self.processes_left or self.cgroups_left)


def loopback_names() -> list[str]:
    """Host names that resolve to 127.0.0.1: node names the apiserver can reach kubelets by
    (the spec's --kubelet-preferred-address-types=Hostname)."""
    names = [socket.gethostname(), "localhost"]
    with contextlib.suppress(OSError):
        for line in Path("/etc/hosts").read_text().splitlines():
            parts = line.split("#", 1)[0].split()
            if parts and parts[0] == "127.0.0.1":
                names.extend(parts[1:])
    found: list[str] = []
    for name in names:
        name = name.lower()
        if name in found or not all(c.isalnum() or c in "-." for c in name):
            continue
        with contextlib.suppress(OSError):
            if socket.gethostbyname(name) == "127.0.0.1":
                found.append(name)
    return found


class Cluster:
    """Start with start() (or `with Cluster() as c:`), stop with stop()."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()
        if self.config.nodes not in (1, 2):
            raise ValueError("a test cluster has one or two nodes")
        self.bins: Binaries | None = None
        self.dir = Path("/nonexistent")
        self.token = secrets.token_urlsafe(32)
        self.server = ""
        self.nodes: list[Node] = []
        self.timings: dict[str, float] = {}
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._sysctls: dict[str, str] = {}
        self._cgroups_before: set[Path] | None = None
        self._log_dirs_before: dict[Path, set[str] | None] = {}
        self._lock: Any = None
        self._own_dir = False

    # -- paths ---------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.dir / "pki" / "apiserver.crt"

    @property
    def registry_hosts(self) -> Path:
        """containerd's registry host folder, shared by the nodes (see trust_registry)."""
        return self.dir / "certs.d"

    def trust_registry(self, address: str, ca_file: Path) -> None:
        """Let the nodes pull from the registry at `address` (host:port) over TLS signed by
        `ca_file` (Spruce's internal CA, for its own registry). Takes effect at once."""
        folder = self.registry_hosts / address
        folder.mkdir(parents=True, exist_ok=True)
        ca = folder / "ca.pem"
        ca.write_bytes(Path(ca_file).read_bytes())
        # The CA for the host and for the server fallback, so a missing image reads "not
        # found", not a TLS error from the fallback.
        (folder / "hosts.toml").write_text(
            f'server = "https://{address}"\nca = "{ca}"\n\n[host."https://{address}"]\n'
            f'  capabilities = ["pull", "resolve"]\n  ca = "{ca}"\n'
        )

    def log_path(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    # -- start ---------------------------------------------------------------------------
    def start(self) -> None:
        t0 = time.monotonic()
        self.bins = ensure_binaries(self.config.build)
        self.timings["binaries"] = time.monotonic() - t0
        names = loopback_names()
        if len(names) < self.config.nodes:
            raise ClusterUnavailable(
                f"{self.config.nodes} nodes need as many host names for 127.0.0.1 in /etc/hosts"
            )
        self._take_lock()
        try:
            self._start(names)
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - t0 - self.timings["binaries"]

    def _take_lock(self) -> None:
        self._lock = open(LOCK_PATH, "w")  # noqa: SIM115 - held until stop()
        deadline = time.monotonic() + self.config.lock_timeout
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._lock.close()
                    self._lock = None
                    raise ClusterUnavailable("another test cluster holds this machine") from None
                time.sleep(1)

    def _start(self, names: list[str]) -> None:
        if self.config.state_dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="spruce-kube-"))
            self._own_dir = True
        else:
            self.dir = Path(self.config.state_dir)
            self.dir.mkdir(parents=True, exist_ok=True)
        for sub in ("pki", "logs", "etcd", "cni", "certs.d"):
            (self.dir / sub).mkdir(exist_ok=True)
        self._sysctls = host.read_sysctls()
        self._cgroups_before = host.cgroup_trees()
        for d in POD_LOG_DIRS:
            self._log_dirs_before[d] = set(os.listdir(d)) if d.is_dir() else None
        self._write_pki()
        etcd_port = self._start_etcd()
        self._start_apiserver(etcd_port)
        self._write_kubeconfig()
        self._start_controllers()
        for i in range(self.config.nodes):
            node = Node(names[i], self.dir / f"node{i}", free_port())
            self.nodes.append(node)
            self._start_containerd(node)
        for i, node in enumerate(self.nodes):
            self._start_kubelet(node, self.config.node_labels.get(str(i), {}))
        self._wait("nodes Ready", self._nodes_ready)
        self._wait("the default service account", self._default_sa)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
        log = open(self.log_path(name), "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        log.close()
        self._procs.append((name, proc))
        return proc

    def _wait(self, what: str, ready: Any, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.config.start_timeout)
        while True:
            for name, proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{self._tail(name)}")
            try:
                if ready():
                    return
            except (httpx.HTTPError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.25)

    def _tail(self, name: str, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _write_pki(self) -> None:
        p = self.dir / "pki"
        pki.serving_cert(p / "apiserver.crt", p / "apiserver.key", ["localhost", "kubernetes"])
        pki.service_account_keys(p / "sa.key", p / "sa.pub")
        tokens = p / "tokens.csv"
        tokens.write_text(f'{self.token},spruce-admin,spruce-admin,"system:masters"\n')
        tokens.chmod(0o600)

    def _start_etcd(self) -> int:
        assert self.bins
        client, peer = free_port(), free_port()
        self._spawn(
            "etcd",
            [
                str(self.bins.tool("etcd")),
                "--name=spruce",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=spruce=http://127.0.0.1:{peer}",
                "--log-level=warn",
            ],
        )
        self._wait(
            "etcd /health",
            lambda: httpx.get(f"http://127.0.0.1:{client}/health", timeout=2).status_code == 200,
        )
        return client

    def _start_apiserver(self, etcd_port: int) -> None:
        assert self.bins
        p = self.dir / "pki"
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        (self.dir / "apiserver").mkdir(exist_ok=True)
        self._spawn(
            "kube-apiserver",
            [
                str(self.bins.kube("kube-apiserver")),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                "--insecure-port=0",
                f"--cert-dir={self.dir / 'apiserver'}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--token-auth-file={p / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--endpoint-reconciler-type=none",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--kubelet-preferred-address-types=Hostname",
                "--profiling=false",
                # Pods leave a lost node after 20 s, not Kubernetes' default 5 minutes.
                "--default-not-ready-toleration-seconds=20",
                "--default-unreachable-toleration-seconds=20",
            ],
        )
        self._wait("kube-apiserver /readyz", self._apiserver_ready)

    def _get(self, path: str) -> httpx.Response:
        return httpx.get(
            self.server + path,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            timeout=5,
        )

    def _apiserver_ready(self) -> bool:
        return self._get("/readyz").status_code == 200

    def _nodes_ready(self) -> bool:
        items = self._get("/api/v1/nodes").json().get("items", [])
        ready = {
            n["metadata"]["name"]
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        }
        return ready >= {n.name for n in self.nodes}

    def _default_sa(self) -> bool:
        return self._get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "spruce-kube",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "spruce-admin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "spruce-kube",
                    "context": {"cluster": "spruce-kube", "user": "spruce-admin"},
                }
            ],
            "current-context": "spruce-kube",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))
        self.kubeconfig.chmod(0o600)

    def _start_controllers(self) -> None:
        assert self.bins
        common = [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--authentication-skip-lookup=true",
            "--bind-address=127.0.0.1",
            "--port=0",
            "--leader-elect=false",
            "--profiling=false",
        ]
        p = self.dir / "pki"
        for name, extra in (
            (
                "kube-controller-manager",
                [
                    f"--service-account-private-key-file={p / 'sa.key'}",
                    f"--root-ca-file={self.ca_file}",
                    "--use-service-account-credentials=false",
                    "--node-monitor-grace-period=16s",
                ],
            ),
            ("kube-scheduler", []),
        ):
            certs = self.dir / name
            certs.mkdir(exist_ok=True)
            self._spawn(
                name,
                [
                    str(self.bins.kube(name)),
                    *common,
                    f"--secure-port={free_port()}",
                    f"--cert-dir={certs}",
                    *extra,
                ],
            )

    def _start_containerd(self, node: Node) -> None:
        assert self.bins
        c = node.dir / "containerd"
        cni = node.dir / "cni"
        for d in (c, cni):
            d.mkdir(parents=True, exist_ok=True)
        (cni / "99-loopback.conf").write_text(
            json.dumps({"cniVersion": "0.3.1", "name": "lo", "type": "loopback"})
        )
        (c / "config.toml").write_text(
            f"""version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{node.socket}"
[ttrpc]
  address = "{c / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images.PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE in this sandbox: without it runc fails every pod.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_tls_streaming = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  # Registries' TLS (trust_registry): hosts.toml files, read again at every pull.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{self.registry_hosts}"
"""
        )
        node.containerd = self._spawn(
            f"containerd-{node.name}",
            [str(self.bins.tool("containerd")), "--config", str(c / "config.toml")],
        )
        self._wait(f"containerd of {node.name}", node.socket.exists, 60)
        archives = self.dir / "images"
        archives.mkdir(exist_ok=True)
        pause = archives / "pause.tar"
        busybox = archives / "busybox.tar"
        if not pause.exists():
            images.docker_archive(
                pause, images.PAUSE_IMAGE, images.pause_layer(self.bins.kube("pause")), ["/pause"]
            )
            images.docker_archive(
                busybox,
                images.BUSYBOX_IMAGE,
                images.busybox_layer(self.bins.tool("busybox")),
                ["/bin/sh"],
            )
        for archive in (pause, busybox):
            images.import_image(self.bins.tool("ctr"), node.socket, archive)

    def import_image(self, archive: Path) -> None:
        """Load a docker-archive or OCI tarball into every node's containerd."""
        assert self.bins
        for node in self.nodes:
            images.import_image(self.bins.tool("ctr"), node.socket, archive)

    def _start_kubelet(self, node: Node, labels: dict[str, str]) -> None:
        assert self.bins
        root = node.dir / "kubelet"
        root.mkdir(parents=True, exist_ok=True)
        config = {
            "kind": "KubeletConfiguration",
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "address": "127.0.0.1",
            "port": node.kubelet_port,
            "readOnlyPort": 0,
            "healthzPort": 0,
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "evictionHard": {},
            "makeIPTablesUtilChains": False,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "nodeStatusUpdateFrequency": "4s",
            # A failed startup probe only restarts the container on the next pod sync in
            # v1.20 (later versions act at once): sync often, so R10 comes on time.
            "syncFrequency": "5s",
            "volumeStatsAggPeriod": "0s",
            "clusterDomain": "cluster.local",
        }
        (root / "config.json").write_text(json.dumps(config, indent=2))
        argv = [
            str(self.bins.kube("kubelet")),
            f"--config={root / 'config.json'}",
            f"--kubeconfig={self.kubeconfig}",
            f"--root-dir={root}",
            f"--cert-dir={root / 'pki'}",
            f"--hostname-override={node.name}",
            "--container-runtime=remote",
            f"--container-runtime-endpoint=unix://{node.socket}",
            f"--pod-infra-container-image={images.PAUSE_IMAGE}",
        ]
        if labels:
            argv.append("--node-labels=" + ",".join(f"{k}={v}" for k, v in labels.items()))
        node.kubelet = self._spawn(
            f"kubelet-{node.name}", argv, env={"AWS_EC2_METADATA_DISABLED": "true"}
        )

    # -- faults (tests of node loss) -----------------------------------------------------
    def stop_node(self, index: int) -> None:
        """The node's machine dies: its kubelet stops and its containers with it."""
        node = self.nodes[index]
        if node.kubelet is not None:
            host.stop_process(node.kubelet)
            self._procs = [(n, p) for n, p in self._procs if p is not node.kubelet]
            node.kubelet = None
        self._remove_containers(node)

    def start_node(self, index: int) -> None:
        """Bring a stopped node back and wait until it is Ready again."""
        node = self.nodes[index]
        if node.kubelet is None:
            self._start_kubelet(node, self.config.node_labels.get(str(index), {}))
        self._wait(f"{node.name} Ready", self._nodes_ready)

    # -- teardown ------------------------------------------------------------------------
    def stop(self) -> Teardown:
        t0 = time.monotonic()
        by_name = dict(self._procs)
        for node in self.nodes:  # kubelets first: nothing may restart the containers
            if node.kubelet is not None:
                host.stop_process(node.kubelet)
        for node in self.nodes:
            self._remove_containers(node)
        for node in self.nodes:
            if node.containerd is not None:
                host.stop_process(node.containerd)
        if self.dir.exists() and self.dir != Path("/nonexistent"):
            host.kill_pids(host.pids_mentioning(str(self.dir)))
            host.kill_pids(self._pids_rooted_in(self.dir))
        for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            if name in by_name:
                host.stop_process(by_name[name])
        self._procs.clear()
        mounts_left: list[str] = []
        left: list[int] = []
        if self.dir.exists() and self.dir != Path("/nonexistent"):
            mounts_left = host.unmount_all(self.dir)
            left = host.pids_mentioning(str(self.dir)) + self._pids_rooted_in(self.dir)
        restored = host.restore_sysctls(self._sysctls) if self._sysctls else []
        cgroups_left: list[str] = []
        if self._cgroups_before is not None:
            cgroups_left = host.remove_cgroup_trees(host.cgroup_trees() - self._cgroups_before)
        self._clean_pod_logs()
        if self._own_dir and not mounts_left and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        report = Teardown(time.monotonic() - t0, restored, mounts_left, left, cgroups_left)
        self.timings["teardown"] = report.seconds
        return report

    def _remove_containers(self, node: Node) -> None:
        if self.bins is None or not node.socket.exists():
            return
        ctr = [str(self.bins.tool("ctr")), "--address", str(node.socket), "-n", "k8s.io"]

        def run(*args: str) -> str:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                return subprocess.run(
                    [*ctr, *args], capture_output=True, text=True, timeout=30
                ).stdout
            return ""

        for cid in run("tasks", "ls", "-q").split():
            run("tasks", "kill", "-a", "-s", "SIGKILL", cid)
        for cid in run("tasks", "ls", "-q").split():
            run("tasks", "delete", "-f", cid)
        for cid in run("containers", "ls", "-q").split():
            run("containers", "delete", cid)

    @staticmethod
    def _pids_rooted_in(prefix: Path) -> list[int]:
        """Container processes: their root is a rootfs under the state folder."""
        found = []
        root = str(prefix.resolve())
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "root").startswith(root + "/"):
                        found.append(int(entry.name))
        return found

    def _clean_pod_logs(self) -> None:
        for d, before in self._log_dirs_before.items():
            if not d.is_dir():
                continue
            if before is None:
                shutil.rmtree(d, ignore_errors=True)
                continue
            for name in set(os.listdir(d)) - before:
                path = d / name
                if path.is_symlink() or path.is_file():
                    path.unlink(missing_ok=True)
                else:
                    shutil.rmtree(path, ignore_errors=True)
        self._log_dirs_before.clear()

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
