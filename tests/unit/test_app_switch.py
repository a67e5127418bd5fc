"""The app role's switch helper (templates/usr/local/sbin/app-switch.j2), rendered with the role's
defaults and vars and run against a scratch app root, with systemctl, curl, nginx and chown
replaced by fakes that record what they were asked. Molecule (app, stack) runs it on real hosts;
these cases cover the paths a real host rarely shows: a held lock, nginx refusing the switch."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import FakeRoot, render_role_template

FAKES = {
    # units/<name> holds "<state> <epoch it became active>".
    "systemctl": """#!/bin/bash
echo "systemctl $*" >> "$FAKE/calls"
case "$1" in
  is-active) read -r state _ < "$FAKE/units/$2" 2>/dev/null || state=inactive; echo "$state"; [ "$state" = active ] ;;
  show) read -r _ since < "$FAKE/units/$4" 2>/dev/null; echo "@${since:-0}" ;;
  reload) exit "$(cat "$FAKE/reload-rc" 2>/dev/null || echo 0)" ;;
esac
""",
    # curl-out holds what -w prints ("<status> <redirect url>"), 200 by default.
    "curl": """#!/bin/bash
echo "curl $*" >> "$FAKE/calls"
cat "$FAKE/curl-out" 2>/dev/null || printf '200 '
exit "$(cat "$FAKE/curl-rc" 2>/dev/null || echo 0)"
""",
    "nginx": '#!/bin/bash\necho "nginx $*" >> "$FAKE/calls"; exit "$(cat "$FAKE/nginx-rc" 2>/dev/null || echo 0)"\n',
    "chown": '#!/bin/bash\necho "chown $*" >> "$FAKE/calls"\n',
}


def render(root: Path) -> str:
    return render_role_template(
        "app", "usr/local/sbin/app-switch.j2",
        app_root=str(root / "srv"), app_group="app", __app_conf_dir=str(root / "etc"),
        app_nginx_upstream_file=str(root / "upstream.conf"), inventory_hostname="web1",
        nginx_sites=[{"name": "app", "server_names": ["app.test", "www.app.test"], "upstream_file": str(root / "upstream.conf")}],
        groups={"web": ["web1"]}, ansible_managed="managed")


class Host(FakeRoot):
    """A scratch app root (srv/) for the rendered app-switch; the fakes record their calls."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, FAKES, "app-switch", env={"PRODREADY_LOCK_BY": "ops@laptop"})
        (root / "fake" / "units").mkdir()

    @property
    def srv(self) -> Path:
        return self.root / "srv"

    def read(self, relative: str) -> str:
        return (self.srv / relative).read_text()

    def unit(self, name: str, state: str, since: float) -> None:
        (self.root / "fake" / "units" / name).write_text(f"{state} {int(since)}\n")

    def calls(self) -> str:
        calls = self.root / "fake" / "calls"
        return calls.read_text() if calls.exists() else ""


@pytest.fixture
def host(tmp_path: Path) -> Host:
    """blue serves 1.1.0; green is a warm standby of 1.0.0 started after .env was written."""
    h = Host(tmp_path)
    for release in ("1.0.0", "1.1.0"):
        (h.srv / "releases" / release).mkdir(parents=True)
        (h.srv / "releases" / release / ".prodready-release").write_text("done\n")
    for directory in ("state", "slots", "shared"):
        (h.srv / directory).mkdir()
    (h.srv / "shared" / ".env").write_text("SECRET_KEY=x\n")
    os.utime(h.srv / "shared" / ".env", (time.time() - 600, time.time() - 600))
    (h.srv / "slots" / "blue").symlink_to(h.srv / "releases" / "1.1.0")
    (h.srv / "slots" / "green").symlink_to(h.srv / "releases" / "1.0.0")
    (h.srv / "current").symlink_to(h.srv / "releases" / "1.1.0")
    (h.srv / "state" / "active-slot").write_text("blue\n")
    (h.srv / "state" / "history").write_text("0.9.0\n1.0.0\n1.1.0\n")
    (tmp_path / "upstream.conf").write_text("# managed\nserver 127.0.0.1:8001;\n")
    h.unit("app-web@blue.service", "active", time.time() - 300)
    h.unit("app-web@green.service", "active", time.time() - 300)
    h.install(render(tmp_path))
    return h


def test_status_names_both_slots_and_the_standby_freshness(host: Host) -> None:
    assert host.run("status").stdout.split() == ["blue", "1.1.0", "active", "1.0.0", "active", "yes"]


def test_the_live_slot_is_what_nginx_serves_not_a_stale_record(host: Host) -> None:
    """#20 item 6: a deploy killed after it wrote the upstream file (green) but before it recorded the
    slot leaves active-slot at blue; nginx serves green on its next reload, so green is live (before the
    fix status said blue, and the next deploy started the new release in green: traffic moved unchecked)."""
    (host.root / "upstream.conf").write_text("# managed\nserver 127.0.0.1:8002;\n")
    assert host.run("status").stdout.split() == ["green", "1.1.0", "active", "1.1.0", "active", "yes"]


def test_without_an_upstream_file_the_record_names_the_live_slot(host: Host) -> None:
    (host.root / "upstream.conf").unlink()
    assert host.run("status").stdout.split()[0] == "blue"


def test_rollback_to_the_warm_standby_moves_nginx_and_records_it(host: Host) -> None:
    done = host.run("rollback")
    assert done.returncode == 0 and done.stdout.startswith("switched green 1.0.0 "), done.stdout + done.stderr
    assert (host.root / "upstream.conf").read_text().endswith("server 127.0.0.1:8002;\n")
    assert host.read("state/active-slot") == "green\n"
    assert os.readlink(host.srv / "current") == str(host.srv / "releases" / "1.0.0")
    assert host.read("state/history") == "0.9.0\n1.0.0\n1.1.0\n1.0.0 rollback\n"  # kept: pruning still sees 1.1.0
    assert host.run("target").stdout == "0.9.0\n"  # the next rollback steps further back
    assert not (host.srv / "state" / "deploy.lock").exists()
    calls = host.calls()
    assert "nginx -t -q" in calls and "systemctl reload nginx" in calls and "systemctl enable --quiet app-web@green.service" in calls
    assert "systemctl restart app-worker.service" in calls and "systemctl restart app-web@" not in calls


def test_a_release_outside_the_history_is_appended(host: Host) -> None:
    (host.srv / "state" / "history").write_text("1.1.0\n")
    assert host.run("rollback", "1.0.0").returncode == 0
    assert host.read("state/history") == "1.1.0\n1.0.0 rollback\n"
    assert host.run("target").stdout == "1.1.0\n"


@pytest.mark.parametrize(("history", "given", "target"), [
    ("0.9.0\n1.0.0\n1.1.0\n", "", "1.0.0"),  # the one before the live release
    ("0.9.0\n1.0.0\n1.1.0\n", "0.9.0", "0.9.0"),
    ("1.1.0\n", "1.0.0", "1.0.0"),
])
def test_target_is_the_given_release_else_the_one_before_the_live_one(host: Host, history: str, given: str, target: str) -> None:
    (host.srv / "state" / "history").write_text(history)
    done = host.run("target", given)
    assert done.returncode == 0 and done.stdout == f"{target}\n", done.stdout + done.stderr


def test_no_target_without_a_previous_release(host: Host) -> None:
    (host.srv / "state" / "history").write_text("1.1.0\n")
    done = host.run("target")
    assert done.returncode == 1 and "no previous release in" in done.stderr and done.stdout == ""


@pytest.mark.parametrize(("history", "release", "after"), [
    ("0.9.0\n1.0.0\n1.1.0\n", "0.9.0", "0.9.0\n1.0.0\n1.1.0\n0.9.0 rollback\n"),
    ("1.1.0\n", "1.0.0", "1.1.0\n1.0.0 rollback\n"),
    ("", "1.0.0", "1.0.0 rollback\n"),
])
def test_record_history_appends_the_rollback_once(host: Host, history: str, release: str, after: str) -> None:
    (host.srv / "state" / "history").write_text(history)
    first, second = host.run("record-history", release), host.run("record-history", release)
    assert first.stdout == f"recorded {release}\n" and second.stdout == "unchanged\n", first.stdout + first.stderr
    assert host.read("state/history") == after
    assert (host.srv / "state" / "history").stat().st_mode & 0o777 == 0o600


def test_record_deploy_appends_unless_the_release_is_live(host: Host) -> None:
    assert host.run("record-deploy", "1.1.0").stdout == "unchanged\n"  # already the live one
    assert host.run("record-deploy", "1.2.0").stdout == "recorded 1.2.0\n"
    assert host.read("state/history") == "0.9.0\n1.0.0\n1.1.0\n1.2.0\n"
    # A release deployed again after a rollback away from it is live again (a plain "line present" test would miss it).
    assert host.run("record-history", "1.1.0").stdout == "recorded 1.1.0\n"
    assert host.run("record-deploy", "1.2.0").stdout == "recorded 1.2.0\n"
    assert host.run("target").stdout == "1.1.0\n"


def test_rollbacks_step_back_through_the_deploys(host: Host) -> None:
    """Deploys 0.9.0, 1.0.0, 1.1.0; each rollback goes one release further back; a deploy after them
    goes on from the release rolled back to."""
    for expected in ("1.0.0", "0.9.0"):
        target = host.run("target").stdout.strip()
        assert target == expected
        assert host.run("record-history", target).stdout == f"recorded {target}\n"
    assert host.run("target").returncode == 1  # 0.9.0 was the first
    host.run("record-deploy", "1.2.0")
    assert host.run("target").stdout == "0.9.0\n"


def test_an_old_truncated_history_reads_the_same(host: Host) -> None:
    """Histories written before rollbacks were appended (plain lines) are deploy stacks as they are."""
    (host.srv / "state" / "history").write_text("0.8.0\n0.9.0\n")
    assert host.run("target").stdout == "0.8.0\n"


def test_keep_lists_the_releases_that_served_last_and_the_linked_ones(host: Host) -> None:
    """The issue's case: with app_keep_releases=5, a rollback must not shrink what stays on disk."""
    (host.srv / "state" / "history").write_text("")
    for step in (("record-deploy", "1.0.0"), ("record-deploy", "1.1.0"), ("record-history", "1.0.0"),
                 ("record-deploy", "1.2.0"), ("record-deploy", "1.3.0")):
        host.run(*step)
    kept = host.run("keep", "5").stdout.split()
    assert kept[:4] == ["1.3.0", "1.2.0", "1.0.0", "1.1.0"], kept  # 1.1.0 stays although it was rolled back
    assert set(kept[4:]) == {"1.1.0", "1.0.0"}  # current (1.1.0 in the fixture) and the slots
    assert host.run("keep", "2").stdout.split()[:2] == ["1.3.0", "1.2.0"]
    assert host.run("target", "1.1.0").stdout == "1.1.0\n"  # and a rollback to it is allowed
    assert host.run("keep", "x").returncode == 2


def test_the_history_keeps_its_last_1000_lines(host: Host) -> None:
    (host.srv / "state" / "history").write_text("".join(f"0.{i}\n" for i in range(1200)))
    host.run("record-deploy", "9.9.9")
    lines = host.read("state/history").splitlines()
    assert len(lines) == 1000 and lines[-1] == "9.9.9" and lines[0] == "0.201"


def test_the_readiness_probe_sends_the_sites_host_and_https(host: Host) -> None:
    assert host.run("rollback").returncode == 0
    probe = next(line for line in host.calls().splitlines() if line.startswith("curl "))
    assert "-H Host: app.test" in probe and "-H X-Forwarded-Proto: https" in probe, probe
    assert "http://127.0.0.1:8002/health/ready" in probe and " -L" not in probe and "--location" not in probe


def test_a_redirect_is_not_ready(host: Host) -> None:
    host.fake("curl-out", "301 https://app.test/health/ready")
    done = host.run("rollback")
    assert done.returncode == 75, done.stdout + done.stderr
    assert "with 200 (301 redirect to https://app.test/health/ready; redirects count as failures)" in done.stdout, done.stdout
    assert host.read("state/active-slot") == "blue\n"


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda h: (h.srv / ".." / "srv" / "shared" / ".env").touch(), "not running on the current .env"),
    (lambda h: h.unit("app-web@green.service", "inactive", 0), "not running on the current .env"),
    (lambda h: h.fake("curl-out", "503 "), "does not answer /health/ready with 200 (503)"),
    (lambda h: (h.fake("curl-out", "000 "), h.fake("curl-rc", "7")), "does not answer /health/ready with 200 (no answer)"),
    (lambda h: (h.srv / "state" / "history").write_text("1.1.0\n"), "no previous release"),
    (lambda h: (h.srv / "releases" / "1.0.0" / ".prodready-release").unlink(), "release 1.0.0 is not complete"),
])
def test_no_fast_path_changes_nothing(host: Host, setup: Any, reason: str) -> None:
    setup(host)
    before = (host.root / "upstream.conf").read_text(), host.read("state/active-slot"), host.read("state/history")
    done = host.run("rollback")
    assert done.returncode == 75 and reason in done.stdout, done.stdout + done.stderr
    assert ((host.root / "upstream.conf").read_text(), host.read("state/active-slot"), host.read("state/history")) == before
    assert not (host.srv / "state" / "deploy.lock").exists() and "systemctl reload" not in host.calls()


def test_a_held_lock_is_left_to_its_owner(host: Host) -> None:
    lock = host.srv / "state" / "deploy.lock"
    lock.write_text("token=other\nversion=1.2.0\n")
    done = host.run("rollback")
    assert done.returncode == 75 and "the deploy lock is held" in done.stdout
    assert lock.read_text() == "token=other\nversion=1.2.0\n"


def test_nginx_refusing_the_switch_puts_the_upstream_back(host: Host) -> None:
    host.fake("nginx-rc", "1")
    done = host.run("rollback")
    assert done.returncode == 1 and "was put back" in done.stderr, done.stdout + done.stderr
    assert (host.root / "upstream.conf").read_text() == "# managed\nserver 127.0.0.1:8001;\n"
    assert host.read("state/active-slot") == "blue\n" and not (host.srv / "state" / "deploy.lock").exists()


def test_a_switch_it_cannot_record_fails_loudly(host: Host) -> None:
    (host.srv / "state" / "active-slot.prodready-new").mkdir()  # the state file cannot be written
    done = host.run("rollback")
    assert done.returncode == 1 and done.stdout.startswith("switched green 1.0.0 "), done.stdout + done.stderr
    assert "recording it failed" in done.stderr and "write 'green' to" in done.stderr
    assert not (host.srv / "state" / "deploy.lock").exists()


# ------------------------------------------------------------------ warm-up (issue #16, item 12)

# Each curl call takes the next line of $FAKE/answers ("<status> <seconds>"), else "200 0.010".
WARM_CURL = """#!/bin/bash
exec 9>"$FAKE/curl.lock"; flock 9
n=$(cat "$FAKE/n" 2>/dev/null || echo 0); echo $((n + 1)) > "$FAKE/n"
echo "curl $*" >> "$FAKE/calls"
line=$(sed -n "$((n + 1))p" "$FAKE/answers" 2>/dev/null)
printf '%s' "${line:-200 0.010}"
"""


def warm_host(host: Host, answers: list[str], **overrides: Any) -> Host:
    (host.root / "bin" / "curl").write_text(WARM_CURL)
    host.fake("answers", "".join(f"{a}\n" for a in answers))
    host.install(render_role_template(
        "app", "usr/local/sbin/app-switch.j2", app_root=str(host.root / "srv"), app_group="app",
        __app_conf_dir=str(host.root / "etc"), app_nginx_upstream_file=str(host.root / "upstream.conf"),
        inventory_hostname="web1", groups={"web": ["web1"]}, ansible_managed="managed",
        nginx_sites=[{"name": "app", "server_names": ["app.test"], "upstream_file": str(host.root / "upstream.conf")}],
        **overrides))
    return host


def curl_calls(host: Host) -> list[str]:
    return [line for line in host.calls().splitlines() if line.startswith("curl ")]


def test_warm_sends_rounds_until_every_worker_answers_fast(host: Host) -> None:
    """The first request of each cold worker is slow (2.5 s); the second round is fast everywhere."""
    warm_host(host, ["200 2.500", "200 0.020", "200 2.600", "200 2.400"])
    out = host.run("warm", "green", "4")
    assert out.returncode == 0 and out.stdout == "warm after 2 rounds, slowest 0.010 s\n", out.stdout + out.stderr
    calls = curl_calls(host)
    assert len(calls) == 8
    assert all("http://127.0.0.1:8002/health/ready" in c and "-H Host: app.test" in c and "-H X-Forwarded-Proto: https" in c
               for c in calls), calls


def test_a_failed_answer_makes_another_round(host: Host) -> None:
    warm_host(host, ["200 0.010", "503 0.010", "200 0.010", "200 0.010"])
    assert host.run("warm", "blue", "4").stdout == "warm after 2 rounds, slowest 0.010 s\n"


def test_warm_gives_up_after_its_time_and_never_fails_the_deploy(host: Host) -> None:
    warm_host(host, ["200 3.000"] * 4000, app_warmup_seconds=1)
    out = host.run("warm", "blue", "4")
    assert out.returncode == 0 and out.stdout.startswith("not warm after "), out.stdout + out.stderr
    assert out.stdout.endswith(" rounds, slowest 3.000 s\n")


def test_warm_needs_a_slot_and_a_request_count(host: Host) -> None:
    assert host.run("warm", "purple", "4").returncode == 2
    assert host.run("warm", "blue").returncode == 2
    assert host.run("warm", "blue", "0").returncode == 2
    assert host.run("warm").returncode == 2


def test_the_helper_does_not_depend_on_facts(tmp_path: Path) -> None:
    """rollback-full.yml installs the helper without facts: what it holds must not change with them
    (the warm-up request count, twice the workers from processor_vcpus, is an argument of `warm`)."""
    kwargs = dict(app_root=str(tmp_path / "srv"), app_group="app", __app_conf_dir=str(tmp_path / "etc"),
                  app_nginx_upstream_file=str(tmp_path / "upstream.conf"), inventory_hostname="web1",
                  nginx_sites=[{"name": "app", "server_names": ["app.test"], "upstream_file": str(tmp_path / "upstream.conf")}],
                  groups={"web": ["web1"]}, ansible_managed="managed")
    without = render_role_template("app", "usr/local/sbin/app-switch.j2", **kwargs)
    with_facts = render_role_template("app", "usr/local/sbin/app-switch.j2", ansible_facts={"processor_vcpus": 8}, **kwargs)
    assert without == with_facts
