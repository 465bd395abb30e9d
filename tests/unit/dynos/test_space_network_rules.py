"""The nftables rules a space's dyno gets: its outbound ruleset, its add-ons' loopback ports,
its own space open, other spaces closed (checked by nft itself when it is here as root)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from spruce.dynos.network import SpaceNetworks, dyno_ruleset, egress_rules, local_ports
from spruce.services.model import EgressRule

SPACE = ipaddress.IPv4Network("100.70.3.0/24")
POOL = ipaddress.IPv4Network("100.70.0.0/16")


def test_outbound_rules_become_accepts_by_protocol_and_ports() -> None:
    rules = (
        EgressRule("0.0.0.0/0", 0, 65535, "-1"),
        EgressRule("192.0.2.7/32", 443, 443, "tcp"),
        EgressRule("198.51.100.0/24", 5000, 5100, "udp"),
        EgressRule("203.0.113.9", 0, 0, "icmp"),
    )
    assert egress_rules(rules) == [
        "ip daddr 0.0.0.0/0 accept",
        "ip daddr 192.0.2.7/32 tcp dport 443 accept",
        "ip daddr 198.51.100.0/24 udp dport 5000-5100 accept",
        "ip daddr 203.0.113.9/32 ip protocol icmp accept",
    ]


def test_loopback_ports_come_from_add_on_urls_and_endpoints() -> None:
    values = [
        "redis://h:pw@127.0.0.1:6400",
        "postgres://u:p@localhost:5433/db?sslmode=require",
        "http://127.0.0.1:8123/otlp",
        "https://example.com:443/",
        "no url",
    ]
    assert local_ports(values) == frozenset({6400, 5433, 8123})


def test_the_ruleset_orders_space_open_other_spaces_closed_then_the_space_rules() -> None:
    text = dyno_ruleset(
        SPACE, POOL, "100.70.3.1", frozenset({6400}), (EgressRule("10.9.0.0/16", 80, 80, "tcp"),)
    )
    out = text.split("chain out {", 1)[1]
    order = [
        'oifname "lo" accept',
        "ct state established,related accept",
        "ip daddr 100.70.3.0/24 ip daddr != 100.70.3.1 accept",
        "ip daddr 100.70.0.0/16 ip daddr != 100.70.3.1 drop",
        "ip daddr 100.70.3.1 tcp dport { 6400 } accept",
        "ip daddr 10.9.0.0/16 tcp dport 80 accept",
    ]
    positions = [out.index(line) for line in order]
    assert positions == sorted(positions)
    assert "policy drop" in out
    assert "ip daddr 127.0.0.1 tcp dport { 6400 } dnat to 100.70.3.1" in text
    # No add-ons: no platform ports at all, and nothing but the space and the rules.
    bare = dyno_ruleset(SPACE, POOL, "100.70.3.1", frozenset(), ())
    assert "dport" not in bare


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("unshare") is None,
    reason="nft checks rulesets only as root",
)
def test_nft_accepts_the_ruleset() -> None:
    text = dyno_ruleset(
        SPACE,
        POOL,
        "100.70.3.1",
        frozenset({6400, 8123}),
        (EgressRule("0.0.0.0/0", 0, 65535, "-1"), EgressRule("192.0.2.7/32", 1, 2, "udp")),
    )
    # In a throwaway network namespace: the host's own rules are never touched.
    res = subprocess.run(
        ["unshare", "--net", "nft", "-c", "-f", "-"], input=text, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr


def test_without_root_space_dynos_share_the_hosts_network_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    nets = SpaceNetworks(tmp_path, "auto")
    warnings = nets.probe("127.0.0.1\tlocalhost\n")
    assert not nets.enabled
    assert warnings == [
        "not running as root: dynos of apps in spaces share the host's network "
        "(outbound rules are not enforced, no private space networking)"
    ]
    assert SpaceNetworks(tmp_path, "off").probe("") == []  # isolation off: nothing to say
