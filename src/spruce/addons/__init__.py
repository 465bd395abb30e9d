"""Add-on providers: real servers behind heroku-redis and heroku-postgresql add-ons."""

from __future__ import annotations

from spruce.addons.base import (
    AddonError,
    AddonLog,
    CliCommand,
    InvalidSettingError,
    MissingBinaryError,
    Plan,
    Provider,
    ProvisionError,
    UnknownAddonError,
    UnknownPlanError,
    UnknownServiceError,
)
from spruce.addons.kvs import RedisProvider
from spruce.addons.pgops import BackupError
from spruce.addons.postgres import PostgresProvider
from spruce.services.model import Backup

__all__ = [
    "AddonError",
    "AddonLog",
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
]
