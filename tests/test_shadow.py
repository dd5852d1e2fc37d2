"""Device Shadow document logic (aws_iot_mock/aws/shadow.py), from AWS's documented examples.

Pages cited: device-shadow-document (DOC), device-shadow-data-flow (FLOW), device-shadow-mqtt
(MQTT), device-shadow-error-messages (ERR) of the AWS IoT developer guide.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aws_iot_mock.aws.shadow import (
    CLIENT_TOKEN_MAX,
    MAX_STATE_DEPTH,
    SHADOW_NAME_PATTERN,
    STATE_MAX_BYTES,
    THING_NAME_PATTERN,
    TOMBSTONE_SECONDS,
    ShadowError,
    ShadowState,
    UpdateResult,
    apply_update,
    compute_delta,
    delete,
    get_document,
    not_found,
    parse_request,
    rejected_document,
    state_size,
)

T0 = 1591057529.75  # FLOW's delete example timestamp, plus a fraction
TS = 1591057529
THING = "MyThing"


def _bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def update(
    current: ShadowState | None,
    doc: Any,
    *,
    now: float = T0,
    shadow_name: str | None = None,
) -> UpdateResult:
    """Parse then apply, as the service does."""
    request = parse_request(_bytes(doc), operation="update")
    return apply_update(current, request, now=now, thing_name=THING, shadow_name=shadow_name)


def shadow_with(doc: Any, *, now: float = T0) -> ShadowState:
    return update(None, doc, now=now).state


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ShadowError) as info:
        call()
    return info.value.code, info.value.message


# --- names and constants --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "ok"),
    [
        (THING_NAME_PATTERN, "MyThing", True),
        (THING_NAME_PATTERN, "a:b_c-d9", True),
        (THING_NAME_PATTERN, "x" * 128, True),
        (THING_NAME_PATTERN, "x" * 129, False),
        (THING_NAME_PATTERN, "", False),
        (THING_NAME_PATTERN, "has$dollar", False),
        (THING_NAME_PATTERN, "has/slash", False),
        (SHADOW_NAME_PATTERN, "$shadow:name_1-x", True),
        (SHADOW_NAME_PATTERN, "s" * 64, True),
        (SHADOW_NAME_PATTERN, "s" * 65, False),
        (SHADOW_NAME_PATTERN, "", False),
        (SHADOW_NAME_PATTERN, "has space", False),
    ],
)
def test_name_patterns(pattern: Any, name: str, ok: bool) -> None:
    assert (pattern.fullmatch(name) is not None) is ok


def test_limits() -> None:
    assert CLIENT_TOKEN_MAX == 64
    assert STATE_MAX_BYTES == 8192
    assert MAX_STATE_DEPTH == 6
    assert TOMBSTONE_SECONDS == 48 * 3600


# --- parse_request: errors, verbatim (ERR) --------------------------------------------------------

PARSE_ERRORS: list[tuple[str, bytes, str, int, str]] = [
    ("latin-1", b'{"state":{"reported":{"c":"\xe9"}}}', "update", 415,
     "Unsupported documented encoding; supported encoding is UTF-8"),
    ("bad utf-8 on get", b"\xff", "get", 415,
     "Unsupported documented encoding; supported encoding is UTF-8"),
    ("not json", b"{state:", "update", 400, "Invalid JSON"),
    ("empty update", b"", "update", 400, "Invalid JSON"),
    ("NaN", b'{"state":{"reported":{"x":NaN}}}', "update", 400, "Invalid JSON"),
    ("array top level", b"[1]", "update", 400, "Invalid JSON"),
    ("bad json on get", b"{", "get", 400, "Invalid JSON"),
    ("bad json on delete", b"nope", "delete", 400, "Invalid JSON"),
    ("no state", b'{"clientToken":"t"}', "update", 400, "Missing required node: state"),
    ("state string", b'{"state":"on"}', "update", 400, "State node must be an object"),
    ("state array", b'{"state":[]}', "update", 400, "State node must be an object"),
    ("desired number", b'{"state":{"desired":1}}', "update", 400,
     "Desired node must be an object"),
    ("desired array", b'{"state":{"desired":["a"]}}', "update", 400,
     "Desired node must be an object"),
    ("reported string", b'{"state":{"reported":"x"}}', "update", 400,
     "Reported node must be an object"),
    ("delta in state", b'{"state":{"delta":{"a":1}}}', "update", 400,
     "State contains an invalid node"),
    ("extra state node", b'{"state":{"reported":{},"foo":{}}}', "update", 400,
     "State contains an invalid node"),
    # DOC: "Arrays can't have null values ... will be rejected" (message not documented).
    ("null in array", b'{"state":{"desired":{"colors":[null,"RED","GREEN"]}}}', "update", 400,
     "Invalid JSON"),
    ("null in nested array", b'{"state":{"reported":{"a":[{"b":[1,null]}]}}}', "update", 400,
     "Invalid JSON"),
    ("version string", b'{"state":{},"version":"1"}', "update", 400, "Invalid version"),
    ("version float", b'{"state":{},"version":1.5}', "update", 400, "Invalid version"),
    ("version bool", b'{"state":{},"version":true}', "update", 400, "Invalid version"),
    ("version negative", b'{"state":{},"version":-1}', "update", 400, "Invalid version"),
    ("token number", b'{"state":{},"clientToken":5}', "update", 400, "Invalid clientToken"),
    ("token 65 bytes", _bytes({"state": {}, "clientToken": "x" * 65}), "update", 400,
     "Invalid clientToken"),
    ("token 65 bytes on get", _bytes({"clientToken": "x" * 65}), "get", 400,
     "Invalid clientToken"),
    ("token 65 bytes on delete", _bytes({"clientToken": "x" * 65}), "delete", 400,
     "Invalid clientToken"),
    # 33 two-byte characters: 33 characters but 66 bytes.
    ("token 66 utf-8 bytes", _bytes({"state": {}, "clientToken": "é" * 33}), "update", 400,
     "Invalid clientToken"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "operation", "code", "message"),
    [case[1:] for case in PARSE_ERRORS],
    ids=[case[0] for case in PARSE_ERRORS],
)
def test_parse_errors(payload: bytes, operation: str, code: int, message: str) -> None:
    assert error_of(lambda: parse_request(payload, operation=operation)) == (code, message)


def test_parse_error_keeps_the_client_token() -> None:
    with pytest.raises(ShadowError) as info:
        parse_request(b'{"state":"x","clientToken":"tok"}', operation="update")
    assert info.value.client_token == "tok"
    assert rejected_document(info.value, now=T0) == {
        "code": 400,
        "message": "State node must be an object",
        "timestamp": TS,
        "clientToken": "tok",
    }


def test_parse_accepts_a_64_byte_token() -> None:
    token = "x" * 64
    assert parse_request(_bytes({"clientToken": token}), operation="get") == {"clientToken": token}
    assert parse_request(_bytes({"state": {}, "clientToken": "é" * 32}), operation="update") == {
        "state": {},
        "clientToken": "é" * 32,
    }


def test_parse_request_document() -> None:
    # DOC "Request state document", with values in place of the placeholders.
    doc = {
        "state": {
            "desired": {"attribute1": 2, "attribute2": "string2", "attributeN": True},
            "reported": {"attribute1": 1, "attribute2": "string1", "attributeN": False},
        },
        "clientToken": "token",
        "version": 10,
    }
    assert parse_request(_bytes(doc), operation="update") == doc


def test_parse_ignores_unknown_top_level_fields() -> None:
    # diagnosing-shadows: "JSON content (even if formally correct) outside of those sections is
    # ignored."
    doc = {"state": {"reported": {"a": 1}}, "metadata": {"x": 1}, "timestamp": 5, "other": []}
    assert parse_request(_bytes(doc), operation="update") == {"state": {"reported": {"a": 1}}}


@pytest.mark.parametrize("operation", ["get", "delete"])
@pytest.mark.parametrize("payload", [b"", b"  \n", b"{}"])
def test_get_and_delete_take_empty_payloads(operation: str, payload: bytes) -> None:
    assert parse_request(payload, operation=operation) == {}


def test_null_token_and_version_count_as_absent() -> None:
    doc: dict[str, Any] = {"state": {}, "clientToken": None, "version": None}
    assert parse_request(_bytes(doc), operation="update") == {"state": {}}


def test_unknown_operation() -> None:
    with pytest.raises(ValueError, match="unknown shadow operation"):
        parse_request(b"{}", operation="list")


# --- depth (decision 1) ---------------------------------------------------------------------------


def _nested(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in reversed(range(levels)):
        value = {f"k{i + 1}": value}
    return value


def test_depth_boundary() -> None:
    # state=1, desired=2, then k1..k4 are objects (3..6), k5 holds a value: 6 levels.
    ok = {"state": {"desired": _nested(5)}}
    assert parse_request(_bytes(ok), operation="update")["state"] == ok["state"]
    too_deep = {"state": {"desired": _nested(6)}}
    assert error_of(lambda: parse_request(_bytes(too_deep), operation="update")) == (
        400,
        "JSON contains too many levels of nesting; maximum is 6",
    )


def test_depth_counts_arrays_and_reported() -> None:
    ok = {"state": {"reported": _nested(4, [1, 2])}}
    parse_request(_bytes(ok), operation="update")
    too_deep = {"state": {"reported": _nested(4, [[1]])}}
    assert error_of(lambda: parse_request(_bytes(too_deep), operation="update"))[0] == 400


def test_depth_2019_quota_example_counts_its_empty_object() -> None:
    # The 2019 quota table's "5 levels" example ends in "five": {}; counted as GG counts it, that
    # empty object is a 7th level.
    doc: dict[str, Any] = {
        "state": {"desired": {"one": {"two": {"three": {"four": {"five": {}}}}}}}
    }
    assert error_of(lambda: parse_request(_bytes(doc), operation="update"))[1].startswith(
        "JSON contains too many levels"
    )


# --- size (decision 2) ----------------------------------------------------------------------------


def _state_of_size(size: int) -> dict[str, Any]:
    overhead = state_size({"reported": {"s": ""}})
    return {"reported": {"s": "x" * (size - overhead)}}


def test_state_size_counts_compact_utf8() -> None:
    assert state_size({"reported": {"a": 1}}) == len(b'{"reported":{"a":1}}')
    assert state_size({"desired": {"c": "é"}}) == len('{"desired":{"c":"é"}}'.encode())
    assert state_size({}) == 2


def test_size_boundary() -> None:
    state = _state_of_size(STATE_MAX_BYTES)
    assert state_size(state) == 8192
    result = update(None, {"state": state})
    assert state_size({"reported": dict(result.state.reported or {})}) == 8192
    over = _state_of_size(STATE_MAX_BYTES + 1)
    assert error_of(lambda: update(None, {"state": over, "clientToken": "c"})) == (
        413,
        "The payload exceeds the maximum size allowed",
    )


def test_size_counts_the_resulting_shadow_not_metadata() -> None:
    half = STATE_MAX_BYTES // 2
    first = shadow_with({"state": {"reported": {"a": "x" * half}}})
    # Adding a second half-size field pushes the stored state over 8 KB.
    with pytest.raises(ShadowError) as info:
        update(first, {"state": {"desired": {"b": "y" * half}}, "clientToken": "tok"})
    assert info.value.code == 413
    assert info.value.client_token == "tok"
    # Replacing the field instead keeps it under; metadata never counts.
    assert update(first, {"state": {"reported": {"a": "z" * half}}}).state.version == 2


# --- merge semantics (DOC, FLOW) ------------------------------------------------------------------


def test_first_update_creates_version_1_without_previous() -> None:
    result = update(None, {"state": {"reported": {"temp": 55}}})
    assert result.state == ShadowState(
        thing_name=THING,
        shadow_name=None,
        desired=None,
        reported={"temp": 55},
        metadata_desired=None,
        metadata_reported={"temp": {"timestamp": TS}},
        version=1,
        deleted_at=None,
    )
    assert result.documents == {
        "current": {
            "state": {"reported": {"temp": 55}},
            "metadata": {"reported": {"temp": {"timestamp": TS}}},
            "version": 1,
        },
        "timestamp": TS,
    }
    assert result.delta is None


MERGE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # FLOW "Updating a shadow": "Updates affect only the fields specified."
    (
        "fields merge",
        {"desired": {"color": {"r": 10}, "engine": "ON"}},
        {"desired": {"color": {"g": 5}}},
        {"desired": {"color": {"r": 10, "g": 5}, "engine": "ON"}},
    ),
    # FLOW "Deleting a property": {"state":{"desired":{"engine":null}}}
    (
        "null deletes a field",
        {"desired": {"color": {"r": 10}, "engine": "ON"}},
        {"desired": {"engine": None}},
        {"desired": {"color": {"r": 10}}},
    ),
    (
        "null deletes a nested field",
        {"reported": {"lights": {"color": "RED", "on": True}}},
        {"reported": {"lights": {"on": None}}},
        {"reported": {"lights": {"color": "RED"}}},
    ),
    # DOC "Empty shadow document properties": setting the desired section to null removes it.
    (
        "null section is removed",
        {"desired": {"color": "RED"}, "reported": {"color": "GREEN"}},
        {"reported": {"color": "red"}, "desired": None},
        {"reported": {"color": "red"}},
    ),
    (
        "emptied section is removed",
        {"desired": {"color": "RED"}, "reported": {"color": "GREEN"}},
        {"desired": {"color": None}},
        {"reported": {"color": "GREEN"}},
    ),
    # DOC "Array values": an update replaces the whole array.
    (
        "arrays replaced whole",
        {"desired": {"colors": ["RED", "GREEN", "BLUE"]}},
        {"desired": {"colors": ["RED"]}},
        {"desired": {"colors": ["RED"]}},
    ),
    (
        "scalar replaced by object",
        {"reported": {"a": 1}},
        {"reported": {"a": {"b": 2}}},
        {"reported": {"a": {"b": 2}}},
    ),
    (
        "object replaced by scalar",
        {"reported": {"a": {"b": 2}}},
        {"reported": {"a": 3}},
        {"reported": {"a": 3}},
    ),
    (
        "deleting an absent field is a no-op",
        {"reported": {"a": 1}},
        {"reported": {"zz": None}},
        {"reported": {"a": 1}},
    ),
    (
        "new object made only of nulls adds nothing",
        {"reported": {"a": 1}},
        {"reported": {"n": {"x": None}}},
        {"reported": {"a": 1}},
    ),
    (
        "explicit empty object is kept",
        {"reported": {"a": 1}},
        {"reported": {"e": {}}},
        {"reported": {"a": 1, "e": {}}},
    ),
    (
        "both sections null empties the shadow",
        {"desired": {"a": 1}, "reported": {"a": 2}},
        {"desired": None, "reported": None},
        {},
    ),
]


@pytest.mark.parametrize(
    ("before", "patch", "after"),
    [case[1:] for case in MERGE_CASES],
    ids=[case[0] for case in MERGE_CASES],
)
def test_merge(before: dict[str, Any], patch: dict[str, Any], after: dict[str, Any]) -> None:
    first = shadow_with({"state": before}, now=T0 - 100)
    result = update(first, {"state": patch})
    stored = result.documents["current"]["state"]
    assert stored == after
    assert result.state.version == 2
    # "Setting the device's shadow state to null does not delete the shadow" (FLOW).
    assert result.state.exists


def test_null_state_empties_the_shadow_without_deleting_it() -> None:
    """FLOW, "Deleting a shadow": "Setting the device's shadow state to null does not delete the
    shadow. The shadow version will be incremented on the next update."""
    first = shadow_with({"state": {"desired": {"a": 1}, "reported": {"a": 2}}})
    result = update(first, {"state": None, "clientToken": "wipe"})
    assert result.state.exists
    assert result.state.version == first.version + 1
    assert (result.state.desired, result.state.reported) == (None, None)
    assert result.accepted["state"] is None
    assert result.accepted["clientToken"] == "wipe"
    assert result.delta is None
    assert result.documents["previous"]["state"] == {"desired": {"a": 1}, "reported": {"a": 2}}
    # The twin: no state at all is still refused.
    assert error_of(lambda: update(first, {"clientToken": "t"})) == (
        400,
        "Missing required node: state",
    )
    # The next update continues the version.
    assert (
        update(result.state, {"state": {"reported": {"b": 1}}}).state.version == first.version + 2
    )


def test_inputs_are_not_mutated() -> None:
    first = shadow_with({"state": {"reported": {"a": {"b": 1}, "c": [1, 2]}}})
    snapshot = json.dumps([first.reported, first.metadata_reported])
    request = parse_request(
        _bytes({"state": {"reported": {"a": {"b": None, "d": 2}}}}), operation="update"
    )
    request_snapshot = json.dumps(request)
    result = apply_update(first, request, now=T0 + 5, thing_name=THING, shadow_name=None)
    assert json.dumps([first.reported, first.metadata_reported]) == snapshot
    assert json.dumps(request) == request_snapshot
    result.accepted["state"]["reported"]["a"]["d"] = 99
    result.documents["current"]["state"]["reported"]["c"].append(3)
    assert result.state.reported == {"a": {"d": 2}, "c": [1, 2]}


# --- metadata per leaf ----------------------------------------------------------------------------


def test_metadata_per_leaf_keeps_older_timestamps() -> None:
    first = shadow_with({"state": {"reported": {"a": 1, "o": {"x": 1, "y": 2}}}}, now=100)
    second = update(
        first, {"state": {"reported": {"o": {"y": 3}, "arr": ["p", {"q": 1}]}}}, now=200
    )
    assert second.state.metadata_reported == {
        "a": {"timestamp": 100},
        "o": {"x": {"timestamp": 100}, "y": {"timestamp": 200}},
        # Arrays: one entry per element (decision 4).
        "arr": [{"timestamp": 200}, {"q": {"timestamp": 200}}],
    }
    third = update(second.state, {"state": {"reported": {"o": 5, "a": None}}}, now=300)
    assert third.state.metadata_reported == {
        "o": {"timestamp": 300},
        "arr": [{"timestamp": 200}, {"q": {"timestamp": 200}}],
    }


def test_doc_example_document_shape() -> None:
    # DOC "Example Document" (2019 page): state, metadata per attribute, version. The array
    # "sequence" gets per-element metadata here (decision 4), where DOC draws one timestamp.
    state = shadow_with(
        {
            "state": {
                "desired": {"color": "RED", "sequence": ["RED", "GREEN", "BLUE"]},
                "reported": {"color": "GREEN"},
            }
        },
        now=12345,
    )
    doc = get_document(state, now=123456789, client_token="UniqueClientToken")
    assert doc == {
        "state": {
            "desired": {"color": "RED", "sequence": ["RED", "GREEN", "BLUE"]},
            "reported": {"color": "GREEN"},
            "delta": {"color": "RED", "sequence": ["RED", "GREEN", "BLUE"]},
        },
        "metadata": {
            "desired": {
                "color": {"timestamp": 12345},
                "sequence": [{"timestamp": 12345}, {"timestamp": 12345}, {"timestamp": 12345}],
            },
            "reported": {"color": {"timestamp": 12345}},
        },
        "version": 1,
        "timestamp": 123456789,
        "clientToken": "UniqueClientToken",
    }


def test_timestamps_are_integer_epoch_seconds() -> None:
    result = update(None, {"state": {"reported": {"a": 1}}}, now=1747329779.999)
    assert result.accepted["timestamp"] == 1747329779
    assert result.accepted["metadata"] == {"reported": {"a": {"timestamp": 1747329779}}}


# --- /update/accepted -----------------------------------------------------------------------------


def test_accepted_echoes_only_the_request() -> None:
    # DOC "/accepted response state document": only the sections and fields in the request.
    first = shadow_with({"state": {"reported": {"color": "GREEN", "engine": "ON"}}}, now=100)
    result = update(
        first,
        {"state": {"desired": {"color": {"r": 10}, "engine": "ON"}}, "clientToken": "token"},
        now=200,
    )
    assert result.accepted == {
        "state": {"desired": {"color": {"r": 10}, "engine": "ON"}},
        "metadata": {"desired": {"color": {"r": {"timestamp": 200}}, "engine": {"timestamp": 200}}},
        "version": 2,
        "timestamp": 200,
        "clientToken": "token",
    }


def test_accepted_echoes_nulls_with_timestamps() -> None:
    first = shadow_with({"state": {"desired": {"engine": "ON"}, "reported": {"color": "red"}}})
    result = update(first, {"state": {"reported": {"color": "red"}, "desired": None}}, now=T0 + 1)
    assert result.accepted["state"] == {"reported": {"color": "red"}, "desired": None}
    assert result.accepted["metadata"] == {
        "reported": {"color": {"timestamp": TS + 1}},
        "desired": {"timestamp": TS + 1},
    }
    assert "clientToken" not in result.accepted


# --- versions and optimistic locking (FLOW) -------------------------------------------------------


def _at_version(version: int, doc: dict[str, Any]) -> ShadowState:
    state = shadow_with(doc)
    while state.version < version:
        state = update(state, doc).state
    return state


def test_flow_optimistic_locking_example() -> None:
    initial = _at_version(10, {"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}})
    assert initial.version == 10
    # "Update: (version doesn't match; this request will be rejected)"
    stale = {"state": {"desired": {"colors": ["BLUE"]}}, "version": 9}
    request = parse_request(
        _bytes({**stale, "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6"}),
        operation="update",
    )
    with pytest.raises(ShadowError) as info:
        apply_update(initial, request, now=T0, thing_name=THING, shadow_name=None)
    # "Result:" of FLOW, plus the timestamp the error document format carries.
    assert rejected_document(info.value, now=T0) == {
        "code": 409,
        "message": "Version conflict",
        "timestamp": TS,
        "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6",
    }
    # "Update: (version matches; this request will be accepted)" -> "Final state" version 11.
    final = update(initial, {"state": {"desired": {"colors": ["BLUE"]}}, "version": 10})
    assert final.documents["current"]["state"] == {"desired": {"colors": ["BLUE"]}}
    assert final.state.version == 11


def test_no_version_skips_the_check() -> None:
    state = _at_version(3, {"state": {"reported": {"a": 1}}})
    assert update(state, {"state": {"reported": {"a": 2}}}).state.version == 4


def test_version_on_a_new_shadow_must_be_zero() -> None:
    assert update(None, {"state": {"reported": {"a": 1}}, "version": 0}).state.version == 1
    assert error_of(lambda: update(None, {"state": {"reported": {"a": 1}}, "version": 1})) == (
        409,
        "Version conflict",
    )


def test_every_accepted_update_bumps_the_version_even_without_change() -> None:
    first = shadow_with({"state": {"reported": {"a": 1}}})
    assert update(first, {"state": {"reported": {"a": 1}}}).state.version == 2
    assert update(first, {"state": {}}).state.version == 2


# --- delta (DOC "Delta state", MQTT "/update/delta") ----------------------------------------------

DELTA_CASES: list[tuple[str, Any, Any, Any]] = [
    # DOC "Delta state" example.
    (
        "doc example",
        {"color": "RED", "state": "STOP"},
        {"color": "GREEN", "engine": "ON"},
        {"color": "RED", "state": "STOP"},
    ),
    # DOC: "When nested objects differ, the delta contains the path all the way to the root."
    (
        "nested color",
        {"lights": {"color": {"r": 255, "g": 255, "b": 255}}},
        {"lights": {"color": {"r": 255, "g": 0, "b": 255}}},
        {"lights": {"color": {"g": 255}}},
    ),
    # DOC: "Arrays are treated like values ... the entire desired array is copied".
    (
        "array differs",
        {"colors": ["RED", "GREEN"]},
        {"colors": ["RED"]},
        {"colors": ["RED", "GREEN"]},
    ),
    ("array same", {"colors": ["RED"]}, {"colors": ["RED"]}, None),
    ("array order matters", {"c": [1, 2]}, {"c": [2, 1]}, {"c": [1, 2]}),
    ("equal", {"a": 1, "b": {"c": True}}, {"a": 1, "b": {"c": True}}, None),
    ("no desired", None, {"a": 1}, None),
    # MQTT: "If an attribute is in the desired section but has no equivalent in the reported
    # section, it is included."
    ("no reported", {"a": 1}, None, {"a": 1}),
    # MQTT: reported-only attributes are not included.
    ("reported only keys", {"a": 1}, {"a": 1, "b": 2}, None),
    ("type differs", {"a": {"b": 1}}, {"a": 1}, {"a": {"b": 1}}),
    ("object vs scalar", {"a": 1}, {"a": {"b": 1}}, {"a": 1}),
    ("number semantics", {"a": 1}, {"a": 1.0}, None),
    ("bool is not 1", {"a": True}, {"a": 1}, {"a": True}),
    ("null-free strings", {"a": "1"}, {"a": 1}, {"a": "1"}),
]


@pytest.mark.parametrize(
    ("desired", "reported", "expected"),
    [case[1:] for case in DELTA_CASES],
    ids=[case[0] for case in DELTA_CASES],
)
def test_compute_delta(desired: Any, reported: Any, expected: Any) -> None:
    assert compute_delta(desired, reported) == expected


def test_doc_delta_state_get_document() -> None:
    # DOC "Delta state" example as a /get/accepted document (the page nests "reported" and
    # "delta" inside metadata.desired by mistake; the response format puts them side by side).
    first = shadow_with({"state": {"reported": {"color": "GREEN", "engine": "ON"}}}, now=12345)
    second = update(first, {"state": {"desired": {"color": "RED", "state": "STOP"}}}, now=12345)
    doc = get_document(second.state, now=123456789)
    assert doc == {
        "state": {
            "desired": {"color": "RED", "state": "STOP"},
            "reported": {"color": "GREEN", "engine": "ON"},
            "delta": {"color": "RED", "state": "STOP"},
        },
        "metadata": {
            "desired": {"color": {"timestamp": 12345}, "state": {"timestamp": 12345}},
            "reported": {"color": {"timestamp": 12345}, "engine": {"timestamp": 12345}},
        },
        "version": 2,
        "timestamp": 123456789,
    }


def test_get_omits_delta_when_in_sync() -> None:
    state = shadow_with({"state": {"desired": {"a": 1}, "reported": {"a": 1}}})
    assert "delta" not in get_document(state, now=T0)["state"]


def test_delta_published_with_all_differences_and_desired_metadata() -> None:
    # FLOW: the client requests {"color":{"r":10},"engine":"ON"}; MQTT: the delta holds all
    # differing desired attributes "regardless of whether these attributes were contained in the
    # current update message".
    first = shadow_with({"state": {"desired": {"old": 1}}}, now=100)
    result = update(
        first,
        {"state": {"desired": {"color": {"r": 10}, "engine": "ON"}}, "clientToken": "c1"},
        now=200,
    )
    assert result.delta == {
        "version": 2,
        "timestamp": 200,
        "state": {"old": 1, "color": {"r": 10}, "engine": "ON"},
        "metadata": {
            "old": {"timestamp": 100},
            "color": {"r": {"timestamp": 200}},
            "engine": {"timestamp": 200},
        },
        "clientToken": "c1",
    }


def test_delta_nested_path_metadata_and_array_metadata() -> None:
    first = shadow_with(
        {"state": {"reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}, "c": [1]}}},
        now=100,
    )
    result = update(
        first,
        {"state": {"desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}, "c": [1, 2]}}},
        now=200,
    )
    assert result.delta is not None
    assert result.delta["state"] == {"lights": {"color": {"g": 255}}, "c": [1, 2]}
    assert result.delta["metadata"] == {
        "lights": {"color": {"g": {"timestamp": 200}}},
        "c": [{"timestamp": 200}, {"timestamp": 200}],
    }


PUBLISH_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("desired differs", {"reported": {"a": 1}}, {"desired": {"a": 2}}, True),
    ("desired matches reported", {"reported": {"a": 1}}, {"desired": {"a": 1}}, False),
    ("desired unchanged but differs", {"desired": {"a": 2}, "reported": {"a": 1}},
     {"desired": {"a": 2}}, True),
    ("reported-only leaves a difference", {"desired": {"a": 2}, "reported": {"a": 1}},
     {"reported": {"a": 3}}, False),
    ("reported resolves it", {"desired": {"a": 2}, "reported": {"a": 1}},
     {"reported": {"a": 2}}, False),
    ("desired null", {"desired": {"a": 2}, "reported": {"a": 1}}, {"desired": None}, False),
    ("empty desired object", {"desired": {"a": 2}}, {"desired": {}}, True),
    ("both sections, still differing", {}, {"desired": {"a": 1}, "reported": {"a": 0}}, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "patch", "published"),
    [case[1:] for case in PUBLISH_CASES],
    ids=[case[0] for case in PUBLISH_CASES],
)
def test_delta_publication_rule(
    before: dict[str, Any], patch: dict[str, Any], published: bool
) -> None:
    first = shadow_with({"state": before})
    assert (update(first, {"state": patch}).delta is not None) is published


# --- /update/documents ----------------------------------------------------------------------------


def test_documents_previous_and_current() -> None:
    first = shadow_with({"state": {"reported": {"color": "GREEN"}}}, now=100)
    result = update(first, {"state": {"desired": {"color": "RED"}}, "clientToken": "tok"}, now=200)
    assert result.documents == {
        "previous": {
            "state": {"reported": {"color": "GREEN"}},
            "metadata": {"reported": {"color": {"timestamp": 100}}},
            "version": 1,
        },
        "current": {
            "state": {"desired": {"color": "RED"}, "reported": {"color": "GREEN"}},
            "metadata": {
                "desired": {"color": {"timestamp": 200}},
                "reported": {"color": {"timestamp": 100}},
            },
            "version": 2,
        },
        "timestamp": 200,
        "clientToken": "tok",
    }


# --- get / delete / 48 h tombstone (FLOW) ---------------------------------------------------------


def test_get_missing_shadow_404_names_the_thing_or_shadow() -> None:
    # SDK sample (aws-iot-device-sdk-python-v2 samples/service_clients/shadow.md):
    # {"clientToken":"…","code":404,"message":"No shadow exists with name: 'HelloWorld'"}
    with pytest.raises(ShadowError) as info:
        get_document(None, now=T0, client_token="ct", thing_name="HelloWorld")
    assert (info.value.code, info.value.message) == (
        404,
        "No shadow exists with name: 'HelloWorld'",
    )
    assert rejected_document(info.value, now=T0) == {
        "code": 404,
        "message": "No shadow exists with name: 'HelloWorld'",
        "timestamp": TS,
        "clientToken": "ct",
    }
    assert error_of(lambda: get_document(None, now=T0, thing_name=THING, shadow_name="config")) == (
        404,
        "No shadow exists with name: 'config'",
    )
    assert not_found(THING, None).message == f"No shadow exists with name: '{THING}'"


def test_get_without_a_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="thing_name"):
        get_document(None, now=T0)


def test_delete_accepted_and_tombstone() -> None:
    state = _at_version(4, {"state": {"reported": {"a": 1}}})
    tombstone, payload = delete(state, now=1591057529)
    # FLOW: {"version": 4, "timestamp": 1591057529}
    assert payload == {"version": 4, "timestamp": 1591057529}
    assert tombstone.version == 4
    assert tombstone.deleted_at == 1591057529
    assert not tombstone.exists
    assert tombstone.desired is tombstone.reported is None
    _, with_token = delete(state, now=T0, client_token="del")
    assert with_token == {"version": 4, "timestamp": TS, "clientToken": "del"}


def test_deleted_shadow_is_404_for_get_and_delete() -> None:
    state = shadow_with({"state": {"reported": {"a": 1}}}, now=T0)
    tombstone, _ = delete(state, now=T0 + 1)
    assert error_of(lambda: get_document(tombstone, now=T0 + 2)) == (
        404,
        f"No shadow exists with name: '{THING}'",
    )
    assert error_of(lambda: delete(tombstone, now=T0 + 2))[0] == 404
    assert error_of(lambda: delete(None, now=T0, thing_name=THING, shadow_name="s")) == (
        404,
        "No shadow exists with name: 's'",
    )


@pytest.mark.parametrize(
    ("elapsed", "version"),
    [
        (1, 5),
        (TOMBSTONE_SECONDS, 5),  # "within the past 48 hours": inclusive
        (TOMBSTONE_SECONDS + 1, 1),  # "the version number ... will be 0", so the update gives 1
    ],
)
def test_recreated_within_48h_continues_the_version(elapsed: int, version: int) -> None:
    state = _at_version(4, {"state": {"reported": {"a": 1}}})
    tombstone, _ = delete(state, now=T0)
    result = update(tombstone, {"state": {"reported": {"b": 2}}}, now=T0 + elapsed)
    assert result.state.version == version
    # The deleted content is gone, and there is no previous document.
    assert result.state.reported == {"b": 2}
    assert "previous" not in result.documents


def test_recreate_version_check_uses_the_tombstone() -> None:
    state = _at_version(4, {"state": {"reported": {"a": 1}}})
    tombstone, _ = delete(state, now=T0)
    assert update(tombstone, {"state": {}, "version": 4}, now=T0 + 10).state.version == 5
    assert error_of(lambda: update(tombstone, {"state": {}, "version": 0}, now=T0 + 10)) == (
        409,
        "Version conflict",
    )
    later = T0 + TOMBSTONE_SECONDS + 10
    assert update(tombstone, {"state": {}, "version": 0}, now=later).state.version == 1


def test_named_shadow_keeps_its_names() -> None:
    result = update(None, {"state": {"reported": {"a": 1}}}, shadow_name="config")
    assert (result.state.thing_name, result.state.shadow_name) == (THING, "config")
    assert result.state.display_name == "config"
    tombstone, _ = delete(result.state, now=T0)
    assert error_of(lambda: get_document(tombstone, now=T0)) == (
        404,
        "No shadow exists with name: 'config'",
    )


# --- rejected documents ---------------------------------------------------------------------------


def test_rejected_document_without_token() -> None:
    error = ShadowError(413, "The payload exceeds the maximum size allowed")
    assert rejected_document(error, now=T0) == {
        "code": 413,
        "message": "The payload exceeds the maximum size allowed",
        "timestamp": TS,
    }
    assert str(error) == "413 The payload exceeds the maximum size allowed"


def test_rejected_document_explicit_token_wins() -> None:
    error = ShadowError(409, "Version conflict", client_token="inner")
    assert rejected_document(error, now=T0, client_token="outer")["clientToken"] == "outer"


def test_client_token_echoed_everywhere() -> None:
    result = update(None, {"state": {"desired": {"a": 1}}, "clientToken": "x" * 64})
    assert result.accepted["clientToken"] == "x" * 64
    assert result.documents["clientToken"] == "x" * 64
    assert result.delta is not None
    assert result.delta["clientToken"] == "x" * 64
    assert get_document(result.state, now=T0, client_token="g")["clientToken"] == "g"
    assert "clientToken" not in get_document(result.state, now=T0)
