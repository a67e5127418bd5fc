"""Unit tests for the invalid_networks and ip_in_networks filters."""

from __future__ import annotations

import pytest

from conftest import load_plugin

network = load_plugin("filter", "network")


def test_invalid_networks_names_the_bad_entries() -> None:
    entries = ["10.0.0.1", "10.0.0.0/8", "2001:db8::/32", "::1", "monitoring.example", "300.1.1.1", "10.0.0.0/33"]
    assert network.invalid_networks(entries) == ["monitoring.example", "300.1.1.1", "10.0.0.0/33"]


def test_host_bits_are_accepted() -> None:
    assert network.invalid_networks(["192.0.2.10/24"]) == []


@pytest.mark.parametrize(
    "address, networks, expected",
    [
        ("172.17.0.1", ["172.16.0.0/12"], True),
        ("172.17.0.1", ["203.0.113.0/24", "10.0.0.0/8"], False),
        ("2001:db8::5", ["2001:db8::/64"], True),
        ("::ffff:10.1.2.3", ["10.0.0.0/8"], True),
        ("10.1.2.3", ["not-a-network", "10.1.2.3"], True),
        ("not-an-ip", ["0.0.0.0/0"], False),
        ("10.1.2.3", [], False),
    ],
)
def test_ip_in_networks(address: str, networks: list[str], expected: bool) -> None:
    assert network.ip_in_networks(address, networks) is expected
