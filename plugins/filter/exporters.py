"""Exporter filters: which exporter-toolkit web configuration flag an exporter takes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

DOCUMENTATION = r"""
name: web_config_flag
short_description: The web configuration flag an exporter's --help offers (--web.config.file, --web.config or none)
description:
  - exporter-toolkit named the flag C(--web.config) until 0.7 (node-exporter 1.3 on Ubuntu 22.04,
    1.1 on Debian 11) and C(--web.config.file) since. Given an exporter's C(--help) output, returns the
    flag it takes, or an empty string when it has neither (the exporter cannot serve TLS or basic auth).
positional: _input
options:
  _input:
    description: The exporter's --help output (stdout and stderr joined).
    type: str
    required: true
"""
# web_config_flags (same file): from the registered results of a looped `--help` command, a dict
# exporter key -> flag for the exporters that take one.

_OLD_FLAG = re.compile(r"--web\.config(?![.\w-])")


def web_config_flag(help_text: str) -> str:
    """--web.config.file, --web.config, or '' from an exporter's --help output."""
    text = str(help_text)
    if "--web.config.file" in text:
        return "--web.config.file"
    if _OLD_FLAG.search(text):
        return "--web.config"
    return ""


def web_config_flags(results: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """{exporter key: flag} from looped `--help` results (item.key); exporters without a flag are left out."""
    flags: dict[str, str] = {}
    for result in results:
        if "stdout" not in result:  # skipped
            continue
        flag = web_config_flag(f"{result.get('stdout', '')}\n{result.get('stderr', '')}")
        if flag:
            flags[str(result["item"]["key"])] = flag
    return flags


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {"web_config_flag": web_config_flag, "web_config_flags": web_config_flags}
