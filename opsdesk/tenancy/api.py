"""REST API for customers and what belongs to them. Tenant scoping happens in the session."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel
from sqlalchemy import select

from opsdesk.tenancy import asset_import
from opsdesk.tenancy.models import (
    Asset,
    Contact,
    Contract,
    ContractService,
    Credential,
    Customer,
    ServiceItem,
    StaffAssignment,
)
from opsdesk.tenancy.schemas import (
    AssetIn,
    AssetOut,
    AssetPatch,
    AssignmentIn,
    AssignmentOut,
    ContactIn,
    ContactOut,
    ContactPatch,
    ContractIn,
    ContractOut,
    ContractPatch,
    ContractServiceIn,
    ContractServiceOut,
    CredentialIn,
    CredentialOut,
    CredentialPatch,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    ImportResult,
    ServiceItemIn,
    ServiceItemOut,
)
from opsdesk.web.deps import AnyUser, Staff

router = APIRouter(prefix="/api/v1", tags=["tenancy"])


def apply(obj: Any, patch: BaseModel) -> Any:
    for key, value in patch.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(obj, key, value)
    return obj


def created(c: AnyUser, obj: Any) -> Any:
    c.db.add(obj)
    c.db.flush()
    return obj


# -- customers ---------------------------------------------------------------------------


@router.get("/customers", response_model=list[CustomerOut])
def list_customers(c: AnyUser) -> Any:
    return c.db.scalars(select(Customer).order_by(Customer.name)).all()


@router.post("/customers", response_model=CustomerOut, status_code=status.HTTP_201_CREATED)
def create_customer(c: AnyUser, body: CustomerIn) -> Any:
    c.require_admin()
    return created(c, Customer(**body.model_dump()))


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(c: AnyUser, customer_id: int) -> Any:
    return c.get(Customer, customer_id)


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(c: AnyUser, customer_id: int, body: CustomerPatch) -> Any:
    customer = c.get(Customer, customer_id)
    c.require_write()
    return apply(customer, body)


@router.delete("/customers/{customer_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_customer(c: AnyUser, customer_id: int) -> None:
    customer = c.get(Customer, customer_id)
    c.require_admin()
    c.db.delete(customer)


# -- contracts and their services --------------------------------------------------------


@router.get("/customers/{customer_id}/contracts", response_model=list[ContractOut])
def list_contracts(c: AnyUser, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return c.db.scalars(
        select(Contract).where(Contract.customer_id == customer_id).order_by(Contract.start_date)
    )


@router.post("/customers/{customer_id}/contracts", response_model=ContractOut, status_code=201)
def create_contract(c: AnyUser, customer_id: int, body: ContractIn) -> Any:
    c.get(Customer, customer_id)
    c.require_write()
    return created(c, Contract(customer_id=customer_id, **body.model_dump()))


@router.get("/contracts/{contract_id}", response_model=ContractOut)
def get_contract(c: AnyUser, contract_id: int) -> Any:
    return c.get(Contract, contract_id)


@router.patch("/contracts/{contract_id}", response_model=ContractOut)
def update_contract(c: AnyUser, contract_id: int, body: ContractPatch) -> Any:
    contract = c.get(Contract, contract_id)
    c.require_write()
    apply(contract, body)
    if contract.end_date <= contract.start_date:
        raise HTTPException(422, "end_date must be after start_date")
    return contract


@router.delete("/contracts/{contract_id}", status_code=204)
def delete_contract(c: AnyUser, contract_id: int) -> None:
    contract = c.get(Contract, contract_id)
    c.require_write()
    c.db.delete(contract)


@router.get("/contracts/{contract_id}/services", response_model=list[ContractServiceOut])
def list_contract_services(c: AnyUser, contract_id: int) -> Any:
    c.get(Contract, contract_id)
    return c.db.scalars(select(ContractService).where(ContractService.contract_id == contract_id))


@router.post("/contracts/{contract_id}/services", response_model=ContractServiceOut, status_code=201)
def add_contract_service(c: AnyUser, contract_id: int, body: ContractServiceIn) -> Any:
    contract = c.get(Contract, contract_id)
    c.require_write()
    item = c.db.get(ServiceItem, body.service_item_id)
    if item is None:
        raise HTTPException(422, f"service_item_id {body.service_item_id}: no such catalogue item")
    row = ContractService(
        customer_id=contract.customer_id,
        contract_id=contract.id,
        service_item_id=item.id,
        window=body.window or item.window,
        price=body.price,
    )
    created(c, row)
    c.db.refresh(row)
    return row


@router.delete("/contract-services/{contract_service_id}", status_code=204)
def remove_contract_service(c: AnyUser, contract_service_id: int) -> None:
    row = c.get(ContractService, contract_service_id)
    c.require_write()
    c.db.delete(row)


# -- the service catalogue ----------------------------------------------------------------


@router.get("/services", response_model=list[ServiceItemOut])
def list_service_items(c: AnyUser) -> Any:
    return c.db.scalars(select(ServiceItem).order_by(ServiceItem.kind, ServiceItem.code))


@router.post("/services", response_model=ServiceItemOut, status_code=201)
def create_service_item(c: AnyUser, body: ServiceItemIn) -> Any:
    c.require_admin()
    return created(c, ServiceItem(**body.model_dump()))


# -- assets ---------------------------------------------------------------------------------


@router.get("/customers/{customer_id}/assets", response_model=list[AssetOut])
def list_assets(c: AnyUser, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return c.db.scalars(select(Asset).where(Asset.customer_id == customer_id).order_by(Asset.name))


@router.post("/customers/{customer_id}/assets", response_model=AssetOut, status_code=201)
def create_asset(c: AnyUser, customer_id: int, body: AssetIn) -> Any:
    c.get(Customer, customer_id)
    c.require_write()
    return created(c, Asset(customer_id=customer_id, **body.model_dump()))


@router.post(
    "/customers/{customer_id}/assets/import",
    response_model=ImportResult,
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def import_assets(c: AnyUser, customer_id: int, request: Request) -> Any:
    """Body: CSV text with header type,name,url,ip,notes,tags. All rows or none."""
    customer = c.get(Customer, customer_id)
    c.require_write()
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, "CSV must be UTF-8") from exc
    try:
        count = asset_import.import_assets(c.db, customer, text)
    except asset_import.ImportFailed as exc:
        raise HTTPException(422, [str(e) for e in exc.errors]) from exc
    return ImportResult(imported=count)


@router.get("/assets/{asset_id}", response_model=AssetOut)
def get_asset(c: AnyUser, asset_id: int) -> Any:
    return c.get(Asset, asset_id)


@router.patch("/assets/{asset_id}", response_model=AssetOut)
def update_asset(c: AnyUser, asset_id: int, body: AssetPatch) -> Any:
    asset = c.get(Asset, asset_id)
    c.require_write()
    return apply(asset, body)


@router.delete("/assets/{asset_id}", status_code=204)
def delete_asset(c: AnyUser, asset_id: int) -> None:
    asset = c.get(Asset, asset_id)
    c.require_write()
    c.db.delete(asset)


# -- contacts -------------------------------------------------------------------------------


@router.get("/customers/{customer_id}/contacts", response_model=list[ContactOut])
def list_contacts(c: AnyUser, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return c.db.scalars(select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.role))


@router.post("/customers/{customer_id}/contacts", response_model=ContactOut, status_code=201)
def create_contact(c: AnyUser, customer_id: int, body: ContactIn) -> Any:
    c.get(Customer, customer_id)
    c.require_write()
    return created(c, Contact(customer_id=customer_id, **body.model_dump()))


@router.get("/contacts/{contact_id}", response_model=ContactOut)
def get_contact(c: AnyUser, contact_id: int) -> Any:
    return c.get(Contact, contact_id)


@router.patch("/contacts/{contact_id}", response_model=ContactOut)
def update_contact(c: AnyUser, contact_id: int, body: ContactPatch) -> Any:
    contact = c.get(Contact, contact_id)
    c.require_write()
    return apply(contact, body)


@router.delete("/contacts/{contact_id}", status_code=204)
def delete_contact(c: AnyUser, contact_id: int) -> None:
    contact = c.get(Contact, contact_id)
    c.require_write()
    c.db.delete(contact)


# -- credentials (staff only; secrets never shown back) ------------------------------------


@router.get("/customers/{customer_id}/credentials", response_model=list[CredentialOut])
def list_credentials(c: Staff, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return c.db.scalars(select(Credential).where(Credential.customer_id == customer_id))


@router.post("/customers/{customer_id}/credentials", response_model=CredentialOut, status_code=201)
def create_credential(c: Staff, customer_id: int, body: CredentialIn) -> Any:
    c.get(Customer, customer_id)
    c.require_write()
    if body.asset_id is not None and c.get(Asset, body.asset_id).customer_id != customer_id:
        raise HTTPException(422, "asset_id: asset belongs to another customer")
    return created(c, Credential(customer_id=customer_id, **body.model_dump()))


@router.get("/credentials/{credential_id}", response_model=CredentialOut)
def get_credential(c: Staff, credential_id: int) -> Any:
    return c.get(Credential, credential_id)


@router.patch("/credentials/{credential_id}", response_model=CredentialOut)
def update_credential(c: Staff, credential_id: int, body: CredentialPatch) -> Any:
    cred = c.get(Credential, credential_id)
    c.require_write()
    return apply(cred, body)


@router.delete("/credentials/{credential_id}", status_code=204)
def delete_credential(c: Staff, credential_id: int) -> None:
    cred = c.get(Credential, credential_id)
    c.require_write()
    c.db.delete(cred)


# -- staff assigned to a customer ------------------------------------------------------------


@router.get("/customers/{customer_id}/staff", response_model=list[AssignmentOut])
def list_assignments(c: AnyUser, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return c.db.scalars(select(StaffAssignment).where(StaffAssignment.customer_id == customer_id))


@router.post("/customers/{customer_id}/staff", response_model=AssignmentOut, status_code=201)
def assign_staff(c: AnyUser, customer_id: int, body: AssignmentIn) -> Any:
    from opsdesk.accounts.models import User

    c.get(Customer, customer_id)
    c.require_admin()
    user = c.db.get(User, body.user_id)
    if user is None or not user.role or user.customer_id is not None or user.role == "admin":
        raise HTTPException(422, "user_id: not an engineer or project lead")
    return created(c, StaffAssignment(customer_id=customer_id, user_id=user.id, role=body.role))


@router.delete("/staff-assignments/{assignment_id}", status_code=204)
def unassign_staff(c: AnyUser, assignment_id: int) -> None:
    row = c.get(StaffAssignment, assignment_id)
    c.require_admin()
    c.db.delete(row)
