"""Server-side ``ssl.SSLContext`` objects built from an AWS IoT TLS security policy.

One function, one frozen input: ``create_server_context(policy, port, credentials, ...)``. Every
setting carries a comment naming the AWS IoT rule it mirrors (see
``aws_iot_mock.tls.security_policies`` for the table and AWS's "Transport security in AWS IoT
Core", https://docs.aws.amazon.com/iot/latest/developerguide/transport-security.html, for the
source).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_iot_mock.tls.security_policies import SecurityPolicy, TlsVersion

__all__ = ["ServerCredentials", "create_server_context"]

# RFC 7919 ffdhe2048, for the one DHE suite AWS lists (DHE-RSA-AES256-SHA, legacy 2015 policy).
# CPython 3.11 does not enable OpenSSL's automatic DH parameters, and generating our own takes
# seconds, so the well-known group is embedded.
_FFDHE2048_PEM = """\
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

SniCheck = Callable[[str | None], int | None]


@dataclass(frozen=True)
class ServerCredentials:
    """The files a server context loads.

    Attributes:
        rsa_cert_path: server certificate with an RSA 2048 key (for ECDHE-RSA-* and RSA suites).
        rsa_key_path: its private key.
        ecdsa_cert_path: server certificate with an ECDSA P-256 key (for ECDHE-ECDSA-* suites; AWS
            serves an ECC chain for those, Amazon Root CA 3).
        ecdsa_key_path: its private key.
        client_ca_path: the root CA that device certificates must chain to.
    """

    rsa_cert_path: Path
    rsa_key_path: Path
    ecdsa_cert_path: Path
    ecdsa_key_path: Path
    client_ca_path: Path


def create_server_context(
    policy: SecurityPolicy,
    port: int,
    credentials: ServerCredentials,
    *,
    sni_check: SniCheck | None = None,
    extra_client_cas: Sequence[str] = (),
    require_client_certificate: bool = True,
    alpn_protocols: Sequence[str] = (),
) -> ssl.SSLContext:
    """Build the server context that enforces ``policy`` on ``port``.

    Args:
        policy: the AWS TLS security policy.
        port: the AWS port of the door (443, 8443 or 8883); legacy policies differ between 443
            and 8443/8883.
        credentials: server certificates (both key types) and the client-certificate trust root.
        sni_check: called from OpenSSL's servername callback with the SNI ``host_name`` (None
            when absent); returns None to accept or an ``ssl.ALERT_DESCRIPTION_*`` to refuse
            with that alert. The caller decides which names are valid.
        extra_client_cas: PEM CA certificates trusted for client certificates besides
            ``credentials.client_ca_path`` (CAs registered with register-ca-certificate).
        require_client_certificate: True on 8883 and 8443 (X.509 only); False on 443, where
            a certificate is requested but SigV4 clients send none, and the door decides after
            the handshake.
        alpn_protocols: ALPN names the server selects from, in its order of preference; empty
            to ignore the client's ALPN extension.

    Returns:
        A context that requests (or requires) a client certificate, negotiates only the
        policy's versions and suites, and issues no session tickets.

    Raises:
        ssl.SSLError: if OpenSSL rejects the suite list or the certificate files.
        OSError: if a file cannot be read.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Mutual TLS: AWS IoT refuses X.509 connections without a client certificate (protocols.md);
    # on 443 a certificate is optional at the TLS layer (SigV4 clients send none).
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cafile=str(credentials.client_ca_path))
    for ca_pem in extra_client_cas:
        ctx.load_verify_locations(cadata=ca_pem)

    versions = policy.versions
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_2 if TlsVersion.TLS1_2 in versions else ssl.TLSVersion.TLSv1_3
    )
    ctx.maximum_version = (
        ssl.TLSVersion.TLSv1_3 if TlsVersion.TLS1_3 in versions else ssl.TLSVersion.TLSv1_2
    )

    suites = policy.suites_for_port(port)
    # A TLS 1.3-only policy leaves OpenSSL's default 1.2 list in place: unreachable, since the
    # minimum version above is 1.3 (sslscan in tests/test_sslscan.py confirms 1.2 is off).
    if suites:
        # Exactly the policy's TLS 1.2 suites. "@SECLEVEL=1": Debian's OpenSSL defaults to
        # level 2, which keeps these suites today but would drop the legacy policies' SHA-1
        # based suites on a stricter build; AWS still negotiates them, so this context (and only
        # this one) says level 1 explicitly. TLS 1.3 suites are OpenSSL's defaults, which are
        # exactly AWS's three (CPython cannot set them).
        ctx.set_ciphers(":".join(suites) + ":@SECLEVEL=1")
    # The server picks, in the table's order (AWS marks the AES128-GCM suites "recommended").
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    # "AWS IoT Core doesn't support the SessionTicket TLS extension" (transport-security).
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    # Compression is off in OpenSSL 3 already; say so for older builds (CRIME).
    ctx.options |= ssl.OP_NO_COMPRESSION
    if "DHE-RSA-AES256-SHA" in suites:
        _load_dh_params(ctx)

    # Both key types in one context: OpenSSL picks the certificate that fits the negotiated
    # suite, as AWS serves an RSA or an ECC chain depending on it (server-authentication.md).
    ctx.load_cert_chain(str(credentials.rsa_cert_path), str(credentials.rsa_key_path))
    ctx.load_cert_chain(str(credentials.ecdsa_cert_path), str(credentials.ecdsa_key_path))
    if alpn_protocols:
        ctx.set_alpn_protocols(list(alpn_protocols))

    if sni_check is not None:
        check = sni_check

        def _servername_callback(
            _ssl_object: ssl.SSLObject | ssl.SSLSocket,
            server_name: str | None,
            _context: ssl.SSLContext,
        ) -> int | None:
            return check(server_name)

        ctx.sni_callback = _servername_callback
    return ctx


def _load_dh_params(ctx: ssl.SSLContext) -> None:
    # SSLContext.load_dh_params takes only a path (as load_cert_chain does). Imported here: only
    # a legacy policy needs it, and tempfile (random, shutil, bz2, lzma) is a noticeable part
    # of the start-up before the first handshake.
    import tempfile  # noqa: PLC0415

    with tempfile.NamedTemporaryFile("w", suffix=".pem") as handle:
        handle.write(_FFDHE2048_PEM)
        handle.flush()
        ctx.load_dh_params(handle.name)
