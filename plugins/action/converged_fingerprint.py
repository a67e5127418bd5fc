"""Controller-side fingerprint of everything a converge of this host depends on.

The fingerprint covers the collection's own content (roles, playbooks, plugins), the ansible-core
version, and for every inventory host its variables (inventory, group and host vars, extra vars;
templated, so a file a lookup reads counts; as written when they do not template) plus the facts
the roles read (addresses, memory, cores, distribution).
prodready.webstack.converged stores it on the host after a full converge; the next site.yml run
skips a host whose fingerprint and live state (prodready-converged check) are both unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ansible import release
from ansible.plugins.action import ActionBase

COLLECTION_ROOT = Path(__file__).resolve().parents[2]
CONTENT_DIRS = ("roles", "playbooks", "plugins")
# Connection variables that change what a run reaches; every other ansible_* key is a fact or magic.
CONNECTION_VARS = frozenset({
    "ansible_host", "ansible_port", "ansible_user", "ansible_connection", "ansible_python_interpreter",
    "ansible_become", "ansible_become_user", "ansible_become_method", "ansible_docker_extra_args",
})
# Magic variables that differ between runs or checkouts without changing what a converge does.
VOLATILE_VARS = frozenset({
    "omit", "playbook_dir", "inventory_dir", "inventory_file", "ansible_config_file", "hostvars",
    "play_hosts", "role_names", "environment", "vars", "module_setup", "gather_subset",
    "discovered_interpreter_python", "ansible_facts",
    # Whether to skip, and after how long a full converge is due: not inputs of the converge itself.
    "converged_skip_unchanged", "converged_max_age_hours",
})
# Facts the roles read (pgtune sizes from memory and cores, firewall and pg_hba from addresses).
FACT_KEYS = (
    "distribution", "distribution_version", "distribution_release", "architecture", "memtotal_mb",
    "processor_vcpus", "processor_cores", "processor_count", "fqdn", "hostname", "domain",
    "all_ipv4_addresses", "all_ipv6_addresses", "virtualization_type", "virtualization_role",
)
ADDRESS_FACTS = ("default_ipv4", "default_ipv6")


def content_digest(root: Path, dirs: Iterable[str] = CONTENT_DIRS) -> str:
    """sha256 over the relative path and bytes of every file under root/<dirs> (caches and the
    Markdown documentation skipped: neither changes what a converge does)."""
    digest = hashlib.sha256()
    for top in dirs:
        files = sorted(p for p in (root / top).rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".md")
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def selected_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts a converge depends on; volatile ones (free memory, uptime) are left out."""
    picked: dict[str, Any] = {key: facts[key] for key in FACT_KEYS if key in facts}
    for key in ADDRESS_FACTS:
        if isinstance(facts.get(key), Mapping):
            picked[key] = facts[key].get("address")
    return picked


def input_keys(raw_vars: Mapping[str, Any]) -> list[str]:
    """A host's variable names without facts and run-specific magic."""
    return sorted(key for key in raw_vars
                  if key not in VOLATILE_VARS and (not key.startswith("ansible_") or key in CONNECTION_VARS))


def host_inputs(raw_vars: Mapping[str, Any], templated: Mapping[str, Any]) -> dict[str, Any]:
    """Each input variable templated when it can be (else as written), plus the selected facts."""
    inputs: dict[str, Any] = {}
    for key in input_keys(raw_vars):
        try:
            inputs[key] = templated[key]
        except Exception:  # noqa: BLE001 - a variable that needs the play's context counts as written
            inputs[key] = raw_vars[key]
    facts = raw_vars.get("ansible_facts")
    inputs["__facts"] = selected_facts(facts) if isinstance(facts, Mapping) else {}
    return inputs


def fingerprint(hosts: Mapping[str, Mapping[str, Any]], content: str, ansible_version: str) -> str:
    """sha256 of the canonical JSON of all inputs (values that are not JSON are taken as str)."""
    document = {"content": content, "ansible": ansible_version, "hosts": hosts}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


class ActionModule(ActionBase):
    """prodready.webstack.converged_fingerprint: returns fingerprint (runs on the controller only)."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        hostvars = task_vars["hostvars"]
        hosts = {name: host_inputs(hostvars.raw_get(name), hostvars[name]) for name in task_vars["groups"]["all"]}
        result.update(changed=False, fingerprint=fingerprint(hosts, content_digest(COLLECTION_ROOT), release.__version__))
        return result
