"""The CLI's output module in memory: timestamps read as botocore reads them, the member list.

The byte-for-byte comparisons with the real ``aws`` CLI are in tests/test_cli_aws_habits.py;
these pin the timestamp rule those comparisons rely on, in both directions (a timestamp member
holding a number becomes ISO 8601; a number under any other name, and a string under a
timestamp's name, stay as they are).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from aws_iot_mock.cli.output import (
    TIMESTAMP_MEMBERS,
    OutputOptions,
    format_response,
    operation_name,
)

botocore_session = pytest.importorskip("botocore.session")


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Both CLIs print timestamps in the local time zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _json(response: dict[str, Any]) -> str:
    return format_response(response, OutputOptions(output="json", operation="DescribeJob"))


def test_a_number_in_a_timestamp_member_prints_as_iso_8601() -> None:
    printed = _json({"job": {"createdAt": 1796495068.0777805, "completedAt": 1796495068}})
    assert '"createdAt": "2026-12-05T18:24:28.077780+00:00"' in printed
    assert '"completedAt": "2026-12-05T18:24:28+00:00"' in printed


def test_a_datetime_prints_at_the_milliseconds_the_wire_carries() -> None:
    moment = datetime(2026, 12, 5, 18, 24, 28, 77780, tzinfo=UTC)
    assert '"creationDate": "2026-12-05T18:24:28.077000+00:00"' in _json({"creationDate": moment})


def test_a_list_of_timestamps_keeps_its_member_name() -> None:
    printed = _json({"notAfter": [0, 1.5]})
    assert '"1970-01-01T00:00:00+00:00"' in printed
    assert '"1970-01-01T00:00:01.500000+00:00"' in printed


@pytest.mark.parametrize(
    "response",
    [
        {"timestamp": 1796495068},  # ListNamedShadowsForThing's and ThingConnectivity's long
        {"version": 3, "createdAt": "2026-12-05T18:24:28Z"},  # already text
        {"schedulingConfig": {"startTime": "2026-12-05T18:24"}},  # a string in SchedulingConfig
        {"createdAt": True},
    ],
)
def test_other_members_print_as_they_are(response: dict[str, Any]) -> None:
    options = OutputOptions(output="json", operation="X")
    assert json.loads(format_response(response, options)) == response


def test_the_timestamp_members_are_the_iot_models() -> None:
    """Every output member of type timestamp, less names that are numbers of another type."""
    model = botocore_session.get_session().get_service_model("iot")
    timestamps: set[str] = set()
    numbers: set[str] = set()
    seen: set[str] = set()

    def walk(shape: Any) -> None:
        if shape.type_name == "list":
            walk(shape.member)
        elif shape.type_name == "map":
            walk(shape.value)
        elif shape.type_name == "structure" and shape.name not in seen:
            seen.add(shape.name)
            for name, member in shape.members.items():
                if member.type_name == "timestamp":
                    timestamps.add(name)
                elif member.type_name in ("long", "integer", "double", "float"):
                    numbers.add(name)
                walk(member)

    for operation in model.operation_names:
        output = model.operation_model(operation).output_shape
        if output is not None:
            walk(output)
    assert timestamps - numbers == TIMESTAMP_MEMBERS
    assert timestamps & numbers == {"timestamp"}


def test_a_local_verb_is_named_without_the_iot_model() -> None:
    # serve, init and healthcheck call no operation: title-cased, the iot model not read.
    assert operation_name("serve", service=False) == "Serve"
    assert operation_name("healthcheck", service=False) == "Healthcheck"
    # The twin: a service verb's acronyms come from the iot model.
    assert operation_name("list-ca-certificates") == "ListCACertificates"
    assert operation_name("list-ca-certificates", service=False) == "ListCaCertificates"
