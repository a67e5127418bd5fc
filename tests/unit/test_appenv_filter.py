"""env_aliases / env_alias_errors: .env values under the names a project reads (#16 item 6)."""

from __future__ import annotations

import pytest

from conftest import load_plugin

appenv = load_plugin("filter", "appenv")

ENV = {
    "DATABASE_URL": "postgresql://app:p%40ss%3Aw0rd@db1.internal:6432/appdb?sslmode=verify-full",
    "REDIS_URL": "redis://:s3cret@127.0.0.1/2",
    "SECRET_KEY": "k" * 40,
    "EMPTY_URL": "",
}

# The settings of tiangolo's full-stack FastAPI template, and Celery's broker name.
FASTAPI_TEMPLATE = {
    "POSTGRES_SERVER": "DATABASE_URL.host",
    "POSTGRES_PORT": "DATABASE_URL.port",
    "POSTGRES_USER": "DATABASE_URL.user",
    "POSTGRES_PASSWORD": "DATABASE_URL.password",
    "POSTGRES_DB": "DATABASE_URL.database",
    "CELERY_BROKER_URL": "REDIS_URL",
}


def test_parts_of_the_database_url_and_a_whole_alias() -> None:
    assert appenv.env_aliases(FASTAPI_TEMPLATE, ENV) == {
        "POSTGRES_SERVER": "db1.internal",
        "POSTGRES_PORT": "6432",
        "POSTGRES_USER": "app",
        "POSTGRES_PASSWORD": "p@ss:w0rd",
        "POSTGRES_DB": "appdb",
        "CELERY_BROKER_URL": "redis://:s3cret@127.0.0.1/2",
    }


def test_default_ports_database_number_and_driver_suffix() -> None:
    env = {"DATABASE_URL": "postgresql+psycopg://u:p@db/x", "REDIS_URL": "rediss://h/0"}
    aliases = {"PGPORT": "DATABASE_URL.port", "PGSCHEME": "DATABASE_URL.scheme", "RPORT": "REDIS_URL.port",
               "RDB": "REDIS_URL.database", "RPASS": "REDIS_URL.password", "RNET": "REDIS_URL.netloc"}
    assert appenv.env_aliases(aliases, env) == {"PGPORT": "5432", "PGSCHEME": "postgresql", "RPORT": "6379",
                                                 "RDB": "0", "RPASS": "", "RNET": "h"}


def test_an_empty_source_gives_empty_parts() -> None:
    assert appenv.env_aliases({"H": "EMPTY_URL.host", "P": "EMPTY_URL.port", "W": "EMPTY_URL"}, ENV) == {
        "H": "", "P": "", "W": ""}


def test_a_valid_map_has_no_errors() -> None:
    assert appenv.env_alias_errors(FASTAPI_TEMPLATE, ENV) == []
    assert appenv.env_alias_errors({}, ENV) == []


@pytest.mark.parametrize(("aliases", "message"), [
    ({"celery_broker": "REDIS_URL"}, "app_env_aliases key 'celery_broker' is not an upper-case variable name"),
    ({"SECRET_KEY": "REDIS_URL"}, "app_env_aliases SECRET_KEY is already a variable of .env"),
    ({"BROKER": "AMQP_URL"}, "app_env_aliases BROKER: AMQP_URL is not a variable of .env (known: DATABASE_URL, "),
    ({"BROKER": "REDIS_URL.hostname"}, "app_env_aliases BROKER: unknown part 'hostname' of REDIS_URL (parts: scheme,"),
    ({"BROKER": "redis_url"}, "app_env_aliases BROKER: 'redis_url' must be a .env variable"),
    ({"BROKER": 5}, "app_env_aliases BROKER: 5 must be a .env variable"),
])
def test_bad_maps_are_named(aliases: dict[str, object], message: str) -> None:
    errors = appenv.env_alias_errors(aliases, ENV)
    assert len(errors) == 1
    assert errors[0].startswith(message)
    with pytest.raises(ValueError, match="app_env_aliases"):
        appenv.env_aliases(aliases, ENV)


def test_a_list_instead_of_a_map_is_named() -> None:
    assert appenv.env_alias_errors(["REDIS_URL"], ENV) == [  # type: ignore[arg-type]
        "app_env_aliases must be a mapping of NAME: SOURCE[.part], got list"]
