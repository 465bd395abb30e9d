"""Drain URL validation: which log drain URLs Spruce accepts, with reasons for the others."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

SCHEMES = ("syslog", "syslog+tls", "https", "http")
MAX_URL_LENGTH = 2048


class DrainURLError(ValueError):
    """An unusable drain URL. The message never repeats the URL (it may hold credentials)."""


@dataclass(frozen=True)
class DrainURL:
    scheme: str
    host: str
    port: int
    parts: SplitResult

    @property
    def is_syslog(self) -> bool:
        return self.scheme in ("syslog", "syslog+tls")

    @property
    def tls(self) -> bool:
        return self.scheme in ("syslog+tls", "https")

    @property
    def password(self) -> str | None:
        return self.parts.password


def validate_drain_url(url: str) -> DrainURL:
    """Check a drain URL: `syslog://host:port`, `syslog+tls://host:port`, `https://...`
    (and `http://...`, meant for tests and private networks)."""
    if not isinstance(url, str) or not url:
        raise DrainURLError("a drain URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise DrainURLError(f"drain URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise DrainURLError("drain URL contains whitespace or control characters")
    if "://" not in url:
        raise DrainURLError(
            "drain URL needs a scheme: syslog://host:port, syslog+tls://host:port or https://"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DrainURLError(f"drain URL is malformed ({_reason(exc)})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = scheme if scheme.replace("+", "").replace("-", "").isalnum() else "?"
        raise DrainURLError(
            f"unsupported drain URL scheme {shown!r}: use syslog://host:port, "
            "syslog+tls://host:port or https://"
        )
    host = parts.hostname
    if not host:
        raise DrainURLError("drain URL has no host")
    if scheme in ("syslog", "syslog+tls"):
        if port is None:
            raise DrainURLError(f"a {scheme}:// drain needs a port (syslog://host:port)")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise DrainURLError(f"a {scheme}:// drain URL has no path or query")
        if parts.username or parts.password:
            raise DrainURLError(f"a {scheme}:// drain URL cannot carry credentials")
    if port == 0:
        raise DrainURLError("drain URL port must be between 1 and 65535")
    if port is None:
        port = 443 if scheme == "https" else 80
    return DrainURL(scheme=scheme, host=host, port=port, parts=parts)


def _reason(exc: ValueError) -> str:
    text = str(exc)
    return "bad port" if "port" in text.lower() else "cannot parse it"
