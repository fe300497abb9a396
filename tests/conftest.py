"""Shared fixtures: a migrated state store on SQLite or PostgreSQL, a seeded world, live servers."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet

from opsdesk.core import migrate
from opsdesk.core.config import Settings
from opsdesk.core.runtime import Runtime, build_runtime
from opsdesk.web.app import create_app
from tests.world import World, seed_world

PG_ADMIN_URL = os.environ.get("OPSDESK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # In CI a test skipped for a missing service is a failure, not a pass.
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg

    url = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


class PostgresDatabases:
    """Creates throw-away databases on the test PostgreSQL server, and drops them at the end."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.template: str | None = None

    def url(self, name: str) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def create(self, template: str | None = None) -> str:
        name = f"opsdesk_test_{uuid.uuid4().hex[:12]}"
        with _pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.created.append(name)
        return name

    def migrated(self) -> str:
        """A new database at the head revision, copied from a template migrated once."""
        if self.template is None:
            self.template = self.create()
            migrate.upgrade(self.url(self.template))
        return self.url(self.create(template=self.template))

    def drop_all(self) -> None:
        with _pg_admin() as conn:
            for name in reversed(self.created):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    try:
        _pg_admin().close()
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    dbs = PostgresDatabases()
    yield dbs
    dbs.drop_all()


def make_settings(data_dir: Path, database_url: str | None = None, **overrides: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        database={"url": database_url} if database_url else {},
        security={
            "secret_key": "test-secret-key-" + uuid.uuid4().hex,
            "encryption_key": Fernet.generate_key().decode(),
            **overrides.pop("security", {}),  # type: ignore[dict-item]
        },
        **overrides,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """A runtime on a freshly migrated store, on each backend in turn."""
    if backend == "postgresql":
        url = request.getfixturevalue("postgres").migrated()
    else:
        url = f"sqlite:///{tmp_path / 'opsdesk.db'}"
        migrate.upgrade(url)
    rt = build_runtime(make_settings(tmp_path, url))
    yield rt
    rt.close()


@pytest.fixture
def sqlite_runtime(tmp_path: Path) -> Iterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'opsdesk.db'}"
    migrate.upgrade(url)
    rt = build_runtime(make_settings(tmp_path, url))
    yield rt
    rt.close()


@pytest.fixture
def world(runtime: Runtime) -> World:
    return seed_world(runtime)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """opsdesk served by uvicorn on a loopback port, in a thread of the test process."""

    def __init__(self, rt: Runtime) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(rt), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def login(self, username: str, password: str) -> httpx.Client:
        """A browser-like client: logged in through the form, CSRF token at hand."""
        client = self.client()
        page = client.get("/login")
        token = csrf_from(page.text)
        resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        assert resp.status_code == 303, resp.text
        home = client.get("/account")
        client.headers["X-CSRF-Token"] = csrf_from(home.text)
        return client


def csrf_from(html: str) -> str:
    marker = 'name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.fixture
def live(runtime: Runtime) -> Iterator[LiveServer]:
    with LiveServer(runtime) as server:
        yield server
