"""Helpers shared by the Molecule scenarios' testinfra tests.

`run_play` runs a throw-away playbook against one of the scenario's live containers with the
scenario's inventory, so bad-input tests exercise the real roles on the real host and can
assert that the play stopped before changing anything.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
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
