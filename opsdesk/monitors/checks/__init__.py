"""Check types for the probe: one module per type, registered by name.

    config = checks.validate("http", {"url": "https://example.com/", "keyword": "Welcome"})
    async with checks.Checker() as checker:
        result = await checker.run(config)   # attempts and failures_to_alert applied

Importing this package registers every built-in type: http, tls, tcp, ping, dns.
"""

from opsdesk.monitors.checks import dns, http, ping, tcp, tls  # importing registers each type
from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, Series, Status
from opsdesk.monitors.checks.registry import (
    CheckDefinitionError,
    get,
    parse,
    register,
    type_of,
    types,
    validate,
)
from opsdesk.monitors.checks.runner import Checker

__all__ = [
    "Check",
    "CheckConfig",
    "CheckDefinitionError",
    "CheckResult",
    "Checker",
    "Series",
    "Status",
    "dns",
    "get",
    "http",
    "parse",
    "ping",
    "register",
    "tcp",
    "tls",
    "type_of",
    "types",
    "validate",
]
