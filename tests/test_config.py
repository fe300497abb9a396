"""Configuration: defaults, the TOML file, environment overrides, one-line errors, masking, keys."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from opsdesk.cli import app
from opsdesk.core.config import KEYS_FILE, ConfigError, load_settings

OPSDESK = Path(sys.executable).with_name("opsdesk")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No OPSDESK_* variable of the machine running the tests leaks in; relative paths land in tmp."""
    for name in list(os.environ):
        if name.startswith("OPSDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed `opsdesk` script, as an operator runs it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPSDESK_")}
    return subprocess.run(
        [str(OPSDESK), *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    s = load_settings()
    assert s.data_dir == tmp_path / "var"
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8080)
    assert s.default_language == "zh-CN"
    assert s.database_url == f"sqlite:///{tmp_path / 'var' / 'opsdesk.db'}"
    assert s.public_url == "http://127.0.0.1:8080"
    assert s.emergency.phone == "400-000-0000"


def test_toml_file_values(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "opsdesk.toml",
        f'data_dir = "{tmp_path / "data"}"\ndefault_language = "en"\n'
        '[server]\nhost = "0.0.0.0"\nport = 9001\n[emergency]\nphone = "400-123-4567"\n',
    )
    s = load_settings(cfg)
    assert s.data_dir == tmp_path / "data"
    assert (s.server.host, s.server.port) == ("0.0.0.0", 9001)
    assert s.default_language == "en"
    assert s.emergency.phone == "400-123-4567"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "opsdesk.toml", "[server]\nport = 9002\n")
    monkeypatch.setenv("OPSDESK_CONFIG", str(cfg))
    assert load_settings().server.port == 9002


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "opsdesk.toml", '[server]\nhost = "0.0.0.0"\nport = 9001\n')
    monkeypatch.setenv("OPSDESK_SERVER__PORT", "9100")
    s = load_settings(cfg)
    assert s.server.port == 9100
    assert s.server.host == "0.0.0.0"  # keys the environment does not name keep the file's value


def test_environment_override_seen_by_config_show(tmp_path: Path) -> None:
    cfg = write(tmp_path / "opsdesk.toml", "[server]\nport = 9001\n")
    result = run_cli(
        "--config", str(cfg), "config", "show", env={"OPSDESK_SERVER__PORT": "9100"}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "port = 9100" in result.stdout
    assert "port = 9001" not in result.stdout


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[server]\nport = "abc"\n', "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nprot = 8080\n", "server.prot: unknown key"),
        ("colour = 1\n", "colour: unknown key"),
        ('[security]\nlogin_max_failures = "many"\n', "security.login_max_failures"),
        ("[server\nport = 8080\n", "line 1"),  # broken syntax: the position is what can be named
        ("[server]\nport = 80 80\n", "line 2"),
    ],
)
def test_broken_config_is_one_line_and_exit_2(tmp_path: Path, toml: str, expected: str) -> None:
    cfg = write(tmp_path / "bad.toml", toml)
    result = run_cli("--config", str(cfg), "config", "show", cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "bad.toml" in lines[0]
    assert result.stdout == ""


def test_broken_environment_value_is_one_line(tmp_path: Path) -> None:
    result = run_cli("config", "show", env={"OPSDESK_SERVER__PORT": "abc"}, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2
    assert len(lines) == 1 and "server.port" in lines[0], result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.toml"), "db", "current", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: config file {tmp_path / 'nope.toml'}: not found"


def test_load_settings_error_names_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "bad.toml", "[server]\nport = 0\n")
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(cfg)


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    db_password = "Pg-pa55word-8c1f"
    secret_key = "plain-signing-key-0f9e8d7c6b5a"
    encryption_key = Fernet.generate_key().decode()
    cfg = write(
        tmp_path / "opsdesk.toml",
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[database]\nurl = "postgresql+psycopg://ops:{db_password}@db.example.com:5432/opsdesk"\n'
        f'[security]\nsecret_key = "{secret_key}"\nencryption_key = "{encryption_key}"\n',
    )
    result = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert result.exit_code == 0, result.output
    for plain in (db_password, secret_key, encryption_key):
        assert plain not in result.output
    assert "ops:***@db.example.com:5432/opsdesk" in result.output
    assert 'secret_key = "********"' in result.output
    assert 'encryption_key = "********"' in result.output
    assert f'data_dir = "{tmp_path / "data"}"' in result.output
    assert "[server]" in result.output and "port = 8080" in result.output


def test_keys_file_generated_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = write(tmp_path / "opsdesk.toml", f'data_dir = "{data}"\n')
    first = load_settings(cfg)
    keys = data / KEYS_FILE
    assert keys.exists()
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    Fernet(first.secret("encryption_key").encode())  # a usable Fernet key, not just any string
    second = load_settings(cfg)
    assert second.secret("secret_key") == first.secret("secret_key")
    assert second.secret("encryption_key") == first.secret("encryption_key")
    assert first.secret("secret_key") in keys.read_text()


def test_keys_from_config_are_not_replaced(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = Fernet.generate_key().decode()
    cfg = write(
        tmp_path / "opsdesk.toml",
        f'data_dir = "{data}"\n[security]\nsecret_key = "mine-0123456789"\nencryption_key = "{key}"\n',
    )
    s = load_settings(cfg)
    assert (s.secret("secret_key"), s.secret("encryption_key")) == ("mine-0123456789", key)
    assert not (data / KEYS_FILE).exists()
