"""needrestart_services: the units needrestart's batch mode lists."""

from __future__ import annotations

from conftest import load_plugin

needrestart_services = load_plugin("filter", "needrestart").needrestart_services

# As needrestart 3.6 prints it on Debian 12 (-b -l -r l) after an OpenSSL upgrade.
OUTPUT = """NEEDRESTART-VER: 3.6
NEEDRESTART-KCUR: 6.1.0-18-amd64
NEEDRESTART-KEXP: 6.1.0-18-amd64
NEEDRESTART-KSTA: 1
NEEDRESTART-SVC: ssh.service
NEEDRESTART-SVC: cron.service
NEEDRESTART-SVC: postgresql@16-main.service
NEEDRESTART-SVC: systemd-manager
NEEDRESTART-SVC: cron.service
"""


def test_lists_every_unit_once_in_order() -> None:
    assert needrestart_services(OUTPUT) == ["ssh.service", "cron.service", "postgresql@16-main.service", "systemd-manager"]


def test_nothing_listed_when_no_service_maps_a_replaced_library() -> None:
    assert needrestart_services("NEEDRESTART-VER: 3.6\nNEEDRESTART-KSTA: 1\n") == []
    assert needrestart_services("") == []


def test_restartable_regexes_match_the_whole_unit_name() -> None:
    assert needrestart_services(OUTPUT, [r"cron\.service", r"ssh\.service"]) == ["ssh.service", "cron.service"]
    # 'postgresql' alone does not match postgresql@16-main.service: the match is anchored.
    assert needrestart_services(OUTPUT, ["postgresql"]) == []
    assert needrestart_services(OUTPUT, []) == []
