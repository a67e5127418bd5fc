"""Lint: no task hands a secret to the target through `environment:`.

Ansible turns a task's environment into a prefix of the remote command (`NAME=value /bin/sh -c ...`),
readable in `ps` on the host while the task runs and in `-vvv` output. Secrets travel in module
arguments, on stdin or in a 0600 file instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Variable names that carry a secret (vault.example.yml's and the roles' naming).
SECRET_NAME = re.compile(r"(password|passwd|secret|token|api_key|private_key|credential)", re.IGNORECASE)
TASK_FILES = sorted([*ROOT.glob("roles/*/tasks/*.yml"), *ROOT.glob("roles/*/handlers/*.yml"), *ROOT.glob("playbooks/*.yml")])


def _tasks(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping that can carry `environment:` (tasks, blocks, plays), depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _tasks(value)
    elif isinstance(node, list):
        for item in node:
            yield from _tasks(item)


def secret_environment(text: str) -> list[str]:
    """`NAME: value` pairs of environment: mappings whose name or templated value names a secret."""
    found = []
    for task in _tasks(yaml.safe_load(text) or []):
        env = task.get("environment")
        pairs = env.items() if isinstance(env, dict) else [("(expression)", env)] if env else []
        for name, value in pairs:
            if SECRET_NAME.search(str(name)) or SECRET_NAME.search(" ".join(re.findall(r"\{\{(.*?)\}\}", str(value)))):
                found.append(f"{task.get('name', '?')}: {name}")
    return found


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_secret_in_task_environment(path: Path) -> None:
    assert secret_environment(path.read_text()) == [], f"{path}: pass the secret on stdin, as a module argument or in a 0600 file"


def test_the_check_finds_a_secret() -> None:
    """The form roles/redis used before (REDISCLI_AUTH from redis_password), and a safe one."""
    bad = "- name: Ask Redis\n  ansible.builtin.command: redis-cli PING\n  environment:\n    REDISCLI_AUTH: '{{ redis_password }}'\n"
    safe = ("- name: Create a role\n  community.postgresql.postgresql_user: {}\n"
            "  environment:\n    PGOPTIONS: -c password_encryption=scram-sha-256\n")
    block = "- block:\n    - name: Inner\n      ansible.builtin.command: x\n      environment: {PGPASSWORD: '{{ item.pw }}'}\n"
    assert secret_environment(bad) == ["Ask Redis: REDISCLI_AUTH"]
    assert secret_environment(safe) == []
    assert secret_environment(block) == ["Inner: PGPASSWORD"]
