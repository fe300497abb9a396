"""Check types for the probe: one module per type, registered by name.

    config = checks.validate("http", {"url": "https://example.com/", "keyword": "Welcome"})
    async with checks.Checker() as checker:
        result = await checker.run(config)   # attempts and failures_to_alert applied

Importing this package registers every built-in type: http, tls, tcp, ping, dns, and the middleware
and database types nginx, php_fpm, tomcat, mysql, postgresql, redis, oracle, the Prometheus scrape
prometheus, and process, log and script, which only agents run (Check.host_local).
"""

from opsdesk.monitors.checks import (  # importing registers each type
    dns,
    http,
    logfile,
    mysql,
    nginx,
    oracle,
    php_fpm,
    ping,
    postgresql,
    process,
    prometheus,
    redis,
    script,
    tcp,
    tls,
    tomcat,
)
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
    "logfile",
    "mysql",
    "nginx",
    "oracle",
    "parse",
    "php_fpm",
    "ping",
    "postgresql",
    "process",
    "prometheus",
    "redis",
    "register",
    "script",
    "tcp",
    "tls",
    "tomcat",
    "type_of",
    "types",
    "validate",
]
