"""Logic of prodready.webstack.app outside the switch helper, checked offline: the requirements
install of tasks/release.yml (run with a fake pip), the probes' headers, the production checks of
the app's own setting names, and the units' ordering after local services only."""

from __future__ import annotations

import os
import subprocess
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


# ------------------------------------------------------------------ the requirements install (issue #16, item 1)

def install_task() -> dict[str, Any]:
    tasks = yaml.safe_load((ROLES / "app" / "tasks" / "release.yml").read_text())
    build = next(t for t in tasks if "block" in t)
    return next(t for t in build["block"] if t["name"].startswith("Install the requirements"))


# The fake pip: `install --no-index` (the offline attempt and the final install) and `wheel` answer
# with the exit status in $FAKE/<install-offline|wheel|install>-rc and print what real pip prints.
FAKE_PIP = """#!/bin/bash
echo "pip $*" >> "$FAKE/calls"
case "$1" in
  wheel) step=wheel ;;
  install) if [ -e "$FAKE/tried-offline" ]; then step=install; else touch "$FAKE/tried-offline"; step=install-offline; fi ;;
esac
rc=$(cat "$FAKE/$step-rc" 2>/dev/null || echo 0)
if [ "$rc" != 0 ]; then
  echo "ERROR: Could not find a version that satisfies the requirement prodready-no-such-package==0.0.0 (from versions: none)" >&2
  echo "ERROR: No matching distribution found for prodready-no-such-package==0.0.0" >&2
fi
exit "$rc"
"""


def run_install(tmp_path: Path, **rcs: int) -> subprocess.CompletedProcess[str]:
    """The task's shell script, rendered for a release under tmp_path, with the fake pip."""
    fake = tmp_path / "fake"
    fake.mkdir()
    for step, rc in rcs.items():
        (fake / f"{step.replace('_', '-')}-rc").write_text(f"{rc}\n")
    task = install_task()
    script = role_templar("app", **BASE, app_root=str(tmp_path / "srv"), app_version="1.0.0",
                          app_wheelhouse_dir=str(tmp_path / "wheels"), app_pip_cache_dir=str(tmp_path / "cache"),
                          app_pip_extra_args=[]).template(trusted(task["ansible.builtin.shell"]["cmd"]))
    pip = tmp_path / "srv" / "releases" / "1.0.0" / ".venv" / "bin" / "pip"
    pip.parent.mkdir(parents=True)
    pip.write_text(FAKE_PIP)
    pip.chmod(0o755)
    return subprocess.run([task["ansible.builtin.shell"].get("executable", "/bin/sh"), "-c", script],
                          env={**os.environ, "FAKE": str(fake)}, capture_output=True, text=True, check=False)


def test_install_from_the_wheelhouse_when_it_has_everything(tmp_path: Path) -> None:
    done = run_install(tmp_path)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "installed from the wheelhouse", done.stdout + done.stderr


def test_install_after_downloading_into_the_wheelhouse(tmp_path: Path) -> None:
    done = run_install(tmp_path, install_offline=1)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "installed after downloading", done.stdout + done.stderr


@pytest.mark.parametrize("failing", ["wheel", "install"])
def test_a_failing_dependency_install_fails_the_task_with_pips_error(tmp_path: Path, failing: str) -> None:
    """Before the fix the script went on after pip failed and printed "installed after downloading":
    the marker was written over an empty virtualenv."""
    done = run_install(tmp_path, install_offline=1, **{failing: 1})
    assert done.returncode != 0, done.stdout + done.stderr
    assert "installed" not in done.stdout  # the line the marker records
    assert "No matching distribution found for prodready-no-such-package==0.0.0" in done.stderr


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


def test_each_release_links_its_env_and_shared_paths() -> None:
    links = value("__app_release_links", app_shared_paths=[{"path": "app/media", "shared": "media"}])
    assert links == [{"path": ".env", "shared": ""}, {"path": "app/media", "shared": "media"}]
