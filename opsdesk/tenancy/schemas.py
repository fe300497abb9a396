"""API shapes for customers, contracts, services, assets, contacts and credentials."""

from __future__ import annotations

import ipaddress
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from opsdesk.core.calendar import ServiceWindow
from opsdesk.tenancy.models import (
    AssetType,
    ContactRole,
    ContractStatus,
    PaymentState,
    ServiceKind,
    StaffRole,
)


def check_ip(value: str) -> str:
    if value:
        ipaddress.ip_address(value)  # ValueError names the problem
    return value


def check_url(value: str) -> str:
    if value:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("URL must start with http:// or https:// and name a host")
    return value


IP = Annotated[str, Field(max_length=64), AfterValidator(check_ip)]
URL = Annotated[str, Field(max_length=500), AfterValidator(check_url)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Lang = Literal["zh-CN", "en"]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CustomerIn(BaseModel):
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: Name
    language: Lang = "zh-CN"
    notes: str = ""


class CustomerPatch(BaseModel):
    name: Name | None = None
    language: Lang | None = None
    notes: str | None = None


class CustomerOut(Out):
    id: int
    code: str
    name: str
    language: str
    notes: str
    created_at: datetime


class ContractIn(BaseModel):
    number: Annotated[str, Field(min_length=1, max_length=64)]
    start_date: date
    end_date: date
    auto_renew: bool = True
    total_fee: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] = Decimal("0")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    payment_state: PaymentState = PaymentState.pending
    status: ContractStatus = ContractStatus.active
    notes: str = ""

    @model_validator(mode="after")
    def _period(self) -> ContractIn:
        if self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        return self


class ContractPatch(BaseModel):
    end_date: date | None = None
    auto_renew: bool | None = None
    total_fee: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] | None = None
    payment_state: PaymentState | None = None
    status: ContractStatus | None = None
    notes: str | None = None


class ContractOut(Out):
    id: int
    customer_id: int
    number: str
    start_date: date
    end_date: date
    auto_renew: bool
    total_fee: Decimal
    currency: str
    payment_state: PaymentState
    status: ContractStatus
    notes: str


class ServiceItemIn(BaseModel):
    code: Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[a-z0-9_.-]+$")]
    name_zh: Name
    name_en: Name
    kind: ServiceKind
    window: ServiceWindow
    requirement: str = ""


class ServiceItemOut(Out):
    id: int
    code: str
    name_zh: str
    name_en: str
    kind: ServiceKind
    window: ServiceWindow
    requirement: str


class ContractServiceIn(BaseModel):
    service_item_id: int
    window: ServiceWindow | None = None  # default: the catalogue item's window
    price: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] = Decimal("0")


class ContractServiceOut(Out):
    id: int
    contract_id: int
    service_item_id: int
    window: ServiceWindow
    price: Decimal
    item: ServiceItemOut


class AssetIn(BaseModel):
    type: AssetType
    name: Name
    url: URL = ""
    ip: IP = ""
    notes: str = ""
    tags: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list, max_length=20
    )


class AssetPatch(BaseModel):
    type: AssetType | None = None
    name: Name | None = None
    url: URL | None = None
    ip: IP | None = None
    notes: str | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(None, max_length=20)


class AssetOut(Out):
    id: int
    customer_id: int
    type: AssetType
    name: str
    url: str
    ip: str
    notes: str
    tags: list[str]


class ContactIn(BaseModel):
    role: ContactRole
    name: Annotated[str, Field(min_length=1, max_length=100)]
    phone: Annotated[str, Field(max_length=40, pattern=r"^[0-9+() -]*$")] = ""
    email: Annotated[str, Field(max_length=200, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")] = ""
    wechat: str = ""
    qq: Annotated[str, Field(max_length=40, pattern=r"^[0-9]*$")] = ""
    dingtalk: str = ""


class ContactPatch(BaseModel):
    role: ContactRole | None = None
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    phone: Annotated[str, Field(max_length=40, pattern=r"^[0-9+() -]*$")] | None = None
    email: Annotated[str, Field(max_length=200, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    wechat: str | None = None
    qq: Annotated[str, Field(max_length=40, pattern=r"^[0-9]*$")] | None = None
    dingtalk: str | None = None


class ContactOut(Out):
    id: int
    customer_id: int
    role: ContactRole
    name: str
    phone: str
    email: str
    wechat: str
    qq: str
    dingtalk: str


class CredentialIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    asset_id: int | None = None
    username: str = ""
    secret: Annotated[str, Field(min_length=1, max_length=4096)]
    notes: str = ""


class CredentialPatch(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    username: str | None = None
    secret: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    notes: str | None = None


class CredentialOut(Out):
    """The secret never leaves the server in full."""

    id: int
    customer_id: int
    asset_id: int | None
    name: str
    username: str
    secret: str = "********"
    notes: str

    @model_validator(mode="after")
    def _mask(self) -> CredentialOut:
        self.secret = "********"
        return self


class AssignmentIn(BaseModel):
    user_id: int
    role: StaffRole = StaffRole.engineer


class AssignmentOut(Out):
    id: int
    customer_id: int
    user_id: int
    role: StaffRole


class ImportResult(BaseModel):
    imported: int
