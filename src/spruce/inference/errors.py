"""The inference API's error bodies: `{"error": {"code", "message", "type"}}` (Heroku's)."""

from __future__ import annotations

from typing import Any

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "authorization_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class InferenceError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or TYPES.get(status, "server_error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.status, "message": self.message, "type": self.type}}


def invalid(message: str) -> InferenceError:
    return InferenceError(400, message)


def unauthenticated() -> InferenceError:
    return InferenceError(401, "Invalid API key provided")


def forbidden(message: str = "You do not have access to that model") -> InferenceError:
    return InferenceError(403, message)
