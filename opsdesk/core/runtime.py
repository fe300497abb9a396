"""The pieces a running opsdesk process shares: settings, engine, session factory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import opsdesk.models  # noqa: F401  (registers every model and the session hooks)
from opsdesk.core import crypto
from opsdesk.core.config import Settings
from opsdesk.core.db import make_engine, make_sessionmaker


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    crypto.configure([settings.secret("encryption_key")])
    engine = make_engine(settings.database_url, echo=settings.database.echo)
    return Runtime(settings=settings, engine=engine, sessions=make_sessionmaker(engine))
