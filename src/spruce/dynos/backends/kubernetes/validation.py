"""Checks of an AppRuntime for this backend: the model's rules without the local backend's
(Cedar only, a slug directory on this host)."""

from __future__ import annotations

from spruce.dynos.model import ENV_NAME_RE, PROCESS_TYPE_RE, AppRuntime
from spruce.dynos.sizes import DynoError, InvalidFormation, get_size


def validate_app(app: AppRuntime) -> None:
    """AppRuntime.validate() without the local backend's rules (Cedar only, a slug dir)."""
    if not isinstance(app.app_id, str) or not app.app_id or len(app.app_id) > 100:
        raise DynoError(f"invalid app id {app.app_id!r}")
    if not app.release_id or not isinstance(app.release_id, str):
        raise DynoError("release_id is required")
    if not (isinstance(app.boot_timeout, int | float) and 0 < app.boot_timeout <= 3600):
        raise DynoError("boot_timeout must be between 0 and 3600 seconds")
    for ptype, command in app.process_types.items():
        if not PROCESS_TYPE_RE.match(ptype):
            raise InvalidFormation(f"invalid process type {ptype!r}")
        if not isinstance(command, str) or not command.strip():
            raise InvalidFormation(f"process type {ptype!r} has no command")
    for ptype, spec in app.formation.items():
        try:
            quantity, size = spec
        except (TypeError, ValueError):
            raise InvalidFormation(f"formation for {ptype!r} must be (quantity, size)") from None
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 <= quantity <= 100:
            raise InvalidFormation(f"quantity for {ptype!r} must be an integer 0..100")
        get_size(size)
        if quantity and ptype not in app.process_types:
            raise InvalidFormation(f"no process type {ptype!r} in this release")
    for key, value in app.config.items():
        if not ENV_NAME_RE.match(key):
            raise DynoError(f"invalid config var name {key!r}")
        if not isinstance(value, str) or "\0" in value:
            raise DynoError(f"config var {key} must be a string without NUL bytes")
