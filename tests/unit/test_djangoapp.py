"""The Django sample app (tests/fixtures/djangoapp), installed from its uv.lock into a scratch venv and
checked through Django's test client: it refuses what a production Django project refuses (a Host
outside ALLOWED_HOSTS, plain HTTP), so the role's probes must send the site's name and
X-Forwarded-Proto; collectstatic writes a manifest whitenoise serves; `check --deploy` passes.
Needs uv and the package index (the first run downloads the locked wheels; later runs use uv's cache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
FIXTURE = PROJECT / "tests" / "fixtures" / "djangoapp"
SECRET = "q8Vw2zR5tY1uZ4aB6cD0eF2gH4jK6mN8pQ0sT2vX4yA6bC8dE0fG2hJ4kL6mN8pR0"
# Runs inside the app's venv: requests through Django's test client, printed as JSON.
CLIENT = """
import json, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
def get(path, host, **headers):
    response = client.get(path, HTTP_HOST=host, **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return {"status": response.status_code, "location": response.get("Location", ""), "body": body.decode(errors="replace")[:300]}
https = {"HTTP_X_FORWARDED_PROTO": "https"}
from django.templatetags.static import static
css = static("shop/app.css")
print(json.dumps({
    "live": get("/health/live", "shop.test", **https),
    "ready": get("/health/ready", "shop.test", **https),
    "plain_http": get("/health/live", "shop.test"),
    "loopback_host": get("/health/live", "127.0.0.1:8001", **https),
    "css_url": css,
    "css": get(css, "shop.test", **https),
}))
"""


def uv() -> str:
    path = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if path is None:
        pytest.skip("uv is not installed (scripts/setup-venv installs it)")
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The fixture copied as a release, synced from uv.lock, migrated (sqlite) and collectstatic'ed."""
    root = tmp_path_factory.mktemp("djangoapp") / "release"
    shutil.copytree(FIXTURE, root)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(root / ".venv"), "UV_PYTHON_DOWNLOADS": "never",
           "SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")}
    done = subprocess.run([uv(), "sync", "--quiet", "--frozen", "--no-dev", "--no-editable", "--python", sys.executable],
                          cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"uv sync failed (no package index?): {done.stderr[-500:]}")
    app_env = {**os.environ, "SECRET_KEY": SECRET, "DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}",
               "ALLOWED_HOSTS": "shop.test", "DJANGO_SETTINGS_MODULE": "shop.settings"}
    app_env.pop("CELERY_BROKER_URL", None)
    for command in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        manage(root, app_env, *command)
    return root, app_env


def manage(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(root / ".venv" / "bin" / "python"), "manage.py", *args], cwd=root, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_lock_installs_the_project_itself(release: tuple[Path, dict[str, str]]) -> None:
    root, env = release
    out = subprocess.run([str(root / ".venv" / "bin" / "python"), "-c", "import shop, importlib.metadata as m; "
                          "print(shop.__file__, m.version('shop'))"], cwd="/", env=env, capture_output=True, text=True, check=True)
    assert "site-packages/shop/__init__.py" in out.stdout and out.stdout.strip().endswith(" 1.0.0")


def test_production_checks_pass(release: tuple[Path, dict[str, str]]) -> None:
    root, env = release
    manage(root, env, "check", "--deploy", "--fail-level", "WARNING")


def test_requests_as_a_production_django_project_answers_them(release: tuple[Path, dict[str, str]]) -> None:
    root, env = release
    done = subprocess.run([str(root / ".venv" / "bin" / "python"), "-c", CLIENT], cwd=root, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["live"]["status"] == 200
    assert seen["ready"]["status"] == 200 and json.loads(seen["ready"]["body"])["checks"] == {"database": "ok", "broker": "not configured"}
    # What a probe without the site's name or X-Forwarded-Proto gets (#16 item 5).
    assert seen["plain_http"]["status"] == 301 and seen["plain_http"]["location"] == "https://shop.test/health/live"
    assert seen["loopback_host"]["status"] == 400
    # collectstatic wrote the manifest: a hashed name, served by whitenoise.
    assert seen["css_url"].startswith("/static/shop/app.") and seen["css_url"] != "/static/shop/app.css"
    assert seen["css"]["status"] == 200 and "font-family" in seen["css"]["body"]


def test_settings_refuse_a_missing_secret(release: tuple[Path, dict[str, str]]) -> None:
    root, env = release
    done = subprocess.run([str(root / ".venv" / "bin" / "python"), "manage.py", "check"], cwd=root,
                          env={**env, "SECRET_KEY": "short"}, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "SECRET_KEY (or DJANGO_SECRET_KEY) must be set" in done.stderr
