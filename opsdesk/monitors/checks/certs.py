"""TLS helpers shared by the HTTP and TLS checks: client contexts and certificate error codes."""

from __future__ import annotations

import ssl

# OpenSSL X509_V_ERR_* values that get a code of their own.
_EXPIRED = 10
_NOT_YET_VALID = 9
_HOSTNAME_MISMATCH = 62
_IP_MISMATCH = 64


def client_context(
    verify: bool = True, ca_file: str | None = None, cls: type[ssl.SSLContext] = ssl.SSLContext
) -> ssl.SSLContext:
    """A TLS client context: the system trust store (or `ca_file`) and hostname checks, or no checks."""
    ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def verify_error_code(exc: BaseException) -> tuple[str, str]:
    """Code and short message for a certificate verification failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = str(exc.verify_message or exc.reason or exc).rstrip(".")
        if exc.verify_code == _EXPIRED:
            return "tls_expired", "certificate has expired"
        if exc.verify_code == _NOT_YET_VALID:
            return "tls_not_yet_valid", "certificate is not yet valid"
        if exc.verify_code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
            return "tls_hostname", f"certificate does not match the host name: {reason}"
        return "tls_untrusted", f"certificate is not trusted: {reason}"
    return "tls_error", f"TLS handshake failed: {exc}"
