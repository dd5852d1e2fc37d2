"""Shared fixtures: a real broker on 127.0.0.1 port 0 with fresh certs and state per test.

Nothing here mocks the broker: tests talk TLS to a listening socket. Certificates come from the
broker's own PKI (the code under test for the CLI, a fixture here for the front door tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aws_iot_mock import pki
from aws_iot_mock.certs_dir import CertsDirectory, write_private_key, write_public_file
from aws_iot_mock.config import Config, LimitsConfig, ListenerConfig, LoggingConfig, TlsConfig
from aws_iot_mock.registry import CertificateStatus
from aws_iot_mock.server.app import Broker
from tests.serve_child import ServeChild

ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
ALLOW_ALL_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
)


@dataclass(frozen=True)
class Device:
    """A device's files, as a user would pass them to a TLS client."""

    certificate_id: str
    cert_path: Path
    key_path: Path


@dataclass
class RunningBroker:
    """A started broker plus what tests need to talk to it and read its log."""

    broker: Broker
    config: Config
    records: list[dict[str, object]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.broker.port

    @property
    def root_ca_path(self) -> Path:
        return self.broker.root_ca_path

    def file_records(self) -> list[dict[str, object]]:
        """The JSON lines written to the log file, parsed as ``jq`` would."""
        assert self.config.logging.file is not None
        assert self.broker.sink.flush(), "the log file did not catch up"
        lines = self.config.logging.file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def failures(self) -> list[dict[str, object]]:
        return [r for r in self.records if r["status"] == "Failure"]

    async def wait_for_record(
        self, predicate: Callable[[Mapping[str, object]], bool], timeout: float = 10.0
    ) -> dict[str, object]:
        """Wait until a record matching ``predicate`` has been emitted (no sleeps)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # Arm the event before scanning: a record emitted after the scan sets it.
            self._changed = changed = asyncio.Event()
            for record in self.records:
                if predicate(record):
                    return record
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no matching record; have {self.records!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _on_record(self, record: Mapping[str, object]) -> None:
        self.records.append(dict(record))
        self._changed.set()

    def create_device(
        self,
        status: CertificateStatus = CertificateStatus.ACTIVE,
        *,
        register: bool = True,
        name: str = "device",
        policy: str | None = ALLOW_ALL_POLICY,
    ) -> Device:
        """Issue a device certificate from the broker's CA, optionally registering it.

        A registered certificate gets ``policy`` attached (a document; by default one that
        allows every action, so tests about other features are not refused by authorization,
        as a device with no policy is on AWS). ``policy=None`` attaches none.
        """
        certs = CertsDirectory(self.config.certs_dir)
        issued = pki.issue_device_certificate(certs.ensure_root_ca())
        assert issued.private_key_pem is not None
        directory = self.config.certs_dir / "test-devices"
        directory.mkdir(exist_ok=True)
        cert_path = directory / f"{name}-{issued.certificate_id[:12]}.cert.pem"
        key_path = directory / f"{name}-{issued.certificate_id[:12]}.private.key"
        write_public_file(cert_path, issued.certificate_pem)
        write_private_key(key_path, issued.private_key_pem)
        if register:
            registry = self.broker.registry
            record = registry.register_certificate(issued.certificate_pem, status)
            if policy is not None:
                policy_name = f"{name}-{issued.certificate_id[:12]}-policy"
                registry.create_policy(policy_name, policy)
                registry.attach_policy(policy_name, record.certificate_arn)
        return Device(issued.certificate_id, cert_path, key_path)


# Every door of the data endpoint, each on a port the OS picks.
TEST_LISTENERS = tuple(
    ListenerConfig(door, 0, host="127.0.0.1") for door in ("mqtt", "https", "alpn")
)


def make_config(tmp_path: Path, **tls: object) -> Config:
    """A config for tests: port 0, fresh directories, an AWS-shaped endpoint, a log file.

    AWS's per-connection quotas are lifted (a test reconnects the same client ID at once, which
    AWS throttles); ``tests/test_aws_quotas.py`` turns them back on to test them.
    """
    return Config(
        endpoint=ENDPOINT,
        listeners=TEST_LISTENERS,
        tls=TlsConfig(**tls),  # type: ignore[arg-type]
        certs_dir=tmp_path / "certs",
        state_dir=tmp_path / "state",
        logging=LoggingConfig(level="DEBUG", file=tmp_path / "logs" / "iot.jsonl", stdout=False),
        limits=LimitsConfig(aws_quotas=False),
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``transport``: in memory, over TLS, or both.

    MQTT tests run in memory through the device core; a socket twin per behaviour family
    (``@pytest.mark.socket_twin``) runs over TLS too, and a test about TLS or TCP itself
    (``@pytest.mark.tls_only``) runs over TLS only.
    """
    if "transport" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("tls_only"):
        transports = ["tls"]
    elif metafunc.definition.get_closest_marker("socket_twin"):
        transports = ["memory", "tls"]
    else:
        transports = ["memory"]
    metafunc.parametrize("transport", transports)


@pytest.fixture(autouse=True, scope="session")
def _private_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hermetic: the parsed-config cache (aws_iot_mock.config_cache) of this process and of its
    serve children lives in the session's temporary directory, never the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@contextlib.asynccontextmanager
async def started_broker(config: Config) -> AsyncIterator[RunningBroker]:
    """A broker on ``config``, started, its records captured; stopped on exit."""
    broker = Broker(config)
    running = RunningBroker(broker, config)
    broker.sink.add_listener(running._on_record)
    await broker.start()
    try:
        yield running
    finally:
        await broker.stop()


@pytest.fixture
async def running_broker(config: Config) -> AsyncIterator[RunningBroker]:
    async with started_broker(config) as running:
        yield running


@pytest.fixture
async def quota_broker(config: Config) -> AsyncIterator[RunningBroker]:
    """``running_broker`` with AWS's per-connection quotas enforced, as by default."""
    broker = Broker(dataclasses.replace(config, limits=LimitsConfig(aws_quotas=True)))
    running = RunningBroker(broker, broker.config)
    broker.sink.add_listener(running._on_record)
    await broker.start()
    try:
        yield running
    finally:
        await broker.stop()


def client_context(
    root_ca: Path,
    device: Device | None = None,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A client context as a device would build one: trust the root CA, present a cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(root_ca))
    if device is not None:
        ctx.load_cert_chain(str(device.cert_path), str(device.key_path))
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def blocking_handshake(
    port: int, ctx: ssl.SSLContext, server_hostname: str | None, payload: bytes = b""
) -> ssl.SSLSocket:
    """Connect and handshake with a blocking socket (run it in a thread from async tests).

    For TLS 1.3 the server judges the client certificate after the client's handshake is done,
    so callers send ``payload`` and read to see the verdict.
    """
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if server_hostname is None:
        ctx.check_hostname = False
    tls = ctx.wrap_socket(raw, server_hostname=server_hostname)
    if payload:
        tls.sendall(payload)
    return tls


# An MQTT 3.1.1 CONNECT with client ID "dev-1", clean session, keep-alive 60.
MQTT311_CONNECT = bytes.fromhex("101100044d5154540402003c0005") + b"dev-1"
MQTT311_CONNACK_ACCEPTED = bytes.fromhex("20020000")


@pytest.fixture
def children() -> Iterator[list[ServeChild]]:
    started: list[ServeChild] = []
    yield started
    for child in started:
        child.close()
