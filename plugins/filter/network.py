"""Address filters for input validation (no netaddr needed: Python's ipaddress)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

DOCUMENTATION = r"""
name: invalid_networks
short_description: The entries of a list that are not IPv4/IPv6 addresses or CIDR networks
description:
  - Returns the entries that C(ipaddress.ip_network(entry, strict=False)) rejects, so a
    preflight assert can name them. Companion filter C(ip_in_networks) tells whether an address
    lies in any of a list of networks; C(world_open_networks) returns the entries that open an
    allow-list to most of the Internet (a public network shorter than /8, or /16 for IPv6:
    0.0.0.0/0, ::/0, 0.0.0.0/1, 2000::/3); C(public_addresses) the globally routable addresses
    (a listener there is reachable from the Internet unless a firewall filters it).
  - C(allow_list_problem) (args C(name), C(hint), C(allow_empty)) returns the message that names an
    allow-list variable with what is wrong with it (invalid entries first, then world-open ones, then
    an empty list when C(allow_empty) is false), or an empty string: the preflight checks of every
    role assert with it.
positional: _input
options:
  _input:
    description: Addresses or CIDR networks.
    type: list
    elements: str
    required: true
"""


def _network(entry: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(entry).strip(), strict=False)
    except ValueError:
        return None


def invalid_networks(entries: Iterable[Any]) -> list[str]:
    """Entries that are neither an address nor a CIDR network."""
    return [str(entry) for entry in entries if _network(entry) is None]


# Shorter prefixes than these span a large share of the public Internet (0.0.0.0/0, ::/0, 0.0.0.0/1,
# 2000::/3): as an allow-list entry they open the port to everyone. Private ranges (10.0.0.0/8,
# fc00::/7) are never "world-open", however short.
_WORLD_PREFIX = {4: 8, 6: 16}


def world_open_networks(entries: Iterable[Any]) -> list[str]:
    """Entries that open an allow-list to (most of) the Internet, e.g. 0.0.0.0/0 or ::/0."""
    opened: list[str] = []
    for entry in entries:
        net = _network(entry)
        if net is not None and net.prefixlen < _WORLD_PREFIX[net.version] and not net.is_private:
            opened.append(str(entry))
    return opened


def public_addresses(entries: Iterable[Any]) -> list[str]:
    """Entries that are globally routable addresses (not private, loopback, link-local, shared or documentation)."""
    public: list[str] = []
    for entry in entries:
        net = _network(str(entry).strip().strip("[]"))
        if net is not None and net.network_address.is_global:
            public.append(str(entry))
    return public


def ip_in_networks(address: str, networks: Iterable[Any]) -> bool:
    """Whether address lies in any of networks (entries that do not parse are ignored)."""
    try:
        ip = ipaddress.ip_address(str(address).strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(net is not None and ip.version == net.version and ip in net for net in map(_network, networks))


def allow_list_problem(entries: Iterable[Any], name: str, hint: str = "", allow_empty: bool = True) -> str:
    """What is wrong with an allow-list variable, as the message that names it ('' when nothing is):
    entries that are no address or CIDR, else entries that are the whole Internet (with `hint`, what to
    list instead), else an empty list when it must not be."""
    entries = list(entries)
    invalid = invalid_networks(entries)
    if invalid:
        return f"{name} must list IPv4/IPv6 addresses or CIDRs; not valid: {', '.join(invalid)}."
    world = world_open_networks(entries)
    if world:
        return f"{name} lists {', '.join(world)}, which is the whole Internet" + (f": {hint}" if hint else ".")
    if not entries and not allow_empty:
        return f"{name} must list IPv4/IPv6 addresses or CIDRs; it is empty."
    return ""


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {"invalid_networks": invalid_networks, "ip_in_networks": ip_in_networks,
                "world_open_networks": world_open_networks, "public_addresses": public_addresses,
                "allow_list_problem": allow_list_problem}
