"""The connection plumbing every part of the registry shares: transactions and ARNs.

``CertificateRegistry`` is assembled from mixins (things, policies, CA certificates) that all
subclass ``Store``; ``Store`` only declares the attributes ``CertificateRegistry.__init__`` sets.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator

from aws_iot_mock.errors import ResourceNotFoundError
from aws_iot_mock.registry.errors import InvalidRequestError

# arn:<partition>:iot:<region>:<account>:<resource type>/<resource>
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html, "Resource
# types defined by AWS IoT").
_IOT_ARN = re.compile(r"arn:aws[a-z-]*:iot:([^:]*):([^:]*):([a-z]+)/(.+)")
_CERTIFICATE_ID = re.compile(r"[0-9a-fA-F]{64}")
# An Amazon Cognito identity ID, "<region>:<uuid>", which AttachPolicy also accepts as a target.
_COGNITO_ID = re.compile(r"[a-z]{2}(-[a-z]+)+-\d:[0-9a-fA-F-]{36}")


class Store:
    """The shared state and transaction helpers of ``CertificateRegistry``."""

    _connection: sqlite3.Connection
    _lock: threading.Lock
    _region: str
    _account_id: str

    def _arn(self, resource: str) -> str:
        """Return ``arn:aws:iot:<region>:<account>:<resource>``."""
        return f"arn:aws:iot:{self._region}:{self._account_id}:{resource}"

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction (BEGIN IMMEDIATE ... COMMIT).

        If the block changed any row, the registry generation is bumped in the same transaction,
        so another process polling ``generation()`` sees the change no earlier than the data.
        An exception rolls everything back.
        """
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                before = connection.total_changes
                yield connection
                if connection.total_changes != before:
                    connection.execute(
                        "UPDATE registry_generation SET generation = generation + 1 WHERE id = 1"
                    )
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one read transaction: every SELECT sees the same snapshot."""
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                if connection.in_transaction:
                    connection.execute("COMMIT")

    def _certificate_id_for(self, connection: sqlite3.Connection, principal: str) -> str:
        """Resolve a principal / policy target ARN to a registered certificate's ID.

        AttachThingPrincipal's ``principal`` and AttachPolicy's ``target`` may be a certificate
        ARN, a thing group ARN (AttachPolicy only) or an Amazon Cognito identity ID
        (https://docs.aws.amazon.com/iot/latest/apireference/API_AttachPolicy.html). Only
        certificates are supported here.

        Raises:
            InvalidRequestError: not a certificate ARN (thing groups and Cognito identities are
                named as unsupported).
            ResourceNotFoundError: a certificate ARN of another account or region, or of a
                certificate that is not registered.
        """
        if not isinstance(principal, str) or not principal:
            raise InvalidRequestError("the principal must be a certificate ARN")
        match = _IOT_ARN.fullmatch(principal)
        if match is None:
            if _COGNITO_ID.fullmatch(principal):
                raise InvalidRequestError(
                    f"{principal!r} is an Amazon Cognito identity; aws-iot-mock supports only "
                    "certificate ARNs as principals"
                )
            raise InvalidRequestError(
                f"{principal!r} is not a certificate ARN "
                "(arn:aws:iot:<region>:<account>:cert/<certificateId>)"
            )
        region, account, kind, resource = match.groups()
        if kind == "thinggroup":
            raise InvalidRequestError(
                f"{principal!r} is a thing group; a thing's principal must be a certificate ARN"
            )
        if kind != "cert" or not _CERTIFICATE_ID.fullmatch(resource):
            raise InvalidRequestError(
                f"{principal!r} is not a certificate ARN "
                "(arn:aws:iot:<region>:<account>:cert/<certificateId>)"
            )
        certificate_id = resource.lower()
        row = connection.execute(
            "SELECT certificate_id FROM certificates WHERE certificate_id = ?",
            (certificate_id,),
        ).fetchone()
        if row is None or (region, account) != (self._region, self._account_id):
            raise ResourceNotFoundError(
                f"ResourceNotFoundException: The certificate given in the principal "
                f"({principal}) was not found"
            )
        return certificate_id

    def _policy_target(self, connection: sqlite3.Connection, target: str) -> tuple[str, str]:
        """Resolve AttachPolicy's ``target``: a certificate ARN or a static thing group ARN.

        "target: The identity to which the policy is attached. For example, a thing group or a
        certificate." (https://docs.aws.amazon.com/iot/latest/apireference/API_AttachPolicy.html)

        Returns:
            ``("cert", certificate ID)`` or ``("thinggroup", group name)``.

        Raises:
            InvalidRequestError: neither (Amazon Cognito identities are refused as unsupported).
            ResourceNotFoundError: no such certificate or thing group in this account and region.
        """
        match = _IOT_ARN.fullmatch(target) if isinstance(target, str) else None
        if match is not None and match.group(3) == "thinggroup":
            region, account, _, name = match.groups()
            row = connection.execute(
                "SELECT thing_group_name FROM thing_groups WHERE thing_group_name = ?", (name,)
            ).fetchone()
            if row is None or (region, account) != (self._region, self._account_id):
                raise ResourceNotFoundError(
                    f"ResourceNotFoundException: The thing group given in the target ({target}) "
                    "was not found"
                )
            return "thinggroup", name
        return "cert", self._certificate_id_for(connection, target)
