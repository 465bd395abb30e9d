"""The add-on provider contract and the registry of add-on services.

A provider runs the real servers behind one add-on service (heroku-redis, heroku-postgresql).
It knows add-on ids only: apps, attachments and config var prefixes belong to the services
layer, which turns the dict a provider returns ({"URL": ...}) into `<ATTACHMENT>_URL` vars.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from spruce.events import LogSink

AddonLog = Callable[[str, str], None]
"""Called with (addon_id, message) for platform lines about an add-on's server."""


def _no_log(addon_id: str, message: str) -> None:
    pass


def log_to_sink(
    sink: LogSink, app_for_addon: Callable[[str], str | None], process: str
) -> AddonLog:
    """An AddonLog writing platform lines ("heroku" source) to the owning app's log stream.

    `app_for_addon` maps an add-on id to its billing app id (None: the line is dropped, e.g.
    for cluster-wide lines whose "addon id" is "postgres").
    """

    def log(addon_id: str, message: str) -> None:
        app_id = app_for_addon(addon_id)
        if app_id is not None:
            sink.emit(app_id, "heroku", process, message)

    return log


COLORS = (
    "AMBER",
    "AQUA",
    "BLACK",
    "BLUE",
    "BRONZE",
    "BROWN",
    "CHARCOAL",
    "COBALT",
    "COPPER",
    "CRIMSON",
    "CYAN",
    "GOLD",
    "GRAY",
    "GREEN",
    "IVORY",
    "JADE",
    "LAVENDER",
    "LIME",
    "MAGENTA",
    "MAROON",
    "MAUVE",
    "NAVY",
    "OLIVE",
    "ONYX",
    "ORANGE",
    "PINK",
    "PUCE",
    "PURPLE",
    "RED",
    "ROSE",
    "SILVER",
    "TEAL",
    "WHITE",
    "YELLOW",
)


class AddonError(Exception):
    """Base of every add-on provider error; messages never carry secrets."""


class UnknownPlanError(AddonError, ValueError):
    def __init__(self, service: str, plan: str, valid: Iterable[str]) -> None:
        self.valid = list(valid)
        super().__init__(
            f"unknown plan {plan!r} for {service}; valid plans: {', '.join(self.valid)}"
        )


class UnknownServiceError(AddonError, ValueError):
    def __init__(self, service: str, valid: Iterable[str]) -> None:
        super().__init__(f"unknown add-on service {service!r}; available: {', '.join(valid)}")


class UnknownAddonError(AddonError, KeyError):
    def __init__(self, service: str, addon_id: str) -> None:
        super().__init__(f"{service} has no add-on {addon_id!r}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class MissingBinaryError(AddonError):
    """The server program an add-on needs is not installed."""


class ProvisionError(AddonError):
    """A server could not be brought up; nothing of the add-on is left behind."""


class InvalidSettingError(AddonError, ValueError):
    """A bad value for an add-on setting (maxmemory policy, timeout, ...)."""


@dataclass(frozen=True)
class Plan:
    name: str
    human_name: str
    limits: dict[str, Any] = field(default_factory=dict)
    """Plan limits: memory_bytes, connections, storage_bytes, tables... (as applicable)."""
    default: bool = False


@dataclass(frozen=True)
class CliCommand:
    """A client command for `redis:cli` / `pg:psql`: the password travels in env, not argv."""

    argv: list[str]
    env: dict[str, str]
    host: str
    port: int
    user: str | None = None
    database: str | None = None


class Provider(abc.ABC):
    """One add-on service backed by real servers kept under the platform's home."""

    name: str
    """Service name used in `addons:create NAME:PLAN`."""
    aliases: tuple[str, ...] = ()
    human_name: str
    config_var_name: str
    """Default attachment name: "REDIS" -> REDIS_URL, "DATABASE" -> DATABASE_URL."""
    plans: tuple[Plan, ...]

    def plan(self, plan_name: str | None) -> Plan:
        """The plan called `plan_name` (the default plan when None)."""
        if plan_name is None:
            return next(p for p in self.plans if p.default)
        for p in self.plans:
            if p.name == plan_name:
                return p
        raise UnknownPlanError(self.name, plan_name, [p.name for p in self.plans])

    color_prefix: str = ""
    """Prefix of the colour names for further attachments: HEROKU_POSTGRESQL -> _GREEN."""

    def attachment_name(self, taken: Iterable[str]) -> str:
        """The default attachment name for a new add-on of this service on an app.

        The first one is config_var_name (REDIS_URL, DATABASE_URL); later ones get a colour
        (HEROKU_REDIS_AMBER_URL, HEROKU_POSTGRESQL_BLUE_URL) as on Heroku. `taken` holds the
        app's attachment names in use.
        """
        used = set(taken)
        if self.config_var_name not in used:
            return self.config_var_name
        prefix = self.color_prefix or self.config_var_name
        for color in COLORS:
            if f"{prefix}_{color}" not in used:
                return f"{prefix}_{color}"
        n = 2
        while f"{prefix}_{n}" in used:
            n += 1
        return f"{prefix}_{n}"

    @property
    def config_keys(self) -> tuple[str, ...]:
        """Keys of the dict returned by provision() / reset_credentials()."""
        return ("URL",)

    @abc.abstractmethod
    def addon_ids(self) -> list[str]:
        """Add-ons this provider holds state for."""

    @abc.abstractmethod
    async def start(self, addon_ids_to_run: Iterable[str]) -> None:
        """Bring up the servers of existing add-ons (after a platform restart)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop every server this provider runs; data stays on disk."""

    @abc.abstractmethod
    async def provision(
        self, addon_id: str, plan_name: str | None, options: dict[str, str] | None = None
    ) -> dict[str, str]:
        """Create and start the add-on; return its config (see config_keys)."""

    @abc.abstractmethod
    async def deprovision(self, addon_id: str) -> None:
        """Stop the add-on's server and delete its data."""

    @abc.abstractmethod
    async def reset_credentials(self, addon_id: str) -> dict[str, str]:
        """Rotate the password; the old one is refused afterwards. Returns the new config."""

    @abc.abstractmethod
    def config(self, addon_id: str) -> dict[str, str]:
        """The add-on's current config (same keys as provision())."""

    @abc.abstractmethod
    async def info(self, addon_id: str) -> list[tuple[str, str]]:
        """(label, value) lines as `redis:info` / `pg:info` print them."""


class AddonServices:
    """The registry: add-on services by name or alias."""

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers: dict[str, Provider] = {}
        self._names: dict[str, str] = {}
        for p in providers:
            self.register(p)

    def register(self, provider: Provider) -> None:
        for n in (provider.name, *provider.aliases):
            if n in self._names:
                raise ValueError(f"add-on service name {n!r} is already registered")
        self._providers[provider.name] = provider
        for n in (provider.name, *provider.aliases):
            self._names[n] = provider.name

    def get(self, service: str) -> Provider:
        try:
            return self._providers[self._names[service]]
        except KeyError:
            raise UnknownServiceError(service, sorted(self._providers)) from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._providers.values())

    def resolve(self, spec: str) -> tuple[Provider, Plan]:
        """ "heroku-redis:mini" / "heroku-postgresql" -> (provider, plan)."""
        service, _, plan_name = spec.partition(":")
        provider = self.get(service)
        return provider, provider.plan(plan_name or None)

    async def start(self, addon_ids_by_service: dict[str, list[str]]) -> None:
        """Start each provider with the add-ons the store says exist.

        One provider failing (say PostgreSQL is not installed) does not keep the others
        down; the failures are raised together at the end as one AddonError.
        """
        failures: list[str] = []
        for service, ids in addon_ids_by_service.items():
            provider = self.get(service)
            try:
                await provider.start(ids)
            except AddonError as e:
                failures.append(f"{provider.name}: {e}")
        if failures:
            raise AddonError("some add-on servers did not start: " + "; ".join(failures))

    async def stop(self) -> None:
        for provider in self._providers.values():
            await provider.stop()
