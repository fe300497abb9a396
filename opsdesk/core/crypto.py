"""Secrets at rest: Fernet (AES-128-CBC + HMAC) with a key from configuration.

Database passwords and channel tokens are stored through :class:`EncryptedString`;
they are decrypted only where they are used and shown back masked.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

MASK = "********"


class SecretBox:
    """Encrypts with the first key; decrypts with any (so keys can be rotated)."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            raise ValueError(
                "security.encryption_key: not a valid Fernet key (32 url-safe base64 bytes)"
            ) from exc

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the configured key") from exc


_box: SecretBox | None = None


def configure(keys: list[str]) -> None:
    global _box
    _box = SecretBox(keys)


def box() -> SecretBox:
    if _box is None:
        raise RuntimeError("secret encryption is not configured")
    return _box


def mask(secret: str | None) -> str:
    return "" if not secret else MASK


class EncryptedString(TypeDecorator[str]):
    """A column whose value is stored Fernet-encrypted."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else box().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else box().decrypt(value)
