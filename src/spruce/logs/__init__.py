"""The log router (Spruce's Logplex): ring buffers, log sessions, drains.

Wiring (control plane)::

    router = LogRouter(LogRouterConfig(), drain_ssl_context=None)   # one per spruced
    # every producer gets it as its LogSink: router.emit(app_id, "app", "web.1", b"...")
    api = Starlette(routes=[..., Mount("/log-sessions/stream", app=router.asgi_app)])
    await router.start()            # on the control plane's loop; `await router.stop()` at exit

    # POST /apps/{app}/log-sessions
    token = router.create_session(app.id, lines=100, tail=False, source=None, dyno=None)
    logplex_url = api_base_url + "/log-sessions/stream" + router.session_path(token)

    # POST/DELETE /apps/{app}/log-drains (after validate_drain_url(url) -> 422 on ValueError)
    router.set_drains(app.id, [DrainSpec(d.id, d.url, d.token, app.name) for d in drains])
    router.drain_status(drain.id)   # state, sent, dropped, last_error
    router.remove_app(app.id)       # on apps:destroy
"""

from spruce.logs.colors import LineColorizer, format_line
from spruce.logs.config import LogRouterConfig
from spruce.logs.drains import (
    DrainSpec,
    DrainStatus,
    DrainURL,
    DrainURLError,
    validate_drain_url,
)
from spruce.logs.lines import MAX_LINE_BYTES, LogLine, display_line, format_timestamp
from spruce.logs.router import LogRouter
from spruce.logs.sessions import LogSession, LogSessionError
from spruce.services.model import new_drain_token

__all__ = [
    "MAX_LINE_BYTES",
    "DrainSpec",
    "DrainStatus",
    "DrainURL",
    "DrainURLError",
    "LineColorizer",
    "LogLine",
    "LogRouter",
    "LogRouterConfig",
    "LogSession",
    "LogSessionError",
    "display_line",
    "format_line",
    "format_timestamp",
    "new_drain_token",
    "validate_drain_url",
]
