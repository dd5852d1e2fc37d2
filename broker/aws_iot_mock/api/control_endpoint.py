"""The control-plane API on the ``api`` door: HTTP in, one ``IotControlPlane`` call, HTTP out.

Each request is authenticated (``aws_iot_mock.api.control_plane_auth``), matched to its
operation by the route table generated from botocore's ``iot`` model
(``aws_iot_mock.api.iot_routes``), and answered by the service layer
(``aws_iot_mock.api.iot_control``), which the CLI calls too. Errors are AWS's REST-JSON errors
(``x-amzn-ErrorType`` and ``{"message"}``), so botocore raises the modelled exception.

Operations run one at a time on a worker thread: they write SQLite and some generate RSA keys
(CreateKeysAndCertificate), which must not stall the event loop that serves the devices.

The web console (``aws_iot_mock.console``) is served on the same door under ``/console``, with
its own access rule (a token, or loopback only) instead of SigV4, and so is the health endpoint
(``aws_iot_mock.api.health``, ``GET /_aws-iot-mock/health``), which needs no signature at all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aws_iot_mock.api.control_plane_auth import ControlPlaneAuthenticator
from aws_iot_mock.api.health import health_response, is_health_path
from aws_iot_mock.api.iot_control import IotControlPlane
from aws_iot_mock.api.iot_routes import IOT_ROUTE_TABLE
from aws_iot_mock.api.rest_json import RestJsonRouter, parse_route_table, render_result
from aws_iot_mock.auth.sigv4 import Refused
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.console.endpoint import is_console_path
from aws_iot_mock.doors.http_door import HttpDoorHandler
from aws_iot_mock.doors.tls_door import ByteChannel
from aws_iot_mock.http.messages import HttpRequest, HttpResponse, error_response
from aws_iot_mock.logs.cloudwatch import ConnectionFacts, Reason, connect_failure

__all__ = ["IOT_ROUTER", "ControlEndpoint"]

logger = logging.getLogger("aws_iot_mock.api")

Emit = Callable[[Mapping[str, object]], None]
# Serves the console's requests: (request, connection facts, over TLS?) -> response.
ConsoleServe = Callable[..., Awaitable[HttpResponse]]

# Every operation of the iot model, by method and path.
IOT_ROUTER = RestJsonRouter(parse_route_table(IOT_ROUTE_TABLE))
# Unknown access keys are logged once each; the set is bounded.
_LOGGED_KEYS_MAX = 1024


class ControlEndpoint:
    """The ``iot`` API behind the api door.

    Args:
        service: the control-plane operations.
        authenticator: checks each request's SigV4 signature.
        emit: writes an AWSIotLogsV2 record (authentication failures).
        request_timeout: seconds an HTTP request may take to arrive whole.
    """

    def __init__(
        self,
        service: IotControlPlane,
        authenticator: ControlPlaneAuthenticator,
        *,
        emit: Emit,
        request_timeout: float,
    ) -> None:
        self._service = service
        self._authenticator = authenticator
        self._emit = emit
        self._request_timeout = request_timeout
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="aws-iot-mock-api"
        )
        self._logged_keys: set[str] = set()
        # The web console's handler (``ConsoleEndpoint.serve``), when it is served.
        self.console: ConsoleServe | None = None
        # The health endpoint's document (``aws_iot_mock.api.health.health_document``), built
        # at each request; None serves no health endpoint.
        self.health: Callable[[], Mapping[str, object]] | None = None

    def handler(self, channel: ByteChannel) -> HttpDoorHandler:
        """The handler of one api-door connection (HTTPS, or plain HTTP on loopback)."""
        facts = dataclasses.replace(channel.facts, protocol="HTTP")
        secure = bool(channel.identity.tls_version)

        async def respond(request: HttpRequest, request_id: str) -> HttpResponse:
            health = self.health
            if health is not None and is_health_path(request.path):
                # Before authentication: a probe carries no signature and is never logged.
                return health_response(request, health())
            console = self.console
            if console is not None and is_console_path(request.path):
                return await console(request, facts, secure=secure)
            return await self.serve(request, request_id, facts)

        return HttpDoorHandler(
            channel, respond, emit=self._emit, facts=facts, request_timeout=self._request_timeout
        )

    async def serve(
        self, request: HttpRequest, request_id: str, facts: ConnectionFacts
    ) -> HttpResponse:
        """Answer one request."""
        caller = self._authenticator.authenticate(request)
        if isinstance(caller, Refused):
            self._emit(
                connect_failure(
                    Reason.CONTROL_PLANE_AUTHENTICATION_FAILED,
                    f"{caller.reason.name}: {caller.details}",
                    facts,
                    trace_id=request_id,
                )
            )
            return error_response(
                AwsApiError(caller.code, caller.message, status=caller.status), request_id
            )
        if not caller.verified and caller.access_key_id not in self._logged_keys:
            if len(self._logged_keys) >= _LOGGED_KEYS_MAX:
                self._logged_keys.clear()
            self._logged_keys.add(caller.access_key_id)
            logger.warning(
                "control plane: accepted requests signed with access key %s, unknown to the "
                "local IAM (control_plane.strict_sigv4 is false)",
                caller.access_key_id,
            )
        try:
            route, labels = IOT_ROUTER.match(request)
            members = IOT_ROUTER.bind(route, labels, request)
            result = await self.run(route.name, members)
        except AwsApiError as error:
            return error_response(error, request_id)
        return render_result(result, request_id)

    async def run(self, operation: str, members: Mapping[str, Any]) -> dict[str, Any]:
        """Run one operation on the worker thread (for callers on the loop, the console too).

        Raises:
            AwsApiError: the operation's error.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._service.call, operation, members)

    def close(self) -> None:
        """Wait for the operation in progress, if any, and stop the worker thread."""
        self._worker.shutdown(wait=True, cancel_futures=True)
