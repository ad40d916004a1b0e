"""Outbound calls to tenants' URLs reach only public addresses, checked when the call is made (issue 9, item 2)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.core.errors import UpstreamFailed
from chalicelib.points.notifier import HttpTenantNotifier
from chalicelib.tenancy.login_callback import HttpLoginCallback

PRIVATE = [
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "127.0.0.1",
    "169.254.169.254",
    "0.0.0.0",
    "224.0.0.1",
    "100.64.0.1",
    "::1",
    "fe80::1",
    "::ffff:10.0.0.1",
    "fd00::1",
]


class Network:
    """The boundary: name resolution answers what the test says; connections are recorded (and fail)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
        self.connected: list[Any] = []
        self.answers = answers

        def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
            addresses = answers.get(host, [host])
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, int(port or 443), 0, 0) if ":" in a else (a, int(port or 443)),
                )
                for a in addresses
            ]

        def connect(sock: socket.socket, address: Any) -> None:
            self.connected.append(address)
            raise ConnectionRefusedError("test network: nothing listens")

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], Network]:
    return lambda answers: Network(monkeypatch, answers)


@pytest.mark.parametrize("address", PRIVATE)
def test_the_login_callback_refuses_a_host_resolving_to_a_non_public_address(network: Any, address: str) -> None:
    # Given a tenant's https login callback whose host resolves to an internal address
    net = network({"login.tenant.example": [address]})
    # When Jifen resolves a member's code through it
    with pytest.raises(UpstreamFailed) as refused:
        HttpLoginCallback(timeout=1).resolve("https://login.tenant.example/jifen", "app_1", "code-1", "server-key")
    # Then the call is refused without any connection attempt
    assert "public address" in refused.value.message
    assert net.connected == []


@pytest.mark.parametrize("address", PRIVATE)
def test_the_reminder_notifier_refuses_a_host_resolving_to_a_non_public_address(network: Any, address: str) -> None:
    # Given a tenant's reminder webhook whose host resolves to an internal address
    net = network({"hooks.tenant.example": [address]})
    # When a reminder is sent
    sent = HttpTenantNotifier(timeout=1).send("https://hooks.tenant.example/r", "secret", {"type": "reminder"})
    # Then it is not delivered and no connection was attempted
    assert sent is False
    assert net.connected == []


def test_one_non_public_address_among_public_ones_refuses_the_host(network: Any) -> None:
    # Given a host resolving to a public and a link-local address (DNS answers in any order)
    net = network({"login.tenant.example": ["93.184.216.34", "169.254.169.254"]})
    # When the login callback is called
    with pytest.raises(UpstreamFailed):
        HttpLoginCallback(timeout=1).resolve("https://login.tenant.example/jifen", "app_1", "code-1", "server-key")
    # Then nothing was connected to, not even the public address
    assert net.connected == []


def test_a_public_address_is_connected_to_exactly_as_resolved(network: Any) -> None:
    # Given a host resolving to a public address
    net = network({"login.tenant.example": ["93.184.216.34"]})
    # When the login callback is called (nothing listens there in the test network)
    with pytest.raises(UpstreamFailed) as failed:
        HttpLoginCallback(timeout=1).resolve("https://login.tenant.example/jifen", "app_1", "code-1", "server-key")
    # Then Jifen connected to that very address (the one it checked), and the failure is "unreachable"
    assert net.connected == [("93.184.216.34", 443)]
    assert "could not be reached" in failed.value.message


def test_an_ip_literal_url_is_checked_too(network: Any) -> None:
    # Given a reminder URL naming the cloud metadata address directly
    net = network({})
    # When a reminder is sent
    sent = HttpTenantNotifier(timeout=1).send("https://169.254.169.254/latest/meta-data", "secret", {"type": "reminder"})
    # Then it is refused without a connection
    assert sent is False
    assert net.connected == []
