"""Login, logout, language switch and the account page (own password and API tokens)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from opsdesk.accounts import service, throttle, tokens
from opsdesk.accounts.models import ApiToken, User
from opsdesk.accounts.passwords import hash_password, verify_password
from opsdesk.accounts.principal import Scope
from opsdesk.web import i18n
from opsdesk.web.deps import USER_KEY, AnyUser, OptionalDB, runtime
from opsdesk.web.guard import self_service
from opsdesk.web.templating import LANG_COOKIE, render

router = APIRouter(include_in_schema=False)
YEAR = 365 * 24 * 3600


def _safe_next(target: str | None) -> str:
    # Only local paths, so the login form cannot be used to redirect elsewhere.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/login")
def login_form(request: Request, db: OptionalDB, next: str | None = None) -> Response:
    if request.state.principal is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
@self_service
def login(
    request: Request,
    db: OptionalDB,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    rt = runtime(request)
    address = request.client.host if request.client else "unknown"
    t = i18n.translator(i18n.normalise(request.cookies.get(LANG_COOKIE)) or rt.settings.default_language)
    figures = request.app.state.figures
    try:
        user = service.login(db, rt.settings, username.strip(), password, address)
    except throttle.Throttled as exc:
        figures.logins.labels("throttled").inc()
        return render(
            request,
            "login.html",
            429,
            next=_safe_next(next),
            error=t("login.throttled", seconds=exc.retry_after),
        )
    except service.LoginFailed:
        figures.logins.labels("failed").inc()
        return render(request, "login.html", 401, next=_safe_next(next), error=t("login.failed"))
    figures.logins.labels("ok").inc()
    request.session.clear()  # a fresh session (and CSRF token) at every login
    request.session[USER_KEY] = user.id
    response = RedirectResponse(_safe_next(next), status_code=303)
    if not request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, user.language, max_age=YEAR, samesite="lax")
    return response


@router.post("/logout")
@self_service
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.post("/lang")
@self_service
def switch_language(
    request: Request, db: OptionalDB, lang: Annotated[str, Form()], next: Annotated[str, Form()] = "/"
) -> Response:
    chosen = i18n.normalise(lang) or "en"
    principal = request.state.principal
    if principal is not None and principal.user_id is not None:
        user = db.get(User, principal.user_id)
        if user is not None and user.language != chosen:
            user.language = chosen  # remembered for the next login, on any browser
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, chosen, max_age=YEAR, samesite="lax")
    return response


@router.get("/account")
def account(request: Request, c: AnyUser) -> Response:
    rows = c.db.scalars(select(ApiToken).where(ApiToken.user_id == c.principal.user_id).order_by(ApiToken.id))
    return render(request, "account.html", tokens=list(rows), new_token=None, message=None)


@router.post("/account/password")
@self_service
def change_password(
    request: Request,
    c: AnyUser,
    current_password: Annotated[str, Form()],
    new_password: Annotated[str, Form()],
) -> Response:
    user = c.get(User, c.principal.user_id)
    t = i18n.translator(i18n.normalise(request.cookies.get(LANG_COOKIE)) or user.language)
    message: dict[str, Any]
    if not verify_password(user.password_hash, current_password):
        message = {"kind": "error", "text": t("account.wrong_password")}
    elif len(new_password) < 8:
        message = {"kind": "error", "text": t("account.short_password")}
    else:
        user.password_hash = hash_password(new_password)
        message = {"kind": "ok", "text": t("account.password_changed")}
    rows = c.db.scalars(select(ApiToken).where(ApiToken.user_id == c.principal.user_id).order_by(ApiToken.id))
    status = 200 if message["kind"] == "ok" else 422
    return render(request, "account.html", status, tokens=list(rows), new_token=None, message=message)


@router.post("/account/tokens")
@self_service
def create_token(
    request: Request, c: AnyUser, name: Annotated[str, Form()], write: Annotated[bool, Form()] = False
) -> Response:
    scopes = [Scope.read, Scope.write] if write and c.principal.is_staff else [Scope.read]
    user = c.get(User, c.principal.user_id)
    _row, plain = tokens.issue(c.db, user, name.strip()[:100] or "token", scopes)
    rows = c.db.scalars(select(ApiToken).where(ApiToken.user_id == c.principal.user_id).order_by(ApiToken.id))
    # Shown once, in this response; only its hash is kept.
    return render(request, "account.html", 201, tokens=list(rows), new_token=plain, message=None)


@router.post("/account/tokens/{token_id}/revoke")
@self_service
def revoke_token(c: AnyUser, token_id: int) -> Response:
    tokens.revoke(c.get(ApiToken, token_id))
    return RedirectResponse("/account", status_code=303)
