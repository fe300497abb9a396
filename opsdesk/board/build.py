"""The fleet status board's data: every visible customer's hosts, checks, services and incidents.

Built with one query per kind of thing (customers, hosts with their state, monitors, open
incidents) through the caller's session, so tenant scoping decides what is visible, plus three
`latest` reads of the metric store. The store is not scoped: its answers are kept only for the
asset ids the scoped host query returned. Nothing here runs once per host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.alerting.incidents import OPEN
from opsdesk.alerting.models import Incident
from opsdesk.alerting.rules import Severity
from opsdesk.hosts.models import HostState, HostStatus
from opsdesk.hosts.status import status_at
from opsdesk.metrics import Matcher, MetricStore, Op
from opsdesk.monitors.models import Monitor, MonitorState
from opsdesk.tenancy.models import Asset, AssetType, Customer

# Check types that watch a website or an address from outside; every other monitor type
# (nginx, php_fpm, tomcat, mysql, postgresql, redis, oracle, process, log, script,
# prometheus, ...) watches a service on a host and is counted under "services".
SITE_CHECKS = frozenset({"http", "tls", "tcp", "ping", "dns"})
SEVERITIES = tuple(Severity)
HOST_ORDER = {HostStatus.down: 0, HostStatus.unknown: 1, HostStatus.up: 2}
MONITOR_ORDER = {MonitorState.down: 0, MonitorState.warning: 1, MonitorState.unknown: 2, MonitorState.up: 3}
SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}
INCIDENTS_SHOWN = 5  # per customer; the rest are behind the link to the incident list
PROBLEMS_SHOWN = 5  # down or warning monitors listed by name, per customer and group


@dataclass
class HostTile:
    asset_id: int
    name: str
    status: HostStatus
    last_seen: datetime | None = None
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None
    disk_mount: str = ""

    @property
    def cpu_text(self) -> str:
        return _percent(self.cpu)

    @property
    def memory_text(self) -> str:
        return _percent(self.memory)

    @property
    def disk_text(self) -> str:
        return _percent(self.disk)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}%"


@dataclass
class MonitorLine:
    monitor_id: int
    name: str
    state: MonitorState


@dataclass
class MonitorGroup:
    """Websites and checks, or services: counts by state and the ones that need a look."""

    counts: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in MonitorState})
    problems: list[MonitorLine] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, line: MonitorLine) -> None:
        self.counts[line.state.value] += 1
        if line.state in (MonitorState.down, MonitorState.warning):
            self.problems.append(line)


@dataclass
class IncidentLine:
    incident_id: int
    title: str
    severity: Severity
    status: str
    opened_at: datetime


@dataclass
class CustomerBoard:
    customer_id: int
    name: str
    code: str
    hosts: list[HostTile] = field(default_factory=list)
    sites: MonitorGroup = field(default_factory=MonitorGroup)
    services: MonitorGroup = field(default_factory=MonitorGroup)
    incidents: list[IncidentLine] = field(default_factory=list)

    @property
    def host_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in HostStatus}
        for h in self.hosts:
            counts[h.status.value] += 1
        return counts

    @property
    def incident_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in SEVERITIES}
        for i in self.incidents:
            counts[i.severity.value] += 1
        return counts

    @property
    def shown_incidents(self) -> list[IncidentLine]:
        return self.incidents[:INCIDENTS_SHOWN]

    @property
    def level(self) -> str:
        """bad: a host or monitor down, or a P1/P2 open; warn: anything else open or odd; ok."""
        sev = self.incident_counts
        hosts = self.host_counts
        down = self.sites.counts["down"] + self.services.counts["down"]
        if sev["P1"] or sev["P2"] or hosts["down"] or down:
            return "bad"
        warned = self.sites.counts["warning"] + self.services.counts["warning"]
        if sev["P3"] or sev["P4"] or warned or hosts["unknown"]:
            return "warn"
        return "ok"

    def rank(self) -> tuple[Any, ...]:
        """Sort key: problems first, the worst of them first, then by name."""
        sev, hosts = self.incident_counts, self.host_counts
        level = {"bad": 0, "warn": 1, "ok": 2}[self.level]
        down = self.sites.counts["down"] + self.services.counts["down"]
        return (level, -sev["P1"], -hosts["down"], -sev["P2"], -down, -sev["P3"], -sev["P4"], self.name)


@dataclass
class Board:
    customers: list[CustomerBoard]

    @property
    def totals(self) -> dict[str, int]:
        out = {"hosts": 0, "hosts_down": 0, "hosts_unknown": 0, "monitors_down": 0, "incidents": 0}
        for c in self.customers:
            counts = c.host_counts
            out["hosts"] += len(c.hosts)
            out["hosts_down"] += counts["down"]
            out["hosts_unknown"] += counts["unknown"]
            out["monitors_down"] += c.sites.counts["down"] + c.services.counts["down"]
            out["incidents"] += len(c.incidents)
        for sev in SEVERITIES:
            out[sev.value] = sum(c.incident_counts[sev.value] for c in self.customers)
        return out


def _latest_by_asset(
    store: MetricStore, matchers: list[Matcher], assets: set[int]
) -> dict[int, tuple[float, str]]:
    """asset id -> (highest latest value among its matching series, that series' mount label)."""
    out: dict[int, tuple[float, str]] = {}
    for latest in store.latest(matchers):
        raw = latest.series.get("asset")
        if not raw.isdigit() or int(raw) not in assets:
            continue  # the store is not scoped: keep only the hosts the session let us see
        asset = int(raw)
        if asset not in out or latest.value > out[asset][0]:
            out[asset] = (latest.value, latest.series.get("mount"))
    return out


def _fill_metrics(store: MetricStore, tiles: Iterable[HostTile], customers: Iterable[int]) -> None:
    by_id = {t.asset_id: t for t in tiles}
    if not by_id:
        return
    ids = set(by_id)
    # One read per metric for all hosts. The customer regex lets the store's label index narrow
    # the series cheaply (far fewer customers than hosts); the asset ids then decide exactly.
    visible = Matcher("customer", "|".join(str(i) for i in sorted(set(customers))), Op.RE)
    cpu = _latest_by_asset(
        store, [Matcher.name("cpu_usage_percent"), Matcher.eq("mode", "total"), visible], ids
    )
    memory = _latest_by_asset(store, [Matcher.name("memory_used_percent"), visible], ids)
    disk = _latest_by_asset(store, [Matcher.name("fs_used_percent"), visible], ids)
    for asset, tile in by_id.items():
        tile.cpu = cpu[asset][0] if asset in cpu else None
        tile.memory = memory[asset][0] if asset in memory else None
        if asset in disk:
            tile.disk, tile.disk_mount = disk[asset]


def build_board(db: Session, store: MetricStore, down_after_intervals: int, now: datetime) -> Board:
    """The board for whoever `db` is bound to: admins see every customer, others their own."""
    boards = {
        cid: CustomerBoard(cid, name, code)
        for cid, name, code in db.execute(select(Customer.id, Customer.name, Customer.code))
    }
    host_rows = db.execute(
        select(Asset.id, Asset.customer_id, Asset.name, HostState.last_seen_at, HostState.interval_s)
        .outerjoin(HostState, HostState.asset_id == Asset.id)
        .where(Asset.type == AssetType.server)
    )
    tiles: list[HostTile] = []
    for asset_id, customer_id, name, last_seen, interval_s in host_rows:
        board = boards.get(customer_id)
        if board is None:
            continue
        tile = HostTile(
            asset_id, name, status_at(last_seen, interval_s, now, down_after_intervals), last_seen
        )
        board.hosts.append(tile)
        tiles.append(tile)
    _fill_metrics(store, tiles, boards)

    monitors = db.execute(
        select(Monitor.id, Monitor.customer_id, Monitor.name, Monitor.type, Monitor.state).where(
            Monitor.enabled.is_(True)
        )
    )
    for monitor_id, customer_id, name, kind, monitor_state in monitors:
        board = boards.get(customer_id)
        if board is None:
            continue
        group = board.sites if kind in SITE_CHECKS else board.services
        group.add(MonitorLine(monitor_id, name, MonitorState(monitor_state)))

    incidents = db.execute(
        select(
            Incident.id, Incident.customer_id, Incident.title, Incident.severity, Incident.status,
            Incident.opened_at,
        ).where(Incident.status.in_(OPEN))
    )  # fmt: skip
    for incident_id, customer_id, title, severity, status, opened_at in incidents:
        board = boards.get(customer_id)
        if board is not None:
            board.incidents.append(
                IncidentLine(incident_id, title, Severity(severity), str(status), opened_at)
            )

    for board in boards.values():
        board.hosts.sort(key=lambda h: (HOST_ORDER[h.status], h.name))
        for group in (board.sites, board.services):
            group.problems.sort(key=lambda m: (MONITOR_ORDER[m.state], m.name))
            del group.problems[PROBLEMS_SHOWN:]
        board.incidents.sort(key=lambda i: i.opened_at, reverse=True)  # newest first within a severity
        board.incidents.sort(key=lambda i: SEVERITY_ORDER[i.severity])
    return Board(sorted(boards.values(), key=CustomerBoard.rank))
