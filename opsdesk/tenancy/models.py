"""Customers, contracts, the service catalogue, assets, contacts and staff assignments (R-TEN-*)."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, Enum, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from opsdesk.core.calendar import ServiceWindow
from opsdesk.core.crypto import EncryptedString
from opsdesk.core.db import Base, Timestamped


def str_enum(cls: type[enum.Enum], length: int = 24) -> Enum:
    """Enums stored as their value in a VARCHAR, the same on SQLite and PostgreSQL."""
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class TenantOwned:
    """Rows that belong to one customer. Tenant scoping filters every query on this column."""

    @declared_attr
    def customer_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)


class Customer(Timestamped, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    notes: Mapped[str] = mapped_column(Text, default="")

    contracts: Mapped[list[Contract]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    assets: Mapped[list[Asset]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    contacts: Mapped[list[Contact]] = relationship(back_populates="customer", cascade="all, delete-orphan")


class PaymentState(enum.StrEnum):
    paid = "paid"
    pending = "pending"
    overdue = "overdue"


class ContractStatus(enum.StrEnum):
    active = "active"
    suspended = "suspended"  # e.g. for non-payment (R-TEN-2)
    ended = "ended"


class Contract(TenantOwned, Timestamped, Base):
    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    total_fee: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    payment_state: Mapped[PaymentState] = mapped_column(str_enum(PaymentState), default=PaymentState.pending)
    status: Mapped[ContractStatus] = mapped_column(str_enum(ContractStatus), default=ContractStatus.active)
    notes: Mapped[str] = mapped_column(Text, default="")

    customer: Mapped[Customer] = relationship(back_populates="contracts")
    services: Mapped[list[ContractService]] = relationship(
        back_populates="contract", cascade="all, delete-orphan"
    )


class ServiceKind(enum.StrEnum):
    base = "base"  # included, no extra charge
    value_added = "value_added"  # bought separately, billed per item


class ServiceItem(Timestamped, Base):
    """An entry of the provider's service catalogue; shared by all customers."""

    __tablename__ = "service_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ServiceKind] = mapped_column(str_enum(ServiceKind))
    window: Mapped[ServiceWindow] = mapped_column(str_enum(ServiceWindow))
    requirement: Mapped[str] = mapped_column(String(64), default="")  # e.g. "R-MON-1..8"


class ContractService(TenantOwned, Base):
    """A catalogue item chosen for a contract, with its own window and price."""

    __tablename__ = "contract_services"
    __table_args__ = (UniqueConstraint("contract_id", "service_item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    service_item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"), index=True)
    window: Mapped[ServiceWindow] = mapped_column(str_enum(ServiceWindow))
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))

    contract: Mapped[Contract] = relationship(back_populates="services")
    item: Mapped[ServiceItem] = relationship()


class AssetType(enum.StrEnum):
    server = "server"
    website = "website"
    database = "database"
    cloud_resource = "cloud_resource"
    other = "other"


class Asset(TenantOwned, Timestamped, Base):
    """A maintained asset in the contract's scope (R-TEN-3)."""

    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("customer_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[AssetType] = mapped_column(str_enum(AssetType))
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)

    customer: Mapped[Customer] = relationship(back_populates="assets")


class ContactRole(enum.StrEnum):
    primary = "primary"
    secondary = "secondary"


class Contact(TenantOwned, Timestamped, Base):
    """A customer's designated contact (R-TEN-6): the only source of formal requests."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[ContactRole] = mapped_column(str_enum(ContactRole))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    wechat: Mapped[str] = mapped_column(String(100), default="")
    qq: Mapped[str] = mapped_column(String(40), default="")
    dingtalk: Mapped[str] = mapped_column(String(100), default="")

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class StaffRole(enum.StrEnum):
    project_lead = "project_lead"
    engineer = "engineer"


class StaffAssignment(TenantOwned, Base):
    """A provider staff member assigned to a customer."""

    __tablename__ = "staff_assignments"
    __table_args__ = (UniqueConstraint("customer_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole), default=StaffRole.engineer)


class Credential(TenantOwned, Timestamped, Base):
    """A password or token the provider keeps for a customer's asset; encrypted at rest."""

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    username: Mapped[str] = mapped_column(String(100), default="")
    secret: Mapped[str] = mapped_column(EncryptedString())
    notes: Mapped[str] = mapped_column(Text, default="")
