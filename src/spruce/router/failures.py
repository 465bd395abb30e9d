"""What failures become: H codes and their pages, H27/H28, H99 for router faults, 400 for a
broken request body, H24 for exchanges still running when a stopping router's grace ends.

`Failures` is a base of `Exchange` (which holds the state named below).
"""

from __future__ import annotations

import asyncio
import time

from .client_side import BadRequestBody, ClientGone, ClientIdle, ClientSide, HError, send_simple
from .errors import H_CODES, builtin_page, plain_page
from .logline import RouterLine
from .proto.http1 import ProtocolError
from .state import Router
from .table import App

FORCED_ANSWER = 2.0  # at most this long to answer an H24 (page, then the client must read)


class Failures:
    __slots__ = ()

    router: Router
    client: ClientSide
    line: RouterLine
    app: App | None
    sent_at: float  # monotonic time the request went to the dyno (0.0: not yet)

    async def _failed(self, app: App, e: BaseException) -> None:
        """What each failure becomes: an H code, H27/H28, H99 for router faults, 400, or H24
        when the stopping router cancelled the exchange at the end of its grace period."""
        task = asyncio.current_task()
        if task is not None:
            self.router.exchanges.discard(task)  # a failure being answered is not cut by H24
        if isinstance(e, HError):
            await self._fail(e)
        elif isinstance(e, ClientGone):
            self._log_code("H27", 499)
            self.client.abort()
        elif isinstance(e, ClientIdle):
            self._log_code("H28", 499)
            self.client.abort()
        elif isinstance(e, (ProtocolError, ValueError, RuntimeError, AssertionError, KeyError)):
            # a router fault must not look like the app's: H99, and the worker carries on
            await self._fail(HError("H99", cause=type(e).__name__))
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
            await self._forced(app)
        else:
            raise e

    # failures ------------------------------------------------------------
    def _log_code(self, code: str, status: int | None, **kw: object) -> None:
        line = self.line
        line.code = code
        line.status = status
        for k, v in kw.items():
            setattr(line, k, v)
        if self.app is not None:
            self.router.emit(self.app.id, line.format())

    async def _fail(self, e: HError) -> None:
        h = H_CODES[e.code]
        app = self.app
        assert app is not None
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
        url = app.maintenance_page_url if e.code == "H80" else app.error_page_url
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

    async def _forced(self, app: App) -> None:
        """H24: the 503 page if nothing of the response reached the client yet, else the
        connection is cut; one log line either way."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the stopping router's cancellation ends here
        self.client.keep_alive = False
        service = int((time.monotonic() - self.sent_at) * 1000) if self.sent_at else None
        try:
            async with asyncio.timeout(FORCED_ANSWER):
                await self._fail(HError("H24", service_ms=service))
        except TimeoutError:  # a custom page that would not come, or a client not reading
            self.client.abort()
            self.router.emit(app.id, self.line.format())  # _fail had not written it yet
