"""The check type registry: type names to check classes, and validation of check definitions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from opsdesk.monitors.checks.base import Check, CheckConfig

_TYPES: dict[str, type[Check]] = {}

C = TypeVar("C", bound=type[Check])


class CheckDefinitionError(ValueError):
    """A check definition was refused. `errors` lists (field, message) pairs; str() reads as one line."""

    def __init__(self, type_name: str, errors: list[tuple[str, str]]) -> None:
        self.type_name = type_name
        self.errors = errors
        text = "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in errors)
        super().__init__(f"invalid {type_name} check: {text}" if type_name else f"invalid check: {text}")

    def as_dict(self) -> dict[str, str]:
        """Field name to message, for forms and API error bodies ("" holds whole-definition errors)."""
        out: dict[str, str] = {}
        for loc, msg in self.errors:
            out[loc] = f"{out[loc]}; {msg}" if loc in out else msg
        return out


def register(type_name: str) -> Callable[[C], C]:
    """Class decorator: make a check type known under `type_name`."""

    def deco(cls: C) -> C:
        if type_name in _TYPES and _TYPES[type_name] is not cls:
            raise RuntimeError(f"check type {type_name!r} is registered twice")
        cls.type_name = type_name
        _TYPES[type_name] = cls
        return cls

    return deco


def types() -> list[str]:
    """Names of the registered check types, sorted."""
    return sorted(_TYPES)


def get(type_name: str) -> type[Check]:
    """The check class registered as `type_name`; CheckDefinitionError when there is none."""
    try:
        return _TYPES[type_name]
    except KeyError:
        raise CheckDefinitionError(
            "", [("type", f"unknown check type {type_name!r}; known types: {', '.join(types())}")]
        ) from None


def type_of(config: CheckConfig) -> str:
    """The registered type name of a validated configuration."""
    for name, cls in _TYPES.items():
        if type(config) is cls.config_model:
            return name
    raise CheckDefinitionError("", [("type", f"{type(config).__name__} is not a registered check config")])


def validate(type_name: str, data: Mapping[str, Any]) -> CheckConfig:
    """Validate a definition of type `type_name` and return its configuration model.

    Raises CheckDefinitionError naming each offending field.
    """
    cls = get(type_name)
    try:
        return cls.config_model.model_validate(dict(data))
    except ValidationError as exc:
        raise CheckDefinitionError(type_name, _errors(exc)) from None


def parse(definition: Mapping[str, Any]) -> CheckConfig:
    """Validate a definition that names its own type under "type", e.g. {"type": "tcp", ...}."""
    data = dict(definition)
    type_name = data.pop("type", None)
    if not isinstance(type_name, str) or not type_name:
        raise CheckDefinitionError("", [("type", f"missing check type; known types: {', '.join(types())}")])
    return validate(type_name, data)


def _errors(exc: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        elif msg.startswith("Assertion failed, "):
            msg = msg.removeprefix("Assertion failed, ")
        out.append((loc, msg))
    return out
