"""Where the Kubernetes v1.20.2 binaries built from Debian's source live, and building them.

The build (scripts/kube/build) runs once per machine into a cache outside the checkout;
every later cluster start finds it warm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

VERSION = "v1.20.2"
KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "pause")
# Debian packages that provide the rest of the cluster (installed by scripts/kube/build).
HOST_TOOLS = {
    "etcd": "etcd-server",
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "busybox": "busybox-static",
}
CNI_LOOPBACK = Path("/usr/lib/cni/loopback")


class ClusterUnavailable(RuntimeError):
    """The cluster cannot run on this machine; the message says why (tests skip with it)."""


def cache_dir() -> Path:
    default = f"/var/cache/spruce/kubernetes/{VERSION}"
    return Path(os.environ.get("SPRUCE_KUBE_CACHE", default))


def build_script() -> Path:
    """scripts/kube/build of the checkout this package is installed from (editable)."""
    return Path(__file__).resolve().parents[3] / "scripts" / "kube" / "build"


@dataclass(frozen=True)
class Binaries:
    bin_dir: Path
    tools: dict[str, Path]

    def kube(self, name: str) -> Path:
        return self.bin_dir / name

    def tool(self, name: str) -> Path:
        return self.tools[name]


def cached() -> bool:
    bin_dir = cache_dir() / "bin"
    return (bin_dir / ".complete").is_file() and all(
        os.access(bin_dir / b, os.X_OK) for b in KUBE_BINARIES
    )


def ensure_binaries(build: bool = True) -> Binaries:
    """The cached binaries and host tools; builds them first when missing and `build`."""
    if os.geteuid() != 0:
        raise ClusterUnavailable("the Kubernetes tier needs root (kubelet, containerd, mounts)")
    if not cached() or any(shutil.which(t) is None for t in HOST_TOOLS):
        script = build_script()
        if not build or not script.is_file():
            raise ClusterUnavailable(
                f"no Kubernetes {VERSION} binaries in {cache_dir()} (run scripts/kube/build)"
            )
        done = subprocess.run([str(script)], capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise ClusterUnavailable(f"scripts/kube/build failed:\n{tail}")
    tools: dict[str, Path] = {}
    for tool, package in HOST_TOOLS.items():
        found = shutil.which(tool)
        if found is None:
            raise ClusterUnavailable(f"{tool} is missing (apt-get install {package})")
        tools[tool] = Path(found)
    if not CNI_LOOPBACK.exists():
        raise ClusterUnavailable(
            "no CNI loopback plugin (apt-get install containernetworking-plugins)"
        )
    return Binaries(cache_dir() / "bin", tools)
