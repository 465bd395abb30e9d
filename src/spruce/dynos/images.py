"""Fir dynos: images pulled by digest and unpacked once, names as Fir gives them, and the
command line that runs a process of an image inside the dyno sandbox.

A Fir release's image is pulled from the registry and unpacked under `images/<digest>` once,
whoever asks first; every dyno of every release with that digest binds it read-only at `/`.
Each release gets a writable copy of the image's `/workspace` (owned by the app's uid), as
Heroku's dynos have an ephemeral writable app dir. Processes start with CNB launcher
semantics: `/cnb/process/<type>` for formation dynos and the release phase, and `bash -c
<command>` with `launcher` on PATH for `heroku run` / `run:inside` (the CLI prepends
`launcher` on Fir apps).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from spruce.compile.cnb.launch import LAUNCHER, image_env, sandbox_argv
from spruce.compile.oci import ImageRef, RegistryClient
from spruce.compile.oci.unpack import UnpackedImage, pull_image
from spruce.services.model import ImageArtifact

WORKSPACE = "/workspace"
PROCESS_DIR = "/cnb/process"
# Kubernetes' pod-name alphabet (no vowels, no look-alikes): web-848cd4f64d-pvpr2.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_HASH_ALPHABET = "0123456789bcdfghjklmnpqrstvwxz"


class ImageUnavailable(RuntimeError):
    """The release's image could not be pulled (the dyno crashes with the reason logged)."""


def template_hash(release_id: str, process_type: str, size: str) -> str:
    """What Kubernetes' pod-template-hash is to a Fir dyno: one per release, type and size."""
    n = int.from_bytes(hashlib.sha256(f"{release_id}/{process_type}/{size}".encode()).digest())
    out = []
    for _ in range(10):
        n, r = divmod(n, len(_HASH_ALPHABET))
        out.append(_HASH_ALPHABET[r])
    return "".join(out)


def fir_dyno_name(release_id: str, process_type: str, size: str, taken: set[str]) -> str:
    """`<type>-<hash>-<5 chars>`, e.g. web-848cd4f64d-pvpr2, not one of `taken`."""
    prefix = f"{process_type}-{template_hash(release_id, process_type, size)}-"
    while True:
        name = prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
        if name not in taken:
            return name


class ImageCache:
    """Unpacked images by digest (one pull per digest, however many dynos ask at once)."""

    def __init__(
        self,
        root: Path,
        client: Callable[[], RegistryClient] | None,
        client_for: Callable[[str], RegistryClient] | None = None,
    ) -> None:
        """`client` makes clients of the registry images are pulled from; `client_for`,
        when given, of the one an image's reference names (each region has its own)."""
        self.root = Path(root)
        self._client = client
        self._client_for = client_for
        self._unpacking: dict[str, asyncio.Future[UnpackedImage]] = {}
        self._done: dict[str, UnpackedImage] = {}

    def elsewhere(self, root: Path) -> ImageCache:
        """A cache of its own under `root` (a region's), pulling from the same registries."""
        return ImageCache(root, self._client, self._client_for)

    async def unpacked(self, artifact: ImageArtifact) -> UnpackedImage:
        found = self._done.get(artifact.digest)
        if found is not None:
            return found
        fut = self._unpacking.get(artifact.digest)
        if fut is None:
            fut = asyncio.ensure_future(self._pull(artifact))
            self._unpacking[artifact.digest] = fut
            fut.add_done_callback(lambda _: self._unpacking.pop(artifact.digest, None))
        image = await asyncio.shield(fut)
        self._done[artifact.digest] = image
        return image

    async def _pull(self, artifact: ImageArtifact) -> UnpackedImage:
        if self._client is None and self._client_for is None:
            raise ImageUnavailable("this dyno backend has no registry to pull images from")
        self.root.mkdir(parents=True, exist_ok=True)
        ref = ImageRef.parse(artifact.image)
        try:
            if self._client_for is not None:
                made = self._client_for(ref.registry)
            else:
                assert self._client is not None
                made = self._client()
            async with made as client:
                image = await pull_image(client, ref, self.root)
        except Exception as exc:  # registry down, image gone, bad layer: the dyno says why
            raise ImageUnavailable(f"cannot pull {artifact.image}: {exc}") from exc
        await asyncio.to_thread(hosts_mount_point, image.rootfs)
        return image


def hosts_mount_point(rootfs: Path) -> None:
    """Give an unpacked image an /etc/hosts to bind over (its root is read-only in the
    dyno, so the sandbox cannot make one): a dyno's names (localhost, its space's private
    names) then resolve in images that ship none, files first."""
    etc = rootfs / "etc"
    etc.mkdir(mode=0o755, exist_ok=True)
    hosts = etc / "hosts"
    if not (hosts.is_file() or hosts.is_symlink()):
        hosts.write_text("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
        hosts.chmod(0o644)
    # Without nsswitch.conf glibc asks DNS first and stops when it cannot be reached.
    nsswitch = etc / "nsswitch.conf"
    if not (nsswitch.is_file() or nsswitch.is_symlink()):
        nsswitch.write_text("hosts: files dns\n")
        nsswitch.chmod(0o644)


def image_argv(
    image: UnpackedImage,
    *,
    process_type: str,
    command: str,
    run_process: bool,
) -> list[str]:
    """What runs inside: the image's process (`/cnb/process/<type>`) or `bash -c <command>`."""
    if run_process:
        if not (image.rootfs / PROCESS_DIR.lstrip("/") / process_type).is_symlink():
            raise ImageUnavailable(f"the image has no process type {process_type!r}")
        return [f"{PROCESS_DIR}/{process_type}"]
    return ["/bin/bash", "-c", command]


def image_process_env(image: UnpackedImage, dyno_env: Mapping[str, str]) -> dict[str, str]:
    """The image's Env under the dyno's (config vars, PORT, DYNO); `launcher` on PATH."""
    env = image_env(image, {k: v for k, v in dyno_env.items() if k != "PATH"})
    path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    lifecycle = LAUNCHER.rsplit("/", 1)[0]
    if lifecycle not in path.split(":"):
        env["PATH"] = f"{path}:{lifecycle}"
    env["HOME"] = WORKSPACE
    return env


def image_sandbox_argv(
    image: UnpackedImage,
    inner: list[str],
    *,
    bwrap: str,
    workspace: Path,
    uid: int | None,
    setpriv: str | None,
    hostname: str,
    extra_ro: tuple[str, ...] = (),
    tmp: Path | None = None,
    tmp_bytes: int = 64 << 20,
    shm_bytes: int = 64 << 20,
    hosts: Path | None = None,
) -> list[str]:
    """bwrap: the image root read-only at /, the host paths it names, a writable workspace,
    /tmp (the dyno's disk's, or a bounded tmpfs) and /dev/shm of mode 1777, /etc/hosts."""
    argv = sandbox_argv(
        image, [], bwrap=bwrap, workspace=workspace, uid=None, hostname=hostname,
        extra_ro=extra_ro, tmp=tmp, tmp_bytes=tmp_bytes, shm_bytes=shm_bytes, hosts=hosts,
    )  # fmt: skip
    if uid is not None and setpriv is not None:
        argv += [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs"]
        argv += ["--"]
    return [*argv, *inner]
