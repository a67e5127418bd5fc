"""Logic of prodready.webstack.app outside the switch helper, checked offline: the dependency
install of tasks/release.yml (run with fake pip, uv and interpreter), the probes' headers, the production checks of
the app's own setting names, and the units' ordering after local services only."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROLES, render_role_template, role_templar, trusted

# What the tests render the role's values with (no inventory, no facts).
BASE: dict[str, Any] = {
    "app_database_url": "postgresql://app:pw@db1/app", "app_redis_url": "redis://:pw@db1:6379/0",
    "app_secret_key": "k3Jx9vQ2mW8pL5nR7tY1uZ4aB6cD0eF2", "inventory_hostname": "web1", "groups": {"web": ["web1"]},
    "ansible_managed": "managed",
}


def value(expression: str, **overrides: Any) -> Any:
    """A Jinja expression evaluated with the role's defaults and vars, BASE and overrides."""
    return role_templar("app", **{**BASE, **overrides}).template(trusted("{{ " + expression + " }}"))


# ------------------------------------------------------------------ the dependency install (issue #16, items 1 and 2)

def install_task() -> dict[str, Any]:
    tasks = yaml.safe_load((ROLES / "app" / "tasks" / "release.yml").read_text())
    build = next(t for t in tasks if "block" in t)
    return next(t for t in build["block"] if t["name"].startswith("Install the dependencies"))


# Fakes of the interpreter (`-m venv DIR` makes DIR/bin/pip), pip and uv. Each call is logged to
# $FAKE/calls; pip and uv answer with the exit status in $FAKE/<step>-rc (default 0), where step is
# uv-<subcommand>[-offline], pip-install-offline (a --no-index install before any `pip wheel`),
# pip-wheel, pip-install (after a wheel, or from the index).
FAKE_PYTHON = """#!/bin/bash
echo "python $*" >> "$FAKE/calls"
if [ "$1 $2 $3" = "-m venv --clear" ]; then mkdir -p "$4/bin"; cp "$FAKE/pip" "$4/bin/pip"; exit 0; fi
exec python3 "$@"
"""
FAKE_PIP = """#!/bin/bash
echo "pip $*" >> "$FAKE/calls"
case "$1" in
  wheel) step=pip-wheel; touch "$FAKE/wheeled" ;;
  install) if [[ " $* " == *" --no-index "* ]] && [ ! -e "$FAKE/wheeled" ]; then step=pip-install-offline; else step=pip-install; fi ;;
esac
exec "$FAKE/answer" "$step"
"""
FAKE_UV = """#!/bin/bash
echo "uv $*" >> "$FAKE/calls"
step="uv-$1"
if [ "$1" = pip ]; then step="uv-pip-$2"; fi
if [[ " $* " == *" --offline "* ]]; then step="$step-offline"; fi
exec "$FAKE/answer" "$step"
"""
ANSWER = """#!/bin/bash
rc=$(cat "$FAKE/$1-rc" 2>/dev/null || echo 0)
if [ "$rc" != 0 ]; then
  echo "ERROR: Could not find a version that satisfies the requirement prodready-no-such-package==0.0.0 (from versions: none)" >&2
  echo "ERROR: No matching distribution found for prodready-no-such-package==0.0.0" >&2
fi
exit "$rc"
"""


def run_install(tmp_path: Path, files: tuple[str, ...] = ("requirements.txt",), rcs: dict[str, int] | None = None,
                **variables: Any) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The task's script for a release under tmp_path holding `files`, with the fakes; its result and the calls."""
    fake = tmp_path / "fake"
    fake.mkdir()
    for name, body in {"python": FAKE_PYTHON, "pip": FAKE_PIP, "uv": FAKE_UV, "answer": ANSWER}.items():
        (fake / name).write_text(body)
        (fake / name).chmod(0o755)
    for step, rc in (rcs or {}).items():
        (fake / f"{step}-rc").write_text(f"{rc}\n")
    release = tmp_path / "srv" / "releases" / "1.0.0"
    release.mkdir(parents=True)
    for name in files:
        (release / name).write_text("")
        os.utime(release / name, (1704067200, 1704067200))
    settings = {"app_installer": "pip", "app_pip_version": "", **variables}
    task = install_task()
    script = role_templar("app", **BASE, app_root=str(tmp_path / "srv"), app_version="1.0.0", app_python=str(fake / "python"),
                          app_wheelhouse_dir=str(tmp_path / "wheels"), app_pip_cache_dir=str(tmp_path / "cache"),
                          app_uv_cache_dir=str(tmp_path / "uv-cache"), __app_uv=str(fake / "uv"),
                          **settings).template(trusted(task["ansible.builtin.shell"]["cmd"]))
    done = subprocess.run([task["ansible.builtin.shell"].get("executable", "/bin/sh"), "-c", script],
                          env={**os.environ, "FAKE": str(fake)}, capture_output=True, text=True, check=False)
    calls = (fake / "calls").read_text().splitlines() if (fake / "calls").exists() else []
    return done, calls


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()[-1]


def test_the_task_renders_the_install_script_template() -> None:
    assert "install.sh.j2" in install_task()["ansible.builtin.shell"]["cmd"]


def test_pip_installs_from_the_wheelhouse_when_it_has_everything(tmp_path: Path) -> None:
    done, calls = run_install(tmp_path)
    assert last_line(done) == "installed offline (pip, requirements)"
    assert not [c for c in calls if c.startswith("pip wheel")]


def test_pip_installs_after_downloading_into_the_wheelhouse(tmp_path: Path) -> None:
    done, calls = run_install(tmp_path, rcs={"pip-install-offline": 1})
    assert last_line(done) == "installed after downloading (pip, requirements)"
    assert [c.split()[1] for c in calls if c.startswith("pip")] == ["install", "wheel", "install"]


@pytest.mark.parametrize("failing", ["pip-wheel", "pip-install"])
def test_a_failing_dependency_install_fails_the_task_with_pips_error(tmp_path: Path, failing: str) -> None:
    """Before the fix the script went on after pip failed and printed "installed after downloading":
    the marker was written over an empty virtualenv."""
    done, _ = run_install(tmp_path, rcs={"pip-install-offline": 1, failing: 1})
    assert done.returncode != 0, done.stdout + done.stderr
    assert "installed" not in done.stdout  # the line the marker records
    assert "No matching distribution found for prodready-no-such-package==0.0.0" in done.stderr


def test_pip_is_upgraded_in_the_venv_first(tmp_path: Path) -> None:
    """The interpreter's bundled pip (23.x) refuses a hashed export with extras."""
    _, calls = run_install(tmp_path, app_pip_version="26.3")
    pips = [c for c in calls if c.startswith("pip ")]
    assert "pip==26.3" in pips[0].split() and "-r" in pips[1].split()


def test_uv_syncs_the_lock_file_offline_first(tmp_path: Path) -> None:
    done, calls = run_install(tmp_path, files=("pyproject.toml", "uv.lock", "requirements.txt"), app_installer="uv")
    assert last_line(done) == "installed offline (uv, uv_lock)"
    assert calls[0].startswith("uv venv") and "--python" in calls[0]
    sync = calls[1].split()
    assert sync[:2] == ["uv", "sync"] and {"--frozen", "--no-dev", "--no-editable", "--offline"} <= set(sync)
    assert len(calls) == 2


@pytest.mark.parametrize(("files", "variables"), [
    (("pyproject.toml", "uv.lock"), {}),
    (("requirements.txt", "pyproject.toml"), {"app_install_project": True}),
    (("pyproject.toml",), {}),
])
def test_uv_compiles_the_bytecode_of_every_install(tmp_path: Path, files: tuple[str, ...], variables: dict[str, Any]) -> None:
    """The release is read-only at run time: without .pyc files every worker start compiled every import
    (uv does not compile by default; pip does). Failed before: a first deploy's readiness took 75 s."""
    _, calls = run_install(tmp_path, files=files, app_installer="uv", **variables)
    installs = [c.split() for c in calls if c.startswith(("uv sync", "uv pip install"))]
    assert installs and all("--compile-bytecode" in c for c in installs), calls


def test_uv_downloads_what_the_cache_lacks(tmp_path: Path) -> None:
    done, calls = run_install(tmp_path, files=("pyproject.toml", "uv.lock"), app_installer="uv", rcs={"uv-sync-offline": 1})
    assert last_line(done) == "installed after downloading (uv, uv_lock)"
    assert "--offline" not in calls[-1].split() and calls[-1].startswith("uv sync")


def test_a_failing_uv_install_fails_with_its_error(tmp_path: Path) -> None:
    done, _ = run_install(tmp_path, app_installer="uv", rcs={"uv-pip-install-offline": 1, "uv-pip-install": 1})
    assert done.returncode != 0 and "installed" not in done.stdout
    assert "No matching distribution found" in done.stderr


@pytest.mark.parametrize(("files", "installer", "mode"), [
    (("pyproject.toml", "uv.lock", "requirements.txt"), "uv", "uv_lock"),
    (("pyproject.toml", "uv.lock", "requirements.txt"), "pip", "requirements"),  # pip cannot read uv.lock
    (("requirements.txt",), "uv", "requirements"),
    (("pyproject.toml",), "uv", "project"),
    (("pyproject.toml",), "pip", "project"),
])
def test_auto_picks_the_lock_then_the_requirements_then_the_project(tmp_path: Path, files: tuple[str, ...], installer: str,
                                                                     mode: str) -> None:
    done, _ = run_install(tmp_path, files=files, app_installer=installer)
    assert last_line(done).endswith(f"({installer}, {mode})")


def test_the_project_is_installed_from_its_tree(tmp_path: Path) -> None:
    """Mode project with pip: `pip install <release>` from the index (never a wheel from the wheelhouse:
    the project's version often stays while its code changes)."""
    done, calls = run_install(tmp_path, files=("pyproject.toml",), app_install_mode="project")
    assert last_line(done) == "installed from the index (pip, project)"
    assert calls[-1].split()[-1] == str(tmp_path / "srv" / "releases" / "1.0.0") and "--no-index" not in calls[-1]


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_requirements_mode_can_install_the_project_too(tmp_path: Path, installer: str) -> None:
    done, calls = run_install(tmp_path, files=("requirements.txt", "pyproject.toml"), app_installer=installer,
                              app_install_mode="requirements", app_install_project=True)
    assert last_line(done).endswith(f"({installer}, requirements)")
    release = str(tmp_path / "srv" / "releases" / "1.0.0")
    project = [c for c in calls if release in c.split() and "--no-deps" in c.split()]
    assert project, calls


def test_a_rebuilt_release_is_not_served_a_cached_build_of_the_project(tmp_path: Path) -> None:
    """uv caches a local project's build by path and pyproject.toml's mtime; archives have fixed mtimes."""
    run_install(tmp_path, files=("pyproject.toml", "uv.lock"), app_installer="uv")
    assert (tmp_path / "srv" / "releases" / "1.0.0" / "pyproject.toml").stat().st_mtime > 1704067200


@pytest.mark.parametrize(("files", "variables", "message"), [
    ((), {}, "app_install_mode auto: release 1.0.0 has none of uv.lock, requirements.txt (app_requirements_file)"),
    (("requirements.txt",), {"app_install_mode": "uv_lock", "app_installer": "uv"},
     "app_install_mode uv_lock: release 1.0.0 has no uv.lock"),
    (("uv.lock",), {"app_install_mode": "uv_lock"}, "app_install_mode uv_lock needs app_installer uv"),
    (("uv.lock",), {"app_install_mode": "requirements"}, "release 1.0.0 has no requirements.txt (app_requirements_file)"),
    (("requirements.txt",), {"app_install_mode": "project"}, "app_install_mode project: release 1.0.0 has neither pyproject.toml"),
])
def test_a_release_without_what_its_mode_needs_is_refused(tmp_path: Path, files: tuple[str, ...], variables: dict[str, Any],
                                                          message: str) -> None:
    done, calls = run_install(tmp_path, files=files, **variables)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert not calls  # nothing created or installed


def test_a_failed_build_removes_the_cached_archive_too() -> None:
    """A fixed archive of the same version must be fetched again (get_url keeps an existing file
    when no checksum is given), and the half-built release must go."""
    tasks = yaml.safe_load((ROLES / "app" / "tasks" / "release.yml").read_text())
    rescue = next(t for t in tasks if "block" in t)["rescue"]
    removed = next(t for t in rescue if t["name"] == "Remove the failed build")
    assert removed["ansible.builtin.file"]["state"] == "absent"
    assert set(removed["loop"]) == {"{{ __app_release_dir }}", "{{ __app_artifact_cache }}/{{ app_name }}-{{ app_version }}.tar.gz"}


# ------------------------------------------------------------------ probe headers (item 2)

SITE = {"name": "app", "server_names": ["app.example.com", "www.example.com"], "upstream_file": "/etc/nginx/upstreams/app.conf"}


@pytest.mark.parametrize(("sites", "host"), [
    ([SITE], "app.example.com"),
    ([{**SITE, "server_names": ["*.example.com", "_", "~^w+$", "shop.example.com"]}], "shop.example.com"),
    ([{**SITE, "upstream_file": "/etc/nginx/upstreams/other.conf"}], None),  # another site
    ([], None),
])
def test_probes_send_the_sites_host_and_https(sites: list[dict[str, Any]], host: str | None) -> None:
    headers = value("__app_health_headers", nginx_sites=sites)
    assert headers == ({"X-Forwarded-Proto": "https", "Host": host} if host else {"X-Forwarded-Proto": "https"})


def test_the_probe_host_can_be_set() -> None:
    assert value("__app_health_headers", nginx_sites=[SITE], app_health_host="internal.example.com")["Host"] == "internal.example.com"


def test_every_probe_of_the_role_sends_the_headers_and_follows_no_redirect() -> None:
    probes = []
    for name in ("activate.yml", "verify.yml"):
        for task in yaml.safe_load((ROLES / "app" / "tasks" / name).read_text()):
            probes += [t for t in [task, *task.get("block", [])] if "ansible.builtin.uri" in t]
    assert len(probes) == 3, [t["name"] for t in probes]
    for task in probes:
        assert task["ansible.builtin.uri"]["headers"] == "{{ __app_health_headers }}", task["name"]
        assert task["ansible.builtin.uri"]["follow_redirects"] == "none", task["name"]


def test_the_metrics_proxy_sends_the_probe_headers() -> None:
    conf = render_role_template("app", "etc/nginx/conf.d/app-metrics.conf.j2", **BASE, nginx_sites=[SITE], app_metrics_allow=[])
    assert "proxy_set_header Host app.example.com;" in conf and "proxy_set_header X-Forwarded-Proto https;" in conf
    assert "$host" not in conf


# ------------------------------------------------------------------ the app's own setting names (item 3)

@pytest.mark.parametrize(("env", "debug", "cors"), [
    ({}, [], []),
    ({"DJANGO_DEBUG": "True"}, ["DJANGO_DEBUG"], []),
    ({"DJANGO_DEBUG": True, "FLASK_DEBUG": "1"}, ["DJANGO_DEBUG", "FLASK_DEBUG"], []),
    ({"DJANGO_DEBUG": "False", "APP_DEBUG": 0}, [], []),
    ({"CORS_ALLOWED_ORIGINS": "*"}, [], ["CORS_ALLOWED_ORIGINS"]),
    ({"CORS_ORIGIN_WHITELIST": "https://a.example.com,https://*.example.com"}, [], ["CORS_ORIGIN_WHITELIST"]),
    ({"BACKEND_CORS_ORIGINS": "https://app.example.com"}, [], []),
    ({"SOMETHING_DEBUG": "true"}, [], []),  # not a name the app reads
])
def test_debug_and_cors_are_checked_under_the_apps_names(env: dict[str, Any], debug: list[str], cors: list[str]) -> None:
    assert value("__app_unsafe_debug", app_env=env) == debug
    assert value("__app_unsafe_cors", app_env=env) == cors


def test_the_roles_own_names_are_checked_too() -> None:
    assert value("__app_unsafe_debug", app_debug=True) == ["DEBUG"]
    assert value("__app_unsafe_cors", app_cors_origins=["*"]) == ["CORS_ORIGINS"]


def test_the_names_are_configurable() -> None:
    assert value("__app_unsafe_debug", app_env={"MY_DEBUG": "yes"}, app_debug_setting_names=["MY_DEBUG"]) == ["MY_DEBUG"]


# ------------------------------------------------------------------ ordering after local services (item 5)

def listed(*units: str) -> dict[str, Any]:
    return {"stdout_lines": [f"{unit} enabled enabled" for unit in units]}


@pytest.mark.parametrize(("found", "after"), [
    (listed("postgresql.service", "pgbouncer.service", "redis-server.service"),
     "network-online.target postgresql.service pgbouncer.service redis-server.service"),
    (listed("postgresql.service"), "network-online.target postgresql.service"),  # no Redis on this host
    (listed(), "network-online.target"),
    (None, "network-online.target"),  # not measured (the task did not run)
])
def test_units_order_after_the_local_services_only(found: dict[str, Any] | None, after: str) -> None:
    extra = {"__app_after_found": found} if found is not None else {}
    process = {"name": "worker", "command": ".venv/bin/celery worker", "stop_timeout": 30}
    units = []
    for name in ("app-web@.service.j2", "app-process.service.j2"):
        # The [Unit] section; the shared [Service] settings (an include) do not matter here.
        text = (ROLES / "app" / "templates" / "etc" / "systemd" / "system" / name).read_text().split("{% include")[0]
        units.append(role_templar("app", **BASE, **extra, process=process).template(trusted(text)))
    for unit in units:
        assert f"\nAfter={after}\n" in unit, unit
        assert "Wants=network-online.target\n" in unit and "Wants=redis" not in unit and "Requires=" not in unit


# ------------------------------------------------------------------ directories nginx serves (issue #16, item 11)

@pytest.mark.parametrize(("sites", "served"), [
    ([{"name": "app", "media_path": "/srv/app/shared/media/"}], ["media"]),
    ([{"name": "app", "static_path": "/srv/app/shared/media"}, {"name": "other", "media_path": "/var/www/media"}], ["media"]),
    ([{"name": "app", "media_path": "/srv/app/shared/media/sub"}], []),  # a subdirectory: not the directory itself
    ([{"name": "app", "media_path": "/srv/app/shared/uploads"}], []),  # not a writable shared directory
    ([{"name": "app"}], []),
])
def test_shared_directories_served_by_a_site(sites: list[dict[str, Any]], served: list[str]) -> None:
    assert value("__app_served_shared_dirs", nginx_sites=sites) == served


@pytest.mark.parametrize(("sites", "frontend", "dirs"), [
    ([{"name": "app", "media_path": "/srv/app/shared/media"}], "", ["/srv/app", "/srv/app/shared"]),
    ([{"name": "app"}], "frontend/dist", ["/srv/app", "/srv/app/releases", "/srv/app/slots"]),
    ([{"name": "app", "media_path": "/srv/app/shared/media"}], "dist",
     ["/srv/app", "/srv/app/shared", "/srv/app/releases", "/srv/app/slots"]),
    ([{"name": "app"}], "", []),
])
def test_nginx_passes_through_to_what_it_serves_only(sites: list[dict[str, Any]], frontend: str, dirs: list[str]) -> None:
    assert value("__app_nginx_pass_dirs", nginx_sites=sites, app_frontend_dir=frontend) == dirs


FAKE_SETFACL = """#!/bin/bash
echo "setfacl $*" >> "$FAKE/calls"
"""


def run_frontend_acl(tmp_path: Path, frontend: str, files: tuple[str, ...]) -> tuple[subprocess.CompletedProcess[str], list[str], Path]:
    """release.yml's frontend ACL task for a release under tmp_path holding files, with a fake setfacl."""
    release = tmp_path / "srv" / "releases" / "1.0.0"
    for name in files:
        (release / name).parent.mkdir(parents=True, exist_ok=True)
        (release / name).write_text("")
    fake = tmp_path / "fake"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "setfacl").write_text(FAKE_SETFACL)
    (fake / "bin" / "setfacl").chmod(0o755)
    task = next(t for t in yaml.safe_load((ROLES / "app" / "tasks" / "release.yml").read_text())[1]["block"]
                if t["name"].startswith("Let nginx's group read the release's frontend"))
    script = role_templar("app", **BASE, app_root=str(tmp_path / "srv"), app_version="1.0.0", app_frontend_dir=frontend,
                          app_web_server_group="www-data").template(trusted(task["ansible.builtin.shell"]["cmd"]))
    done = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True, check=False,
                          env={**os.environ, "FAKE": str(fake), "PATH": f"{fake / 'bin'}:{os.environ['PATH']}"})
    calls = (fake / "calls").read_text().splitlines() if (fake / "calls").exists() else []
    return done, calls, release


def test_the_frontend_is_readable_by_nginx_and_its_parents_passable(tmp_path: Path) -> None:
    done, calls, release = run_frontend_acl(tmp_path, "frontend/dist/", ("frontend/dist/index.html", "frontend/dist/assets/app-1.js"))
    assert done.returncode == 0, done.stderr
    assert calls == [f"setfacl -m g:www-data:x {release}/frontend", f"setfacl -m g:www-data:x {release}",
                     f"setfacl -R -m g:www-data:rX {release}/frontend/dist"]


def test_a_release_without_the_frontends_index_fails_naming_the_variable(tmp_path: Path) -> None:
    done, calls, _ = run_frontend_acl(tmp_path, "frontend/dist", ("frontend/src/main.ts",))
    assert done.returncode != 0 and calls == []
    assert "app_frontend_dir=frontend/dist: release 1.0.0 has no" in done.stderr and "app_build_commands" in done.stderr


def test_each_release_links_its_env_and_shared_paths() -> None:
    links = value("__app_release_links", app_shared_paths=[{"path": "app/media", "shared": "media"}])
    assert links == [{"path": ".env", "shared": ""}, {"path": "app/media", "shared": "media"}]


# ------------------------------------------------------------------ release integrity in production (#19 item 1)

def preflight_assert(name: str) -> dict[str, Any]:
    tasks = yaml.safe_load((ROLES / "app" / "tasks" / "preflight.yml").read_text())
    return next(t for t in tasks if t["name"] == name)


def assert_outcome(task: dict[str, Any], **overrides: Any) -> str | None:
    """What the preflight assert does with these values: None when skipped or passing, else its message."""
    templar = role_templar("app", **{**BASE, "app_version": "1.2.0", **overrides})
    if not templar.template(trusted("{{ " + task["when"] + " }}")):
        return None
    if all(templar.template(trusted("{{ " + condition + " }}")) for condition in task["ansible.builtin.assert"]["that"]):
        return None
    return str(templar.template(trusted(task["ansible.builtin.assert"]["fail_msg"])))


SHA = "a" * 64


@pytest.mark.parametrize(("overrides", "refused"), [
    ({"app_archive_url": "https://artifacts.example.com/app-{version}.tar.gz", "app_archive_sha256": SHA}, False),
    ({"app_archive_url": "file:///srv/drop/app-{version}.tar.gz", "app_archive_sha256": SHA}, False),
    ({"app_archive_src": "/build/app-{version}.tar.gz", "app_archive_sha256": SHA}, False),
    ({"app_archive_url": "https://artifacts.example.com/app-{version}.tar.gz", "app_archive_sha256": ""}, True),
    ({"app_archive_url": "http://artifacts.example.com/app-{version}.tar.gz", "app_archive_sha256": SHA}, True),
    ({"app_archive_url": "http://172.17.0.1:8765/app-{version}.tar.gz", "app_archive_sha256": SHA, "app_archive_allow_http": True}, False),
    ({"app_archive_url": "http://172.17.0.1:8765/app-{version}.tar.gz", "app_archive_sha256": "", "app_archive_allow_http": True}, True),
    # Outside production, or without a release to build (site.yml's set-up run), nothing is asked.
    ({"app_archive_url": "http://x/app.tar.gz", "app_archive_sha256": "", "app_environment": "staging"}, False),
    ({"app_archive_url": "http://x/app.tar.gz", "app_archive_sha256": "", "app_version": ""}, False),
    ({"app_source": "git", "app_git_repo": "https://git.example.com/app.git", "app_archive_sha256": ""}, False),
])
def test_production_takes_only_a_pinned_archive_over_https(overrides: dict[str, Any], refused: bool) -> None:
    """Before the fix an empty digest was a warning and http:// was accepted, while root installs what the archive lists."""
    message = assert_outcome(preflight_assert("Assert the release archive is pinned in production"), **overrides)
    assert (message is not None) == refused, message
    if refused:
        assert "app_archive_sha256 is required" in message and "app_archive_allow_http" in message


@pytest.mark.parametrize("digest", ["abc", SHA + "0", "g" * 64])
def test_ci_deploy_refuses_a_malformed_digest_before_anything_runs(tmp_path: Path, digest: str) -> None:
    env = {**os.environ, "DEPLOY_ENV": "staging", "APP_VERSION": "1.2.0", "VAULT_PASSWORD": "x", "SSH_PRIVATE_KEY": "x",
           "SSH_KNOWN_HOSTS": "x", "APP_SHA256": digest, "RUNNER_TEMP": str(tmp_path)}
    done = subprocess.run([str(ROLES.parent / "scripts" / "ci-deploy")], env=env, capture_output=True, text=True, check=False,
                          cwd=ROLES.parent)
    assert done.returncode != 0 and f"APP_SHA256 '{digest}' is not a sha256 (64 hex digits)" in done.stderr, done.stderr
    assert not list(tmp_path.iterdir())  # no credentials written


# ------------------------------------------------------------------ build packages (#16 item 10)

def build_task(name: str, section: str = "block") -> dict[str, Any]:
    tasks = yaml.safe_load((ROLES / "app" / "tasks" / "release.yml").read_text())
    return next(t for t in next(t for t in tasks if "block" in t)[section] if t["name"].startswith(name))


def test_only_the_build_packages_this_build_added_are_removed() -> None:
    """gcc was there before (another role's, or the operator's): it stays; libpq-dev (never installed)
    and python3-dev (removed, config files left: 'rc') were added by the build and go again."""
    task = build_task("Remove the build packages this build added", "always")
    before = {"stdout_lines": ["ii  gcc", "rc  python3-dev"]}
    templar = role_templar("app", **BASE, app_build_packages=["libpq-dev", "gcc", "python3-dev"], app_build_packages_remove=True,
                           __app_build_packages_before=before, **trusted(task["vars"]))
    assert templar.template(trusted(task["ansible.builtin.apt"]["name"])) == ["libpq-dev", "python3-dev"]
    assert task["ansible.builtin.apt"]["state"] == "absent"
    query = role_templar("app", **BASE, app_build_packages=["libpq-dev", "gcc"]).template(
        trusted(build_task("Find which build packages are installed already")["ansible.builtin.command"]["argv"]))
    assert query[:2] == ["dpkg-query", "--show"] and query[-2:] == ["libpq-dev", "gcc"]


# ------------------------------------------------------------------ the deploy lock (#20 item 6)

def run_lock(tmp_path: Path, age_seconds: int | None, **variables: Any) -> tuple[subprocess.CompletedProcess[str], Path]:
    """tasks/lock.yml's lock script against a state dir under tmp_path, with a lock of another run
    started age_seconds ago (None: no lock)."""
    state = tmp_path / "srv" / "state"
    state.mkdir(parents=True)
    lock = state / "deploy.lock"
    if age_seconds is not None:
        lock.write_text(f"token=other\nversion=0.9\nby=ci@runner\nstarted={int(time.time()) - age_seconds}\n")
    task = next(t for t in yaml.safe_load((ROLES / "app" / "tasks" / "lock.yml").read_text()) if t["name"] == "Take the deploy lock")
    lock_vars = {"__app_lock_token": "mine", "__app_lock_by": "me@laptop", "__app_lock_version": "1.2.0"}
    templar = role_templar("app", **BASE, app_root=str(tmp_path / "srv"), app_version="1.2.0", **lock_vars, **variables)
    script = templar.template(trusted(task["ansible.builtin.shell"]["cmd"]))
    return subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True, check=False), lock


@pytest.mark.parametrize(("age", "break_lock", "taken"), [
    (None, False, True),
    (60, False, False),
    (60, True, False),       # a deploy still running: app_deploy_break_lock leaves its lock alone (broke it before the fix)
    (31 * 60, False, False),  # stale, reported
    (31 * 60, True, True),   # stale and asked to break: broken, taken
])
def test_break_lock_breaks_only_a_stale_lock(tmp_path: Path, age: int | None, break_lock: bool, taken: bool) -> None:
    done, lock = run_lock(tmp_path, age, app_deploy_break_lock=break_lock)
    assert (done.returncode == 0) == taken, done.stdout + done.stderr
    assert ("token=mine" in lock.read_text()) == taken
    assert ("broke the lock" in done.stdout) == (taken and age is not None)


UNLOCK_PLAY = """
- hosts: here
  gather_facts: false
  vars:
    __app_lock_file: {lock}
  tasks:
    - ansible.builtin.set_fact:
        __app_lock_token: mine
    - ansible.builtin.set_fact:
        __app_lock_token: mine
      delegate_to: gone
      delegate_facts: true
    - ansible.builtin.include_tasks: {tasks}/unlock.yml
      vars: {hosts}
"""


@pytest.mark.parametrize(("holder", "hosts", "released"), [
    ("mine", "{}", True),                                    # the success path: this host, this run's lock
    ("other", "{}", False),                                  # another run's lock stays
    ("mine", "{__app_unlock_hosts: [here, gone]}", True),    # unlock-all.yml: an unreachable host does not stop it
])
def test_unlock_releases_only_this_runs_lock(tmp_path: Path, holder: str, hosts: str, released: bool) -> None:
    """tasks/unlock.yml (also unlock-all.yml's one implementation) run by ansible-playbook on this machine."""
    lock = tmp_path / "deploy.lock"
    lock.write_text(f"token={holder}\nstarted=0\n")
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {
        "here": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "gone": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_ssh_common_args": "-o ConnectTimeout=2"},
    }}}))
    (tmp_path / "play.yml").write_text(UNLOCK_PLAY.format(lock=lock, tasks=ROLES / "app" / "tasks", hosts=hosts))
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventory.yml", "play.yml"],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert lock.exists() != released
