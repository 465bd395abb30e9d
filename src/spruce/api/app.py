"""The Platform API v3 application."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from spruce.services import Services

from . import (
    account_routes,
    acm_routes,
    addon_routes,
    core_routes,
    data_routes,
    deploy_routes,
    domain_routes,
    dyno_routes,
    exec_routes,
    log_routes,
    oci_routes,
    pipeline_routes,
    review_routes,
    space_routes,
    streams,
    team_routes,
    telemetry_routes,
)
from .http import NO_COUNTER, ROUTE_NOT_FOUND, QueryCounter, error_response, request_id_for


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    rid = request_id_for(request)
    if exc.status_code == 405:
        return error_response(404, "not_found", ROUTE_NOT_FOUND, rid)
    if exc.status_code == 404:
        return error_response(404, "not_found", ROUTE_NOT_FOUND, rid)
    return error_response(exc.status_code, "bad_request", str(exc.detail), rid)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Never echo the exception: it may carry secrets (URLs with passwords, keys).
    return error_response(
        500, "internal_server_error", "Internal server error.", request_id_for(request)
    )


def create_api(
    services: Services,
    ca_pem: str,
    log_sessions: object,
    extra_routes: list[BaseRoute] | None = None,
    query_counter: QueryCounter = NO_COUNTER,
) -> Starlette:
    """The API over `services`; `log_sessions` is the log router's ASGI app that serves
    the log sessions' streams, and `ca_pem` the internal CA's certificate."""
    app = Starlette(
        routes=[
            # before core's: the account feature route is more specific than theirs
            *review_routes.routes(),
            *pipeline_routes.routes(),
            *core_routes.routes(),
            *account_routes.routes(),
            *deploy_routes.routes(),
            *log_routes.routes(),
            *dyno_routes.routes(),
            *exec_routes.routes(),
            *addon_routes.routes(),
            *data_routes.routes(),
            *domain_routes.routes(),
            *acm_routes.routes(),
            *oci_routes.routes(),
            *team_routes.routes(),
            *space_routes.routes(),
            *telemetry_routes.routes(),
            *streams.routes(log_sessions),
            *(extra_routes or []),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.services = services
    app.state.ca_pem = ca_pem
    app.state.query_counter = query_counter
    return app
