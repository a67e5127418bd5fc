"""scripts/vault-init: generated secrets land encrypted, strong, and are never overwritten."""

from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, get_file_vault_secret
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "vault-init"
ANSIBLE_VAULT = Path(sys.executable).parent / "ansible-vault"
ENV = "unittest"


def load_script() -> ModuleType:
    """Import scripts/vault-init (no .py suffix) as a module."""
    loader = importlib.machinery.SourceFileLoader("vault_init", str(SCRIPT))
    spec = importlib.util.spec_from_loader("vault_init", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vault_init"] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


vault_init = load_script()
NAMES: tuple[str, ...] = vault_init.SECRET_NAMES


class Paths:
    """The vault file and its password file of one test."""

    def __init__(self, tmp_path: Path) -> None:
        self.vault = tmp_path / "inventory" / "group_vars" / "all" / "vault.yml"
        self.password = tmp_path / "secrets" / f"{ENV}.pass"

    def args(self, *extra: str) -> list[str]:
        return [ENV, "--output", str(self.vault), "--vault-id-file", str(self.password), *extra]


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path)


def run(paths: Paths, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    """Run vault-init in this process; returns its exit code and stdout + stderr."""
    rc = vault_init.main(paths.args(*extra))
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def vault_cli(*args: str) -> str:
    """ansible-vault itself (not the script's code path) must read what the script wrote."""
    result = subprocess.run([str(ANSIBLE_VAULT), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def decrypt(paths: Paths) -> dict[str, str]:
    data = yaml.safe_load(vault_cli("view", "--vault-id", f"{ENV}@{paths.password}", str(paths.vault)))
    assert isinstance(data, dict)
    return data


def encrypt_text(paths: Paths, text: str) -> None:
    """Write `text` encrypted with the test's password (as an operator's ansible-vault would)."""
    secret = get_file_vault_secret(filename=str(paths.password), vault_id=ENV, loader=DataLoader())
    secret.load()
    paths.vault.parent.mkdir(parents=True, exist_ok=True)
    paths.vault.write_bytes(VaultLib([(ENV, secret)]).encrypt(text.encode(), secret=secret, vault_id=ENV))


def test_first_run_writes_every_secret_encrypted(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(paths, capsys)
    assert rc == 0, out
    raw = paths.vault.read_text()
    assert raw.startswith(f"$ANSIBLE_VAULT;1.2;AES256;{ENV}\n"), raw[:80]
    values = decrypt(paths)
    assert set(NAMES) <= set(values)
    for name in NAMES:
        assert values[name] not in raw
        assert values[name] not in out, f"{name}'s value was printed"
        assert re.search(rf"^\s+added\s+{name}$", out, re.MULTILINE), out


def test_files_are_private(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(paths, capsys)
    assert rc == 0, out
    assert stat.S_IMODE(paths.vault.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.password.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.password.parent.stat().st_mode) == 0o700
    assert len(paths.password.read_text().strip()) >= 43


def test_values_are_strong(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(paths, capsys)
    assert rc == 0, out
    values = decrypt(paths)
    assert re.fullmatch(r"[0-9a-f]{64}", values["vault_app_secret_key"])
    key = values["vault_app_encryption_key"]
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"
    for name in NAMES:
        if "password" in name:
            # 32 random bytes; URL-safe so DATABASE_URL/REDIS_URL need no quoting.
            assert re.fullmatch(r"[A-Za-z0-9_-]{43}", values[name]), name
    assert len({values[name] for name in NAMES}) == len(NAMES), "two secrets share a value"


def test_second_run_keeps_every_value_and_the_file(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(paths, capsys)[0] == 0
    before = paths.vault.read_bytes()
    values = decrypt(paths)
    rc, out = run(paths, capsys)
    assert rc == 0, out
    assert paths.vault.read_bytes() == before, "an unchanged vault was re-encrypted (noisy git diff)"
    assert decrypt(paths) == values
    assert "unchanged" in out
    for name in NAMES:
        assert re.search(rf"^\s+kept\s+{name}$", out, re.MULTILINE), out


def test_adds_only_the_missing_key(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(paths, capsys)[0] == 0
    values = decrypt(paths)
    kept = {name: value for name, value in values.items() if name != "vault_redis_password"}
    kept["smtp_password"] = "set-by-hand-0123456789"
    encrypt_text(paths, "---\n# an operator's comment\n" + yaml.safe_dump(kept))
    rc, out = run(paths, capsys)
    assert rc == 0, out
    after = decrypt(paths)
    assert re.search(r"^\s+added\s+vault_redis_password$", out, re.MULTILINE), out
    assert after["vault_redis_password"] != values["vault_redis_password"]
    assert {name: after[name] for name in kept} == kept
    assert "# an operator's comment" in vault_cli("view", "--vault-id", f"{ENV}@{paths.password}", str(paths.vault))
    assert "1 other variable(s): smtp_password" in out


def test_rotate_replaces_only_that_key(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(paths, capsys)[0] == 0
    values = decrypt(paths)
    rc, out = run(paths, capsys, "--rotate", "vault_app_secret_key")
    assert rc == 0, out
    after = decrypt(paths)
    assert after["vault_app_secret_key"] != values["vault_app_secret_key"]
    assert re.fullmatch(r"[0-9a-f]{64}", after["vault_app_secret_key"])
    assert {k: v for k, v in after.items() if k != "vault_app_secret_key"} == \
        {k: v for k, v in values.items() if k != "vault_app_secret_key"}
    assert re.search(r"^\s+rotated\s+vault_app_secret_key$", out, re.MULTILINE), out


def test_plain_example_file_is_encrypted_and_placeholders_replaced(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    """An operator who copied vault.example.yml: placeholders of generated keys are replaced, the rest kept."""
    paths.vault.parent.mkdir(parents=True)
    paths.vault.write_text((ROOT / "vault.example.yml").read_text())
    example = yaml.safe_load(paths.vault.read_text())
    rc, out = run(paths, capsys)
    assert rc == 0, out
    assert paths.vault.read_text().startswith("$ANSIBLE_VAULT;")
    after = decrypt(paths)
    for name in NAMES:
        assert not after[name].upper().startswith("CHANGE-ME"), name
    for name, value in example.items():
        if name not in NAMES:
            assert after[name] == value, f"{name} (not generated) was changed"


def test_wrong_password_changes_nothing(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(paths, capsys)[0] == 0
    before = paths.vault.read_bytes()
    paths.password.write_text("another-password-entirely\n")
    rc, out = run(paths, capsys)
    assert rc == 1
    assert "cannot decrypt" in out and str(paths.vault) in out
    assert paths.vault.read_bytes() == before


def test_missing_password_file_of_an_existing_vault_is_refused(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(paths, capsys)[0] == 0
    paths.password.unlink()
    rc, out = run(paths, capsys)
    assert rc == 1
    assert "password file" in out and "missing" in out
    assert not paths.password.exists(), "a new password was invented for an existing vault"


def test_bad_environment_name_is_refused(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    rc = vault_init.main(["Prod!", "--output", str(paths.vault), "--vault-id-file", str(paths.password)])
    assert rc == 1
    assert "environment 'Prod!'" in capsys.readouterr().err
    assert not paths.vault.exists()


def test_command_line(paths: Paths) -> None:
    """The script as operators run it (a subprocess), password file from the environment variable."""
    result = subprocess.run([sys.executable, str(SCRIPT), ENV, "--output", str(paths.vault)], capture_output=True,
                            text=True, check=False, env={"PATH": "/usr/bin:/bin", "PRODREADY_VAULT_PASSWORD_FILE": str(paths.password)})
    assert result.returncode == 0, result.stderr
    assert paths.password.exists()
    assert set(NAMES) <= set(decrypt(paths))
