"""The audit log page, for admins."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
