"""A real nginx on loopback for check tests and benchmarks.

`start_nginx(workdir)` writes certificates, pages and a config under `workdir`, starts nginx with
that directory as its prefix on free 127.0.0.1 ports, and returns an `NginxServer`; `stop()` ends it.
The session fixture `nginx` wraps both. Servers:

- http: plain HTTP
- https_self: a self-signed certificate for "localhost", valid SELF_SIGNED_DAYS days
- https_expired: a certificate for "localhost" from the test CA that expired EXPIRED_DAYS_AGO days ago
- https_ca: a certificate for "localhost" from the test CA (file `ca_file`), valid CA_LEAF_DAYS days

Each serves the same locations: / (contains KEYWORD), /nokeyword, /slow (about SLOW_SECONDS seconds
to send), /error (500), /redirect1 -> /redirect2 -> / (302 then 301), /loop (redirects to itself),
/echo (method, body length and the X-Opsdesk-Test header in the body), /stub_status.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KEYWORD = "opsdesk-ok"
SELF_SIGNED_DAYS = 90
CA_LEAF_DAYS = 30
EXPIRED_DAYS_AGO = 10
SLOW_BYTES = 64 * 1024
SLOW_RATE = 32 * 1024
SLOW_SECONDS = 1.0  # nginx sends the first second's worth at once

IN_CI = os.environ.get("CI", "").lower() == "true"


def find_nginx() -> str | None:
    """Path of the nginx binary (Debian puts it in /usr/sbin, which may be off PATH)."""
    return shutil.which("nginx") or shutil.which(
        "nginx", path="/usr/sbin:/usr/local/sbin:/usr/local/nginx/sbin"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    self_signed: tuple[Path, Path]
    expired: tuple[Path, Path]
    ca_leaf: tuple[Path, Path]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _leaf(
    hostname: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer if issuer else (_name(hostname), key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hostname))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert, key


def make_pki(directory: Path, hostname: str = "localhost") -> Pki:
    """A test CA and three server certificates for `hostname`: self-signed, expired and CA-signed."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("opsdesk test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=60))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    issued = {
        "self_signed": _leaf(
            hostname, now - dt.timedelta(minutes=5), now + dt.timedelta(days=SELF_SIGNED_DAYS), None
        ),
        "expired": _leaf(
            hostname,
            now - dt.timedelta(days=EXPIRED_DAYS_AGO + 30),
            now - dt.timedelta(days=EXPIRED_DAYS_AGO),
            (ca_name, ca_key),
        ),
        "ca_leaf": _leaf(
            hostname, now - dt.timedelta(minutes=5), now + dt.timedelta(days=CA_LEAF_DAYS), (ca_name, ca_key)
        ),
    }
    paths: dict[str, tuple[Path, Path]] = {}
    for label, (cert, key) in issued.items():
        cert_path, key_path = directory / f"{label}.crt", directory / f"{label}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        paths[label] = (cert_path, key_path)
    return Pki(ca_file, paths["self_signed"], paths["expired"], paths["ca_leaf"])


# --- nginx --------------------------------------------------------------------------------------

LOCATIONS = """
root {www};
absolute_redirect off;
location = / {{ try_files /index.html =404; }}
location = /nokeyword {{ try_files /nokeyword.html =404; }}
location = /slow {{ limit_rate {rate}; try_files /slow.bin =404; }}
location = /error {{ return 500 "internal error\\n"; }}
location = /redirect1 {{ return 302 /redirect2; }}
location = /redirect2 {{ return 301 /; }}
location = /loop {{ return 302 /loop; }}
location = /echo {{
    client_body_buffer_size 64k;
    return 200 "method=$request_method length=$content_length header=$http_x_opsdesk_test\\n";
}}
location = /stub_status {{ stub_status; }}
"""

CONFIG = """
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    default_type text/html;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    ssl_session_cache off;
    ssl_session_tickets off;
    server {{
        listen 127.0.0.1:{http};
        server_name localhost;
        include {prefix}/locations.conf;
    }}
{tls_servers}
}}
"""

TLS_SERVER = """
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        include {prefix}/locations.conf;
    }}
"""


@dataclass
class NginxServer:
    prefix: Path
    http_port: int
    https_self_port: int
    https_expired_port: int
    https_ca_port: int
    closed_port: int
    pki: Pki
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    keyword = KEYWORD
    self_signed_days = SELF_SIGNED_DAYS
    ca_leaf_days = CA_LEAF_DAYS
    expired_days_ago = EXPIRED_DAYS_AGO
    slow_seconds = SLOW_SECONDS

    @property
    def http(self) -> str:
        """Base URL of the plain HTTP server, by name ("localhost")."""
        return f"http://localhost:{self.http_port}"

    @property
    def http_ip(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_self(self) -> str:
        return f"https://localhost:{self.https_self_port}"

    @property
    def https_expired(self) -> str:
        return f"https://localhost:{self.https_expired_port}"

    @property
    def https_ca(self) -> str:
        return f"https://localhost:{self.https_ca_port}"

    @property
    def ca_file(self) -> str:
        return str(self.pki.ca_file)

    def url(self, path: str, base: str | None = None) -> str:
        return (base or self.http) + path

    def error_log(self) -> str:
        log = self.prefix / "logs" / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        proc = self.process
        if proc is None:
            return
        self.process = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _wait_listening(ports: list[int], proc: subprocess.Popen[bytes], deadline: float) -> bool:
    pending = list(ports)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        port = pending[0]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pending.pop(0)
        except OSError:
            time.sleep(0.05)
    return not pending


def start_nginx(workdir: Path, nginx: str | None = None) -> NginxServer:
    """Start nginx with `workdir` as its prefix; raises RuntimeError with nginx's log if it fails."""
    binary = nginx or find_nginx()
    if binary is None:
        raise RuntimeError(
            "nginx is not installed (Debian package 'nginx'; scripts/test-services.sh installs it)"
        )
    prefix = workdir.resolve()
    for sub in ("logs", "tmp", "www"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    pki = make_pki(prefix / "pki")
    www = prefix / "www"
    (www / "index.html").write_text(f"<html><body><h1>{KEYWORD}</h1><p>all good</p></body></html>\n")
    (www / "nokeyword.html").write_text("<html><body><p>nothing to see here</p></body></html>\n")
    (www / "slow.bin").write_bytes(b"s" * SLOW_BYTES)
    (prefix / "locations.conf").write_text(LOCATIONS.format(www=www, rate=SLOW_RATE))

    last_error = ""
    for _ in range(3):  # a free port may be taken between choosing it and nginx binding it
        ports = [free_port() for _ in range(5)]
        if len(set(ports)) < 5:
            continue
        http, https_self, https_expired, https_ca, closed = ports
        server = NginxServer(prefix, http, https_self, https_expired, https_ca, closed, pki=pki)
        tls = [
            (server.https_self_port, pki.self_signed),
            (server.https_expired_port, pki.expired),
            (server.https_ca_port, pki.ca_leaf),
        ]
        tls_servers = "".join(
            TLS_SERVER.format(port=port, cert=cert, key=key, prefix=prefix) for port, (cert, key) in tls
        )
        # A root master would hand workers to "nobody", who cannot read a private temp directory.
        user = "user root;" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            CONFIG.format(user=user, prefix=prefix, http=server.http_port, tls_servers=tls_servers)
        )
        log = prefix / "logs" / "error.log"
        cmd = [binary, "-p", f"{prefix}/", "-c", "nginx.conf", "-e", str(log), "-g", "daemon off;"]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        server.process = proc
        listening = [
            server.http_port,
            server.https_self_port,
            server.https_expired_port,
            server.https_ca_port,
        ]
        if _wait_listening(listening, proc, time.monotonic() + 15):
            return server
        server.stop()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        last_error = f"{stderr}\n{server.error_log()}".strip()
        if "Address already in use" not in last_error:
            break
    raise RuntimeError(f"nginx did not start: {last_error or 'no output'}")


def require_nginx() -> str:
    """The nginx binary; without one the test fails in CI (CI=true) and is skipped elsewhere."""
    binary = find_nginx()
    if binary is None:
        message = "nginx is not installed: run scripts/test-services.sh (Debian package 'nginx')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def nginx() -> Iterator[NginxServer]:
    """A running nginx for the whole test session."""
    binary = require_nginx()
    with tempfile.TemporaryDirectory(prefix="opsdesk-nginx-") as tmp:
        server = start_nginx(Path(tmp), binary)
        try:
            yield server
        finally:
            server.stop()
