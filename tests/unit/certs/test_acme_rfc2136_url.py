"""Parsing `rfc2136://KEYNAME:SECRET@HOST:PORT/ZONE?alg=...` (secrets never echoed)."""

from __future__ import annotations

import re

import pytest

from spruce.certs.dns import Rfc2136Config

SECRET = "q+Kf/9aZ0x1y2w3v4u5t6s7r8q9p0o1n2m3l4k5j6h8="  # base64 with '+', '/' and '='


def test_a_full_url():
    c = Rfc2136Config.from_url(
        f"rfc2136://acme-key:{SECRET}@10.0.0.53:5353/Acme.Example.NET.?alg=hmac-sha512"
    )
    assert (c.key_name, c.secret, c.host, c.port, c.zone, c.algorithm) == (
        "acme-key",
        SECRET,
        "10.0.0.53",
        5353,
        "acme.example.net",
        "hmac-sha512",
    )
    assert c.address == "10.0.0.53:5353"
    assert SECRET not in repr(c)


def test_defaults_percent_encoding_and_ipv6():
    encoded = SECRET.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    c = Rfc2136Config.from_url(f"rfc2136://k%2E1:{encoded}@[::1]/zone.test")
    assert (c.key_name, c.secret, c.host, c.port, c.algorithm) == (
        "k.1",
        SECRET,
        "::1",
        53,
        "hmac-sha256",
    )
    assert c.address == "[::1]:53"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("dns://k:c2VjcmV0@h/z", "looks like rfc2136://"),
        ("rfc2136://h:53/z", "no KEYNAME:SECRET@"),
        ("rfc2136://k@h:53/z", "needs a TSIG key name and secret"),
        ("rfc2136://k:not base64!@h:53/z", "not base64"),
        ("rfc2136://k:c2VjcmV0@:53/z", "names no server"),
        ("rfc2136://k:c2VjcmV0@h:99999/z", "not a port number"),
        ("rfc2136://k:c2VjcmV0@h:53", "names no zone"),
        ("rfc2136://k:c2VjcmV0@h:53/z?alg=hmac-sha3", "unknown TSIG algorithm"),
        ("rfc2136://k:c2VjcmV0@h:53/z?ttl=5", "unknown DNS provider URL parameter(s): ttl"),
    ],
)
def test_bad_urls_say_what_is_wrong_without_the_secret(url, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        Rfc2136Config.from_url(url)
    assert "c2VjcmV0" not in str(info.value)
