"""Cost of tenant scoping in the ORM session, beside the same query filtered by hand.

Seeds 500 customers with 40 assets each (20,000 rows) in SQLite, then lists the assets an
engineer assigned to 10 customers may see: once through a session bound to the engineer
(criteria added by opsdesk.tenancy.scoping), once with the filter written into the query
(the baseline). Prints the median time per query for both, and their ratio.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import insert, select

from opsdesk.accounts.principal import Principal, Role
from opsdesk.core import migrate
from opsdesk.core.config import Settings
from opsdesk.core.runtime import build_runtime
from opsdesk.tenancy.models import Asset, Customer
from opsdesk.tenancy.scoping import bind

CUSTOMERS, ASSETS_EACH, ASSIGNED, ROUNDS = 500, 40, 10, 300


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        settings = Settings(
            data_dir=Path(tmp),
            database={"url": url},
            security={"secret_key": "bench", "encryption_key": Fernet.generate_key().decode()},
        )
        rt = build_runtime(settings)
        with rt.sessions.begin() as s:
            s.execute(
                insert(Customer), [{"code": f"C{i}", "name": f"Customer {i}"} for i in range(CUSTOMERS)]
            )
            ids = list(s.scalars(select(Customer.id)))
            s.execute(
                insert(Asset),
                [
                    {"customer_id": cid, "type": "server", "name": f"host-{j}", "tags": []}
                    for cid in ids
                    for j in range(ASSETS_EACH)
                ],
            )
        assigned = frozenset(ids[:ASSIGNED])
        engineer = Principal(user_id=1, label="bench", role=Role.engineer, assigned=assigned)

        def scoped() -> int:
            with rt.sessions() as s:
                bind(s, engineer)
                return len(s.scalars(select(Asset)).all())

        def by_hand() -> int:
            with rt.sessions() as s:
                return len(s.scalars(select(Asset).where(Asset.customer_id.in_(assigned))).all())

        assert scoped() == by_hand() == ASSIGNED * ASSETS_EACH
        results = {}
        for name, fn in (("baseline (filter by hand)", by_hand), ("scoped session", scoped)):
            samples = []
            for _ in range(ROUNDS):
                start = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - start) * 1000)
            results[name] = statistics.median(samples)
        rt.close()
    base, scoped_ms = results["baseline (filter by hand)"], results["scoped session"]
    shown, total = ASSIGNED * ASSETS_EACH, CUSTOMERS * ASSETS_EACH
    print(f"tenant scoping: list {shown} of {total} assets, median of {ROUNDS}")
    print(f"  baseline (filter by hand): {base:.3f} ms/query")
    print(f"  scoped session:            {scoped_ms:.3f} ms/query  ({scoped_ms / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
