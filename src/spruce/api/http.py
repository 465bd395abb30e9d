"""The Platform API's plumbing: auth, errors, Range pagination and Heroku's headers.

Handlers are plain `async def handler(ctx) -> object`; `endpoint()` wraps them with
authentication, rate limiting, JSON parsing and error translation, so a handler only turns
HTTP into a service call and the result into Heroku-shaped JSON.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import inspect
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from spruce.services import Services
from spruce.services.errors import InvalidParams, ServiceError, Unauthorized
from spruce.services.views import ListRange, UserView

JSON_TYPE = "application/json"
T = TypeVar("T")
# Handlers that only read and write the store run here, never on the event loop: one slow
# query must not stall the router feed, log streams or other requests.
_DB_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="api-db")
ROUTE_NOT_FOUND = (
    "The requested API endpoint was not found. Are you using the right HTTP verb (i.e. `GET` "
    "vs. `POST`), and did you specify your intended version with the `Accept` header?"
)
MAX_RANGE = 1000
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9+/=\-]{20,200}$")


class ApiJson(JSONResponse):
    """JSON through orjson: a listing of a thousand apps encodes in about a millisecond
    (the standard library's encoder took ten). Same bytes as Starlette's compact JSON
    for what the API sends (UTF-8, no NaN: orjson writes null)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error_response(
    status: int,
    id_: str,
    message: str,
    request_id: str | None = None,
    resource: str | None = None,
) -> Response:
    headers = {"Request-Id": request_id} if request_id else None
    body = {"id": id_, "message": message}
    if resource:
        body["resource"] = resource
    return ApiJson(body, status_code=status, headers=headers)


def request_id_for(request: Request) -> str:
    rid = request.headers.get("request-id") or request.headers.get("x-request-id") or ""
    # Keep a client's id (the CLI sends one) when it is sane; echo it comma-joined like Heroku.
    if rid and REQUEST_ID_RE.match(rid.split(",")[0].strip()):
        return rid.split(",")[0].strip() + "," + str(uuid.uuid4())
    return str(uuid.uuid4())


def api_key_from(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except Exception:
            return None
        # heroku3 and git send the key as the password (the user part is ignored).
        return decoded.partition(":")[2] or decoded.partition(":")[0]
    return None


@dataclass
class Ctx:
    request: Request
    services: Services
    actor: UserView
    body: Any = None
    params: dict[str, str] = field(default_factory=dict)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def field(self, name: str, default: Any = None) -> Any:
        if isinstance(self.body, dict):
            return self.body.get(name, default)
        return default

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store-bound call from an async handler in the API's threads."""
        return await in_thread(fn, *args)


Handler = Callable[[Ctx], Awaitable[Any]] | Callable[[Ctx], Any]


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(_DB_THREADS, lambda: context.run(fn, *args))


async def _parse_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidParams("Invalid JSON in the request body.") from None


def endpoint(handler: Handler, *, auth: bool = True) -> Callable[[Request], Awaitable[Response]]:
    """A plain `def` handler runs in the API's threads (it only touches the store); an
    `async def` one runs on the loop (it awaits dynos or add-on servers) and moves its
    store calls off the loop with `ctx.off_loop`."""
    on_loop = inspect.iscoroutinefunction(handler)

    def authenticate(services: Services, request: Request, headers: dict[str, str]) -> Any:
        if not auth:
            return None  # only handlers with auth=False run without an actor
        key = api_key_from(request)
        if not key:
            raise Unauthorized("Invalid credentials provided.")
        actor = services.accounts.authenticate(key)
        headers["RateLimit-Remaining"] = str(services.accounts.rate_limiter.take(actor.id))
        return actor

    async def run(request: Request) -> Response:
        services: Services = request.app.state.services
        counter = request.app.state.query_counter
        rid = request_id_for(request)
        headers = {"Request-Id": rid}
        queries: list[int] = [0]
        try:
            body = (
                await _parse_body(request)
                if request.method in ("POST", "PATCH", "PUT", "DELETE")
                else None
            )

            def call() -> Any:
                actor = authenticate(services, request, headers)
                ctx = Ctx(request, services, actor, body, dict(request.path_params))
                return ctx, (None if on_loop else handler(ctx))

            with counter(queries):
                ctx, result = await in_thread(call)
                if on_loop:
                    result = await handler(ctx)
            if counter is not NO_COUNTER:
                headers["Spruce-Queries"] = str(queries[0])
            headers.update(ctx.headers)
            if isinstance(result, Response):
                result.headers.update(headers)
                return result
            return ApiJson(result, status_code=ctx.status, headers=headers)
        except ServiceError as e:
            resp = error_response(e.status, e.id, e.message, resource=e.resource)
            resp.headers.update(headers)
            return resp

    run.handler = handler  # type: ignore[attr-defined]  # which handler (api/read_worker.py)
    return run


QueryCounter = Callable[[list[int]], Any]
"""`counter(cell)` is a context manager adding the queries run inside it to cell[0]."""


class _NoCount:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def NO_COUNTER(cell: list[int]) -> _NoCount:  # noqa: N802 - a constant-like default
    return _NoCount()


# -- Range pagination ------------------------------------------------------
@dataclass
class Range:
    field: str
    start: str | None
    start_exclusive: bool
    max: int
    order: str


_RANGE_RE = re.compile(
    r"^\s*(?P<field>[a-z_]+)\s*(?P<bracket>\]?)(?P<start>[^;]*?)\.\.(?P<end>[^;]*?)\s*(;(?P<opts>.*))?$"
)


def parse_range(
    header: str | None,
    allowed: Sequence[str],
    default_field: str,
    aliases: dict[str, str] | None = None,
) -> Range:
    """`aliases` maps other names clients range on to an allowed field (heroku3 ranges
    domains on `domain`, Heroku's older name of `hostname`)."""
    if not header:
        return Range(default_field, None, False, MAX_RANGE, "asc")
    m = _RANGE_RE.match(header)
    field_ = (aliases or {}).get(m.group("field"), m.group("field")) if m else ""
    if not m or field_ not in allowed:
        raise InvalidParams(
            f"Invalid Range header {header!r}; ranges are supported on: {', '.join(allowed)}."
        )
    opts: dict[str, str] = {}
    for part in (m.group("opts") or "").replace(",", ";").split(";"):
        if "=" in part:
            k, _, v = part.partition("=")
            opts[k.strip()] = v.strip()
    try:
        max_ = int(opts.get("max", MAX_RANGE))
    except ValueError:
        raise InvalidParams("Range max must be a number.") from None
    order = opts.get("order", "asc")
    if order not in ("asc", "desc"):
        raise InvalidParams("Range order must be asc or desc.")
    start = m.group("start").strip() or None
    return Range(field_, start, bool(m.group("bracket")), max(1, min(max_, MAX_RANGE)), order)


def paginate(
    ctx: Ctx,
    items: list[dict[str, Any]],
    allowed: Sequence[str] = ("id",),
    default_field: str | None = None,
    aliases: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Apply the request's Range to serialised items; sets 206 and Next-Range when cut."""
    rng = parse_range(
        ctx.request.headers.get("range"), allowed, default_field or allowed[0], aliases
    )

    def key(item: dict[str, Any]) -> Any:
        v = item.get(rng.field)
        return (0, v, "") if isinstance(v, int) else (1, 0, str(v if v is not None else ""))

    ordered = sorted(items, key=key, reverse=rng.order == "desc")
    if rng.start is not None:
        probe = {
            rng.field: int(rng.start)
            if rng.start.isdigit() and items and isinstance(items[0].get(rng.field), int)
            else rng.start
        }
        pk = key(probe)
        if rng.order == "asc":
            ordered = [i for i in ordered if (key(i) > pk if rng.start_exclusive else key(i) >= pk)]
        else:
            ordered = [i for i in ordered if (key(i) < pk if rng.start_exclusive else key(i) <= pk)]
    page = ordered[: rng.max]
    return paged(ctx, rng, page, len(ordered) > rng.max, allowed)


def request_range(ctx: Ctx, allowed: Sequence[str], default_field: str) -> ListRange:
    """The request's Range as services take it (for listings cut in the database)."""
    rng = parse_range(ctx.request.headers.get("range"), allowed, default_field)
    return ListRange(rng.field, rng.start, rng.start_exclusive, rng.max, rng.order == "desc")


def paged(
    ctx: Ctx,
    rng: Range | ListRange,
    page: list[dict[str, Any]],
    more: bool,
    allowed: Sequence[str],
) -> list[dict[str, Any]]:
    """Heroku's headers for one page: 206 and Next-Range when more follow, Accept-Ranges."""
    if isinstance(rng, ListRange):
        order, limit = ("desc" if rng.descending else "asc"), rng.limit
    else:
        order, limit = rng.order, rng.max
    if more and page:
        ctx.status = 206
        last = page[-1].get(rng.field)
        ctx.headers["Next-Range"] = f"{rng.field} ]{last}..; max={limit}, order={order}"
    ctx.headers["Accept-Ranges"] = ", ".join(allowed)
    return page
