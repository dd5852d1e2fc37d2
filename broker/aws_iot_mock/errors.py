"""Exceptions raised for bad input and bad configuration.

Refusals of devices are *values* (see ``aws_iot_mock.logs.cloudwatch.Reason``), never exceptions;
exceptions are for a caller's mistakes. Only ``aws_iot_mock.cli`` turns them into exit codes.
"""


class BrokerError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(BrokerError):
    """The configuration file or a command-line override is invalid.

    The message always names the offending key and the file it came from.
    """


class CertificateError(BrokerError):
    """A certificate, key or CSR is malformed, or a certificate operation is not allowed."""


class ResourceNotFoundError(BrokerError):
    """A registry lookup named something that does not exist (AWS's ResourceNotFoundException)."""


class ListenerBindError(BrokerError):
    """A listener could not bind; the message names the door, the address, why and the fix."""
