"""Unit tests for the readiness_report filter."""

from __future__ import annotations

import pytest

from conftest import load_plugin

readiness = load_plugin("filter", "readiness")


def test_counts_and_failures() -> None:
    report = readiness.readiness_report(
        {
            "web1": [
                {"item": "SSH password login disabled", "role": "hardening", "passed": True, "detail": "no"},
                {"item": "Firewall denies inbound by default", "role": "hardening", "passed": False, "detail": "accept"},
            ],
            "db1": [{"item": "Time synchronisation running", "role": "base", "passed": "True", "detail": "active"}],
        }
    )
    assert report["hosts"] == ["db1", "web1"]
    assert (report["passed"], report["failed"]) == (2, 1)
    assert report["failures"] == ["web1: Firewall denies inbound by default (accept)"]


@pytest.mark.parametrize("value, expected", [(True, True), ("true", True), ("False", False), (False, False), (None, False)])
def test_passed_accepts_template_strings(value: object, expected: bool) -> None:
    report = readiness.readiness_report({"h": [{"item": "x", "role": "r", "passed": value}]})
    assert report["items"][0]["passed"] is expected


def test_table_aligns_columns() -> None:
    report = readiness.readiness_report(
        {"host-a": [{"item": "short", "role": "base", "passed": True, "detail": "d1"}],
         "h": [{"item": "a much longer check", "role": "hardening", "passed": False, "detail": "d2"}]}
    )
    header, rule, *rows = report["table"]
    assert header.startswith("HOST")
    result_col = header.index("RESULT")
    assert [row[result_col:result_col + 4] for row in rows] == ["FAIL", "PASS"]
    assert len(rule.split()) == 5


def test_host_without_items() -> None:
    report = readiness.readiness_report({"empty": None})
    assert report["items"] == [] and report["failed"] == 0
