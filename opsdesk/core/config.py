"""Configuration: a TOML file, then OPSDESK_* environment variables, over documented defaults.

Environment variables name nested keys with a double underscore:
``OPSDESK_SERVER__PORT=9000`` sets ``[server] port``.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

Language = Literal["zh-CN", "en"]
KEYS_FILE = "keys.toml"


class ConfigError(Exception):
    """A broken configuration; the message is one line naming the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not silently ignored


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    base_url: str = ""  # links in messages; derived from host and port when empty
    access_log: bool = True  # one line per request; agents alone make thousands a minute


class DatabaseSettings(Section):
    url: SecretStr | None = None  # default: SQLite file in data_dir
    echo: bool = False


class SecuritySettings(Section):
    secret_key: SecretStr | None = None  # signs sessions and links; generated into data_dir when empty
    encryption_key: SecretStr | None = None  # Fernet key for secrets at rest; generated when empty
    session_max_age: int = Field(12 * 3600, ge=60)
    cookie_secure: bool = False
    login_max_failures: int = Field(5, ge=1)
    login_window_seconds: int = Field(900, ge=1)


class MetricsSettings(Section):
    url: str = ""  # default: sqlite:///<data_dir>/metrics.db
    retention_raw_days: int = Field(15, ge=1)
    retention_5m_days: int = Field(90, ge=1)
    retention_1h_days: int = Field(730, ge=1)


class IngestSettings(Section):
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)  # compressed, as sent
    max_decompressed_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_samples: int = Field(20_000, ge=1)
    max_labels: int = Field(16, ge=1)
    max_future_seconds: int = Field(300, ge=0)  # host clock ahead of ours
    max_past_seconds: int = Field(7 * 86400, ge=60)  # buffered data older than this is refused
    down_after_intervals: int = Field(3, ge=1)  # no data for this many intervals: host down


class EmergencyContact(Section):
    """The provider's 7x24 monitoring command centre (R-CON-1), shown to every customer."""

    phone: str = "400-000-0000"
    email: str = "noc@example.com"
    person: str = "Command centre duty lead"


class MailInSettings(Section):
    """The SMTP listener where customers' designated contacts report incidents by e-mail (R-INC-4).

    Put it behind the provider's mail server (which checks SPF/DKIM) and forward the NOC
    address to it; port 0 leaves it off.
    """

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    max_bytes: int = Field(1024 * 1024, ge=1024)  # a larger message is refused at DATA


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSDESK_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Path("var")
    default_language: Language = "zh-CN"
    provider_name: str = "opsdesk"
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    security: SecuritySettings = SecuritySettings()
    emergency: EmergencyContact = EmergencyContact()
    metrics: MetricsSettings = MetricsSettings()
    ingest: IngestSettings = IngestSettings()
    mail_in: MailInSettings = MailInSettings()

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file (init kwargs carry the file's content).
        return (env_settings, init_settings)

    @property
    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'opsdesk.db'}"

    @property
    def metrics_url(self) -> str:
        return self.metrics.url or f"sqlite:///{self.data_dir / 'metrics.db'}"

    @property
    def public_url(self) -> str:
        return self.server.base_url.rstrip("/") or f"http://{self.server.host}:{self.server.port}"

    def secret(self, name: Literal["secret_key", "encryption_key"]) -> str:
        value = getattr(self.security, name)
        if value is None:
            raise ConfigError(f"security.{name}: not set (run opsdesk with a data directory or set it)")
        return str(value.get_secret_value())


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path}: not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc


def _format_validation_error(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(root)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{source}: {key}: {msg}"


def _ensure_keys(data: dict[str, Any], data_dir: Path) -> None:
    """Fill missing signing and encryption keys from data_dir/keys.toml, creating it once.

    A fresh install then works with zero set-up, and the keys survive restarts.
    """
    sec = data.setdefault("security", {})
    if sec.get("secret_key") and sec.get("encryption_key"):
        return
    from cryptography.fernet import Fernet

    keys_path = data_dir / KEYS_FILE
    stored: dict[str, Any] = _read_toml(keys_path) if keys_path.exists() else {}
    if not stored.get("secret_key") or not stored.get("encryption_key"):
        stored.setdefault("secret_key", secrets.token_urlsafe(48))
        stored.setdefault("encryption_key", Fernet.generate_key().decode())
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(keys_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# generated by opsdesk; keep secret, back up with the data directory\n")
            for k in ("secret_key", "encryption_key"):
                fh.write(f'{k} = "{stored[k]}"\n')
    for k in ("secret_key", "encryption_key"):
        env_set = os.environ.get(f"OPSDESK_SECURITY__{k.upper()}")
        if not sec.get(k) and not env_set:
            sec[k] = stored[k]


def load_settings(config_file: Path | str | None = None, *, generate_keys: bool = True) -> Settings:
    """Load and validate; raise ConfigError with one line naming the broken key."""
    path = config_file or os.environ.get("OPSDESK_CONFIG")
    data: dict[str, Any] = _read_toml(Path(path)) if path else {}
    source = f"config file {path}" if path else "configuration"
    try:
        settings = Settings(**data)
        if generate_keys:
            _ensure_keys(data, settings.data_dir)
            settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from exc
    except SettingsError as exc:  # e.g. OPSDESK_SERVER=x where a section is expected
        raise ConfigError(f"environment: {exc}") from exc
    return settings


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective configuration with every secret masked, for `opsdesk config show`."""
    out: dict[str, Any] = settings.model_dump(mode="json")
    out["data_dir"] = str(settings.data_dir)
    for key in ("secret_key", "encryption_key"):
        if out["security"].get(key):
            out["security"][key] = "********"
    if settings.database.url is not None:
        out["database"]["url"] = mask_url(settings.database.url.get_secret_value())
    else:
        out["database"]["url"] = settings.database_url
    return out


def mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "********"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
