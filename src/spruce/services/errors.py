"""Business errors, each carrying Heroku's error id and HTTP status."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    id = "bad_request"

    def __init__(self, message: str, resource: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.resource = resource
        """Heroku names the kind of thing not found ("session", "authorization"); its CLI
        tells some of them apart by it."""


class NotFound(ServiceError):
    status = 404
    id = "not_found"


class InvalidParams(ServiceError):
    status = 422
    id = "invalid_params"


class Unauthorized(ServiceError):
    status = 401
    id = "unauthorized"


class Forbidden(ServiceError):
    status = 403
    id = "forbidden"


class Conflict(ServiceError):
    status = 409
    id = "conflict"


class RateLimited(ServiceError):
    status = 429
    id = "rate_limit"


class Unavailable(ServiceError):
    status = 503
    id = "service_unavailable"


def flag(value: object, name: str) -> bool:
    """A JSON boolean as Heroku's API takes it: true/false, and 1/0 (heroku3 sends 0 to
    turn maintenance and features off)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidParams(f"{name} must be true or false.")
