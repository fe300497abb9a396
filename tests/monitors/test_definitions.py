"""Check definitions: the registry, and refusals that name the offending field."""

from __future__ import annotations

from typing import Any

import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import CheckDefinitionError
from opsdesk.monitors.checks.dns import DnsConfig
from opsdesk.monitors.checks.http import HttpConfig


def refuse(type_name: str, definition: dict[str, Any]) -> CheckDefinitionError:
    with pytest.raises(CheckDefinitionError) as info:
        checks.validate(type_name, definition)
    return info.value


def test_registry_knows_every_type() -> None:
    assert {"http", "tls", "tcp", "ping", "dns"} <= set(checks.types())
    for name in ("http", "tls", "tcp", "ping", "dns"):
        cls = checks.get(name)
        assert cls.type_name == name
        assert issubclass(cls.config_model, checks.CheckConfig)


def test_valid_definition_gets_defaults() -> None:
    config = checks.validate("http", {"url": "https://example.com/health"})
    assert isinstance(config, HttpConfig)
    assert (config.interval_s, config.attempts, config.failures_to_alert) == (60, 1, 1)
    assert config.status_ranges() == [(200, 299)]
    assert config.method == "GET" and config.follow_redirects and config.verify_tls
    assert checks.type_of(config) == "http"


def test_parse_reads_the_type() -> None:
    config = checks.parse({"type": "tcp", "host": "db.example.com", "port": 5432})
    assert checks.type_of(config) == "tcp"
    with pytest.raises(CheckDefinitionError) as info:
        checks.parse({"host": "x"})
    assert "type" in info.value.as_dict()


def test_unknown_type() -> None:
    err = refuse("smtp", {})
    assert "unknown check type 'smtp'" in str(err)
    assert "http" in str(err)  # the known types are listed
    assert "type" in err.as_dict()


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        ({"url": "ftp://example.com/"}, "url", "http or https"),
        ({"url": "example.com"}, "url", "http or https"),
        ({"url": "http:///path"}, "url", "no host"),
        ({"url": "http://example.com:99999/"}, "url", "not a valid URL"),
        ({"url": "http://x/", "interval_s": 5}, "interval_s", "greater than or equal to 10"),
        ({"url": "http://x/", "interval_s": 100000}, "interval_s", "less than or equal to 86400"),
        ({"url": "http://x/", "timeout_s": 0.1}, "timeout_s", "0.5"),
        (
            {"url": "http://x/", "keyword": "a(b", "keyword_regex": True},
            "keyword",
            "invalid regular expression",
        ),
        ({"url": "http://x/", "expected_status": ["abc"]}, "expected_status", "'abc' is not a status code"),
        ({"url": "http://x/", "expected_status": ["299-200"]}, "expected_status", "range"),
        ({"url": "http://x/", "expected_status": [700]}, "expected_status", "'700'"),
        ({"url": "http://x/", "method": "FETCH"}, "method", "GET"),
        ({"url": "http://x/", "headers": {"Bad Header": "x"}}, "headers", "header name"),
        ({"url": "http://x/", "keyword": "k", "method": "HEAD"}, "keyword", "HEAD"),
        ({"url": "http://x/", "attempts": 6}, "attempts", "less than or equal to 5"),
        ({"url": "http://x/", "attempts": 2, "failures_to_alert": 3}, "failures_to_alert", "attempts (2)"),
        ({"url": "http://x/", "colour": "red"}, "colour", "unknown field"),
        ({}, "url", "required"),
    ],
)
def test_http_refusals_name_the_field(definition: dict[str, Any], field: str, words: str) -> None:
    err = refuse("http", definition)
    assert field in err.as_dict(), err.as_dict()
    assert words in err.as_dict()[field]
    assert str(err).startswith("invalid http check: ")
    assert field in str(err)


def test_attempts_must_fit_in_the_interval() -> None:
    err = refuse("http", {"url": "http://x/", "interval_s": 10, "timeout_s": 5, "attempts": 3})
    assert "interval_s" in str(err) and "attempts" in str(err)


@pytest.mark.parametrize(
    ("type_name", "definition", "field", "words"),
    [
        ("tcp", {"host": "db", "port": 70000}, "port", "65535"),
        ("tcp", {"host": "http://db", "port": 80}, "host", "not a host name"),
        ("tcp", {"port": 80}, "host", "required"),
        ("tls", {"host": "x", "min_days_left": -1}, "min_days_left", "0"),
        ("ping", {"host": "x", "count": 0}, "count", "1"),
        ("ping", {"host": "x", "count": 20, "packet_interval_s": 1, "timeout_s": 5}, "", "timeout_s"),
        ("dns", {"name": "x.example", "record_type": "SRV"}, "record_type", "'A'"),
        ("dns", {"name": "x.example", "expected": ["not-an-ip"]}, "expected", "not an IPv4 address"),
        ("dns", {"name": "x.example", "record_type": "AAAA", "expected": ["1.2.3.4"]}, "expected", "IPv6"),
        ("dns", {"name": "x.example", "nameserver": "dns.example"}, "nameserver", "not an IP address"),
        ("dns", {"name": "bad..name"}, "name", "not a domain name"),
    ],
)
def test_other_refusals(type_name: str, definition: dict[str, Any], field: str, words: str) -> None:
    err = refuse(type_name, definition)
    assert field in err.as_dict(), err.as_dict()
    assert words in err.as_dict()[field]


def test_dns_expected_values_are_normalised() -> None:
    config = checks.validate(
        "dns",
        {
            "name": "example.com",
            "record_type": "mx",
            "expected": ["10 MAIL.example.com.", "backup.example.com"],
        },
    )
    assert isinstance(config, DnsConfig)
    assert config.record_type == "MX"
    assert config.expected == ["10 mail.example.com", "backup.example.com"]
