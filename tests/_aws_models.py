"""botocore's own service models, to serialize requests and check responses in pure tests.

botocore is AWS's SDK core; its ``iot`` and ``iot-jobs-data`` models define every path, member
name and exception. Building requests with its serializer and reading answers with its parser
(and `assert_shape`) tests the emulator against AWS's shapes instead of our reading of them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, cast

import botocore.session
from botocore import parsers, serialize
from botocore.awsrequest import HeadersDict
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape


@functools.cache
def _operation(service: str, operation: str) -> OperationModel:
    model = botocore.session.get_session().get_service_model(service)
    operation_model: OperationModel = model.operation_model(operation)
    return operation_model


def serialize_request(service: str, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``{"method", "url_path", "query_string" (str values), "body" (bytes)}`` as botocore sends."""
    request: dict[str, Any] = serialize.create_serializer("rest-json").serialize_to_request(
        dict(params), _operation(service, operation)
    )
    request["query_string"] = {k: str(v) for k, v in request["query_string"].items()}
    return request


def parse_response(
    service: str,
    operation: str,
    status: int,
    headers: Iterable[tuple[str, str]],
    body: bytes,
) -> dict[str, Any]:
    """What botocore makes of an HTTP answer (``Error`` for an error answer)."""
    op = _operation(service, operation)
    parser = parsers.create_parser("rest-json")
    # Case-insensitive, as botocore's own HTTP layer hands headers to the parser.
    response = {"status_code": status, "headers": HeadersDict(list(headers)), "body": body}
    return cast(dict[str, Any], parser.parse(response, op.output_shape))


def assert_shape(service: str, operation: str, value: Any) -> None:
    """Every member of ``value`` exists in the operation's output shape, with the right type."""
    shape = _operation(service, operation).output_shape
    assert shape is not None
    _check(value, shape, operation)


def _check(value: Any, shape: Shape, path: str) -> None:
    if isinstance(shape, StructureShape):
        assert isinstance(value, dict), path
        for name, member in value.items():
            assert name in shape.members, f"{path}.{name} is not in {shape.name}"
            _check(member, shape.members[name], f"{path}.{name}")
    elif isinstance(shape, ListShape):
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            _check(item, shape.member, f"{path}[{index}]")
    elif isinstance(shape, MapShape):
        assert isinstance(value, dict), path
        for key, item in value.items():
            _check(key, shape.key, f"{path} key")
            _check(item, shape.value, f"{path}[{key}]")
    elif shape.type_name == "string":
        assert isinstance(value, str), path
        if "enum" in shape.metadata:
            assert value in shape.metadata["enum"], path
    elif shape.type_name in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif shape.type_name == "boolean":
        assert isinstance(value, bool), path
    elif shape.type_name == "timestamp":
        assert isinstance(value, int | float) and not isinstance(value, bool), path
