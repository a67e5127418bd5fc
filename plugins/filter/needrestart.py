"""The services needrestart's batch mode lists as still running replaced libraries."""

from __future__ import annotations

import re
from typing import Any

DOCUMENTATION = r"""
name: needrestart_services
short_description: The units C(needrestart -b) lists as still mapping replaced libraries
description:
  - Reads the batch output of C(needrestart -b -l -r l) (one C(NEEDRESTART-SVC: <unit>) line per
    service that still maps a replaced library) and returns the unit names, in the listed order,
    without duplicates.
  - With O(restartable), only the units matching one of the regexes (anchored on the whole unit name)
    are returned: the ones a role may restart because their restart interrupts nothing.
positional: _input
options:
  _input:
    description: The standard output of C(needrestart -b -l -r l).
    type: str
    required: true
  restartable:
    description: Regexes on the unit name; when given, only the matching units are returned.
    type: list
    elements: str
    required: false
"""

_SERVICE_LINE = re.compile(r"^NEEDRESTART-SVC:\s*(?P<unit>\S+)\s*$")


def needrestart_services(output: str, restartable: list[str] | None = None) -> list[str]:
    """Unit names from NEEDRESTART-SVC lines, optionally only those matching a restartable regex."""
    units: list[str] = []
    for line in output.splitlines():
        match = _SERVICE_LINE.match(line.strip())
        if match and match["unit"] not in units:
            units.append(match["unit"])
    if restartable is None:
        return units
    patterns = [re.compile(pattern) for pattern in restartable]
    return [unit for unit in units if any(pattern.fullmatch(unit) for pattern in patterns)]


class FilterModule:
    """needrestart filters."""

    def filters(self) -> dict[str, Any]:
        return {"needrestart_services": needrestart_services}
