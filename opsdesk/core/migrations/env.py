"""Alembic environment: the URL comes from opsdesk's configuration (or the caller's Config)."""

from __future__ import annotations

from alembic import context

from opsdesk.core.db import make_engine
from opsdesk.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run() -> None:
    assert url, "sqlalchemy.url must be set by opsdesk.core.migrate"
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
