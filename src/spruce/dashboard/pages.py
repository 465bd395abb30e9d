"""The dashboard's pages and forms: each one a call to services, then a template.

Every app page finds the app through `services.apps.get(user, name, need=...)`, the API's
access rule with the permission the page needs (view, deploy, operate); every change goes
through the same service call the API makes, so the dashboard has no rule of its own.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from spruce.api.http import in_thread
from spruce.services.accounts import SESSION_TTL
from spruce.services.catalog import DYNO_SIZES
from spruce.services.errors import InvalidParams, NotFound, ServiceError, Unauthorized
from spruce.services.views import AppView

from .web import COOKIE, PREFIX, SECURITY_HEADERS, Page, error_page, redirect, render, same_origin

WINDOWS = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600}
LOG_SOURCES = ("app", "heroku")


def the_app(page: Page, owner_only: bool = False, need: str = "view") -> AppView:
    """The page's app if the user holds the permission `need` (services/app_access.py)."""
    return page.services.apps.get(page.user, page.params["app"], owner_only=owner_only, need=need)


def _safe_next(target: str) -> str:
    """Only a path inside the dashboard (no open redirect to another site)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX + "/"):
        return PREFIX + "/"
    return target


# -- signing in and out ------------------------------------------------------------------
async def login_form(request: Request) -> Response:
    return render("login.html", user=None, next=_safe_next(request.query_params.get("next", "")))


async def login(request: Request) -> Response:
    services = request.app.state.services
    form = await request.form()
    key = str(form.get("api_key") or "")
    target = _safe_next(str(form.get("next") or ""))
    if not same_origin(request):
        return error_page(403, "This form came from another site.")
    try:
        _, session_key = await in_thread(services.accounts.start_session, key)
    except Unauthorized:
        return render(
            "login.html", status=401, user=None, next=target, error="That API key is not valid."
        )
    except ServiceError as e:
        return render("login.html", status=e.status, user=None, next=target, error=e.message)
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        session_key,
        max_age=SESSION_TTL,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def logout(page: Page) -> Response:
    page.services.accounts.end_session(page.session_key)
    response = redirect("/login")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# -- apps ----------------------------------------------------------------------------------
def _dyno_summary(page: Page, app: AppView) -> dict[str, int]:
    states: dict[str, int] = {}
    for d in page.services.dynos.list(app):
        states[d.state] = states.get(d.state, 0) + 1
    return states


# Dynos are the dyno backend's, read on the event loop; the store is read in the threads.
async def apps_list(page: Page) -> Response:
    apps = await page.off_loop(page.services.apps.list_for, page.user)
    rows = [(a, _dyno_summary(page, a)) for a in sorted(apps, key=lambda a: a.name)]
    return page.render("apps.html", rows=rows)


def _overview_rows(page: Page) -> dict[str, Any]:
    s = page.services
    app = the_app(page)
    releases = s.releases.list(app.id)
    return {
        "app": app,
        "formation": s.formation.list(app.id),
        "sizes": [z.name for z in DYNO_SIZES if z.generation == app.generation],
        "releases": sorted(releases, key=lambda r: -r.version)[:5],
        "addons": s.addons.for_app(app.id),
        "domains": s.domains.list(app.id),
        "features": s.features.list(app.id),
    }


async def overview(page: Page) -> Response:
    rows = await page.off_loop(_overview_rows, page)
    dynos = sorted(page.services.dynos.list(rows["app"]), key=lambda d: d.name)
    return page.render("overview.html", tab="overview", dynos=dynos, now=time.time(), **rows)


def scale(page: Page) -> Response:
    app = the_app(page, need="operate")
    raw = page.field("quantity").strip()
    if not raw.isdigit():
        raise InvalidParams("The quantity must be a whole number.")
    update: dict[str, Any] = {"type": page.params["type"], "quantity": int(raw)}
    if page.field("size"):
        update["size"] = page.field("size")
    page.services.formation.update(page.user, app.id, [update])
    return redirect(f"/apps/{app.name}")


async def restart(page: Page) -> Response:
    app = await page.off_loop(the_app, page, False, "operate")
    dyno = page.field("dyno") or None
    process_type = page.field("type") or None
    if dyno:
        await page.services.dynos.restart_named(page.user, app, dyno)
    else:
        await page.services.dynos.restart(page.user, app, process_type=process_type)
    return redirect(f"/apps/{app.name}")


def rollback(page: Page) -> Response:
    app = the_app(page, need="deploy")
    page.services.releases.rollback(page.user, app.id, page.params["version"])
    return redirect(f"/apps/{app.name}")


# -- activity ------------------------------------------------------------------------------
def activity(page: Page) -> Response:
    s = page.services
    app = the_app(page)
    builds = sorted(s.builds.list(app.id), key=lambda b: b.created_at, reverse=True)
    releases = sorted(s.releases.list(app.id), key=lambda r: -r.version)
    return page.render("activity.html", app=app, tab="activity", builds=builds, releases=releases)


MAX_OUTPUT = 512 * 1024


def build_output(page: Page) -> Response:
    s = page.services
    app = the_app(page)
    build = s.builds.get(app.id, page.params["build"])
    path, done = s.builds.output(build.id)
    text = ""
    if path is not None and path.exists():
        with open(path, "rb") as f:
            text = f.read(MAX_OUTPUT).decode(errors="replace")
    return page.render("build.html", app=app, tab="activity", build=build, output=text, done=done)


# -- logs ------------------------------------------------------------------------------------
def _log_session(page: Page, source: str, dyno: str) -> tuple[AppView, str, list[str]]:
    s = page.services
    app = the_app(page)
    session = s.logs.create_session(app.id, 200, True, source or None, dyno or None)
    # the stream is on this same origin: the browser's EventSource needs no CORS
    types = [f.type for f in s.formation.list(app.id)]
    return app, urlsplit(session.logplex_url).path, types


async def logs(page: Page) -> Response:
    source = page.request.query_params.get("source", "")
    dyno = page.request.query_params.get("dyno", "")
    if source and source not in LOG_SOURCES:
        raise InvalidParams("source must be app or heroku.")
    app, stream, types = await page.off_loop(_log_session, page, source, dyno)
    names = sorted({d.name for d in page.services.dynos.list(app)} | set(types))
    return page.render(
        "logs.html",
        app=app,
        tab="logs",
        stream=stream,
        source=source,
        dyno=dyno,
        sources=LOG_SOURCES,
        dyno_names=names + ["router", "api"],
    )


# -- metrics ---------------------------------------------------------------------------------
def metrics(page: Page) -> Response:
    app = the_app(page)
    window = page.request.query_params.get("window", "1h")
    if window not in WINDOWS:
        window = "1h"
    view = page.services.metrics.series(app.id, WINDOWS[window])
    quota = max((d.memory_quota_mb for p in view.points for d in p.dynos.values()), default=0)
    return page.render(
        "metrics.html",
        app=app,
        tab="metrics",
        view=view,
        window=window,
        windows=list(WINDOWS),
        quota=quota,
    )


# -- settings --------------------------------------------------------------------------------
def settings(page: Page) -> Response:
    app = the_app(page, need="deploy")  # config values are deploy's
    config = page.services.releases.config(app.id)
    reveal = page.request.query_params.get("reveal") == "1"
    return page.render(
        "settings.html",
        app=app,
        tab="settings",
        config=sorted(config.items()),
        reveal=reveal,
        owner=app.owner_id == page.user.id or page.user.is_operator,
    )


def config_set(page: Page) -> Response:
    app = the_app(page, need="deploy")
    key = page.field("key").strip()
    if not key:
        raise InvalidParams("A config var needs a name.")
    page.services.releases.update_config(page.user, app.id, {key: page.field("value")})
    return redirect(f"/apps/{app.name}/settings")


def config_unset(page: Page) -> Response:
    app = the_app(page, need="deploy")
    page.services.releases.update_config(page.user, app.id, {page.field("key"): None})
    return redirect(f"/apps/{app.name}/settings")


def maintenance(page: Page) -> Response:
    on = page.field("maintenance") == "on"
    app = page.services.apps.update(page.user, page.params["app"], maintenance=on)
    return redirect(f"/apps/{app.name}/settings")


def rename(page: Page) -> Response:
    name = page.field("name").strip()
    app = page.services.apps.update(page.user, page.params["app"], name=name or None)
    return redirect(f"/apps/{app.name}/settings")


async def destroy(page: Page) -> Response:
    app = await page.off_loop(the_app, page, True)
    if page.field("confirm") != app.name:
        raise InvalidParams(f"Type the app's name ({app.name}) to destroy it.")
    await page.services.delete_app(page.user, app.id)
    return redirect("/")


def not_found(page: Page) -> Response:
    raise NotFound("There is no such page in the dashboard.")


def addon(page: Page) -> Response:
    """An add-on's page, its `web_url` (`heroku addons:open`): for whoever may see the
    add-on through one of its apps, as the API's add-on routes."""
    found = page.services.addons.get(page.user, page.params["addon"])
    app = page.services.apps.get(page.user, found.app.id)
    attachments = page.services.addons.attachments(page.user, addon_id=found.id)
    return page.render("addon.html", app=app, addon=found, attachments=attachments, tab="")
