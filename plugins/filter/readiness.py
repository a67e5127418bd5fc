"""Filters that turn the roles' readiness items into the production-readiness report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DOCUMENTATION = r"""
name: readiness_report
short_description: Build the production-readiness report from per-host readiness items
description:
  - Takes a mapping of host name to the list of items the roles' C(tasks/verify.yml) recorded
    (each C({item, role, passed, detail})) and returns the report as a dictionary with
    C(hosts), C(items), C(passed), C(failed) and the printable C(table) lines.
positional: _input
options:
  _input:
    description: Mapping of inventory host name to its list of readiness items.
    type: dict
    required: true
"""

Item = Mapping[str, Any]

_STATUS = {True: "PASS", False: "FAIL"}


def _as_bool(value: Any) -> bool:
    """Items come from templates: accept real booleans and their string forms."""
    if isinstance(value, str):
        return value.strip().lower() in {"true", "yes", "1"}
    return bool(value)


def _normalise(host: str, item: Item) -> dict[str, Any]:
    return {
        "host": host,
        "role": str(item.get("role", "")),
        "item": str(item.get("item", "")),
        "passed": _as_bool(item.get("passed", False)),
        "detail": str(item.get("detail", "")).strip(),
    }


def _table(rows: list[dict[str, Any]]) -> list[str]:
    headers = ("HOST", "ROLE", "CHECK", "RESULT", "MEASURED")
    cells = [(r["host"], r["role"], r["item"], _STATUS[r["passed"]], r["detail"]) for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers[:-1])]

    def line(values: Iterable[str]) -> str:
        vals = list(values)
        head = "  ".join(v.ljust(w) for v, w in zip(vals[:-1], widths, strict=True))
        return f"{head}  {vals[-1]}".rstrip()

    return [line(headers), line("-" * w for w in widths + [8])] + [line(c) for c in cells]


def readiness_report(items_by_host: Mapping[str, Iterable[Item] | None]) -> dict[str, Any]:
    """Flatten, normalise and summarise the items of every host."""
    rows = [
        _normalise(host, item)
        for host in sorted(items_by_host)
        for item in (items_by_host[host] or [])
    ]
    failed = [r for r in rows if not r["passed"]]
    return {
        "hosts": sorted(items_by_host),
        "items": rows,
        "passed": len(rows) - len(failed),
        "failed": len(failed),
        "failures": [f'{r["host"]}: {r["item"]} ({r["detail"]})' for r in failed],
        "table": _table(rows),
    }


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {"readiness_report": readiness_report}
