"""Console pages for customers, contracts, services, assets, contacts and staff."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
