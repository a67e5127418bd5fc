"""Settings aliases for an app's .env: the same value under the names a project reads.

Projects read their settings under names of their own: CELERY_BROKER_URL for the Redis URL,
POSTGRES_SERVER/POSTGRES_PORT/... for parts of the database URL. ``app_env_aliases`` maps such a
name to a variable of .env (``REDIS_URL``) or to one part of a URL-valued one
(``DATABASE_URL.host``); these filters check the map and compute the values.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

DOCUMENTATION = r"""
name: env_aliases
short_description: Values of .env aliases (a variable, or one part of a URL-valued variable)
description:
  - Maps each alias name to the value of another .env variable (C(REDIS_URL)) or to one part of a
    URL-valued one (C(DATABASE_URL.host)). Parts are C(scheme), C(user), C(password), C(host),
    C(port) (the scheme's default port when the URL has none), C(database) (the path without its
    leading slash: the PostgreSQL database name, the Redis database number) and C(netloc).
    User and password are percent-decoded. An empty source gives empty parts.
  - C(env_alias_errors) returns the problems of an alias map as messages naming the alias (empty
    when the map is valid); C(env_aliases) raises on the first.
positional: _input, env
options:
  _input:
    description: The aliases (app_env_aliases), alias name to C(SOURCE) or C(SOURCE.part).
    type: dict
    required: true
  env:
    description: The .env variables the aliases read from.
    type: dict
    required: true
"""

NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
PARTS = ("scheme", "user", "password", "host", "port", "database", "netloc")
DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "redis": 6379, "rediss": 6379,
                 "amqp": 5672, "amqps": 5671, "mysql": 3306, "http": 80, "https": 443}


def _split(reference: Any) -> tuple[str, str]:
    source, _, part = str(reference).partition(".")
    return source, part


def env_alias_errors(aliases: dict[str, Any], env: dict[str, Any]) -> list[str]:
    """Problems of the alias map, each naming the alias: bad name, clash, unknown source or part."""
    if not isinstance(aliases, dict):
        return [f"app_env_aliases must be a mapping of NAME: SOURCE[.part], got {type(aliases).__name__}"]
    errors = []
    for name, reference in aliases.items():
        source, part = _split(reference)
        if not NAME.match(str(name)):
            errors.append(f"app_env_aliases key {name!r} is not an upper-case variable name")
        elif name in env:
            errors.append(f"app_env_aliases {name} is already a variable of .env (set by the role or app_env)")
        if not isinstance(reference, str) or not NAME.match(source):
            errors.append(f"app_env_aliases {name}: {reference!r} must be a .env variable, optionally with .part")
        elif source not in env:
            errors.append(f"app_env_aliases {name}: {source} is not a variable of .env (known: {', '.join(sorted(env))})")
        elif part and part not in PARTS:
            errors.append(f"app_env_aliases {name}: unknown part {part!r} of {source} (parts: {', '.join(PARTS)})")
    return errors


def url_part(url: str, part: str) -> str:
    """One part of a URL as text ('' for a part the URL lacks, and for every part of an empty URL)."""
    if not url:
        return ""
    split = urlsplit(url)
    scheme = split.scheme.split("+", 1)[0]
    values: dict[str, Any] = {
        "scheme": scheme,
        "user": unquote(split.username or ""),
        "password": unquote(split.password or ""),
        "host": split.hostname or "",
        "port": split.port or DEFAULT_PORTS.get(scheme, ""),
        "database": split.path.lstrip("/"),
        "netloc": split.netloc,
    }
    return str(values[part])


def env_aliases(aliases: dict[str, Any], env: dict[str, Any]) -> dict[str, str]:
    """The alias variables with their values, read from env."""
    errors = env_alias_errors(aliases, env)
    if errors:
        raise ValueError(errors[0])
    values = {}
    for name, reference in aliases.items():
        source, part = _split(reference)
        value = "" if env[source] is None else str(env[source])
        values[name] = url_part(value, part) if part else value
    return values


class FilterModule:
    """.env alias filters."""

    def filters(self) -> dict[str, Any]:
        return {"env_aliases": env_aliases, "env_alias_errors": env_alias_errors}
