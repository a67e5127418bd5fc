"""Helpers shared by the Molecule scenarios' testinfra tests.

`run_play` runs a throw-away playbook against one of the scenario's live containers with the
scenario's inventory, so bad-input tests exercise the real roles on the real host and can
assert that the play stopped before changing anything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
VENV_COLLECTIONS = sorted(PROJECT.glob(".venv/lib/python3.*/site-packages/ansible_collections"))


@dataclass(frozen=True)
class PlayResult:
    rc: int
    output: str

    def recap(self, host: str) -> dict[str, int]:
        """Counters of the PLAY RECAP line for host (ok, changed, failed, ...)."""
        match = re.search(rf"^{re.escape(host)}\s+:(.*)$", self.output, re.MULTILINE)
        assert match, f"no PLAY RECAP line for {host}:\n{self.output[-3000:]}"
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def _play_env(env_extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = ":".join([str(PROJECT / ".collections"), *map(str, VENV_COLLECTIONS)])
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"  # molecule verify forces colour; recap() parses plain text
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)  # keep the output to the default callback
    env.update(env_extra or {})
    return env


def _play_command(plays: list[dict[str, Any]] | Path, limit: str, tmp: Path,
                  extra_vars: dict[str, Any] | None, check: bool) -> list[str]:
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory:
        pytest.skip("MOLECULE_INVENTORY_FILE is not set: run through molecule verify")
    if isinstance(plays, Path):
        playbook = plays
    else:
        playbook = tmp / "play.yml"
        playbook.write_text(yaml.safe_dump(plays))
    cmd = ["ansible-playbook", "-i", inventory, "--limit", limit, str(playbook)]
    if extra_vars:
        varfile = tmp / "vars.yml"
        varfile.write_text(yaml.safe_dump(extra_vars))
        cmd += ["-e", f"@{varfile}"]
    if check:
        cmd += ["--check", "--diff"]
    return cmd


def run_command(cmd: list[str], env_extra: dict[str, str] | None = None, timeout: int = 600) -> PlayResult:
    """Run a command that runs playbooks (ansible-playbook, a script) with the plays' environment."""
    proc = subprocess.run(cmd, env=_play_env(env_extra), capture_output=True, text=True, timeout=timeout, check=False)
    return PlayResult(proc.returncode, proc.stdout + proc.stderr)


def run_play(plays: list[dict[str, Any]] | Path, limit: str, extra_vars: dict[str, Any] | None = None,
             check: bool = False, env_extra: dict[str, str] | None = None) -> PlayResult:
    """Run `plays` (a playbook as data, or a playbook file) against `limit` in the scenario's inventory."""
    with tempfile.TemporaryDirectory() as tmp:
        return run_command(_play_command(plays, limit, Path(tmp), extra_vars, check), env_extra)


def start_play(playbook: Path, limit: str, tmp: Path, extra_vars: dict[str, Any] | None = None) -> subprocess.Popen[str]:
    """Start a playbook file in the background, in its own process group (to kill it mid-play);
    its output (stdout and stderr) goes to tmp/play.log."""
    cmd = _play_command(playbook, limit, tmp, extra_vars, check=False)
    with (tmp / "play.log").open("w") as log:
        return subprocess.Popen(cmd, env=_play_env(None), stdout=log, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)


def role_play(role: str, role_vars: dict[str, Any] | None = None, tasks_from: str = "main") -> list[dict[str, Any]]:
    """A one-play playbook that includes a role of this collection."""
    return [{
        "name": f"Exercise {role}",
        "hosts": "all",
        "become": True,
        "gather_facts": True,
        "tasks": [{
            "name": f"Run {role}",
            "ansible.builtin.include_role": {"name": f"prodready.webstack.{role}", "tasks_from": tasks_from},
            "vars": role_vars or {},
        }],
    }]


def assert_refused(result: PlayResult, host: str, *needles: str) -> None:
    """The play failed on host, said every needle, and changed nothing."""
    tail = result.output[-3000:]
    if result.rc == 0:
        pytest.fail(f"play succeeded but should have been refused:\n{tail}")
    missing = [needle for needle in needles if needle not in result.output]
    if missing:
        pytest.fail(f"{missing} not in the output:\n{tail}")
    counters = result.recap(host)
    assert counters.get("failed") == 1 and counters.get("changed") == 0, counters


def container_ip(name: str) -> str:
    """The container's address on its Docker network (reachable from the Docker host)."""
    out = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out, f"{name} has no IP address"
    return out[0]


def unit_journal(host: Any, unit: str, lines: int = 30) -> str:
    """The unit's recent journal, to print when a service assertion fails."""
    return host.run(f"journalctl -u {unit} -n {lines} --no-pager").stdout


# The containers of this pytest run, in the order testinfra's --hosts names them.
_RUN_HOSTS: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    hosts = config.getoption("hosts", default=None) or ""
    _RUN_HOSTS[:] = [spec.split("://", 1)[-1] for spec in str(hosts).split(",") if spec]


def first_run_host() -> str:
    """The first container of the run: debian12 in the Debian pair, the only one in a
    single-distribution run (and the first of the scenario's inventory groups)."""
    if not _RUN_HOSTS:
        pytest.fail("testinfra's --hosts option was not seen (molecule/conftest.py not loaded as a plugin?)")
    return _RUN_HOSTS[0]


def checked_once(host: Any, why: str = "platform-independent") -> str:
    """The container's name, or a skip unless it is the first host of the run: checks that do
    not depend on the distribution run once."""
    name: str = host.backend.hostname
    first = first_run_host()
    if name != first:
        pytest.skip(f"{why}: checked once, on {first}")
    return name


def assert_role_refuses(host: Any, role: str, bad_vars: dict[str, Any], needles: list[str],
                        tasks_from: str = "main") -> None:
    """Run `role` with `bad_vars` on the run's first container: it must stop, say every needle,
    and change nothing. Input validation is platform-independent, so other hosts skip."""
    name = checked_once(host, "input validation is platform-independent")
    result = run_play(role_play(role, tasks_from=tasks_from), limit=name, extra_vars=bad_vars)
    assert_refused(result, name, *needles)


def all_items_pass(count: int) -> list[str]:
    """Conditions on prodready_readiness: `count` items recorded, every one passed."""
    return [f"prodready_readiness | length == {count}", "prodready_readiness | rejectattr('passed') | list | length == 0"]


def assert_readiness(host: Any, role: str, that: list[str], show: bool = False) -> PlayResult:
    """Run the role's tasks/verify.yml on host as playbooks/verify.yml does, assert `that` about the
    recorded items (prodready_readiness) and that measuring changed nothing."""
    name = host.backend.hostname
    play = role_play(role, tasks_from="verify")
    play[0]["tasks"].append({"name": f"The {role} readiness items hold",
                             "ansible.builtin.assert": {"that": that, "fail_msg": "{{ prodready_readiness | to_json }}"}})
    if show:
        play[0]["tasks"].append({"name": "Show the items", "ansible.builtin.debug": {"var": "prodready_readiness"}})
    result = run_play(play, limit=name)
    assert result.rc == 0 and result.recap(name)["changed"] == 0, result.output[-3000:]
    return result


# Expectations from facts and configuration, not from host names: the platform key the roles use
# (Debian-12, Ubuntu-24) read from the host's /etc/os-release, and the variables the scenario's
# inventory gives a host (host_vars, group_vars), with the role's defaults for what it leaves unset.

def _load_platform_filter() -> Any:
    spec = importlib.util.spec_from_file_location("prodready_filter_platform", PROJECT / "plugins" / "filter" / "platform.py")
    assert spec and spec.loader, "cannot load plugins/filter/platform.py"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PLATFORM_FILTER = _load_platform_filter()
# Ansible's distribution fact for the os-release IDs of the supported distributions.
_DISTRIBUTIONS = {"debian": "Debian", "ubuntu": "Ubuntu"}


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5) text as a dict (KEY=value lines, values unquoted)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key.strip()] = value
    return fields


def platform_from_os_release(fields: Mapping[str, str]) -> str:
    """The roles' platform key (filter platform_key: Debian-12, Ubuntu-22; Ubuntu-24.10 for an interim
    release) of a host with these os-release fields."""
    os_id = fields.get("ID", "unknown")
    version = fields.get("VERSION_ID", "")
    facts = {"distribution": _DISTRIBUTIONS.get(os_id, os_id.capitalize()),
             "distribution_major_version": version.split(".")[0] or "unknown", "distribution_version": version}
    key: str = _PLATFORM_FILTER.platform_key(facts)
    return key


_OS_RELEASE: dict[str, dict[str, str]] = {}


def os_release(host: Any) -> dict[str, str]:
    """The host's /etc/os-release fields (read once per host)."""
    name: str = host.backend.hostname
    if name not in _OS_RELEASE:
        _OS_RELEASE[name] = parse_os_release(host.file("/etc/os-release").content_string)
    return _OS_RELEASE[name]


def platform(host: Any) -> str:
    """The host's platform key as the roles compute it: "Debian-12", "Debian-13", "Ubuntu-22", "Ubuntu-24"."""
    return platform_from_os_release(os_release(host))


def upstream_version(package_version: str) -> str:
    """A Debian package version without epoch and revision: "5:7.0.15-1~deb12u1" -> "7.0.15"."""
    version = package_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


_INVENTORY_VARS: dict[tuple[str, str], dict[str, Any]] = {}


def inventory_vars(host: Any) -> dict[str, Any]:
    """The variables the scenario's inventory gives the host (host_vars over group_vars), as
    `ansible-inventory --host` prints them: raw, templates not rendered. Cached per host."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory:
        pytest.skip("MOLECULE_INVENTORY_FILE is not set: run through molecule verify")
    name: str = host.backend.hostname
    key = (inventory, name)
    if key not in _INVENTORY_VARS:
        proc = subprocess.run(["ansible-inventory", "-i", inventory, "--host", name], env=_play_env(None),
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, f"ansible-inventory --host {name}:\n{proc.stderr[-3000:]}"
        _INVENTORY_VARS[key] = json.loads(proc.stdout)
    return _INVENTORY_VARS[key]


_ROLE_DEFAULTS: dict[str, dict[str, Any]] = {}


def role_defaults(role: str) -> dict[str, Any]:
    """roles/<role>/defaults/main.yml (raw: templates not rendered)."""
    if role not in _ROLE_DEFAULTS:
        _ROLE_DEFAULTS[role] = yaml.safe_load((PROJECT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    return _ROLE_DEFAULTS[role]


def host_setting(host: Any, role: str, name: str) -> Any:
    """A role variable as this host gets it: the inventory's value, else roles/<role>/defaults/main.yml's
    (raw either way: a template such as the default redis_maxmemory comes back as its text)."""
    variables = inventory_vars(host)
    if name in variables:
        return variables[name]
    defaults = role_defaults(role)
    assert name in defaults, f"{name} is neither in the inventory of {host.backend.hostname} nor in roles/{role}/defaults/main.yml"
    return defaults[name]
