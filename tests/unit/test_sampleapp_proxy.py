"""The sample app's Django-style proxy checks (tests/fixtures/sampleapp/app/proxy.py): allowed hosts
(400) and the redirect of requests that did not reach the proxy over HTTPS (301), keyed on
X-Forwarded-Proto like Django's SECURE_PROXY_SSL_HEADER."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

SAMPLEAPP = Path(__file__).resolve().parents[1] / "fixtures" / "sampleapp"
sys.path.insert(0, str(SAMPLEAPP))

from app.proxy import ProxyChecks, host_allowed  # noqa: E402


async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def call(app: ProxyChecks, headers: dict[str, str], path: str = "/health/ready", query: str = "") -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "path": path, "query_string": query.encode(),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    start, body = sent[0], sent[1]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body["body"]


@pytest.mark.parametrize(("host", "allowed", "ok"), [
    ("app.test", ["app.test"], True),
    ("APP.test:8001", ["app.test"], True),
    ("127.0.0.1:8001", ["app.test"], False),
    ("www.example.com", [".example.com"], True),
    ("example.com", [".example.com"], True),
    ("badexample.com", [".example.com"], False),
    ("anything", ["*"], True),
    ("", ["app.test"], False),
])
def test_host_allowed_as_django_does(host: str, allowed: list[str], ok: bool) -> None:
    assert host_allowed(host, allowed) is ok


def test_off_by_default() -> None:
    assert call(ProxyChecks(inner), {"host": "127.0.0.1:8001"})[0] == 200


def test_a_host_outside_allowed_hosts_is_400() -> None:
    status, _, body = call(ProxyChecks(inner, allowed_hosts=["app.test"]), {"host": "127.0.0.1:8001"})
    assert status == 400 and b"ALLOWED_HOSTS" in body


def test_plain_http_is_redirected_to_https() -> None:
    app = ProxyChecks(inner, allowed_hosts=["app.test"], ssl_redirect=True)
    status, headers, _ = call(app, {"host": "app.test"}, query="a=1")
    assert status == 301 and headers["location"] == "https://app.test/health/ready?a=1"
    assert call(app, {"host": "app.test", "x-forwarded-proto": "http"})[0] == 301


def test_what_nginx_forwards_passes() -> None:
    app = ProxyChecks(inner, allowed_hosts=["app.test"], ssl_redirect=True)
    assert call(app, {"host": "app.test", "x-forwarded-proto": "https"}) == (200, {}, b"ok")
