"""Heroku Exec on Cedar: the exec manager's rules (`heroku ps:exec`, `ps:copy`,
`ps:forward`, `ps:socks`).

Heroku's CLI asks the exec manager (HEROKU_EXEC_URL, `/api/v2`) for a session to a dyno,
with the app's name as the Basic user and the API key as the password, after it made sure
the app's `runtime-heroku-exec` feature is on (enabling it restarts the dynos). The manager
registers the CLI's fresh public key with the SSH gateway (an ExecGateway) for that one
dyno and answers where to connect: `tunnel_host` (port 80), the SSH user, the gateway's host
key and the dyno's address. Only users with access to the app get a session; Fir apps have
no Heroku Exec (run:inside instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from .apps import Apps
from .errors import InvalidParams, NotFound, Unavailable
from .events import ApiActivity, EventBus
from .features import EXEC_FEATURE, FIR_EXEC_REFUSAL, Features
from .model import Generation
from .ports import DynoBackend, ExecGateway
from .views import AppView, UserView

MAX_CLIENT_KEY = 16_384
NOT_SERVED = (
    "Heroku Exec is not served by this platform: its operator starts it with "
    "`spruce up --exec-host ADDRESS` (as root: Heroku's CLI connects to port 80)."
)
NOT_ENABLED = (
    "Heroku Exec is not enabled for {app}: enable the runtime-heroku-exec feature and "
    "restart the dynos (heroku ps:exec does both when asked)."
)

NEEDS_RESTART = (
    "{dyno} started before Heroku Exec was enabled on {app}: restart it first "
    "(heroku ps:restart {dyno} -a {app})."
)


@dataclass(frozen=True)
class ExecSession:
    """What the exec manager answers for one session (`PUT /api/v2/{dyno}`)."""

    tunnel_host: str
    client_user: str
    proxy_public_key: str
    dyno_ip: str
    dyno_name: str


@dataclass(frozen=True)
class ExecReservation:
    """A dyno Heroku Exec can reach (`GET /api/v2`, `ps:exec --status`)."""

    dyno_name: str


class HerokuExec:
    def __init__(
        self,
        events: EventBus,
        apps: Apps,
        features: Features,
        backend: DynoBackend,
        gateway: ExecGateway | None,
    ) -> None:
        self.events = events
        self.apps = apps
        self.features = features
        self.backend = backend
        self.gateway = gateway

    def app_for(self, actor: UserView, identity: str) -> AppView:
        """The app a session may be opened on by `actor` (reads the store: call it off the
        event loop): access, a Cedar app, Heroku Exec served here and its feature on."""
        if not identity:
            raise NotFound("Couldn't find that app.")
        app = self.apps.get(actor, identity, need="operate")  # Heroku Exec is operate's
        if app.generation == Generation.FIR:
            raise InvalidParams(FIR_EXEC_REFUSAL)
        if self.gateway is None:
            raise Unavailable(NOT_SERVED)
        if EXEC_FEATURE not in self.features.enabled(app.id):
            raise InvalidParams(NOT_ENABLED.format(app=app.name))
        return app

    def reservations(self, app: AppView) -> list[ExecReservation]:
        """The app's running dynos, each reachable by Heroku Exec."""
        up = [d for d in self.backend.dynos(app.id) if d.state == "up" and d.pid is not None]
        return [ExecReservation(d.name) for d in sorted(up, key=lambda d: d.name)]

    def open_session(
        self, actor: UserView, app: AppView, dyno_name: str, client_key: object
    ) -> ExecSession:
        """Register the client's public key for one running dyno (a short-lived grant);
        `app` comes from app_for."""
        gateway = self.gateway
        if gateway is None:
            raise Unavailable(NOT_SERVED)
        if not isinstance(client_key, str) or not client_key.strip():
            raise InvalidParams("client_key is required: the OpenSSH public key to log in with.")
        if len(client_key) > MAX_CLIENT_KEY:
            raise InvalidParams("client_key is too long for an OpenSSH public key.")
        dyno = next((d for d in self.backend.dynos(app.id) if d.name == dyno_name), None)
        if dyno is None or dyno.state != "up" or dyno.pid is None:
            raise NotFound(f"Couldn't find a running dyno {dyno_name} on {app.name}.")
        try:
            user = gateway.grant(app.id, dyno.name, client_key.strip())
        except ValueError:
            raise InvalidParams("client_key is not an OpenSSH public key.") from None
        except LookupError:
            raise NotFound(f"Couldn't find a running dyno {dyno_name} on {app.name}.") from None
        except PermissionError:
            raise InvalidParams(NEEDS_RESTART.format(dyno=dyno.name, app=app.name)) from None
        self.events.publish(
            ApiActivity(app.id, f"Heroku Exec session to {dyno.name} by user {actor.email}")
        )
        return ExecSession(
            tunnel_host=gateway.tunnel_host,
            client_user=user,
            proxy_public_key=gateway.host_public_key,
            dyno_ip=dyno.host,
            dyno_name=dyno.name,
        )
