"""Per-app ring buffers of recent lines, and wake-ups for tail readers.

`emit` may be called from any thread; readers are asyncio tasks. A reader registers a
`Waiter`; an append sets it (directly on the loop's own thread, through
`call_soon_threadsafe` from any other), so a tail never polls and never misses a line.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import deque

from spruce.logs.lines import LogLine


class Waiter:
    __slots__ = ("loop", "event", "thread_id")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.thread_id = threading.get_ident()

    def wake(self) -> None:
        if threading.get_ident() == self.thread_id:
            self.event.set()
        else:
            try:
                self.loop.call_soon_threadsafe(self.event.set)
            except RuntimeError:  # the reader's loop is closed: nobody to wake
                pass


class AppLog:
    """The last `capacity` lines of one app. Mutated only under the router's lock."""

    __slots__ = ("lines", "seq", "waiters")

    def __init__(self, capacity: int) -> None:
        self.lines: deque[LogLine] = deque(maxlen=capacity)
        self.seq = 0
        self.waiters: set[Waiter] = set()

    def first_seq(self) -> int:
        return self.lines[0].seq if self.lines else self.seq + 1

    def after(self, seq: int) -> tuple[list[LogLine], int]:
        """Lines with a sequence number above `seq`, and how many of those were already
        overwritten (a reader that fell more than a buffer behind)."""
        if seq >= self.seq or not self.lines:
            return [], 0
        new = self.seq - seq
        if new < len(self.lines):
            # Walk from the newest end: O(new lines), not O(buffer), for busy tails.
            out = list(itertools.islice(reversed(self.lines), new))
            out.reverse()
            return out, 0
        first = self.lines[0].seq
        return list(self.lines), max(0, first - seq - 1)
