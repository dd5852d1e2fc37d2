"""The broker's configuration: one frozen tree of dataclasses and one loader.

Everything here is pure except :func:`load_config`, which reads the config file (and the policy
documents that ``resources.policies[].document_file`` names). Validation happens once,
at the edge (:meth:`Config.from_mapping` and :meth:`Config.with_overrides`); every other module
may trust a ``Config`` it is handed. Every :class:`~broker.errors.ConfigError` raised here names
the dotted key path (or the command-line flag) and the file it came from, so a newcomer can find
the offending line without reading this code.

The YAML layout mirrors the dataclasses one to one; ``config/default.yaml`` writes out every
setting with its default value and a comment.
"""

from __future__ import annotations

import datetime
import functools
import importlib.util
import ipaddress
import json
import math
import re
import shlex
import urllib.parse
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, NoReturn, TypeVar

from aws_iot_mock.aws.limits import RETAINED_MESSAGES_MAX, USER_PROPERTIES_MAX_BYTES
from aws_iot_mock.config_cache import cached_document, store_document
from aws_iot_mock.errors import ConfigError
from aws_iot_mock.tls.security_policies import DEFAULT_SECURITY_POLICY, SECURITY_POLICIES

if TYPE_CHECKING:
    import yaml

    from aws_iot_mock.config_sections import (
        CertificateResource,
        CloudWatchConfig,
        DomainConfiguration,
        PolicyResource,
        ThingResource,
    )

__all__ = [
    "AWS_IOT_LOG_GROUP",
    "DEFAULT_LISTENERS",
    "DOORS",
    "DOOR_FLAGS",
    "LOG_LEVELS",
    "WEBSOCKET_TTL_MAX",
    "CertificateResource",
    "CloudWatchConfig",
    "Config",
    "ControlPlaneConfig",
    "DiagnosticsConfig",
    "DomainConfiguration",
    "LimitsConfig",
    "ListenerConfig",
    "LoggingConfig",
    "PolicyResource",
    "ResourcesConfig",
    "RulesConfig",
    "ThingResource",
    "TlsConfig",
    "dns_name_problem",
    "load_config",
]

# AWS IoT's log level names (SetV2LoggingOptions), most severe first. Each level includes every
# level before it; DISABLED logs nothing.
LOG_LEVELS: tuple[str, ...] = ("DISABLED", "ERROR", "WARN", "INFO", "DEBUG")

# Generous upper bound on timeouts: a larger value is almost certainly a unit mistake (ms vs s).
_MAX_TIMEOUT_SECONDS = 3600.0
# "WebSocket connections are limited to 24 hours" (AWS IoT, protocols page), in seconds.
WEBSOCKET_TTL_MAX = 24 * 3600.0
_MAX_PORT = 65535
_ACCOUNT_ID_RE = re.compile(r"[0-9]{12}")
# AWS partitions: commercial (us-east-1), GovCloud (us-gov-west-1), China (cn-north-1).
_REGION_RE = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]")
# RFC 1123 label: letters, digits and inner hyphens, 1..63 characters.
_DNS_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MAX_DNS_NAME = 253
# Names every server certificate carries besides the configured ones, so that a local client
# connecting by "localhost" or a loopback address can still verify the certificate.
_LOOPBACK_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")

# AWS IoT API name patterns (CreateThing, CreatePolicy, ThingAttribute's AttributePayload).
# These and the CloudWatch ones are only for optional sections: given to re.fullmatch, which
# compiles (and caches) each on first use instead of at every import.
_THING_NAME_RE = r"[a-zA-Z0-9:_-]{1,128}"
_POLICY_NAME_RE = r"[\w+=,.@-]{1,128}"
_ATTRIBUTE_NAME_RE = r"[a-zA-Z0-9_.,@/:#-]{1,128}"
_ATTRIBUTE_VALUE_RE = r"[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}"

_T = TypeVar("_T")

# Exported here, defined in config_sections on first use (see there: why).
_OPTIONAL_SECTIONS = frozenset(
    {
        "CertificateResource",
        "CloudWatchConfig",
        "DomainConfiguration",
        "PolicyResource",
        "ThingResource",
    }
)


def __getattr__(name: str) -> object:
    """``config.<name>`` of an optional section's class: imports ``config_sections`` (PEP 562)."""
    if name in _OPTIONAL_SECTIONS:
        from aws_iot_mock import config_sections  # noqa: PLC0415 (see config_sections)

        return getattr(config_sections, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The doors a listener can be (``listeners[].door``): AWS IoT's data endpoint serves MQTT on 8883,
# HTTPS on 8443, and on 443 MQTT, HTTPS and WebSocket chosen by ALPN ("Protocols, port
# mappings, and authentication", https://docs.aws.amazon.com/iot/latest/developerguide/
# protocols.html). ``api`` is the control plane (the ``iot`` REST API for boto3 and the AWS CLI).
DOORS: tuple[str, ...] = ("mqtt", "https", "alpn", "api")
# The ``serve`` flag that sets each door's port.
DOOR_FLAGS = {"mqtt": "--port", "https": "--https-port", "alpn": "--alpn-port", "api": "--api-port"}


@dataclass(frozen=True)
class ListenerConfig:
    """One listener: a door on an address and port.

    Attributes:
        door: one of ``DOORS``.
        port: 0..65535; 0 asks the OS for a free port.
        host: an IPv4/IPv6 literal or a host name to bind to.
        optional: when the port cannot be bound (a privileged port as non-root, a port in use),
            serve without this door and say why, instead of refusing to start.
    """

    door: str
    port: int
    host: str = "127.0.0.1"
    optional: bool = False


# AWS's three doors of the data endpoint, and the control plane. 443 is optional: a non-root
# user cannot bind it, and `make run` must work for one (the banner says how to get 443). The
# control plane (boto3 / `aws iot --endpoint-url`) is on 9443: AWS serves it on 443 of another
# host name, which a local user cannot bind; 9443 keeps the 443 in sight, is above 1024, and
# is not the default of moto (5000, which macOS's AirPlay receiver takes), LocalStack (4566) or
# the other doors, so the mock can run beside either. Optional too: a busy port leaves the
# data endpoint serving, and the banner says why the api door is off.
DEFAULT_LISTENERS: tuple[ListenerConfig, ...] = (
    ListenerConfig("mqtt", 8883),
    ListenerConfig("https", 8443),
    ListenerConfig("alpn", 443, optional=True),
    ListenerConfig("api", 9443, optional=True),
)


@dataclass(frozen=True)
class TlsConfig:
    """TLS settings of the default (ATS endpoint) domain.

    Attributes:
        security_policy: a key of ``SECURITY_POLICIES``; used whenever SNI names no custom domain.
        require_sni: refuse handshakes without an SNI naming the endpoint or a custom domain, as
            AWS IoT Core does.
        handshake_timeout: seconds allowed for the TLS handshake, in (0, 3600].
        connect_timeout: seconds after the TLS handshake within which the MQTT CONNECT must
            arrive, and within which an HTTP request must arrive whole, in (0, 3600].
    """

    security_policy: str = DEFAULT_SECURITY_POLICY
    require_sni: bool = True
    handshake_timeout: float = 10.0
    connect_timeout: float = 10.0


# AWS IoT writes its log to this CloudWatch Logs group
# (https://docs.aws.amazon.com/iot/latest/developerguide/cloud-watch-logs.html).
AWS_IOT_LOG_GROUP = "AWSIotLogsV2"
# CloudWatch Logs' naming rules (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/
# APIReference/API_CreateLogGroup.html, .../API_CreateLogStream.html): 1..512 characters.
_LOG_GROUP_RE = r"[._\-/#A-Za-z0-9]{1,512}"
_LOG_STREAM_RE = r"[^:*]{1,512}"


@dataclass(frozen=True)
class LoggingConfig:
    """Where AWSIotLogsV2 JSON log lines go.

    Attributes:
        level: one of ``LOG_LEVELS`` (AWS's names); each level includes everything more severe,
            DISABLED logs nothing.
        file: path of a JSON-lines file to append to, or None for no file.
        stdout: also write each line to standard output.
        buffer_bytes: bytes of log lines that may wait for each output (stdout, the file); past
            that, lines are dropped and counted rather than stall the broker (64 KiB .. 1 GiB).
        cloudwatch: the CloudWatch Logs sink, or None (the default) for none.
    """

    level: str = "INFO"
    file: Path | None = None
    stdout: bool = True
    buffer_bytes: int = 4 * 1024 * 1024
    cloudwatch: CloudWatchConfig | None = None


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what one client can make the broker hold.

    Attributes:
        outbound_buffer_bytes: bytes that may wait for one client before it counts as not
            reading; QoS 0 messages for it are then dropped and QoS 1 ones wait in its
            session's queue (1 KiB .. 64 MiB).
        session_queue_max: the most messages one session's queue holds (QoS 1 waiting for the
            client, its in-flight window or its reconnect); newer ones are dropped (1 .. 10^7).
        aws_quotas: enforce AWS IoT's per-connection quotas as AWS does: 100 publishes per
            second (in + out; the excess is discarded), 512 KiB/s received (delayed), 50
            subscriptions per connection, 8 filters per SUBSCRIBE, 1 CONNECT per second per
            client ID. False lifts them all (benchmarks).
        websocket_ttl: seconds an MQTT over WebSocket connection may live, in (0, 86400]: AWS
            closes it after 24 hours, at the next message sent either way (shrink it in tests).
        retained_messages_max: the most retained messages stored (AWS's account quota,
            500,000); a new one past it is throttled (1 .. 10^7).
        user_properties_max_bytes: the most bytes of MQTT 5 user properties in one message,
            as encoded (keys, values and 5 bytes of framing each: empty ones count too; 8 KiB;
            0 .. 128 KiB).
    """

    outbound_buffer_bytes: int = 1024 * 1024
    session_queue_max: int = 10_000
    aws_quotas: bool = True
    websocket_ttl: float = WEBSOCKET_TTL_MAX
    retained_messages_max: int = RETAINED_MESSAGES_MAX
    user_properties_max_bytes: int = USER_PROPERTIES_MAX_BYTES


@dataclass(frozen=True)
class DiagnosticsConfig:
    """Departures from AWS's behaviour that make a refusal easier to see from the device side.

    Attributes:
        connack_on_deny: when a policy denies a CONNECT or SUBSCRIBE, answer CONNACK 0x05 (not
            authorized) or SUBACK 0x80 (failure) instead of AWS's silent disconnect. Off by
            default, as AWS IoT Core never says why; the log line always does.
    """

    connack_on_deny: bool = False


@dataclass(frozen=True)
class ControlPlaneConfig:
    """The control-plane API (the ``api`` door: boto3 and ``aws iot --endpoint-url``).

    Attributes:
        strict_sigv4: verify every request's SigV4 signature against the local IAM's access
            keys and refuse unknown keys, as AWS does. False (the default, as moto and
            LocalStack do): a request signed with a key the local IAM knows is still verified,
            but a well-formed signature from an unknown key is accepted and logged, so that
            tests can use dummy credentials.
        console: serve the web console at ``/console`` on the api door.
        console_token: the console's access token. None (the default): a fresh random one
            each start, required only when the api door listens beyond loopback; set, it is
            required on every door address (at least 16 characters of ``[A-Za-z0-9_-]``).
    """

    strict_sigv4: bool = False
    console: bool = True
    console_token: str | None = None


@dataclass(frozen=True)
class ResourcesConfig:
    """Registry resources declared in the config, applied idempotently when ``serve`` starts.

    Attributes:
        things: things to create (or bring in line with the config).
        policies: policies to create (or give the configured document as default version).
        certificates: certificates to register and attach.
    """

    things: tuple[ThingResource, ...] = ()
    policies: tuple[PolicyResource, ...] = ()
    certificates: tuple[CertificateResource, ...] = ()


@dataclass(frozen=True)
class RulesConfig:
    """The rules engine (``rules:``): where rule actions deliver, and its bounds.

    Attributes:
        aws_endpoint_url: the endpoint of the AWS service actions (sqs, sns, dynamoDBv2,
            kinesis, firehose, s3, cloudwatchLogs, lambda), e.g. a moto server or LocalStack;
            None: real AWS, and only with explicit credentials (never from the environment).
        aws_region: the region of those calls; None uses the top-level ``region``.
        aws_access_key_id: credentials for those calls; with an endpoint and none given, a
            dummy pair (moto and LocalStack accept any).
        aws_secret_access_key: see ``aws_access_key_id`` (never printed).
        lambda_endpoint_url: a separate Lambda endpoint; None uses ``aws_endpoint_url``.
        lambda_commands: Lambda function name or ARN -> local command (argv) run with the SQL
            result on stdin instead of calling Lambda; exit status 0 is success.
        http_confirmed_destinations: URL prefixes the http action may POST to (AWS's confirmed
            topic rule destinations).
        http_allow_loopback: also allow any http(s) URL on a loopback address or ``localhost``.
        http_ca_file: PEM file of the CAs to trust for ``https://`` URLs; None: the system's.
        action_timeout: seconds one action may take (all tries of an http action together).
        queue_max: messages one rule's queue holds while its actions run; newer ones are
            dropped, counted and logged.
        workers: threads that evaluate rules and perform actions.
        basic_ingest_checks_from: a Basic Ingest message (``$aws/rules/<rule>/<topic>``) must
            also match the rule's FROM filter (with the prefix removed), when it has one.
        republish_max_depth: how many republish actions in a row may feed rules again; a
            message past that (a rule republishing to its own topic) is not evaluated again.
    """

    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    lambda_endpoint_url: str | None = None
    lambda_commands: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    http_confirmed_destinations: tuple[str, ...] = ()
    http_allow_loopback: bool = True
    http_ca_file: Path | None = None
    action_timeout: float = 10.0
    queue_max: int = 1000
    workers: int = 4
    basic_ingest_checks_from: bool = True
    republish_max_depth: int = 8


@dataclass(frozen=True)
class Config:
    """The whole broker configuration, immutable.

    Build one with :func:`load_config` or :meth:`from_mapping` (which validate); constructing it
    directly skips validation and is meant for tests that know their values are valid.

    Attributes:
        account_id: the 12-digit AWS account id put in ARNs and logs.
        region: the AWS region put in ARNs and logs, e.g. ``us-east-1``.
        endpoint: the DNS name devices put in SNI for the default domain (never an IP literal).
        listeners: the doors to serve, where (each door at most once).
        tls: TLS settings of the default domain.
        domain_configurations: custom domains, each with its own security policy.
        certs_dir: directory of the local CA, server and device certificates.
        state_dir: directory of the registry's persistent state.
        logging: where log lines go.
        limits: bounds on what one client can make the broker hold.
        diagnostics: opt-in departures from AWS that explain refusals to the device.
        control_plane: how the control-plane API authenticates.
        resources: things, policies and certificates to create when ``serve`` starts.
        rules: the rules engine's action endpoints and bounds.
        source: where the values came from (a file name, ``<defaults>`` or ``<mapping>``); every
            error message about this config names it.
    """

    account_id: str = "123456789012"
    region: str = "us-east-1"
    endpoint: str = "localhost"
    listeners: tuple[ListenerConfig, ...] = DEFAULT_LISTENERS
    tls: TlsConfig = field(default_factory=TlsConfig)
    domain_configurations: tuple[DomainConfiguration, ...] = ()
    certs_dir: Path = Path("certs")
    state_dir: Path = Path(".state")
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    control_plane: ControlPlaneConfig = field(default_factory=ControlPlaneConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    source: str = "<defaults>"

    def listener_for(self, door: str) -> ListenerConfig | None:
        """The listener of ``door``, or None when that door is off."""
        return next((listener for listener in self.listeners if listener.door == door), None)

    @property
    def server_names(self) -> tuple[str, ...]:
        """The names the server certificates must carry, in a stable order.

        The endpoint, every custom domain name, then ``localhost``, ``127.0.0.1`` and ``::1``;
        duplicates (compared case-insensitively) keep their first spelling and position.
        """
        names: list[str] = []
        seen: set[str] = set()
        for name in (
            self.endpoint,
            *(d.domain_name for d in self.domain_configurations),
            *_LOOPBACK_NAMES,
        ):
            if name.lower() not in seen:
                seen.add(name.lower())
                names.append(name)
        return tuple(names)

    @property
    def accepted_sni_names(self) -> frozenset[str]:
        """The lowercase names an SNI ``host_name`` must equal (after lowercasing) to be served.

        The endpoint and every custom domain name; DNS names compare case-insensitively.
        """
        return frozenset(
            {self.endpoint.lower(), *(d.domain_name.lower() for d in self.domain_configurations)}
        )

    def security_policy_for(self, sni: str | None) -> str:
        """Return the name of the security policy that governs a handshake with this SNI.

        The matching custom domain's policy if ``sni`` equals its domain name (case-insensitive);
        otherwise, including for no SNI or an unknown name, ``tls.security_policy``. Whether an
        unknown or missing SNI is refused at all is the caller's decision (``tls.require_sni``).
        """
        if sni is not None:
            wanted = sni.lower()
            for domain in self.domain_configurations:
                if domain.domain_name.lower() == wanted:
                    return domain.security_policy
        return self.tls.security_policy

    def with_overrides(
        self,
        *,
        certs_dir: Path | None = None,
        state_dir: Path | None = None,
        host: str | None = None,
        ports: Mapping[str, int | str | None] | None = None,
        endpoint: str | None = None,
        log_level: str | None = None,
    ) -> Config:
        """Return a copy with command-line overrides applied; None keeps the current value.

        New values are validated like the file's; paths are used as given (relative ones are
        relative to the current directory, as a shell user expects).

        Args:
            certs_dir: ``--certs-dir``.
            state_dir: ``--state-dir``.
            host: ``--host``: the bind address of every listener.
            ports: door -> ``--port`` / ``--https-port`` / ``--alpn-port`` / ``--api-port``
                value: a port (0 = a free one; a door the config lacks is added, not optional),
                ``"off"`` to serve without that door, or None to keep the config's.
            endpoint: ``--endpoint``.
            log_level: ``--log-level``: one of ``LOG_LEVELS``.

        Raises:
            ConfigError: a value is invalid; the message starts with the flag, e.g. ``--port: ``.
        """
        listeners = list(self.listeners)
        for door, value in (ports or {}).items():
            if value is None:
                continue
            flag = DOOR_FLAGS.get(door, f"--{door}-port")
            if door not in DOORS:
                raise ConfigError(f"{flag}: unknown door {door!r}; doors: {', '.join(DOORS)}")
            existing = next((i for i, item in enumerate(listeners) if item.door == door), None)
            if value == "off":
                if existing is not None:
                    del listeners[existing]
                continue
            port = _checked(flag, _parse_port, value)
            if existing is None:
                listeners.append(ListenerConfig(door, port))
            else:
                # Asked for by flag: a failure to bind it is an error, not a silent "off".
                listeners[existing] = replace(listeners[existing], port=port, optional=False)
        if host is not None:
            bind = _checked("--host", _parse_host, host)
            listeners = [replace(item, host=bind) for item in listeners]
        new_endpoint = self.endpoint
        if endpoint is not None:
            new_endpoint = _checked("--endpoint", _parse_endpoint, endpoint)
            for index, domain in enumerate(self.domain_configurations):
                if domain.domain_name.lower() == new_endpoint.lower():
                    raise ConfigError(
                        f"--endpoint: {new_endpoint!r} equals domain_configurations[{index}]"
                        f".domain_name in {self.source}; the endpoint and custom domains must"
                        " differ"
                    )
        return replace(
            self,
            endpoint=new_endpoint,
            listeners=tuple(listeners),
            logging=_with_log_level(self.logging, log_level),
            certs_dir=self.certs_dir if certs_dir is None else Path(certs_dir),
            state_dir=self.state_dir if state_dir is None else Path(state_dir),
        )

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, object] | None,
        *,
        source: str = "<mapping>",
        base_dir: Path | None = None,
    ) -> Config:
        """Validate a parsed config document (the YAML layout) and build a ``Config``.

        Args:
            data: the top-level mapping; None (an empty document) means all defaults.
            source: the file name (or other origin) to name in error messages and ``source``.
            base_dir: directory that relative paths in ``data`` are resolved against; None keeps
                them relative to the current directory. Default paths are never rebased.

        Raises:
            ConfigError: unknown key, wrong type or impossible value; the message is
                ``"<source>: <dotted.key.path>: <problem>"``. The first problem found is reported.
        """
        return _Reader(source, base_dir).config(data)


def load_config(path: Path | None) -> Config:
    """Read and validate a YAML config file; None means all defaults.

    An empty file means all defaults too. Paths in the file (``certs_dir``, ``state_dir``,
    ``logging.file``, ``resources.policies[].document_file``,
    ``resources.certificates[].certificate_file``) are relative to the file's directory.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8, not valid YAML (the message gives
            the line) or not a valid config (see :meth:`Config.from_mapping`); the message always
            names the file.
    """
    if path is None:
        return Config()
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: config file is not valid UTF-8 ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror or exc}") from None
    # The document this text parsed to at an earlier run, if kept (see config_cache).
    cached, data = cached_document(text)
    if not cached:
        data = _parse_yaml(text, source)
        store_document(text, data)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of settings, got {_type_name(data)}"
        )
    return Config.from_mapping(data, source=source, base_dir=path.parent)


def _parse_yaml(text: str, source: str) -> object:
    """Parse a config file's text.

    Raises:
        ConfigError: not valid YAML (the message gives the line), or a duplicate key.
    """
    import yaml  # noqa: PLC0415 (see _strict_loader)

    try:
        # A yaml.SafeLoader (no arbitrary objects) that also rejects duplicate keys.
        data: object = yaml.load(text, Loader=_strict_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{source}: {where}invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    return data


@functools.cache
def _strict_loader() -> type[yaml.SafeLoader]:
    """``yaml.SafeLoader`` that refuses duplicate keys instead of silently keeping the last.

    Built on first use: yaml is imported only when a YAML file is read (a tenth of ``serve``'s
    start-up otherwise, and the in-process broker of the test fixtures never reads one).
    """
    import yaml  # noqa: PLC0415 (see the docstring)

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(
            self, node: yaml.MappingNode, deep: bool = False
        ) -> dict[Hashable, object]:
            seen: set[object] = set()
            for key_node, _ in node.value:
                # A "<<" merge key is expanded by SafeLoader; keys it merges in may be overridden.
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                # Unhashable keys are left for SafeLoader, which reports them itself.
                if not isinstance(key, Hashable):
                    continue
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


# --- value parsers -----------------------------------------------------------------------------
# Each takes a raw (YAML-parsed or CLI) value and returns the typed value or raises _Invalid with
# a message that does not yet say where the value came from; callers add the key path or flag.


class _Invalid(Exception):
    """A single value is invalid; the message describes the problem only."""


def _type_name(value: object) -> str:
    """Name ``value``'s type the way a YAML author thinks of it."""
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        type(None): "null",
        list: "a list",
        dict: "a mapping",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def _parse_str(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_type_name(value)} ({value!r})")
    if not value:
        raise _Invalid("must not be empty")
    return value


def _parse_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_type_name(value)} ({value!r})")
    return value


def _parse_console_token(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", value):
        raise _Invalid("expected 16 to 128 characters of A-Z, a-z, 0-9, '_' and '-'")
    return value


def _parse_int(value: object) -> int:
    # bool is a subclass of int in Python, but `port: true` is a mistake, not the number 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"expected an integer, got {_type_name(value)} ({value!r})")
    return value


def _parse_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"expected a number of seconds, got {_type_name(value)} ({value!r})")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= _MAX_TIMEOUT_SECONDS:
        raise _Invalid(
            f"timeout must be more than 0 and at most {_MAX_TIMEOUT_SECONDS:g} seconds,"
            f" got {value!r}"
        )
    return seconds


def _parse_websocket_ttl(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"expected a number of seconds, got {_type_name(value)} ({value!r})")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= WEBSOCKET_TTL_MAX:
        raise _Invalid(
            f"must be more than 0 and at most {WEBSOCKET_TTL_MAX:g} seconds (AWS's 24 hours),"
            f" got {value!r}"
        )
    return seconds


def _parse_account_id(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        # An unquoted id parses as an int; accept it, but a leading zero is already lost.
        text = str(value)
        if not _ACCOUNT_ID_RE.fullmatch(text):
            raise _Invalid(
                f"AWS account id must be exactly 12 digits, got the number {value}; quote it"
                ' (account_id: "012345678901") to keep leading zeros'
            )
        return text
    text = _parse_str(value)
    if not _ACCOUNT_ID_RE.fullmatch(text):
        raise _Invalid(f"AWS account id must be exactly 12 digits, got {text!r}")
    return text


def _parse_region(value: object) -> str:
    text = _parse_str(value)
    if not _REGION_RE.fullmatch(text):
        raise _Invalid(
            f"not an AWS region name: {text!r}; expected e.g. us-east-1, eu-west-2, us-gov-west-1"
        )
    return text


def _is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _dns_name_problem(text: str) -> str | None:
    """Return why ``text`` is not an RFC 1123 DNS name, or None if it is one."""
    if len(text) > _MAX_DNS_NAME:
        return f"DNS name is {len(text)} characters long; at most {_MAX_DNS_NAME} are allowed"
    if text.endswith("."):
        # SNI host names are sent without the trailing root dot (RFC 6066 section 3).
        return f"DNS name {text!r} must not end with a dot"
    labels = text.split(".")
    for label in labels:
        if not _DNS_LABEL_RE.fullmatch(label):
            return (
                f"not a valid DNS name: {text!r} (label {label!r}: each dot-separated label must"
                " be 1-63 letters, digits or inner hyphens)"
            )
    if labels[-1].isdigit():
        # An all-numeric last label makes the name read as an IP address ("127.1").
        return f"not a valid DNS name: {text!r} (the last label must not be all digits)"
    return None


def dns_name_problem(text: str) -> str | None:
    """Why ``text`` cannot be a host name devices send in SNI, or None if it can.

    An IP literal is refused too: "Literal IPv4 and IPv6 addresses are not permitted in
    HostName" (RFC 6066 section 3).
    """
    if _is_ip_literal(text):
        return f"{text!r} is an IP address; TLS SNI carries DNS names only (RFC 6066 section 3)"
    return _dns_name_problem(text)


def _parse_dns_name(value: object) -> str:
    text = _parse_str(value)
    if _is_ip_literal(text):
        raise _Invalid(
            f"{text!r} is an IP address, but this must be a DNS name: TLS SNI cannot carry IP"
            " addresses (RFC 6066 section 3), so devices could never name it"
        )
    problem = _dns_name_problem(text)
    if problem is not None:
        raise _Invalid(problem)
    return text


_parse_endpoint = _parse_dns_name


def _parse_host(value: object) -> str:
    text = _parse_str(value)
    if _is_ip_literal(text) or _dns_name_problem(text) is None:
        return text
    raise _Invalid(
        f"not a bind address: {text!r}; expected an IPv4/IPv6 address (without brackets)"
        " or a host name"
    )


def _parse_port(value: object) -> int:
    port = _parse_int(value)
    if not 0 <= port <= _MAX_PORT:
        raise _Invalid(f"port {port} is out of range; expected 0..{_MAX_PORT} (0 = any free port)")
    return port


def _parse_door(value: object) -> str:
    text = _parse_str(value)
    if text not in DOORS:
        raise _Invalid(
            f"unknown door {text!r}{_suggestion(text, DOORS)}; doors: {', '.join(DOORS)}"
        )
    return text


def _bounded_int(low: int, high: int) -> Callable[[object], int]:
    def parse(value: object) -> int:
        number = _parse_int(value)
        if not low <= number <= high:
            raise _Invalid(f"{number} is out of range; expected {low}..{high}")
        return number

    return parse


def _parse_http_url(value: object) -> str:
    text = _parse_str(value)
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text):
        raise _Invalid(f"not an http(s) URL: {text!r}; expected e.g. http://127.0.0.1:5000")
    return text


def _name_parser(pattern: str, what: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = _parse_str(value)
        if not re.fullmatch(pattern, text):
            raise _Invalid(
                f"not a CloudWatch Logs {what} name: {text!r} (1..512 characters"
                + (", letters, digits and ._-/#)" if what == "log group" else ", no ':' or '*')")
            )
        return text

    return parse


def _parse_policy(value: object) -> str:
    text = _parse_str(value)
    if text not in SECURITY_POLICIES:
        raise _Invalid(
            f"unknown TLS security policy {text!r}{_suggestion(text, SECURITY_POLICIES)};"
            f" expected one of: {', '.join(SECURITY_POLICIES)}"
        )
    return text


def _parse_log_level(value: object) -> str:
    text = _parse_str(value)
    if text not in LOG_LEVELS:
        raise _Invalid(
            f"unknown log level {text!r}{_suggestion(text, LOG_LEVELS)};"
            f" expected one of: {', '.join(LOG_LEVELS)}"
        )
    return text


def _parse_thing_name(value: object) -> str:
    text = _parse_str(value)
    if not re.fullmatch(_THING_NAME_RE, text):
        raise _Invalid(
            f"invalid name {text!r}: AWS allows 1-128 of a-z A-Z 0-9 : _ - (no spaces or dots)"
        )
    return text


def _parse_policy_name(value: object) -> str:
    text = _parse_str(value)
    if not re.fullmatch(_POLICY_NAME_RE, text):
        raise _Invalid(
            f"invalid policy name {text!r}: AWS allows 1-128 of letters, digits and + = , . @ _ -"
        )
    return text


def _parse_attribute_value(value: object) -> str:
    # YAML reads `floor: 3` as a number; AWS attribute values are strings, so accept integers.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_type_name(value)} ({value!r})")
    if not re.fullmatch(_ATTRIBUTE_VALUE_RE, value):
        raise _Invalid(
            f"invalid attribute value {value!r}: AWS allows up to 800 of a-z A-Z 0-9 _ . , @ / :"
            " # = [ ] - (no spaces)"
        )
    return value


def _names(parse: Callable[[object], str]) -> Callable[[object], tuple[str, ...]]:
    """Return a parser of a list of names, each checked by ``parse``, without duplicates."""

    def parse_names(value: object) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise _Invalid(f"expected a list of names, got {_type_name(value)}")
        names: list[str] = []
        for index, item in enumerate(value):
            try:
                name = parse(item)
            except _Invalid as exc:
                raise _Invalid(f"item {index}: {exc}") from None
            if name in names:
                raise _Invalid(f"item {index}: {name!r} is listed twice")
            names.append(name)
        return tuple(names)

    return parse_names


def _optional(parse: Callable[[object], _T]) -> Callable[[object], _T | None]:
    """Return a parser that also accepts null (None)."""

    def parse_optional(value: object) -> _T | None:
        return None if value is None else parse(value)

    return parse_optional


def _parse_url(value: object) -> str:
    text = _parse_str(value)
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise _Invalid(f"expected an http:// or https:// URL with a host, got {text!r}")
    return text


def _parse_url_list(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Invalid(f"expected a list of URL prefixes, got {_type_name(value)}")
    urls: list[str] = []
    for index, item in enumerate(value):
        try:
            urls.append(_parse_url(item))
        except _Invalid as exc:
            raise _Invalid(f"item {index}: {exc}") from None
    return tuple(urls)


def _parse_commands(value: object) -> Mapping[str, tuple[str, ...]]:
    """Function name or ARN -> argv: a list of strings, or one string split as a shell does."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise _Invalid(
            f"expected a mapping of Lambda function names to commands, got {_type_name(value)}"
        )
    commands: dict[str, tuple[str, ...]] = {}
    for name, command in value.items():
        if not isinstance(name, str) or not name:
            raise _Invalid(f"function names must be non-empty strings, got {name!r}")
        try:
            argv = shlex.split(command) if isinstance(command, str) else command
        except ValueError as exc:
            raise _Invalid(f"{name}: the command does not parse: {exc}") from None
        if (
            not isinstance(argv, list)
            or not argv
            or not all(isinstance(arg, str) and arg for arg in argv)
        ):
            raise _Invalid(
                f"{name}: expected a command (a string, or a list of non-empty strings), got "
                f"{command!r}"
            )
        commands[name] = tuple(argv)
    return MappingProxyType(commands)


def _json_ready(value: object, where: str = "") -> object:
    """Turn a YAML-parsed value into JSON-ready data, or raise _Invalid naming the bad part.

    An unquoted ``Version: 2012-10-17`` parses as a date; it is written back as the same text.
    """
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        result: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Invalid(f"keys must be strings, got {_type_name(key)} ({key!r}){where}")
            result[key] = _json_ready(item, f" (under {key!r})")
        return result
    if isinstance(value, list):
        return [_json_ready(item, where) for item in value]
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise _Invalid(f"{_type_name(value)} ({value!r}) has no JSON form{where}")


def _parse_policy_document(value: object) -> str:
    """An inline policy document: a mapping (written as JSON text) or a string of JSON."""
    if isinstance(value, str):
        return _checked_json(value)
    if not isinstance(value, dict):
        raise _Invalid(
            f"expected a policy document mapping ({{Version, Statement}}), got {_type_name(value)}"
        )
    if not value:
        raise _Invalid("the policy document is empty")
    return json.dumps(_json_ready(value), indent=2)


def _checked_json(text: str) -> str:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Invalid(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(parsed, dict):
        raise _Invalid(f"a policy document is a JSON object, got {_type_name(parsed)}")
    return text


def _read_policy(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Invalid(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise _Invalid(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise _Invalid(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return _checked_json(text)
    except _Invalid as exc:
        raise _Invalid(f"{path}: {exc}") from None


def _suggestion(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""``."""
    import difflib  # noqa: PLC0415 (a suggestion for a mistake: not at every start)

    matches = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _checked(flag: str, parse: Callable[[object], _T], value: object) -> _T:
    """Run ``parse`` on a command-line value, prefixing any problem with the flag name."""
    try:
        return parse(value)
    except _Invalid as exc:
        raise ConfigError(f"{flag}: {exc}") from None


# --- the document reader -----------------------------------------------------------------------


def _with_log_level(logging_config: LoggingConfig, level: str | None) -> LoggingConfig:
    """``--log-level`` over the configuration's ``logging.level`` (None keeps it)."""
    if level is None:
        return logging_config
    if level not in LOG_LEVELS:
        raise ConfigError(f"--log-level: {level!r}; one of {', '.join(LOG_LEVELS)}")
    return replace(logging_config, level=level)


class _Reader:
    """Walks one config document, turning the first problem into a located ``ConfigError``."""

    def __init__(self, source: str, base_dir: Path | None) -> None:
        self.source = source
        self.base_dir = base_dir

    def fail(self, path: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {path}: {message}")

    def section(self, value: object, path: str, allowed: tuple[str, ...]) -> Mapping[str, object]:
        """Check that ``value`` is a mapping with only ``allowed`` keys; null means empty.

        Null is accepted because a section whose every line is commented out parses as null.
        """
        if value is None:
            return {}
        if not isinstance(value, dict):
            where = path or "top level"
            self.fail(where, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str):
                self.fail(
                    path or "top level",
                    f"keys must be strings, got {_type_name(key)} ({key!r}) as a key",
                )
            if key not in allowed:
                self.fail(
                    _join(path, key),
                    f"unknown key{_suggestion(key, allowed)}; valid keys here: "
                    + ", ".join(allowed),
                )
        return value

    def get(
        self,
        mapping: Mapping[str, object],
        path: str,
        key: str,
        parse: Callable[[object], _T],
        default: _T,
    ) -> _T:
        """Return ``parse(mapping[key])``, or ``default`` when the key is absent."""
        if key not in mapping:
            return default
        try:
            return parse(mapping[key])
        except _Invalid as exc:
            self.fail(_join(path, key), str(exc))

    def path_value(self, value: object) -> Path:
        """Parse a path setting, resolving a relative one against the config file's directory."""
        path = Path(_parse_str(value))
        return path if self.base_dir is None else self.base_dir / path

    def optional_path_value(self, value: object) -> Path | None:
        return None if value is None else self.path_value(value)

    def config(self, data: object) -> Config:
        defaults = Config()
        top = self.section(
            data,
            "",
            (
                "account_id",
                "region",
                "endpoint",
                "listener",
                "listeners",
                "tls",
                "domain_configurations",
                "certs_dir",
                "state_dir",
                "logging",
                "limits",
                "diagnostics",
                "control_plane",
                "resources",
                "rules",
            ),
        )
        if "listener" in top:
            self.fail(
                "listener",
                "replaced by 'listeners', a list of doors; write e.g. listeners: "
                "[{door: mqtt, host: 127.0.0.1, port: 8883}, {door: https, port: 8443}, "
                "{door: alpn, port: 443, optional: true}]",
            )
        endpoint = self.get(top, "", "endpoint", _parse_endpoint, defaults.endpoint)
        tls = self.tls(top.get("tls"))
        return Config(
            account_id=self.get(top, "", "account_id", _parse_account_id, defaults.account_id),
            region=self.get(top, "", "region", _parse_region, defaults.region),
            endpoint=endpoint,
            listeners=self.listeners(top["listeners"])
            if "listeners" in top
            else defaults.listeners,
            tls=tls,
            domain_configurations=self.domains(
                top.get("domain_configurations"), endpoint, tls.security_policy
            ),
            certs_dir=self.get(top, "", "certs_dir", self.path_value, defaults.certs_dir),
            state_dir=self.get(top, "", "state_dir", self.path_value, defaults.state_dir),
            logging=self.logging(top.get("logging")),
            limits=self.limits(top.get("limits")),
            diagnostics=self.diagnostics(top.get("diagnostics")),
            control_plane=self.control_plane(top.get("control_plane")),
            resources=self.resources(top.get("resources")),
            rules=self.rules(top.get("rules")),
            source=self.source,
        )

    def listeners(self, value: object) -> tuple[ListenerConfig, ...]:
        if value is None:  # every line commented out: the defaults
            return DEFAULT_LISTENERS
        if not isinstance(value, list):
            self.fail("listeners", f"expected a list of listeners, got {_type_name(value)}")
        if not value:
            self.fail("listeners", "at least one listener is needed (a broker with no door)")
        listeners: list[ListenerConfig] = []
        for index, item in enumerate(value):
            path = f"listeners[{index}]"
            m = self.section(item, path, ("door", "host", "port", "optional"))
            door = self.required(m, path, "door", _parse_door)
            if any(listener.door == door for listener in listeners):
                self.fail(_join(path, "door"), f"door {door!r} is listed twice; one each")
            listeners.append(
                ListenerConfig(
                    door=door,
                    port=self.required(m, path, "port", _parse_port),
                    host=self.get(m, path, "host", _parse_host, "127.0.0.1"),
                    optional=self.get(m, path, "optional", _parse_bool, False),
                )
            )
        return tuple(listeners)

    def limits(self, value: object) -> LimitsConfig:
        d = LimitsConfig()
        m = self.section(
            value,
            "limits",
            (
                "outbound_buffer_bytes",
                "session_queue_max",
                "aws_quotas",
                "websocket_ttl",
                "retained_messages_max",
                "user_properties_max_bytes",
            ),
        )
        return LimitsConfig(
            outbound_buffer_bytes=self.get(
                m,
                "limits",
                "outbound_buffer_bytes",
                _bounded_int(1024, 64 * 1024 * 1024),
                d.outbound_buffer_bytes,
            ),
            session_queue_max=self.get(
                m, "limits", "session_queue_max", _bounded_int(1, 10_000_000), d.session_queue_max
            ),
            aws_quotas=self.get(m, "limits", "aws_quotas", _parse_bool, d.aws_quotas),
            websocket_ttl=self.get(
                m, "limits", "websocket_ttl", _parse_websocket_ttl, d.websocket_ttl
            ),
            retained_messages_max=self.get(
                m,
                "limits",
                "retained_messages_max",
                _bounded_int(1, 10_000_000),
                d.retained_messages_max,
            ),
            user_properties_max_bytes=self.get(
                m,
                "limits",
                "user_properties_max_bytes",
                _bounded_int(0, 128 * 1024),
                d.user_properties_max_bytes,
            ),
        )

    def tls(self, value: object) -> TlsConfig:
        d = TlsConfig()
        keys = ("security_policy", "require_sni", "handshake_timeout", "connect_timeout")
        m = self.section(value, "tls", keys)
        return TlsConfig(
            security_policy=self.get(m, "tls", "security_policy", _parse_policy, d.security_policy),
            require_sni=self.get(m, "tls", "require_sni", _parse_bool, d.require_sni),
            handshake_timeout=self.get(
                m, "tls", "handshake_timeout", _parse_timeout, d.handshake_timeout
            ),
            connect_timeout=self.get(
                m, "tls", "connect_timeout", _parse_timeout, d.connect_timeout
            ),
        )

    def domains(
        self, value: object, endpoint: str, default_policy: str
    ) -> tuple[DomainConfiguration, ...]:
        if value is None:
            return ()
        from aws_iot_mock.config_sections import DomainConfiguration  # noqa: PLC0415 (see there)

        if not isinstance(value, list):
            self.fail(
                "domain_configurations",
                f"expected a list of {{domain_name, security_policy}} mappings,"
                f" got {_type_name(value)}",
            )
        seen: dict[str, int] = {}
        domains: list[DomainConfiguration] = []
        for index, item in enumerate(value):
            path = f"domain_configurations[{index}]"
            if not isinstance(item, dict):
                self.fail(path, f"expected a mapping, got {_type_name(item)}")
            m = self.section(item, path, ("domain_name", "security_policy"))
            if "domain_name" not in m:
                self.fail(_join(path, "domain_name"), "required key is missing")
            name = self.get(m, path, "domain_name", _parse_dns_name, "")
            if name.lower() == endpoint.lower():
                self.fail(
                    _join(path, "domain_name"),
                    f"{name!r} equals the endpoint; a custom domain needs its own name",
                )
            if name.lower() in seen:
                self.fail(
                    _join(path, "domain_name"),
                    f"duplicate domain name {name!r} (already used by"
                    f" domain_configurations[{seen[name.lower()]}]; names are case-insensitive)",
                )
            seen[name.lower()] = index
            policy = self.get(m, path, "security_policy", _parse_policy, default_policy)
            domains.append(DomainConfiguration(domain_name=name, security_policy=policy))
        return tuple(domains)

    def logging(self, value: object) -> LoggingConfig:
        d = LoggingConfig()
        m = self.section(
            value, "logging", ("level", "file", "stdout", "buffer_bytes", "cloudwatch")
        )
        return LoggingConfig(
            level=self.get(m, "logging", "level", _parse_log_level, d.level),
            file=self.get(m, "logging", "file", self.optional_path_value, d.file),
            stdout=self.get(m, "logging", "stdout", _parse_bool, d.stdout),
            buffer_bytes=self.get(
                m, "logging", "buffer_bytes", _bounded_int(64 * 1024, 1 << 30), d.buffer_bytes
            ),
            cloudwatch=self.cloudwatch(m["cloudwatch"])
            if m.get("cloudwatch") is not None
            else None,
        )

    def cloudwatch(self, value: object) -> CloudWatchConfig:
        from aws_iot_mock.config_sections import CloudWatchConfig  # noqa: PLC0415 (see there)

        path = "logging.cloudwatch"
        d = CloudWatchConfig()
        m = self.section(
            value, path, ("endpoint_url", "region", "log_group", "log_stream", "queue_bytes")
        )
        if importlib.util.find_spec("boto3") is None:
            self.fail(
                path,
                "the CloudWatch Logs sink needs boto3, which is not installed; install it with "
                "pip install 'aws-iot-mock[cloudwatch]'",
            )
        return CloudWatchConfig(
            endpoint_url=self.get(m, path, "endpoint_url", _parse_http_url, d.endpoint_url),
            region=self.get(m, path, "region", _parse_region, d.region),
            log_group=self.get(
                m, path, "log_group", _name_parser(_LOG_GROUP_RE, "log group"), d.log_group
            ),
            log_stream=self.get(
                m, path, "log_stream", _name_parser(_LOG_STREAM_RE, "log stream"), d.log_stream
            ),
            queue_bytes=self.get(
                m, path, "queue_bytes", _bounded_int(64 * 1024, 1 << 30), d.queue_bytes
            ),
        )

    def diagnostics(self, value: object) -> DiagnosticsConfig:
        d = DiagnosticsConfig()
        m = self.section(value, "diagnostics", ("connack_on_deny",))
        return DiagnosticsConfig(
            connack_on_deny=self.get(
                m, "diagnostics", "connack_on_deny", _parse_bool, d.connack_on_deny
            ),
        )

    def control_plane(self, value: object) -> ControlPlaneConfig:
        d = ControlPlaneConfig()
        m = self.section(value, "control_plane", ("strict_sigv4", "console", "console_token"))
        return ControlPlaneConfig(
            strict_sigv4=self.get(m, "control_plane", "strict_sigv4", _parse_bool, d.strict_sigv4),
            console=self.get(m, "control_plane", "console", _parse_bool, d.console),
            console_token=self.get(
                m, "control_plane", "console_token", _parse_console_token, d.console_token
            ),
        )

    def resources(self, value: object) -> ResourcesConfig:
        m = self.section(value, "resources", ("things", "policies", "certificates"))
        things: list[ThingResource] = []
        seen_things: dict[str, int] = {}
        for index, item in enumerate(self.entries(m, "resources.things", "thing_name")):
            thing = self.thing(item, f"resources.things[{index}]")
            if thing.thing_name in seen_things:
                self.fail(
                    f"resources.things[{index}].thing_name",
                    f"duplicate thing name {thing.thing_name!r} (already declared by"
                    f" resources.things[{seen_things[thing.thing_name]}])",
                )
            seen_things[thing.thing_name] = index
            things.append(thing)
        policies: list[PolicyResource] = []
        seen_policies: dict[str, int] = {}
        for index, item in enumerate(self.entries(m, "resources.policies", "policy_name")):
            policy = self.policy(item, f"resources.policies[{index}]")
            if policy.policy_name in seen_policies:
                self.fail(
                    f"resources.policies[{index}].policy_name",
                    f"duplicate policy name {policy.policy_name!r} (already declared by"
                    f" resources.policies[{seen_policies[policy.policy_name]}])",
                )
            seen_policies[policy.policy_name] = index
            policies.append(policy)
        certificates = tuple(
            self.certificate(item, f"resources.certificates[{index}]")
            for index, item in enumerate(
                self.entries(m, "resources.certificates", "certificate_file")
            )
        )
        return ResourcesConfig(
            things=tuple(things), policies=tuple(policies), certificates=certificates
        )

    def rules(self, value: object) -> RulesConfig:
        d = RulesConfig()
        keys = (
            "aws_endpoint_url",
            "aws_region",
            "aws_access_key_id",
            "aws_secret_access_key",
            "lambda_endpoint_url",
            "lambda_commands",
            "http_confirmed_destinations",
            "http_allow_loopback",
            "http_ca_file",
            "action_timeout",
            "queue_max",
            "workers",
            "basic_ingest_checks_from",
            "republish_max_depth",
        )
        m = self.section(value, "rules", keys)
        optional_url = _optional(_parse_url)
        optional_str = _optional(_parse_str)
        return RulesConfig(
            aws_endpoint_url=self.get(m, "rules", "aws_endpoint_url", optional_url, None),
            aws_region=self.get(m, "rules", "aws_region", _optional(_parse_region), None),
            aws_access_key_id=self.get(m, "rules", "aws_access_key_id", optional_str, None),
            aws_secret_access_key=self.get(m, "rules", "aws_secret_access_key", optional_str, None),
            lambda_endpoint_url=self.get(m, "rules", "lambda_endpoint_url", optional_url, None),
            lambda_commands=self.get(
                m, "rules", "lambda_commands", _parse_commands, d.lambda_commands
            ),
            http_confirmed_destinations=self.get(
                m, "rules", "http_confirmed_destinations", _parse_url_list, ()
            ),
            http_allow_loopback=self.get(
                m, "rules", "http_allow_loopback", _parse_bool, d.http_allow_loopback
            ),
            http_ca_file=self.get(m, "rules", "http_ca_file", self.optional_path_value, None),
            action_timeout=self.get(m, "rules", "action_timeout", _parse_timeout, d.action_timeout),
            queue_max=self.get(m, "rules", "queue_max", _bounded_int(1, 1_000_000), d.queue_max),
            workers=self.get(m, "rules", "workers", _bounded_int(1, 64), d.workers),
            basic_ingest_checks_from=self.get(
                m, "rules", "basic_ingest_checks_from", _parse_bool, d.basic_ingest_checks_from
            ),
            republish_max_depth=self.get(
                m, "rules", "republish_max_depth", _bounded_int(0, 64), d.republish_max_depth
            ),
        )

    def entries(self, section: Mapping[str, object], path: str, name_key: str) -> list[object]:
        """Return the list at ``path`` (its last key is looked up in ``section``); null is []."""
        value = section.get(path.rsplit(".", 1)[-1])
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(
                path, f"expected a list of mappings (each with {name_key}), got {_type_name(value)}"
            )
        return value

    def required(
        self, mapping: Mapping[str, object], path: str, key: str, parse: Callable[[object], _T]
    ) -> _T:
        if key not in mapping:
            self.fail(_join(path, key), "required key is missing")
        try:
            return parse(mapping[key])
        except _Invalid as exc:
            self.fail(_join(path, key), str(exc))

    def thing(self, item: object, path: str) -> ThingResource:
        from aws_iot_mock.config_sections import ThingResource  # noqa: PLC0415 (see there)

        m = self.mapping_item(item, path, ("thing_name", "thing_type_name", "attributes"))
        return ThingResource(
            thing_name=self.required(m, path, "thing_name", _parse_thing_name),
            thing_type_name=self.get(m, path, "thing_type_name", _parse_thing_name, None),
            attributes=self.attributes(m.get("attributes"), _join(path, "attributes")),
        )

    def attributes(self, value: object, path: str) -> Mapping[str, str]:
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            self.fail(
                path, f"expected a mapping of attribute names to values, got {_type_name(value)}"
            )
        attributes: dict[str, str] = {}
        for name, raw in value.items():
            if not isinstance(name, str):
                # YAML 1.1 reads unquoted on/off/yes/no as booleans, also as keys.
                self.fail(
                    path,
                    f"attribute names must be strings, got {_type_name(name)} ({name!r});"
                    " quote the name",
                )
            if not re.fullmatch(_ATTRIBUTE_NAME_RE, name):
                self.fail(
                    path,
                    f"invalid attribute name {name!r}: AWS allows 1-128 of a-z A-Z 0-9 _ . , @ /"
                    " : # -",
                )
            try:
                attributes[name] = _parse_attribute_value(raw)
            except _Invalid as exc:
                self.fail(_join(path, name), str(exc))
        return MappingProxyType(attributes)

    def policy(self, item: object, path: str) -> PolicyResource:
        from aws_iot_mock.config_sections import PolicyResource  # noqa: PLC0415 (see there)

        m = self.mapping_item(item, path, ("policy_name", "document", "document_file"))
        name = self.required(m, path, "policy_name", _parse_policy_name)
        if ("document" in m) == ("document_file" in m):
            self.fail(path, "give exactly one of document (a mapping) or document_file (a path)")
        if "document" in m:
            document = self.get(m, path, "document", _parse_policy_document, "")
        else:
            file = self.get(m, path, "document_file", self.path_value, Path())
            document = self.get(m, path, "document_file", lambda _: _read_policy(file), "")
        return PolicyResource(policy_name=name, document=document)

    def certificate(self, item: object, path: str) -> CertificateResource:
        from aws_iot_mock.config_sections import CertificateResource  # noqa: PLC0415 (see there)

        m = self.mapping_item(item, path, ("certificate_file", "things", "policies"))
        return CertificateResource(
            certificate_file=self.required(m, path, "certificate_file", self.path_value),
            things=self.get(m, path, "things", _names(_parse_thing_name), ()),
            policies=self.get(m, path, "policies", _names(_parse_policy_name), ()),
        )

    def mapping_item(
        self, item: object, path: str, allowed: tuple[str, ...]
    ) -> Mapping[str, object]:
        if not isinstance(item, dict):
            self.fail(path, f"expected a mapping, got {_type_name(item)}")
        return self.section(item, path, allowed)


def _join(path: str, key: str) -> str:
    """Append ``key`` to a dotted key path (``""`` is the top level)."""
    return f"{path}.{key}" if path else key
