"""Space networks of the local dyno backend: a network namespace per dyno of an app in a space.

As root (with `ip`, `nft` and `nsenter`), every dyno of an app in a space runs in a network
namespace of its own, joined to its space's bridge by a veth pair:

- the platform takes one /16 of 100.64.0.0/10 (claimed under /run/spruce-net, so several
  platforms on one machine do not collide); each space gets a /24 of it and a bridge whose
  address (`.1`) is the space's gateway, the machine itself as its dynos see it
  (`gateway.localspace`); each dyno gets the next free address. The router dials that
  address and the dyno's $PORT (5000 in a space: each dyno has its own ports).
- egress: nftables in the dyno's namespace drop everything leaving it except replies,
  traffic inside its space, its own add-ons and platform endpoints (the 127.0.0.1 ports in
  its config vars, reached through the gateway), and what the space's outbound ruleset
  allows. Other spaces' addresses are always refused. A changed ruleset is applied to
  running dynos at once.
- private networking: each space has one hosts file, bound at /etc/hosts in its dynos'
  sandboxes, naming every formation dyno of the space `<process>.<app>.app.localspace`.
- on the host, one nftables table per platform: the gateway forwards to the machine's
  loopback (as Cedar dynos reach it), connections from dynos look local to loopback servers,
  and dynos' traffic leaving the machine is masqueraded (when the host forwards IPv4).

Without root or those tools: one warning, and dynos of apps in spaces share the host's
network like every other dyno (no egress enforcement, no private networking).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from spruce.services.model import EgressRule, SpaceNetwork

log = logging.getLogger(__name__)

POOL = ipaddress.IPv4Network("100.64.0.0/10")
CLAIMS = Path("/run/spruce-net")
SPACE_PORT = 5000
GATEWAY_NAME = "gateway.localspace"
LOCAL_PORT_RE = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})\b")


@dataclass
class DynoNet:
    """One dyno's namespace: its name, its address in its space and the space's gateway."""

    name: str
    space_id: str
    address: str
    gateway: str
    label: str | None
    """`<process>.<app>.app.localspace`, or None for one-offs (not named)."""
    host_ports: frozenset[int]
    hosts: Path

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"


@dataclass
class _Space:
    index: int
    net: ipaddress.IPv4Network
    bridge: str
    rules: tuple[EgressRule, ...]
    hosts: Path
    dynos: dict[str, DynoNet] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return str(self.net.network_address + 1)


def _run(*argv: str, stdin: str | None = None, netns: str | None = None) -> None:
    if netns is not None:
        argv = ("ip", "netns", "exec", netns, *argv)
    res = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=20)
    if res.returncode != 0:
        raise OSError(f"{' '.join(argv[:6])}: {res.stderr.strip()[:300]}")


def local_ports(values: list[str]) -> frozenset[int]:
    """The loopback ports named by config vars (add-on URLs, the OTLP endpoint)."""
    ports = {int(m.group(1)) for v in values for m in LOCAL_PORT_RE.finditer(v)}
    return frozenset(p for p in ports if 0 < p < 65536)


def egress_rules(rules: tuple[EgressRule, ...]) -> list[str]:
    """A space's outbound ruleset as nftables rules (accept; the chain's policy drops)."""
    out = []
    for r in rules:
        target = str(ipaddress.IPv4Network(r.target, strict=False))
        if r.protocol == "-1":
            out.append(f"ip daddr {target} accept")
        elif r.protocol == "icmp":
            out.append(f"ip daddr {target} ip protocol icmp accept")
        elif r.protocol in ("tcp", "udp"):
            ports = f"{r.from_port}-{r.to_port}" if r.from_port != r.to_port else str(r.from_port)
            out.append(f"ip daddr {target} {r.protocol} dport {ports} accept")
    return out


def dyno_ruleset(
    space_net: ipaddress.IPv4Network,
    pool: ipaddress.IPv4Network,
    gateway: str,
    host_ports: frozenset[int],
    rules: tuple[EgressRule, ...],
) -> str:
    """The nftables ruleset of one dyno's namespace (replaces whatever it had)."""
    ports = ", ".join(str(p) for p in sorted(host_ports))
    nat_out = f"ip daddr 127.0.0.1 tcp dport {{ {ports} }} dnat to {gateway}" if ports else ""
    platform = f"ip daddr {gateway} tcp dport {{ {ports} }} accept" if ports else ""
    body = "\n    ".join(x for x in [platform, *egress_rules(rules)] if x)
    return f"""flush ruleset
table ip spruce {{
  chain nat_out {{
    type nat hook output priority -100; policy accept;
    {nat_out}
  }}
  chain nat_post {{
    type nat hook postrouting priority 100; policy accept;
    oifname "eth0" ip saddr 127.0.0.0/8 masquerade
  }}
  chain out {{
    type filter hook output priority 0; policy drop;
    oifname "lo" accept
    ct state established,related accept
    ip daddr {space_net} ip daddr != {gateway} accept
    ip daddr {pool} ip daddr != {gateway} drop
    {body}
  }}
}}
"""


class SpaceNetworks:
    def __init__(self, home: Path, isolation: str = "auto") -> None:
        self.home = Path(home)
        self.isolation = isolation
        self.enabled = False
        self.pool: ipaddress.IPv4Network | None = None
        self.tag = ""
        self._state_path = self.home / "network.json"
        self._indexes: dict[str, int] = {}
        self._spaces: dict[str, _Space] = {}
        self._lock = threading.Lock()
        self._base_hosts = ""

    # -- start and stop ------------------------------------------------------------------
    def probe(self, base_hosts: str) -> list[str]:
        """Can dynos get namespaces here? Claims the platform's /16; warnings otherwise."""
        self._base_hosts = base_hosts
        if self.isolation == "off":
            return []
        if os.geteuid() != 0:
            return [
                "not running as root: dynos of apps in spaces share the host's network "
                "(outbound rules are not enforced, no private space networking)"
            ]
        missing = [t for t in ("ip", "nft", "nsenter") if shutil.which(t) is None]
        if missing:
            return [
                f"{', '.join(missing)} not found: dynos of apps in spaces share the host's "
                "network (outbound rules are not enforced, no private space networking)"
            ]
        try:
            self._claim()
            self._clean_leftovers()
            self._host_table()
        except OSError as e:
            self.release_claim()
            return [f"space networks unavailable ({e}): outbound rules are not enforced"]
        self.enabled = True
        return []

    def _claim(self) -> None:
        CLAIMS.mkdir(parents=True, exist_ok=True)
        if self._state_path.exists():
            with contextlib.suppress(OSError, ValueError):
                self._indexes = dict(json.loads(self._state_path.read_text())["spaces"])
        start = int(hashlib.sha256(str(self.home).encode()).hexdigest(), 16) % 64
        for i in range(64):
            k = (start + i) % 64
            claim = CLAIMS / str(k)
            try:
                fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = json.loads(claim.read_text())
                    pid, home = int(owner["pid"]), str(owner["home"])
                except (OSError, ValueError, KeyError):
                    continue
                if home != str(self.home) and _alive(pid):
                    continue
                claim.unlink(missing_ok=True)
                try:
                    fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    continue
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "home": str(self.home)}, f)
            self.pool = ipaddress.IPv4Network(f"100.{64 + k}.0.0/16")
            self.tag = f"{k:02d}"
            return
        raise OSError("no free address range in 100.64.0.0/10")

    def release_claim(self) -> None:
        if self.tag:
            claim = CLAIMS / str(int(self.tag))
            with contextlib.suppress(OSError, ValueError):
                if json.loads(claim.read_text()).get("pid") == os.getpid():
                    claim.unlink()

    def _clean_leftovers(self) -> None:
        """Namespaces, links and tables a platform on this range left behind (kill -9)."""
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in names.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(f"spruce{self.tag}-"):
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        for line in links.splitlines():
            parts = line.split(":")
            if len(parts) > 1:
                link = parts[1].strip().split("@")[0]
                if link.startswith((f"sb{self.tag}x", f"sv{self.tag}x")):
                    subprocess.run(["ip", "link", "del", link], capture_output=True)

    def _host_table(self) -> None:
        assert self.pool is not None
        pre = "\n    ".join(
            f'iifname "{sp.bridge}" ip daddr {sp.gateway} dnat to 127.0.0.1'
            for sp in self._spaces.values()
        )
        table = f"spruce{self.tag}"
        _run(
            "nft",
            "-f",
            "-",
            stdin=f"""table ip {table} {{}}
delete table ip {table}
table ip {table} {{
  chain pre {{
    type nat hook prerouting priority -100; policy accept;
    {pre}
  }}
  chain inp {{
    type nat hook input priority 100; policy accept;
    ip saddr {self.pool} ip daddr 127.0.0.1 snat to 127.0.0.1
  }}
  chain post {{
    type nat hook postrouting priority 100; policy accept;
    ip saddr {self.pool} oifname != "sb*" masquerade
  }}
}}
""",
        )

    def close(self) -> None:
        """Take down every namespace, bridge and the host table (the dynos are gone)."""
        if not self.enabled:
            return
        with self._lock:
            for sp in self._spaces.values():
                for net in list(sp.dynos.values()):
                    subprocess.run(["ip", "netns", "del", net.name], capture_output=True)
                subprocess.run(["ip", "link", "del", sp.bridge], capture_output=True)
            self._spaces.clear()
            subprocess.run(
                ["nft", "delete", "table", "ip", f"spruce{self.tag}"], capture_output=True
            )
            self.release_claim()
            self.enabled = False

    # -- spaces ----------------------------------------------------------------------------
    def _space(self, network: SpaceNetwork) -> _Space:
        sp = self._spaces.get(network.space_id)
        if sp is not None:
            return sp
        assert self.pool is not None
        index = self._indexes.get(network.space_id)
        if index is None:
            used = set(self._indexes.values())
            index = next((i for i in range(256) if i not in used), None)
            if index is None:
                raise OSError("no space address range left (256 spaces per platform)")
            self._indexes[network.space_id] = index
            tmp = self._state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"spaces": self._indexes}))
            tmp.replace(self._state_path)
        net = list(self.pool.subnets(new_prefix=24))[index]
        hosts_dir = self.home / "network" / network.space_id
        hosts_dir.mkdir(parents=True, exist_ok=True)
        sp = _Space(index, net, f"sb{self.tag}x{index:03d}", network.outbound, hosts_dir / "hosts")
        subprocess.run(["ip", "link", "del", sp.bridge], capture_output=True)
        _run("ip", "link", "add", sp.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{sp.gateway}/24", "dev", sp.bridge)
        _run("ip", "link", "set", sp.bridge, "up")
        _run("sysctl", "-qw", f"net.ipv4.conf.{sp.bridge}.route_localnet=1")
        self._spaces[network.space_id] = sp
        self._write_hosts(sp)
        self._host_table()
        return sp

    def _write_hosts(self, sp: _Space) -> None:
        names = sorted((n.label, n.address) for n in sp.dynos.values() if n.label)
        text = self._base_hosts + f"{sp.gateway}\t{GATEWAY_NAME}\n"
        text += "".join(f"{addr}\t{label}\n" for label, addr in names)
        # In place: the dynos' sandboxes bind this very file (a new inode would not show).
        with open(sp.hosts, "a+") as f:
            f.seek(0)
            f.truncate()
            f.write(text)
        sp.hosts.chmod(0o644)

    # -- dynos -----------------------------------------------------------------------------
    def attach(
        self,
        network: SpaceNetwork,
        launch_id: str,
        label: str | None,
        host_ports: frozenset[int],
    ) -> DynoNet:
        """A namespace for one launch of a dyno, on its space's bridge, rules applied."""
        with self._lock:
            sp = self._space(network)
            taken = {n.address for n in sp.dynos.values()}
            address = next((str(a) for a in list(sp.net.hosts())[1:] if str(a) not in taken), None)
            if address is None:
                raise OSError(f"the space {network.space_name} has no free dyno address")
            name = f"spruce{self.tag}-{launch_id[:12]}"
            host_if = f"sv{self.tag}x{launch_id[:8]}"
            net = DynoNet(name, network.space_id, address, sp.gateway, label, host_ports, sp.hosts)
            sp.dynos[name] = net
        try:
            _run("ip", "netns", "add", name)
            _run(
                "ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", name
            )
            _run("ip", "link", "set", host_if, "master", sp.bridge, "up")
            _run("ip", "-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
            _run("ip", "-n", name, "link", "set", "eth0", "up")
            _run("ip", "-n", name, "link", "set", "lo", "up")
            _run("ip", "-n", name, "route", "add", "default", "via", sp.gateway)
            _run("sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1", netns=name)
            self._apply(sp, net)
        except OSError:
            self.detach(net)
            raise
        with self._lock:
            self._write_hosts(sp)
        return net

    def _apply(self, sp: _Space, net: DynoNet) -> None:
        assert self.pool is not None
        rules = dyno_ruleset(sp.net, self.pool, sp.gateway, net.host_ports, sp.rules)
        _run("nft", "-f", "-", stdin=rules, netns=net.name)

    def detach(self, net: DynoNet) -> None:
        subprocess.run(["ip", "netns", "del", net.name], capture_output=True)
        with self._lock:
            sp = self._spaces.get(net.space_id)
            if sp is not None and sp.dynos.pop(net.name, None) is not None:
                self._write_hosts(sp)

    def update(self, network: SpaceNetwork) -> None:
        """A space's current outbound ruleset, applied to its running dynos if it changed."""
        with self._lock:
            sp = self._spaces.get(network.space_id)
            if sp is None or sp.rules == network.outbound:
                return
            sp.rules = network.outbound
            dynos = list(sp.dynos.values())
        for net in dynos:
            try:
                self._apply(sp, net)
            except OSError as e:
                log.warning("outbound rules of %s not applied: %s", net.name, e)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
