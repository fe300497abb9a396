"""API shapes for users and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from opsdesk.accounts.principal import Role, Scope

Username = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[str, Field(min_length=8, max_length=256)]
Lang = Literal["zh-CN", "en"]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    email: str
    phone: str
    role: Role
    customer_id: int | None
    language: str
    is_active: bool


class StaffIn(BaseModel):
    username: Username
    password: Password
    role: Literal[Role.admin, Role.project_lead, Role.engineer] = Role.engineer
    display_name: str = ""
    email: str = ""
    phone: str = ""
    language: Lang = "zh-CN"


class CustomerUserIn(BaseModel):
    username: Username
    password: Password
    display_name: str = ""
    email: str = ""
    phone: str = ""
    language: Lang = "zh-CN"


class UserPatch(BaseModel):
    display_name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: Lang | None = None
    is_active: bool | None = None
    password: Password | None = None


class MePatch(BaseModel):
    language: Lang | None = None
    display_name: str | None = None
    current_password: str | None = None
    new_password: Password | None = None


class TokenIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.read])
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str  # shown once


class Me(UserOut):
    assigned_customers: list[int]
