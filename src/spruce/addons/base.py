"""A base for add-on providers (services.ports.AddonProvider) and their errors.

A provider runs the real servers behind one add-on service (heroku-redis, heroku-postgresql).
It knows add-on ids only: apps, attachments and config var prefixes belong to the services
layer, which turns the dict a provider returns ({"URL": ...}) into `<ATTACHMENT>_URL` vars.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable

from spruce.services.model import AddonError, CliCommand, InvalidSettingError, Plan
from spruce.services.ports import KeyValueStoreOps, PostgresOps

AddonLog = Callable[[str, str], None]
"""Called with (addon_id, message) for platform lines about an add-on's server."""


def _no_log(addon_id: str, message: str) -> None:
    pass


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

    rotate_on_detach: bool = False
    """Detaching rotates the credentials of the add-on's remaining attachments."""

    color_prefix: str = ""
    """Prefix of the colour names for further attachments: HEROKU_POSTGRESQL -> _GREEN."""

    def key_value_store(self) -> KeyValueStoreOps | None:
        return None

    def postgres(self) -> PostgresOps | None:
        return None

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
        self,
        addon_id: str,
        plan_name: str | None,
        options: dict[str, str] | None = None,
        region: str | None = None,
    ) -> dict[str, str]:
        """Create and start the add-on; return its config (see config_keys). With a region,
        its data goes under that region's data root (`<home>/regions/<region>`)."""

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
    async def change_plan(self, addon_id: str, plan_name: str) -> None:
        """Apply another plan's limits to a running add-on."""

    @abc.abstractmethod
    async def info(self, addon_id: str) -> list[tuple[str, str]]:
        """(label, value) lines as `redis:info` / `pg:info` print them."""


__all__ = [
    "AddonError",
    "AddonLog",
    "CliCommand",
    "InvalidSettingError",
    "MissingBinaryError",
    "Plan",
    "Provider",
    "ProvisionError",
    "UnknownAddonError",
    "UnknownPlanError",
    "UnknownServiceError",
]
