"""The monitoring role's alert and recording rules, checked and unit-tested with promtool.

The rules file is the role's own template (roles/monitoring/templates/etc/prometheus/rules/
prodready.rules.yml.j2) rendered with the role's defaults, exactly as the role deploys it; the
cases live in tests/fixtures/monitoring/rules.test.yml. promtool comes with Debian's
`prometheus` package (`promtool` from Debian 13 on). Without it the tests skip, unless
PRODREADY_REQUIRE_PROMTOOL=1 (CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
ROLE = PROJECT / "roles" / "monitoring"
TEMPLATE = ROLE / "templates" / "etc" / "prometheus" / "rules" / "prodready.rules.yml.j2"
CASES = PROJECT / "tests" / "fixtures" / "monitoring" / "rules.test.yml"
PROMTOOL = shutil.which("promtool")


def render_rules(overrides: dict[str, Any] | None = None) -> str:
    """The rules template as Ansible renders it (trim_blocks) with the role's defaults."""
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    values.update(overrides or {})
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["comment"] = lambda text: "#\n# " + text + "\n#"
    return env.from_string(TEMPLATE.read_text()).render(ansible_managed="Ansible managed", **values)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not PROMTOOL:
        if os.environ.get("PRODREADY_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is not on PATH (apt-get install prometheus, or promtool on Debian 13)")
        pytest.skip("promtool is not on PATH (apt-get install prometheus)")
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture()
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "prodready.rules.yml").write_text(render_rules())
    shutil.copy(CASES, tmp_path / "rules.test.yml")
    return tmp_path


def alert_names() -> list[str]:
    rules = yaml.safe_load(render_rules())
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def test_rules_pass_promtool_check(rules_dir: Path) -> None:
    result = promtool("check", "rules", "prodready.rules.yml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_promtool_unit_tests(rules_dir: Path) -> None:
    result = promtool("test", "rules", "rules.test.yml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    """Each alert is expected to fire in some case and expected silent (exp_alerts: []) in another."""
    cases = yaml.safe_load(CASES.read_text())
    fires: set[str] = set()
    silent: set[str] = set()
    for test in cases["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    names = set(alert_names())
    assert names, "no alert rules rendered"
    assert names - fires == set(), f"alerts never expected to fire: {sorted(names - fires)}"
    assert names - silent == set(), f"alerts never expected silent: {sorted(names - silent)}"
    assert fires | silent <= names, f"cases for unknown alerts: {sorted((fires | silent) - names)}"


def test_the_issue_alerts_are_all_there() -> None:
    assert {"InstanceDown", "DiskSpaceLow", "MemoryHigh", "LoadHigh", "PostgresDown", "PostgresConnectionsNearMax",
            "App5xxRateHigh", "AppLatencyP95High", "AppReadinessFailing", "BackupTooOld", "RestoreTestFailed",
            "CertificateExpiringSoon"} <= set(alert_names())


def test_thresholds_come_from_the_role_variables(tmp_path: Path) -> None:
    """A changed variable changes the deployed rule (and the result is still valid for promtool)."""
    text = render_rules({"monitoring_alert_disk_free_percent": 7, "monitoring_alert_instance_down_for": "15s"})
    rules = {rule["alert"]: rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"] if "alert" in rule}
    assert "< 7 and" in rules["DiskSpaceLow"]["expr"]
    assert rules["InstanceDown"]["for"] == "15s"
    (tmp_path / "r.yml").write_text(text)
    result = promtool("check", "rules", "r.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
