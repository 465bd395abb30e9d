"""Add-on providers: real servers behind heroku-redis and heroku-postgresql add-ons."""

from __future__ import annotations

from pathlib import Path

from spruce.addons.base import (
    AddonError,
    AddonLog,
    AddonServices,
    CliCommand,
    InvalidSettingError,
    MissingBinaryError,
    Plan,
    Provider,
    ProvisionError,
    UnknownAddonError,
    UnknownPlanError,
    UnknownServiceError,
    _no_log,
    log_to_sink,
)
from spruce.addons.kvs import RedisProvider
from spruce.addons.pgops import Backup, BackupError
from spruce.addons.postgres import PostgresProvider

__all__ = [
    "AddonError",
    "AddonLog",
    "AddonServices",
    "Backup",
    "BackupError",
    "CliCommand",
    "InvalidSettingError",
    "MissingBinaryError",
    "Plan",
    "PostgresProvider",
    "Provider",
    "ProvisionError",
    "RedisProvider",
    "UnknownAddonError",
    "UnknownPlanError",
    "UnknownServiceError",
    "default_services",
    "log_to_sink",
]


def default_services(home: Path, log: AddonLog = _no_log) -> AddonServices:
    """The built-in add-on services for a platform home."""
    return AddonServices([RedisProvider(home, log=log), PostgresProvider(home, log=log)])
