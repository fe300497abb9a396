"""A refused setting, named by field and message key, so the API and the pages word it alike."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from opsdesk.web import i18n


class FieldProblem(Exception):
    def __init__(self, field: str, key: str, **params: Any) -> None:
        super().__init__(f"{field}: {key}")
        self.field, self.key, self.params = field, key, params

    def text(self, t: i18n.Translate) -> str:
        return t(self.key, **self.params)

    def http(self) -> HTTPException:
        """The API's answer: 422 with the English message after the field name."""
        return HTTPException(422, f"{self.field}: {self.text(i18n.translator('en'))}")
