"""What the three IM group bots (WeCom, DingTalk, Feishu) share: an answer with an error code."""

from __future__ import annotations

import httpx

from opsdesk.notify.channels.base import DeliveryError, json_of, raise_for_status


def check_answer(resp: httpx.Response, code_field: str, text_field: str, busy: frozenset[int]) -> None:
    """Bots answer HTTP 200 with a code; 0 is success, `busy` codes are rate limits worth a retry."""
    raise_for_status(resp)
    data = json_of(resp)
    code = data.get(code_field, data.get("StatusCode", 0))
    if code not in (0, None):
        raise DeliveryError(f"bot refused ({code}): {data.get(text_field, '')}", retry=code in busy)
