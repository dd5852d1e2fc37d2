"""AWSIotLogsV2 record shape, the reason catalogue, and the JSON-lines sink."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from aws_iot_mock.logs import cloudwatch
from aws_iot_mock.logs.cloudwatch import (
    LOG_LEVELS,
    ConnectionFacts,
    EventType,
    LogLevel,
    LogRecord,
    Reason,
    connect_failure,
    connect_success,
    disconnect_record,
    event_success,
    format_timestamp,
    new_trace_id,
    now_timestamp,
    reason_catalogue_markdown,
    record_level,
    record_line,
    success_line,
    success_logger,
)
from aws_iot_mock.logs.sink import LogSink

REPO_ROOT = Path(__file__).resolve().parent.parent

# AWS's documented key order ("CloudWatch AWS IoT log entries", message broker Connect example).
AWS_KEY_ORDER = (
    "timestamp",
    "logLevel",
    "traceId",
    "accountId",
    "status",
    "eventType",
    "protocol",
    "clientId",
    "principalId",
    "sourceIp",
    "sourcePort",
    "reason",
    "details",
)

NOW = dt.datetime(2017, 8, 10, 15, 37, 23, 476123, tzinfo=dt.UTC)
FULL = ConnectionFacts(
    account_id="123456789012",
    source_ip="192.0.2.7",
    source_port=50242,
    client_id="abf27092886e49a8a5c1922749736453",
    principal_id="145179c40e2219e18a909d6a8bd3cbe5e22b7d1b7b1f3e0fb8fd8b3e1e5e5e5a",
)
BARE = ConnectionFacts(account_id="123456789012", source_ip="127.0.0.1", source_port=1)


# Disconnect records also carry AWS's lifecycle disconnectReason, just before reason.
_FULL_ORDER = (*AWS_KEY_ORDER[:-2], "disconnectReason", *AWS_KEY_ORDER[-2:])


def _ordered(keys: list[str]) -> list[str]:
    """Project AWS's key order onto the keys a record has."""
    return [key for key in _FULL_ORDER if key in keys]


# --- timestamps ------------------------------------------------------------------------------


def test_format_timestamp_truncates_to_milliseconds() -> None:
    assert format_timestamp(NOW) == "2017-08-10 15:37:23.476"


def test_format_timestamp_converts_to_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2017, 8, 10, 17, 37, 23, 476999, tzinfo=plus_two)
    assert format_timestamp(moment) == "2017-08-10 15:37:23.476"


def test_format_timestamp_pads_milliseconds() -> None:
    moment = dt.datetime(2024, 1, 2, 3, 4, 5, 7000, tzinfo=dt.UTC)
    assert format_timestamp(moment) == "2024-01-02 03:04:05.007"


# --- records ---------------------------------------------------------------------------------


def test_connect_failure_matches_aws_shape() -> None:
    record = connect_failure(
        Reason.SNI_MISMATCH, "SNI host_name 'x' is wrong", FULL, now=NOW, trace_id="t-1"
    )
    assert list(record) == list(AWS_KEY_ORDER)
    assert record == {
        "timestamp": "2017-08-10 15:37:23.476",
        "logLevel": "ERROR",
        "traceId": "t-1",
        "accountId": "123456789012",
        "status": "Failure",
        "eventType": "Connect",
        "protocol": "MQTT",
        "clientId": FULL.client_id,
        "principalId": FULL.principal_id,
        "sourceIp": "192.0.2.7",
        "sourcePort": 50242,
        "reason": "SNI_MISMATCH",
        "details": "SNI host_name 'x' is wrong",
    }
    # JSON-serialisable as is, and the port stays a number.
    assert json.loads(json.dumps(record))["sourcePort"] == 50242


def test_connect_success_matches_aws_shape() -> None:
    record = connect_success(FULL, now=NOW)
    assert list(record) == _ordered(list(record))
    assert record["logLevel"] == "INFO"
    assert record["status"] == "Success"
    assert record["eventType"] == "Connect"
    assert "reason" not in record
    assert "details" not in record
    with_details = connect_success(FULL, details="TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256", now=NOW)
    assert list(with_details) == _ordered(list(with_details))
    assert with_details["details"] == "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256"


@pytest.mark.parametrize(
    ("failure", "level", "status"), [(True, "ERROR", "Failure"), (False, "INFO", "Success")]
)
def test_disconnect_record(failure: bool, level: str, status: str) -> None:
    record = disconnect_record(
        FULL,
        "DUPLICATE_CLIENT_ID",
        "A new connection ...",
        failure=failure,
        disconnect_reason="DUPLICATE_CLIENTID",
        now=NOW,
    )
    # AWS's 2022 example carries disconnectReason (the lifecycle value); the current one
    # carries reason and details. A Disconnect record has both.
    expected = list(AWS_KEY_ORDER)
    expected.insert(expected.index("reason"), "disconnectReason")
    assert list(record) == expected
    assert record["disconnectReason"] == "DUPLICATE_CLIENTID"
    assert record["logLevel"] == level
    assert record["status"] == status
    assert record["eventType"] == "Disconnect"
    assert record["reason"] == "DUPLICATE_CLIENT_ID"
    assert record["details"] == "A new connection ..."


def test_unknown_client_and_principal_are_omitted_not_null() -> None:
    records = [
        connect_failure(Reason.SNI_MISSING, "no SNI", BARE, now=NOW),
        connect_success(BARE, now=NOW),
        disconnect_record(BARE, "X", "y", failure=True, now=NOW),
    ]
    for record in records:
        assert "clientId" not in record
        assert "principalId" not in record
        assert None not in record.values()
        assert list(record) == _ordered(list(record))


def test_trace_id_is_a_fresh_uuid() -> None:
    first = connect_failure(Reason.SNI_MISSING, "d", BARE)
    second = connect_failure(Reason.SNI_MISSING, "d", BARE)
    third = connect_success(BARE)
    ids = [str(r["traceId"]) for r in (first, second, third)]
    for trace_id in ids:
        assert str(uuid.UUID(trace_id)) == trace_id
    assert len(set(ids)) == 3


def test_new_trace_ids_are_version_4_uuids() -> None:
    ids = {new_trace_id() for _ in range(3 * 4096 + 7)}  # several blocks of suffixes
    assert len(ids) == 3 * 4096 + 7
    for trace_id in ids:
        parsed = uuid.UUID(trace_id)
        assert str(parsed) == trace_id
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_trace_id_endings_are_each_three_digit_ending_once() -> None:
    endings = cloudwatch._new_trace_endings()
    assert sorted(endings) == [f"{n:03x}" for n in range(4096)]
    # Built at the first trace ID, not at import (serve's start-up needs none).
    new_trace_id()
    assert len(cloudwatch._TRACE_ENDINGS) == 4096


def test_now_timestamp_is_format_timestamp_of_now() -> None:
    before = format_timestamp(dt.datetime.now(dt.UTC))
    stamp = now_timestamp()
    after = format_timestamp(dt.datetime.now(dt.UTC))
    assert before <= stamp <= after
    assert len(stamp) == len("2017-08-10 15:37:23.476")


SUCCESS_FACTS = [
    FULL,
    BARE,
    ConnectionFacts(
        "123456789012", "::1", 2, client_id='quo"te\\ \u00e9\u2603 \n', protocol="HTTP"
    ),
    ConnectionFacts("123456789012", "10.0.0.1", 3, client_id="x" * 600, principal_id="p"),
]


@pytest.mark.parametrize("facts", SUCCESS_FACTS)
@pytest.mark.parametrize("topic", [None, "bench/tp/u1", 'a/"b"/\u00fc/\x01', "t" * 700])
@pytest.mark.parametrize("retain", [False, True])
@pytest.mark.parametrize("trace_id", [None, "t-1", 'odd"trace'])
def test_success_record_line_is_json_dumps_of_the_record(
    facts: ConnectionFacts, topic: str | None, retain: bool, trace_id: str | None
) -> None:
    for event in (EventType.PUBLISH_IN, EventType.PUBLISH_OUT, EventType.SUBSCRIBE):
        for now in (None, NOW):
            record = event_success(
                event, facts, topic_name=topic, retain=retain, now=now, trace_id=trace_id
            )
            assert isinstance(record, LogRecord)
            assert record.line is not None
            expected = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
            assert record_line(record) == expected
            assert list(record) == [k for k in record if k in _FULL_ORDER] + [
                k for k in ("topicName", "retain") if k in record
            ]


def _stamped_alike(line: str) -> dict[str, object]:
    """A line's record with the parts that differ from call to call (time, our trace ID) fixed."""
    record: dict[str, object] = json.loads(line)
    record["timestamp"] = "-"
    if str(record["traceId"]).count("-") == 4:  # ours, a UUID
        record["traceId"] = "-"
    return record


@pytest.mark.parametrize("facts", SUCCESS_FACTS)
@pytest.mark.parametrize("topic", [None, "bench/tp/u1", 'a/"b"/\u00fc/\x01', "t" * 700])
@pytest.mark.parametrize("retain", [False, True])
@pytest.mark.parametrize("trace_id", [None, "t-1", 'odd"trace'])
def test_success_line_is_the_line_of_event_success(
    facts: ConnectionFacts, topic: str | None, retain: bool, trace_id: str | None
) -> None:
    for event in (EventType.PUBLISH_IN, EventType.PUBLISH_OUT):
        line = success_line(event, facts, topic, retain, trace_id)
        record = event_success(event, facts, topic_name=topic, retain=retain, trace_id=trace_id)
        # Byte for byte json.dumps of what it says, in event_success's order and content.
        parsed = json.loads(line)
        assert line == json.dumps(parsed, separators=(",", ":"), ensure_ascii=False) + "\n"
        assert list(parsed) == list(record)
        assert _stamped_alike(line) == _stamped_alike(record_line(record))
        if trace_id is None:
            assert uuid.UUID(str(parsed["traceId"])).version == 4
        stamp = dt.datetime.strptime(str(parsed["timestamp"]), "%Y-%m-%d %H:%M:%S.%f")
        assert abs(stamp.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_success_lines_have_fresh_trace_ids() -> None:
    lines = [success_line(EventType.PUBLISH_OUT, FULL, "t", False, None) for _ in range(500)]
    assert len({json.loads(line)["traceId"] for line in lines}) == 500


def test_success_logger_hands_event_success_records_to_emit() -> None:
    heard: list[Mapping[str, object]] = []
    log = success_logger(heard.append)
    log(EventType.PUBLISH_IN, FULL, "a/b", True, "trace-1")
    [record] = heard
    expected = event_success(
        EventType.PUBLISH_IN, FULL, topic_name="a/b", retain=True, trace_id="trace-1"
    )
    assert {**record, "timestamp": "-"} == {**expected, "timestamp": "-"}


def test_success_records_of_equal_facts_objects_stay_apart() -> None:
    first = ConnectionFacts("123456789012", "127.0.0.1", 1, client_id="one")
    second = ConnectionFacts("123456789012", "127.0.0.1", 1, client_id="two")
    lines = [
        record_line(event_success(EventType.PUBLISH_OUT, facts, topic_name="t", now=NOW))
        for facts in (first, second, first)
    ]
    assert ['"clientId":"one"' in line for line in lines] == [True, False, True]
    assert '"clientId":"two"' in lines[1]


def test_a_changed_log_record_is_serialised_again() -> None:
    record = event_success(EventType.PUBLISH_IN, FULL, topic_name="t", now=NOW)
    record["topicName"] = "changed"
    assert record.line is None
    assert json.loads(record_line(record))["topicName"] == "changed"
    changes: list[Callable[[LogRecord], object]] = [
        lambda r: r.update(x=1),
        lambda r: r.pop("topicName"),
        lambda r: r.setdefault("y", 2),
        lambda r: r.popitem(),
        lambda r: r.__delitem__("status"),
        lambda r: r.__ior__({"z": 3}),
        lambda r: r.clear(),
    ]
    for change in changes:
        record = event_success(EventType.PUBLISH_IN, FULL, topic_name="t", now=NOW)
        change(record)
        expected = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        assert record_line(record) == expected


def test_default_timestamp_is_now() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    record = connect_success(BARE)
    stamped = dt.datetime.strptime(str(record["timestamp"]), "%Y-%m-%d %H:%M:%S.%f")
    assert stamped.replace(tzinfo=dt.UTC) >= before


def test_record_level() -> None:
    assert record_level(connect_failure(Reason.SNI_MISSING, "d", BARE)) is LogLevel.ERROR
    assert record_level(connect_success(BARE)) is LogLevel.INFO


def test_log_levels_are_aws_names_in_severity_order() -> None:
    assert LOG_LEVELS == ("DISABLED", "ERROR", "WARN", "INFO", "DEBUG")


# --- reason catalogue ------------------------------------------------------------------------


@pytest.mark.parametrize("reason", list(Reason), ids=[r.name for r in Reason])
def test_every_reason_has_alert_and_meaning(reason: Reason) -> None:
    assert reason.alert.strip()
    assert reason.meaning.strip()
    assert "|" not in reason.alert + reason.meaning  # would break the Markdown table
    # AWS's own spellings: UPPER_CASE for connection events, CamelCase for the rules engine's
    # ("reason": "RuleNotFound", cwl-format.html, "Rules engine log entries").
    assert reason.name.isupper() or reason.name.startswith("Rule")


def test_catalogue_lists_every_reason_once() -> None:
    table = reason_catalogue_markdown()
    lines = table.splitlines()
    assert lines[0] == "| reason | what the client sees | meaning |"
    assert len(lines) == 2 + len(Reason)
    for reason in Reason:
        assert sum(f"| `{reason.name}` |" in line for line in lines) == 1


def test_the_docs_contain_the_reason_catalogue() -> None:
    page = REPO_ROOT / "docs" / "logs.md"
    assert reason_catalogue_markdown() in page.read_text(encoding="utf-8"), (
        "docs/logs.md's reason table is out of date; paste reason_catalogue_markdown() into it"
    )


# --- the sink --------------------------------------------------------------------------------


def _failure() -> dict[str, object]:
    return connect_failure(
        Reason.NO_SHARED_CIPHER, "no shared cipher", FULL, now=NOW, trace_id="trace-f"
    )


def _success() -> dict[str, object]:
    return connect_success(FULL, now=NOW, trace_id="trace-s")


def _read_lines(path: Path) -> list[dict[str, object]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_sink_writes_one_json_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "iot.jsonl"
    sink = LogSink(LogLevel.DEBUG, file=path, stdout=False)
    try:
        sink.emit(_failure())
        sink.emit(_success())
        # Readable while the sink is open, once the writer has caught up.
        assert sink.flush()
        assert _read_lines(path) == [_failure(), _success()]
    finally:
        sink.close()
    sink.close()  # idempotent


def test_sink_writes_non_ascii_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "iot.jsonl"
    sink = LogSink(LogLevel.DEBUG, file=path, stdout=False)
    record = connect_failure(Reason.SNI_MISMATCH, "SNI 'bücher'", BARE, now=NOW)
    try:
        sink.emit(record)
    finally:
        sink.close()
    assert "bücher" in path.read_text(encoding="utf-8")
    assert _read_lines(path) == [record]


@pytest.mark.parametrize(
    ("level", "written"),
    [
        (LogLevel.DEBUG, ["Failure", "Success"]),
        (LogLevel.INFO, ["Failure", "Success"]),
        (LogLevel.WARN, ["Failure"]),
        (LogLevel.ERROR, ["Failure"]),
        (LogLevel.DISABLED, []),
    ],
)
def test_sink_levels(tmp_path: Path, level: LogLevel, written: list[str]) -> None:
    path = tmp_path / "iot.jsonl"
    stream = io.StringIO()
    heard: list[Mapping[str, object]] = []
    sink = LogSink(level, file=path, stream=stream)
    sink.add_listener(heard.append)
    try:
        sink.emit(_failure())
        sink.emit(_success())
    finally:
        sink.close()
    if written:
        assert [r["status"] for r in _read_lines(path)] == written
    else:
        assert path.read_text(encoding="utf-8") == ""
    assert [json.loads(line)["status"] for line in stream.getvalue().splitlines()] == written
    # Listeners see every record whatever the level.
    assert [r["status"] for r in heard] == ["Failure", "Success"]


def test_sink_remove_listener() -> None:
    heard: list[Mapping[str, object]] = []
    sink = LogSink(LogLevel.DEBUG, stream=io.StringIO())
    sink.add_listener(heard.append)
    sink.emit(_failure())
    sink.remove_listener(heard.append)
    sink.emit(_failure())
    assert len(heard) == 1


def test_two_sinks_append_to_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "iot.jsonl"
    first = LogSink(LogLevel.INFO, file=path, stdout=False)
    try:
        first.emit(_failure())
    finally:
        first.close()
    second = LogSink(LogLevel.INFO, file=path, stdout=False)
    third = LogSink(LogLevel.INFO, file=path, stdout=False)
    try:
        # Each sink drains on its own thread; flushing the second before the
        # third writes keeps the expected order deterministic.
        second.emit(_success())
        assert second.flush()
        third.emit(_failure())
    finally:
        second.close()
        third.close()
    assert [r["status"] for r in _read_lines(path)] == ["Failure", "Success", "Failure"]


def test_sink_stream_gets_compact_json_lines() -> None:
    stream = io.StringIO()
    sink = LogSink(LogLevel.INFO, stream=stream)
    sink.emit(_failure())
    sink.emit(_success())
    assert sink.flush()
    lines = stream.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [_failure(), _success()]
    assert stream.getvalue().count("\n") == 2
    # Key order survives serialisation.
    assert list(json.loads(lines[0])) == list(AWS_KEY_ORDER)


def test_sink_without_stdout_or_file_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    sink = LogSink(LogLevel.DEBUG, stdout=False)
    sink.emit(_failure())
    assert capsys.readouterr().out == ""


def test_sink_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    sink = LogSink(LogLevel.DEBUG)
    sink.emit(_failure())
    assert sink.flush()
    assert json.loads(capsys.readouterr().out) == _failure()


def _emit_successes(sink: LogSink) -> None:
    sink.emit_success(EventType.PUBLISH_IN, FULL, "a/b", True, None)
    sink.emit_success(EventType.PUBLISH_OUT, BARE, "a/b", False, "trace-2")


def test_sink_emit_success_without_listeners_writes_event_success_lines() -> None:
    stream = io.StringIO()
    sink = LogSink(LogLevel.INFO, stream=stream)
    _emit_successes(sink)
    assert sink.flush()
    lines = stream.getvalue().splitlines(keepends=True)
    expected = [
        event_success(EventType.PUBLISH_IN, FULL, topic_name="a/b", retain=True),
        event_success(EventType.PUBLISH_OUT, BARE, topic_name="a/b", trace_id="trace-2"),
    ]
    assert [_stamped_alike(line) for line in lines] == [
        _stamped_alike(record_line(record)) for record in expected
    ]


def test_sink_emit_success_gives_listeners_the_record_it_writes() -> None:
    stream = io.StringIO()
    heard: list[Mapping[str, object]] = []
    sink = LogSink(LogLevel.INFO, stream=stream)
    sink.add_listener(heard.append)
    _emit_successes(sink)
    assert sink.flush()
    assert [record_line(record) for record in heard] == stream.getvalue().splitlines(keepends=True)
    assert [record["eventType"] for record in heard] == ["Publish-In", "Publish-Out"]


@pytest.mark.parametrize("level", [LogLevel.ERROR, LogLevel.DISABLED])
def test_sink_emit_success_below_info_writes_nothing(level: LogLevel) -> None:
    stream = io.StringIO()
    heard: list[Mapping[str, object]] = []
    sink = LogSink(level, stream=stream)
    _emit_successes(sink)
    sink.add_listener(heard.append)
    _emit_successes(sink)
    assert sink.flush()
    assert stream.getvalue() == ""
    assert len(heard) == 2  # listeners see every record whatever the level


@pytest.mark.parametrize("level", [LogLevel.INFO, LogLevel.ERROR])
def test_sink_keeps_the_recent_records_as_a_listener_would(level: LogLevel) -> None:
    heard: list[Mapping[str, object]] = []
    listening = LogSink(level, stream=io.StringIO())
    listening.add_listener(heard.append)
    sink = LogSink(level, stream=io.StringIO())
    sink.keep_recent(3)
    for each in (listening, sink):
        each.emit(_failure())
        _emit_successes(each)
        each.emit(_success())
    recent = sink.take_recent()
    assert [_stamped_alike(record_line(r)) for r in recent] == [
        _stamped_alike(record_line(r)) for r in heard[-3:]
    ]
    assert [list(r) for r in recent] == [list(r) for r in heard[-3:]]
    # Taken: no longer kept.
    sink.emit(_failure())
    assert sink.take_recent() == []
