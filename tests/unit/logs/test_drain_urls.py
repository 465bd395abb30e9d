from __future__ import annotations

import pytest

from spruce.logs import DrainURLError, new_drain_token, validate_drain_url


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "tls"),
    [
        ("syslog://logs.example.com:514", "syslog", "logs.example.com", 514, False),
        ("syslog+tls://logs.example.com:6514", "syslog+tls", "logs.example.com", 6514, True),
        ("https://user:pw@logs.example.com/drain?x=1", "https", "logs.example.com", 443, True),
        ("http://127.0.0.1:8080/in", "http", "127.0.0.1", 8080, False),
        ("syslog://[::1]:514", "syslog", "::1", 514, False),
        ("SYSLOG://h:1", "syslog", "h", 1, False),
    ],
)
def test_accepted(url: str, scheme: str, host: str, port: int, tls: bool) -> None:
    u = validate_drain_url(url)
    assert (u.scheme, u.host, u.port, u.tls) == (scheme, host, port, tls)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "required"),
        ("logs.example.com:514", "needs a scheme"),
        ("udp://logs.example.com:514", "unsupported drain URL scheme 'udp'"),
        ("ftp://x/y", "unsupported"),
        ("syslog://logs.example.com", "needs a port"),
        ("syslog://logs.example.com:99999", "bad port"),
        ("syslog://:514", "no host"),
        ("syslog://h:514/path", "no path"),
        ("https://exa mple.com/", "whitespace"),
        ("https://h:0/", "between 1 and 65535"),
        ("https://" + "a" * 3000, "longer than"),
    ],
)
def test_rejected_with_reason(url: str, reason: str) -> None:
    with pytest.raises(DrainURLError, match=reason):
        validate_drain_url(url)
    assert issubclass(DrainURLError, ValueError)


def test_errors_never_echo_credentials() -> None:
    with pytest.raises(DrainURLError) as err:
        validate_drain_url("syslog://user:s3cr3t@h:514")
    assert "s3cr3t" not in str(err.value)
    with pytest.raises(DrainURLError) as err:
        validate_drain_url("gopher://user:s3cr3t@h:514")
    assert "s3cr3t" not in str(err.value)


def test_drain_token_shape() -> None:
    token = new_drain_token()
    assert token.startswith("d.") and len(token) == 38
    assert token != new_drain_token()
