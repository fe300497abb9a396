"""Agent batches stored in groups (see opsdesk.core.group_commit).

Host states and events are read and written with Core statements on the group's connection:
one select, one executemany per kind of change, no ORM objects. Loading and flushing each
host's HostState (with its inventory JSON) cost more than storing its samples. No audit entry
is lost: agents are not people, and the audit log records only changes made by a principal.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from opsdesk.core.group_commit import GroupCommitter, write_blocks
from opsdesk.core.runtime import Runtime
from opsdesk.hosts.models import HostEvent, HostState
from opsdesk.ingest import service
from opsdesk.ingest.schema import AgentBatch
from opsdesk.ingest.service import HostRow, IngestResult, apply_batch
from opsdesk.metrics import Block

_STATES = cast(Table, HostState.__table__)
_EVENTS = cast(Table, HostEvent.__table__)
_READ = select(
    _STATES.c.asset_id,
    _STATES.c.id,
    _STATES.c.instance,
    _STATES.c.last_seq,
    _STATES.c.last_sample_at,
    _STATES.c.dropped_total,
)
_UPDATE = update(_STATES).where(_STATES.c.id == bindparam("row_id"))


@dataclass(frozen=True)
class AssetRef:
    id: int
    customer_id: int


Job = tuple[AssetRef, AgentBatch]


def apply_batches(session: Session, jobs: list[Job], now: datetime) -> tuple[list[Block], list[IngestResult]]:
    conn = session.connection()
    ids = {asset.id for asset, _ in jobs}
    hosts = {
        r.asset_id: HostRow(r.id, r.instance, r.last_seq, r.last_sample_at, r.dropped_total)
        for r in conn.execute(_READ.where(_STATES.c.asset_id.in_(ids)))
    }
    owners: dict[int, AssetRef] = {}
    events: list[dict[str, Any]] = []
    blocks: list[Block] = []
    results: list[IngestResult] = []
    for asset, batch in jobs:  # in order: a host's later batch sees its earlier one
        host = hosts.get(asset.id)
        if host is None:
            host = hosts[asset.id] = HostRow.new(batch, now)
            owners[asset.id] = asset
        result, block = apply_batch(host, asset.id, asset.customer_id, batch, now, events)
        if block is not None and block[0]:
            blocks.append(block)
        results.append(result)
    _write_states(conn, hosts, owners)
    if events:
        conn.execute(insert(_EVENTS), events)
    freeze_new_series()
    return blocks, results


FREEZE_EVERY = 20_000  # new series keys
_frozen_at = 0
log = logging.getLogger("opsdesk.ingest")


def freeze_new_series() -> None:
    """Keep the objects of new series out of the collector's full passes, once many have come.

    Series keys, store heads and their index entries live as long as the process. Under load each
    full collection walked all of them again (0.3 s each, a fifth of the server's CPU with 1,000
    hosts): batches in flight survive the young generations and trigger full passes every second
    or two. As `opsdesk server` does after startup, they are moved to the permanent generation,
    after one full collection so that no garbage is frozen with them.
    """
    global _frozen_at
    built = service.built_keys()
    if built - _frozen_at < FREEZE_EVERY:
        return
    _frozen_at = built
    start = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info(
        "froze %d objects after %d new series keys in %.2f s",
        gc.get_freeze_count(),
        built,
        time.perf_counter() - start,
    )


def _write_states(conn: Connection, hosts: dict[int, HostRow], owners: dict[int, AssetRef]) -> None:
    new = []
    changed = []
    for asset_id, host in hosts.items():
        if host.id is None:
            owner = owners[asset_id]
            new.append(
                {
                    "asset_id": asset_id,
                    "customer_id": owner.customer_id,
                    "instance": host.instance,
                    "last_seq": 0,
                    "dropped_total": 0,
                    **host.changes,
                }
            )
        else:
            changed.append({"row_id": host.id, **host.changes})
    # An executemany needs the same columns in every row: one per set of columns (usually one).
    for rows in _by_columns(new):
        conn.execute(insert(_STATES), rows)
    for rows in _by_columns(changed):
        conn.execute(_UPDATE, rows)


def _by_columns(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return list(groups.values())


class IngestWriter(GroupCommitter[Job, IngestResult, Block]):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt, apply_batches, "ingest-writer", write_blocks)
