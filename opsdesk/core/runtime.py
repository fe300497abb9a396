"""The pieces a running opsdesk process shares: settings, engine, session factory."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import opsdesk.models  # noqa: F401  (registers every model and the session hooks)
from opsdesk.core import crypto
from opsdesk.core.config import Settings
from opsdesk.core.db import make_engine, make_sessionmaker

if TYPE_CHECKING:
    from opsdesk.metrics import MetricStore


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    _metrics: MetricStore | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def metrics(self) -> MetricStore:
        """The metric store, opened on first use (the CLI's admin commands never need it)."""
        with self._lock:
            if self._metrics is None:
                from opsdesk.metrics import Retention, open_store
                from opsdesk.metrics.store import DAY_MS

                m = self.settings.metrics
                retention = Retention(
                    raw_ms=m.retention_raw_days * DAY_MS,
                    rollup_5m_ms=m.retention_5m_days * DAY_MS,
                    rollup_1h_ms=m.retention_1h_days * DAY_MS,
                )
                self._metrics = open_store(self.settings.metrics_url, retention)
            return self._metrics

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
        self.engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    crypto.configure([settings.secret("encryption_key")])
    engine = make_engine(settings.database_url, echo=settings.database.echo)
    rt = Runtime(settings=settings, engine=engine, sessions=make_sessionmaker(engine))
    # Code reached through a session (incident notices) finds settings and stores here.
    rt.sessions.configure(info={"runtime": rt})
    return rt
