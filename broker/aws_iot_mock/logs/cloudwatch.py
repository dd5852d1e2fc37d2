"""AWSIotLogsV2 records and the reason catalogue.

Every reason this broker gives for refusing or closing a connection is defined in ``Reason``
below and nowhere else; the README's reason table is generated from the same data
(``reason_catalogue_markdown``) and a test keeps the two in sync.

The record shape follows AWS IoT's CloudWatch log entries, "CloudWatch AWS IoT log entries"
(https://docs.aws.amazon.com/iot/latest/developerguide/cwl-format.html): common attributes
``timestamp`` (written ``YYYY-MM-DD HH:MM:SS.mmm`` in every AWS example), ``logLevel``,
``traceId``, ``accountId``, ``status``, ``eventType``; broker attributes ``protocol``,
``clientId``, ``principalId``, ``sourceIp``, ``sourcePort``; failures carry ``reason`` and
``details``.

AWS documents no log entry for TLS or SNI refusals of X.509 connections (the real service shows
the device developer nothing); these reasons are this project's, in AWS's naming style.

This module is pure: it builds dictionaries; ``aws_iot_mock.logs.sink`` writes them.
"""

from __future__ import annotations

import datetime as _dt
import enum
import itertools
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from aws_iot_mock.auth.sigv4_reasons import SigV4Reason
from aws_iot_mock.errors import StorageFault

__all__ = [
    "CLIENT_TEXT_MAX",
    "DETAILS_MAX",
    "LAST_HEAD",
    "LOG_LEVELS",
    "SUCCESS_TAILS",
    "TRACE_SUFFIXES",
    "ConnectionFacts",
    "EventType",
    "LogLevel",
    "LogRecord",
    "Reason",
    "SuccessLog",
    "broker_record",
    "capped",
    "connect_failure",
    "connect_success",
    "disconnect_record",
    "event_failure",
    "event_success",
    "format_timestamp",
    "handshake_record",
    "head_of",
    "new_success_tail",
    "new_trace_id",
    "now_timestamp",
    "reason_catalogue_markdown",
    "record_level",
    "record_line",
    "refill_trace_suffixes",
    "rule_record",
    "service_record",
    "shadow_record",
    "storage_reason",
    "success_line",
    "success_logger",
]


class LogLevel(enum.IntEnum):
    """AWS IoT log levels; each level includes everything more severe (lower value)."""

    DISABLED = 0
    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4


LOG_LEVELS: tuple[str, ...] = tuple(level.name for level in LogLevel)


class EventType(enum.Enum):
    """Message-broker ``eventType`` values this broker writes (AWS's names)."""

    CONNECT = "Connect"
    DISCONNECT = "Disconnect"
    PUBLISH_IN = "Publish-In"
    PUBLISH_OUT = "Publish-Out"
    SUBSCRIBE = "Subscribe"
    UNSUBSCRIBE = "Unsubscribe"
    # The retained-message and connection APIs of iot-data (cwl-format, "Message broker log
    # entries"; AWS spells the list event without the s).
    GET_RETAINED_MESSAGE = "GetRetainedMessage"
    LIST_RETAINED_MESSAGE = "ListRetainedMessage"
    DELETE_CONNECTION = "DeleteConnection"
    # Device Shadow event types (cwl-format, "Device Shadow log entries").
    GET_THING_SHADOW = "GetThingShadow"
    UPDATE_THING_SHADOW = "UpdateThingShadow"
    DELETE_THING_SHADOW = "DeleteThingShadow"
    # The broker's own condition, no client's request (its log output fell behind). AWS logs
    # nothing like it: the name is this project's.
    BROKER = "Broker"
    # Jobs and fleet provisioning (cwl-format, "Job log entries" and "Device provisioning log
    # entries"): one record per device request, named after the API operation.
    GET_PENDING_JOB_EXECUTIONS = "GetPendingJobExecutions"
    START_NEXT_PENDING_JOB_EXECUTION = "StartNextPendingJobExecution"
    DESCRIBE_JOB_EXECUTION = "DescribeJobExecution"
    UPDATE_JOB_EXECUTION = "UpdateJobExecution"
    CREATE_KEYS_AND_CERTIFICATE = "CreateKeysAndCertificate"
    CREATE_CERTIFICATE_FROM_CSR = "CreateCertificateFromCsr"
    REGISTER_THING = "RegisterThing"
    # Rules engine event types ("Rules engine log entries",
    # https://docs.aws.amazon.com/iot/latest/developerguide/cwl-format.html#rule-engine-logs).
    RULE_MATCH = "RuleMatch"
    STARTING_RULE_EXECUTION = "StartingRuleExecution"
    RULE_EXECUTION = "RuleExecution"
    RULE_NOT_FOUND = "RuleNotFound"
    RULE_MESSAGE_THROTTLED = "RuleMessageThrottled"


# What a client refused by the SigV4 verifier sees (aws_iot_mock.auth.sigv4.Refused).
_SIGV4_SEES = "HTTP 403 ForbiddenException `Forbidden` (a refused WebSocket upgrade: then close)"


@dataclass(frozen=True)
class _ReasonInfo:
    """What a reason means, which TLS alert the client sees, and when it happens."""

    alert: str
    meaning: str


class Reason(enum.Enum):
    """Why a connection was refused or closed by the front door.

    Each member's ``alert`` is what the refused client sees on the wire, and ``meaning`` the
    one-line explanation shown in the README's reason catalogue.
    """

    SNI_MISSING = _ReasonInfo(
        "unrecognized_name",
        "The ClientHello carried no SNI `host_name`, and `tls.require_sni` is true (AWS: "
        '"Connection attempts that don\'t include the SNI are refused").',
    )
    SNI_MISMATCH = _ReasonInfo(
        "unrecognized_name",
        "The SNI `host_name` is neither the endpoint nor a configured domain name "
        "(compared case-insensitively).",
    )
    TLS_VERSION_NOT_SUPPORTED = _ReasonInfo(
        "protocol_version",
        "The client offered no TLS version that the security policy allows "
        "(e.g. TLS 1.3 only against `IoTSecurityPolicy_TLS12_1_2_2022_10`).",
    )
    NO_SHARED_CIPHER = _ReasonInfo(
        "handshake_failure",
        "None of the client's cipher suites is in the security policy.",
    )
    CLIENT_CERTIFICATE_MISSING = _ReasonInfo(
        "handshake_failure (TLS 1.2), certificate_required (TLS 1.3)",
        "The client sent no certificate; AWS IoT requires mutual TLS on 8883.",
    )
    CLIENT_CERTIFICATE_UNTRUSTED = _ReasonInfo(
        "unknown_ca",
        "The client certificate does not chain to the local root CA.",
    )
    CLIENT_CERTIFICATE_EXPIRED = _ReasonInfo(
        "certificate_expired (bad_certificate if not yet valid)",
        "The client certificate is expired or not yet valid.",
    )
    CERTIFICATE_NOT_REGISTERED = _ReasonInfo(
        "certificate_unknown (TLS 1.2), close_notify (TLS 1.3)",
        "The certificate chains to the CA but is not in the certificate registry "
        "(AWS: certificates must be registered before a client can connect).",
    )
    CERTIFICATE_NOT_ACTIVE = _ReasonInfo(
        "certificate_revoked if REVOKED, access_denied otherwise (TLS 1.2); close_notify (TLS 1.3)",
        "The certificate is registered but its status is not ACTIVE "
        "(INACTIVE, REVOKED, PENDING_ACTIVATION, ...).",
    )
    SERVER_CERTIFICATE_REJECTED = _ReasonInfo(
        "(the client sent the alert: unknown_ca, bad_certificate, certificate_unknown)",
        "The client refused the broker's server certificate: it does not trust the local "
        "root CA (`certs/root-ca.pem`), or it checks a name the certificate does not carry.",
    )
    HANDSHAKE_TIMEOUT = _ReasonInfo(
        "none (TCP close)",
        "The TLS handshake did not complete within `tls.handshake_timeout` seconds.",
    )
    CONNECT_TIMEOUT = _ReasonInfo(
        "close_notify",
        "The handshake completed but no MQTT CONNECT arrived within `tls.connect_timeout` seconds.",
    )
    HANDSHAKE_FAILED = _ReasonInfo(
        "as OpenSSL chose",
        "Any other TLS failure (not TLS at all, a malformed record, a client that closed "
        "mid-handshake); OpenSSL's reason is in `details`.",
    )
    ALPN_REQUIRED = _ReasonInfo(
        "close_notify",
        "A client certificate on port 443 without ALPN `x-amzn-mqtt-ca` (MQTT) or "
        "`x-amzn-http-ca` (HTTPS): AWS requires one of them there (8883 and 8443 need none).",
    )
    CUSTOM_AUTH_NOT_EMULATED = _ReasonInfo(
        "close_notify (ALPN `mqtt`); HTTP 403 ForbiddenException (HTTPS, WebSocket upgrade)",
        "A custom authorizer was asked for: ALPN `mqtt` on port 443, or `x-amz-customauthorizer-*` "
        "headers or query parameters on HTTPS or the WebSocket upgrade. Custom authentication is "
        "not emulated.",
    )
    DOOR_NOT_AVAILABLE = _ReasonInfo(
        "close_notify",
        "The protocol this connection asked for is not served by this build (see `details`).",
    )
    TOO_MANY_OPEN_FILES = _ReasonInfo(
        "nothing yet: the connection waits in the listen backlog until a descriptor is free",
        "Accepting a TCP connection failed because the process is out of file descriptors "
        "(EMFILE/ENFILE). Each connection takes one; `serve` raises its soft limit to the hard "
        "limit at start, so raise the hard limit (`ulimit -n`, Docker's `--ulimit nofile=`).",
    )
    # -- MQTT: CONNECT ------------------------------------------------------------------
    UNSUPPORTED_PROTOCOL_VERSION = _ReasonInfo(
        "CONNACK 0x01, then close",
        "The CONNECT is not MQTT 3.1.1 or 5 (e.g. MQTT 3.1, protocol level 3).",
    )
    CLIENT_ID_INVALID = _ReasonInfo(
        "CONNACK 0x02 (MQTT 3.1.1), 0x85 (MQTT 5), then close",
        "The client ID is over 128 bytes, starts with `$` (reserved for AWS), or is empty on "
        "MQTT 3.1.1 (MQTT 5 gets an assigned one).",
    )
    ENHANCED_AUTHENTICATION_NOT_SUPPORTED = _ReasonInfo(
        "CONNACK 0x87, then close",
        "An MQTT 5 CONNECT with an Authentication Method: AWS IoT Core supports no enhanced "
        "authentication (AUTH).",
    )
    WILL_QOS_NOT_SUPPORTED = _ReasonInfo(
        "close (MQTT 3.1.1), CONNACK 0x9B (MQTT 5)",
        "The will has QoS 2; AWS IoT supports QoS 0 and 1 only.",
    )
    WILL_TOPIC_INVALID = _ReasonInfo(
        "close (MQTT 3.1.1), CONNACK 0x90 (MQTT 5)",
        "The will topic is not a valid topic name, or is a reserved topic.",
    )
    AUTHORIZATION_FAILURE = _ReasonInfo(
        "CONNECT: close, no CONNACK (MQTT 3.1.1), CONNACK 0x87 (MQTT 5); PUBLISH/SUBSCRIBE: "
        "disconnect (MQTT 3.1.1), PUBACK/SUBACK 0x87 (MQTT 5); delivery: not delivered",
        "No attached policy allows the action on the resource, or one explicitly denies it; "
        "`details` names the action, the resource and the deciding policy statement.",
    )
    CERTIFICATE_STATUS_CHANGED = _ReasonInfo(
        "close (MQTT 5: DISCONNECT 0x87 first)",
        "A live connection's certificate stopped being ACTIVE (update-certificate); AWS "
        "disconnects such devices (`AUTH_ERROR`).",
    )
    # -- MQTT: after CONNACK ------------------------------------------------------------
    PAYLOAD_LIMIT_EXCEEDED = _ReasonInfo(
        "close (MQTT 5: DISCONNECT 0x95 first)",
        "A packet's payload is over 128 KiB (AWS: `CLIENT_ERROR` with reason "
        "`PAYLOAD_LIMIT_EXCEEDED`), refused from the fixed header before the body is read.",
    )
    MALFORMED_PACKET = _ReasonInfo(
        "close (MQTT 5: DISCONNECT 0x81 first)",
        "The bytes break the MQTT specification; `details` says how.",
    )
    PROTOCOL_ERROR = _ReasonInfo(
        "close (MQTT 5: DISCONNECT 0x82 first)",
        "A valid packet at the wrong time: a second CONNECT, a packet before CONNECT, "
        "PUBREC/PUBREL/PUBCOMP/AUTH (AWS supports none of them), an invalid topic alias.",
    )
    QOS_NOT_SUPPORTED = _ReasonInfo(
        "no PUBACK / no SUBACK",
        'A QoS 2 PUBLISH or SUBSCRIBE: AWS "doesn\'t send a PUBACK or SUBACK" and delivers '
        "nothing.",
    )
    TOPIC_INVALID = _ReasonInfo(
        "close (MQTT 5: DISCONNECT 0x90 first)",
        "A PUBLISH topic is empty, has wildcards, is over 256 bytes or 7 slashes.",
    )
    RESERVED_TOPIC = _ReasonInfo(
        "PUBLISH: MQTT 5 PUBACK 0x87 (QoS 1), MQTT 3.1.1 close; SUBSCRIBE: SUBACK 0x87/0x80",
        "A PUBLISH to a topic AWS IoT publishes (`/accepted`, `/rejected`, `/delta`, "
        "`$aws/events/...`), to a `$` topic that is not reserved for a service, or with RETAIN "
        "to any `$` topic; a SUBSCRIBE to Basic Ingest (`$aws/rules/...`) or to a `$` topic "
        "that matches no reserved topic.",
    )
    SERVICE_NOT_EMULATED = _ReasonInfo(
        "MQTT 5: PUBACK 0x87 (QoS 1) / SUBACK 0x87; MQTT 3.1.1: close / SUBACK 0x80",
        "A reserved `$aws/...` topic of an AWS service this project does not emulate (Device "
        "Defender, secure tunneling, ...); `details` names the service. Never accepted in "
        "silence.",
    )
    PAYLOAD_FORMAT_INVALID = _ReasonInfo(
        "MQTT 5: PUBACK 0x99 (QoS 1) or nothing (QoS 0)",
        "Payload Format Indicator 1 (UTF-8) on a payload that is not valid UTF-8.",
    )
    TOPIC_FILTER_INVALID = _ReasonInfo(
        "SUBACK 0x8F (MQTT 5), 0x80 (MQTT 3.1.1) for that filter",
        "A SUBSCRIBE filter breaks the wildcard rules or AWS's size limits.",
    )
    USER_PROPERTIES_LIMIT_EXCEEDED = _ReasonInfo(
        "PUBACK 0x97 (MQTT 5); a QoS 0 message is dropped",
        "The MQTT 5 user properties of one message exceed `limits.user_properties_max_bytes` "
        "(as encoded: keys, values and 5 bytes of framing each; 8 KiB by default); the message "
        "is not delivered or retained.",
    )
    RETAINED_MESSAGES_LIMIT_EXCEEDED = _ReasonInfo(
        "PUBACK 0x97 (MQTT 5); MQTT 3.1.1: close",
        "A new retained message (RETAIN set, payload not empty, on a topic holding none) while "
        "`limits.retained_messages_max` are stored (AWS: a throttled response at the account's "
        "quota); replacing or deleting a retained message is always allowed.",
    )
    SUBSCRIPTION_LIMIT_EXCEEDED = _ReasonInfo(
        "SUBACK 0x97 (MQTT 5), 0x80 (MQTT 3.1.1) for that filter",
        "The connection already has AWS's maximum of 50 subscriptions.",
    )
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = _ReasonInfo(
        "DISCONNECT 0xA1, close",
        "A SUBSCRIBE carried a Subscription Identifier; AWS IoT advertises none available.",
    )
    PUBLISH_RATE_EXCEEDED = _ReasonInfo(
        "MQTT 5: PUBACK 0x97 (QoS 1); otherwise discarded without a PUBACK",
        "More than AWS's 100 publishes per second on one connection (in and out counted "
        "together); the excess is discarded, as AWS does. Logged once per second it happens. "
        "`limits.aws_quotas: false` lifts the AWS quotas.",
    )
    THROUGHPUT_LIMIT_EXCEEDED = _ReasonInfo(
        "reading paused until the second is over (delayed, not lost)",
        "More than AWS's 512 KiB/s received on one connection; AWS delays it. Logged once per "
        "second it happens.",
    )
    SUBSCRIBE_FILTERS_EXCEEDED = _ReasonInfo(
        "SUBACK 0x97 (MQTT 5), 0x80 (MQTT 3.1.1) for every filter",
        "A SUBSCRIBE with more than AWS's 8 topic filters.",
    )
    CONNECT_RATE_EXCEEDED = _ReasonInfo(
        "CONNACK 0x97 (MQTT 5); close (MQTT 3.1.1)",
        "A second CONNECT with the same client ID within one second (AWS: 1 CONNECT per second "
        "per client ID).",
    )
    KEEP_ALIVE_TIMEOUT = _ReasonInfo(
        "close (MQTT 5: DISCONNECT 0x8D first); the will is sent",
        "No packet for 1.5 times the keep-alive (AWS's `MQTT_KEEP_ALIVE_TIMEOUT`).",
    )
    DUPLICATE_CLIENT_ID = _ReasonInfo(
        "close (MQTT 5: DISCONNECT 0x8E first); the will is sent",
        "Sent to the *old* connection when a new one authenticates with the same client ID.",
    )
    # -- HTTP (8443, 443) ---------------------------------------------------------------------
    HTTP_MALFORMED_REQUEST = _ReasonInfo(
        "HTTP 400, then close",
        "The bytes are not an HTTP/1.1 or 1.0 request (h11's reason in `details`).",
    )
    HTTP_HEADERS_TOO_LARGE = _ReasonInfo(
        "HTTP 431, then close", "The request line and headers are over 16 KiB."
    )
    HTTP_BODY_TOO_LARGE = _ReasonInfo(
        "HTTP 413 RequestEntityTooLargeException, then close",
        "The request body is over 128 KiB, AWS's payload limit (refused from Content-Length "
        "before it is read).",
    )
    HTTP_REQUEST_TIMEOUT = _ReasonInfo(
        "HTTP 408, then close",
        "A request was started but not finished within 10 seconds (a stalled client).",
    )
    HTTP_REQUEST_REFUSED = _ReasonInfo(
        "HTTP 4xx with AWS's REST-JSON error",
        "An API request AWS would refuse: no such path (404 ResourceNotFoundException), the "
        "wrong method (405 MethodNotAllowedException), a bad parameter (400 "
        "InvalidRequestException); `details` has the exception and message.",
    )
    # -- SigV4 (443 without a client certificate: HTTPS and MQTT over WebSocket) -------------
    # AWS IoT's data endpoint answers every authentication failure 403 ForbiddenException
    # "Forbidden"; the meanings are the verifier's own (aws_iot_mock.auth.sigv4.SigV4Reason).
    SIGV4_MISSING_AUTHENTICATION = _ReasonInfo(
        _SIGV4_SEES, SigV4Reason.SIGV4_MISSING_AUTHENTICATION.value
    )
    SIGV4_INCOMPLETE_SIGNATURE = _ReasonInfo(
        _SIGV4_SEES, SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE.value
    )
    SIGV4_MALFORMED_DATE = _ReasonInfo(_SIGV4_SEES, SigV4Reason.SIGV4_MALFORMED_DATE.value)
    SIGV4_INVALID_CREDENTIAL_SCOPE = _ReasonInfo(
        _SIGV4_SEES, SigV4Reason.SIGV4_INVALID_CREDENTIAL_SCOPE.value
    )
    SIGV4_CLOCK_SKEW = _ReasonInfo(_SIGV4_SEES, SigV4Reason.SIGV4_CLOCK_SKEW.value)
    SIGV4_REQUEST_EXPIRED = _ReasonInfo(_SIGV4_SEES, SigV4Reason.SIGV4_REQUEST_EXPIRED.value)
    SIGV4_UNKNOWN_ACCESS_KEY = _ReasonInfo(_SIGV4_SEES, SigV4Reason.SIGV4_UNKNOWN_ACCESS_KEY.value)
    SIGV4_INACTIVE_ACCESS_KEY = _ReasonInfo(
        _SIGV4_SEES, SigV4Reason.SIGV4_INACTIVE_ACCESS_KEY.value
    )
    SIGV4_INVALID_SESSION_TOKEN = _ReasonInfo(
        _SIGV4_SEES, SigV4Reason.SIGV4_INVALID_SESSION_TOKEN.value
    )
    SIGV4_EXPIRED_CREDENTIALS = _ReasonInfo(
        _SIGV4_SEES, SigV4Reason.SIGV4_EXPIRED_CREDENTIALS.value
    )
    SIGV4_PAYLOAD_HASH_MISMATCH = _ReasonInfo(
        _SIGV4_SEES, SigV4Reason.SIGV4_PAYLOAD_HASH_MISMATCH.value
    )
    SIGV4_SIGNATURE_MISMATCH = _ReasonInfo(_SIGV4_SEES, SigV4Reason.SIGV4_SIGNATURE_MISMATCH.value)
    SIGV4_UNSUPPORTED_SIGNED_HEADER = _ReasonInfo(
        _SIGV4_SEES, SigV4Reason.SIGV4_UNSUPPORTED_SIGNED_HEADER.value
    )
    # -- MQTT over WebSocket (wss://ENDPOINT/mqtt on 443) -------------------------------------
    WEBSOCKET_UPGRADE_INVALID = _ReasonInfo(
        "HTTP 400 (404 for a path other than `/mqtt`), no upgrade, then close",
        "The WebSocket upgrade request is not one AWS IoT serves: a path other than `/mqtt`, no "
        "`mqtt` in `Sec-WebSocket-Protocol`, or a handshake RFC 6455 refuses (no "
        "`Sec-WebSocket-Key`, a version other than 13); `details` says which.",
    )
    WEBSOCKET_PROTOCOL_ERROR = _ReasonInfo(
        "WebSocket Close (1002, 1003 or 1007), then close (MQTT 5: DISCONNECT 0x82 first)",
        "A frame WebSocket or MQTT over WebSocket forbids: a text frame (MQTT travels in binary "
        "frames, MQTT 3.1.1 and 5 section 6), an unmasked or malformed frame.",
    )
    WEBSOCKET_TTL_EXPIRATION = _ReasonInfo(
        "close (MQTT 5: DISCONNECT 0xA0 first); the will is sent",
        "A WebSocket connection outlived AWS's 24 hours (`limits.websocket_ttl`); it is closed "
        'when the client or the broker next sends, as AWS does ("WEBSOCKET_TTL_EXPIRATION").',
    )
    # -- control plane (the api door) ------------------------------------------------------
    CONTROL_PLANE_AUTHENTICATION_FAILED = _ReasonInfo(
        "HTTP 403 with AWS's SigV4 error (MissingAuthenticationTokenException, "
        "InvalidSignatureException, UnrecognizedClientException, ...)",
        "A control-plane (`iot` API) request was unsigned, or its SigV4 signature did not "
        "verify; `details` starts with the SigV4 reason (e.g. `SIGV4_SIGNATURE_MISMATCH`). Keys "
        "unknown to the local IAM are refused only with `control_plane.strict_sigv4: true`.",
    )
    # -- domain configurations ----------------------------------------------------------------
    DOMAIN_CONFIGURATION_DISABLED = _ReasonInfo(
        "TLS alert `unrecognized_name`",
        "The SNI names a domain configuration whose status is DISABLED "
        "(update-domain-configuration --domain-configuration-status); ENABLE it to connect.",
    )
    # -- delivery ---------------------------------------------------------------------------
    OUTBOUND_BUFFER_FULL = _ReasonInfo(
        "QoS 0 messages not delivered (QoS 1 ones wait)",
        "The client is not reading: its TCP buffer is full or more than "
        "`limits.outbound_buffer_bytes` wait for it. Logged once when it starts and once, with "
        "the count, when it ends.",
    )
    SESSION_QUEUE_FULL = _ReasonInfo(
        "messages not delivered",
        "The session's queue already holds `limits.session_queue_max` messages (QoS 1 waiting "
        "for the client, its in-flight window or its reconnect); newer ones are dropped. Logged "
        "once when it starts and once, with the count, when it ends.",
    )
    # -- the state files (sessions, retained messages, shadows) ---------------------------
    STORAGE_BUSY = _ReasonInfo(
        "MQTT 5: DISCONNECT 0x89 (Server busy), MQTT 3.1.1: close, no PUBACK; HTTPS: 503 "
        "ServiceUnavailableException; shadow: 500 on `/rejected`",
        "Another process holds the write lock of a state file (a backup, the `sqlite3` shell) "
        "and the broker would have to wait for it: a message that had to be stored (retained, "
        "or QoS 1 for a persistent session) is refused, not acknowledged. The broker waits at "
        "most 0.1 s, then fails writes at once for a second, so other clients never stall. "
        "Session bookkeeping is kept in memory and written once the lock is released.",
    )
    STORAGE_FULL = _ReasonInfo(
        "MQTT 5: DISCONNECT 0x97 (Quota exceeded), MQTT 3.1.1: close, no PUBACK; HTTPS: 500 "
        "InternalFailureException; shadow: 500 on `/rejected`",
        "The file system of the state directory is full: a message that had to be stored is "
        "refused, not acknowledged. Free space; the broker carries on by itself.",
    )
    STORAGE_FAILED = _ReasonInfo(
        "MQTT 5: DISCONNECT 0x80 (Unspecified error), MQTT 3.1.1: close, no PUBACK; HTTPS: 500 "
        "InternalFailureException; shadow: 500 on `/rejected`",
        "A state file could not be read or written for another reason (I/O error, read-only "
        "file system, damaged database; the details quote SQLite): what had to be stored is "
        "refused, not acknowledged.",
    )
    # -- the broker's own condition ---------------------------------------------------------
    LOG_RECORDS_DROPPED = _ReasonInfo(
        "nothing",
        "The log output (stdout, the log file) did not keep up, so records were dropped rather "
        "than stall the broker; written once it catches up, with the count (also on stderr).",
    )
    # -- rules engine ------------------------------------------------------------------------
    # AWS's rules-engine entries spell their reasons in CamelCase ("reason": "RuleNotFound",
    # cwl-format, "Rules engine log entries"); these members keep AWS's spelling.
    RuleNotFound = _ReasonInfo(
        "nothing (the publish was accepted)",
        "A Basic Ingest publish (`$aws/rules/<rule>/...`) names a rule that does not exist or is "
        "disabled; the message goes nowhere (`RuleNotFound` entry).",
    )
    RuleExecutionThrottled = _ReasonInfo(
        "nothing (the publish was accepted)",
        "A rule's queue already holds `rules.queue_max` messages waiting for its actions; newer "
        "ones are dropped (`RuleMessageThrottled` entry, once when it starts and once, with the "
        "count, when it ends).",
    )
    RuleActionFailed = _ReasonInfo(
        "nothing; the rule's `errorAction` runs",
        "A rule action could not be performed (the service answered an error, the HTTP endpoint "
        "failed, the action is not emulated); `details` has the error action's `errorMessage`.",
    )
    RuleRepublishLoop = _ReasonInfo(
        "nothing (the republished message still reaches subscribers)",
        "A message republished by rules `rules.republish_max_depth` times in a row (a rule that "
        "republishes to its own topic) is not evaluated by the rules again.",
    )

    @property
    def alert(self) -> str:
        """The TLS alert (or close) the refused client observes."""
        return self.value.alert

    @property
    def meaning(self) -> str:
        """One line for the README's reason catalogue."""
        return self.value.meaning


# Strings a client chose (SNI, topic, client ID, anything quoted in ``details``) are capped before
# they are logged: an unauthenticated client must not be able to make the broker write a 60 KB
# line. AWS's own limits keep legitimate values far below these (topics 256 bytes, client IDs
# 128 bytes; a policy document, the longest thing a ``details`` quotes, 2048 characters).
CLIENT_TEXT_MAX = 512
DETAILS_MAX = 4096


def capped(text: str, limit: int) -> str:
    """Return ``text``, cut to ``limit`` characters with a note saying so when it is longer."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut: {len(text) - limit} more characters]"


def format_timestamp(moment: _dt.datetime) -> str:
    """Format ``moment`` as AWS's log examples do: ``YYYY-MM-DD HH:MM:SS.mmm`` in UTC."""
    utc = moment.astimezone(_dt.UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


# The last ``now_timestamp``: (epoch milliseconds, its text, epoch second, "YYYY-MM-DD HH:MM:SS.").
# At INFO every message makes two records, a dozen or more within one millisecond under load:
# the text is reused within a millisecond and the date formatted once a second.
_last_stamp: tuple[int, str, int, str] = (-1, "", -1, "")


def now_timestamp() -> str:
    """The current UTC time as ``format_timestamp`` writes it (the records' default stamp)."""
    millis = int(time.time() * 1000)
    last = _last_stamp
    return last[1] if millis == last[0] else _stamp_of(millis)


def _stamp_of(millis: int) -> str:
    """Format epoch milliseconds ``millis`` and remember them as the last stamp."""
    global _last_stamp  # noqa: PLW0603 - a one-entry cache; a tuple swap is atomic
    last = _last_stamp
    second, part = divmod(millis, 1000)
    prefix = (
        last[3] if second == last[2] else time.strftime("%Y-%m-%d %H:%M:%S.", time.gmtime(second))
    )
    text = f"{prefix}{part:03d}"
    _last_stamp = (millis, text, second, prefix)
    return text


# Trace IDs need to be unique, not secret: ``uuid.uuid4()`` reads the kernel's random source once
# per record (a system call that also hands the GIL to the log drain's thread). Here the first
# 20 hex digits are random once per process; the last 12 are made 4096 at a time (two per message
# at INFO: per ID, one list append and one string join): 9 digits from a block counter run
# through an odd multiplier modulo 2**36 (a bijection: distinct blocks give distinct digits, and
# consecutive blocks do not look consecutive), then each of the 4096 three-digit endings once, in
# an order fixed once per process. Version 4 and the RFC 4122 variant are set as
# ``uuid.uuid4()`` sets them (RFC 4122 section 4.4). ``itertools.count``, ``list.pop`` and
# ``list.extend`` are atomic under the GIL: two threads refilling at once add distinct IDs.


def _random_bits(bits: int) -> int:
    """``bits`` random bits from the OS, as ``random.SystemRandom().getrandbits(bits)``.

    os.urandom directly: the ``random`` module is not imported for it (it costs a serve start
    several milliseconds before the first handshake).
    """
    size = (bits + 7) // 8
    return int.from_bytes(os.urandom(size)) >> (size * 8 - bits)


def _trace_prefix() -> str:
    """The random first four groups of this process's trace IDs, with version and variant."""
    d = f"{_random_bits(80):020x}"
    return f"{d[:8]}-{d[8:12]}-4{d[13:16]}-{'89ab'[int(d[16], 16) & 3]}{d[17:20]}-"


def _new_trace_endings() -> list[str]:
    # Each of the 4096 endings once, in an order fixed per process: an odd multiplier and a
    # random offset modulo 4096 (a bijection, like the blocks'), without importing ``random``.
    # hex() of 0x1000 + n, less its "0x1": n's three digits, in half the time of a format spec.
    offset = _random_bits(12)
    return [hex(0x1000 | ((index * 0x9E5 + offset) & 0xFFF))[3:] for index in range(4096)]


_TRACE_PREFIX = _trace_prefix()
# Built by the first refill_trace_suffixes, not at import: a few milliseconds that serve's
# start-up (which logs no trace ID before its first handshake) does not pay.
_TRACE_ENDINGS: list[str] = []
_trace_blocks = itertools.count(_random_bits(36))
_TRACE_MULTIPLIER = 0x9E3779B97  # odd: invertible modulo 2**36
_TRACE_MASK = (1 << 36) - 1
# The last 12 digits of trace IDs not handed out yet (taken from the end).
TRACE_SUFFIXES: list[str] = []


def refill_trace_suffixes() -> str:
    """Add a block of 4096 to ``TRACE_SUFFIXES`` and take one (for ``LogSink.emit_success``)."""
    if not _TRACE_ENDINGS:
        _TRACE_ENDINGS.extend(_new_trace_endings())
    block = f"{(next(_trace_blocks) * _TRACE_MULTIPLIER) & _TRACE_MASK:09x}"
    TRACE_SUFFIXES.extend([block + ending for ending in _TRACE_ENDINGS])
    return TRACE_SUFFIXES.pop()


def _trace_suffix() -> str:
    """The last 12 digits of a fresh trace ID (after ``_TRACE_PREFIX``)."""
    try:
        return TRACE_SUFFIXES.pop()
    except IndexError:
        return refill_trace_suffixes()


def new_trace_id() -> str:
    """A fresh version-4 UUID in its canonical form, as AWS's ``traceId`` is; unique per process."""
    return _TRACE_PREFIX + _trace_suffix()


@dataclass(frozen=True, slots=True)
class ConnectionFacts:
    """What is known about a connection when a record is written.

    Attributes:
        account_id: the 12-digit account the broker pretends to be.
        source_ip: the peer's address.
        source_port: the peer's port.
        client_id: the MQTT client ID, once a CONNECT has been read.
        principal_id: the certificate ID once a certificate was presented, or the IAM identity
            of a SigV4 request.
        protocol: AWS's ``protocol`` attribute: ``MQTT`` (including MQTT over WebSocket) or
            ``HTTP``.
    """

    account_id: str
    source_ip: str
    source_port: int
    client_id: str | None = None
    principal_id: str | None = None
    protocol: str = "MQTT"


# The line a record is written as: compact JSON, non-ASCII characters as they are (UTF-8 files).
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def record_line(record: Mapping[str, object]) -> str:
    """The JSON line (with its newline) the log writes for ``record``.

    The same text as ``json.dumps(record, separators=(",", ":"), ensure_ascii=False)``; a
    ``LogRecord`` that still has its line answers without serialising again.
    """
    line = getattr(record, "line", None)
    return line if line is not None else _ENCODE(record) + "\n"


class LogRecord(dict[str, object]):
    """A record (a plain dict to its readers) that carries its JSON line.

    At INFO every message makes a ``Publish-In`` and a ``Publish-Out`` record: their line is
    assembled from parts serialised once per connection (see ``event_success``) instead of
    serialising the whole record each time. Changing the record forgets the line, so
    ``record_line`` always writes what the dict says.

    Attributes:
        line: the record's JSON line (with its newline), or None once the record was changed.
    """

    __slots__ = ("line",)
    line: str | None  # unset (read as None by ``record_line``) until a builder sets it

    def __setitem__(self, key: str, value: object) -> None:
        self.line = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.line = None
        super().__delitem__(key)

    def __ior__(self, other: Any) -> LogRecord:  # type: ignore[override,misc]
        self.line = None
        super().update(other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:
        """``dict.update``; forgets the line."""
        self.line = None
        super().update(*args, **kwargs)

    def pop(self, *args: Any) -> Any:
        """``dict.pop``; forgets the line."""
        self.line = None
        return super().pop(*args)

    def popitem(self) -> tuple[str, object]:
        """``dict.popitem``; forgets the line."""
        self.line = None
        return super().popitem()

    def setdefault(self, *args: Any) -> Any:
        """``dict.setdefault``; forgets the line."""
        self.line = None
        return super().setdefault(*args)

    def clear(self) -> None:
        """``dict.clear``; forgets the line."""
        self.line = None
        super().clear()


# (facts, event type) -> the facts, the record's first attributes (``timestamp`` and ``traceId``
# left empty, filled per record) and the JSON of those after ``traceId`` (without the braces),
# for ``event_success``. Keyed by the facts' identity (a connection keeps one ``ConnectionFacts``
# until it learns more about itself); the facts are kept in the value so the identity cannot be
# reused while cached. Bounded: emptied when full.
_SUCCESS_TEMPLATES: dict[tuple[int, str], tuple[ConnectionFacts, dict[str, object], str]] = {}
_SUCCESS_TEMPLATES_MAX = 4096
# topic -> (the topic as written, capped; ``,"topicName":<its JSON>``): a connection publishes
# and receives on a few topics, escaped once each. Bounded: emptied when full.
_TOPIC_PARTS: dict[str, tuple[str, str]] = {}
_TOPIC_JSON: dict[str, str] = {}  # the same JSON alone, for ``success_line``
_TOPIC_PARTS_MAX = 4096


def _success_template(
    facts: ConnectionFacts, event_type: EventType
) -> tuple[dict[str, object], str]:
    """The record's first attributes (``timestamp``, ``traceId`` empty) and the JSON after them."""
    cached = _SUCCESS_TEMPLATES.get((id(facts), event_type._value_))
    if cached is None or cached[0] is not facts:
        cached = _new_success_template(facts, event_type)
    return cached[1], cached[2]


def _new_success_template(
    facts: ConnectionFacts, event_type: EventType
) -> tuple[ConnectionFacts, dict[str, object], str]:
    full = _base_record(LogLevel.INFO, "Success", event_type, facts, None, "-")
    tail = {name: value for name, value in full.items() if name not in _HEAD}
    template: dict[str, object] = {"timestamp": "", "logLevel": "INFO", "traceId": "", **tail}
    if len(_SUCCESS_TEMPLATES) >= _SUCCESS_TEMPLATES_MAX:
        _SUCCESS_TEMPLATES.clear()
    cached = (facts, template, _ENCODE(tail)[1:-1])
    _SUCCESS_TEMPLATES[(id(facts), event_type._value_)] = cached
    return cached


def _topic_part(topic_name: str) -> tuple[str, str]:
    """The topic as written (capped) and ``,"topicName":<its JSON>``."""
    return _TOPIC_PARTS.get(topic_name) or _new_topic_part(topic_name)


def _new_topic_part(topic_name: str) -> tuple[str, str]:
    topic = capped(topic_name, CLIENT_TEXT_MAX)
    if len(_TOPIC_PARTS) >= _TOPIC_PARTS_MAX:
        _TOPIC_PARTS.clear()
        _TOPIC_JSON.clear()
    part = _TOPIC_PARTS[topic_name] = (topic, f',"topicName":{encode_basestring(topic)}')
    _TOPIC_JSON[topic_name] = part[1]
    return part


# The attributes every record starts with, different in each record.
_HEAD = ("timestamp", "logLevel", "traceId")


def _base_record(  # noqa: PLR0917 (private; every argument is a record field)
    level: LogLevel,
    status: str,
    event_type: EventType,
    facts: ConnectionFacts,
    now: _dt.datetime | None,
    trace_id: str | None,
) -> dict[str, object]:
    # ``_name_``/``_value_`` are the members' plain attributes (enum's documented sunder names):
    # ``.name``/``.value`` are descriptors, measurably slower on a per-message path.
    record: dict[str, object] = {
        "timestamp": now_timestamp() if now is None else format_timestamp(now),
        "logLevel": level._name_,
        "traceId": trace_id or new_trace_id(),
        "accountId": facts.account_id,
        "status": status,
        "eventType": event_type._value_,
        "protocol": facts.protocol,
    }
    # AWS omits attributes it does not know rather than writing nulls.
    if facts.client_id is not None:
        record["clientId"] = capped(facts.client_id, CLIENT_TEXT_MAX)
    if facts.principal_id is not None:
        record["principalId"] = capped(facts.principal_id, CLIENT_TEXT_MAX)
    record["sourceIp"] = facts.source_ip
    record["sourcePort"] = facts.source_port
    return record


def connect_failure(
    reason: Reason,
    details: str,
    facts: ConnectionFacts,
    *,
    now: _dt.datetime | None = None,
    trace_id: str | None = None,
) -> dict[str, object]:
    """Build the one ``Connect``/``Failure`` record written for a refused connection.

    Args:
        reason: why it was refused.
        details: a human sentence with the specifics (the SNI received, OpenSSL's reason, ...).
        facts: what is known about the connection.
        now: the time to stamp (tests inject it); defaults to the current UTC time.
        trace_id: defaults to a fresh UUID, as AWS's ``traceId`` is per request.

    Returns:
        A JSON-serialisable dict in the AWSIotLogsV2 shape, ``logLevel`` ``ERROR``.
    """
    record = _base_record(LogLevel.ERROR, "Failure", EventType.CONNECT, facts, now, trace_id)
    record["reason"] = reason.name
    record["details"] = capped(details, DETAILS_MAX)
    return record


def connect_success(
    facts: ConnectionFacts,
    *,
    details: str | None = None,
    now: _dt.datetime | None = None,
    trace_id: str | None = None,
) -> dict[str, object]:
    """Build a ``Connect``/``Success`` record (``logLevel`` ``INFO``), as in AWS's example.

    Written once per accepted MQTT CONNECT (with ``clientId``), as AWS writes one; ``details``
    says how the client came in (TLS version, suite, SNI, policy).
    """
    record = _base_record(LogLevel.INFO, "Success", EventType.CONNECT, facts, now, trace_id)
    if details is not None:
        record["details"] = capped(details, DETAILS_MAX)
    return record


def handshake_record(
    facts: ConnectionFacts,
    details: str,
    *,
    now: _dt.datetime | None = None,
    trace_id: str | None = None,
) -> dict[str, object]:
    """Build the ``DEBUG`` detail record of an accepted TLS handshake (``Connect``/``Success``).

    A DEBUG detail, so that at AWS's INFO level one accepted connection is one ``Connect`` line
    (the MQTT one, which carries the same handshake in its ``details``).
    """
    record = _base_record(LogLevel.DEBUG, "Success", EventType.CONNECT, facts, now, trace_id)
    record["details"] = capped(details, DETAILS_MAX)
    return record


def disconnect_record(
    facts: ConnectionFacts,
    reason: str,
    details: str,
    *,
    failure: bool,
    disconnect_reason: str | None = None,
    now: _dt.datetime | None = None,
    trace_id: str | None = None,
) -> dict[str, object]:
    """Build a ``Disconnect`` record, as in AWS's ``DUPLICATE_CLIENT_ID`` example.

    Args:
        facts: what is known about the connection.
        reason: an upper-case reason such as ``CLIENT_INITIATED_DISCONNECT`` or a ``Reason`` name.
        details: a human sentence.
        failure: True for ``status: Failure`` at ``ERROR``, False for ``Success`` at ``INFO``.
        disconnect_reason: AWS's lifecycle ``disconnectReason`` (``CLIENT_ERROR``,
            ``MQTT_KEEP_ALIVE_TIMEOUT``, ...), as AWS's 2022 example carries it; defaults to
            ``reason``.
        now: the time to stamp.
        trace_id: defaults to a fresh UUID.
    """
    level, status = (LogLevel.ERROR, "Failure") if failure else (LogLevel.INFO, "Success")
    record = _base_record(level, status, EventType.DISCONNECT, facts, now, trace_id)
    record["disconnectReason"] = disconnect_reason or reason
    record["reason"] = reason
    record["details"] = capped(details, DETAILS_MAX)
    return record


def event_success(
    event_type: EventType,
    facts: ConnectionFacts,
    *,
    topic_name: str | None = None,
    retain: bool = False,
    now: _dt.datetime | None = None,
    trace_id: str | None = None,
) -> LogRecord:
    """Build a ``Success`` record at ``INFO`` for a PUBLISH, delivery, SUBSCRIBE or UNSUBSCRIBE.

    ``retain`` adds ``"retain": "True"``, as AWS's ``Publish-In`` example carries it when the
    message was published with RETAIN (cwl-format, "Publish-In log entry").

    Returns:
        A ``LogRecord`` with its line (two per message at INFO: kept cheap, see ``LogRecord``).
    """
    template, tail_json = _success_template(facts, event_type)
    stamp = now_timestamp() if now is None else format_timestamp(now)
    trace = trace_id or new_trace_id()
    topic, topic_json = ("", "") if topic_name is None else _topic_part(topic_name)
    # One C-level dict build (``dict.__init__`` merges without calling ``LogRecord.update``):
    # the template's order, then topicName and retain appended, as ``json.dumps`` writes them.
    record = LogRecord(template, timestamp=stamp, traceId=trace)
    if topic_name is not None:
        dict.__setitem__(record, "topicName", topic)
    if retain:
        dict.__setitem__(record, "retain", "True")
    # Our trace IDs and timestamps are plain ASCII; a caller's trace ID is escaped.
    trace_json = encode_basestring(trace) if trace_id else f'"{trace}"'
    record.line = (
        f'{{"timestamp":"{stamp}","logLevel":"INFO","traceId":{trace_json},'
        f"{tail_json}{topic_json}{_RETAIN_JSON if retain else ''}}}\n"
    )
    return record


_RETAIN_JSON = ',"retain":"True"'


def success_line(
    event_type: EventType,
    facts: ConnectionFacts,
    topic_name: str | None,
    retain: bool,
    trace_id: str | None,
) -> str:
    """The JSON line of ``event_success(...)`` stamped now, without building the record.

    For a log that nobody reads as records (``LogSink.emit_success``): a ``Publish-In`` and a
    ``Publish-Out`` per message at INFO. Written out for speed: the line is three strings, the
    text up to our trace ID's prefix (reused within a millisecond), the trace ID's last twelve
    digits (from a pool filled in blocks) and the rest (made once per connection, event type and
    topic).
    """
    if retain or trace_id:
        return _success_line_with(event_type, facts, topic_name, retain, trace_id)
    # ``LogSink.emit_success`` inlines these three calls (two lines per message at INFO).
    cached = SUCCESS_TAILS.get((id(facts), event_type._value_, topic_name))
    if cached is None or cached[0] is not facts:
        cached = new_success_tail(facts, event_type, topic_name)
    return f"{_head_now()}{_trace_suffix()}{cached[1]}"


def _head_now() -> str:
    """``head_of`` the current millisecond, from ``LAST_HEAD`` within the same millisecond."""
    millis = time.time_ns() // 1_000_000
    last = LAST_HEAD[0]
    return last[1] if millis == last[0] else head_of(millis)


# (id(facts), event type, topic) -> (the facts, the line after the trace ID: its closing quote,
# the connection's attributes, the topic, the closing brace and newline), for ``success_line``.
# The facts are kept in the value so their identity cannot be reused while cached. Bounded:
# emptied when full.
SUCCESS_TAILS: dict[tuple[int, str, str | None], tuple[ConnectionFacts, str]] = {}


def new_success_tail(
    facts: ConnectionFacts, event_type: EventType, topic_name: str | None
) -> tuple[ConnectionFacts, str]:
    """Make, cache in ``SUCCESS_TAILS`` and return the facts and the line after the trace ID."""
    _, tail_json = _success_template(facts, event_type)
    topic_json = "" if topic_name is None else _topic_part(topic_name)[1]
    if len(SUCCESS_TAILS) >= _SUCCESS_TEMPLATES_MAX:
        SUCCESS_TAILS.clear()
    cached = (facts, f'",{tail_json}{topic_json}}}\n')
    SUCCESS_TAILS[(id(facts), event_type._value_, topic_name)] = cached
    return cached


def _success_line_with(
    event_type: EventType,
    facts: ConnectionFacts,
    topic_name: str | None,
    retain: bool,
    trace_id: str | None,
) -> str:
    """``success_line`` for a retained message or a caller's trace ID (HTTPS, services)."""
    _, tail_json = _success_template(facts, event_type)
    head = _head_now()
    # A caller's trace ID, escaped, takes the place of our prefix and its opening quote (its
    # closing quote comes below).
    if trace_id:
        head = f"{head[: -len(_TRACE_PREFIX) - 1]}{encode_basestring(trace_id)[:-1]}"
        trace = ""
    else:
        trace = _trace_suffix()
    topic_json = "" if topic_name is None else _topic_part(topic_name)[1]
    return f'{head}{trace}",{tail_json}{topic_json}{_RETAIN_JSON if retain else ""}}}\n'


# (epoch milliseconds, ``{"timestamp":"<then>","logLevel":"INFO","traceId":"<our prefix>``).
# One entry, replaced whole (atomic under the GIL).
LAST_HEAD: list[tuple[int, str]] = [(-1, "")]


def head_of(millis: int) -> str:
    """A success line's text up to its trace ID's last 12 digits, stamped ``millis``; cached."""
    last = _last_stamp
    stamp = last[1] if millis == last[0] else _stamp_of(millis)
    head = f'{{"timestamp":"{stamp}","logLevel":"INFO","traceId":"{_TRACE_PREFIX}'
    LAST_HEAD[0] = (millis, head)
    return head


SuccessLog = Callable[[EventType, ConnectionFacts, str | None, bool, str | None], None]
"""Logs ``event_success(event_type, facts, topic_name=, retain=, trace_id=)`` (positionally)."""


def success_logger(emit: Callable[[Mapping[str, object]], None]) -> SuccessLog:
    """A ``SuccessLog`` that hands ``event_success``'s record to ``emit``.

    The broker passes its sink's ``LogSink.emit_success`` instead, which writes the same line
    without building the record when no listener wants it.
    """

    def log_success(
        event_type: EventType,
        facts: ConnectionFacts,
        topic_name: str | None,
        retain: bool,
        trace_id: str | None,
    ) -> None:
        emit(
            event_success(
                event_type, facts, topic_name=topic_name, retain=retain, trace_id=trace_id
            )
        )

    return log_success


def shadow_record(
    event_type: EventType,
    facts: ConnectionFacts,
    *,
    thing_name: str,
    shadow_name: str | None,
    topic_name: str,
    failure: tuple[str, str] | None,
    now: _dt.datetime | None = None,
    trace_id: str | None = None,
) -> dict[str, object]:
    """Build a shadow record, as AWS's ``UpdateThingShadow`` example.

    ``deviceShadowName`` is the thing's name, as in AWS's example
    (``$aws/things/Jack/shadow/update`` -> ``"deviceShadowName":"Jack"``); a named shadow's name
    goes in ``shadowName``. ``failure`` is ``(error name, message)`` for a rejected request,
    which is written at ``ERROR`` with ``status: Failure``.
    """
    level, status = (LogLevel.ERROR, "Failure") if failure else (LogLevel.INFO, "Success")
    record = _base_record(level, status, event_type, facts, now, trace_id)
    record["deviceShadowName"] = thing_name
    if shadow_name is not None:
        record["shadowName"] = shadow_name
    record["topicName"] = capped(topic_name, CLIENT_TEXT_MAX)
    if failure is not None:
        record["reason"] = failure[0]
        record["details"] = capped(failure[1], DETAILS_MAX)
    return record


def service_record(
    event_type: EventType,
    facts: ConnectionFacts,
    *,
    attributes: Mapping[str, str],
    failure: tuple[str, str] | None,
    now: _dt.datetime | None = None,
    trace_id: str | None = None,
) -> dict[str, object]:
    """Build a Jobs or fleet-provisioning record: ``attributes`` in order, then the failure.

    ``attributes`` are the request's names (``thingName``, ``jobId``, ``topicName``,
    ``templateName``...); ``failure`` is ``(error code, message)`` for a rejected request,
    written at ``ERROR`` with ``status: Failure``, as shadow records are.
    """
    level, status = (LogLevel.ERROR, "Failure") if failure else (LogLevel.INFO, "Success")
    record = _base_record(level, status, event_type, facts, now, trace_id)
    record.update(attributes)
    if failure is not None:
        record["reason"], record["details"] = failure
    return record


def rule_record(
    event_type: EventType,
    *,
    account_id: str,
    trace_id: str,
    client_id: str | None,
    topic_name: str,
    rule_name: str,
    principal_id: str | None = None,
    rule_action: str | None = None,
    resources: Mapping[str, str] | None = None,
    failure: tuple[Reason, str] | None = None,
    level: LogLevel | None = None,
    now: _dt.datetime | None = None,
) -> dict[str, object]:
    """Build a rules-engine record, as AWS's ``RuleExecution`` and ``RuleNotFound`` examples.

    Rules-engine entries have no ``protocol``, ``sourceIp`` or ``sourcePort``; they carry
    ``clientId`` (``N/A`` when the message did not come from an MQTT client, as AWS writes it
    for ``FunctionExecution``), ``topicName``, ``ruleName``, ``ruleAction`` and ``resources``
    for an action, ``principalId``, and on failure ``reason`` and ``details``
    (https://docs.aws.amazon.com/iot/latest/developerguide/cwl-format.html#rule-engine-logs).

    Args:
        event_type: one of the rules-engine event types.
        account_id: the account.
        trace_id: the message's trace ID (the errorAction document's ``cloudwatchTraceId``).
        client_id: the publishing client ID, None for messages not sent over MQTT.
        topic_name: the message's topic.
        rule_name: the rule.
        principal_id: the publisher's principal, when known.
        rule_action: the action (``RepublishAction``, ``SqsAction``...).
        resources: what the action addressed (``{"RepublishTopic": "rules/republish"}``).
        failure: ``(reason, details)`` for a ``Failure`` at ``ERROR``.
        level: the level of a ``Success`` record (AWS: ``StartingRuleExecution`` is ``DEBUG``,
            the others ``INFO``).
        now: the time to stamp.
    """
    if failure is None:
        severity, status = (level or LogLevel.INFO), "Success"
    else:
        severity, status = LogLevel.ERROR, "Failure"
    record: dict[str, object] = {
        "timestamp": now_timestamp() if now is None else format_timestamp(now),
        "logLevel": severity.name,
        "traceId": trace_id,
        "accountId": account_id,
        "status": status,
        "eventType": event_type.value,
        "clientId": "N/A" if client_id is None else client_id,
        "topicName": topic_name,
        "ruleName": rule_name,
    }
    if rule_action is not None:
        record["ruleAction"] = rule_action
    if resources is not None:
        record["resources"] = dict(resources)
    if principal_id is not None:
        record["principalId"] = principal_id
    if failure is not None:
        record["reason"] = failure[0].name
        record["details"] = failure[1]
    return record


def event_failure(
    event_type: EventType,
    reason: Reason,
    details: str,
    facts: ConnectionFacts,
    *,
    topic_name: str | None = None,
    now: _dt.datetime | None = None,
    trace_id: str | None = None,
) -> dict[str, object]:
    """Build a ``Failure`` record for a refused PUBLISH or SUBSCRIBE (``logLevel`` ``ERROR``).

    ``topic_name`` is the topic or topic filter, as AWS's ``topicName`` attribute.
    """
    record = _base_record(LogLevel.ERROR, "Failure", event_type, facts, now, trace_id)
    if topic_name is not None:
        record["topicName"] = capped(topic_name, CLIENT_TEXT_MAX)
    record["reason"] = reason.name
    record["details"] = capped(details, DETAILS_MAX)
    return record


def broker_record(
    account_id: str,
    reason: Reason,
    details: str,
    *,
    level: LogLevel = LogLevel.ERROR,
    now: _dt.datetime | None = None,
) -> dict[str, object]:
    """Build a record of the broker's own condition (``eventType`` ``Broker``), no client's.

    Args:
        account_id: the account; omitted from the record when empty.
        reason: what happened (``STORAGE_FAILURE``, ``LOG_RECORDS_DROPPED``, ...).
        details: a human sentence with the specifics and what to do.
        level: ``ERROR`` (the default) or ``WARN``.
        now: the time to stamp.
    """
    record: dict[str, object] = {
        "timestamp": now_timestamp() if now is None else format_timestamp(now),
        "logLevel": level.name,
        "traceId": new_trace_id(),
    }
    if account_id:
        record["accountId"] = account_id
    record["status"] = "Failure"
    record["eventType"] = EventType.BROKER.value
    record["reason"] = reason.name
    record["details"] = capped(details, DETAILS_MAX)
    return record


def record_level(record: Mapping[str, object]) -> LogLevel:
    """Return the ``LogLevel`` named by a record's ``logLevel``."""
    return _LEVELS_BY_NAME[str(record["logLevel"])]


_LEVELS_BY_NAME: dict[str, LogLevel] = {level.name: level for level in LogLevel}


def storage_reason(fault: StorageFault) -> Reason:
    """The log reason of a storage failure (``STORAGE_BUSY``, ``_FULL``, ``_FAILED``)."""
    return {
        StorageFault.BUSY: Reason.STORAGE_BUSY,
        StorageFault.FULL: Reason.STORAGE_FULL,
        StorageFault.FAILED: Reason.STORAGE_FAILED,
    }[fault]


def reason_catalogue_markdown() -> str:
    """Render the reason catalogue as the Markdown table the README carries."""
    lines = ["| reason | what the client sees | meaning |", "|---|---|---|"]
    lines += [f"| `{r.name}` | {r.alert} | {r.meaning} |" for r in Reason]
    return "\n".join(lines)
