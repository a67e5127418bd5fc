"""The version-compat layer: the roles' daemon-checkable templates rendered for each supported platform and
checked by the validator of the upstream version that platform ships (tests/compat/README section in
docs/DEVELOPING.md). Validators come from Debian's archive (archive.py); platforms.yml says which.

PRODREADY_COMPAT_ROLES: the roles/ directory to render (default: this checkout's), e.g. a worktree of an
older commit. The session ends with the table platform x file x validator x result and "N passed, N failed".
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from archive import ArchiveError, Suite, upstream

PROJECT = Path(__file__).resolve().parents[2]
ROLES_DIR = Path(os.environ.get("PRODREADY_COMPAT_ROLES") or PROJECT / "roles").resolve()
DATA = yaml.safe_load((Path(__file__).parent / "platforms.yml").read_text())
PLATFORMS = list(DATA["platforms"])


def _load_unit_conftest() -> ModuleType:
    """tests/unit/conftest.py (render_role_template, role_templar) under a name of its own."""
    spec = importlib.util.spec_from_file_location("prodready_unit_conftest", PROJECT / "tests" / "unit" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


unit = _load_unit_conftest()


def _init_collections() -> None:
    """The roles' vars use prodready.webstack filters: resolve them from the checkout (scripts/setup-venv's link)."""
    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig
    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([str(PROJECT / ".collections")])


_init_collections()


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"[0-9]+", version))


@dataclass
class Validator:
    """Where a platform's check of one component comes from."""
    component: str
    platform_version: str
    suite: Suite | None = None
    package_version: str = ""
    note: str = ""

    @property
    def version(self) -> str:
        return upstream(self.package_version) if self.package_version else ""

    def describe(self, tool: str) -> str:
        if self.suite is None:
            return f"{tool}: no matching validator ({self.note})"
        return f"{tool} {self.version} ({self.suite.name} {self.package_version}{'; ' + self.note if self.note else ''})"


@cache
def suite(name: str) -> Suite:
    return Suite(name)


@cache
def component_version(suite_name: str, component: str) -> str:
    return suite(suite_name).version(DATA["components"][component]["version_of"])


@cache
def validator_for(platform: str, component: str) -> Validator:
    spec = DATA["platforms"][platform]
    if "suite" in spec:
        version = component_version(spec["suite"], component)
        return Validator(component, upstream(version), suite(spec["suite"]), version, "own release")
    target = str(spec["ships"][component])
    offered = {name: component_version(name, component) for name in DATA["suites"]}
    for name, version in offered.items():
        if version_key(upstream(version))[:len(version_key(target))] == version_key(target):
            return Validator(component, target, suite(name), version, "same upstream version")
    older = [(version_key(upstream(v)), n, v) for n, v in offered.items() if version_key(upstream(v)) < version_key(target)]
    if not older:
        return Validator(component, target, note=f"Debian has no {component} {target} or older")
    _, name, version = max(older)
    return Validator(component, target, suite(name), version, f"nearest older than {target}")


@cache
def unpacked(platform: str, component: str) -> Validator:
    """validator_for, with its packages downloaded and unpacked."""
    found = validator_for(platform, component)
    if found.suite is not None:
        packages = [p.format(major=found.version.split(".")[0]) for p in DATA["components"][component]["packages"]]
        optional = [p.rstrip("?") for p in packages if p.endswith("?")]
        available = [p for p in optional if found.suite.has(p)]
        versions = found.suite.unpack([p for p in packages if not p.endswith("?")] + available)
        found.package_version = versions[packages[0]]  # postgresql-15 15.18-0+deb12u1 rather than postgresql 15+248
    return found


def shipped(platform: str, component: str) -> str:
    """The upstream version the platform ships (the rendering input where a role asks the live binary)."""
    spec = DATA["platforms"][platform]
    if "ships" in spec:
        return str(spec["ships"][component])
    return upstream(component_version(spec["suite"], component))


# ---------------------------------------------------------------- rendering
def host_vars(platform: str) -> dict[str, Any]:
    """Facts and magic variables of one host of the platform."""
    facts = dict(DATA["platforms"][platform]["facts"]) | {
        "os_family": "Debian", "system": "Linux", "architecture": "x86_64", "hostname": "compat", "fqdn": "compat.example.test",
        "memtotal_mb": 3936, "processor_vcpus": 2, "processor_cores": 2, "processor_count": 1,
        "default_ipv4": {"address": "10.20.0.10", "interface": "eth0"}, "all_ipv4_addresses": ["10.20.0.10"],
        "all_ipv6_addresses": ["fd00:20::10"], "virtualization_role": "guest", "virtualization_type": "kvm",
        "service_mgr": "systemd", "python_version": "3.11.2", "env": {"HOME": "/root"}, "mounts": [],
    }
    hosts = {"web1": "10.20.0.11", "db1": "10.20.0.12", "mon1": "10.20.0.13"}
    hostvars = {name: {"ansible_facts": facts | {"default_ipv4": {"address": ip}}, "ansible_host": ip, "inventory_hostname": name}
                for name, ip in hosts.items()}
    return {
        "ansible_facts": facts, "ansible_managed": "Ansible managed", "inventory_hostname": "compat",
        "inventory_hostname_short": "compat", "ansible_check_mode": False, "ansible_host": "10.20.0.10",
        "groups": {"all": list(hosts), "web": ["web1"], "db": ["db1"], "monitoring": ["mon1"], "backup": ["db1"], "ungrouped": []},
        "hostvars": hostvars, "group_names": ["web", "db", "monitoring"], "play_hosts": list(hosts),
    }


def render(platform: str, role: str, template: str, **overrides: Any) -> str:
    """roles/<role>/templates/<template> (of ROLES_DIR) for a host of the platform."""
    return str(unit.render_role_template(role, template, roles_dir=ROLES_DIR, **host_vars(platform), **overrides))


def role_value(platform: str, role: str, expression: str, **overrides: Any) -> Any:
    """A role variable (or any expression over them) as the role sees it on a host of the platform."""
    from ansible.template import trust_as_template
    templar = unit.role_templar(role, roles_dir=ROLES_DIR, **host_vars(platform), **overrides)
    return templar.template(trust_as_template("{{ " + expression + " }}"))


def role_fact(platform: str, role: str, tasks_file: str, fact: str, **registered: Any) -> Any:
    """The value the role's own set_fact task gives FACT (tasks/<tasks_file>), from the registered results given."""
    tasks = yaml.safe_load((ROLES_DIR / role / "tasks" / tasks_file).read_text())
    for task in tasks:
        values = task.get("ansible.builtin.set_fact") or task.get("set_fact") or {}
        if fact in values:
            templar = unit.role_templar(role, roles_dir=ROLES_DIR, **host_vars(platform), **registered,
                                        **unit.trusted(task.get("vars", {})))
            return templar.template(unit.trusted(values[fact]))
    raise LookupError(f"no set_fact of {fact} in roles/{role}/tasks/{tasks_file}")


# ---------------------------------------------------------------- results and the table
@dataclass
class Row:
    platform: str
    file: str
    validator: str
    result: str = "not run"
    detail: str = ""


ROWS: list[Row] = []


@dataclass
class Check:
    """One platform x file check; the test fills in the result."""
    row: Row
    validator: Validator
    tmp: Path
    notes: list[str] = field(default_factory=list)

    def run(self, argv: list[str], timeout: int = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
        except subprocess.TimeoutExpired as error:
            return subprocess.CompletedProcess(argv, 124, str(error.stdout or ""), f"timed out after {timeout}s: {shlex.join(argv)}")

    def expect(self, ok: bool, message: str) -> None:
        """Record pass/FAIL; a FAIL fails the test with the validator's message."""
        message = " ".join(message.replace(str(self.tmp), "<scratch>").split())
        self.row.result = "pass" if ok else "FAIL"
        self.row.detail = "; ".join(self.notes) if ok else message[-600:]
        if not ok:
            pytest.fail(f"{self.row.platform} {self.row.file}: {self.row.validator}: {message[-1500:]}", pytrace=False)


@pytest.fixture()
def check(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str, str, str, str], Check]]:
    """check(platform, file, component, tool): the row, with the validator unpacked (skips when there is none)."""
    made: list[Row] = []

    def make(platform: str, file: str, component: str, tool: str) -> Check:
        try:
            found = unpacked(platform, component)
        except ArchiveError as error:
            row = Row(platform, file, f"{tool} (archive)", "FAIL", str(error))
            ROWS.append(row)
            pytest.fail(f"{platform} {file}: {error}", pytrace=False)
        row = Row(platform, file, found.describe(tool))
        ROWS.append(row)
        made.append(row)
        if found.suite is None:
            row.result = "no matching validator"
            pytest.skip(f"{platform} {file}: no matching validator for {component} {found.platform_version}")
        return Check(row, found, tmp_path)

    yield make
    for row in made:
        if row.result == "not run":
            row.result, row.detail = "FAIL", "the check raised before recording a result (see the test's error)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    write = terminalreporter.write_line
    write("")
    write(f"Version-compat table (roles: {ROWS and ROLES_DIR})")
    widths = [max(len(getattr(r, f)) for r in ROWS) for f in ("platform", "file", "validator")]
    header = ("platform", "file", "validator (version, from)")
    write(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " | result")
    write("-+-".join("-" * w for w in widths) + "-+-------")
    for r in ROWS:
        result = r.result + (f": {r.detail}" if r.detail else "")
        write(" | ".join(v.ljust(w) for v, w in zip((r.platform, r.file, r.validator), widths, strict=True)) + " | " + result)
    passed = sum(r.result == "pass" for r in ROWS)
    failed = sum(r.result == "FAIL" for r in ROWS)
    none = sum(r.result == "no matching validator" for r in ROWS)
    write(f"compat: {passed} passed, {failed} failed" + (f", {none} without a matching validator" if none else ""))
