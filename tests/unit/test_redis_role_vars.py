"""prodready.webstack.redis values that depend on the Redis version (Ubuntu 22.04 runs 6.0)."""

from __future__ import annotations

import pytest
from ansible.template import trust_as_template

from conftest import render_role_template, role_templar

UNKNOWN_CONFIG = {
    "6.0": "(error) ERR unknown command `CONFIG`, with args beginning with: `GET`, `maxmemory`, ",
    "7.0": "(error) ERR unknown command 'CONFIG', with args beginning with: 'GET' 'maxmemory' ",
}


@pytest.mark.parametrize("version", sorted(UNKNOWN_CONFIG))
def test_a_disabled_config_command_is_recognised_on_every_version(version: str) -> None:
    """The expression of tasks/verify.yml's __config_unknown, as Ansible evaluates it."""
    templar = role_templar("redis", __out=UNKNOWN_CONFIG[version])
    assert templar.template(trust_as_template("{{ __out is search(__redis_unknown_config_regex) }}")) is True


@pytest.mark.parametrize("platform, proc_title", [("Ubuntu-22", False), ("Ubuntu-24", True), ("Debian-12", True), ("Debian-13", True)])
def test_set_proc_title_only_where_redis_knows_it(platform: str, proc_title: bool) -> None:
    """Redis 6.0 (Ubuntu 22.04) stops on set-proc-title ("Bad directive"); the compat layer runs that binary."""
    distribution, major = platform.split("-")
    text = render_role_template("redis", "etc/redis/redis.conf.j2", ansible_facts={
        "distribution": distribution, "distribution_major_version": major, "distribution_version": f"{major}.04"},
        ansible_managed="managed", inventory_hostname="h", redis_password="x" * 32, redis_maxmemory="100mb")
    assert ("\nset-proc-title yes" in text) is proc_title


def test_maxmemory_default_ignores_the_few_mib_memory_moves_between_boots() -> None:
    """#20: the default was memtotal_mb // 4 to the MiB, so a reboot that reported 4 MiB less restarted Redis."""
    def default(memtotal_mb: int) -> str:
        templar = role_templar("redis", ansible_facts={"memtotal_mb": memtotal_mb})
        return str(templar.template(trust_as_template("{{ redis_maxmemory }}")))

    assert default(3931) == default(3925) == default(3900) == "960mb"
    assert default(8192) == "2048mb" and default(100) == "64mb"
