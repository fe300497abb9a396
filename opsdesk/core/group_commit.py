"""Group commit: one thread stores the work of many requests in one write.

A durable write (an fsync) per agent batch or per check result caps a server at a few hundred a
second. A committer takes every job queued while the previous group was being written, lets its
`apply` function turn them into rows (in one state-store session) and samples, writes the samples
with one metric-store write, commits once, then answers each job's future. Each caller still gets
its own answer, and only after its data is durable.

Coroutines should `await run(job)` rather than wrap submit()'s future: each wrapped future wakes
the event loop on its own, and every wake-up made the committer thread give up the GIL and wait
for it again (up to the 5 ms switch interval while requests keep the loop busy), per job. run()
answers a whole group with one wake-up per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from opsdesk.metrics import Block, MetricStore, Sample

J = TypeVar("J")
R = TypeVar("R")
W = TypeVar("W")  # what a group stores in the metric store: samples, or blocks of them
MAX_GROUP = 1000
log = logging.getLogger("opsdesk.group_commit")

# apply(session, jobs, now) -> (samples to store, one result per job, in order)
Apply = Callable[[Session, list[J], datetime], tuple[list[W], list[R]]]
Store = Callable[[MetricStore, list[W]], int]  # write_samples or write_blocks


def write_samples(store: MetricStore, samples: list[Sample]) -> int:
    return store.write(samples)


def write_blocks(store: MetricStore, blocks: list[Block]) -> int:
    return store.write_blocks(blocks)


Waiter = Future[R] | asyncio.Future[R]  # submit()'s, or run()'s on the caller's event loop


class GroupCommitter(Generic[J, R, W]):
    def __init__(
        self,
        rt: Runtime,
        apply: Apply[J, W, R],  # the alias takes its parameters in order of use: J, W, R
        name: str,
        store: Store[W],
    ) -> None:
        self.rt, self.apply, self.name, self.store = rt, apply, name, store
        # SimpleQueue: put() is one C call, made on the event loop for every job.
        self._queue: queue.SimpleQueue[tuple[J, Waiter[R]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, job: J) -> Future[R]:
        """From any thread: a future answered once the job's group is durable."""
        self._start()
        future: Future[R] = Future()
        self._queue.put((job, future))
        return future

    async def run(self, job: J) -> R:
        """From a coroutine: the job's result once its group is durable (or its exception)."""
        self._start()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put((job, future))
        return await future

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

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

    def _write(self, group: list[tuple[J, Waiter[R]]]) -> None:
        try:
            with self.rt.sessions() as session:
                samples, results = self.apply(session, [job for job, _ in group], utcnow())
                # Samples first: if the commit fails the sender retries, and the metric store
                # drops the samples it already has.
                if samples:
                    self.store(self.rt.metrics, samples)
                session.commit()
        except Exception as exc:
            log.exception("%s: group of %d failed", self.name, len(group))
            failed: list[Answer[R]] = [(future, None, exc) for _, future in group]
            _answer(failed)
            return
        _answer([(future, result, None) for (_, future), result in zip(group, results, strict=True)])


Answer = tuple["Waiter[R]", "R | None", "BaseException | None"]


def _answer(answers: list[Answer[R]]) -> None:
    """Settle thread futures here, and asyncio ones with one call into each of their loops."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Answer[R]]] = {}
    for answer in answers:
        future = answer[0]
        if isinstance(future, asyncio.Future):
            by_loop.setdefault(future.get_loop(), []).append(answer)
        else:
            _settle([answer])
    for loop, some in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, some)


def _settle(answers: list[Answer[R]]) -> None:
    for future, result, exc in answers:
        if future.cancelled():  # the waiting request went away
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]
