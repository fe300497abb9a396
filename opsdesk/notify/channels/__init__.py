"""Channel registry: importing this package registers every channel module."""

from opsdesk.notify.channels import (  # noqa: F401  (each module registers itself)
    aliyun_sms,
    aliyun_voice,
    dingtalk,
    email,
    feishu,
    twilio,
    webhook,
    wecom,
)
from opsdesk.notify.channels.base import (
    REGISTRY,
    Channel,
    DeliveryError,
    InvalidChannel,
    Message,
    channel_for,
    parse_config,
    split_secrets,
)

__all__ = [
    "REGISTRY",
    "Channel",
    "DeliveryError",
    "InvalidChannel",
    "Message",
    "channel_for",
    "parse_config",
    "split_secrets",
]
