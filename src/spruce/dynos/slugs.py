"""Unpacked slugs: each slug is unpacked once and shared by every release that runs it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from spruce.compile.archive import unpack_slug
from spruce.services.model import SlugArtifact


class SlugCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._unpacking: dict[str, asyncio.Future[Path]] = {}

    def _empty(self) -> Path:
        empty = self.root / "_empty"
        empty.mkdir(exist_ok=True)
        return empty

    def _unpack(self, slug: SlugArtifact) -> Path:
        dest = self.root / slug.id
        if dest.exists():
            return dest
        tmp = self.root / f".{slug.id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        unpack_slug(slug.path, tmp)
        tmp.rename(dest)
        return dest

    async def directory(self, slug: SlugArtifact | None) -> Path:
        """The slug's files: an empty tree for a release without code, a directory as given,
        else the tarball unpacked (once, whoever asks at the same time)."""
        if slug is None:
            return self._empty()
        if slug.path.is_dir():
            return slug.path
        done = self.root / slug.id
        if done.exists():
            return done
        fut = self._unpacking.get(slug.id)
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(self._unpack, slug))
            self._unpacking[slug.id] = fut
            fut.add_done_callback(lambda _: self._unpacking.pop(slug.id, None))
        return await asyncio.shield(fut)
