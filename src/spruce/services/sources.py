"""Source blobs: tarballs uploaded to the platform (POST /sources) or fetched by URL."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from .errors import InvalidParams, NotFound
from .model import SourceError
from .ports import BuildRunner
from .settings import PlatformAddresses

MAX_SOURCE_BYTES = 500 * 1024 * 1024


class Sources:
    def __init__(self, home: Path, runner: BuildRunner, addresses: PlatformAddresses) -> None:
        self.dir = Path(home) / "sources"
        self.work = Path(home) / "work"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        self.runner = runner
        self.addresses = addresses

    def new_upload(self) -> str:
        """A URL to PUT a tarball to, and GET it back from (Heroku's put_url/get_url)."""
        return self.addresses.stream_url("sources", str(uuid.uuid4()))

    def path(self, source_id: str) -> Path:
        try:
            sid = str(uuid.UUID(source_id))
        except ValueError:
            raise NotFound("Couldn't find that source.") from None
        return self.dir / f"{sid}.tgz"

    def local(self, url: str) -> Path | None:
        """The file behind one of this platform's own source URLs (None: a foreign URL)."""
        prefix = self.addresses.stream_url("sources", "")
        if not url.startswith(prefix):
            return None
        path = self.path(url[len(prefix) :].split("?")[0])
        if not path.exists():
            raise InvalidParams("The source blob was never uploaded.")
        return path

    async def _download(self, url: str) -> Path:
        if not url.startswith(("http://", "https://")):
            raise InvalidParams("source_blob.url must be an http(s) URL.")
        fd, tmp = tempfile.mkstemp(suffix=".tgz", dir=self.dir)
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                async with httpx.AsyncClient(follow_redirects=True, timeout=60) as client:
                    async with client.stream("GET", url) as resp:
                        if resp.status_code >= 400:
                            raise InvalidParams(
                                f"Could not download the source: HTTP {resp.status_code}."
                            )
                        async for chunk in resp.aiter_bytes():
                            size += len(chunk)
                            if size > MAX_SOURCE_BYTES:
                                raise InvalidParams("The source archive is larger than 500 MB.")
                            f.write(chunk)
        except httpx.HTTPError as e:
            os.unlink(tmp)
            raise InvalidParams(f"Could not download the source: {type(e).__name__}.") from None
        except BaseException:
            os.unlink(tmp)
            raise
        return Path(tmp)

    @contextlib.asynccontextmanager
    async def fetched(self, url: str) -> AsyncIterator[Path]:
        """The source at `url`, extracted into a scratch directory for the duration."""
        work = Path(tempfile.mkdtemp(prefix="src-", dir=self.work))
        archive = self.local(url)
        downloaded = archive is None
        try:
            if archive is None:
                archive = await self._download(url)
            try:
                src = self.runner.extract_source(archive, work / "src")
            except SourceError as e:
                raise InvalidParams(f"The source is not a usable tarball: {e}") from None
            yield src
        finally:
            if downloaded and archive is not None:
                archive.unlink(missing_ok=True)
            shutil.rmtree(work, ignore_errors=True)

    async def receive(self, source_id: str, chunks: AsyncIterator[bytes]) -> None:
        """Keep an uploaded tarball (PUT to its put_url); too big ones are refused whole."""
        path = self.path(source_id)
        tmp = path.with_suffix(".part")
        size = 0
        try:
            with open(tmp, "wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_SOURCE_BYTES:
                        raise SourceTooLarge("The source blob is larger than 500 MB.")
                    f.write(chunk)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)


class SourceTooLarge(InvalidParams):
    status = 413
    id = "request_entity_too_large"
