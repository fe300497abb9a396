"""Alibaba Cloud RPC-style API calls with signature version 1.0 (HMAC-SHA1).

The documented canonicalisation: every parameter but Signature, sorted by name, each name and
value percent-encoded per RFC 3986 (space as %20, ``~`` kept), joined as ``a=1&b=2``; the string
to sign is ``POST&%2F&`` + percent-encode(that); the key is the AccessKey secret plus ``&``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

import httpx
from pydantic import AfterValidator, Field

from opsdesk.notify.channels.base import ChannelConfig, DeliveryError, http_url, json_of

# Codes worth another try: throttling and the provider's own faults.
RETRY_CODES = frozenset(
    {"Throttling", "Throttling.User", "isv.BUSINESS_LIMIT_CONTROL", "ServiceUnavailable", "InternalError"}
)
API_VERSION = "2017-05-25"
OUT_ID_MAX = 64


class AliyunConfig(ChannelConfig):
    endpoint: Annotated[str, AfterValidator(http_url)]
    access_key_id: str = Field(min_length=8)
    access_key_secret: str = Field(min_length=8)
    region_id: str = "cn-hangzhou"
    timeout: float = Field(10, gt=0, le=60)


def percent(value: str) -> str:
    return quote(value, safe="~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()))
    return f"{method}&{percent('/')}&{percent(canonical)}"


def signature(secret: str, method: str, params: dict[str, str]) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def out_id(key: str) -> str:
    """The idempotency key as OutId, which the provider echoes in its receipts; hashed if long."""
    return key if len(key) <= OUT_ID_MAX else hashlib.sha256(key.encode()).hexdigest()[:OUT_ID_MAX]


async def call(http: httpx.AsyncClient, config: AliyunConfig, action: str, params: dict[str, str]) -> dict:
    signed = {
        **params,
        "Action": action,
        "Version": API_VERSION,
        "Format": "JSON",
        "RegionId": config.region_id,
        "AccessKeyId": config.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    signed["Signature"] = signature(config.access_key_secret, "POST", signed)
    resp = await http.post(config.endpoint, data=signed, timeout=config.timeout)
    try:
        data = json_of(resp)
    except DeliveryError as exc:
        exc.retry = resp.status_code >= 500 or resp.status_code == 429
        raise
    code = str(data.get("Code", ""))
    if code != "OK":
        retry = code in RETRY_CODES or resp.status_code >= 500
        raise DeliveryError(f"Alibaba Cloud {action} {code}: {data.get('Message', '')}", retry=retry)
    return data
