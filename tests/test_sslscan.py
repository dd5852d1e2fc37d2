"""An external scanner (Debian's ``sslscan``) proves what the listener negotiates, per policy.

sslscan enumerates TLS 1.2 suites with complete OpenSSL handshakes: it counts a suite as
accepted only when ``SSL_connect`` succeeds. The broker requires a client certificate, so without
one every TLS 1.2 handshake ends in handshake_failure after the ServerHello and sslscan lists no
TLS 1.2 suite at all (``test_without_client_certificate_sslscan_sees_no_tls12_suite``). The
scans therefore present a registered device certificate (``--certs``/``--pk``), as a device
would, and the broker's own "handshake accepted" log records are checked against the scan.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.server.app import Broker
from tests.conftest import ENDPOINT, RunningBroker, make_config
from tests.test_policies import AWS_TLS13_SUITES, EXPECTED

SSLSCAN = shutil.which("sslscan")

pytestmark = [
    pytest.mark.sslscan,
    pytest.mark.skipif(
        SSLSCAN is None, reason="sslscan is not installed (apt-get install sslscan)"
    ),
]

# One scan takes ~0.2-1.5 s on loopback; this only bounds a hung scanner.
_SCAN_TIMEOUT = 30.0
# Port 0 makes the broker use the 8883 column of the table (broker.server.app._create_contexts).
_TABLE_PORT = 8883


def _suite_names_by_code() -> dict[int, str]:
    """OpenSSL's name for each suite code, so IANA names (newer sslscan) map back."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return {int(c["id"]) & 0xFFFF: str(c["name"]) for c in ctx.get_ciphers()}


_NAMES_BY_CODE = _suite_names_by_code()


@dataclass(frozen=True)
class ScanResult:
    """What sslscan reported: enabled protocols and accepted suites per TLS version."""

    protocols: Mapping[str, bool]
    suites: Mapping[str, frozenset[str]]
    xml: str

    def suites_for(self, version: str) -> frozenset[str]:
        return self.suites.get(version, frozenset())


def parse_sslscan_xml(text: str) -> ScanResult:
    root = ET.fromstring(text)
    test = root.find("ssltest")
    assert test is not None, text
    protocols = {
        f"{p.get('type')}{p.get('version')}": p.get("enabled") == "1" for p in test.iter("protocol")
    }
    suites: dict[str, set[str]] = {}
    for cipher in test.iter("cipher"):
        if cipher.get("status") not in ("accepted", "preferred"):
            continue
        name = str(cipher.get("cipher"))
        code = cipher.get("id")
        if code is not None and int(code, 16) in _NAMES_BY_CODE:
            name = _NAMES_BY_CODE[int(code, 16)]
        suites.setdefault(str(cipher.get("sslversion")), set()).add(name)
    return ScanResult(protocols, {k: frozenset(v) for k, v in suites.items()}, text)


async def run_sslscan(port: int, *extra: str) -> ScanResult:
    assert SSLSCAN is not None
    process = await asyncio.create_subprocess_exec(
        SSLSCAN,
        "--no-colour",
        "--xml=-",
        "--no-heartbleed",
        "--no-compression",
        "--no-renegotiation",
        "--no-groups",
        f"--sni-name={ENDPOINT}",
        *extra,
        f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), _SCAN_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")
    # --xml=- writes the XML document after the human-readable text on stdout.
    text = stdout.decode(errors="replace")
    start = text.find("<?xml")
    assert start >= 0, text
    return parse_sslscan_xml(text[start:])


StartBroker = Callable[[str], Awaitable[RunningBroker]]


@pytest.fixture
async def start_broker(tmp_path: Path) -> AsyncIterator[StartBroker]:
    """Start brokers with a given policy (port 0, fresh PKI); all are stopped afterwards."""
    started: list[Broker] = []

    async def start(policy: str) -> RunningBroker:
        config = make_config(tmp_path / policy, security_policy=policy)
        broker = Broker(config)
        running = RunningBroker(broker, config)
        broker.sink.add_listener(running._on_record)
        await broker.start()
        started.append(broker)
        return running

    try:
        yield start
    finally:
        for broker in started:
            await broker.stop()


def _accepted_by_broker(running: RunningBroker) -> dict[str, set[str]]:
    """Suites the broker itself logged as accepted, per TLS version."""
    prefix = "TLS handshake: "
    accepted: dict[str, set[str]] = {}
    for record in running.records:
        details = str(record.get("details", ""))
        if record["logLevel"] == "DEBUG" and details.startswith(prefix):
            version, suite = details[len(prefix) :].split(",", maxsplit=1)[0].split()
            accepted.setdefault(version, set()).add(suite)
    return accepted


@pytest.mark.parametrize("policy", list(EXPECTED))
async def test_sslscan_sees_exactly_the_policy(start_broker: StartBroker, policy: str) -> None:
    running = await start_broker(policy)
    device = running.create_device()
    scan = await run_sslscan(running.port, f"--certs={device.cert_path}", f"--pk={device.key_path}")
    expected = EXPECTED[policy]
    has_12 = any(v.value == "TLSv1.2" for v in expected.versions)
    has_13 = any(v.value == "TLSv1.3" for v in expected.versions)

    for old in ("ssl2", "ssl3", "tls1.0", "tls1.1"):
        assert scan.protocols[old] is False, (old, scan.xml)
    assert scan.protocols["tls1.2"] is has_12
    assert scan.protocols["tls1.3"] is has_13

    assert scan.suites_for("TLSv1.2") == expected.suites_by_port[_TABLE_PORT], scan.xml
    assert scan.suites_for("TLSv1.3") == (AWS_TLS13_SUITES if has_13 else frozenset())
    assert not set(scan.suites) - {"TLSv1.2", "TLSv1.3"}, scan.suites

    # The broker agrees: it logged an accepted handshake for exactly the suites sslscan got.
    # A TLS 1.3 client finishes before the server reads its Finished, so the last records may
    # still be in flight when sslscan exits: wait for them rather than read them once.
    scanned = {version: set(suites) for version, suites in scan.suites.items()}
    await running.wait_for_record(lambda _record: _accepted_by_broker(running) == scanned)
    print(
        f"{policy}: sslscan accepted {len(scan.suites_for('TLSv1.2'))} TLSv1.2 + "
        f"{len(scan.suites_for('TLSv1.3'))} TLSv1.3 suites"
    )


async def test_without_client_certificate_sslscan_sees_no_tls12_suite(
    start_broker: StartBroker,
) -> None:
    # Documents why the scans above present a certificate: TLS 1.2 needs the whole handshake.
    running = await start_broker("IoTSecurityPolicy_TLS12_1_2_2022_10")
    scan = await run_sslscan(running.port)
    assert scan.protocols["tls1.2"] is True
    assert scan.suites_for("TLSv1.2") == frozenset()
    reasons = {record.get("reason") for record in running.failures()}
    assert Reason.CLIENT_CERTIFICATE_MISSING.name in reasons
    assert _accepted_by_broker(running) == {}
