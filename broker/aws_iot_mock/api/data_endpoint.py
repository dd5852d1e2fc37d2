"""The HTTPS data endpoint: who is calling, then which API answers.

One door (8443, or 443 with ALPN ``x-amzn-http-ca`` or SigV4) serves the data plane's REST APIs
by path: ``/things/{thingName}/jobs...`` is ``iot-jobs-data``'s (``api.iot_jobs_data``), every
other path ``iot-data``'s. This module authenticates the caller of each request and hands it to
the API:

- X.509: the door already verified the client certificate against the registry; its IoT
  policies are read again for every request, so a certificate revoked or a policy detached
  while a keep-alive connection is open applies to the next request, as on MQTT.
- SigV4 (443 without a certificate): each request is authenticated by its signature against
  the local IAM (``aws_iot_mock.api.sigv4_caller``), and its IAM user's policies authorize it,
  evaluated as IoT policies are. The same door takes the MQTT over WebSocket upgrade
  (``GET /mqtt``, ``Upgrade: websocket``): checked (``aws_iot_mock.http.websocket_upgrade``),
  authenticated the same way, then answered ``101`` and handed to
  ``aws_iot_mock.doors.websocket_door``. A refused upgrade is answered as AWS answers it (403
  ForbiddenException, with the headers AWS sends) and closed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Final

from aws_iot_mock.api.iot_data import ApiCaller, IotDataApi
from aws_iot_mock.api.iot_jobs_data import IotJobsDataApi, is_jobs_data_path
from aws_iot_mock.api.sigv4_caller import CallerRefused, SigV4Authenticator
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.core.device_core import DeviceCore
from aws_iot_mock.core.permissions import Permissions
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.doors.http_door import HttpDoorHandler, SwitchProtocols
from aws_iot_mock.doors.tls_door import ByteChannel, DoorHandler
from aws_iot_mock.doors.websocket_door import WebSocketDoor
from aws_iot_mock.http.messages import HttpRequest, HttpResponse, error_response
from aws_iot_mock.http.websocket_upgrade import UpgradeRefused, is_websocket_upgrade, prepare
from aws_iot_mock.logs.cloudwatch import ConnectionFacts, Reason, connect_failure

__all__ = ["DataEndpoint"]

Emit = Callable[[Mapping[str, object]], None]

# The headers AWS IoT sent with a refused WebSocket upgrade (a 403 captured from the real
# service, aws-mqtt-websockets issue 54), besides x-amzn-ErrorType and x-amzn-RequestId.
_UPGRADE_REFUSAL_HEADERS: Final = (
    ("access-control-allow-origin", "*"),
    ("access-control-expose-headers", "x-amzn-ErrorMessage"),
    ("access-control-expose-headers", "x-amzn-RequestId"),
    ("access-control-expose-headers", "x-amzn-ErrorType"),
    ("access-control-expose-headers", "Date"),
    ("Connection", "close"),
)


class DataEndpoint:
    """The data plane's HTTPS APIs behind every HTTPS door.

    Args:
        core: the device core.
        iot_data: the iot-data API.
        emit: writes an AWSIotLogsV2 record.
        request_timeout: seconds an HTTP request may take to arrive whole.
        sigv4: authenticates signed requests (the SigV4 route); None when it is not served.
        websocket: builds MQTT over WebSocket handlers; None when WebSocket is not served.
    """

    def __init__(
        self,
        core: DeviceCore,
        iot_data: IotDataApi,
        *,
        emit: Emit,
        request_timeout: float,
        sigv4: SigV4Authenticator | None = None,
        websocket: WebSocketDoor | None = None,
        iot_jobs_data: IotJobsDataApi | None = None,
    ) -> None:
        self._request_timeout = request_timeout
        self._core = core
        self._iot_data = iot_data
        self._iot_jobs_data = iot_jobs_data
        self._emit = emit
        self._sigv4 = sigv4
        self._websocket = websocket

    def x509_handler(self, channel: ByteChannel) -> HttpDoorHandler:
        """The handler of an HTTPS connection authenticated with a client certificate."""
        principal = channel.identity.principal
        if principal is None:
            raise ValueError("an X.509 HTTPS route without a certificate")
        facts = dataclasses.replace(channel.facts, protocol="HTTP")

        async def respond(request: HttpRequest, request_id: str) -> HttpResponse:
            return await self.serve_x509(request, request_id, principal, facts)

        return HttpDoorHandler(
            channel, respond, emit=self._emit, facts=facts, request_timeout=self._request_timeout
        )

    async def serve_x509(
        self, request: HttpRequest, request_id: str, principal: Principal, facts: ConnectionFacts
    ) -> HttpResponse:
        """Answer one request from a certificate holder."""
        permissions = self._permissions(principal)
        if permissions.status != "ACTIVE":
            self._emit(
                connect_failure(
                    Reason.CERTIFICATE_NOT_ACTIVE,
                    f"Certificate {principal.principal_id} is now "
                    f"{permissions.status or 'not registered'}",
                    facts,
                )
            )
            return error_response(AwsApiError("ForbiddenException", "Forbidden"), request_id)
        caller = ApiCaller(principal, permissions, facts)
        if self._iot_jobs_data is not None and _is_jobs_data(request):
            return await self._iot_jobs_data.handle(request, caller, request_id)
        return await self._iot_data.handle(request, caller, request_id)

    def sigv4_handler(self, channel: ByteChannel) -> HttpDoorHandler:
        """The handler of a connection on 443 without a client certificate (``Route.SIGV4``).

        Each request is authenticated by its own signature; ``GET /mqtt`` with ``Upgrade:
        websocket`` switches the connection to MQTT over WebSocket.
        """
        facts = dataclasses.replace(channel.facts, protocol="HTTP")

        async def respond(request: HttpRequest, request_id: str) -> HttpResponse | SwitchProtocols:
            if is_websocket_upgrade(request):
                return self.upgrade_websocket(channel, request, request_id)
            return await self.serve_sigv4(request, request_id, facts)

        return HttpDoorHandler(
            channel, respond, emit=self._emit, facts=facts, request_timeout=self._request_timeout
        )

    async def serve_sigv4(
        self, request: HttpRequest, request_id: str, facts: ConnectionFacts
    ) -> HttpResponse:
        """Answer one SigV4-signed iot-data request."""
        caller = self._authenticator().authenticate(request)
        if isinstance(caller, CallerRefused):
            self._emit(connect_failure(caller.reason, caller.details, facts))
            error = caller.error
            return error_response(
                AwsApiError(error.code, error.message, status=error.status), request_id
            )
        principal = caller.principal
        facts = dataclasses.replace(facts, principal_id=principal.principal_id)
        return await self._iot_data.handle(
            request, ApiCaller(principal, self._permissions(principal), facts), request_id
        )

    def upgrade_websocket(
        self, channel: ByteChannel, request: HttpRequest, request_id: str
    ) -> HttpResponse | SwitchProtocols:
        """Answer a WebSocket upgrade: ``101`` and MQTT, or AWS's refusal (then close)."""
        facts = dataclasses.replace(channel.facts, protocol="MQTT")
        websockets = self._websocket
        if websockets is None:
            raise RuntimeError("MQTT over WebSocket is not served by this data endpoint")
        pending = prepare(request)
        if isinstance(pending, UpgradeRefused):
            self._emit(connect_failure(Reason.WEBSOCKET_UPGRADE_INVALID, pending.details, facts))
            code = (
                "ResourceNotFoundException" if pending.status == 404 else "InvalidRequestException"
            )
            return self._upgrade_refusal(
                AwsApiError(code, pending.details, status=pending.status), request_id
            )
        caller = self._authenticator().authenticate(request)
        if isinstance(caller, CallerRefused):
            self._emit(connect_failure(caller.reason, caller.details, facts))
            error = caller.error
            return self._upgrade_refusal(
                AwsApiError(error.code, error.message, status=error.status), request_id
            )
        response, websocket = pending.accept()
        principal = caller.principal
        facts = dataclasses.replace(facts, principal_id=principal.principal_id)
        details = f"{channel.identity.tls_details}; WebSocket upgrade, {caller.details}"

        def handler(tls: ByteChannel, trailing: bytes) -> DoorHandler:
            return websockets.handler(tls, websocket, principal, facts, details, trailing)

        return SwitchProtocols(response, handler)

    # -- helpers ---------------------------------------------------------------------------

    def _authenticator(self) -> SigV4Authenticator:
        if self._sigv4 is None:
            raise RuntimeError("SigV4 is not served by this data endpoint")
        return self._sigv4

    def _permissions(self, principal: Principal) -> Permissions:
        provider = self._core.permissions
        if provider is None:
            raise RuntimeError("the data endpoint needs a permissions provider")
        # HTTPS has no client ID ("HTTPS does not support a clientId value", http.html).
        return provider.permissions_for(principal, "", frozenset())

    @staticmethod
    def _upgrade_refusal(error: AwsApiError, request_id: str) -> HttpResponse:
        """AWS's answer to a refused upgrade; ``ForbiddenException:`` as AWS writes it."""
        response = error_response(error, request_id)
        headers = tuple(
            (name, f"{value}:") if name == "x-amzn-ErrorType" else (name, value)
            for name, value in response.headers
        )
        return dataclasses.replace(response, headers=headers + _UPGRADE_REFUSAL_HEADERS)


def _is_jobs_data(request: HttpRequest) -> bool:
    """``/things/{thingName}/jobs...`` is iot-jobs-data's; every other path is iot-data's."""
    try:
        return is_jobs_data_path(request.path_segments())
    except UnicodeDecodeError:
        return False
