"""``tls/memory_bio.release_buffer``: an empty memory BIO gives its buffer back and keeps working.

Real OpenSSL objects throughout: the BIOs of a server ``SSLObject`` that completed a mutual-TLS
handshake with a client ``SSLObject`` in memory, then exchanged application data after the
release. No memory figure is asserted: only that the release happened (where this interpreter
supports it, as CPython with OpenSSL does) and that nothing the BIO held or will hold is lost.
"""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import pytest

from aws_iot_mock import pki
from aws_iot_mock.certs_dir import CertsDirectory, write_private_key, write_public_file
from aws_iot_mock.tls.context import ServerCredentials, create_server_context
from aws_iot_mock.tls.memory_bio import release_buffer
from aws_iot_mock.tls.security_policies import get_security_policy
from tests.conftest import Device, client_context

SUPPORTED = ssl.OPENSSL_VERSION.startswith("OpenSSL") and ssl.OPENSSL_VERSION_INFO >= (1, 1, 1)
needs_openssl = pytest.mark.skipif(not SUPPORTED, reason="release_buffer needs OpenSSL >= 1.1.1")


@needs_openssl
def test_an_empty_bio_is_released_and_keeps_working() -> None:
    bio = ssl.MemoryBIO()
    bio.write(b"x" * 4096)
    assert bio.read() == b"x" * 4096

    assert release_buffer(bio) is True

    bio.write(b"after")
    bio.write(b" the release")
    assert bio.pending == len(b"after the release")
    assert bio.read(5) == b"after"
    assert bio.read() == b" the release"
    bio.write_eof()
    assert bio.eof


def test_a_bio_holding_bytes_is_left_alone() -> None:
    bio = ssl.MemoryBIO()
    bio.write(b"x" * 4096)
    bio.read(4000)

    assert release_buffer(bio) is False

    assert bio.read() == b"x" * 96


@dataclasses.dataclass(frozen=True)
class _End:
    """One side of an in-memory TLS connection."""

    tls: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO


def _open(context: ssl.SSLContext, *, server_side: bool) -> _End:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    hostname = None if server_side else "localhost"
    tls = context.wrap_bio(incoming, outgoing, server_side=server_side, server_hostname=hostname)
    return _End(tls, incoming, outgoing)


def _handshake(server: _End, client: _End) -> None:
    done = {"server": False, "client": False}
    for _ in range(10):
        for name, end, peer in (("client", client, server), ("server", server, client)):
            if not done[name]:
                try:
                    end.tls.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer.incoming.write(end.outgoing.read())
        if all(done.values()):
            return
    raise AssertionError("the in-memory handshake did not complete")


@needs_openssl
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_tls_session_continues_after_its_bios_are_released(
    tmp_path: Path, version: ssl.TLSVersion
) -> None:
    certs = CertsDirectory(tmp_path / "certs")
    certs.ensure_server_certificates(["localhost"])
    issued = pki.issue_device_certificate(certs.ensure_root_ca())
    assert issued.private_key_pem is not None
    device = Device(issued.certificate_id, tmp_path / "device.pem", tmp_path / "device.key")
    write_public_file(device.cert_path, issued.certificate_pem)
    write_private_key(device.key_path, issued.private_key_pem)
    # The broker's own 8883 context (mutual TLS), with a policy that offers both versions.
    server_context = create_server_context(
        get_security_policy("IoTSecurityPolicy_TLS13_1_2_2022_10"),
        8883,
        ServerCredentials(
            rsa_cert_path=certs.server_rsa_cert_path,
            rsa_key_path=certs.server_rsa_key_path,
            ecdsa_cert_path=certs.server_ecdsa_cert_path,
            ecdsa_key_path=certs.server_ecdsa_key_path,
            client_ca_path=certs.root_ca_path,
        ),
    )
    context = client_context(certs.root_ca_path, device, minimum=version, maximum=version)
    server = _open(server_context, server_side=True)
    client = _open(context, server_side=False)
    _handshake(server, client)

    assert release_buffer(server.outgoing) is True
    assert release_buffer(server.incoming) is True

    client.tls.write(b"CONNECT" * 100)
    server.incoming.write(client.outgoing.read())
    assert server.tls.read(4096) == b"CONNECT" * 100
    server.tls.write(b"CONNACK")
    client.incoming.write(server.outgoing.read())
    assert client.tls.read(4096) == b"CONNACK"
    assert server.tls.getpeercert(binary_form=True) is not None
