"""Unit tests for the web_config_flag filter (exporter-toolkit's flag was renamed in 0.7)."""

from __future__ import annotations

import pytest

from conftest import load_plugin

exporters = load_plugin("filter", "exporters")

# The shape of the exporters' --help output (kingpin prints each flag on its own line; Go flag with one dash).
NODE_1_3 = """
      --web.listen-address=":9100"
                                 Address on which to expose metrics and web interface.
      --web.config=""            [EXPERIMENTAL] Path to config yaml file that can enable TLS or authentication.
      --web.telemetry-path="/metrics"
"""
NODE_1_5 = """
      --web.telemetry-path="/metrics"
      --web.config.file=""       [EXPERIMENTAL] Path to configuration file that can enable TLS or authentication.
"""
NGINX_0_11 = """
  -web.listen-address string
        An address to listen on for web interface and telemetry. (default ":9113")
  -web.telemetry-path string
"""


@pytest.mark.parametrize(
    "help_text, flag",
    [
        (NODE_1_3, "--web.config"),
        (NODE_1_5, "--web.config.file"),
        (NGINX_0_11, ""),
        ("", ""),
        ("--web.config-reload  not the flag", ""),
    ],
)
def test_web_config_flag(help_text: str, flag: str) -> None:
    assert exporters.web_config_flag(help_text) == flag


def test_web_config_flags_from_looped_help_results() -> None:
    results = [
        {"item": {"key": "node"}, "stdout": NODE_1_3, "stderr": ""},
        {"item": {"key": "postgres"}, "stdout": "", "stderr": NODE_1_5},  # some exporters print help on stderr
        {"item": {"key": "nginx"}, "stdout": "", "stderr": NGINX_0_11},
        {"item": {"key": "redis"}, "skipped": True},
    ]
    assert exporters.web_config_flags(results) == {"node": "--web.config", "postgres": "--web.config.file"}
