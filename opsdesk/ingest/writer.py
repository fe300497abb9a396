"""Group commit: one thread stores the batches of many requests in one write.

A durable write (an fsync) per agent batch caps ingest at a few hundred batches a second. The
writer takes every batch queued while the previous group was being written, stores their
samples with one metric-store write and their host state and events in one transaction, then
answers all their requests. Each request still gets its own answer, and only after its batch is
durable.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import select

from opsdesk.core.db import utcnow
from opsdesk.core.runtime import Runtime
from opsdesk.hosts.models import HostState
from opsdesk.ingest.schema import AgentBatch
from opsdesk.ingest.service import IngestResult, apply_batch, new_state
from opsdesk.metrics import Sample

log = logging.getLogger("opsdesk.ingest")
MAX_GROUP = 1000


@dataclass(frozen=True)
class AssetRef:
    id: int
    customer_id: int


@dataclass
class _Job:
    asset: AssetRef
    batch: AgentBatch
    future: Future[IngestResult]


class IngestWriter:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, asset: AssetRef, batch: AgentBatch) -> Future[IngestResult]:
        self._ensure_started()
        job = _Job(asset, batch, Future())
        self._queue.put(job)
        return job.future

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
                self._thread.start()

    def close(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(30)
                self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                group.append(job)
            self._write(group)
            if stop:
                return

    def _write(self, group: list[_Job]) -> None:
        now = utcnow()
        try:
            with self.rt.sessions() as session:
                ids = {job.asset.id for job in group}
                states = {
                    s.asset_id: s
                    for s in session.scalars(select(HostState).where(HostState.asset_id.in_(ids)))
                }
                samples: list[Sample] = []
                results: list[IngestResult] = []
                for job in group:
                    state = states.get(job.asset.id)
                    if state is None:
                        state = states[job.asset.id] = new_state(
                            session, job.asset.id, job.asset.customer_id, job.batch, now
                        )
                    result, batch_samples = apply_batch(
                        session, state, job.asset.id, job.asset.customer_id, job.batch, now
                    )
                    samples.extend(batch_samples)
                    results.append(result)
                # Samples first: if the commit below fails, the agent resends and the store drops
                # the samples it already has.
                written = self.rt.metrics.write(samples) if samples else 0
                session.commit()
        except Exception as exc:
            log.exception("ingest group of %d batches failed", len(group))
            for job in group:
                job.future.set_exception(exc)
            return
        if written != sum(r.samples for r in results):
            log.info("metric store dropped %d duplicate samples", sum(r.samples for r in results) - written)
        for job, result in zip(group, results, strict=True):
            job.future.set_result(result)
