"""Import assets from CSV: every row is checked first; one bad row and nothing is imported."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.tenancy.models import Asset, Customer
from opsdesk.tenancy.schemas import AssetIn

COLUMNS = ("type", "name", "url", "ip", "notes", "tags")
MAX_ROWS = 50_000


@dataclass
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportFailed(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(str(e) for e in errors[:20]))
        self.errors = errors


def parse(text: str, existing_names: set[str] | None = None) -> list[AssetIn]:
    """Validate the whole file; raise ImportFailed listing each bad row by its line number."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("type", "name") if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown:
        msg = "header must name the columns " + ", ".join(COLUMNS)
        if missing:
            msg += f"; missing: {', '.join(missing)}"
        if unknown:
            msg += f"; unknown: {', '.join(unknown)}"
        raise ImportFailed([RowError(1, msg)])
    reader.fieldnames = header
    seen = set(existing_names or ())
    rows: list[AssetIn] = []
    errors: list[RowError] = []
    for record in reader:
        line = reader.line_num
        if len(rows) + len(errors) >= MAX_ROWS:
            errors.append(RowError(line, f"more than {MAX_ROWS} rows"))
            break
        if None in record:
            errors.append(RowError(line, "more fields than the header names"))
            continue
        values = {k: (v or "").strip() for k, v in record.items()}
        tags = [t.strip() for t in values.pop("tags", "").replace("|", ";").split(";") if t.strip()]
        try:
            asset = AssetIn(**values, tags=tags)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            errors.append(RowError(line, f"{field}: {err['msg']}"))
            continue
        if asset.name in seen:
            errors.append(RowError(line, f"name: asset {asset.name!r} already exists"))
            continue
        seen.add(asset.name)
        rows.append(asset)
    if errors:
        raise ImportFailed(errors)
    return rows


def import_assets(
    session: Session, customer: Customer, text: str, progress: Callable[[int], None] | None = None
) -> int:
    """Validate then insert all rows in the caller's transaction; return how many."""
    existing = set(session.scalars(select(Asset.name).where(Asset.customer_id == customer.id)))
    rows = parse(text, existing)
    for asset in rows:
        session.add(Asset(customer_id=customer.id, **asset.model_dump()))
        if progress:
            progress(1)
    session.flush()
    return len(rows)
