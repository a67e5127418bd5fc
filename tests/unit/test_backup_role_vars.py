"""prodready.webstack.backup defaults that keep production data out of reach."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.template import trust_as_template

from conftest import role_templar

CHECKOUT = Path(__file__).resolve().parents[2]


def test_fetched_backups_land_outside_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """#20: the default was playbook_dir/../backups, inside the git checkout and not ignored."""
    monkeypatch.setenv("HOME", "/home/operator")
    templar = role_templar("backup", playbook_dir=str(CHECKOUT / "playbooks"))
    fetch_dir = Path(templar.template(trust_as_template("{{ backup_fetch_dir }}")))
    assert fetch_dir == Path("/home/operator/prodready-backups")
    assert CHECKOUT not in fetch_dir.parents
