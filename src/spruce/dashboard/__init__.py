"""The web dashboard: server-rendered pages over services, at `<api>/dashboard`.

See docs/dashboard.md. Sign-in is with an API key; the browser gets an HttpOnly, SameSite
cookie holding a key made for that session only, and every form carries a CSRF token bound
to it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from spruce.services import Services

from . import pages
from .web import HERE, PREFIX, TEMPLATES, view


def create_dashboard(services: Services) -> Starlette:
    A = "/apps/{app}"
    get, post = ["GET"], ["POST"]
    app = Starlette(
        routes=[
            Route("/login", pages.login_form, methods=get),
            Route("/login", pages.login, methods=post),
            Route("/logout", view(pages.logout), methods=post),
            Route("/", view(pages.apps_list), methods=get),
            Route(A, view(pages.overview), methods=get),
            Route(A + "/formation/{type}", view(pages.scale), methods=post),
            Route(A + "/restart", view(pages.restart), methods=post),
            Route(A + "/releases/{version}/rollback", view(pages.rollback), methods=post),
            Route(A + "/activity", view(pages.activity), methods=get),
            Route(A + "/builds/{build}", view(pages.build_output), methods=get),
            Route(A + "/logs", view(pages.logs), methods=get),
            Route(A + "/metrics", view(pages.metrics), methods=get),
            Route(A + "/settings", view(pages.settings), methods=get),
            Route(A + "/config", view(pages.config_set), methods=post),
            Route(A + "/config/unset", view(pages.config_unset), methods=post),
            Route(A + "/maintenance", view(pages.maintenance), methods=post),
            Route(A + "/rename", view(pages.rename), methods=post),
            Route(A + "/destroy", view(pages.destroy), methods=post),
            Route("/addons/{addon}", view(pages.addon), methods=get),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
            Route("/{rest:path}", view(pages.not_found), methods=get),
        ],
    )
    app.state.services = services
    for name in TEMPLATES.list_templates():  # compiled now, not on someone's first view
        TEMPLATES.get_template(name)
    return app


def mount(services: Services) -> Mount:
    """The dashboard as a route of the API's application."""
    return Mount(PREFIX, app=create_dashboard(services))


__all__ = ["create_dashboard", "mount"]
