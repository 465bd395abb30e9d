"""Tests of the business rules: in-memory SQLite, in-process ports, and no network at all."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_fakes import FakeProvider, Harness, make_services

from spruce.services.views import UserView
from spruce.store.db import Store

_real_socket = socket.socket


class _NoNetwork(_real_socket):
    """Any IP socket in these tests is a bug: the rules must not need the network."""

    def __init__(
        self,
        family: int = -1,
        type: int = -1,  # noqa: A002 - socket.socket's own parameter name
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        if fileno is None and family in (socket.AF_INET, socket.AF_INET6, -1):
            raise AssertionError("tests/unit/services opened a network socket")
        super().__init__(family, type, proto, fileno)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The event loop's self-pipe is an AF_UNIX socketpair; that is allowed.
    monkeypatch.setattr(socket, "socket", _NoNetwork)
    yield


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    store = Store.memory()
    h = make_services(store, tmp_path / "home", providers=[FakeProvider()])
    yield h
    store.dispose()


@pytest.fixture
def owner(harness: Harness) -> UserView:
    return harness.services.accounts.create_user("owner@example.com")[0]


@pytest.fixture
def other(harness: Harness) -> UserView:
    return harness.services.accounts.create_user("other@example.com")[0]
