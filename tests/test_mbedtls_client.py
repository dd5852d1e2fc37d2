"""A firmware-like mbedTLS client against the front door: refusals arrive as alerts, not resets.

mbedTLS (the TLS stack of most device firmware) sends its last handshake messages as separate
writes. A server that writes its fatal alert and closes at once makes the kernel answer those
late writes with a TCP reset, and the device reports "connection reset by peer" instead of the
alert. The door keeps reading after a refusal (``DoorProtocol`` in ``doors/tls_door.py``), so every
refusal below must reach the client as the specific alert, run after run.

The client is ``tests/clients/mbedtls_client.c``, compiled once per session with gcc against
Debian's ``libmbedtls-dev`` (2.28); the tests skip when gcc or the headers are missing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from aws_iot_mock.doors import tls_door
from aws_iot_mock.registry import CertificateStatus
from aws_iot_mock.tls.security_policies import DEFAULT_SECURITY_POLICY, get_security_policy
from tests.conftest import ALLOW_ALL_POLICY, ENDPOINT, Device, RunningBroker, make_config
from tests.test_door import _foreign_device, start

SOURCE = Path(__file__).parent / "clients" / "mbedtls_client.c"
CFLAGS = ("-std=c11", "-O2", "-Wall", "-Wextra", "-Werror")
LIBS = ("-lmbedtls", "-lmbedx509", "-lmbedcrypto")  # Debian's libmbedtls-dev
RUNS = 5  # issue 11: mbedTLS 2.28 saw a reset in 5 of 5 runs against the door that closed at once

# The 18 TLS 1.2 suites of AWS's policies: OpenSSL's names (as AWS and the broker's log print
# them) to IANA's (RFC 5246 appendix A.5, RFC 5289), which the mbedTLS client takes.
IANA_NAMES = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES128-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-RSA-AES128-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-ECDSA-AES128-SHA": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES128-SHA": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-AES256-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    "ECDHE-RSA-AES256-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "ECDHE-RSA-AES256-SHA": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "ECDHE-ECDSA-AES256-SHA": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES128-SHA256": "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "AES128-SHA": "TLS_RSA_WITH_AES_128_CBC_SHA",
    "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "AES256-SHA256": "TLS_RSA_WITH_AES_256_CBC_SHA256",
    "AES256-SHA": "TLS_RSA_WITH_AES_256_CBC_SHA",
}
CONNACK_ACCEPTED = "20020000"

Result = dict[str, object]


@pytest.fixture(scope="session")
def mbedtls_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled client (built once per session), or a skip saying what is missing."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (Debian: apt-get install gcc libc6-dev)")
    probe = subprocess.run(
        [gcc, "-E", "-x", "c", "-"],
        input=b"#include <mbedtls/ssl.h>\n",
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("mbedTLS headers are missing (Debian: apt-get install libmbedtls-dev)")
    binary = tmp_path_factory.mktemp("mbedtls-client") / "mbedtls_client"
    build = subprocess.run(
        [gcc, *CFLAGS, "-o", str(binary), str(SOURCE), *LIBS],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    return binary


async def run_client(
    binary: Path,
    running: RunningBroker,
    device: Device | None,
    *,
    sni: str = ENDPOINT,
    suites: tuple[str, ...] = (),
    alpn: str | None = None,
    mqtt: bool = True,
    door: str = "mqtt",
) -> Result:
    """Run the mbedTLS client once against ``door`` and return its JSON result line."""
    args = [
        "--port",
        str(running.broker.ports[door]),
        "--ca",
        str(running.root_ca_path),
        "--sni",
        sni,
    ]
    if device is not None:
        args += ["--cert", str(device.cert_path), "--key", str(device.key_path)]
    for suite in suites:
        args += ["--suite", suite]
    if alpn is not None:
        args += ["--alpn", alpn]
    if mqtt:
        args += ["--mqtt-connect", "dev-1"]
    process = await asyncio.create_subprocess_exec(
        str(binary), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    lines = stdout.decode().splitlines()
    assert len(lines) == 1, (stdout, stderr)
    result: Result = json.loads(lines[0])
    assert result["stage"] != "setup", result
    return result


def alert(name: str) -> Callable[[Result], bool]:
    return lambda result: result["result"] == "alert" and result["alert_name"] == name


async def assert_each_run_gets_the_alert(
    binary: Path,
    running: RunningBroker,
    device: Device | None,
    *,
    alert_name: str,
    reason: str,
    sni: str = ENDPOINT,
) -> None:
    """``RUNS`` attempts: each reads the alert in the handshake; each is logged exactly once."""
    results = [await run_client(binary, running, device, sni=sni) for _ in range(RUNS)]
    summary = [(r["stage"], r["result"], r.get("alert_name")) for r in results]
    assert summary == [("handshake", "alert", alert_name)] * RUNS, results
    await running.wait_for_record(
        lambda _: sum(r.get("reason") == reason for r in running.records) >= RUNS
    )
    assert [r["reason"] for r in running.failures()] == [reason] * RUNS


async def assert_accepted(
    binary: Path, running: RunningBroker, device: Device, *, sni: str = ENDPOINT
) -> None:
    result = await run_client(binary, running, device, sni=sni)
    assert (result["stage"], result["result"]) == ("mqtt", "ok"), result
    assert result["connack"] == CONNACK_ACCEPTED
    assert result["version"] == "TLSv1.2"


# -- refusals reach the client as alerts, each with its passing twin -------------------------


async def test_unregistered_certificate_gets_certificate_unknown(
    mbedtls_client: Path, running_broker: RunningBroker
) -> None:
    device = running_broker.create_device(register=False)
    await assert_each_run_gets_the_alert(
        mbedtls_client,
        running_broker,
        device,
        alert_name="certificate_unknown",
        reason="CERTIFICATE_NOT_REGISTERED",
    )
    # The twin: the same certificate, registered (with a policy), connects.
    registry = running_broker.broker.registry
    record = registry.register_certificate(device.cert_path.read_bytes(), CertificateStatus.ACTIVE)
    registry.create_policy("allow-all", ALLOW_ALL_POLICY)
    registry.attach_policy("allow-all", record.certificate_arn)
    await assert_accepted(mbedtls_client, running_broker, device)


async def test_certificate_from_another_ca_gets_unknown_ca(
    mbedtls_client: Path, running_broker: RunningBroker, tmp_path: Path
) -> None:
    device = _foreign_device(tmp_path)
    running_broker.broker.registry.register_certificate(
        device.cert_path.read_bytes(), CertificateStatus.ACTIVE
    )
    await assert_each_run_gets_the_alert(
        mbedtls_client,
        running_broker,
        device,
        alert_name="unknown_ca",
        reason="CLIENT_CERTIFICATE_UNTRUSTED",
    )
    # The twin: a certificate from the broker's CA.
    await assert_accepted(mbedtls_client, running_broker, running_broker.create_device())


async def test_revoked_certificate_gets_certificate_revoked(
    mbedtls_client: Path, running_broker: RunningBroker
) -> None:
    device = running_broker.create_device(CertificateStatus.REVOKED)
    await assert_each_run_gets_the_alert(
        mbedtls_client,
        running_broker,
        device,
        alert_name="certificate_revoked",
        reason="CERTIFICATE_NOT_ACTIVE",
    )
    # The twin: the same certificate, active again.
    running_broker.broker.registry.update_certificate_status(
        device.certificate_id, CertificateStatus.ACTIVE
    )
    await assert_accepted(mbedtls_client, running_broker, device)


async def test_wrong_sni_gets_unrecognized_name(
    mbedtls_client: Path, running_broker: RunningBroker
) -> None:
    device = running_broker.create_device()
    await assert_each_run_gets_the_alert(
        mbedtls_client,
        running_broker,
        device,
        sni="wrong.example.com",
        alert_name="unrecognized_name",
        reason="SNI_MISMATCH",
    )
    # The twin: the endpoint's name.
    await assert_accepted(mbedtls_client, running_broker, device, sni=ENDPOINT)


async def test_no_client_certificate_gets_handshake_failure(
    mbedtls_client: Path, running_broker: RunningBroker
) -> None:
    await assert_each_run_gets_the_alert(
        mbedtls_client,
        running_broker,
        None,
        alert_name="handshake_failure",
        reason="CLIENT_CERTIFICATE_MISSING",
    )
    # The twin: the same client presenting a registered certificate.
    await assert_accepted(mbedtls_client, running_broker, running_broker.create_device())


# -- the 18-suite sweep --------------------------------------------------------------------


def test_the_sweep_covers_the_default_policy() -> None:
    policy = get_security_policy(DEFAULT_SECURITY_POLICY)
    assert sorted(IANA_NAMES) == sorted(policy.tls12_suites)
    assert len(IANA_NAMES) == 18


async def test_every_suite_of_the_default_policy_handshakes(
    mbedtls_client: Path, running_broker: RunningBroker
) -> None:
    device = running_broker.create_device()
    outcomes: dict[str, object] = {}
    for openssl_name, iana_name in IANA_NAMES.items():
        running_broker.records.clear()
        result = await run_client(
            mbedtls_client,
            running_broker,
            device,
            suites=(iana_name,),
            alpn="x-amzn-mqtt-ca",
            door="alpn",
        )
        handshake = await running_broker.wait_for_record(
            lambda r: r["eventType"] == "Connect" and "TLS handshake" in str(r.get("details"))
        )
        # The client names the suite in mbedTLS's spelling (IANA's with hyphens); the broker's
        # log in OpenSSL's: both must be the one asked for.
        outcomes[openssl_name] = (
            result["result"],
            result.get("suite"),
            result.get("connack"),
            result.get("alpn"),
            openssl_name in str(handshake["details"]),
        )
    expected = {
        openssl_name: ("ok", iana_name.replace("_", "-"), CONNACK_ACCEPTED, "x-amzn-mqtt-ca", True)
        for openssl_name, iana_name in IANA_NAMES.items()
    }
    assert outcomes == expected


@pytest.mark.parametrize(
    "suite",
    ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"],
)
async def test_suite_outside_the_policy_gets_handshake_failure(
    mbedtls_client: Path, running_broker: RunningBroker, suite: str
) -> None:
    device = running_broker.create_device()
    result = await run_client(mbedtls_client, running_broker, device, suites=(suite,))
    assert (result["stage"], result["result"], result.get("alert_name")) == (
        "handshake",
        "alert",
        "handshake_failure",
    ), result
    await running_broker.wait_for_record(lambda r: r.get("reason") == "NO_SHARED_CIPHER")
    # The twin is the sweep above: every suite inside the policy handshakes.


# -- the linger after a refusal ------------------------------------------------------------


def _client_hello(sni: str) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


async def test_a_refused_client_that_stays_does_not_hold_up_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A linger far longer than stop()'s grace: stop() must close the lingering connection itself.
    monkeypatch.setattr(tls_door, "REFUSAL_LINGER", 600.0)
    running = await start(make_config(tmp_path))
    stopped = False
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(_client_hello("wrong.example.com"))
        # The fatal alert (RFC 5246 section 7.2: level 2, unrecognized_name 112), then FIN: the
        # door sends nothing more, but keeps reading.
        received = await reader.read()
        assert received[0] == 0x15 and received[-2:] == b"\x02\x70"
        writer.write(b"\x16\x03\x03\x00\x01\x00" * 100)  # late handshake bytes: discarded
        await writer.drain()
        await running.wait_for_record(lambda r: r.get("reason") == "SNI_MISMATCH")
        with caplog.at_level(logging.WARNING, logger="aws_iot_mock"):
            await running.broker.stop()
        stopped = True
        assert not [r for r in caplog.records if "still open" in r.getMessage()]
        assert [r["reason"] for r in running.failures()] == ["SNI_MISMATCH"]
        writer.close()
    finally:
        if not stopped:
            await running.broker.stop()
