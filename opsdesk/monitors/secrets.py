"""Monitor credentials at rest: every `SecretStr` field of a check config is stored encrypted.

A stored config (Monitor.config) is the config model's JSON dump with each secret replaced by
``{"$enc": "<Fernet token>"}`` (the project key, opsdesk.core.crypto). This works for any check type
and any depth: the walk follows the validated model, not a list of field names.

- `seal` turns a validated config into what is stored; an unchanged secret keeps its old token,
  so re-saving a definition does not change it (nor bump its revision).
- `reveal` gives back the plain config, for the probe and for agents (over their own channel).
- `masked` is what people and API clients see: each secret as the mask.
- `restore` lets an edit send the mask (or leave a secret out) to keep the stored secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from opsdesk.core import crypto
from opsdesk.monitors.checks import CheckConfig, validate

ENC = "$enc"
MASK = crypto.MASK


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(ENC), str)


def seal(config: CheckConfig, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config as stored: its JSON dump with every secret encrypted."""
    dumped = config.model_dump(mode="json")
    sealed = _seal(config, dumped, dict(previous) if previous else None)
    assert isinstance(sealed, dict)
    return sealed


def _seal(value: Any, dumped: Any, previous: Any) -> Any:
    if isinstance(value, SecretStr):
        plain = value.get_secret_value()
        if not plain:
            return ""  # nothing to hide, and "" reads back as an empty secret
        if is_sealed(previous) and _decrypt(previous[ENC]) == plain:
            return previous
        return {ENC: crypto.box().encrypt(plain)}
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        prev = previous if isinstance(previous, dict) else {}
        for name in type(value).model_fields:
            if name in dumped:
                dumped[name] = _seal(getattr(value, name), dumped[name], prev.get(name))
        return dumped
    if isinstance(value, list | tuple) and isinstance(dumped, list):
        prev_list = previous if isinstance(previous, list) else []
        return [
            _seal(item, dumped[i], prev_list[i] if i < len(prev_list) else None)
            for i, item in enumerate(value)
        ]
    if isinstance(value, dict) and isinstance(dumped, dict):
        prev = previous if isinstance(previous, dict) else {}
        return {k: _seal(value[k], dumped[k], prev.get(k)) if k in value else v for k, v in dumped.items()}
    return dumped


def _decrypt(token: str) -> str | None:
    try:
        return crypto.box().decrypt(token)
    except ValueError:
        return None


class SecretUnreadable(ValueError):
    """A stored secret does not decrypt with this server's key (the key was changed or lost)."""

    def __init__(self) -> None:
        super().__init__("a stored credential cannot be decrypted with this server's key; enter it again")


def reveal(stored: Any) -> Any:
    """The stored config with its secrets decrypted (SecretUnreadable if the key cannot decrypt one)."""
    if is_sealed(stored):
        plain = _decrypt(stored[ENC])
        if plain is None:
            raise SecretUnreadable()
        return plain
    if isinstance(stored, dict):
        return {k: reveal(v) for k, v in stored.items()}
    if isinstance(stored, list):
        return [reveal(v) for v in stored]
    return stored


def masked(stored: Any) -> Any:
    """The stored config as shown to people and API clients: each secret is the mask."""
    if is_sealed(stored):
        return MASK
    if isinstance(stored, dict):
        return {k: masked(v) for k, v in stored.items()}
    if isinstance(stored, list):
        return [masked(v) for v in stored]
    return stored


def restore(sent: Mapping[str, Any], stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """An edited config with the stored secrets put back where the edit sent the mask or left them out.

    A form or client can so resend what it was shown without knowing the secrets; to clear a
    secret, send an empty string.
    """
    out = _restore(dict(sent), dict(stored) if stored else {})
    assert isinstance(out, dict)
    return out


def _restore(sent: Any, stored: Any) -> Any:
    if is_sealed(stored) and (sent is None or sent in (MASK, stored)):
        return reveal(stored)
    if isinstance(sent, dict) and isinstance(stored, dict):
        out = {k: _restore(v, stored.get(k)) for k, v in sent.items()}
        for k, v in stored.items():
            if k not in sent and _holds_secret(v):
                out[k] = _restore(None, v)
        return out
    if isinstance(sent, list) and isinstance(stored, list):
        return [_restore(v, stored[i] if i < len(stored) else None) for i, v in enumerate(sent)]
    return sent


def _holds_secret(stored: Any) -> bool:
    if is_sealed(stored):
        return True
    if isinstance(stored, dict):
        return any(_holds_secret(v) for v in stored.values())
    if isinstance(stored, list):
        return any(_holds_secret(v) for v in stored)
    return False


def masks_left(config: CheckConfig) -> list[str]:
    """Dotted paths of secrets whose value is the mask itself: there was nothing stored to keep."""
    out: list[str] = []
    _find_masks(config, "", out)
    return out


def _find_masks(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, SecretStr):
        if value.get_secret_value() == MASK:
            out.append(path)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _find_masks(getattr(value, name), f"{path}.{name}" if path else name, out)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _find_masks(item, f"{path}.{i}", out)
    elif isinstance(value, dict):
        for k, item in value.items():
            _find_masks(item, f"{path}.{k}", out)


def runnable(type_name: str, stored: Mapping[str, Any]) -> CheckConfig:
    """The validated config a probe or agent runs, secrets decrypted."""
    return validate(type_name, reveal(dict(stored)))
