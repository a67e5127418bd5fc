"""Live state of prodready.webstack.redis, and its refusal of bad input.

Expectations come from the host, not its name: the Redis version from its platform (/etc/os-release)
and installed package, the port, memory limit, policy and persistence from the variables the scenario's
inventory gives it (molecule.yml: the role's defaults, or a cache on port 6380 with 128mb, allkeys-lru and
RDB snapshots only), else the role's defaults.
"""

from __future__ import annotations

import re
import shlex
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from conftest import (
    all_items_pass,
    assert_readiness,
    assert_role_refuses,
    checked_once,
    container_ip,
    host_setting,
    inventory_vars,
    platform,
    role_play,
    run_play,
    unit_journal,
    upstream_version,
)

PASSWORD = (Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "redis" / "redis.password").read_text().strip()
UNIT = "redis-server"
# The Redis each platform ships (redis-server package).
REDIS_VERSIONS = {"Debian-12": "7.0", "Debian-13": "8.0", "Ubuntu-22": "6.0", "Ubuntu-24": "7.0"}
# Redis memory units: k/m/g are powers of 1000, kb/mb/gb powers of 1024.
UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def setting(host: Any, name: str) -> Any:
    return host_setting(host, "redis", name)


def port(host: Any) -> int:
    return int(setting(host, "redis_port"))


def persistence(host: Any) -> str:
    return str(setting(host, "redis_persistence"))


def expected_maxmemory(host: Any) -> int:
    """redis_maxmemory in bytes when the inventory sets it; else the role's default, a quarter of the
    host's RAM in MiB (ansible_facts.memtotal_mb) rounded down to 64, at least 64."""
    if "redis_maxmemory" in inventory_vars(host):
        value = str(inventory_vars(host)["redis_maxmemory"])
        match = re.fullmatch(r"([0-9]+)([a-zA-Z]*)", value)
        assert match and match[2].lower() in UNITS, f"redis_maxmemory={value}: not a literal size this test can read"
        return int(match[1]) * UNITS[match[2].lower()]
    memtotal_mb = int(host.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo")) // 1024
    return max(memtotal_mb // 4 // 64 * 64, 64) * 1024 * 1024


def cli(host: Any, *args: str, password: str | None = PASSWORD, addr: str = "127.0.0.1") -> Any:
    """redis-cli as a client would use it; the password travels in REDISCLI_AUTH, never on the command line."""
    env = f"REDISCLI_AUTH={shlex.quote(password)} " if password is not None else ""
    return host.run(f"{env}timeout 10 redis-cli -h {addr} -p {port(host)} {shlex.join(args)}")


def answer(host: Any, *args: str, **kwargs: Any) -> str:
    result = cli(host, *args, **kwargs)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def info(host: Any, section: str) -> dict[str, str]:
    lines = answer(host, "INFO", section).splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))


def wait_for_pong(host: Any) -> str:
    """After a restart: ask up to 30 times, one second apart (bounded; no assertion on the time it takes)."""
    return host.check_output(
        f"for i in $(seq 30); do r=$(REDISCLI_AUTH={shlex.quote(PASSWORD)} redis-cli -p {port(host)} PING 2>&1); "
        f'[ "$r" = PONG ] && break; sleep 1; done; echo "$r"')


def test_distribution_redis_runs_under_systemd(host: Any) -> None:
    service = host.service(UNIT)
    assert service.is_running, unit_journal(host, UNIT)
    assert service.is_enabled
    expected = REDIS_VERSIONS[platform(host)]
    assert f"v={expected}." in host.check_output("redis-server --version"), platform(host)
    package = host.package("redis-server")
    assert package.is_installed
    assert upstream_version(package.version).startswith(f"{expected}."), (package.version, platform(host))
    assert answer(host, "INFO", "server").count(f"tcp_port:{port(host)}") == 1


def test_config_file_is_managed_and_private(host: Any) -> None:
    conf = host.file("/etc/redis/redis.conf")
    assert (conf.user, conf.group, conf.mode) == ("redis", "redis", 0o640)
    content = conf.content_string
    assert "Ansible managed" in "".join(content.splitlines()[:3])
    assert 'logfile ""' in content and "protected-mode yes" in content
    assert host.run("runuser -u nobody -- cat /etc/redis/redis.conf").rc != 0


def test_ping_with_password(host: Any) -> None:
    assert answer(host, "PING") == "PONG"


def test_unauthenticated_and_wrong_password_refused(host: Any) -> None:
    assert answer(host, "PING", password=None).startswith("NOAUTH")
    assert answer(host, "SET", "intruder", "1", password=None).startswith("NOAUTH")
    wrong = cli(host, "PING", password="not-the-password-at-all-not-at-all")
    assert "WRONGPASS" in wrong.stderr and wrong.stdout.strip().startswith("NOAUTH"), wrong.stdout + wrong.stderr


def test_set_get_round_trip(host: Any) -> None:
    key, value = f"prodready:test:{uuid.uuid4().hex}", uuid.uuid4().hex
    assert answer(host, "SET", key, value, "EX", "300") == "OK"
    assert answer(host, "GET", key) == value
    assert answer(host, "DEL", key) == "1"


@pytest.mark.parametrize("command", [["CONFIG", "GET", "requirepass"], ["FLUSHALL"], ["FLUSHDB"], ["KEYS", "*"],
                                     ["DEBUG", "SLEEP", "0"]])
def test_dangerous_commands_are_disabled(host: Any, command: list[str]) -> None:
    assert answer(host, *command).startswith(f"ERR unknown command '{command[0]}'")


def test_memory_limit_and_policy(host: Any) -> None:
    memory = info(host, "memory")
    assert memory["maxmemory_policy"] == setting(host, "redis_maxmemory_policy")
    assert int(memory["maxmemory"]) == expected_maxmemory(host)


def test_listens_on_loopback_only(host: Any) -> None:
    sockets = host.check_output(f"ss -Hltnp 'sport = :{port(host)}'").splitlines()
    assert sockets, unit_journal(host, UNIT)
    assert [line.split()[3] for line in sockets] == [f"127.0.0.1:{port(host)}"], sockets
    assert all('"redis-server"' in line for line in sockets), sockets
    ip = container_ip(host.backend.hostname)
    refused = cli(host, "PING", addr=ip)
    assert "Connection refused" in refused.stdout + refused.stderr, refused.stdout + refused.stderr


def test_persistence_is_live_and_data_survives_a_restart(host: Any) -> None:
    """redis_persistence aof: the key is in the append-only file before the restart; rdb: the snapshot
    taken at shutdown brings it back."""
    if persistence(host) not in ("aof", "rdb"):
        pytest.skip(f"redis_persistence is {persistence(host)} on this host: nothing is meant to survive a restart")
    aof = "1" if persistence(host) == "aof" else "0"
    assert info(host, "persistence")["aof_enabled"] == aof
    key, value = f"prodready:restart:{uuid.uuid4().hex}", uuid.uuid4().hex
    assert answer(host, "SET", key, value) == "OK"
    if aof == "1":
        # appendfsync everysec: the write reaches the AOF within about a second; look for it there (bounded).
        found = host.run(f"for i in $(seq 10); do grep -rqa {value} /var/lib/redis/appendonlydir/ && exit 0; sleep 1; done; exit 1")
        assert found.rc == 0, host.check_output("ls -la /var/lib/redis/appendonlydir/")
    else:
        assert not host.file("/var/lib/redis/appendonlydir").exists
    pid = host.check_output(f"systemctl show -p MainPID --value {UNIT}")
    host.check_output(f"systemctl restart {UNIT}")
    assert wait_for_pong(host) == "PONG", unit_journal(host, UNIT)
    assert host.check_output(f"systemctl show -p MainPID --value {UNIT}") != pid
    assert answer(host, "GET", key) == value
    assert info(host, "persistence")["aof_enabled"] == aof
    assert host.file("/var/lib/redis/dump.rdb").exists
    assert answer(host, "DEL", key) == "1"


def test_switching_to_aof_and_back_keeps_the_data(host: Any) -> None:
    """rdb -> aof would start Redis empty (it ignores dump.rdb when AOF is on); the role carries the data over."""
    name = host.backend.hostname
    if persistence(host) != "rdb":
        pytest.skip(f"the switch starts from RDB-only persistence: redis_persistence is {persistence(host)} on this host, not rdb")
    key, value = f"prodready:switch:{uuid.uuid4().hex}", uuid.uuid4().hex
    assert answer(host, "SET", key, value) == "OK"
    try:
        to_aof = run_play(role_play("redis"), limit=name, extra_vars={"redis_persistence": "aof"})
        assert to_aof.rc == 0, to_aof.output[-3000:]
        assert "carried over" in to_aof.output
        assert info(host, "persistence")["aof_enabled"] == "1"
        assert answer(host, "GET", key) == value, unit_journal(host, UNIT)
    finally:
        back = run_play(role_play("redis"), limit=name)
    assert back.rc == 0 and back.recap(name)["failed"] == 0, back.output[-3000:]
    assert info(host, "persistence")["aof_enabled"] == "0"
    assert answer(host, "GET", key) == value
    assert answer(host, "DEL", key) == "1"


def test_unit_keeps_its_sandbox_without_write_access_to_etc_redis(host: Any) -> None:
    show = host.check_output(f"systemctl show -p ReadWritePaths -p ProtectSystem -p User -p NoNewPrivileges {UNIT}")
    assert "ProtectSystem=strict" in show and "User=redis" in show and "NoNewPrivileges=yes" in show
    paths = show.split("ReadWritePaths=", 1)[1].splitlines()[0]
    assert "/var/lib/redis" in paths and "/etc/redis" not in paths, paths
    assert host.file("/etc/systemd/system/redis-server.service.d/prodready.conf").exists


def test_kernel_settings_written_and_left_to_the_container_host(host: Any) -> None:
    conf = host.file("/etc/sysctl.d/60-prodready-redis.conf").content_string
    assert "vm.overcommit_memory=1" in conf.replace(" ", "") and "net.core.somaxconn=4096" in conf.replace(" ", "")


def test_redis_url_fact_connects(host: Any) -> None:
    """The URL parsed the way redis-py (Celery, Django) parses it, then used; the fixture's "/" and "+" need encoding."""
    url = host.file("/root/.redis_url").content_string.strip()
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("redis", "127.0.0.1", port(host), "/0")
    assert parts.username == "" and "/" not in parts.netloc and "+" not in parts.netloc
    password = unquote(parts.password or "")
    assert password == PASSWORD
    assert answer(host, "-n", parts.path[1:], "PING", password=password, addr=parts.hostname) == "PONG"
    # redis-cli -u decodes the password too, but sends an empty user name as "": name the default user for it.
    cli_url = url.replace("redis://:", "redis://default:", 1)
    assert host.check_output(f"redis-cli --no-auth-warning -u {shlex.quote(cli_url)} PING") == "PONG"


def test_readiness_items_pass(host: Any) -> None:
    """tasks/verify.yml, as playbooks/verify.yml runs it, records seven passing items."""
    result = assert_readiness(host, "redis", all_items_pass(7), show=True)
    assert "container: live value" in result.output  # the overcommit item says who owns the kernel setting
    assert PASSWORD not in result.output


def test_private_and_public_addresses_in_preflight(host: Any) -> None:
    """Private addresses pass the checks; a public one passes only with redis_allow_public (one play, two runs)."""
    name = checked_once(host, "input validation is platform-independent")
    play = role_play("redis", {"redis_bind_addresses": ["127.0.0.1", "10.0.1.5", "172.31.0.9", "-fd00::5"]},
                     tasks_from="preflight")
    play[0]["tasks"] += role_play("redis", {"redis_bind_addresses": ["0.0.0.0"], "redis_allow_public": True},
                                  tasks_from="preflight")[0]["tasks"]
    result = run_play(play, limit=name)
    assert result.rc == 0 and result.recap(name)["changed"] == 0, result.output[-3000:]


def _facts(distribution: str = "Debian", major: str = "12") -> dict[str, Any]:
    return {"distribution": distribution, "distribution_major_version": major, "memtotal_mb": 4096,
            "virtualization_role": "guest", "virtualization_type": "docker"}


BAD_INPUT = [
    pytest.param({"redis_password": "short-password-123"}, ["redis_password must be at least 32", "got 18 characters"],
                 id="weak-password"),
    pytest.param({"redis_password": "CHANGE-ME-redis-password-placeholder-000"}, ["redis_password", "placeholder"],
                 id="placeholder-password"),
    pytest.param({"redis_bind_addresses": ["0.0.0.0"]}, ["redis_bind_addresses: 0.0.0.0 is", "redis_allow_public"],
                 id="wildcard-bind"),
    pytest.param({"redis_bind_addresses": ["127.0.0.1", "198.51.100.7"]}, ["redis_bind_addresses: 198.51.100.7 is"],
                 id="public-bind"),
    pytest.param({"redis_maxmemory": "256 MB"}, ["redis_maxmemory=256 MB"], id="maxmemory-format"),
    pytest.param({"redis_maxmemory": "64gb", "ansible_facts": _facts()}, ["redis_maxmemory=64gb", "4096 MiB"],
                 id="maxmemory-over-ram"),
    pytest.param({"redis_maxmemory_policy": "lru"}, ["redis_maxmemory_policy", "lru"], id="policy-choice"),
    pytest.param({"redis_settings_overrides": {"requirepass": "x"}}, ["redis_settings_overrides", "requirepass"],
                 id="override-managed"),
    pytest.param({"ansible_facts": _facts("Ubuntu", "20")}, ["Unsupported platform Ubuntu-20"], id="platform"),
]


@pytest.mark.parametrize("bad_vars, needles", BAD_INPUT)
def test_bad_input_stops_before_any_change(host: Any, bad_vars: dict[str, Any], needles: list[str]) -> None:
    assert_role_refuses(host, "redis", bad_vars, needles)
