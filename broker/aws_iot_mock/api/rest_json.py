"""AWS REST-JSON requests to operation calls and results back to responses, by a route table. Pure.

AWS's ``rest-json`` protocol ("AWS restJson1 protocol",
https://smithy.io/2.0/aws/protocols/aws-restjson1-protocol.html) puts some members of a request
in the URI path (labels), the query string and headers, and the rest in a JSON body; the
response's members are a JSON body, timestamps as epoch seconds (the protocol's default
timestamp format). The route table (``aws_iot_mock.api.iot_routes``, generated from botocore's
model) says where each member travels; this module matches a request to its operation, gathers
its members into one ``dict`` keyed by the model's member names, and renders a result ``dict``
(``datetime`` values allowed) as the JSON response.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.http.messages import HttpRequest, HttpResponse

__all__ = [
    "Binding",
    "OperationRoute",
    "RestJsonRouter",
    "epoch_json",
    "parse_route_table",
    "render_result",
]


@dataclass(frozen=True)
class Binding:
    """Where one request member travels outside the JSON body.

    Attributes:
        member: the member's name in the model (the key of the request ``dict``).
        location: ``uri``, ``querystring``, ``header``, or ``payload`` (the member is the
            whole JSON body, e.g. CreateTopicRule's ``topicRulePayload``).
        wire: the label, query parameter or header name.
        type: the member's model type (``string``, ``integer``, ``long``, ``boolean``...).
    """

    member: str
    location: str
    wire: str
    type: str


@dataclass(frozen=True)
class OperationRoute:
    """One operation's HTTP binding.

    Attributes:
        name: the operation, e.g. ``DescribeThing``.
        method: the HTTP method.
        segments: the path template's segments; ``{label}`` (or ``{label+}``, the rest of the
            path) stand for labels.
        bindings: the members outside the body.
    """

    name: str
    method: str
    segments: tuple[str, ...]
    bindings: tuple[Binding, ...]

    @property
    def literal_segments(self) -> int:
        """How many segments are fixed text (a more specific template wins)."""
        return sum(1 for segment in self.segments if not segment.startswith("{"))

    def match_path(self, segments: list[str]) -> dict[str, str] | None:
        """The labels if ``segments`` (percent-decoded) fit this template, else None."""
        labels: dict[str, str] = {}
        for index, template in enumerate(self.segments):
            if template.startswith("{") and template.endswith("+}"):
                rest = "/".join(segments[index:])
                if not rest:
                    return None
                labels[template[1:-2]] = rest
                return labels
            if index >= len(segments):
                return None
            segment = segments[index]
            if template.startswith("{"):
                if not segment:
                    return None
                labels[template[1:-1]] = segment
            elif segment != template:
                return None
        return labels if len(segments) == len(self.segments) else None


def parse_route_table(table: str) -> tuple[OperationRoute, ...]:
    """Parse the generated table: ``Name METHOD /uri member=location:wire:type ...`` per line."""
    routes: list[OperationRoute] = []
    for line in table.splitlines():
        if not line.strip():
            continue
        name, method, uri, *members = line.split()
        path = uri.split("?", 1)[0]
        bindings = []
        for item in members:
            member, _, spec = item.partition("=")
            location, wire, kind = spec.split(":")
            bindings.append(Binding(member, location, wire, kind))
        routes.append(OperationRoute(name, method, tuple(path.split("/")[1:]), tuple(bindings)))
    return tuple(routes)


class RestJsonRouter:
    """Finds a request's operation and gathers its members.

    Args:
        routes: every operation's binding.
    """

    def __init__(self, routes: Iterable[OperationRoute]) -> None:
        self._routes = tuple(routes)
        self._by_name = {route.name: route for route in self._routes}

    def route(self, name: str) -> OperationRoute:
        """The binding of operation ``name``."""
        return self._by_name[name]

    def match(self, request: HttpRequest) -> tuple[OperationRoute, dict[str, str]]:
        """The operation a request calls and its path labels.

        Raises:
            AwsApiError: no operation has this path (404 ``UnknownOperationException``), or
                none has it with this method (405 ``MethodNotAllowedException``).
        """
        try:
            segments = request.path_segments()
        except UnicodeDecodeError:
            raise AwsApiError(
                "InvalidRequestException", "The request path is not valid UTF-8"
            ) from None
        candidates = [
            (route, labels)
            for route in self._routes
            if (labels := route.match_path(segments)) is not None
        ]
        if not candidates:
            raise AwsApiError(
                "UnknownOperationException",
                f"No AWS IoT operation is served at {request.path}",
                status=404,
            )
        allowed = [item for item in candidates if item[0].method == request.method]
        if not allowed:
            methods = ", ".join(sorted({route.method for route, _ in candidates}))
            raise AwsApiError(
                "MethodNotAllowedException",
                f"{request.method} is not allowed on {request.path} (allowed: {methods})",
            )
        return max(allowed, key=lambda item: item[0].literal_segments)

    def bind(
        self, route: OperationRoute, labels: Mapping[str, str], request: HttpRequest
    ) -> dict[str, Any]:
        """The request's members: the JSON body's, then the labels, query and headers.

        Raises:
            AwsApiError: InvalidRequestException for a body that is not a JSON object or a
                query parameter of the wrong type.
        """
        members: dict[str, Any] = {}
        if request.body.strip():
            try:
                body = json.loads(request.body)
            except (ValueError, UnicodeDecodeError):
                raise AwsApiError(
                    "InvalidRequestException", "The request body is not valid JSON"
                ) from None
            if not isinstance(body, dict):
                raise AwsApiError(
                    "InvalidRequestException", "The request body is not a JSON object"
                )
            payload = next((b for b in route.bindings if b.location == "payload"), None)
            if payload is None:
                members.update(body)
            else:
                members[payload.member] = body
        query = request.query()
        for binding in route.bindings:
            if binding.location == "payload":
                continue
            if binding.location == "uri":
                value: str | None = labels.get(binding.wire)
            elif binding.location == "querystring":
                value = query.get(binding.wire)
            else:
                value = request.header(binding.wire)
            if value is not None:
                members[binding.member] = _typed(binding, value)
        return members


def _typed(binding: Binding, value: str) -> Any:
    if binding.type in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            raise AwsApiError(
                "InvalidRequestException", f"{binding.wire} must be an integer, got {value!r}"
            ) from None
    if binding.type == "boolean":
        if value.lower() not in ("true", "false"):
            raise AwsApiError(
                "InvalidRequestException", f"{binding.wire} must be true or false, got {value!r}"
            )
        return value.lower() == "true"
    return value


def epoch_json(value: object) -> object:
    """``json.dumps`` ``default``: a ``datetime`` as epoch seconds, AWS's REST-JSON timestamps."""
    if isinstance(value, datetime):
        seconds = value.timestamp()
        # Milliseconds, as AWS sends them (e.g. 1.569434040207E9).
        return math.floor(seconds * 1000) / 1000
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def render_result(result: Mapping[str, Any], request_id: str) -> HttpResponse:
    """A successful operation's response: its members as JSON, timestamps as epoch seconds."""
    body = json.dumps(result, default=epoch_json, separators=(",", ":")).encode("utf-8")
    return HttpResponse(
        200, (("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)), body
    )
