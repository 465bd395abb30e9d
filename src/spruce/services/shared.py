"""State every API process shares (spruce up --api-workers): rate limits and key revocation.

A small file mapped into each process's memory. Heroku counts one budget per account
whichever server answers, and a revoked key must be refused at once by all of them, so
neither can live in one process's memory when several serve the API.

Layout: an 8-byte header (the key epoch: bumped whenever keys or users change, which drops
every process's cache of verified keys), then SLOTS buckets of 32 bytes: the first 16
bytes of a digest of the user id, the tokens left (float64) and when they were counted
(float64, CLOCK_MONOTONIC: one clock for every process of the machine). Writers hold an
flock on the file (and a thread lock: flock does not exclude threads sharing a file).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import RateLimited

HEADER = struct.Struct("<Q")
SLOT = struct.Struct("<16sdd")
SLOTS = 8192
PROBES = 32  # a user whose probes are all taken reuses the stalest of them
SIZE = HEADER.size + SLOTS * SLOT.size
EMPTY = bytes(16)
LIMITED = (
    "Your account reached the API rate limit. Please wait a few minutes before making new requests."
)


class SharedLimits:
    """The shared file, opened by each API process (the main one creates it)."""

    def __init__(self, path: Path, limit: int, window: float) -> None:
        self.path = Path(path)
        self.limit = limit
        self.rate = limit / window
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < SIZE:
                os.ftruncate(fd, SIZE)
            self._map = mmap.mmap(fd, SIZE)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: Path, limit: int, window: float) -> SharedLimits:
        """A fresh file: a restart refills every bucket, as with one process."""
        Path(path).unlink(missing_ok=True)
        return cls(path, limit, window)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    # -- the key epoch -------------------------------------------------------------------
    def key_epoch(self) -> int:
        # an aligned 8-byte read: no lock (a writer's bump is seen whole or not yet)
        return int(HEADER.unpack_from(self._map, 0)[0])

    def bump_key_epoch(self) -> None:
        with self._locked():
            HEADER.pack_into(self._map, 0, self.key_epoch() + 1)

    # -- rate limits (a token bucket per user) -------------------------------------------
    def _slot(self, user_id: str) -> tuple[int, bytes]:
        """The offset of the user's bucket (or of the one to take for it); under the lock."""
        digest = hashlib.blake2b(user_id.encode(), digest_size=16).digest()
        start = int.from_bytes(digest[:4], "little") % SLOTS
        stalest, stalest_at = -1, float("inf")
        for i in range(PROBES):
            offset = HEADER.size + ((start + i) % SLOTS) * SLOT.size
            owner, _, stamp = SLOT.unpack_from(self._map, offset)
            if owner == digest or owner == EMPTY:
                return offset, digest
            if stamp < stalest_at:
                stalest, stalest_at = offset, stamp
        return stalest, digest

    def _refill(self, user_id: str, take: bool) -> int:
        now = time.monotonic()
        with self._locked():
            offset, digest = self._slot(user_id)
            owner, tokens, stamp = SLOT.unpack_from(self._map, offset)
            if owner != digest:
                tokens, stamp = float(self.limit), now
            tokens = min(float(self.limit), tokens + (now - stamp) * self.rate)
            if take:
                if tokens < 1:
                    SLOT.pack_into(self._map, offset, digest, tokens, now)
                    raise RateLimited(LIMITED)
                tokens -= 1
            SLOT.pack_into(self._map, offset, digest, tokens, now)
            return int(tokens)

    def take(self, user_id: str) -> int:
        return self._refill(user_id, take=True)

    def remaining(self, user_id: str) -> int:
        return self._refill(user_id, take=False)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
