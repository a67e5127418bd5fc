"""Unit tests for the invalid_networks, ip_in_networks and world_open_networks filters."""

from __future__ import annotations

from typing import Any

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


def test_invalid_networks_refuses_out_of_range_octets_and_prefixes() -> None:
    """The hand-written CIDR regexes this filter replaces (nginx, postgresql) accepted these."""
    assert network.invalid_networks(["999.999.999.999/99", "10.0.0.0/40", "::1/129", "1.2.3"]) == [
        "999.999.999.999/99", "10.0.0.0/40", "::1/129", "1.2.3"]


@pytest.mark.parametrize(
    "entry, world_open",
    [
        ("0.0.0.0/0", True),
        ("::/0", True),
        ("0.0.0.0/1", True),
        ("128.0.0.0/1", True),
        ("2000::/3", True),
        ("10.0.0.0/8", False),
        ("100.64.0.0/10", False),
        ("172.16.0.0/12", False),
        ("fc00::/7", False),
        ("8.0.0.0/8", False),
        ("2001:db8::/32", False),
        ("203.0.113.7", False),
        ("0.0.0.0", False),
        ("not-a-network", False),
    ],
)
def test_world_open_networks(entry: str, world_open: bool) -> None:
    assert network.world_open_networks(["10.1.2.3", entry]) == ([entry] if world_open else [])


@pytest.mark.parametrize(
    "entry, public",
    [
        ("9.9.9.9", True),
        ("2a01:4f8::1", True),
        ("[2a01:4f8::1]", True),
        ("10.0.0.5", False),
        ("172.18.0.2", False),
        ("192.168.1.10", False),
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("127.0.0.1", False),
        ("fd00::5", False),
        ("fe80::1", False),
        ("203.0.113.7", False),  # documentation
        ("not-an-ip", False),
    ],
)
def test_public_addresses(entry: str, public: bool) -> None:
    assert network.public_addresses([entry]) == ([entry] if public else [])


@pytest.mark.parametrize(("entries", "kwargs", "message"), [
    (["10.0.0.0/8", "192.0.2.7"], {}, ""),
    ([], {}, ""),
    ([], {"allow_empty": False}, "v must list IPv4/IPv6 addresses or CIDRs; it is empty."),
    (["999.999.999.999/99", "0.0.0.0/0"], {}, "v must list IPv4/IPv6 addresses or CIDRs; not valid: 999.999.999.999/99."),
    (["10.0.0.1", "0.0.0.0/0", "::/0"], {}, "v lists 0.0.0.0/0, ::/0, which is the whole Internet."),
    (["::/0"], {"hint": "list the app hosts."}, "v lists ::/0, which is the whole Internet: list the app hosts."),
])
def test_allow_list_problem_names_the_variable(entries: list[str], kwargs: dict[str, Any], message: str) -> None:
    assert network.allow_list_problem(entries, "v", **kwargs) == message
