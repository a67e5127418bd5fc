"""The controller-side fingerprint behind site.yml's skip of unchanged hosts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from conftest import load_plugin

plugin = load_plugin("action", "converged_fingerprint")

FACTS = {"distribution": "Debian", "memtotal_mb": 2048, "memfree_mb": 900, "uptime_seconds": 10,
         "default_ipv4": {"address": "10.0.0.5", "gateway": "10.0.0.1"}}
RAW = {"nginx_sites": [{"name": "demo"}], "ansible_host": "10.0.0.5", "ansible_facts": FACTS,
       "ansible_distribution": "Debian", "omit": "__omit_place_holder__1234", "playbook_dir": "/a",
       "inventory_hostname": "web1", "groups": {"all": ["web1"], "web": ["web1"]}}


class Templated(dict[str, Any]):
    """hostvars[host]: templates on access; a key listed in `broken` raises like an undefined variable."""

    def __init__(self, values: Mapping[str, Any], broken: tuple[str, ...] = ()) -> None:
        super().__init__(values)
        self.broken = broken

    def __getitem__(self, key: str) -> Any:
        if key in self.broken:
            raise KeyError(f"undefined: {key}")
        return super().__getitem__(key)


def digest_of(raw: Mapping[str, Any], **templated: Any) -> str:
    inputs = plugin.host_inputs(raw, Templated({**raw, **templated}))
    return plugin.fingerprint({"web1": inputs}, "content", "2.21.5")


def test_inputs_leave_out_facts_and_run_magic() -> None:
    assert plugin.input_keys(RAW) == ["ansible_host", "groups", "inventory_hostname", "nginx_sites"]


def test_inputs_keep_only_the_facts_the_roles_read() -> None:
    assert plugin.host_inputs(RAW, Templated(RAW))["__facts"] == {
        "distribution": "Debian", "memtotal_mb": 2048, "default_ipv4": "10.0.0.5"}


def test_a_variable_that_does_not_template_counts_as_written() -> None:
    raw = {**RAW, "app_url": "{{ app_root }}/x"}
    assert plugin.host_inputs(raw, Templated(raw, broken=("app_url",)))["app_url"] == "{{ app_root }}/x"


def test_the_templated_value_counts_so_a_file_a_lookup_reads_does() -> None:
    raw = {**RAW, "key": "{{ lookup('file', 'id.pub') }}"}
    assert digest_of(raw, key="ssh-ed25519 AAAA1") != digest_of(raw, key="ssh-ed25519 AAAA2")


def test_same_inputs_same_fingerprint_whatever_the_volatile_parts() -> None:
    other_run = {**RAW, "converged_skip_unchanged": False, "omit": "__omit_place_holder__9999", "playbook_dir": "/b",
                 "ansible_facts": {**FACTS, "memfree_mb": 100, "uptime_seconds": 99}}
    assert digest_of(RAW) == digest_of(other_run)
    assert digest_of(dict(reversed(list(RAW.items())))) == digest_of(RAW)


@pytest.mark.parametrize("change", [
    {"nginx_sites": [{"name": "other"}]},
    {"ansible_host": "10.0.0.6"},
    {"ansible_facts": {**FACTS, "memtotal_mb": 4096}},
    {"ansible_facts": {**FACTS, "default_ipv4": {"address": "10.0.0.9"}}},
    {"groups": {"all": ["web1"], "web": ["web1"], "db": ["web1"]}},
])
def test_a_changed_input_changes_the_fingerprint(change: dict[str, Any]) -> None:
    assert digest_of({**RAW, **change}) != digest_of(RAW)


def test_content_digest_follows_the_files_and_skips_caches(tmp_path: Path) -> None:
    (tmp_path / "roles" / "a" / "__pycache__").mkdir(parents=True)
    (tmp_path / "roles" / "a" / "main.yml").write_text("x: 1\n")
    before = plugin.content_digest(tmp_path)
    (tmp_path / "roles" / "a" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    (tmp_path / "roles" / "a" / "README.md").write_text("docs\n")
    assert plugin.content_digest(tmp_path) == before
    (tmp_path / "roles" / "a" / "main.yml").write_text("x: 2\n")
    assert plugin.content_digest(tmp_path) != before
