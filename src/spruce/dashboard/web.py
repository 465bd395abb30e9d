"""The dashboard's plumbing: the session cookie, CSRF, templates and error pages.

A page handler is `def handler(page: Page) -> Response` (or async); `view()` wraps it with
the session, the rate limit, the CSRF check on every POST and the translation of services'
errors into a page, so a handler only calls services and renders what they return.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from spruce.api.http import in_thread
from spruce.services import Services
from spruce.services.errors import ServiceError, Unauthorized
from spruce.services.views import UserView

from . import graphs

COOKIE = "spruce_dashboard"
PREFIX = "/dashboard"
T = TypeVar("T")
HERE = Path(__file__).parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.globals["prefix"] = PREFIX
TEMPLATES.globals["graphs"] = graphs
# No inline script or style (CSP), no framing, nothing cached: pages carry config vars.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def csrf_token(session_key: str) -> str:
    """Bound to the session: a page from another session (or none) cannot forge it."""
    return hmac.new(session_key.encode(), b"spruce dashboard csrf", hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """A browser names where a form came from; refuse another site's (Origin, or Referer)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    parts = urlsplit(source)
    return parts.netloc == request.headers.get("host", "") and parts.scheme in ("http", "https")


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def error_page(status: int, message: str, user: UserView | None = None, csrf: str = "") -> Response:
    return render("error.html", status=status, message=message, user=user, csrf=csrf)


def redirect(path: str) -> Response:
    """After a change, back to a page (POST, then GET: a reload does not repeat it)."""
    return RedirectResponse(PREFIX + path, status_code=303, headers=SECURITY_HEADERS)


@dataclass
class Page:
    request: Request
    services: Services
    user: UserView
    session_key: str
    form: FormData | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        return csrf_token(self.session_key)

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(name, status, user=self.user, csrf=self.csrf, **context)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        return await in_thread(fn, *args)


Handler = Callable[[Page], Any]


def view(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Sign-in, rate limit and CSRF around a page handler (plain `def` ones run in the
    API's threads: they only touch the store)."""
    on_loop = inspect.iscoroutinefunction(handler)

    async def run(request: Request) -> Response:
        services: Services = request.app.state.services
        key = request.cookies.get(COOKIE, "")
        form = await request.form() if request.method == "POST" else None

        def begin() -> Page:
            user = services.accounts.session_user(key)
            services.accounts.rate_limiter.take(user.id)
            return Page(request, services, user, key, form, dict(request.path_params))

        try:
            page = await in_thread(begin)
        except Unauthorized:
            if request.method != "GET":
                return error_page(403, "Your session has ended. Sign in again.")
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"/login?next={quote(target)}")
        except ServiceError as e:
            return error_page(e.status, e.message)
        if request.method == "POST":
            sent = page.field("csrf")
            if not same_origin(request) or not hmac.compare_digest(sent, page.csrf):
                return error_page(
                    403,
                    "This form came from another site, or from an old page. Reload and try again.",
                    page.user,
                    page.csrf,
                )
        try:
            result = await handler(page) if on_loop else await in_thread(handler, page)
        except ServiceError as e:
            return error_page(e.status, e.message, page.user, page.csrf)
        assert isinstance(result, Response)
        return result

    return run
