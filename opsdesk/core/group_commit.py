"""Group commit: one thread stores the work of many requests in one write.

A durable write (an fsync) per agent batch or per check result caps a server at a few hundred a
second. A committer takes every job queued while the previous group was being written, lets its
`apply` function turn them into rows (in one state-store session) and samples, writes the samples
with one metric-store write, commits once, then answers each job's future. Each caller still gets
its own answer, and only after its data is durable.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from opsdesk.core.db import utcnow
from opsdesk.core.runtime import Runtime
from opsdesk.metrics import Sample

J = TypeVar("J")
R = TypeVar("R")
MAX_GROUP = 1000
log = logging.getLogger("opsdesk.group_commit")

# apply(session, jobs, now) -> (samples to store, one result per job, in order)
Apply = Callable[[Session, list[J], datetime], tuple[list[Sample], list[R]]]


class GroupCommitter(Generic[J, R]):
    def __init__(self, rt: Runtime, apply: Apply[J, R], name: str) -> None:
        self.rt, self.apply, self.name = rt, apply, name
        self._queue: queue.Queue[tuple[J, Future[R]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, job: J) -> Future[R]:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        future: Future[R] = Future()
        self._queue.put((job, future))
        return future

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
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
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._write(group)
            if stop:
                return

    def _write(self, group: list[tuple[J, Future[R]]]) -> None:
        try:
            with self.rt.sessions() as session:
                samples, results = self.apply(session, [job for job, _ in group], utcnow())
                # Samples first: if the commit fails the sender retries, and the metric store
                # drops the samples it already has.
                if samples:
                    self.rt.metrics.write(samples)
                session.commit()
        except Exception as exc:
            log.exception("%s: group of %d failed", self.name, len(group))
            for _, future in group:
                if not future.cancelled():  # the waiting request went away
                    future.set_exception(exc)
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.cancelled():
                future.set_result(result)
