"""The default auth rate limits of prodready.webstack.nginx match the auth endpoints of real projects
under any prefix (#16 item 9: the old patterns missed /api/v1/... and Django's), and nothing else.
nginx matches them with PCRE, case-insensitively ("~*"); these patterns mean the same in Python's re."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = yaml.safe_load((PROJECT / "roles" / "nginx" / "defaults" / "main.yml").read_text())["nginx_rate_limits"]


def zones(path: str) -> set[str]:
    return {limit["name"] for limit in LIMITS if re.search(limit["pattern"], path, re.IGNORECASE)}


@pytest.mark.parametrize(("path", "zone"), [
    # FastAPI (tiangolo's full-stack template)
    ("/api/v1/login/access-token", "login"),
    ("/api/v1/users/signup", "register"),
    ("/api/v1/password-recovery/user@example.com", "password_reset"),
    ("/api/v1/reset-password/", "password_reset"),
    # Django, django-allauth, dj-rest-auth, simplejwt, djoser
    ("/admin/login/", "login"),
    ("/accounts/login/", "login"),
    ("/accounts/signup/", "register"),
    ("/accounts/password/reset/", "password_reset"),
    ("/dj-rest-auth/login/", "login"),
    ("/dj-rest-auth/registration/", "register"),
    ("/api/auth/jwt/login/", "login"),
    ("/api/token/", "login"),
    ("/api/token/refresh/", "token_refresh"),
    ("/auth/jwt/create/", "login"),
    ("/auth/jwt/refresh", "token_refresh"),
    # the paths of the old defaults, and case variants
    ("/login", "login"),
    ("/api/auth/register", "register"),
    ("/API/V1/LOGIN/access-token", "login"),
])
def test_auth_endpoints_count_against_their_zone(path: str, zone: str) -> None:
    assert zones(path) == {zone}


@pytest.mark.parametrize("path", ["/", "/api/v1/items/", "/static/js/login.js", "/blog/login-tips", "/api/v1/tokens/",
                                  "/admin/", "/api/token/verify/", "/media/signup.png", "/health/ready"])
def test_other_paths_are_not_limited(path: str) -> None:
    assert zones(path) == set()
