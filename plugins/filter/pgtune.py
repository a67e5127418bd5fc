"""pgtune's formulas (le0pard/pgtune) as an Ansible filter: PostgreSQL settings from memory and cores."""

from __future__ import annotations

import math
from typing import Any

DOCUMENTATION = r"""
name: pgtune
short_description: PostgreSQL settings derived from host memory and cores with pgtune's formulas
description:
  - Returns the settings pgtune (U(https://pgtune.leopard.in.ua/)) recommends for a host, as a dictionary of
    C(postgresql.conf) names to values ready to write (sizes as C(GB)/C(MB)/C(kB) strings like pgtune prints them).
  - "Profiles: C(web) (default), C(oltp), C(dw), C(desktop), C(mixed). Storage: C(ssd) (default), C(hdd), C(san), C(nvme)."
  - Parallel settings appear from 4 cores on; C(wal_compression) is C(lz4) from PostgreSQL 15, C(on) before;
    C(jit) is turned off for web, oltp and mixed.
positional: _input
options:
  _input:
    description: Total memory of the host in MiB (C(ansible_facts.memtotal_mb)).
    type: int
    required: true
  cpus:
    description: Cores available to PostgreSQL (C(ansible_facts.processor_vcpus)).
    type: int
    default: 2
  profile:
    description: Workload profile.
    type: str
    default: web
    choices: [web, oltp, dw, desktop, mixed]
  version:
    description: PostgreSQL major version.
    type: int
    default: 15
  storage:
    description: Kind of storage under the data directory.
    type: str
    default: ssd
    choices: [ssd, hdd, san, nvme]
  max_connections:
    description: Connections to plan for; the profile's pgtune default (web 200) when 0 or omitted.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Settings for this host
  ansible.builtin.debug:
    msg: "{{ ansible_facts.memtotal_mb | prodready.webstack.pgtune(cpus=ansible_facts.processor_vcpus, version=15) }}"
  # 4096 MiB, 2 cores, web: shared_buffers 1GB, effective_cache_size 3GB, work_mem 5041kB, ...
"""

RETURN = r"""
_value:
  description: Setting name to value (str, int or float).
  type: dict
"""

KB_PER_MB = 1024
KB_PER_GB = 1024 * 1024
PROFILES = ("web", "oltp", "dw", "desktop", "mixed")
STORAGES = ("ssd", "hdd", "san", "nvme")

MAX_CONNECTIONS = {"web": 200, "oltp": 300, "dw": 40, "desktop": 20, "mixed": 100}
MIN_WAL_MB = {"web": 1024, "oltp": 2048, "dw": 4096, "desktop": 100, "mixed": 1024}
MAX_WAL_MB = {"web": 4096, "oltp": 8192, "dw": 16384, "desktop": 2048, "mixed": 4096}
RANDOM_PAGE_COST = {"hdd": 4, "ssd": 1.1, "san": 1.1, "nvme": 1.1}
IO_CONCURRENCY = {"hdd": 2, "ssd": 200, "san": 300, "nvme": 1000}
# PostgreSQL's own max_worker_processes, used for work_mem when no parallel settings are made.
DEFAULT_WORKER_PROCESSES = 8


def size(kb: int) -> str:
    """A kB amount the way pgtune prints it: whole GB, else whole MB, else kB."""
    if kb % KB_PER_GB == 0:
        return f"{kb // KB_PER_GB}GB"
    if kb % KB_PER_MB == 0:
        return f"{kb // KB_PER_MB}MB"
    return f"{kb}kB"


def shared_buffers_kb(ram_kb: int, profile: str) -> int:
    return ram_kb // 16 if profile == "desktop" else ram_kb // 4


def effective_cache_size_kb(ram_kb: int, profile: str) -> int:
    return ram_kb // 4 if profile == "desktop" else ram_kb * 3 // 4


def maintenance_work_mem_kb(ram_kb: int, profile: str) -> int:
    value = ram_kb // 8 if profile == "dw" else ram_kb // 16
    return min(value, 8 * KB_PER_GB)


def wal_buffers_kb(shared_kb: int) -> int:
    """3 % of shared_buffers, at most 16 MB (rounded up to 16 MB from 14 MB), at least 32 kB."""
    value = min(3 * shared_kb // 100, 16 * KB_PER_MB)
    if 14 * KB_PER_MB < value < 16 * KB_PER_MB:
        value = 16 * KB_PER_MB
    return max(value, 32)


def parallel_settings(cpus: int, profile: str, version: int) -> dict[str, int]:
    """Worker settings from 4 cores on; workers per gather capped at 4 except for dw."""
    if cpus < 4:
        return {}
    per_gather = math.ceil(cpus / 2)
    if profile != "dw":
        per_gather = min(per_gather, 4)
    settings = {"max_worker_processes": cpus, "max_parallel_workers_per_gather": per_gather}
    if version >= 10:
        settings["max_parallel_workers"] = cpus
    if version >= 11:
        settings["max_parallel_maintenance_workers"] = min(math.ceil(cpus / 2), 4)
    return settings


def work_mem_kb(ram_kb: int, shared_kb: int, connections: int, worker_processes: int, profile: str) -> int:
    """(RAM - shared_buffers) / ((max_connections + max_worker_processes) * 3), at least 4 MB."""
    value = (ram_kb - shared_kb) / ((connections + worker_processes) * 3)
    divisor = {"dw": 2, "mixed": 2, "desktop": 6}.get(profile, 1)
    return max(math.floor(value / divisor), 4 * KB_PER_MB)


def wal_compression(version: int) -> str | None:
    if version >= 15:
        return "lz4"
    return "on" if version >= 10 else None


def autovacuum_max_workers(cpus: int) -> int | None:
    if cpus >= 32:
        return 5
    return 4 if cpus >= 16 else None


def _check(memory_mb: int, cpus: int, profile: str, storage: str) -> None:
    if memory_mb <= 0 or cpus <= 0:
        raise ValueError(f"pgtune needs positive memory (MiB) and cpus, got {memory_mb} and {cpus}")
    if profile not in PROFILES:
        raise ValueError(f"pgtune profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if storage not in STORAGES:
        raise ValueError(f"pgtune storage must be one of {', '.join(STORAGES)}, got {storage!r}")


def pgtune(memory_mb: Any, cpus: Any = 2, profile: str = "web", version: Any = 15, storage: str = "ssd",
           max_connections: Any = 0) -> dict[str, Any]:
    """The settings pgtune recommends for memory_mb MiB of RAM and cpus cores."""
    memory, cores, major = int(memory_mb), int(cpus), int(float(version))
    _check(memory, cores, profile, storage)
    ram_kb = memory * KB_PER_MB
    connections = int(max_connections or 0) or MAX_CONNECTIONS[profile]
    shared_kb = shared_buffers_kb(ram_kb, profile)
    maintenance_kb = maintenance_work_mem_kb(ram_kb, profile)
    parallel = parallel_settings(cores, profile, major)
    workers = parallel.get("max_worker_processes", DEFAULT_WORKER_PROCESSES)
    settings: dict[str, Any] = {
        "max_connections": connections,
        "shared_buffers": size(shared_kb),
        "effective_cache_size": size(effective_cache_size_kb(ram_kb, profile)),
        "maintenance_work_mem": size(maintenance_kb),
        "checkpoint_completion_target": 0.9,
        "wal_buffers": size(wal_buffers_kb(shared_kb)),
        "default_statistics_target": 500 if profile == "dw" else 100,
        "random_page_cost": RANDOM_PAGE_COST[storage],
        "effective_io_concurrency": IO_CONCURRENCY[storage],
        "work_mem": size(work_mem_kb(ram_kb, shared_kb, connections, workers, profile)),
        "huge_pages": "try" if shared_kb >= 2 * KB_PER_GB else "off",
        "min_wal_size": size(MIN_WAL_MB[profile] * KB_PER_MB),
        "max_wal_size": size(MAX_WAL_MB[profile] * KB_PER_MB),
    }
    settings.update(parallel)
    if profile == "desktop":
        settings.update({"wal_level": "minimal", "max_wal_senders": 0})
    if major >= 12 and profile in ("web", "oltp", "mixed"):
        settings["jit"] = "off"
    compression = wal_compression(major)
    if compression:
        settings["wal_compression"] = compression
    av_workers = autovacuum_max_workers(cores)
    if av_workers:
        settings["autovacuum_max_workers"] = av_workers
    if maintenance_kb >= 2 * KB_PER_GB:
        settings["autovacuum_work_mem"] = size(2 * KB_PER_GB)
    return settings


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {"pgtune": pgtune}
