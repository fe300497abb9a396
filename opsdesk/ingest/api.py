"""The agent endpoint: agent tokens only, one batch per request, all or nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from opsdesk.accounts import tokens
from opsdesk.core.db import utcnow
from opsdesk.core.runtime import Runtime
from opsdesk.ingest.service import BatchRejected, PayloadTooLarge, decompress, parse, store_batch
from opsdesk.tenancy.models import Asset

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])


def _ingest(rt: Runtime, token: str, raw: bytes) -> dict[str, Any]:
    now = utcnow()
    with rt.sessions() as session:
        row = tokens.lookup(session, token)
        if row is None:
            raise HTTPException(
                401, "unknown, revoked or expired token", headers={"WWW-Authenticate": "Bearer"}
            )
        if row.asset_id is None:
            raise HTTPException(403, "not an agent token: issue one for the host's asset")
        asset = session.get(Asset, row.asset_id)
        if asset is None:
            raise HTTPException(403, "the token's asset no longer exists")
        try:
            batch = parse(raw, rt.settings.ingest, int(now.timestamp() * 1000))
        except BatchRejected as exc:
            raise HTTPException(422, str(exc)) from exc
        result = store_batch(session, rt.metrics, asset, batch, now)
        row.last_used_at = now
        session.commit()
    return result.reply()


@router.post(
    "/agent",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}
    },
)
async def ingest_agent_batch(request: Request) -> dict[str, Any]:
    """Push one agent batch (gzip-compressed JSON, `Content-Encoding: gzip`). See docs/agent.md."""
    rt: Runtime = request.app.state.runtime
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        raise HTTPException(401, "agent token required", headers={"WWW-Authenticate": "Bearer"})
    limits = rt.settings.ingest
    body = await request.body()
    if len(body) > limits.max_body_bytes:
        raise HTTPException(413, f"body over {limits.max_body_bytes} bytes; send smaller batches")
    try:
        raw = decompress(
            body, request.headers.get("content-encoding", "").lower(), limits.max_decompressed_bytes
        )
    except PayloadTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    except BatchRejected as exc:
        raise HTTPException(422, str(exc)) from exc
    return await run_in_threadpool(_ingest, rt, auth[7:].strip(), raw)
