"""The "Deploy your own project" inventory blocks of README.md are valid input: every variable exists in
the argument specs of the role it belongs to (app_*, nginx_*) with the right type and suboptions, the
aliases name variables of .env, and the shared paths name writable shared directories. A renamed or
retyped variable breaks this test instead of a user's deploy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from conftest import load_plugin

PROJECT = Path(__file__).resolve().parents[2]
appenv = load_plugin("filter", "appenv")
# The variables the app role writes to .env itself (vars/main.yml, __app_env_own), without OTEL_*.
ROLE_ENV = ["ENVIRONMENT", "DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CORS_ORIGINS"]


def readme_blocks() -> list[dict[str, Any]]:
    text = (PROJECT / "README.md").read_text()
    section = text.split("## Deploy your own project", 1)[1].split("\n## ", 1)[0]
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)]


def spec(role: str) -> dict[str, Any]:
    specs = yaml.safe_load((PROJECT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


def test_the_readme_has_the_fastapi_django_and_spa_blocks() -> None:
    names = [block["app_name"] for block in readme_blocks()]
    assert names == ["api", "shop", "app"]


@pytest.mark.parametrize("block", readme_blocks(), ids=lambda b: b["app_name"])
@pytest.mark.parametrize("role", ["app", "nginx"])
def test_each_variable_is_in_the_roles_specs_with_its_type(block: dict[str, Any], role: str) -> None:
    variables = {k: v for k, v in block.items() if k.startswith(f"{role}_")}
    assert variables, f"no {role}_ variables in the block"
    result = ArgumentSpecValidator(spec(role)).validate(variables)
    assert not result.error_messages, result.error_messages


@pytest.mark.parametrize("block", readme_blocks(), ids=lambda b: b["app_name"])
def test_aliases_and_shared_paths_are_consistent(block: dict[str, Any]) -> None:
    env = dict.fromkeys(ROLE_ENV, "") | block.get("app_env", {})
    assert appenv.env_alias_errors(block.get("app_env_aliases", {}), env) == []
    writable = block.get("app_writable_shared_dirs", ["media"])
    assert all(item["shared"] in writable for item in block.get("app_shared_paths", []))
    upstreams = [site.get("upstream_file") for site in block["nginx_sites"]]
    assert f"/etc/nginx/upstreams/{block['app_name']}.conf" in upstreams, "app_nginx_upstream_file's default is not a site's"


# What describes the Django project itself (not its site, archive or secrets): molecule/stack deploys these
# exactly as README.md's block has them.
PROJECT_SHAPE = ["app_web_command", "app_build_commands", "app_release_commands", "app_processes", "app_env", "app_env_aliases"]


def test_the_django_block_is_what_molecule_stack_deploys() -> None:
    django = next(block for block in readme_blocks() if block["app_name"] == "shop")
    # molecule.yml escapes a literal $ as $$ (molecule substitutes ${VAR} from its environment).
    stack = yaml.safe_load((PROJECT / "molecule" / "stack" / "molecule.yml").read_text().replace("$$", "$"))
    web = stack["provisioner"]["inventory"]["group_vars"]["web"]
    assert {key: web.get(key) for key in PROJECT_SHAPE} == {key: django[key] for key in PROJECT_SHAPE}
    assert "${APP_PORT}" in web["app_web_command"]
