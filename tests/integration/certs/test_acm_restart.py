"""A restart mid-order: the control plane is killed (-9) after the CA was asked to validate
an HTTP-01 token; the router worker keeps answering the token meanwhile, and the platform
started again on the same home finishes that same order (no new one) with the same account."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import httpx
import pytest
from support import RunningPlatform, wait_for

from spruce.netutil import free_port

from .acm_support import (
    acm_platform,
    create_app,
    forget,
    handshake,
    https_port,
    names,
    new_domain,
    point,
    use_app_domain,
    wait_statuses,
)
from .servers import Bind9, Pebble

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def restart_pebble(tmp_path_factory: pytest.TempPathFactory, bind9: Bind9) -> Iterator[Pebble]:
    server = Pebble(
        tmp_path_factory.mktemp("restart-pebble"), http_port=free_port(), dns_server=bind9.address
    ).start()
    yield server
    server.stop()


def test_an_order_resumes_after_the_control_plane_is_killed(
    tmp_path_factory: pytest.TempPathFactory, restart_pebble: Pebble, bind9: Bind9
) -> None:
    use_app_domain(bind9)
    home = tmp_path_factory.mktemp("restart-home")
    # The issuer waits 6 s after answering a challenge before it looks again: the kill
    # falls in that wait.
    slow = {"poll_interval": 6}
    created: list[str] = []
    platforms: list[RunningPlatform] = []
    try:
        first = acm_platform(home, restart_pebble, bind9, acm_tuning=slow)
        platforms.append(first)
        api = first.client()
        app = create_app(api)
        www = f"www.{new_domain(bind9, created)}"
        point(bind9, www, app)
        api.post(f"/apps/{app}/domains", json={"hostname": www})
        api.post(f"/apps/{app}/acm", json={})
        asked = re.compile(rf"validate w/ HTTP: http://{re.escape(www)}:\d+(/\S+)")
        path = wait_for(
            lambda: (m := asked.search(restart_pebble.log())) and m.group(1), 30, what="HTTP-01"
        )
        assert wait_statuses(api, app, {www: "dns-verified"})
        first.stop(signal.SIGKILL)
        at_kill = len(restart_pebble.log())

        # The router worker outlived its control plane and still answers the token.
        router = f"http://127.0.0.1:{restart_pebble.http_port}"
        answer = httpx.get(router + path, headers={"Host": www}, timeout=10)
        assert answer.status_code == 200 and answer.text.startswith(path.rsplit("/", 1)[1] + ".")

        second = acm_platform(home, restart_pebble, bind9)
        platforms.append(second)
        api = second.client()
        wait_statuses(api, app, {www: "cert issued"}, timeout=60)
        log = restart_pebble.log()
        assert "finalize-order" not in log[:at_kill]  # killed mid-order,
        assert "finalize-order" in log[at_kill:]  # finished by the second control plane
        assert log.count("Added order") == 1  # the stored order went on
        assert log.count("POST /sign-me-up") == 1  # with the stored account
        assert names(handshake(https_port(second), www, restart_pebble.roots_pem())) == {www}
    finally:
        for p in reversed(platforms):
            p.stop()
        forget(bind9, created)
