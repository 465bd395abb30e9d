"""Heroku's H codes: status, description, log level and the built-in pages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Code(StrEnum):
    """Heroku's router error codes (the log line's `code=`)."""

    H10 = "H10"
    H11 = "H11"
    H12 = "H12"
    H13 = "H13"
    H14 = "H14"
    H15 = "H15"
    H17 = "H17"
    H18 = "H18"
    H19 = "H19"
    H20 = "H20"
    H21 = "H21"
    H22 = "H22"
    H24 = "H24"
    H25 = "H25"
    H27 = "H27"
    H28 = "H28"
    H31 = "H31"
    H32 = "H32"
    H80 = "H80"
    H81 = "H81"
    H82 = "H82"
    H84 = "H84"
    """Spruce's own: the client's address is not in the space's trusted IP ranges."""
    H99 = "H99"


@dataclass(frozen=True)
class HCode:
    code: Code
    desc: str
    status: int = 503
    at: str = "error"
    sock: str | None = None


H_CODES: dict[str, HCode] = {
    c.code: c
    for c in (
        HCode(Code.H10, "App crashed"),
        HCode(Code.H11, "Backlog too deep"),
        HCode(Code.H12, "Request timeout"),
        HCode(Code.H13, "Connection closed without response"),
        HCode(Code.H14, "No web processes running"),
        HCode(Code.H15, "Idle connection"),
        HCode(Code.H17, "Poorly formatted HTTP response", 502),
        HCode(Code.H18, "Server Request Interrupted", 503, "error", "backend"),
        HCode(Code.H19, "Backend connection timeout"),
        HCode(Code.H20, "App boot timeout"),
        HCode(Code.H21, "Backend connection refused"),
        HCode(Code.H22, "Connection limit reached"),
        HCode(Code.H24, "Forced close"),
        HCode(Code.H25, "HTTP restriction", 502),
        HCode(Code.H27, "Client Request Interrupted", 499, "warning", "client"),
        HCode(Code.H28, "Client Connection Idle", 499, "warning", "client"),
        HCode(Code.H31, "Misdirected Request", 421),
        HCode(Code.H32, "TLS Certificate Mismatch", 495),
        HCode(Code.H80, "Maintenance mode", 503, "info"),
        HCode(Code.H81, "Blank app", 503, "info"),
        HCode(Code.H82, "Free dyno hour pool used up", 503, "info"),
        HCode(Code.H84, "Untrusted source address", 403, "info"),
        HCode(Code.H99, "Platform error"),
    )
}

REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    414: "URI Too Long",
    417: "Expectation Failed",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    495: "SSL Certificate Error",
    499: "Client Closed Request",
    502: "Bad Gateway",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


def reason(status: int) -> str:
    return REASONS.get(status, "Unknown")


def _page(title: str, body: str) -> bytes:
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n"
        "<style>body{font-family:sans-serif;margin:4em auto;max-width:40em;color:#333}</style>\n"
        f"</head>\n<body>\n<h1>{title}</h1>\n<p>{body}</p>\n</body>\n</html>\n"
    ).encode()


APPLICATION_ERROR_PAGE = _page(
    "Application Error",
    "An error occurred in the application and your page could not be served. If you are the "
    "application owner, check your logs for details. You can do this from the Spruce CLI with "
    "the command <code>spruce logs --tail</code>",
)
MAINTENANCE_PAGE = _page(
    "Offline for Maintenance",
    "This app is undergoing maintenance right now. Please check back later.",
)
NO_SUCH_APP_PAGE = _page(
    "No such app",
    "There is no app configured at that hostname. If you are the application owner, check "
    "that the domain is added to your app.",
)
BLANK_APP_PAGE = _page(
    "Welcome to your new app!",
    "This app has no release with code yet. Push your code with <code>git push</code> to "
    "deploy it.",
)
QUOTA_PAGE = _page(
    "Application Unavailable",
    "This app's Eco dyno hours are used up for the month.",
)


UNTRUSTED_PAGE = _page(
    "Forbidden",
    "Your address is not in the trusted IP ranges of this app's space.",
)


def builtin_page(code: str) -> bytes:
    if code == Code.H84:
        return UNTRUSTED_PAGE
    if code == Code.H80:
        return MAINTENANCE_PAGE
    if code == Code.H81:
        return BLANK_APP_PAGE
    if code == Code.H82:
        return QUOTA_PAGE
    return APPLICATION_ERROR_PAGE


def plain_page(status: int, message: str) -> bytes:
    return f"{status} {reason(status)}: {message}\n".encode()
