"""What failures become: H codes and their pages, H27/H28, H99 for router faults, 400 for a
broken request body, H24 for exchanges still running when a stopping router's grace ends.

An `Exchange` that failed builds a `Failures` over its state and hands it the exception.
"""

from __future__ import annotations

import asyncio
import time

from .client_side import BadRequestBody, ClientGone, ClientIdle, ClientSide, HError, send_simple
from .errors import H_CODES, Code, builtin_page, plain_page
from .logline import RouterLine
from .proto.http1 import ProtocolError
from .state import Router
from .table import App

FORCED_ANSWER = 2.0  # at most this long to answer an H24 (page, then the client must read)


class Failures:
    """The answer to one exchange's failure: its line (shared with the exchange, which filled
    in what it knew), the client to answer and the app whose line it is."""

    __slots__ = ("router", "client", "line", "app", "sent_at")

    def __init__(
        self, router: Router, client: ClientSide, line: RouterLine, app: App, sent_at: float
    ) -> None:
        self.router = router
        self.client = client
        self.line = line
        self.app = app
        self.sent_at = sent_at  # monotonic time the request went to the dyno (0.0: not yet)

    async def answer(self, e: BaseException) -> None:
        """What each failure becomes: an H code, H27/H28, H99 for router faults, 400, or H24
        when the stopping router cancelled the exchange at the end of its grace period."""
        task = asyncio.current_task()
        if task is not None:
            self.router.exchanges.discard(task)  # a failure being answered is not cut by H24
        app = self.app
        if isinstance(e, HError):
            await self.fail(e)
        elif isinstance(e, ClientGone):
            self.log_code(Code.H27, 499)
            self.client.abort()
        elif isinstance(e, ClientIdle):
            self.log_code(Code.H28, 499)
            self.client.abort()
        elif isinstance(e, (ProtocolError, ValueError, RuntimeError, AssertionError, KeyError)):
            # a router fault must not look like the app's: H99, and the worker carries on
            await self.fail(HError(Code.H99, cause=type(e).__name__))
        elif isinstance(e, BadRequestBody):
            self.client.keep_alive = False
            self.line.status = 400
            if not self.client.response_started:
                try:
                    await send_simple(
                        self.client,
                        400,
                        plain_page(400, "bad request body"),
                        "text/plain",
                        close=True,
                    )
                except ClientGone:
                    pass
            else:
                self.client.abort()
            self.router.emit(app.id, self.line.format())
        elif isinstance(e, asyncio.CancelledError) and self.router.forced:
            await self._forced()
        else:
            raise e

    # failures ------------------------------------------------------------
    def log_code(self, code: Code, status: int | None) -> None:
        line = self.line
        line.code = code
        line.status = status
        self.router.emit(self.app.id, line.format())

    async def fail(self, e: HError) -> None:
        h = H_CODES[e.code]
        app = self.app
        line = self.line
        line.code = e.code
        line.status = h.status
        if e.connect_ms is not None:
            line.connect_ms = e.connect_ms
        if e.service_ms is not None:
            line.service_ms = e.service_ms
        if e.dyno is not None:
            line.dyno = e.dyno
        if self.client.response_started:
            # the client already has part of a response: all that is left is to cut it
            self.router.emit(app.id, line.format())
            self.client.abort()
            return
        body = builtin_page(e.code)
        ctype = "text/html; charset=utf-8"
        url = app.maintenance_page_url if e.code == Code.H80 else app.error_page_url
        if url:
            page = await self.router.pages.get(url)
            if page is not None:
                body, ctype = page
        try:
            await send_simple(self.client, h.status, body, ctype)
        except ClientGone:
            pass
        if line.dyno is not None and line.bytes is None:
            line.bytes = 0  # bytes= counts the dyno's body bytes: empty when no dyno was involved
        self.router.emit(app.id, line.format())

    async def _forced(self) -> None:
        """H24: the 503 page if nothing of the response reached the client yet, else the
        connection is cut; one log line either way."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the stopping router's cancellation ends here
        self.client.keep_alive = False
        service = int((time.monotonic() - self.sent_at) * 1000) if self.sent_at else None
        try:
            async with asyncio.timeout(FORCED_ANSWER):
                await self.fail(HError(Code.H24, service_ms=service))
        except TimeoutError:  # a custom page that would not come, or a client not reading
            self.client.abort()
            self.router.emit(self.app.id, self.line.format())  # fail() had not written it yet
