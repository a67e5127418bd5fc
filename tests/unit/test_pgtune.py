"""Unit tests for the pgtune filter, checked against what pgtune.leopard.in.ua prints."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.template import trust_as_template

from conftest import load_plugin, role_templar

pgtune = load_plugin("filter", "pgtune")


def test_4gb_2cpus_web_matches_pgtune() -> None:
    """pgtune, PostgreSQL 15, Linux, web, 4 GB, 2 CPUs, SSD."""
    assert pgtune.pgtune(4096, cpus=2, version=15) == {
        "max_connections": 200,
        "shared_buffers": "1GB",
        "effective_cache_size": "3GB",
        "maintenance_work_mem": "256MB",
        "checkpoint_completion_target": 0.9,
        "wal_buffers": "16MB",
        "default_statistics_target": 100,
        "random_page_cost": 1.1,
        "effective_io_concurrency": 200,
        "work_mem": "5041kB",
        "huge_pages": "off",
        "min_wal_size": "1GB",
        "max_wal_size": "4GB",
        "jit": "off",
        "wal_compression": "lz4",
    }


def test_16gb_8cpus_web_matches_pgtune() -> None:
    """pgtune, PostgreSQL 16, Linux, web, 16 GB, 8 CPUs, SSD."""
    assert pgtune.pgtune(16384, cpus=8, version=16) == {
        "max_connections": 200,
        "shared_buffers": "4GB",
        "effective_cache_size": "12GB",
        "maintenance_work_mem": "1GB",
        "checkpoint_completion_target": 0.9,
        "wal_buffers": "16MB",
        "default_statistics_target": 100,
        "random_page_cost": 1.1,
        "effective_io_concurrency": 200,
        "work_mem": "20164kB",
        "huge_pages": "try",
        "min_wal_size": "1GB",
        "max_wal_size": "4GB",
        "max_worker_processes": 8,
        "max_parallel_workers_per_gather": 4,
        "max_parallel_workers": 8,
        "max_parallel_maintenance_workers": 4,
        "jit": "off",
        "wal_compression": "lz4",
    }


def test_strings_from_ansible_facts_are_accepted() -> None:
    assert pgtune.pgtune("3924", cpus="2", version="15")["shared_buffers"] == "981MB"


@pytest.mark.parametrize("kb, text", [(1048576, "1GB"), (262144, "256MB"), (5041, "5041kB"), (1536 * 1024, "1536MB")])
def test_size_uses_the_largest_whole_unit(kb: int, text: str) -> None:
    assert pgtune.size(kb) == text


@pytest.mark.parametrize("profile, connections", [("web", 200), ("oltp", 300), ("dw", 40), ("desktop", 20), ("mixed", 100)])
def test_profile_connections(profile: str, connections: int) -> None:
    assert pgtune.pgtune(8192, profile=profile)["max_connections"] == connections


def test_explicit_max_connections_feeds_work_mem() -> None:
    settings = pgtune.pgtune(4096, max_connections=100)
    assert settings["max_connections"] == 100
    assert settings["work_mem"] == f"{(4194304 - 1048576) // ((100 + 8) * 3)}kB"


def test_work_mem_floor_is_4mb() -> None:
    assert pgtune.pgtune(4096, cpus=4, max_connections=9999)["work_mem"] == "4MB"


def test_dw_profile_halves_work_mem_and_doubles_maintenance() -> None:
    web, dw = pgtune.pgtune(65536, profile="web"), pgtune.pgtune(65536, profile="dw")
    assert dw["maintenance_work_mem"] == "8GB" and web["maintenance_work_mem"] == "4GB"
    assert dw["default_statistics_target"] == 500
    assert "jit" not in dw


def test_maintenance_work_mem_capped_at_8gb_and_autovacuum_at_2gb() -> None:
    settings = pgtune.pgtune(262144, cpus=32)
    assert settings["maintenance_work_mem"] == "8GB"
    assert settings["autovacuum_work_mem"] == "2GB"
    assert settings["autovacuum_max_workers"] == 5


def test_no_parallel_settings_below_4_cpus() -> None:
    assert "max_worker_processes" not in pgtune.pgtune(4096, cpus=3)


def test_workers_per_gather_capped_except_dw() -> None:
    assert pgtune.pgtune(65536, cpus=31)["max_parallel_workers_per_gather"] == 4
    assert pgtune.pgtune(65536, cpus=31, profile="dw")["max_parallel_workers_per_gather"] == 16


@pytest.mark.parametrize("version, expected", [(14, "on"), (15, "lz4"), (17, "lz4")])
def test_wal_compression_by_version(version: int, expected: str) -> None:
    assert pgtune.pgtune(4096, version=version)["wal_compression"] == expected


def test_wal_buffers_small_memory_and_near_16mb() -> None:
    assert pgtune.wal_buffers_kb(1024) == 32
    assert pgtune.wal_buffers_kb(500 * 1024) == 16 * 1024  # 3 % of 500 MB = 15 MB: rounded up to 16 MB
    assert pgtune.wal_buffers_kb(400 * 1024) == 12288  # 3 % of 400 MB = 12 MB stays


def test_hdd_storage() -> None:
    settings = pgtune.pgtune(4096, storage="hdd")
    assert (settings["random_page_cost"], settings["effective_io_concurrency"]) == (4, 2)


def test_desktop_profile_uses_minimal_wal() -> None:
    settings = pgtune.pgtune(4096, profile="desktop")
    assert (settings["wal_level"], settings["max_wal_senders"], settings["shared_buffers"]) == ("minimal", 0, "256MB")


@pytest.mark.parametrize("kwargs", [{"profile": "webscale"}, {"storage": "tape"}, {"cpus": 0}])
def test_bad_input_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        pgtune.pgtune(4096, **kwargs)


def test_filter_is_registered() -> None:
    assert pgtune.FilterModule().filters()["pgtune"] is pgtune.pgtune


def test_postgresql_default_memory_ignores_the_few_mib_memory_moves_between_boots() -> None:
    """#20: postgresql_tune_memory_mb was the reported memory to the MiB, so shared_buffers (restart-only)
    changed after a reboot that reported a few MiB less."""
    def tuned(memtotal_mb: int) -> dict[str, Any]:
        templar = role_templar("postgresql", ansible_facts={"memtotal_mb": memtotal_mb, "processor_vcpus": 2})
        return pgtune.pgtune(templar.template(trust_as_template("{{ postgresql_tune_memory_mb }}")), cpus=2)

    assert tuned(3931) == tuned(3925) == tuned(3900) == pgtune.pgtune(3840, cpus=2)
    assert tuned(100)["shared_buffers"] == "64MB"
