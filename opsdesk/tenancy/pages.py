"""Console pages for customers and what belongs to them: contracts, services, assets, contacts,
credentials, assigned staff and customer logins.

Every write goes through the principal's ORM session, so tenant scoping, permission checks and
the audit log apply exactly as in the REST API; form input is validated by the API's schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from opsdesk.accounts.models import User
from opsdesk.accounts.principal import STAFF_ROLES, Role
from opsdesk.accounts.schemas import CustomerUserIn
from opsdesk.accounts.service import UsernameTaken, create_user
from opsdesk.core.calendar import ServiceWindow
from opsdesk.tenancy.api import apply
from opsdesk.tenancy.models import (
    Asset,
    AssetType,
    Contact,
    ContactRole,
    Contract,
    ContractService,
    ContractStatus,
    Credential,
    Customer,
    PaymentState,
    ServiceItem,
    ServiceKind,
    StaffAssignment,
    StaffRole,
)
from opsdesk.tenancy.schemas import (
    AssetIn,
    AssignmentIn,
    ContactIn,
    ContractIn,
    ContractPatch,
    ContractServiceIn,
    CredentialIn,
    CredentialPatch,
    CustomerIn,
    CustomerPatch,
)
from opsdesk.web import csrf, i18n
from opsdesk.web.deps import Ctx, Staff
from opsdesk.web.templating import render, request_language

router = APIRouter(include_in_schema=False)
M = TypeVar("M", bound=BaseModel)
FLASH = "flash"
NO_STRIP = frozenset({"password", "secret"})
# Choices offered by select boxes; their captions are the i18n keys enum.<kind>.<value>.
ENUMS: dict[str, list[str]] = {
    "asset_type": [e.value for e in AssetType],
    "contact_role": [e.value for e in ContactRole],
    "payment": [e.value for e in PaymentState],
    "status": [e.value for e in ContractStatus],
    "window": [e.value for e in ServiceWindow],
    "kind": [e.value for e in ServiceKind],
    "staff_role": [e.value for e in StaffRole],
    "role": [r.value for r in Role if r in STAFF_ROLES],
    "language": ["zh-CN", "en"],
}

# -- forms: typed values, errors next to the fields, rules shared with the API ---------------


@dataclass
class Form:
    """One HTML form: what the user typed and, after a failed submit, what is wrong with it."""

    id: str
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class Forms(dict[str, Form]):
    """The forms of one page; any not prepared explicitly starts empty."""

    def __missing__(self, key: str) -> Form:
        return Form(key)


class FieldError(Exception):
    """A rule the schema cannot check alone (a catalogue item or asset that does not fit)."""

    def __init__(self, name: str, key: str) -> None:
        super().__init__(name)
        self.name, self.key = name, key


async def posted(request: Request) -> dict[str, str]:
    form = await request.form()
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key != csrf.FORM_FIELD:
            out[key] = value if key in NO_STRIP else value.strip()
    return out


Posted = Annotated[dict[str, str], Depends(posted)]

# pydantic error type -> message key under form.err
ERROR_KEYS = {
    "missing": "required",
    "string_too_short": "required",
    "string_too_long": "too_long",
    "string_pattern_mismatch": "format",
    "date_parsing": "date",
    "date_from_datetime_parsing": "date",
    "date_from_datetime_inexact": "date",
    "date_type": "date",
    "decimal_parsing": "number",
    "decimal_type": "number",
    "decimal_max_digits": "number",
    "decimal_max_places": "number",
    "decimal_whole_digits": "number",
    "greater_than_equal": "negative",
    "literal_error": "choice",
    "enum": "choice",
    "int_parsing": "choice",
    "int_type": "choice",
    "too_long": "too_many",
}
# value_error raised by our own validators: IP and URL checks, and the contract period (no field)
VALUE_ERROR_KEYS = {"ip": "ip", "url": "url", "": "period"}


def translator_for(request: Request) -> i18n.Translate:
    return i18n.translator(request_language(request))


def error_text(err: ErrorDetails, name: str, t: i18n.Translate) -> str:
    kind = err["type"]
    key = VALUE_ERROR_KEYS.get(name) if kind == "value_error" else ERROR_KEYS.get(kind)
    if key == "format" and t(f"form.err.format_{name}") != f"form.err.format_{name}":
        key = f"format_{name}"
    return t(f"form.err.{key}") if key else err["msg"]


def validate(request: Request, schema: type[M], data: Mapping[str, Any]) -> tuple[M | None, dict[str, str]]:
    try:
        return schema.model_validate(dict(data)), {}
    except ValidationError as exc:
        t = translator_for(request)
        errors: dict[str, str] = {}
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            # A model-level error (the contract period) belongs next to the end date.
            errors.setdefault(name or "end_date", error_text(err, name, t))
        return None, errors


def cleaned(
    data: Mapping[str, str], optional: tuple[str, ...] = (), checkboxes: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Form strings as the schema expects them: blank optional fields absent, ticks as booleans."""
    out: dict[str, Any] = dict(data)
    for key in optional:
        if not out.get(key):
            out.pop(key, None)
    for key in checkboxes:
        out[key] = bool(data.get(key))
    if "tags" in out:
        out["tags"] = [tag.strip() for tag in out["tags"].split(",") if tag.strip()]
    return out


def form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, date | Decimal | int):
        return str(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def values_of(obj: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {name: form_value(getattr(obj, name)) for name in names}


def save(c: Ctx, obj: Any = None) -> bool:
    """Flush now, so a duplicate shows on the form and a refused write fails before the redirect."""
    if obj is not None:
        c.db.add(obj)
    try:
        c.db.flush()
    except IntegrityError:
        c.db.rollback()
        return False
    return True


def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    return render(request, name, status, flash=request.session.pop(FLASH, None), enums=ENUMS, **context)


def done(request: Request, url: str, message: str = "flash.saved") -> Response:
    request.session[FLASH] = message
    return RedirectResponse(url, status_code=303)


# -- the customer list ----------------------------------------------------------------------


def current_contract(contracts: list[Contract]) -> Contract | None:
    """The contract running today, else the one that ends last."""
    today = date.today()
    running = [k for k in contracts if k.start_date <= today <= k.end_date]
    pool = running or contracts
    return max(pool, key=lambda k: k.end_date) if pool else None


def counts(c: Ctx, model: type[Asset] | type[Contact]) -> dict[int, int]:
    rows = c.db.execute(select(model.customer_id, func.count()).group_by(model.customer_id))
    return {int(cid): int(n) for cid, n in rows}


def customers_page(request: Request, c: Ctx, failed: Form | None = None) -> Response:
    customers = list(c.db.scalars(select(Customer).order_by(Customer.name)))
    by_customer: dict[int, list[Contract]] = {}
    for contract in c.db.scalars(select(Contract)):
        by_customer.setdefault(contract.customer_id, []).append(contract)
    assets, contacts = counts(c, Asset), counts(c, Contact)
    rows = [
        {
            "customer": cu,
            "assets": assets.get(cu.id, 0),
            "contacts": contacts.get(cu.id, 0),
            "contract": current_contract(by_customer.get(cu.id, [])),
        }
        for cu in customers
    ]
    forms = Forms({"customer_new": failed or Form("customer_new", {"language": "zh-CN"})})
    return page(request, "customers.html", 422 if failed else 200, rows=rows, forms=forms)


@router.get("/customers")
def list_customers(request: Request, c: Staff) -> Response:
    return customers_page(request, c)


@router.post("/customers")
def create_customer(request: Request, c: Staff, data: Posted) -> Response:
    c.require_admin()
    body, errors = validate(request, CustomerIn, data)
    if body is None:
        return customers_page(request, c, Form("customer_new", data, errors))
    customer = Customer(**body.model_dump())
    if not save(c, customer):
        taken = {"code": translator_for(request)("form.err.taken")}
        return customers_page(request, c, Form("customer_new", data, taken))
    return done(request, f"/customers/{customer.id}", "flash.created")


# -- one customer -----------------------------------------------------------------------------


def owned(c: Ctx, model: type[Any], customer_id: int, *order: Any) -> list[Any]:
    return list(c.db.scalars(select(model).where(model.customer_id == customer_id).order_by(*order)))


def sections(c: Ctx, customer: Customer) -> dict[str, Any]:
    cid = customer.id
    staff = {u.id: u for u in c.db.scalars(select(User).where(User.customer_id.is_(None)))}
    assignments = owned(c, StaffAssignment, cid, StaffAssignment.role, StaffAssignment.id)
    assigned_ids = {a.user_id for a in assignments}
    return {
        "contracts": owned(c, Contract, cid, Contract.start_date.desc()),
        "assets": owned(c, Asset, cid, Asset.name),
        "contacts": owned(c, Contact, cid, Contact.role, Contact.name),
        "credentials": owned(c, Credential, cid, Credential.name),
        "assignments": assignments,
        "staff": staff,
        "assignable": [
            u for u in staff.values() if u.role is not Role.admin and u.is_active and u.id not in assigned_ids
        ],
        "users": owned(c, User, cid, User.username),
        "catalogue": list(c.db.scalars(select(ServiceItem).order_by(ServiceItem.kind, ServiceItem.id))),
    }


def default_forms(customer: Customer, contacts: list[Contact]) -> Forms:
    has_primary = any(k.role is ContactRole.primary for k in contacts)
    return Forms(
        {
            "customer_edit": Form("customer_edit", values_of(customer, ("name", "language", "notes"))),
            "contract_new": Form(
                "contract_new", {"currency": "CNY", "auto_renew": "true", "payment_state": "pending"}
            ),
            "asset_new": Form("asset_new", {"type": "server"}),
            "contact_new": Form("contact_new", {"role": "secondary" if has_primary else "primary"}),
            "assign": Form("assign", {"role": StaffRole.engineer.value}),
            "user_new": Form("user_new", {"language": customer.language}),
        }
    )


def detail(request: Request, c: Ctx, customer: Customer, failed: Form | None = None) -> Response:
    parts = sections(c, customer)
    forms = default_forms(customer, parts["contacts"])
    if failed is not None:
        forms[failed.id] = failed
    status = 422 if failed else 200
    return page(request, "customer.html", status, customer=customer, forms=forms, **parts)


@router.get("/customers/{customer_id}")
def customer_page(request: Request, c: Staff, customer_id: int) -> Response:
    return detail(request, c, c.get(Customer, customer_id))


@router.post("/customers/{customer_id}/edit")
def edit_customer(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    c.require_write()
    body, errors = validate(request, CustomerPatch, data)
    if body is None:
        return detail(request, c, customer, Form("customer_edit", data, errors))
    apply(customer, body)
    save(c)
    return done(request, f"/customers/{customer.id}")


@dataclass(frozen=True)
class NewRow:
    form_id: str
    anchor: str  # the page section to return to
    unique: str  # the field a duplicate is reported on


def create_in(
    request: Request,
    c: Ctx,
    customer: Customer,
    new: NewRow,
    schema: type[M],
    data: dict[str, Any],
    build: Callable[[M], Any],
    typed: Mapping[str, str],
) -> Response:
    """Validate, build and store one new row of `customer`; on failure show the form again."""
    c.require_write()
    body, errors = validate(request, schema, data)
    if body is None:
        return detail(request, c, customer, Form(new.form_id, dict(typed), errors))
    t = translator_for(request)
    try:
        obj = build(body)
    except FieldError as exc:
        errors = {exc.name: t(f"form.err.{exc.key}")}
        return detail(request, c, customer, Form(new.form_id, dict(typed), errors))
    if not save(c, obj):
        errors = {new.unique: t("form.err.taken")}
        return detail(request, c, customer, Form(new.form_id, dict(typed), errors))
    return done(request, f"/customers/{customer.id}#{new.anchor}", "flash.created")


@router.post("/customers/{customer_id}/contracts")
def add_contract(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    fields = cleaned(data, optional=("start_date", "end_date", "total_fee"), checkboxes=("auto_renew",))
    return create_in(
        request, c, customer, NewRow("contract_new", "contracts", "number"), ContractIn, fields,
        lambda body: Contract(customer_id=customer.id, **body.model_dump()), data,
    )  # fmt: skip


@router.post("/customers/{customer_id}/assets")
def add_asset(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    return create_in(
        request, c, customer, NewRow("asset_new", "assets", "name"), AssetIn, cleaned(data),
        lambda body: Asset(customer_id=customer.id, **body.model_dump()), data,
    )  # fmt: skip


@router.post("/customers/{customer_id}/contacts")
def add_contact(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    return create_in(
        request, c, customer, NewRow("contact_new", "contacts", "name"), ContactIn, cleaned(data),
        lambda body: Contact(customer_id=customer.id, **body.model_dump()), data,
    )  # fmt: skip


@router.post("/customers/{customer_id}/credentials")
def add_credential(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)

    def build(body: CredentialIn) -> Credential:
        if body.asset_id is not None and c.get(Asset, body.asset_id).customer_id != customer.id:
            raise FieldError("asset_id", "choice")
        return Credential(customer_id=customer.id, **body.model_dump())

    typed = {k: v for k, v in data.items() if k != "secret"}  # never echo a secret into the page
    fields = cleaned(data, optional=("asset_id",))
    new = NewRow("credential_new", "credentials", "name")
    return create_in(request, c, customer, new, CredentialIn, fields, build, typed)


@router.post("/contracts/{contract_id}/services")
def add_service(request: Request, c: Staff, contract_id: int, data: Posted) -> Response:
    contract = c.get(Contract, contract_id)

    def build(body: ContractServiceIn) -> ContractService:
        item = c.db.get(ServiceItem, body.service_item_id)
        if item is None:
            raise FieldError("service_item_id", "choice")
        return ContractService(
            customer_id=contract.customer_id, contract_id=contract.id, service_item_id=item.id,
            window=body.window or item.window, price=body.price,
        )  # fmt: skip

    fields = cleaned(data, optional=("window", "price", "service_item_id"))
    new = NewRow(f"service_{contract.id}", "contracts", "service_item_id")
    return create_in(request, c, contract.customer, new, ContractServiceIn, fields, build, data)


@router.post("/customers/{customer_id}/staff")
def assign_staff(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    c.require_admin()

    def build(body: AssignmentIn) -> StaffAssignment:
        user = c.db.get(User, body.user_id)
        if user is None or user.customer_id is not None or user.role is Role.admin:
            raise FieldError("user_id", "choice")
        return StaffAssignment(customer_id=customer.id, user_id=user.id, role=body.role)

    fields = cleaned(data, optional=("user_id",))
    new = NewRow("assign", "staff", "user_id")
    return create_in(request, c, customer, new, AssignmentIn, fields, build, data)


@router.post("/customers/{customer_id}/users")
def add_customer_user(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    c.require_write()
    typed = {k: v for k, v in data.items() if k != "password"}
    body, errors = validate(request, CustomerUserIn, data)
    if body is None:
        return detail(request, c, customer, Form("user_new", typed, errors))
    fields = body.model_dump(exclude={"username", "password"})
    try:
        create_user(c.db, body.username, body.password, Role.customer, customer.id, **fields)
    except UsernameTaken:
        taken = {"username": translator_for(request)("form.err.taken")}
        return detail(request, c, customer, Form("user_new", typed, taken))
    return done(request, f"/customers/{customer.id}#users", "flash.created")


# -- edit pages: one small form per row --------------------------------------------------------


@dataclass(frozen=True)
class Editable:
    model: type[Any]
    schema: type[BaseModel]
    fields: tuple[str, ...]
    prepare: Callable[[dict[str, str]], dict[str, Any]]
    kind: str  # template macro and i18n key
    anchor: str


EDIT = {
    "assets": Editable(
        Asset, AssetIn, ("type", "name", "url", "ip", "notes", "tags"), cleaned, "asset", "assets"
    ),
    "contacts": Editable(
        Contact, ContactIn, ("role", "name", "phone", "email", "wechat", "qq", "dingtalk"), cleaned,
        "contact", "contacts",
    ),
    "contracts": Editable(
        Contract, ContractPatch, ("end_date", "auto_renew", "total_fee", "payment_state", "status", "notes"),
        lambda d: cleaned(d, optional=("end_date", "total_fee"), checkboxes=("auto_renew",)),
        "contract", "contracts",
    ),
    "credentials": Editable(
        Credential, CredentialPatch, ("name", "username", "notes"),
        lambda d: cleaned(d, optional=("secret",)), "credential", "credentials",
    ),
}  # fmt: skip


def edit_page(request: Request, c: Ctx, spec: Editable, obj: Any, form: Form, status: int = 200) -> Response:
    customer = c.get(Customer, obj.customer_id)
    return page(request, "edit.html", status, spec=spec, obj=obj, f=form, customer=customer)


def show_edit(request: Request, c: Ctx, plural: str, obj_id: int) -> Response:
    spec = EDIT[plural]
    obj = c.get(spec.model, obj_id)
    c.require_write()
    return edit_page(request, c, spec, obj, Form(spec.kind, values_of(obj, spec.fields)))


def bad_period(obj: Any, body: BaseModel) -> bool:
    """ContractPatch cannot see the start date; the API checks the period the same way."""
    if not isinstance(obj, Contract):
        return False
    end = getattr(body, "end_date", None) or obj.end_date
    return bool(end <= obj.start_date)


def submit_edit(request: Request, c: Ctx, plural: str, obj_id: int, data: dict[str, str]) -> Response:
    spec = EDIT[plural]
    obj = c.get(spec.model, obj_id)
    c.require_write()
    typed = {k: v for k, v in data.items() if k != "secret"}  # never echo a secret into the page
    body, errors = validate(request, spec.schema, spec.prepare(data))
    t = translator_for(request)
    if body is not None and bad_period(obj, body):
        body, errors = None, {"end_date": t("form.err.period")}
    if body is None:
        return edit_page(request, c, spec, obj, Form(spec.kind, typed, errors), 422)
    apply(obj, body)
    if not save(c):
        obj = c.get(spec.model, obj_id)
        return edit_page(request, c, spec, obj, Form(spec.kind, typed, {"name": t("form.err.taken")}), 422)
    return done(request, f"/customers/{obj.customer_id}#{spec.anchor}")


def delete_row(request: Request, c: Ctx, model: type[Any], obj_id: int, anchor: str) -> Response:
    obj = c.get(model, obj_id)
    c.require_admin() if isinstance(obj, StaffAssignment) else c.require_write()
    customer_id = obj.customer_id
    c.db.delete(obj)
    save(c)
    return done(request, f"/customers/{customer_id}#{anchor}", "flash.deleted")


@router.get("/assets/{asset_id}/edit")
def edit_asset_form(request: Request, c: Staff, asset_id: int) -> Response:
    return show_edit(request, c, "assets", asset_id)


@router.post("/assets/{asset_id}/edit")
def edit_asset(request: Request, c: Staff, asset_id: int, data: Posted) -> Response:
    return submit_edit(request, c, "assets", asset_id, data)


@router.post("/assets/{asset_id}/delete")
def delete_asset(request: Request, c: Staff, asset_id: int) -> Response:
    return delete_row(request, c, Asset, asset_id, "assets")


@router.get("/contacts/{contact_id}/edit")
def edit_contact_form(request: Request, c: Staff, contact_id: int) -> Response:
    return show_edit(request, c, "contacts", contact_id)


@router.post("/contacts/{contact_id}/edit")
def edit_contact(request: Request, c: Staff, contact_id: int, data: Posted) -> Response:
    return submit_edit(request, c, "contacts", contact_id, data)


@router.post("/contacts/{contact_id}/delete")
def delete_contact(request: Request, c: Staff, contact_id: int) -> Response:
    return delete_row(request, c, Contact, contact_id, "contacts")


@router.get("/contracts/{contract_id}/edit")
def edit_contract_form(request: Request, c: Staff, contract_id: int) -> Response:
    return show_edit(request, c, "contracts", contract_id)


@router.post("/contracts/{contract_id}/edit")
def edit_contract(request: Request, c: Staff, contract_id: int, data: Posted) -> Response:
    return submit_edit(request, c, "contracts", contract_id, data)


@router.get("/credentials/{credential_id}/edit")
def edit_credential_form(request: Request, c: Staff, credential_id: int) -> Response:
    return show_edit(request, c, "credentials", credential_id)


@router.post("/credentials/{credential_id}/edit")
def edit_credential(request: Request, c: Staff, credential_id: int, data: Posted) -> Response:
    return submit_edit(request, c, "credentials", credential_id, data)


@router.post("/credentials/{credential_id}/delete")
def delete_credential(request: Request, c: Staff, credential_id: int) -> Response:
    return delete_row(request, c, Credential, credential_id, "credentials")


@router.post("/contract-services/{contract_service_id}/delete")
def remove_service(request: Request, c: Staff, contract_service_id: int) -> Response:
    return delete_row(request, c, ContractService, contract_service_id, "contracts")


@router.post("/staff-assignments/{assignment_id}/delete")
def unassign_staff(request: Request, c: Staff, assignment_id: int) -> Response:
    return delete_row(request, c, StaffAssignment, assignment_id, "staff")
