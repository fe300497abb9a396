"""REST API for alert rules: the effective rules of a customer or an asset, and overrides.

A customer's override changes a default for all its assets; an asset's override wins over the
customer's. Engineers see the table; an admin or the customer's project lead changes it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from opsdesk.alerting import access
from opsdesk.alerting.engine import effective_rules
from opsdesk.alerting.models import RuleOverride
from opsdesk.alerting.problems import FieldProblem
from opsdesk.alerting.rules import DEFAULTS, ForecastRule, Rule, Severity, ThresholdRule
from opsdesk.tenancy.models import Asset, AssetType, Customer
from opsdesk.web.deps import Ctx, Staff

router = APIRouter(prefix="/api/v1", tags=["alert rules"])


class RuleValues(BaseModel):
    enabled: bool = True
    severity: Severity
    threshold: float | None = None  # a forecast's threshold is its horizon in hours
    clear: float | None = None
    for_s: float = 0


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_key: Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=64)]
    asset_id: int | None = None
    enabled: bool = True
    threshold: float | None = None
    clear: float | None = None
    for_s: Annotated[float | None, Field(ge=0, le=86400)] = None
    severity: Severity | None = None


class OverrideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    asset_id: int | None
    rule_key: str
    enabled: bool
    threshold: float | None
    clear: float | None
    for_s: float | None
    severity: Severity | None


class RuleRow(BaseModel):
    asset_type: AssetType
    key: str
    kind: str
    summary_en: str
    summary_zh: str
    default: RuleValues
    override: OverrideOut | None  # the customer's own
    effective: RuleValues  # the default with the customer's override (assets may differ)
    asset_overrides: list[OverrideOut]


def values(rule: Rule | None, default: Rule) -> RuleValues:
    if rule is None:  # switched off
        return RuleValues(enabled=False, **values(default, default).model_dump(exclude={"enabled"}))
    threshold = clear = None
    if isinstance(rule, ThresholdRule):
        threshold, clear = rule.threshold, rule.clear
    elif isinstance(rule, ForecastRule):
        threshold = rule.horizon_s / 3600
    return RuleValues(severity=rule.severity, threshold=threshold, clear=clear, for_s=rule.for_s)


def has_threshold(rule: Rule) -> bool:
    return isinstance(rule, ThresholdRule | ForecastRule)


def table(c: Ctx, customer_id: int) -> list[RuleRow]:
    """Every default rule for every asset type, with what the customer and its assets changed."""
    overrides = list(c.db.scalars(select(RuleOverride).where(RuleOverride.customer_id == customer_id)))
    mine = [o for o in overrides if o.asset_id is None]
    rows: list[RuleRow] = []
    for asset_type, defaults in DEFAULTS.items():
        probe = Asset(id=0, customer_id=customer_id, type=asset_type, name="")
        effective = {r.key: r for r in effective_rules(probe, mine)}
        for rule in defaults:
            own = next((o for o in mine if o.rule_key == rule.key), None)
            rows.append(
                RuleRow(
                    asset_type=asset_type,
                    key=rule.key,
                    kind=rule.kind,
                    summary_en=rule.summary_en,
                    summary_zh=rule.summary_zh,
                    default=values(rule, rule),
                    override=OverrideOut.model_validate(own) if own else None,
                    effective=values(effective.get(rule.key), rule),
                    asset_overrides=[
                        OverrideOut.model_validate(o)
                        for o in overrides
                        if o.asset_id is not None and o.rule_key == rule.key
                    ],
                )
            )
    return rows


def _defaults_for(c: Ctx, customer_id: int, body: OverrideIn) -> list[Rule]:
    if body.asset_id is not None:
        asset = c.get(Asset, body.asset_id)
        if asset.customer_id != customer_id:
            raise FieldProblem("asset_id", "form.err.choice")
        found = [r for r in DEFAULTS.get(asset.type, ()) if r.key == body.rule_key]
    else:
        found = [r for rules in DEFAULTS.values() for r in rules if r.key == body.rule_key]
    if not found:
        raise FieldProblem("rule_key", "alerting.err.no_rule")
    return found


def check(c: Ctx, customer_id: int, body: OverrideIn) -> None:
    """Refuse what the engine would have to ignore: a threshold on a rule without one, a clear
    threshold on the wrong side, a forecast horizon out of range."""
    for rule in _defaults_for(c, customer_id, body):
        if not has_threshold(rule) and (body.threshold is not None or body.clear is not None):
            raise FieldProblem("threshold", "alerting.err.no_threshold")
        changes: dict[str, Any] = {}
        if isinstance(rule, ForecastRule):
            if body.clear is not None:
                raise FieldProblem("clear", "alerting.err.no_threshold")
            if body.threshold is not None:
                changes["horizon_s"] = body.threshold * 3600
        elif body.threshold is not None:
            changes.update(threshold=body.threshold, clear=body.clear)  # as effective_rules does
        elif body.clear is not None:
            changes["clear"] = body.clear
        try:
            type(rule).model_validate({**rule.model_dump(), **changes})
        except ValidationError as exc:
            loc = exc.errors()[0]["loc"]
            if not loc or loc[0] == "clear":  # the model check: clear on the unsafe side
                raise FieldProblem("clear", "alerting.err.clear_side") from exc
            raise FieldProblem("threshold", "alerting.err.out_of_range") from exc


def upsert(c: Ctx, customer_id: int, body: OverrideIn) -> RuleOverride:
    c.get(Customer, customer_id)
    access.require_manage(c, customer_id)
    check(c, customer_id, body)
    found = c.db.scalars(
        select(RuleOverride).where(
            RuleOverride.customer_id == customer_id,
            RuleOverride.rule_key == body.rule_key,
            RuleOverride.asset_id.is_(None)
            if body.asset_id is None
            else RuleOverride.asset_id == body.asset_id,
        )
    ).first()
    row = found or RuleOverride(customer_id=customer_id, asset_id=body.asset_id, rule_key=body.rule_key)
    row.enabled, row.threshold, row.clear = body.enabled, body.threshold, body.clear
    row.for_s, row.severity = body.for_s, body.severity
    c.db.add(row)
    c.db.flush()
    return row


def remove(c: Ctx, override_id: int) -> RuleOverride:
    return access.delete_managed(c, RuleOverride, override_id)


@router.get("/customers/{customer_id}/rules", response_model=list[RuleRow])
def customer_rules(c: Staff, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return table(c, customer_id)


@router.get("/assets/{asset_id}/rules")
def asset_rules(c: Staff, asset_id: int) -> list[dict[str, Any]]:
    """The rules the engine evaluates for this asset, after every override."""
    asset = c.get(Asset, asset_id)
    overrides = list(c.db.scalars(select(RuleOverride).where(RuleOverride.customer_id == asset.customer_id)))
    return [rule.model_dump(mode="json") for rule in effective_rules(asset, overrides)]


@router.post("/customers/{customer_id}/rule-overrides", response_model=OverrideOut)
def set_override(c: Staff, customer_id: int, body: OverrideIn) -> Any:
    try:
        return upsert(c, customer_id, body)
    except FieldProblem as problem:
        raise problem.http() from problem


@router.delete("/rule-overrides/{override_id}", status_code=204)
def delete_override(c: Staff, override_id: int) -> None:
    remove(c, override_id)
