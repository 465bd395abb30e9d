"""A client of the OCI distribution API (v2): blobs and manifests, push and pull.

Authentication follows the registry's challenge: Basic (distribution's htpasswd) or Bearer
tokens from the realm it names. Credentials never appear in errors or logs. `uploads` lists
every blob digest actually sent, so callers (and tests) can see that reused layers were not.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .image import MANIFEST_TYPES, MEDIA_INDEX, MEDIA_MANIFEST, sha256_digest
from .reference import Challenge, parse_challenge, validate_repository

CHUNK = 1 << 20


class RegistryError(RuntimeError):
    """The registry refused a request or could not be reached; the message is user-facing."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RegistryCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # keep the password out of tracebacks and logs
        return f"RegistryCredentials(username={self.username!r}, password=***)"


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
        errors = data.get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return response.reason_phrase or f"HTTP {response.status_code}"


class RegistryClient:
    """One registry (`host:port`), over HTTPS unless `insecure` (plain HTTP on loopback)."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: RegistryCredentials | None = None,
        ca_file: Path | None = None,
        insecure: bool = False,
        timeout: float = 120.0,
    ) -> None:
        self.registry = registry
        self.base = f"{'http' if insecure else 'https'}://{registry}"
        self._credentials = credentials
        verify: Any = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        self._http = httpx.AsyncClient(verify=verify, timeout=timeout, follow_redirects=True)
        self._auth: dict[str, str] = {}  # scope -> Authorization header value
        self.uploads: list[str] = []

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- auth -------------------------------------------------------------------------------
    def _basic(self) -> str | None:
        if self._credentials is None:
            return None
        raw = f"{self._credentials.username}:{self._credentials.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def _authorize(self, challenge: Challenge, scope: str) -> None:
        if challenge.scheme == "basic":
            basic = self._basic()
            if basic is None:
                raise RegistryError(f"{self.registry} requires a username and password", 401)
            self._auth["*"] = basic  # Basic credentials hold for every scope
            return
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise RegistryError(f"{self.registry}: unsupported auth challenge {challenge.scheme}")
        params = {"service": challenge.params.get("service", "")}
        if scope:
            params["scope"] = scope
        headers = {}
        basic = self._basic()
        if basic:
            headers["Authorization"] = basic
        try:
            response = await self._http.get(
                challenge.params["realm"], params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            raise RegistryError(f"token service of {self.registry} unreachable: {exc}") from None
        if response.status_code != 200:
            raise RegistryError(
                f"{self.registry} refused the credentials (token service: HTTP "
                f"{response.status_code})",
                response.status_code,
            )
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"token service of {self.registry} returned no token")
        self._auth[scope] = f"Bearer {token}"

    async def _request(
        self,
        method: str,
        url: str,
        scope: str,
        *,
        ok: tuple[int, ...],
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        stream_path: Path | None = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        for attempt in range(2):
            sent = dict(headers or {})
            auth = self._auth.get(scope) or self._auth.get("*")
            if auth:
                sent["Authorization"] = auth
            body: Any = content
            if stream_path is not None:
                body = _file_chunks(stream_path)
                sent["Content-Length"] = str(stream_path.stat().st_size)
            try:
                response = await self._http.request(method, url, headers=sent, content=body)
            except httpx.HTTPError as exc:
                raise RegistryError(f"cannot reach registry {self.registry}: {exc}") from None
            if response.status_code == 401 and attempt == 0:
                header = response.headers.get("www-authenticate")
                if header:
                    await self._authorize(parse_challenge(header), scope)
                    continue
            if response.status_code in ok or response.status_code in allow:
                return response
            what = f"{method} {url.removeprefix(self.base)}"
            if response.status_code == 401:
                raise RegistryError(f"{self.registry}: unauthorized ({what})", 401)
            raise RegistryError(
                f"{self.registry}: {what} failed: HTTP {response.status_code} "
                f"{_error_text(response)}",
                response.status_code,
            )
        raise RegistryError(f"{self.registry}: authentication failed")

    # -- API ----------------------------------------------------------------------------------
    async def ping(self) -> None:
        """GET /v2/ (authenticating if asked): raises RegistryError when not usable."""
        await self._request("GET", f"{self.base}/v2/", "", ok=(200,))

    async def has_blob(self, repo: str, digest: str) -> bool:
        validate_repository(repo)
        response = await self._request(
            "HEAD", f"{self.base}/v2/{repo}/blobs/{digest}", _scope(repo, "pull"),
            ok=(200,), allow=(404,),
        )  # fmt: skip
        return response.status_code == 200

    async def push_blob(self, repo: str, digest: str, path: Path) -> bool:
        """Upload `path` unless the registry has it; True when bytes were sent."""
        if await self.has_blob(repo, digest):
            return False
        scope = _scope(repo, "pull,push")
        start = await self._request(
            "POST", f"{self.base}/v2/{repo}/blobs/uploads/", scope, ok=(202,)
        )
        location = start.headers.get("location")
        if not location:
            raise RegistryError(f"{self.registry}: upload started without a Location")
        if location.startswith("/"):
            location = self.base + location
        # The Location carries the upload's state in its query: add to it, never replace it.
        location += ("&" if "?" in location else "?") + f"digest={digest}"
        await self._request(
            "PUT", location, scope, ok=(201,), stream_path=path,
            headers={"Content-Type": "application/octet-stream"},
        )  # fmt: skip
        self.uploads.append(digest)
        return True

    async def push_blob_bytes(self, repo: str, data: bytes, scratch: Path) -> str:
        digest = sha256_digest(data)
        scratch.mkdir(parents=True, exist_ok=True)
        path = scratch / digest.replace(":", "-")
        if not path.exists():
            path.write_bytes(data)
        await self.push_blob(repo, digest, path)
        return digest

    async def put_manifest(
        self, repo: str, reference: str, data: bytes, media_type: str = MEDIA_MANIFEST
    ) -> str:
        response = await self._request(
            "PUT", f"{self.base}/v2/{repo}/manifests/{reference}", _scope(repo, "pull,push"),
            ok=(201, 200), content=data, headers={"Content-Type": media_type},
        )  # fmt: skip
        digest = sha256_digest(data)
        told = response.headers.get("docker-content-digest")
        if told and told != digest:
            raise RegistryError(f"{self.registry} stored the manifest as {told}, not {digest}")
        return digest

    async def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str] | None:
        """(bytes, media type, digest) of a manifest, or None when there is none."""
        validate_repository(repo)
        accept = ", ".join([*MANIFEST_TYPES, MEDIA_INDEX])
        response = await self._request(
            "GET", f"{self.base}/v2/{repo}/manifests/{reference}", _scope(repo, "pull"),
            ok=(200,), allow=(404,), headers={"Accept": accept},
        )  # fmt: skip
        if response.status_code == 404:
            return None
        data = response.content
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{self.registry}: manifest {reference} has digest {digest}")
        media = response.headers.get("content-type", "").split(";")[0].strip()
        return data, media, digest

    async def get_blob(self, repo: str, digest: str) -> bytes:
        response = await self._request(
            "GET", f"{self.base}/v2/{repo}/blobs/{digest}", _scope(repo, "pull"), ok=(200,)
        )
        if sha256_digest(response.content) != digest:
            raise RegistryError(f"{self.registry}: blob {digest} arrived corrupted")
        return response.content

    async def download_blob(self, repo: str, digest: str, dest: Path) -> None:
        """Stream a blob to `dest` (atomically), verifying its digest."""
        scope = _scope(repo, "pull")
        url = f"{self.base}/v2/{repo}/blobs/{digest}"
        await self._request("HEAD", url, scope, ok=(200,))  # authenticates before streaming
        auth = self._auth.get(scope) or self._auth.get("*")
        headers = {"Authorization": auth} if auth else {}
        tmp = dest.with_name(dest.name + ".part")
        hasher = hashlib.sha256()
        try:
            async with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    raise RegistryError(
                        f"{self.registry}: GET blob {digest}: HTTP {response.status_code}",
                        response.status_code,
                    )
                with open(tmp, "wb") as fh:
                    async for chunk in response.aiter_bytes(CHUNK):
                        hasher.update(chunk)
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            tmp.unlink(missing_ok=True)
            raise RegistryError(f"cannot download {digest} from {self.registry}: {exc}") from None
        if "sha256:" + hasher.hexdigest() != digest:
            tmp.unlink(missing_ok=True)
            raise RegistryError(f"{self.registry}: blob {digest} arrived corrupted")
        os.replace(tmp, dest)


def _scope(repo: str, actions: str) -> str:
    return f"repository:{repo}:{actions}"


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk
