"""Per-app settings (Heroku keeps these internal) and the platform's own addresses."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

from .errors import InvalidParams


@dataclass(frozen=True)
class Bound:
    low: int
    high: int
    what: str


@dataclass(frozen=True)
class AppSettings:
    """The one definition of each per-app setting, its default and its bounds."""

    boot_timeout: int = 60
    """Seconds a web dyno has to bind $PORT before R10."""
    formation_limit: int = 100
    """Most dynos per process type."""

    BOUNDS: ClassVar[dict[str, Bound]] = {
        "boot_timeout": Bound(1, 3600, "seconds a web dyno has to bind $PORT (R10)"),
        "formation_limit": Bound(0, 1000, "most dynos per process type"),
    }

    @classmethod
    def from_stored(cls, raw: dict[str, Any] | None) -> AppSettings:
        """Settings as kept on the app's row; unknown or out-of-range values fall back."""
        if not raw:
            return _DEFAULT_SETTINGS
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = (raw or {}).get(f.name)
            bound = cls.BOUNDS[f.name]
            if isinstance(value, int | float) and not isinstance(value, bool):
                if bound.low <= value <= bound.high:
                    values[f.name] = int(value)
        return cls(**values)

    def changed(self, changes: object) -> AppSettings:
        """These settings with `changes` applied; InvalidParams names the first bad one."""
        if not isinstance(changes, dict):
            raise InvalidParams("settings must be an object.")
        for key, value in changes.items():
            bound = self.BOUNDS.get(key)
            if bound is None:
                names = ", ".join(sorted(self.BOUNDS))
                raise InvalidParams(f"Unknown setting {key!r}. Settings: {names}.")
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not bound.low <= value <= bound.high
                or value != int(value)
            ):
                raise InvalidParams(
                    f"{key} ({bound.what}) must be a whole number from {bound.low} to {bound.high}."
                )
        return replace(self, **{k: int(v) for k, v in changes.items()})

    def as_dict(self) -> dict[str, int]:
        # Every app in a listing shows its settings: a plain dict, not dataclasses.asdict
        # (which deep-copies, ten times slower).
        return {f.name: getattr(self, f.name) for f in _FIELDS}


_DEFAULT_SETTINGS = AppSettings()
_FIELDS = fields(AppSettings)
MAX_FORMATION_LIMIT = AppSettings.BOUNDS["formation_limit"].high


@dataclass(frozen=True)
class PlatformAddresses:
    """Where this platform answers; services build every URL they hand out from these."""

    api_url: str
    git_url: str
    web_url_template: str
    """e.g. "http://{app}.localhost:8080/"."""
    app_domain: str = "localhost"
    data_url: str | None = None
    """https://<--data-host>: Heroku's data API and the links it hands out, when served."""

    def default_hostname(self, app_name: str) -> str:
        """The app's own hostname (Heroku's <app>.herokuapp.com): the one definition."""
        return f"{app_name}.{self.app_domain}"

    def web_url(self, app_name: str) -> str:
        return self.web_url_template.format(app=app_name)

    def addon_url(self, addon_id: str) -> str:
        """The add-on's page in the dashboard: its `web_url` (`heroku addons:open`)."""
        return f"{self.api_url.rstrip('/')}/dashboard/addons/{addon_id}"

    def git_remote(self, app_name: str) -> str:
        return f"{self.git_url.rstrip('/')}/{app_name}.git"

    def stream_url(self, kind: str, token: str) -> str:
        return f"{self.api_url.rstrip('/')}/streams/{kind}/{token}"

    def download_url(self, kind: str, token: str) -> str:
        """An unauthenticated link to hand out (backups): over HTTPS on the data host when
        there is one (Heroku's CLI downloads with https only), else on the API."""
        base = (self.data_url or self.api_url).rstrip("/")
        return f"{base}/streams/{kind}/{token}"
