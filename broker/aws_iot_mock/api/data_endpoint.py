"""The HTTPS data endpoint: who is calling, then which API answers.

One door (8443, or 443 with ALPN ``x-amzn-http-ca`` or SigV4) serves the data plane's REST APIs
by path: ``/things/{thingName}/jobs...`` is ``iot-jobs-data``'s (``api.iot_jobs_data``), every
other path ``iot-data``'s. This module authenticates the caller of each request and hands it to
the API:

- X.509: the door already verified the client certificate against the registry; its IoT
  policies are read again for every request, so a certificate revoked or a policy detached
  while a keep-alive connection is open applies to the next request, as on MQTT.
- SigV4 (443 without a certificate): see ``aws_iot_mock.api.sigv4_caller``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from aws_iot_mock.api.iot_data import ApiCaller, IotDataApi
from aws_iot_mock.api.iot_jobs_data import IotJobsDataApi, is_jobs_data_path
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.core.device_core import DeviceCore
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.doors.http_door import HttpDoorHandler
from aws_iot_mock.doors.tls_door import ByteChannel
from aws_iot_mock.http.messages import HttpRequest, HttpResponse, error_response
from aws_iot_mock.logs.cloudwatch import ConnectionFacts, Reason, connect_failure

__all__ = ["DataEndpoint"]

Emit = Callable[[Mapping[str, object]], None]


class DataEndpoint:
    """The data plane's HTTPS APIs behind every HTTPS door.

    Args:
        core: the device core.
        iot_data: the iot-data API.
        emit: writes an AWSIotLogsV2 record.
        request_timeout: seconds an HTTP request may take to arrive whole.
    """

    def __init__(
        self,
        core: DeviceCore,
        iot_data: IotDataApi,
        *,
        emit: Emit,
        request_timeout: float,
        iot_jobs_data: IotJobsDataApi | None = None,
    ) -> None:
        self._request_timeout = request_timeout
        self._core = core
        self._iot_data = iot_data
        self._iot_jobs_data = iot_jobs_data
        self._emit = emit

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
        provider = self._core.permissions
        if provider is None:
            raise RuntimeError("the data endpoint needs a permissions provider")
        # HTTPS has no client ID ("HTTPS does not support a clientId value", http.html).
        permissions = provider.permissions_for(principal, "", frozenset())
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


def _is_jobs_data(request: HttpRequest) -> bool:
    """``/things/{thingName}/jobs...`` is iot-jobs-data's; every other path is iot-data's."""
    try:
        return is_jobs_data_path(request.path_segments())
    except UnicodeDecodeError:
        return False
