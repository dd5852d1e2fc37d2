"""``IotBroker`` (async) and ``IotBrokerThread`` (sync): an in-process broker for test suites.

Both start the real broker (the TLS door, the MQTT core, IoT policies) on 127.0.0.1, port 0, with
a fresh temporary directory for certificates and state, and remove everything when stopped. The
registry methods are the CLI verbs, returning the same data; ``create_device`` does the usual
thing + certificate + policy dance in one call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import json
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from aws_iot_mock import pki
from aws_iot_mock.authz.iot_policy_evaluation import resource_arn
from aws_iot_mock.certs_dir import CertsDirectory, write_private_key, write_public_file
from aws_iot_mock.config import Config
from aws_iot_mock.core.ingress import Publisher, PublishRequest
from aws_iot_mock.iam.authorization import ALLOW_ALL_IOT
from aws_iot_mock.iam.store import IamStore
from aws_iot_mock.logs.cloudwatch import ConnectionFacts
from aws_iot_mock.mqtt.codec import Properties
from aws_iot_mock.mqtt.topics import topic_matches, validate_topic_filter
from aws_iot_mock.registry import CertificateRegistry, CertificateStatus
from aws_iot_mock.server.app import Broker
from aws_iot_mock.testing._recorder import Recorder, RoutedMessage

__all__ = [
    "DeviceFiles",
    "IamCredentials",
    "IotBroker",
    "IotBrokerThread",
    "ShadowRejectedError",
    "default_device_policy",
]

_T = TypeVar("_T")

DEFAULT_TIMEOUT = 5.0
_LOOPBACK = "127.0.0.1"
# The doors a test broker serves, each on a port the OS picks: the data endpoint's three and
# the control plane (boto3 / the aws CLI with endpoint_url).
_TEST_DOORS = ("mqtt", "https", "alpn", "api")
_POLICY_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")
_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# How long a client helper waits for the broker's refusal record after a failed connect (the
# broker writes the record before it closes the socket, so it is normally already there).
_REFUSAL_GRACE = 2.0

PolicyDocument = str | Mapping[str, Any]
Payload = bytes | str | Mapping[str, Any]
# The principal of the cloud side's publishes and shadow requests in log records.
CLOUD_PRINCIPAL = "aws-iot-mock-testing"


class ShadowRejectedError(Exception):
    """A shadow request the Device Shadow service answered on ``/rejected``.

    Attributes:
        code: the HTTP-style code AWS puts in the error document (400, 404, 409, ...).
        message: AWS's message, e.g. ``Version conflict``.
        document: the whole ``/rejected`` document.
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.code = int(document.get("code", 0))
        self.message = str(document.get("message", ""))
        self.document = dict(document)
        super().__init__(f"{self.code} {self.message}")


def _payload_bytes(payload: Payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` on top; nested mappings merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _merged(current, value)
        else:
            merged[key] = value
    return merged


def default_device_policy(
    thing_name: str, *, region: str = "us-east-1", account_id: str = "123456789012"
) -> dict[str, Any]:
    """The policy ``create_device`` attaches when given none: least privilege for one thing.

    The device may connect only with its thing name as client ID, and publish (retained too),
    receive and subscribe under ``devices/<thing>/...`` and its reserved topics
    ``$aws/things/<thing>/...`` (shadows, jobs).
    """

    def arn(kind: str, name: str) -> str:
        return resource_arn(region, account_id, kind, name)

    prefixes = (f"devices/{thing_name}/*", f"$aws/things/{thing_name}/*")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectAsTheThing",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": arn("client", thing_name),
            },
            {
                "Sid": "PublishAndReceive",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:RetainPublish", "iot:Receive"],
                "Resource": [arn("topic", prefix) for prefix in prefixes],
            },
            {
                "Sid": "Subscribe",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [arn("topicfilter", prefix) for prefix in prefixes],
            },
        ],
    }


class _Closers:
    """Clean-up actions of the clients the helpers connected, run before the broker stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []

    def add(self, closer: Callable[[], None]) -> None:
        with self._lock:
            self._closers.append(closer)

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._closers)

    def close_all(self) -> None:
        with self._lock:
            closers, self._closers = self._closers, []
        for closer in reversed(closers):
            # Best effort: the test may have closed the client, or the broker dropped it.
            with contextlib.suppress(Exception):
                closer()


@dataclass(frozen=True)
class DeviceLink:
    """What the client helpers need from the broker that issued a device (internal)."""

    recorder: Recorder
    closers: _Closers

    def refusals_since(
        self, start: int, *, client_id: str, certificate_id: str
    ) -> list[dict[str, object]]:
        """Failure records since log index ``start`` about this client or certificate.

        Waits up to a short grace period for the first one, without sleeping.
        """

        def ours(record: Mapping[str, object]) -> bool:
            return record.get("status") == "Failure" and (
                record.get("clientId") == client_id or record.get("principalId") == certificate_id
            )

        def find(
            _messages: list[RoutedMessage], logs: list[dict[str, object]]
        ) -> list[dict[str, object]] | None:
            found = [record for record in logs[start:] if ours(record)]
            return found or None

        return self.recorder.wait_blocking(find, _REFUSAL_GRACE) or []


@dataclass(frozen=True)
class DeviceFiles:
    """A device ready to connect: what ``mtls_from_path(...)`` or ``tls_set(...)`` need.

    Attributes:
        client_id: the client ID its policy allows (the thing name).
        cert_path: its certificate, PEM.
        key_path: its private key, PEM.
        root_ca_path: the CA certificate to trust for the broker's server certificate.
        certificate_id: the certificate's ID (64 hex digits), the ``principalId`` in log records.
        certificate_arn: the certificate's ARN (the target of AttachPolicy).
        thing_name: the thing the certificate is attached to.
        policy_name: the policy attached to the certificate.
        endpoint: the host name to connect to and send as SNI.
        port: the broker's port.
    """

    client_id: str
    cert_path: Path
    key_path: Path
    root_ca_path: Path
    certificate_id: str
    certificate_arn: str
    thing_name: str
    policy_name: str
    endpoint: str
    port: int
    link: DeviceLink | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class IamCredentials:
    """SigV4 credentials of a local IAM user, for boto3, the aws CLI and the SDKs' websockets.

    ``repr`` shows only the key ID.

    Attributes:
        user_name: the IAM user.
        access_key_id: ``AKIA...`` (long-term) or ``ASIA...`` (from ``get_session_token``).
        secret_access_key: the secret.
        session_token: the session token of temporary credentials, else None.
        principal_id: what the broker's log records and lifecycle events carry for this user
            (its user ID, ``AIDA...``).
    """

    user_name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    principal_id: str = ""


def _status_name(status: str | CertificateStatus) -> CertificateStatus:
    return status if isinstance(status, CertificateStatus) else CertificateStatus(status)


def _document_text(document: PolicyDocument) -> str:
    return document if isinstance(document, str) else json.dumps(document, indent=2)


def _reason_name(reason: str | enum.Enum | None) -> str | None:
    return reason.name if isinstance(reason, enum.Enum) else reason


def _describe_messages(messages: list[RoutedMessage]) -> str:
    if not messages:
        return "the broker routed no message"
    topics = ", ".join(repr(m.topic) for m in messages[-20:])
    return f"the broker routed {len(messages)} message(s), last topics: {topics}"


def _describe_refusals(logs: list[dict[str, object]]) -> str:
    failures = [r for r in logs if r.get("status") == "Failure"]
    if not failures:
        return "the broker logged no refusal"
    lines = "\n".join(json.dumps(r) for r in failures[-10:])
    return f"the broker logged {len(failures)} failure(s), the last ones:\n{lines}"


def _message_finder(
    topic_filter: str,
) -> Callable[[list[RoutedMessage], list[dict[str, object]]], RoutedMessage | None]:
    problem = validate_topic_filter(topic_filter)
    if problem is not None:
        raise ValueError(f"invalid topic filter {topic_filter!r}: {problem}")

    def find(messages: list[RoutedMessage], _logs: list[dict[str, object]]) -> RoutedMessage | None:
        return next((m for m in messages if topic_matches(topic_filter, m.topic)), None)

    return find


def _delta_topic(thing_name: str, shadow_name: str | None) -> str:
    prefix = f"$aws/things/{thing_name}/shadow"
    return (
        f"{prefix}/update/delta"
        if shadow_name is None
        else f"{prefix}/name/{shadow_name}/update/delta"
    )


def _delta_finder(
    thing_name: str, shadow_name: str | None, state: Mapping[str, Any] | None
) -> Callable[[list[RoutedMessage], list[dict[str, object]]], RoutedMessage | None]:
    topic = _delta_topic(thing_name, shadow_name)
    wanted = dict(state or {})

    def matches(message: RoutedMessage) -> bool:
        if message.topic != topic:
            return False
        delta = json.loads(message.payload).get("state", {})
        return all(delta.get(key) == value for key, value in wanted.items())

    def find(messages: list[RoutedMessage], _logs: list[dict[str, object]]) -> RoutedMessage | None:
        return next((m for m in messages if matches(m)), None)

    return find


def _delta_document(
    found: RoutedMessage | None, thing_name: str, shadow_name: str | None, timeout: float
) -> dict[str, Any]:
    if found is None:
        raise AssertionError(
            f"no delta on {_delta_topic(thing_name, shadow_name)!r} within {timeout} s"
        )
    document: dict[str, Any] = json.loads(found.payload)
    return document


def _refusal_finder(
    reason: str | enum.Enum | None, client_id: str | None, event_type: str | None
) -> Callable[[list[RoutedMessage], list[dict[str, object]]], dict[str, object] | None]:
    reason_name = _reason_name(reason)

    def matches(record: dict[str, object]) -> bool:
        return (
            record.get("status") == "Failure"
            and (reason_name is None or record.get("reason") == reason_name)
            and (client_id is None or record.get("clientId") == client_id)
            and (event_type is None or record.get("eventType") == event_type)
        )

    def find(
        _messages: list[RoutedMessage], logs: list[dict[str, object]]
    ) -> dict[str, object] | None:
        return next((dict(r) for r in logs if matches(r)), None)

    return find


def _refusal_wanted(
    reason: str | enum.Enum | None, client_id: str | None, event_type: str | None
) -> str:
    parts = [
        f"{name}={value!r}"
        for name, value in (
            ("reason", _reason_name(reason)),
            ("client_id", client_id),
            ("event_type", event_type),
        )
        if value is not None
    ]
    return "refusal" + (f" with {', '.join(parts)}" if parts else "")


class _BrokerApi:
    """The synchronous, thread-safe part shared by ``IotBroker`` and ``IotBrokerThread``."""

    def __init__(
        self,
        *,
        endpoint: str = "localhost",
        region: str = "us-east-1",
        account_id: str = "123456789012",
        connack_on_deny: bool = False,
        keep_alive_time_scale: float = 1.0,
        aws_quotas: bool = True,
        strict_sigv4: bool = False,
        websocket_ttl: float | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self._keep_alive_time_scale = keep_alive_time_scale
        limits: dict[str, object] = {"aws_quotas": aws_quotas}
        if websocket_ttl is not None:
            limits["websocket_ttl"] = websocket_ttl
        self._settings: dict[str, Any] = {
            "account_id": account_id,
            "region": region,
            "endpoint": endpoint,
            "diagnostics": {"connack_on_deny": connack_on_deny},
            "limits": limits,
            "control_plane": {"strict_sigv4": strict_sigv4},
        }
        if config is not None:
            self._settings = _merged(self._settings, config)
        self._recorder = Recorder()
        self._closers = _Closers()
        self._link = DeviceLink(self._recorder, self._closers)
        self._broker: Broker | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._directory: Path | None = None
        self._ports: dict[str, int] = {}
        self._ca: pki.CertificateAuthority | None = None

    # -- where it is ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The host name devices connect to and send as SNI (``localhost`` by default)."""
        return str(self._settings["endpoint"])

    @property
    def host(self) -> str:
        """The address the broker listens on."""
        return _LOOPBACK

    @property
    def port(self) -> int:
        """The MQTT door's TCP port (8883 on AWS; picked by the OS here)."""
        return self.ports["mqtt"]

    @property
    def ports(self) -> dict[str, int]:
        """Every door's port, picked by the OS.

        ``mqtt`` (AWS's 8883), ``https`` (8443), ``alpn`` (443: MQTT, HTTPS and WebSocket
        chosen by ALPN) and ``api`` (the control plane, for boto3 and the aws CLI).
        """
        if not self._ports:
            raise RuntimeError("the broker is not started")
        return dict(self._ports)

    @property
    def api_endpoint_url(self) -> str:
        """The control plane's URL for ``boto3.client("iot", endpoint_url=...)``.

        HTTPS with the local CA's certificate: pass ``verify=str(broker.root_ca_path)``.
        """
        return f"https://{self.endpoint}:{self.ports['api']}"

    @property
    def root_ca_path(self) -> Path:
        """The root CA certificate devices must trust."""
        return self._running_broker().root_ca_path

    @property
    def certs_dir(self) -> Path:
        """The temporary certificates directory (root CA, server and device certificates)."""
        return self._running_broker().config.certs_dir

    @property
    def config(self) -> Config:
        """The broker's configuration."""
        return self._running_broker().config

    @property
    def registry(self) -> CertificateRegistry:
        """The broker's registry, for operations the convenience methods do not cover."""
        return self._running_broker().registry

    @property
    def iam(self) -> IamStore:
        """The broker's local IAM (users, access keys, policies), for what the helpers skip."""
        return self._running_broker().iam

    def _running_broker(self) -> Broker:
        if self._broker is None:
            raise RuntimeError("the broker is not started")
        return self._broker

    # -- what it saw ---------------------------------------------------------------------------

    @property
    def messages(self) -> list[RoutedMessage]:
        """Every message the broker routed, oldest first (a copy)."""
        return self._recorder.messages

    @property
    def logs(self) -> list[dict[str, object]]:
        """Every AWSIotLogsV2 record the broker wrote, oldest first, whatever the log level."""
        return self._recorder.logs

    @property
    def refusals(self) -> list[dict[str, object]]:
        """The log records with ``status`` ``Failure``: refused connections and actions."""
        return [r for r in self._recorder.logs if r.get("status") == "Failure"]

    def clear(self) -> None:
        """Forget the messages and log records seen so far (e.g. between tests sharing a broker)."""
        self._recorder.clear()

    # -- registry: the CLI verbs ---------------------------------------------------------------

    def create_thing(
        self,
        thing_name: str,
        attributes: Mapping[str, str] | None = None,
        *,
        thing_type_name: str | None = None,
    ) -> dict[str, Any]:
        """``aws iot create-thing``: returns ``thingName``, ``thingArn`` and ``thingId``.

        Idempotent for the same name and configuration, as on AWS.
        """
        thing = self.registry.create_thing(
            thing_name, thing_type_name=thing_type_name, attributes=attributes
        )
        return {
            "thingName": thing.thing_name,
            "thingArn": thing.thing_arn,
            "thingId": thing.thing_id,
        }

    def create_keys_and_certificate(
        self,
        set_as_active: bool = True,
        *,
        certificate_pem_outfile: Path | None = None,
        public_key_outfile: Path | None = None,
        private_key_outfile: Path | None = None,
    ) -> dict[str, Any]:
        """``aws iot create-keys-and-certificate``: a key pair and a certificate from the root CA.

        Returns ``certificateArn``, ``certificateId``, ``certificatePem`` and
        ``keyPair`` (``PublicKey``, ``PrivateKey``), as the CLI prints them. Unlike the CLI's
        default, ``set_as_active`` defaults to True (tests almost always want it).
        """
        broker = self._running_broker()
        if self._ca is None:
            self._ca = broker.certs.ensure_root_ca()
        issued = pki.issue_device_certificate(self._ca)
        assert issued.private_key_pem is not None
        status = CertificateStatus.ACTIVE if set_as_active else CertificateStatus.INACTIVE
        record = broker.registry.register_certificate(issued.certificate_pem, status=status)
        if certificate_pem_outfile is not None:
            write_public_file(certificate_pem_outfile, issued.certificate_pem)
        if public_key_outfile is not None:
            write_public_file(public_key_outfile, issued.public_key_pem)
        if private_key_outfile is not None:
            write_private_key(private_key_outfile, issued.private_key_pem)
        return {
            "certificateArn": record.certificate_arn,
            "certificateId": record.certificate_id,
            "certificatePem": issued.certificate_pem.decode(),
            "keyPair": {
                "PublicKey": issued.public_key_pem.decode(),
                "PrivateKey": issued.private_key_pem.decode(),
            },
        }

    def create_policy(self, policy_name: str, document: PolicyDocument) -> dict[str, Any]:
        """``aws iot create-policy``; ``document`` is JSON text or a mapping.

        Returns ``policyName``, ``policyArn``, ``policyDocument`` and ``policyVersionId``.
        """
        policy = self.registry.create_policy(policy_name, _document_text(document))
        return {
            "policyName": policy.policy_name,
            "policyArn": policy.policy_arn,
            "policyDocument": policy.document,
            "policyVersionId": policy.default_version_id,
        }

    def attach_policy(self, policy_name: str, target_arn: str) -> None:
        """``aws iot attach-policy`` (the target is a certificate ARN); no output, as AWS."""
        self.registry.attach_policy(policy_name, target_arn)

    def attach_thing_principal(self, thing_name: str, principal_arn: str) -> None:
        """``aws iot attach-thing-principal``; no output, as AWS."""
        self.registry.attach_thing_principal(thing_name, principal_arn)

    def update_certificate(self, certificate_id: str, new_status: str | CertificateStatus) -> None:
        """``aws iot update-certificate``: e.g. ``"INACTIVE"`` or ``"REVOKED"``; no output.

        The broker disconnects live connections of a certificate that is no longer ACTIVE
        within about a second (AWS: "within a few minutes").
        """
        self.registry.update_certificate_status(certificate_id, _status_name(new_status))

    def create_device(
        self,
        thing_name: str,
        policy: PolicyDocument | None = None,
        *,
        attributes: Mapping[str, str] | None = None,
    ) -> DeviceFiles:
        """Create a thing, an ACTIVE certificate attached to it, and a policy on the certificate.

        Args:
            thing_name: the thing (created if missing); also the device's client ID.
            policy: the policy document (JSON text or a mapping); by default
                ``default_device_policy(thing_name)``.
            attributes: the thing's attributes.

        Returns:
            The files and names a client needs, ready for ``mtls_from_path(...)``, paho's
            ``tls_set(...)`` or this package's ``paho_client`` / ``awsiot_connection``.
        """
        broker = self._running_broker()
        config = broker.config
        thing = self.create_thing(thing_name, attributes)
        keys = self.create_keys_and_certificate(set_as_active=True)
        certificate_id: str = keys["certificateId"]
        certificate_arn: str = keys["certificateArn"]
        assert self._directory is not None
        directory = self._directory / "devices" / _FILE_NAME_UNSAFE.sub("_", thing_name)
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / f"{certificate_id[:10]}-certificate.pem.crt"
        key_path = directory / f"{certificate_id[:10]}-private.pem.key"
        write_public_file(cert_path, keys["certificatePem"].encode())
        write_private_key(key_path, keys["keyPair"]["PrivateKey"].encode())
        if policy is None:
            policy = default_device_policy(
                thing_name, region=config.region, account_id=config.account_id
            )
        # One policy per certificate, so devices (and tests sharing a broker) never collide.
        policy_name = f"{_POLICY_NAME_UNSAFE.sub('_', thing_name)[:100]}-{certificate_id[:10]}"
        self.create_policy(policy_name, policy)
        self.attach_policy(policy_name, certificate_arn)
        self.attach_thing_principal(thing["thingName"], certificate_arn)
        return DeviceFiles(
            client_id=thing_name,
            cert_path=cert_path,
            key_path=key_path,
            root_ca_path=broker.root_ca_path,
            certificate_id=certificate_id,
            certificate_arn=certificate_arn,
            thing_name=thing_name,
            policy_name=policy_name,
            endpoint=self.endpoint,
            port=self.port,
            link=self._link,
        )

    # -- local IAM: SigV4 on the alpn door (HTTPS and MQTT over WebSocket) ----------------------

    def create_iam_user(
        self, user_name: str, policy: PolicyDocument | None = None
    ) -> IamCredentials:
        """An IAM user with an inline policy and an access key, as ``aws iam`` makes them.

        ``create-user``, ``put-user-policy`` (``policy``, by default every IoT action on every
        resource) and ``create-access-key`` in one call.

        Returns:
            The long-term credentials; sign for region ``config.region`` with service
            ``iotdata`` (boto3) or ``iotdevicegateway`` (the Device SDKs).
        """
        iam = self._running_broker().iam
        user = iam.create_user(user_name)
        document = ALLOW_ALL_IOT if policy is None else _document_text(policy)
        iam.put_user_policy(user_name, f"{_POLICY_NAME_UNSAFE.sub('_', user_name)}-iot", document)
        key = iam.create_access_key(user_name)
        return IamCredentials(
            user_name,
            key.access_key_id,
            key.secret_access_key,
            principal_id=user.identity.principal_id,
        )

    def get_session_token(
        self, user_name: str, duration_seconds: int | None = None
    ) -> IamCredentials:
        """``aws sts get-session-token`` for ``user_name``: temporary credentials with a token.

        They act as the user (its policies apply) until they expire (900..129600 s, default
        12 hours).
        """
        iam = self._running_broker().iam
        session = iam.get_session_token(user_name=user_name, duration_seconds=duration_seconds)
        return IamCredentials(
            session.user_name,
            session.access_key_id,
            session.secret_access_key,
            session.session_token,
            principal_id=iam.get_user(user_name).identity.principal_id,
        )

    # -- the cloud side ------------------------------------------------------------------------

    def _call(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` where the broker runs (here: the caller's loop, ``IotBroker``)."""
        return function()

    def _cloud_facts(self) -> ConnectionFacts:
        return ConnectionFacts(
            str(self._settings["account_id"]),
            _LOOPBACK,
            0,
            principal_id=CLOUD_PRINCIPAL,
            protocol="HTTP",
        )

    def publish(
        self,
        topic: str,
        payload: Payload = b"",
        *,
        qos: int = 1,
        retain: bool = False,
        content_type: str | None = None,
        user_properties: Mapping[str, str] | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        message_expiry: int | None = None,
    ) -> None:
        """Publish as the cloud side: subscribers receive it as from AWS IoT.

        As AWS's console MQTT test client or an app's ``iot-data`` ``Publish`` would. No
        device policy applies (the caller is trusted, like an IAM principal allowed
        ``iot:Publish``); the topic rules, the reserved topic space and AWS's limits do, and the
        publish is logged (``Publish-In``, ``protocol`` ``HTTP``). A dict payload is sent as
        compact JSON, a str as UTF-8. The MQTT 5 arguments reach MQTT 5 subscribers.

        Raises:
            ValueError: the broker refused it (the reason and details, as logged).
        """
        properties = Properties(
            content_type=content_type,
            user_properties=tuple((user_properties or {}).items()),
            response_topic=response_topic,
            correlation_data=correlation_data,
            message_expiry_interval=message_expiry,
        )
        request = PublishRequest(topic, _payload_bytes(payload), qos, retain, properties)
        publisher = Publisher(self._cloud_facts(), None)
        refusal = self._call(lambda: self._running_broker().core.publish(publisher, request))
        if refusal is not None:
            raise ValueError(
                f"publish to {topic!r} refused: {refusal.reason.name}: {refusal.details}"
            )

    def _shadow(
        self, operation: str, thing_name: str, shadow_name: str | None, payload: bytes
    ) -> dict[str, Any]:
        def run() -> tuple[str, bytes]:
            shadows = self._running_broker().shadows
            outcome = shadows.process(
                operation,
                thing_name,
                shadow_name,
                payload,
                facts=self._cloud_facts(),
                via_rest=True,
            )
            return outcome.response

        topic, answer = self._call(run)
        document: dict[str, Any] = json.loads(answer) if answer else {}
        if topic.endswith("/rejected"):
            raise ShadowRejectedError(document)
        return document

    def get_shadow(self, thing_name: str, shadow_name: str | None = None) -> dict[str, Any]:
        """The shadow document, as ``aws iot-data get-thing-shadow`` returns it.

        Raises:
            ShadowRejectedError: e.g. code 404 when the shadow does not exist.
        """
        return self._shadow("get", thing_name, shadow_name, b"")

    def update_shadow(
        self, thing_name: str, document: Payload, shadow_name: str | None = None
    ) -> dict[str, Any]:
        """Update a shadow as the cloud side (``update-thing-shadow``); the accepted document.

        Devices receive ``/update/accepted``, ``/update/delta`` and ``/update/documents`` as
        after any update. ``document`` is a request state document, e.g.
        ``{"state": {"desired": {"color": "green"}}}``.

        Raises:
            ShadowRejectedError: the service refused it (400, 409, 413, ...).
        """
        return self._shadow("update", thing_name, shadow_name, _payload_bytes(document))

    def delete_shadow(self, thing_name: str, shadow_name: str | None = None) -> dict[str, Any]:
        """Delete a shadow (``delete-thing-shadow``); the ``/delete/accepted`` document.

        Raises:
            ShadowRejectedError: code 404 when there is no such shadow.
        """
        return self._shadow("delete", thing_name, shadow_name, b"")

    # -- lifecycle helpers ---------------------------------------------------------------------

    def _config(self, directory: Path) -> Config:
        return Config.from_mapping(
            {
                **self._settings,
                "listeners": [{"door": door, "host": _LOOPBACK, "port": 0} for door in _TEST_DOORS],
                "certs_dir": str(directory / "certs"),
                "state_dir": str(directory / "state"),
                # The recorder gets every record the level lets through: DEBUG (all of them)
                # unless the test's configuration asks for another level.
                # The test's other logging settings (a CloudWatch sink...) are kept.
                "logging": {
                    **self._settings.get("logging", {}),
                    "level": self._settings.get("logging", {}).get("level", "DEBUG"),
                    "file": None,
                    "stdout": False,
                },
            },
            source="aws_iot_mock.testing",
        )

    async def _start_in_loop(self) -> None:
        """Start the broker in the running loop; on failure leave nothing behind."""
        if self._broker is not None:
            raise RuntimeError("the broker is already started")
        tempdir = tempfile.TemporaryDirectory(prefix="aws-iot-mock-")
        try:
            directory = Path(tempdir.name)
            config = self._config(directory)
            _seed_certificates(config.certs_dir, config.server_names)
            broker = Broker(config, keep_alive_time_scale=self._keep_alive_time_scale)
            self._recorder.bind_loop(asyncio.get_running_loop())
            broker.sink.add_listener(self._recorder.on_record)
            try:
                await broker.start()
                _observe_messages(broker, self._recorder)
            except BaseException:
                await broker.stop()
                raise
        except BaseException:
            tempdir.cleanup()
            raise
        self._tempdir, self._directory, self._broker = tempdir, directory, broker
        self._ports = broker.ports

    async def _stop_in_loop(self) -> None:
        broker, tempdir = self._broker, self._tempdir
        self._broker = self._tempdir = self._directory = None
        self._ports = {}
        self._ca = None
        try:
            if broker is not None:
                await broker.stop()
        finally:
            if tempdir is not None:
                tempdir.cleanup()


def _observe_messages(broker: Broker, recorder: Recorder) -> None:
    """Have the broker report every message it routes to ``recorder``."""
    broker.add_message_listener(recorder.on_message)


# RSA key generation for the root CA and the RSA server certificate is most of a broker's start-up
# (about 0.4 s here). Test brokers in one process therefore share one CA and one pair of server
# certificates, generated once and copied into each broker's fresh certs directory. Devices stay
# isolated: each broker has its own registry, so a certificate registered with one broker is
# refused by another (CERTIFICATE_NOT_REGISTERED) although both trust the same CA.
_SEED_LOCK = threading.Lock()
_SEEDS: dict[tuple[str, ...], dict[str, tuple[bytes, int]]] = {}


def _seed_certificates(certs_dir: Path, server_names: tuple[str, ...]) -> None:
    """Fill ``certs_dir`` with this process's shared CA and server certificates."""
    with _SEED_LOCK:
        files = _SEEDS.get(server_names)
        if files is None:
            with tempfile.TemporaryDirectory(prefix="aws-iot-mock-seed-") as scratch:
                certs = CertsDirectory(Path(scratch) / "certs")
                certs.ensure_root_ca()
                certs.ensure_server_certificates(server_names)
                files = {
                    path.name: (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
                    for path in certs.path.iterdir()
                    if path.is_file() and not path.name.startswith(".")
                }
            _SEEDS[server_names] = files
    certs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, (data, mode) in files.items():
        if mode & 0o077 == 0:
            write_private_key(certs_dir / name, data)
        else:
            write_public_file(certs_dir / name, data)


class IotBroker(_BrokerApi):
    """An in-process broker for async tests: ``async with IotBroker() as broker: ...``.

    It runs in the caller's event loop. Blocking clients (paho, awsiotsdk, the helpers
    ``paho_client`` / ``awsiot_connection``) must then run in another thread
    (``await asyncio.to_thread(...)``), or the broker could not answer them; ``IotBrokerThread``
    avoids that by running the broker in its own thread.

    Args:
        endpoint: the host name devices connect to and send as SNI; keep ``localhost`` for
            clients that resolve the endpoint themselves (awsiotsdk).
        region: the AWS region in ARNs and logs.
        account_id: the AWS account in ARNs and logs.
        connack_on_deny: answer a denied MQTT 3.1.1 CONNECT with CONNACK 0x05 (and a denied
            SUBSCRIBE with SUBACK 0x80) instead of AWS's silent disconnect.
        keep_alive_time_scale: real seconds per keep-alive second (shrink it to test timeouts).
        aws_quotas: enforce AWS IoT's per-connection quotas (100 publishes/s, 1 CONNECT/s per
            client ID, ...), as AWS does; False lifts them (a test that reconnects at once).
        websocket_ttl: seconds an MQTT over WebSocket connection lives (AWS: 24 hours); shrink
            it to test what a client does when AWS closes it.
        strict_sigv4: the control plane (``api_endpoint_url``) refuses access keys the local
            IAM does not know, as AWS does; by default any well-formed signature is accepted.
    """

    async def start(self) -> None:
        """Start listening; once this returns a TLS handshake succeeds (no sleeps needed)."""
        await self._start_in_loop()

    async def stop(self) -> None:
        """Disconnect the helpers' clients, stop the broker, remove the temporary directory."""
        if self._closers:
            # Closing blocking clients waits for the broker, which runs in this loop.
            await asyncio.to_thread(self._closers.close_all)
        await self._stop_in_loop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_for_message(
        self, topic_filter: str, timeout: float = DEFAULT_TIMEOUT
    ) -> RoutedMessage:
        """Wait for the first routed message whose topic matches ``topic_filter``.

        Matching follows AWS IoT's rules (``+``, ``#``; ``#`` needs at least one level). Messages
        routed before the call count too, so there is no race with a publish that was faster.

        Raises:
            AssertionError: none arrived within ``timeout`` seconds (the message lists what did).
            ValueError: ``topic_filter`` is not a valid filter.
        """
        found = await self._recorder.wait_async(_message_finder(topic_filter), timeout)
        if found is None:
            raise AssertionError(
                f"no message on {topic_filter!r} within {timeout} s; "
                f"{_describe_messages(self.messages)}"
            )
        return found

    async def wait_for_refusal(
        self,
        reason: str | enum.Enum | None = None,
        client_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        event_type: str | None = None,
    ) -> dict[str, object]:
        """Wait for a ``Failure`` log record with this ``reason``, ``clientId`` and ``eventType``.

        ``None`` matches anything; ``reason`` is a name such as ``"AUTHORIZATION_FAILURE"`` (or a
        ``aws_iot_mock.logs.cloudwatch.Reason``). Records written before the call count too.

        Raises:
            AssertionError: none within ``timeout`` seconds (the message lists the refusals).
        """
        finder = _refusal_finder(reason, client_id, event_type)
        found = await self._recorder.wait_async(finder, timeout)
        if found is None:
            raise AssertionError(
                f"no {_refusal_wanted(reason, client_id, event_type)} within {timeout} s; "
                f"{_describe_refusals(self.logs)}"
            )
        return found

    async def wait_for_delta(
        self,
        thing_name: str,
        shadow_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        state: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Wait for a shadow ``/update/delta`` message; its document.

        With ``state``, the first delta whose ``state`` has those fields with those values
        (e.g. ``{"color": "green"}``); without, the first delta of that shadow. Deltas published
        before the call count too.

        Raises:
            AssertionError: none within ``timeout`` seconds.
        """
        found = await self._recorder.wait_async(
            _delta_finder(thing_name, shadow_name, state), timeout
        )
        return _delta_document(found, thing_name, shadow_name, timeout)


class IotBrokerThread(_BrokerApi):
    """An in-process broker in its own thread: ``with IotBrokerThread() as broker: ...``.

    Works from synchronous tests and from any event loop (the broker has its own). ``wait_for_*``
    block; ``wait_for_*_async`` are their awaitable twins for async tests. Arguments as
    ``IotBroker``'s.
    """

    # The background thread and its loop, set while the broker runs.
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stop_event: asyncio.Event | None = None
    _finished: concurrent.futures.Future[None] | None = None

    def start(self) -> None:
        """Start the broker thread; once this returns a TLS handshake succeeds."""
        if self._thread is not None:
            raise RuntimeError("the broker is already started")
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        finished: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:  # handed to the thread that waits
                if not ready.done():
                    ready.set_exception(exc)
                finished.set_exception(exc)
            else:
                if not ready.done():  # pragma: no cover (_serve always settles ready)
                    ready.set_exception(RuntimeError("the broker thread ended early"))
                finished.set_result(None)

        thread = threading.Thread(target=run, name="aws-iot-mock-broker", daemon=True)
        thread.start()
        try:
            ready.result()
        except BaseException:
            thread.join()
            raise
        self._thread, self._finished = thread, finished

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            await self._start_in_loop()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            await self._stop_event.wait()
        finally:
            await self._stop_in_loop()

    def stop(self) -> None:
        """Disconnect the helpers' clients, stop the broker and its thread, remove the files.

        Raises:
            Exception: whatever stopping the broker raised.
        """
        thread, loop, stop_event, finished = (
            self._thread,
            self._loop,
            self._stop_event,
            self._finished,
        )
        if thread is None or loop is None or stop_event is None or finished is None:
            return
        self._closers.close_all()
        loop.call_soon_threadsafe(stop_event.set)
        thread.join()
        self._thread = self._loop = self._stop_event = self._finished = None
        finished.result()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_for_message(
        self, topic_filter: str, timeout: float = DEFAULT_TIMEOUT
    ) -> RoutedMessage:
        """Block until a routed message matches ``topic_filter``; see ``IotBroker``'s."""
        found = self._recorder.wait_blocking(_message_finder(topic_filter), timeout)
        if found is None:
            raise AssertionError(
                f"no message on {topic_filter!r} within {timeout} s; "
                f"{_describe_messages(self.messages)}"
            )
        return found

    def wait_for_refusal(
        self,
        reason: str | enum.Enum | None = None,
        client_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        event_type: str | None = None,
    ) -> dict[str, object]:
        """Block until a matching ``Failure`` record is logged; see ``IotBroker``'s."""
        finder = _refusal_finder(reason, client_id, event_type)
        found = self._recorder.wait_blocking(finder, timeout)
        if found is None:
            raise AssertionError(
                f"no {_refusal_wanted(reason, client_id, event_type)} within {timeout} s; "
                f"{_describe_refusals(self.logs)}"
            )
        return found

    async def wait_for_message_async(
        self, topic_filter: str, timeout: float = DEFAULT_TIMEOUT
    ) -> RoutedMessage:
        """``wait_for_message`` for async tests: awaits without blocking the test's loop."""
        finder = _message_finder(topic_filter)
        found = await self._await_in_broker(self._recorder.wait_async(finder, timeout))
        if found is None:
            raise AssertionError(
                f"no message on {topic_filter!r} within {timeout} s; "
                f"{_describe_messages(self.messages)}"
            )
        return found

    async def wait_for_refusal_async(
        self,
        reason: str | enum.Enum | None = None,
        client_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        event_type: str | None = None,
    ) -> dict[str, object]:
        """``wait_for_refusal`` for async tests: awaits without blocking the test's loop."""
        finder = _refusal_finder(reason, client_id, event_type)
        found = await self._await_in_broker(self._recorder.wait_async(finder, timeout))
        if found is None:
            raise AssertionError(
                f"no {_refusal_wanted(reason, client_id, event_type)} within {timeout} s; "
                f"{_describe_refusals(self.logs)}"
            )
        return found

    def _call(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` in the broker's thread and return its result here."""
        loop, thread = self._loop, self._thread
        if loop is None:
            raise RuntimeError("the broker is not started")
        if threading.current_thread() is thread:
            return function()
        result: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(function())
            except BaseException as exc:  # re-raised in the caller's thread
                result.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return result.result(timeout=DEFAULT_TIMEOUT)

    def wait_for_delta(
        self,
        thing_name: str,
        shadow_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        state: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Block until a shadow ``/update/delta`` message; see ``IotBroker``'s."""
        finder = _delta_finder(thing_name, shadow_name, state)
        found = self._recorder.wait_blocking(finder, timeout)
        return _delta_document(found, thing_name, shadow_name, timeout)

    async def wait_for_delta_async(
        self,
        thing_name: str,
        shadow_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        state: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``wait_for_delta`` for async tests."""
        finder = _delta_finder(thing_name, shadow_name, state)
        found = await self._await_in_broker(self._recorder.wait_async(finder, timeout))
        return _delta_document(found, thing_name, shadow_name, timeout)

    async def _await_in_broker(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` in the broker's loop; await it from the caller's loop."""
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("the broker is not started")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))
