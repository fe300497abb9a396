"""The nginx test server itself: its locations answer as the check tests expect."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

import pytest

from tests import nginx_fixture
from tests.nginx_fixture import NginxServer


def test_locations(nginx: NginxServer) -> None:
    with urllib.request.urlopen(nginx.url("/"), timeout=5) as resp:
        assert nginx.keyword in resp.read().decode()
    with urllib.request.urlopen(nginx.url("/stub_status"), timeout=5) as resp:
        assert "Active connections" in resp.read().decode()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(nginx.url("/error"), timeout=5)
    assert info.value.code == 500
    ctx = ssl.create_default_context(cafile=nginx.ca_file)
    with urllib.request.urlopen(nginx.https_ca + "/", timeout=5, context=ctx) as resp:
        assert resp.status == 200


def test_missing_nginx_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nginx_fixture, "find_nginx", lambda: None)
    monkeypatch.setattr(nginx_fixture, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="nginx is not installed"):
        nginx_fixture.require_nginx()
    monkeypatch.setattr(nginx_fixture, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        nginx_fixture.require_nginx()
