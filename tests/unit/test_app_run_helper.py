"""The app's run helper (templates/usr/local/sbin/app-run.j2): a command in the app's environment, as its
units run (#16 item 7: playbooks/manage.yml and the release commands use it). systemd-run is a fake that
records its arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FakeRoot, render_role_template

SITE = {"name": "app", "server_names": ["app.example.com"], "upstream_file": "/etc/nginx/app-upstream.conf"}
SYSTEMD_RUN = '#!/bin/sh\nprintf "%s\\n" "$@" > "$FAKE/argv"\nexit "${FAKE_RC:-0}"\n'


@pytest.fixture
def helper(tmp_path: Path) -> FakeRoot:
    root = FakeRoot(tmp_path, {"systemd-run": SYSTEMD_RUN}, "app-run")
    app_root = tmp_path / "srv"
    for release in ("1.0", "2.0"):
        venv = app_root / "releases" / release / ".venv" / "bin"
        venv.mkdir(parents=True)
        (venv / "python").write_text("")
        (venv / "python").chmod(0o755)
    (app_root / "current").symlink_to(app_root / "releases" / "2.0")
    root.install(render_role_template("app", "usr/local/sbin/app-run.j2", ansible_managed="managed", app_root=str(app_root),
                                      inventory_hostname="web1", nginx_sites=[SITE], groups={"web": ["web1"]},
                                      app_memory_max="1G"))
    return root


def argv(root: FakeRoot) -> list[str]:
    return (root.root / "fake" / "argv").read_text().splitlines()


def properties(args: list[str]) -> list[str]:
    return [value for flag, value in zip(args, args[1:], strict=False) if flag == "--property"]


def test_runs_in_the_live_release_with_the_units_environment_and_sandbox(helper: FakeRoot) -> None:
    out = helper.run("python", "manage.py", "createsuperuser", "--noinput")
    assert out.returncode == 0, out.stderr
    args = argv(helper)
    live = str(helper.root / "srv" / "releases" / "2.0")
    assert args[args.index("--") + 1:] == ["python", "manage.py", "createsuperuser", "--noinput"]
    assert "--pipe" in args and "--wait" in args and "--pty" not in args
    props = properties(args)
    for expected in ("User=app", "Group=app", f"EnvironmentFile={helper.root}/srv/shared/.env", f"WorkingDirectory={live}",
                     "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "CapabilityBoundingSet=",
                     "SystemCallFilter=~@privileged @resources", "MemoryMax=1G", "UMask=0027", "StateDirectory=app",
                     f"ReadWritePaths={helper.root}/srv/shared/media"):
        assert expected in props, (expected, props)
    assert not any(p.startswith("RuntimeMaxSec") for p in props)
    assert f"PATH={live}/.venv/bin:/usr/local/bin:/usr/bin:/bin" in args and f"VIRTUAL_ENV={live}/.venv" in args


def test_a_named_release_unit_and_time_limit(helper: FakeRoot) -> None:
    out = helper.run("--release", "1.0", "--unit", "app-migrate-1-0", "--timeout", "600", "--", "/bin/sh", "-c", "exit 0")
    assert out.returncode == 0, out.stderr
    args = argv(helper)
    assert f"WorkingDirectory={helper.root}/srv/releases/1.0" in properties(args)
    assert "RuntimeMaxSec=600" in properties(args)
    assert args[args.index("--unit") + 1] == "app-migrate-1-0"
    assert args[args.index("--") + 1:] == ["/bin/sh", "-c", "exit 0"]
    assert not any(p.startswith(f"ReadWritePaths={helper.root}/srv/releases") for p in properties(args))


def test_writable_opens_the_release_tree_only_when_asked(helper: FakeRoot) -> None:
    assert helper.run("--release", "1.0", "--writable", "true").returncode == 0
    assert f"ReadWritePaths={helper.root}/srv/releases/1.0" in properties(argv(helper))


def test_the_commands_exit_status_is_the_helpers(helper: FakeRoot) -> None:
    helper._env["FAKE_RC"] = "3"
    assert helper.run("false").returncode == 3


@pytest.mark.parametrize("args", [[], ["--timeout", "soon", "true"], ["--unit", "a b", "true"], ["--bogus", "true"],
                                  ["--release"]])
def test_bad_usage_runs_nothing(helper: FakeRoot, args: list[str]) -> None:
    out = helper.run(*args)
    assert out.returncode == 64
    assert "usage:" in out.stderr
    assert not (helper.root / "fake" / "argv").exists()


@pytest.mark.parametrize("release", ["3.0", "../../etc", ".venv"])
def test_a_release_that_is_not_built_runs_nothing(helper: FakeRoot, release: str) -> None:
    out = helper.run("--release", release, "true")
    assert out.returncode == 66
    assert not (helper.root / "fake" / "argv").exists()


def test_no_live_release_runs_nothing(helper: FakeRoot) -> None:
    (helper.root / "srv" / "current").unlink()
    out = helper.run("true")
    assert out.returncode == 66
    assert "deploy one first" in out.stderr
