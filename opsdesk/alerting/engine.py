"""The alert role: evaluates every asset's effective rules, keeps alert state, opens incidents.

Each evaluation reads the metric store (thresholds), derived host status (no data), monitor
states and new host events, steps each alert's state machine and persists it, so state survives
restarts. The clock is a parameter: tests move time instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import cast

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.alerting import incidents
from opsdesk.alerting.forecast import forecast
from opsdesk.alerting.models import Alert, RuleOverride
from opsdesk.alerting.rules import (
    DEFAULTS,
    EventRule,
    ForecastRule,
    MonitorDownRule,
    NoDataRule,
    Rule,
    ThresholdRule,
)
from opsdesk.alerting.state import AlertState, AlertStatus, step
from opsdesk.core.runtime import Runtime
from opsdesk.hosts.models import HostEvent, HostState, HostStatus
from opsdesk.hosts.status import status_at
from opsdesk.metrics import Matcher, Op
from opsdesk.monitors.models import Monitor, MonitorState
from opsdesk.tenancy.models import Asset

log = logging.getLogger("opsdesk.alerting")
LATEST_MAX_AGE_MS = 10 * 60 * 1000  # a "last" value older than this is no value
FORECAST_STEP_MS = 5 * 60 * 1000  # 5-minute averages: the store answers them from its rollups
FORECAST_REUSE_S = 60.0  # a 6-hour trend does not change within a minute: reuse the fit
# Host event kinds any default rule watches (overrides change thresholds, never the events).
EVENT_KINDS = sorted(
    {kind for rules in DEFAULTS.values() for r in rules if isinstance(r, EventRule) for kind in r.events}
)


Fit = tuple[float | None, bool, bool]  # a forecast's hours left, breached, cleared


@dataclass
class Report:
    evaluated: int = 0
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


@dataclass
class SharedReads:
    """Store reads of one evaluation pass, shared by the rules of all its assets (see _values)."""

    asset_ids: list[str]
    tables: dict[tuple[object, ...], dict[str, dict[tuple[tuple[str, str], ...], float]]] = field(
        default_factory=dict
    )


def effective_rules(asset: Asset, overrides: list[RuleOverride]) -> list[Rule]:
    """Defaults for the asset's type with the customer's, then the asset's, overrides applied."""
    if not overrides:  # the usual case: the defaults as they are
        return list(DEFAULTS.get(asset.type, ()))
    mine = sorted(
        (o for o in overrides if o.asset_id in (None, asset.id)), key=lambda o: o.asset_id is not None
    )
    out: list[Rule] = []
    for rule in DEFAULTS.get(asset.type, ()):
        changes: dict[str, object] = {}
        enabled = True
        for o in (o for o in mine if o.rule_key == rule.key):
            enabled = o.enabled
            for name in ("threshold", "clear", "for_s", "severity"):
                value = getattr(o, name)
                if value is None:
                    continue
                if isinstance(rule, ForecastRule) and name == "threshold":
                    changes["horizon_s"] = float(value) * 3600  # a forecast's threshold: hours ahead
                elif name in type(rule).model_fields:
                    changes[name] = value
        if "threshold" in changes and "clear" not in changes:
            changes["clear"] = None  # the default's clear value belongs to the default's threshold
        if not enabled:
            continue
        try:
            out.append(type(rule).model_validate({**rule.model_dump(), **changes}) if changes else rule)
        except ValidationError as exc:  # refused by the API; an old row must not stop evaluation
            log.warning("override of %s for asset %s ignored: %s", rule.key, asset.id, exc)
            out.append(rule)
    return out


class AlertEngine:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._fits: dict[tuple[str, int], tuple[float, dict[tuple[tuple[str, str], ...], Fit]]] = {}
        # Per rule object (defaults are shared by every asset): its read spec, or its JSON for the
        # forecast cache. Rules are frozen; the rule is kept so that its id cannot be reused.
        self._specs: dict[int, tuple[Rule, object]] = {}

    def asset_ids(self) -> list[int]:
        """Every asset some default rule applies to, for a sweep in chunks."""
        with self.rt.sessions() as session:
            return list(
                session.scalars(select(Asset.id).where(Asset.type.in_(list(DEFAULTS))).order_by(Asset.id))
            )

    def evaluate(self, now: datetime | None = None, asset_ids: set[int] | None = None) -> Report:
        """Evaluate every asset's rules, or only those of `asset_ids` (fresh data just arrived)."""
        now = now or datetime.now(UTC)
        report = Report()
        with self.rt.sessions() as session:
            alert_query = select(Alert)
            if asset_ids is not None:
                alert_query = alert_query.where(Alert.asset_id.in_(asset_ids))
            alerts = {a.fingerprint: a for a in session.scalars(alert_query)}
            overrides: dict[int, list[RuleOverride]] = {}
            for o in session.scalars(select(RuleOverride)):
                overrides.setdefault(o.customer_id, []).append(o)
            query = select(Asset).where(Asset.type.in_(list(DEFAULTS)))
            if asset_ids is not None:
                query = query.where(Asset.id.in_(asset_ids))
            assets = session.scalars(query).all()
            # The two columns host status needs, not whole rows (inventory and top are large JSON).
            host_query = select(HostState.asset_id, HostState.last_seen_at, HostState.interval_s)
            if asset_ids is not None:
                host_query = host_query.where(HostState.asset_id.in_(asset_ids))
            hosts = {r.asset_id: (r.last_seen_at, r.interval_s) for r in session.execute(host_query)}
            events = self._newest_events(session, asset_ids)
            # One query for every monitor rule of every asset (several rules read the same monitors).
            monitor_query = select(Monitor).where(Monitor.enabled, Monitor.asset_id.is_not(None))
            if asset_ids is not None:
                monitor_query = monitor_query.where(Monitor.asset_id.in_(asset_ids))
            monitors: dict[int, list[Monitor]] = {}
            for m in session.scalars(monitor_query.order_by(Monitor.id)):
                monitors.setdefault(m.asset_id or 0, []).append(m)
            reads = SharedReads([str(a.id) for a in assets])
            # A condition that is not breached changes nothing unless its alert exists: such
            # conditions (nearly all) are counted and skipped without a fingerprint or a step.
            alerted = {(a.asset_id, a.rule_key) for a in alerts.values()}
            for asset in assets:
                for rule in effective_rules(asset, overrides.get(asset.customer_id, [])):
                    for labels, breached, cleared, value, monitor_id in self._conditions(
                        rule, asset, hosts, monitors.get(asset.id, []), events, alerts, now, reads
                    ):
                        report.evaluated += 1
                        if not breached and (asset.id, rule.key) not in alerted:
                            continue
                        alerted.add((asset.id, rule.key))
                        self._step(
                            session,
                            alerts,
                            rule,
                            asset,
                            labels,
                            breached,
                            cleared,
                            value,
                            monitor_id,
                            now,
                            report,
                        )
            session.commit()
        return report

    @staticmethod
    def _newest_events(session: Session, asset_ids: set[int] | None) -> dict[tuple[int, str], int]:
        """(asset id, event kind) -> the newest HostEvent id, in one query for every event rule."""
        query = (
            select(HostEvent.asset_id, HostEvent.kind, func.max(HostEvent.id))
            .where(HostEvent.kind.in_(EVENT_KINDS))
            .group_by(HostEvent.asset_id, HostEvent.kind)
        )
        if asset_ids is not None:
            query = query.where(HostEvent.asset_id.in_(asset_ids))
        return {(asset_id, kind): newest for asset_id, kind, newest in session.execute(query)}

    # -- conditions: (labels, breached, cleared, value, monitor id) per alert of a rule --------

    def _conditions(
        self,
        rule: Rule,
        asset: Asset,
        hosts: dict[int, tuple[datetime | None, float]],
        monitors: list[Monitor],
        events: dict[tuple[int, str], int],
        alerts: dict[str, Alert],
        now: datetime,
        reads: SharedReads,
    ) -> Iterable[tuple[dict[str, str], bool, bool, float | None, int | None]]:
        if isinstance(rule, ThresholdRule):
            for labels, value in self._values(rule, asset, now, reads).items():
                yield dict(labels), rule.breached(value), rule.cleared(value), value, None
        elif isinstance(rule, NoDataRule):
            contact = hosts.get(asset.id)
            if contact is None:
                return  # never reported: nothing to lose yet
            status = status_at(*contact, now, self.rt.settings.ingest.down_after_intervals)
            yield {}, status is HostStatus.down, status is HostStatus.up, None, None
        elif isinstance(rule, ForecastRule):
            for labels, (hours, breached, cleared) in self._forecasts(rule, asset, now).items():
                yield dict(labels), breached, cleared, hours, None
        elif isinstance(rule, MonitorDownRule):
            for monitor in monitors:
                if rule.monitor_types and monitor.type not in rule.monitor_types:
                    continue
                if monitor.state is MonitorState.unknown:
                    continue  # the check could not tell: the alert keeps its state, no flapping
                down = monitor.state is MonitorState.down
                yield {"monitor": str(monitor.id)}, down, not down, None, monitor.id
        elif isinstance(rule, EventRule):
            latest = max((events.get((asset.id, kind), 0) for kind in rule.events), default=0)
            fp = _fingerprint_of(rule.key, asset.id, ())  # no labels
            if not latest and fp not in alerts:
                return  # no event of these kinds ever, and no alert: nothing to step
            seen = int(alerts[fp].value or 0) if fp in alerts else 0
            newest = latest if latest > seen else None
            if fp not in alerts and newest is None:
                return
            # An event fires once and resolves on the next evaluation; `value` remembers the last one.
            yield {}, newest is not None, newest is None, float(newest or seen), None

    def _bound_specs(self) -> None:
        if len(self._specs) > 10_000:  # overridden rules are new objects every pass
            self._specs.clear()

    def _values(
        self, rule: ThresholdRule, asset: Asset, now: datetime, reads: SharedReads
    ) -> dict[tuple[tuple[str, str], ...], float]:
        """The rule's value per group for this asset, from one store read for every asset of the pass.

        Rules of many assets read the same metric the same way; reading it once for all of them
        (an `asset` regex) and sharing it cost a fraction of one read per rule per asset.
        """
        cached = self._specs.get(id(rule))
        if cached is None:
            self._bound_specs()
            spec: tuple[object, ...] = (
                rule.metric,
                tuple(sorted(rule.match.items())),
                rule.aggregate,
                rule.window_s,
                rule.group_by,
            )
            cached = self._specs[id(rule)] = (rule, spec)
        spec = cast(tuple[object, ...], cached[1])
        table = reads.tables.get(spec)
        if table is None:
            table = reads.tables[spec] = self._read(rule, reads.asset_ids, now)
        found: dict[tuple[tuple[str, str], ...], float] = table.get(str(asset.id), {})
        return found

    def _read(
        self, rule: ThresholdRule, asset_ids: list[str], now: datetime
    ) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        if len(asset_ids) == 1:
            on_assets = Matcher.eq("asset", asset_ids[0])
        else:
            on_assets = Matcher("asset", "|".join(re.escape(i) for i in asset_ids), Op.RE)
        matchers = [Matcher.name(rule.metric), on_assets]
        matchers += [Matcher.eq(k, v) for k, v in rule.match.items()]
        now_ms = int(now.timestamp() * 1000)
        out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        if rule.aggregate == "last" or rule.window_s == 0:
            for latest in self.rt.metrics.latest(matchers):
                if now_ms - latest.t <= LATEST_MAX_AGE_MS:
                    labels = latest.series.as_dict()
                    out.setdefault(labels["asset"], {})[_group(labels, rule.group_by)] = latest.value
            return out
        window = int(rule.window_s * 1000)
        for series, p in self.rt.metrics.window(matchers, now_ms - window, now_ms + 1):
            labels = series.as_dict()
            value = {"avg": p.avg, "min": p.min, "max": p.max}[rule.aggregate]
            out.setdefault(labels["asset"], {})[_group(labels, rule.group_by)] = value
        return out

    def _forecasts(
        self, rule: ForecastRule, asset: Asset, now: datetime
    ) -> dict[tuple[tuple[str, str], ...], Fit]:
        cached_json = self._specs.get(id(rule))
        if cached_json is None:
            self._bound_specs()
            cached_json = self._specs[id(rule)] = (rule, rule.model_dump_json())
        key = (cast(str, cached_json[1]), asset.id)
        cached = self._fits.get(key)
        if cached is not None and 0 <= now.timestamp() - cached[0] < FORECAST_REUSE_S:
            return cached[1]
        fits = self._fit(rule, asset, now)
        self._fits[key] = (now.timestamp(), fits)
        return fits

    def _fit(self, rule: ForecastRule, asset: Asset, now: datetime) -> dict[tuple[tuple[str, str], ...], Fit]:
        matchers = [Matcher.name(rule.metric), Matcher.eq("asset", str(asset.id))]
        matchers += [Matcher.eq(k, v) for k, v in rule.match.items()]
        now_ms = int(now.timestamp() * 1000)
        end = now_ms - now_ms % FORECAST_STEP_MS + FORECAST_STEP_MS  # include the current bucket
        start = end - int(rule.window_s * 1000) // FORECAST_STEP_MS * FORECAST_STEP_MS
        out: dict[tuple[tuple[str, str], ...], Fit] = {}
        for result in self.rt.metrics.read_range(matchers, start, end, FORECAST_STEP_MS):
            # Each 5-minute average stands at the middle of its bucket.
            points = [((p.t + FORECAST_STEP_MS / 2) / 1000, p.avg) for p in result.points if p.count]
            verdict = forecast(
                points, now.timestamp(), rule.window_s, rule.limit, rule.horizon_s, rule.clear_factor
            )
            if verdict is not None:
                hours = verdict.hours_left
                out[_group(result.series.as_dict(), rule.group_by)] = (
                    hours,
                    verdict.breached,
                    verdict.cleared,
                )
        return out

    # -- state ---------------------------------------------------------------------------------

    def _step(
        self,
        session: Session,
        alerts: dict[str, Alert],
        rule: Rule,
        asset: Asset,
        labels: dict[str, str],
        breached: bool,
        cleared: bool,
        value: float | None,
        monitor_id: int | None,
        now: datetime,
        report: Report,
    ) -> None:
        fp = _fingerprint(rule, asset, labels)
        alert = alerts.get(fp)
        if alert is None:
            if not breached:
                return
            alert = Alert(
                customer_id=asset.customer_id,
                fingerprint=fp,
                rule_key=rule.key,
                asset_id=asset.id,
                monitor_id=monitor_id,
                labels=labels,
                severity=rule.severity,
                state=AlertState.inactive,
                since=now,
                transitions=[],
                flapping=False,
            )
            session.add(alert)
            alerts[fp] = alert
        status = AlertStatus(
            alert.state,
            alert.since.timestamp(),
            alert.pending_since.timestamp() if alert.pending_since else None,
            tuple(alert.transitions or ()),
            alert.flapping,
        )
        result = step(status, now.timestamp(), breached, cleared, rule.for_s)
        new = result.status
        alert.state, alert.flapping = new.state, new.flapping
        alert.since = datetime.fromtimestamp(new.since, UTC)
        alert.pending_since = datetime.fromtimestamp(new.pending_since, UTC) if new.pending_since else None
        alert.transitions = list(new.transitions)
        alert.severity = rule.severity
        alert.last_eval_at = now
        if value is not None:
            alert.value = value
        alert.summary = _summary(rule, asset, labels, value)
        if result.fired or result.resolved:
            session.flush()  # the incident code reads the alert's row; otherwise the commit writes it
        if result.fired:
            report.fired.append(fp)
            incidents.alert_fired(session, alert, now)
        if result.resolved:
            report.resolved.append(fp)
            incidents.alert_resolved(session, alert, now)


def _group(labels: dict[str, str], by: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k, labels.get(k, "")) for k in by)


def _fingerprint(rule: Rule, asset: Asset, labels: dict[str, str]) -> str:
    return _fingerprint_of(rule.key, asset.id, tuple(sorted(labels.items())))


@lru_cache(maxsize=65536)  # the same few per asset, every evaluation: json.dumps showed in profiles
def _fingerprint_of(key: str, asset_id: int, labels: tuple[tuple[str, str], ...]) -> str:
    return f"{key}:{asset_id}:{json.dumps(dict(labels), separators=(',', ':'))}"[:200]


def _summary(rule: Rule, asset: Asset, labels: dict[str, str], value: float | None) -> str:
    try:
        return rule.summary_en.format(asset=asset.name, value=value if value is not None else 0, **labels)
    except (KeyError, ValueError):
        return rule.summary_en
