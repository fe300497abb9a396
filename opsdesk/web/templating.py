"""Jinja2 templates gathered from each feature folder, with language and CSRF in every page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.templating import Jinja2Templates

from opsdesk.web import csrf, i18n

PACKAGE = Path(__file__).resolve().parent.parent
FEATURES = (
    "web", "accounts", "tenancy", "audit", "monitors", "hosts", "notify", "alerting", "board", "reports",
)  # fmt: skip
LANG_COOKIE = "lang"

templates = Jinja2Templates(
    env=Environment(
        loader=ChoiceLoader([FileSystemLoader(str(PACKAGE / f / "templates")) for f in FEATURES]),
        autoescape=select_autoescape(default=True),
    )
)


def request_language(request: Request) -> str:
    """Explicit choice (cookie) first, then the user's saved language, then the browser's."""
    chosen = i18n.normalise(request.cookies.get(LANG_COOKIE))
    if chosen:
        return chosen
    saved = getattr(request.state, "user_language", None)
    if saved:
        return str(saved)
    return i18n.from_accept_language(request.headers.get("accept-language")) or str(
        request.app.state.runtime.settings.default_language
    )


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = request_language(request)
    settings = request.app.state.runtime.settings
    context.update(
        request=request,
        lang=lang,
        t=i18n.translator(lang),
        principal=getattr(request.state, "principal", None),
        csrf_token=csrf.token_for(request.session),
        emergency=settings.emergency,
        provider_name=settings.provider_name,
    )
    return templates.TemplateResponse(request, name, context, status_code=status_code)
