"""The /bin/sh script that runs an app's release commands in order, each named before it runs."""

from __future__ import annotations

import shlex
from typing import Any

DOCUMENTATION = r"""
name: release_script
short_description: A /bin/sh script that runs release commands in order and names each one first
description:
  - Returns the text of a C(/bin/sh) script (C(set -e)) that prints C(==> release command N/M: <command>)
    before each command and stops at the first that fails, so the last such line of its output names the
    failing command. The commands are the operator's own shell command lines, run unchanged.
positional: _input
options:
  _input:
    description: The commands, in order (app_release_commands).
    type: list
    elements: str
    required: true
  header:
    description: A comment line put after the shebang (the managed-file note).
    type: str
    default: ""
  label:
    description: What each command is called in the lines naming it (C(release command), C(build command)).
    type: str
    default: release command
"""


def release_script(commands: list[str], header: str = "", label: str = "release command") -> str:
    """#!/bin/sh -e, then for each command an echo naming it ("==> <label> N/M: <command>") and the command."""
    if not commands:
        raise ValueError("release_script needs at least one command")
    lines = ["#!/bin/sh", *([f"# {header}"] if header else []), "set -e"]
    for index, command in enumerate(commands, start=1):
        if not str(command).strip() or "\n" in str(command):
            raise ValueError(f"{label} {index} must be one non-empty line, got {command!r}")
        lines.append("echo " + shlex.quote(f"==> {label} {index}/{len(commands)}: {command}"))
        lines.append(str(command))
    return "\n".join(lines) + "\n"


class FilterModule:
    """Release command filters."""

    def filters(self) -> dict[str, Any]:
        return {"release_script": release_script}
