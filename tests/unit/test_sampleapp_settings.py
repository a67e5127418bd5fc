"""Startup validation of the sample app (tests/fixtures/sampleapp): the pure checks in
app/validation.py always; the pydantic-settings layer when pydantic-settings is installed."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SAMPLEAPP = Path(__file__).resolve().parents[1] / "fixtures" / "sampleapp"
sys.path.insert(0, str(SAMPLEAPP))

from app import validation  # noqa: E402

GOOD_KEY = "k3Jx9vQ2mW8pL5nR7tY1uZ4aB6cD0eF2gH8iJ3kL5mN"
GOOD: dict[str, Any] = {
    "environment": "production",
    "secret_key": GOOD_KEY,
    "debug": False,
    "database_url": "postgresql://app:pw@127.0.0.1:5432/app",
    "redis_url": "redis://:pw@127.0.0.1:6379/0",
    "cors_origins": ["https://www.example.org"],
    "log_level": "INFO",
}
ENV_VARS = ("ENVIRONMENT", "SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "CORS_ORIGINS", "APP_VERSION", "LOG_LEVEL",
            "PROMETHEUS_MULTIPROC_DIR", "CELERY_BEAT_SCHEDULE")


def problems(**changes: Any) -> list[str]:
    """check_settings() of GOOD with some values changed."""
    return validation.check_settings(**{**GOOD, **changes})


def test_good_production_settings_pass() -> None:
    assert problems() == []


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"secret_key": ""}, "SECRET_KEY"),
        ({"secret_key": "s" * 31}, "SECRET_KEY"),
        ({"secret_key": "changeme"}, "SECRET_KEY"),
        ({"secret_key": "SECRET"}, "SECRET_KEY"),
        ({"secret_key": "CHANGE-ME-app-secret-key-for-production-0123456789"}, "SECRET_KEY"),
        ({"secret_key": validation.EXAMPLE_SECRET_KEY}, "SECRET_KEY"),
        ({"debug": True}, "DEBUG"),
        ({"cors_origins": ["*"]}, "CORS_ORIGINS"),
        ({"cors_origins": ["https://a.example.org", "https://*.example.org"]}, "CORS_ORIGINS"),
        ({"cors_origins": ["www.example.org"]}, "CORS_ORIGINS"),
        ({"database_url": ""}, "DATABASE_URL"),
        ({"database_url": "mysql://app:pw@db/app"}, "DATABASE_URL"),
        ({"redis_url": ""}, "REDIS_URL"),
        ({"redis_url": "127.0.0.1:6379"}, "REDIS_URL"),
        ({"environment": "prod"}, "ENVIRONMENT"),
        ({"log_level": "chatty"}, "LOG_LEVEL"),
    ],
)
def test_production_refuses_and_names_the_variable(changes: dict[str, Any], variable: str) -> None:
    found = problems(**changes)
    assert found, f"{changes} was accepted"
    assert all(problem.startswith(variable) for problem in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(secret_key="changeme", debug=True, database_url="", redis_url="", cors_origins=["*"])
    assert {problem.split()[0] for problem in found} == {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "CORS_ORIGINS"}


@pytest.mark.parametrize("environment", ["staging", "development"])
def test_outside_production_short_keys_debug_and_wildcard_origins_are_allowed(environment: str) -> None:
    assert problems(environment=environment, secret_key="dev", debug=True, cors_origins=["*"]) == []


@pytest.mark.parametrize("environment", ["staging", "development"])
def test_urls_and_a_secret_key_are_required_everywhere(environment: str) -> None:
    found = problems(environment=environment, secret_key="", database_url="", redis_url="")
    assert [problem.split()[0] for problem in found] == ["SECRET_KEY", "DATABASE_URL", "REDIS_URL"]


def test_secret_key_length_counts_bytes() -> None:
    assert problems(secret_key="é" * 16 + "k3Jx9vQ2mW8pL5nR") == []  # 48 bytes in UTF-8
    assert problems(secret_key="é" * 15)  # 30 bytes


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:pw@db:5432/app", "postgresql+psycopg://app:pw@db:5432/app"),
        ("postgres://app:pw@db/app", "postgresql+psycopg://app:pw@db/app"),
        ("postgresql+psycopg://app:pw@db/app", "postgresql+psycopg://app:pw@db/app"),
        (" postgresql://app@/app?host=/run/postgresql ", "postgresql+psycopg://app@/app?host=/run/postgresql"),
    ],
)
def test_database_url_uses_psycopg3(url: str, expected: str) -> None:
    assert validation.normalize_database_url(url) == expected


def test_cors_origins_is_a_comma_list() -> None:
    assert validation.split_origins(" https://a.example.org, ,https://b.example.org:8443,") == [
        "https://a.example.org",
        "https://b.example.org:8443",
    ]
    assert validation.split_origins("") == []


def test_multiproc_dir_must_be_a_writable_directory(tmp_path: Path) -> None:
    assert validation.check_multiproc_dir("") == []
    assert validation.check_multiproc_dir(str(tmp_path)) == []
    (tmp_path / "file").touch()
    for path in (tmp_path / "missing", tmp_path / "file"):
        found = validation.check_multiproc_dir(str(path))
        assert len(found) == 1 and found[0].startswith("PROMETHEUS_MULTIPROC_DIR"), found


def test_readme_example_secret_key_is_refused() -> None:
    """The example .env in the fixture's README uses the value the code refuses."""
    match = re.search(r"^SECRET_KEY=(\S+)$", (SAMPLEAPP / "README.md").read_text(), re.MULTILINE)
    assert match, "README.md shows no SECRET_KEY= line"
    assert match.group(1) == validation.EXAMPLE_SECRET_KEY
    assert validation.is_placeholder_secret(match.group(1))


# ---------------------------------------------------------------- pydantic-settings layer


@pytest.fixture
def settings_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """app.settings with a clean environment (skipped when pydantic-settings is missing)."""
    pytest.importorskip("pydantic_settings")
    from app import settings

    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings.load_settings.cache_clear()
    yield settings
    settings.load_settings.cache_clear()
    root.handlers, root.level = handlers, level  # load_settings() points logging at stdout


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """GOOD as environment variables, with changes."""
    env = {
        "SECRET_KEY": GOOD_KEY,
        "DATABASE_URL": "postgresql://app:pw@127.0.0.1:5432/app",
        "REDIS_URL": "redis://:pw@127.0.0.1:6379/0",
        "CORS_ORIGINS": "https://a.example.org,https://b.example.org",
    } | values
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_settings_from_environment(settings_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, ENVIRONMENT="Production")
    settings = settings_module.load_settings()
    assert settings.environment == "production"
    assert settings.sqlalchemy_url == "postgresql+psycopg://app:pw@127.0.0.1:5432/app"
    assert settings.cors_origin_list == ["https://a.example.org", "https://b.example.org"]
    assert settings.debug is False
    assert settings.app_version == (SAMPLEAPP / "VERSION").read_text().strip()


def test_app_version_from_environment_wins(settings_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, APP_VERSION="2.3.4")
    assert settings_module.load_settings().app_version == "2.3.4"


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"SECRET_KEY": "changeme"}, "SECRET_KEY"),
        ({"DEBUG": "true"}, "DEBUG"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"CORS_ORIGINS": "https://a.example.org,*"}, "CORS_ORIGINS"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
    ],
)
def test_bad_environment_exits_4_naming_the_variable(
    settings_module: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], values: dict[str, str], variable: str
) -> None:
    set_env(monkeypatch, **values)
    with pytest.raises(SystemExit) as exited:
        settings_module.load_settings()
    assert exited.value.code == validation.CONFIG_ERROR_EXIT
    assert f"configuration error: {variable}" in capsys.readouterr().out


def test_check_command(settings_module: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    set_env(monkeypatch)
    assert settings_module.main() == 0
    set_env(monkeypatch, SECRET_KEY="secret")
    assert settings_module.main() == validation.CONFIG_ERROR_EXIT
    assert "configuration error: SECRET_KEY" in capsys.readouterr().err
