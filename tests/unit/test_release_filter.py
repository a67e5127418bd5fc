"""release_script: the app's release commands as one /bin/sh script that names the failing one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import load_plugin

release = load_plugin("filter", "release")


def run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "release.sh"
    path.write_text(script)
    return subprocess.run(["/bin/sh", str(path)], capture_output=True, text=True, check=False, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "GREETING": "hello"})


def test_commands_run_in_order_with_shell_syntax_and_variables(tmp_path: Path) -> None:
    script = release.release_script(["echo one > out", "echo \"$GREETING 'two'\" >> out", "test -s out"], header="managed")
    out = run(script, tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out").read_text() == "one\nhello 'two'\n"
    assert out.stdout.splitlines() == ["==> release command 1/3: echo one > out",
                                       "==> release command 2/3: echo \"$GREETING 'two'\" >> out",
                                       "==> release command 3/3: test -s out"]
    assert script.startswith("#!/bin/sh\n# managed\nset -e\n")


def test_the_first_failing_command_stops_the_script_and_is_the_last_named(tmp_path: Path) -> None:
    out = run(release.release_script(["true", "sh -c 'exit 3'", "touch never"]), tmp_path)
    assert out.returncode == 3
    assert out.stdout.splitlines()[-1] == "==> release command 2/3: sh -c 'exit 3'"
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("commands", [[], [""], ["migrate\nrm -rf /"]])
def test_empty_or_multi_line_commands_are_refused(commands: list[str]) -> None:
    with pytest.raises(ValueError):
        release.release_script(commands)


def test_build_commands_are_named_as_such(tmp_path: Path) -> None:
    out = run(release.release_script(["true", "false"], label="build command"), tmp_path)
    assert out.returncode == 1
    assert out.stdout.splitlines() == ["==> build command 1/2: true", "==> build command 2/2: false"]
