"""Every accept/refuse rule of the TLS front door lives in this file.

The rules, in the order the front door applies them:

1. SNI (``check_sni``): a ``host_name`` must equal the endpoint or a configured domain name
   (DNS names compare case-insensitively, RFC 4343); a missing one is refused unless configured.
2. OpenSSL's handshake with the policy's context: versions, suites, client certificate present,
   chaining to the root CA, within its validity (``classify_handshake_error`` names the reason).
3. The certificate registry (``check_registration``): registered, and ``ACTIVE``.

Pure: values in, values out. The asyncio shell (``aws_iot_mock.doors.tls_door``) applies
them.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Set
from dataclasses import dataclass
from types import MappingProxyType

from aws_iot_mock.logs.cloudwatch import CLIENT_TEXT_MAX, Reason, capped

__all__ = [
    "Refusal",
    "check_registration",
    "check_sni",
    "classify_handshake_error",
    "plaintext_alert_record",
]

# TLS alert descriptions (RFC 5246 section 7.2, RFC 8446 section 6.2).
ALERT_ACCESS_DENIED = 49
ALERT_CERTIFICATE_REVOKED = 44
ALERT_CERTIFICATE_UNKNOWN = 46

# OpenSSL X509_V_ERR_* codes we name (include/openssl/x509_vfy.h).
_X509_V_ERR_CERT_NOT_YET_VALID = 9
_X509_V_ERR_CERT_HAS_EXPIRED = 10


@dataclass(frozen=True)
class Refusal:
    """A refused connection: the reason and a human sentence with the specifics."""

    reason: Reason
    details: str


def check_sni(
    server_name: str | None,
    accepted: Set[str],
    *,
    require_sni: bool,
    disabled: Mapping[str, str] = MappingProxyType({}),
) -> Refusal | None:
    """Decide on the SNI ``host_name`` a client sent.

    Args:
        server_name: the ``host_name`` from the ClientHello, or None when absent.
        accepted: the lower-case endpoint and domain names.
        require_sni: whether a missing SNI is refused (AWS's MQTT page: it is).
        disabled: lower-case domain name -> the name of its DISABLED domain configuration;
            such a name is refused with its own reason (it is not in ``accepted``).

    Returns:
        None to go on, or the refusal.
    """
    if server_name is not None and server_name.lower() in disabled:
        return Refusal(
            Reason.DOMAIN_CONFIGURATION_DISABLED,
            f"SNI host_name '{capped(server_name, CLIENT_TEXT_MAX)}' names domain configuration "
            f"{disabled[server_name.lower()]!r}, which is DISABLED",
        )
    if server_name is None:
        if require_sni:
            return Refusal(
                Reason.SNI_MISSING,
                "The client sent no SNI host_name; AWS IoT refuses connections without SNI. "
                f"Send one of: {', '.join(sorted(accepted))}",
            )
        return None
    if server_name.lower() not in accepted:
        return Refusal(
            Reason.SNI_MISMATCH,
            f"SNI host_name '{capped(server_name, CLIENT_TEXT_MAX)}' is not the endpoint or a "
            "configured domain name; "
            f"expected one of: {', '.join(sorted(accepted))}",
        )
    return None


def sni_alert(server_name: str | None, accepted: Set[str], *, require_sni: bool) -> int | None:
    """OpenSSL servername-callback form of ``check_sni``: None, or the alert to send."""
    if check_sni(server_name, accepted, require_sni=require_sni) is None:
        return None
    return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME


def classify_handshake_error(exc: ssl.SSLError) -> Refusal:
    """Name the reason for an OpenSSL error raised by the server side of a handshake.

    ``exc.reason`` is OpenSSL's reason code (e.g. ``NO_SHARED_CIPHER``); certificate
    verification failures carry OpenSSL's verify code and message too.
    """
    # getattr: OpenSSL always sets these, but an SSLError built in Python has none of them.
    openssl_reason = getattr(exc, "reason", None) or type(exc).__name__
    openssl_text = f"OpenSSL: {openssl_reason}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        message = getattr(exc, "verify_message", None) or "certificate verify failed"
        if code in (_X509_V_ERR_CERT_HAS_EXPIRED, _X509_V_ERR_CERT_NOT_YET_VALID):
            return Refusal(
                Reason.CLIENT_CERTIFICATE_EXPIRED,
                f"The client certificate is not within its validity period ({message})",
            )
        return Refusal(
            Reason.CLIENT_CERTIFICATE_UNTRUSTED,
            f"The client certificate does not chain to the root CA ({message}, "
            f"X509 verify code {code})",
        )
    table: dict[str, tuple[Reason, str]] = {
        "NO_SHARED_CIPHER": (
            Reason.NO_SHARED_CIPHER,
            "None of the client's cipher suites is allowed by the TLS security policy",
        ),
        "UNSUPPORTED_PROTOCOL": (
            Reason.TLS_VERSION_NOT_SUPPORTED,
            "The client offered no TLS version that the TLS security policy allows",
        ),
        "VERSION_TOO_LOW": (
            Reason.TLS_VERSION_NOT_SUPPORTED,
            "The client's TLS version is below the TLS security policy's minimum",
        ),
        "PEER_DID_NOT_RETURN_A_CERTIFICATE": (
            Reason.CLIENT_CERTIFICATE_MISSING,
            "The client sent no certificate; mutual TLS is required",
        ),
        "TLSV13_ALERT_CERTIFICATE_REQUIRED": (
            Reason.CLIENT_CERTIFICATE_MISSING,
            "The client sent no certificate; mutual TLS is required",
        ),
    }
    if openssl_reason in _CLIENT_REJECTED_SERVER_CERTIFICATE:
        alert = _CLIENT_REJECTED_SERVER_CERTIFICATE[openssl_reason]
        return Refusal(
            Reason.SERVER_CERTIFICATE_REJECTED,
            f"The client rejected the server certificate (it sent alert {alert}): make the "
            "device trust the broker's root CA (root-ca.pem in the certs directory) and connect "
            "to a name the server certificate carries (the endpoint, a domain name, localhost, "
            f"127.0.0.1 or ::1) ({openssl_text})",
        )
    if openssl_reason in table:
        reason, sentence = table[openssl_reason]
        return Refusal(reason, f"{sentence} ({openssl_text})")
    return Refusal(Reason.HANDSHAKE_FAILED, f"TLS handshake failed ({openssl_text}: {exc})")


# OpenSSL's server-side reasons for an alert *received from the client* about our certificate.
_CLIENT_REJECTED_SERVER_CERTIFICATE = {
    "TLSV1_ALERT_UNKNOWN_CA": "unknown_ca",
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad_certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate_unknown",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "unsupported_certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "certificate_expired",
}


@dataclass(frozen=True)
class RegistryVerdict:
    """The registry's answer for a presented certificate: the refusal and the alert to send."""

    refusal: Refusal
    alert: int


def check_registration(certificate_id: str, status: str | None) -> RegistryVerdict | None:
    """Decide on a certificate that passed OpenSSL's chain check.

    Args:
        certificate_id: the certificate ID (lowercase hex SHA-256 of the DER).
        status: its registry status (``ACTIVE``, ``INACTIVE``, ``REVOKED``, ...), or None when it
            is not registered.

    Returns:
        None when the certificate may connect, else the refusal with the alert to send.
    """
    if status is None:
        return RegistryVerdict(
            Refusal(
                Reason.CERTIFICATE_NOT_REGISTERED,
                f"Certificate {certificate_id} chains to the root CA but is not registered; "
                "register it (create-keys-and-certificate, create-certificate-from-csr) first",
            ),
            ALERT_CERTIFICATE_UNKNOWN,
        )
    if status != "ACTIVE":
        return RegistryVerdict(
            Refusal(
                Reason.CERTIFICATE_NOT_ACTIVE,
                f"Certificate {certificate_id} is {status}; only ACTIVE certificates may connect "
                f"(update-certificate --certificate-id {certificate_id} --new-status ACTIVE)",
            ),
            ALERT_CERTIFICATE_REVOKED if status == "REVOKED" else ALERT_ACCESS_DENIED,
        )
    return None


def plaintext_alert_record(description: int) -> bytes:
    """A fatal TLS 1.2 alert record, unencrypted.

    Used to refuse a certificate after OpenSSL finished the server side of a full TLS 1.2
    handshake: the server's ChangeCipherSpec and Finished are discarded unsent, so the client's
    read state is still the null cipher and it reads this record as an ordinary alert
    (RFC 5246 sections 6.2.1 and 7.2). Never valid once the server's keys are active.
    """
    return bytes((0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description))
