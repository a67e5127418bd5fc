"""A site with spa_root (#16 item 8): the built SPA answers /, its hashed assets are looked up in every build
directory and cached (2xx only), and only spa_proxy_paths (and websocket_paths) go to the application. A site
without it proxies everything, as before. nginx -t checks these files in tests/compat; molecule/nginx serves them."""

from __future__ import annotations

import re
from typing import Any

from conftest import render_role_template, role_templar, trusted

SPA = {"name": "shop", "server_names": ["shop.example.test"], "spa_root": "/srv/shop/current/frontend/dist/",
       "spa_asset_roots": ["/srv/shop/slots/blue/frontend/dist", "/srv/shop/slots/green/frontend/dist"],
       "spa_proxy_paths": ["/api/", "/admin/"], "websocket_paths": ["/ws/"]}


def site_conf(site: dict[str, Any]) -> str:
    values: dict[str, Any] = {"__nginx_version": "1.26.3", "nginx_sites": [site], "ansible_managed": "managed"}
    normalised = role_templar("nginx", **values).template(trusted("{{ __nginx_sites[0] }}"))
    return render_role_template("nginx", "etc/nginx/sites-enabled/site.conf.j2", site=normalised, **values)


def locations(text: str) -> list[str]:
    return re.findall(r"^\s*location (.+?) \{", text, re.M)


def test_the_spa_answers_slash_and_the_app_gets_its_paths_only() -> None:
    text = site_conf(SPA)
    # HTTP: the ACME challenge and the redirect; HTTPS: the SPA, its assets, the proxied paths, the internal ones.
    assert locations(text)[2:7] == ["/", "^~ /assets/", "^~ /api/", "^~ /admin/", "^~ /ws/"]
    assert "root /srv/shop/current/frontend/dist;" in text and "try_files $uri $uri/ /index.html;" in text
    assert ("try_files /srv/shop/current/frontend/dist$uri /srv/shop/slots/blue/frontend/dist$uri "
            "/srv/shop/slots/green/frontend/dist$uri =404;") in text
    assert 'add_header Cache-Control "public, max-age=31536000, immutable";' in text  # not always: no cached 404
    assert text.count("proxy_pass http://shop_backend;") == 3


def test_a_site_without_spa_root_proxies_everything() -> None:
    text = site_conf({"name": "api", "server_names": ["api.example.test"]})
    assert "/index.html" not in text and "^~ /assets/" not in text
    assert locations(text)[1:3] == ["/", "/"] and text.count("proxy_pass http://api_backend;") == 1
