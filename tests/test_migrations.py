"""`opsdesk db upgrade` gives the same schema on SQLite and PostgreSQL; downgrade reaches base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from opsdesk.core import migrate
from opsdesk.core.db import make_engine
from opsdesk.models import Base
from tests.conftest import PostgresDatabases


def _generic(sql_type: Any) -> str:
    name = type(sql_type.as_generic()).__name__
    # PostgreSQL reflects FLOAT as DOUBLE PRECISION; it is the type the migration asked for.
    return "Float" if name == "Double" else name


def schema(url: str) -> dict[str, Any]:
    """Tables, columns (generic type, nullability), indexes, uniques and foreign keys."""
    engine = make_engine(url)
    try:
        insp = inspect(engine)
        out: dict[str, Any] = {}
        for table in sorted(insp.get_table_names()):
            out[table] = {
                "columns": {c["name"]: (_generic(c["type"]), c["nullable"]) for c in insp.get_columns(table)},
                "pk": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in insp.get_indexes(table)
                    if not i.get("duplicates_constraint")  # PostgreSQL lists uniques as indexes too
                ),
                "uniques": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
                "fks": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                    for f in insp.get_foreign_keys(table)
                ),
            }
        return out
    finally:
        engine.dispose()


def model_drift(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


def test_same_schema_on_sqlite_and_postgresql(tmp_path: Path, postgres: PostgresDatabases) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'empty.db'}"
    pg_url = postgres.url(postgres.create())
    migrate.upgrade(sqlite_url)
    migrate.upgrade(pg_url)
    lite, pg = schema(sqlite_url), schema(pg_url)
    assert set(lite) >= {
        "customers",
        "contracts",
        "assets",
        "contacts",
        "users",
        "audit_log",
        "alembic_version",
    }
    assert lite == pg
    # ...and it is the schema the models describe, on both.
    assert model_drift(sqlite_url) == []
    assert model_drift(pg_url) == []
    assert migrate.current(sqlite_url) == migrate.current(pg_url) is not None


def test_downgrade_to_base_and_up_again(tmp_path: Path, postgres: PostgresDatabases) -> None:
    for url in (f"sqlite:///{tmp_path / 'down.db'}", postgres.url(postgres.create())):
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        assert set(schema(url)) <= {"alembic_version"}
        assert migrate.current(url) is None
        migrate.upgrade(url)
        assert "customers" in schema(url)
