"""Real middleware for the middleware and database check tests, each on free loopback ports with its
configuration in a temporary directory (no system service is used or changed):

- `WebStack`: nginx with /stub_status, serving php-fpm's status page (/fpm-status) and PHP scripts
  through fastcgi_pass to a php-fpm pool of its own (a unix socket in the directory).
- `TomcatServer`: Debian's tomcat10 run from /usr/share/tomcat10 with its own CATALINA_BASE, the
  manager app from tomcat10-admin, and a user with the manager-status role.
- `RedisServer`: a redis-server of its own (optionally with a password, or as a replica).

Each can be stopped and started again on the same ports (`stop()` / `start()`), for the tests that
check that a monitor goes down and recovers. Missing binaries fail the test in CI (CI=true) and
skip it elsewhere; scripts/test-services.sh installs them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.nginx_fixture import find_nginx, free_port

IN_CI = os.environ.get("CI", "").lower() == "true"
SBIN = "/usr/sbin:/usr/local/sbin:/usr/bin:/usr/local/bin"
TOMCAT_HOME = Path("/usr/share/tomcat10")
MANAGER_APP = Path("/usr/share/tomcat10-admin/manager")
TOMCAT_USER, TOMCAT_PASSWORD = "opsdesk-status", "s3cret-tomcat-pw"


def require(binary: str | None, what: str) -> str:
    """The binary's path; without one the test fails in CI and is skipped elsewhere."""
    if binary is None:
        message = f"{what} is not installed: run scripts/test-services.sh"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return binary


def find_php_fpm() -> str | None:
    found = shutil.which("php-fpm", path=SBIN)
    if found:
        return found
    versions = sorted(Path("/usr/sbin").glob("php-fpm*"))
    return str(versions[-1]) if versions else None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Process:
    """A server process that can be stopped and started again with the same command."""

    name: str
    cmd: list[str]
    port: int | None  # waited for on start; None: wait for `ready_path`
    log: Path
    env: dict[str, str] | None = None
    ready_path: Path | None = None
    start_timeout_s: float = 20.0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: stop() ends its children too
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.port is not None and _listening(self.port):
                return
            if self.ready_path is not None and self.ready_path.exists():
                return
            time.sleep(0.1)
        output = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not start: {output}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if self.port is not None:
            deadline = time.monotonic() + 5
            while _listening(self.port) and time.monotonic() < deadline:
                time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# --- nginx + php-fpm ------------------------------------------------------------------------------

PHP_FPM_CONF = """
[global]
pid = {d}/php-fpm.pid
error_log = {d}/php-fpm.log
daemonize = no

[opsdesk]
{user}
listen = {d}/php-fpm.sock
listen.mode = 0666
pm = static
pm.max_children = 2
pm.status_path = /fpm-status
ping.path = /fpm-ping
catch_workers_output = yes
"""

NGINX_CONF = """
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        location = /stub_status {{ stub_status; }}
        location = /fpm-status {{
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param SCRIPT_NAME /fpm-status;
            fastcgi_param SCRIPT_FILENAME /fpm-status;
            fastcgi_pass unix:{d}/php-fpm.sock;
        }}
        location ~ \\.php$ {{
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{d}/php-fpm.sock;
        }}
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@dataclass
class WebStack:
    directory: Path
    port: int
    nginx: Process
    php_fpm: Process

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stub_status(self) -> str:
        return f"{self.base}/stub_status"

    @property
    def fpm_status(self) -> str:
        return f"{self.base}/fpm-status"

    def stop(self) -> None:
        self.nginx.stop()
        self.php_fpm.stop()


def start_web_stack(directory: Path) -> WebStack:
    nginx_bin = require(find_nginx(), "nginx")
    fpm_bin = require(find_php_fpm(), "php-fpm")
    d = directory.resolve()
    for sub in ("tmp", "www"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "www" / "hello.php").write_text("<?php echo 'hello from php ', PHP_VERSION, \"\\n\";\n")
    root = os.geteuid() == 0
    (d / "php-fpm.conf").write_text(
        PHP_FPM_CONF.format(d=d, user="user = root\ngroup = root" if root else "")
    )
    fpm_cmd = [fpm_bin, "--nodaemonize", "--fpm-config", str(d / "php-fpm.conf")] + (["-R"] if root else [])
    php_fpm = Process("php-fpm", fpm_cmd, None, d / "php-fpm.out", ready_path=d / "php-fpm.sock")
    php_fpm.start()
    port = free_port()
    (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, port=port, user="user root;" if root else ""))
    nginx_cmd = [nginx_bin, "-p", f"{d}/", "-c", str(d / "nginx.conf"), "-g", "daemon off;"]
    nginx = Process("nginx", nginx_cmd, port, d / "nginx.out")
    try:
        nginx.start()
    except RuntimeError:
        php_fpm.stop()
        raise
    return WebStack(d, port, nginx, php_fpm)


@pytest.fixture(scope="session")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    stack = start_web_stack(tmp_path_factory.mktemp("webstack"))
    try:
        yield stack
    finally:
        stack.stop()


# --- tomcat ----------------------------------------------------------------------------------------

SERVER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <GlobalNamingResources>
    <Resource name="UserDatabase" auth="Container" type="org.apache.catalina.UserDatabase"
              factory="org.apache.catalina.users.MemoryUserDatabaseFactory"
              pathname="conf/tomcat-users.xml" readonly="true"/>
  </GlobalNamingResources>
  <Service name="Catalina">
    <Connector port="{port}" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="20000"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Realm className="org.apache.catalina.realm.UserDatabaseRealm" resourceName="UserDatabase"/>
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
"""

USERS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<tomcat-users xmlns="http://tomcat.apache.org/xml" version="1.0">
  <role rolename="manager-status"/>
  <user username="{user}" password="{password}" roles="manager-status"/>
</tomcat-users>
"""


@dataclass
class TomcatServer:
    base: Path
    port: int
    process: Process
    user: str = TOMCAT_USER
    password: str = TOMCAT_PASSWORD

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/manager/status"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def start_tomcat(directory: Path) -> TomcatServer:
    require(str(TOMCAT_HOME / "bin" / "catalina.sh") if (TOMCAT_HOME / "bin").exists() else None, "tomcat10")
    require(str(MANAGER_APP) if MANAGER_APP.exists() else None, "tomcat10-admin")
    base = directory.resolve()
    for sub in ("conf/Catalina/localhost", "logs", "temp", "work", "webapps/ROOT"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for name in ("web.xml", "logging.properties", "catalina.properties", "context.xml"):
        shutil.copy(Path("/etc/tomcat10") / name, base / "conf" / name)
    (base / "webapps" / "ROOT" / "index.html").write_text("<html><body>tomcat ok</body></html>\n")
    port = free_port()
    (base / "conf" / "server.xml").write_text(SERVER_XML.format(port=port))
    (base / "conf" / "tomcat-users.xml").write_text(
        USERS_XML.format(user=TOMCAT_USER, password=TOMCAT_PASSWORD)
    )
    (base / "conf" / "Catalina" / "localhost" / "manager.xml").write_text(
        f'<Context docBase="{MANAGER_APP}" privileged="true" antiResourceLocking="false"/>\n'
    )
    env = {
        **os.environ,
        "CATALINA_HOME": str(TOMCAT_HOME),
        "CATALINA_BASE": str(base),
        "CATALINA_TMPDIR": str(base / "temp"),
        "CATALINA_PID": str(base / "tomcat.pid"),
        "JAVA_OPTS": "-Xmx192m -Xss512k -XX:+UseSerialGC -Djava.security.egd=file:/dev/urandom",
    }
    cmd = [str(TOMCAT_HOME / "bin" / "catalina.sh"), "run"]
    process = Process("tomcat", cmd, port, base / "logs" / "console.log", env=env, start_timeout_s=90)
    process.start()
    server = TomcatServer(base, port, process)
    _wait_manager(server, time.monotonic() + 60)
    return server


def _wait_manager(server: TomcatServer, deadline: float) -> None:
    """The connector listens before the manager app is deployed: wait for its status page."""
    import httpx

    while time.monotonic() < deadline:
        try:
            resp = httpx.get(server.status_url, auth=(server.user, server.password), timeout=5)
            if resp.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(
        "tomcat manager did not come up: " + server.process.log.read_text(errors="replace")[-3000:]
    )


@pytest.fixture(scope="session")
def tomcat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TomcatServer]:
    server = start_tomcat(tmp_path_factory.mktemp("tomcat"))
    try:
        yield server
    finally:
        server.process.stop()


# --- redis -----------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    process: Process
    password: str | None = None

    def stop(self) -> None:
        self.process.stop()

    def start(self) -> None:
        self.process.start()


def _redis(name: str, directory: Path, extra: list[str]) -> tuple[int, Process]:
    """A redis-server on a free loopback port with no persistence, started with `extra` options."""
    binary = require(shutil.which("redis-server", path=SBIN), "redis-server")
    d = directory.resolve()
    d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d)]
    cmd += ["--save", "", "--appendonly", "no", *extra]
    process = Process(name, cmd, port, d / f"redis-{port}.log")
    process.start()
    return port, process


def start_redis(directory: Path, password: str | None = None) -> RedisServer:
    port, process = _redis("redis-server", directory, ["--requirepass", password] if password else [])
    return RedisServer(port, process, password)


def start_redis_replica(directory: Path, primary: RedisServer) -> RedisServer:
    """A redis-server replicating from `primary` (with its password)."""
    extra = ["--replicaof", "127.0.0.1", str(primary.port)]
    if primary.password:
        extra += ["--masterauth", primary.password]
    port, process = _redis("redis-replica", directory, extra)
    return RedisServer(port, process, None)


# --- a throwaway PostgreSQL cluster (initdb), to stop and start ------------------------------------


def find_pg_bin() -> Path | None:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return versions[-1].parent if versions else None


@dataclass
class PostgresCluster:
    directory: Path
    port: int
    process: Process

    def stop(self) -> None:
        self.process.stop()

    def start(self) -> None:
        self.process.start()
        self.wait_ready()

    def wait_ready(self, within_s: float = 30.0) -> None:
        """The port opens before the server accepts logins ("the database system is starting up")."""
        import psycopg

        deadline = time.monotonic() + within_s
        while True:
            try:
                psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def start_postgres_cluster() -> PostgresCluster:
    """initdb into a new directory and run postgres on a free port (trust on loopback; as user
    postgres when the tests run as root, since postgres refuses to run as root)."""
    import tempfile

    pg_bin = require(str(find_pg_bin()) if find_pg_bin() else None, "postgresql")
    directory = Path(tempfile.mkdtemp(prefix="opsdesk-pgmon-"))
    data = directory / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, f"{pg_bin}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    cmd = [*as_user, f"{pg_bin}/postgres", "-D", str(data), "-p", str(port), "-k", str(directory)]
    cmd += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "shared_buffers=16MB"]
    process = Process("postgres", cmd, port, directory / "postgres.log", start_timeout_s=60)
    cluster = PostgresCluster(directory, port, process)
    cluster.start()
    return cluster


# --- running monitors through the probe -------------------------------------------------------------


class ProbeHarness:
    """Monitors stored in a real state store and run by the real Probe, run by run.

    `run(monitor_id)` makes one scheduled run (the config read from the store, secrets decrypted,
    the result recorded) and returns the monitor's state afterwards, so a test can count runs
    (intervals) until a state changes.
    """

    def __init__(self, rt: object, customer_id: int) -> None:
        import asyncio

        from opsdesk.core.runtime import Runtime
        from opsdesk.monitors.probe import Probe
        from opsdesk.monitors.results import ResultWriter

        assert isinstance(rt, Runtime)
        self.rt = rt
        self.customer_id = customer_id
        self.writer = ResultWriter(rt)
        self.probe = Probe(rt, self.writer)
        self.loop = asyncio.Runner()

    def add(self, type_name: str, config: dict[str, object]) -> int:
        from opsdesk.monitors.models import Monitor, MonitorState, Runner
        from opsdesk.monitors.service import check_definition

        with self.rt.sessions.begin() as s:
            stored = check_definition(s, self.customer_id, type_name, config, None, Runner.platform, None)
            monitor = Monitor(
                customer_id=self.customer_id,
                name=f"{type_name} under test",
                type=type_name,
                config=stored,
                runner=Runner.platform,
                state=MonitorState.unknown,
            )
            s.add(monitor)
            s.flush()
            return int(monitor.id)

    def run(self, monitor_id: int) -> str:
        from opsdesk.monitors import secrets
        from opsdesk.monitors.models import Monitor

        with self.rt.sessions() as s:
            monitor = s.get(Monitor, monitor_id)
            assert monitor is not None
            config = secrets.runnable(monitor.type, monitor.config)
        self.last = self.loop.run(self.probe.run_now(monitor_id, config))
        with self.rt.sessions() as s:
            monitor = s.get(Monitor, monitor_id)
            assert monitor is not None
            return str(monitor.state.value)

    def close(self) -> None:
        self.loop.run(self.probe.checker.aclose())
        self.loop.close()
        self.writer.close()


def assert_down_then_recovers(
    harness: ProbeHarness, monitor_id: int, stop: object, start: object, code: str = "connect_refused"
) -> None:
    """Up; after `stop()` down within two runs (two intervals); after `start()` up again."""
    assert callable(stop) and callable(start)
    assert harness.run(monitor_id) == "up", harness.last
    stop()
    states = [harness.run(monitor_id)]
    if states[-1] != "down":
        states.append(harness.run(monitor_id))
    assert states[-1] == "down", (states, harness.last)
    assert harness.last.level == "critical" and harness.last.code == code, harness.last
    start()
    assert harness.run(monitor_id) == "up", harness.last


@pytest.fixture
def harness(sqlite_runtime: object) -> Iterator[ProbeHarness]:
    """A ProbeHarness on a fresh SQLite store with the seeded world (customer A)."""
    from tests.world import seed_world

    world = seed_world(sqlite_runtime)  # type: ignore[arg-type]
    h = ProbeHarness(sqlite_runtime, world.a.customer)
    try:
        yield h
    finally:
        h.close()
