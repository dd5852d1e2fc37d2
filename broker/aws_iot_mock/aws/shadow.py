"""AWS IoT Device Shadow documents: validation, merge, delta, versions, errors. Pure.

Values in, values out: no I/O, no clock (callers pass ``now`` in epoch seconds), no logging. The
service layer owns storage, topics, authorization and the in-flight limit (``MAX_IN_FLIGHT``).

Sources (the AWS IoT developer guide, https://docs.aws.amazon.com/iot/latest/developerguide/):

- [DOC] developer guide "Device Shadow service documents",
  https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-document.html
- [FLOW] "Interacting with shadows",
  https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-data-flow.html
- [ERR] "Device Shadow error messages",
  https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-error-messages.html
- [MQTT] "Device Shadow MQTT topics",
  https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html
- [DIAG] "Diagnosing problems with shadows",
  https://docs.aws.amazon.com/iot/latest/developerguide/diagnosing-shadows.html
- [GG] ``aws-greengrass/aws-greengrass-shadow-manager`` (AWS's own edge re-implementation of the
  service: ``JsonUtil``, ``JsonMerger``, ``ShadowStateMetadata``), used where the pages are silent.

Decisions where AWS is silent or inconsistent (each marked at its code):

1. **Depth** (``MAX_STATE_DEPTH = 6``). [ERR] says "JSON contains too many levels of nesting;
   maximum is 6"; the 2019 quota table says "5 levels in the desired or reported section". We count
   as [GG] ``JsonUtil.calculateDepth`` does: every object or array is one level and the ``state``
   node is level 1, so ``desired`` is level 2 and five levels of keys fit below it
   (``{"desired":{"a":{"b":{"c":{"d":{"e":1}}}}}}`` is the deepest accepted). Counted from the
   whole request document that is 8 levels.
2. **Size** (``STATE_MAX_BYTES = 8192``). "Metadata do not contribute to the document size" [DOC];
   "Only the data for desired and reported state inside the state document ... counts toward the
   limit" [DIAG]. We measure the shadow's *resulting* state node ``{"desired":..,"reported":..}``
   (absent sections omitted) as compact JSON (no whitespace, ``","``/``":"`` separators, non-ASCII
   as raw UTF-8), in UTF-8 bytes; 8192 is accepted, 8193 is refused with 413.
3. **Delta publication.** ``/update/delta`` is published "when it accepts a change for the
   device's shadow, and the request state document contains different values for desired and
   reported states" [MQTT]. We publish it when the accepted request carries a ``desired`` object
   (not ``null``) and the resulting desired state differs from reported; a reported-only update
   never publishes a delta, even when a difference remains (observed AWS behaviour). The delta
   holds *all* differing desired attributes, not only the ones in the request [MQTT].
4. **Metadata** mirrors the state: ``{"timestamp": T}`` per leaf, and an array gets one entry per
   element, as real AWS answers (the Go SDK ``seqsense/aws-iot-device-sdk-go`` PR #213 prints
   ``Values:[{Timestamp:…} {Timestamp:…}]`` from the live service; [GG] does the same). [DOC]'s
   illustration shows a single ``{"timestamp"}`` for the array ``sequence``.
5. **Versions.** A new shadow's first update is version 1; each accepted update adds 1. A deleted
   shadow re-created within 48 hours (inclusive) continues its version; after that it restarts
   ("will be 0", so the first update yields 1) [FLOW]. A request ``version`` must equal the current
   version (0 for a shadow that does not exist, the tombstone's version within 48 hours), else 409.
6. **Empty sections.** A section left empty by deletions is removed, like a section set to
   ``null`` [DOC "Empty shadow document properties"]; [GG] ``nullIfEmpty`` does the same.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

__all__ = [
    "CLIENT_TOKEN_MAX",
    "MAX_IN_FLIGHT",
    "MAX_STATE_DEPTH",
    "MSG_DESIRED_NOT_OBJECT",
    "MSG_INTERNAL",
    "MSG_INVALID_CLIENT_TOKEN",
    "MSG_INVALID_JSON",
    "MSG_INVALID_NODE",
    "MSG_INVALID_VERSION",
    "MSG_MISSING_STATE",
    "MSG_REPORTED_NOT_OBJECT",
    "MSG_STATE_NOT_OBJECT",
    "MSG_TOO_DEEP",
    "MSG_TOO_LARGE",
    "MSG_TOO_MANY_REQUESTS",
    "MSG_UNSUPPORTED_ENCODING",
    "MSG_VERSION_CONFLICT",
    "SHADOW_NAME_PATTERN",
    "STATE_MAX_BYTES",
    "THING_NAME_PATTERN",
    "TOMBSTONE_SECONDS",
    "ShadowError",
    "ShadowState",
    "UpdateResult",
    "apply_update",
    "compute_delta",
    "delete",
    "get_document",
    "not_found",
    "parse_request",
    "rejected_document",
    "state_size",
]

# "thingName ... Length Constraints: Minimum length of 1. Maximum length of 128. Pattern:
# [a-zA-Z0-9:_-]+" (API_iotdata_UpdateThingShadow).
THING_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
# "shadowName ... Minimum length of 1. Maximum length of 64. Pattern: [$a-zA-Z0-9:_-]+" (same page).
SHADOW_NAME_PATTERN: Final = re.compile(r"[$a-zA-Z0-9:_-]{1,64}")
# "The client token can be no longer than 64 bytes" [DOC "Client tokens in shadow documents"].
CLIENT_TOKEN_MAX: Final = 64
# "Maximum size of a JSON state document: 8 KB" (quotas, 2019). See decision 2.
STATE_MAX_BYTES: Final = 8 * 1024
# "maximum is 6" [ERR], counting the state node as level 1. See decision 1.
MAX_STATE_DEPTH: Final = 6
# "more than 10 in-flight requests on a single connection" -> 429 [ERR]. Enforced by the service.
MAX_IN_FLIGHT: Final = 10
# "deleted within the past 48 hours, the version number of the new device shadow document will
# follow that of the deleted one" [FLOW].
TOMBSTONE_SECONDS: Final = 48 * 3600

# Messages, verbatim from [ERR].
MSG_INVALID_JSON: Final = "Invalid JSON"
MSG_MISSING_STATE: Final = "Missing required node: state"
MSG_STATE_NOT_OBJECT: Final = "State node must be an object"
MSG_DESIRED_NOT_OBJECT: Final = "Desired node must be an object"
MSG_REPORTED_NOT_OBJECT: Final = "Reported node must be an object"
MSG_INVALID_VERSION: Final = "Invalid version"
MSG_INVALID_CLIENT_TOKEN: Final = "Invalid clientToken"
MSG_TOO_DEEP: Final = f"JSON contains too many levels of nesting; maximum is {MAX_STATE_DEPTH}"
MSG_INVALID_NODE: Final = "State contains an invalid node"
MSG_VERSION_CONFLICT: Final = "Version conflict"
MSG_TOO_LARGE: Final = "The payload exceeds the maximum size allowed"
MSG_UNSUPPORTED_ENCODING: Final = "Unsupported documented encoding; supported encoding is UTF-8"
MSG_INTERNAL: Final = "Internal service failure"
# The 429 text is UNCONFIRMED ([ERR] describes the condition, not the message).
MSG_TOO_MANY_REQUESTS: Final = "Too many requests"

_OPERATIONS: Final = frozenset({"update", "get", "delete"})
_SECTIONS: Final = ("desired", "reported")
_MISSING: Final[Any] = object()


class ShadowError(Exception):
    """A refused shadow request; becomes a ``/rejected`` document (see `rejected_document`).

    Attributes:
        code: the HTTP status code AWS puts in ``code``.
        message: AWS's verbatim message.
        client_token: the request's ``clientToken`` when it was read before the failure.
    """

    def __init__(self, code: int, message: str, *, client_token: str | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.client_token = client_token

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


@dataclass(frozen=True, slots=True)
class ShadowState:
    """One stored shadow (the classic shadow has ``shadow_name`` None).

    Attributes:
        thing_name: the thing the shadow belongs to.
        shadow_name: the named shadow's name, or None for the classic shadow.
        desired: the desired section, or None when absent.
        reported: the reported section, or None when absent.
        metadata_desired: ``{"timestamp": T}`` per leaf, mirroring ``desired``.
        metadata_reported: the same for ``reported``.
        version: the document version (a tombstone keeps the deleted shadow's).
        deleted_at: epoch seconds of the delete for a tombstone, else None.
    """

    thing_name: str
    shadow_name: str | None
    desired: Mapping[str, Any] | None
    reported: Mapping[str, Any] | None
    metadata_desired: Mapping[str, Any] | None
    metadata_reported: Mapping[str, Any] | None
    version: int
    deleted_at: float | None = None

    @property
    def exists(self) -> bool:
        """False for a tombstone left by a delete."""
        return self.deleted_at is None

    @property
    def display_name(self) -> str:
        """The name AWS puts in its 404 message: the shadow name, or the thing name if classic."""
        return self.shadow_name if self.shadow_name is not None else self.thing_name


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What one accepted ``/update`` produces.

    Attributes:
        state: the new stored shadow.
        accepted: the ``/update/accepted`` payload.
        delta: the ``/update/delta`` payload, or None when no delta is published (decision 3).
        documents: the ``/update/documents`` payload.
    """

    state: ShadowState
    accepted: dict[str, Any]
    delta: dict[str, Any] | None
    documents: dict[str, Any]


# --- requests ---------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity; JSON (and AWS) do not.
    raise ValueError(name)


def _depth(value: Any) -> int:
    """Levels of objects and arrays in ``value`` (a scalar is 0), as [GG] counts them."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _array_has_null(value: Any, in_array: bool = False) -> bool:
    """True if any array in ``value`` holds a null: "Arrays can't have null values" [DOC]."""
    if value is None:
        return in_array
    if isinstance(value, dict):
        return any(_array_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_array_has_null(v, True) for v in value)
    return False


def _utf8_len(text: str) -> int:
    # "surrogatepass": a JSON "\ud800" escape decodes to a lone surrogate; count it, don't crash.
    return len(text.encode("utf-8", "surrogatepass"))


def _client_token(obj: dict[str, Any]) -> str | None:
    token = obj.get("clientToken")
    if token is None:
        return None
    # "A client token that is longer than 64 bytes will cause this response" [ERR].
    if not isinstance(token, str) or _utf8_len(token) > CLIENT_TOKEN_MAX:
        raise ShadowError(400, MSG_INVALID_CLIENT_TOKEN)
    return token


def parse_request(payload: bytes, *, operation: str) -> dict[str, Any]:
    """Validate a request payload published to ``/update``, ``/get`` or ``/delete``.

    Checks run in this order: UTF-8 (415), JSON syntax and a top-level object (400 "Invalid JSON"),
    ``clientToken`` (a string of at most 64 UTF-8 bytes), then for ``update``: ``state`` present
    and an object, only ``desired``/``reported`` inside it, each null or an object, no null in any
    array, nesting depth (decision 1), and ``version`` (a non-negative integer). ``/get`` and
    ``/delete`` accept an empty payload. Other top-level fields are ignored: "JSON content ...
    outside of those sections is ignored" [DIAG]. ``null`` for ``clientToken`` or ``version``
    counts as absent, as in [GG]. The 8 KB size limit applies to the resulting shadow, so
    `apply_update` checks it.

    Args:
        payload: the raw MQTT payload or HTTP body.
        operation: ``"update"``, ``"get"`` or ``"delete"``.

    Returns:
        The request reduced to what the service reads: ``state`` (update only), and
        ``clientToken`` and ``version`` when present.

    Raises:
        ShadowError: the request is refused; ``client_token`` is set once the token was read.
        ValueError: ``operation`` is not one of the three.
    """
    if operation not in _OPERATIONS:
        raise ValueError(f"unknown shadow operation {operation!r}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ShadowError(415, MSG_UNSUPPORTED_ENCODING) from None
    if operation != "update" and not text.strip():
        return {}
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        raise ShadowError(400, MSG_INVALID_JSON) from None
    if not isinstance(obj, dict):
        raise ShadowError(400, MSG_INVALID_JSON)

    token = _client_token(obj)
    request: dict[str, Any] = {}
    if operation == "update":
        try:
            if "state" not in obj:
                raise ShadowError(400, MSG_MISSING_STATE)
            # "Setting the device's shadow state to null does not delete the shadow. The shadow
            # version will be incremented on the next update" (device-shadow-data-flow,
            # "Deleting a shadow"): {"state": null} is an update that empties both sections.
            state = obj["state"]
            request["state"] = None if state is None else _validate_state(state)
            version = obj.get("version")
            if version is not None:
                if isinstance(version, bool) or not isinstance(version, int) or version < 0:
                    raise ShadowError(400, MSG_INVALID_VERSION)
                request["version"] = version
        except ShadowError as error:
            error.client_token = token
            raise
    if token is not None:
        request["clientToken"] = token
    return request


def _validate_state(state: Any) -> dict[str, Any]:
    if state is None:
        raise ShadowError(400, MSG_MISSING_STATE)
    if not isinstance(state, dict):
        raise ShadowError(400, MSG_STATE_NOT_OBJECT)
    if any(key not in _SECTIONS for key in state):
        raise ShadowError(400, MSG_INVALID_NODE)
    for section, message in (
        ("desired", MSG_DESIRED_NOT_OBJECT),
        ("reported", MSG_REPORTED_NOT_OBJECT),
    ):
        if section in state and state[section] is not None and not isinstance(state[section], dict):
            raise ShadowError(400, message)
    if _array_has_null(state):
        # [DOC] says such an array "will be rejected" without giving the message: UNCONFIRMED.
        raise ShadowError(400, MSG_INVALID_JSON)
    if _depth(state) > MAX_STATE_DEPTH:
        raise ShadowError(400, MSG_TOO_DEEP)
    return state


# --- documents --------------------------------------------------------------------------------


def _timestamp(now: float) -> int:
    """AWS's ``timestamp``: epoch seconds, an integer (e.g. 1591057529 in [FLOW])."""
    return math.floor(now)


def _metadata_of(value: Any, ts: int) -> Any:
    """The metadata mirror of ``value``: objects recurse, arrays per element, leaves timestamped."""
    if isinstance(value, dict):
        return {k: _metadata_of(v, ts) for k, v in value.items()}
    if isinstance(value, list):
        return [_metadata_of(v, ts) for v in value]
    return {"timestamp": ts}


def _merge(old: Any, old_meta: Any, patch: Any, ts: int) -> tuple[Any, Any] | None:
    """Merge ``patch`` into ``old``; returns (value, metadata), or None when nothing is left.

    "Updates affect only the fields specified"; "Fields with a value of null are removed";
    arrays are replaced whole [DOC, FLOW]. An object patch merges into an existing object;
    a patch creating an object from nothing but nulls adds nothing ([GG] ``createMergeTree``).
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch), _metadata_of(patch, ts)
    creating = not isinstance(old, dict)
    value: dict[str, Any] = {} if creating else dict(old)
    meta: dict[str, Any] = dict(old_meta) if not creating and isinstance(old_meta, dict) else {}
    for key, sub in patch.items():
        merged = None if sub is None else _merge(value.get(key, _MISSING), meta.get(key), sub, ts)
        if merged is None:
            value.pop(key, None)
            meta.pop(key, None)
        else:
            value[key], meta[key] = merged
    if creating and patch and not value:
        return None
    return value, meta


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0 (numbers compare by value, as [GG]) but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def compute_delta(
    desired: Mapping[str, Any] | None, reported: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The delta state: every desired field that differs from reported, or None if none does.

    [DOC "Delta state"]: desired fields missing from reported are included, reported-only fields
    are not; "When nested objects differ, the delta contains the path all the way to the root";
    "Arrays are treated like values ... the entire desired array is copied into the delta".
    """
    if not desired:
        return None
    result: dict[str, Any] = {}
    for key, want in desired.items():
        have = reported.get(key, _MISSING) if reported is not None else _MISSING
        if isinstance(want, dict) and isinstance(have, dict):
            sub = compute_delta(want, have)
            if sub is not None:
                result[key] = sub
        elif have is _MISSING or not _json_equal(want, have):
            result[key] = copy.deepcopy(want)
    return result or None


def _delta_metadata(delta: Any, metadata: Any) -> Any:
    """The desired metadata for the fields in ``delta``.

    "The delta contains metadata, and its values are equal to the metadata in the desired field"
    [DOC].
    """
    if isinstance(delta, dict) and isinstance(metadata, dict):
        return {k: _delta_metadata(v, metadata.get(k)) for k, v in delta.items()}
    return copy.deepcopy(metadata)


def state_size(state_doc: Mapping[str, Any]) -> int:
    """The size AWS limits to 8 KB: compact UTF-8 JSON of a state node (decision 2).

    Args:
        state_doc: a state node, e.g. ``{"desired": {...}, "reported": {...}}``.

    Returns:
        Its length in bytes, serialized without whitespace and with raw UTF-8.
    """
    text = json.dumps(state_doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return _utf8_len(text)


def _sections(desired: Any, reported: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if desired is not None:
        out["desired"] = copy.deepcopy(desired)
    if reported is not None:
        out["reported"] = copy.deepcopy(reported)
    return out


def _snapshot(state: ShadowState) -> dict[str, Any]:
    """``previous``/``current`` in ``/update/documents`` [DOC]."""
    return {
        "state": _sections(state.desired, state.reported),
        "metadata": _sections(state.metadata_desired, state.metadata_reported),
        "version": state.version,
    }


def _with_token(doc: dict[str, Any], client_token: str | None) -> dict[str, Any]:
    # "clientToken — Present only if a client token was used" [DOC].
    if client_token is not None:
        doc["clientToken"] = client_token
    return doc


def not_found(thing_name: str, shadow_name: str | None) -> ShadowError:
    """404 for a missing shadow; the classic shadow is named by its thing.

    The quotes around the name follow the live service as the SDK sample shows it:
    ``"No shadow exists with name: 'HelloWorld'"`` (aws-iot-device-sdk-python-v2,
    ``samples/service_clients/shadow.md``); [ERR] prints the template without them.
    """
    name = shadow_name if shadow_name is not None else thing_name
    return ShadowError(404, f"No shadow exists with name: '{name}'")


def _base_version(current: ShadowState | None, now: float) -> tuple[int, bool]:
    """(version the next update builds on, whether the shadow exists now). See decision 5."""
    if current is None:
        return 0, False
    if current.exists:
        return current.version, True
    assert current.deleted_at is not None
    if now - current.deleted_at <= TOMBSTONE_SECONDS:
        return current.version, False
    return 0, False


def apply_update(
    current: ShadowState | None,
    request: Mapping[str, Any],
    *,
    now: float,
    thing_name: str,
    shadow_name: str | None,
) -> UpdateResult:
    """Apply a validated ``/update`` request (from `parse_request`) to the stored shadow.

    Args:
        current: the stored shadow, a tombstone, or None if there never was one.
        request: the parsed request: ``state``, optional ``version`` and ``clientToken``.
        now: the current time, epoch seconds.
        thing_name: the thing.
        shadow_name: the named shadow, or None for the classic shadow.

    Returns:
        The new state and the accepted, delta and documents payloads.

    Raises:
        ShadowError: 409 "Version conflict" when ``version`` does not match the current version;
            413 when the resulting state exceeds `STATE_MAX_BYTES`.
    """
    token: str | None = request.get("clientToken")
    ts = _timestamp(now)
    base_version, existed = _base_version(current, now)
    # "the service rejects the request with an HTTP 409 conflict response code if the current
    # version of the state document does not match the version supplied" [FLOW].
    if "version" in request and request["version"] != base_version:
        raise ShadowError(409, MSG_VERSION_CONFLICT, client_token=token)

    live = current if current is not None and existed else None
    state_is_null = request["state"] is None
    req_state: Mapping[str, Any] = dict.fromkeys(_SECTIONS) if state_is_null else request["state"]
    new: dict[str, Any] = {
        "desired": live.desired if live else None,
        "reported": live.reported if live else None,
        "metadata_desired": live.metadata_desired if live else None,
        "metadata_reported": live.metadata_reported if live else None,
    }
    for section in _SECTIONS:
        if section not in req_state:
            continue
        patch = req_state[section]
        merged = None
        if patch is not None:
            merged = _merge(new[section], new[f"metadata_{section}"], patch, ts)
        if merged is None or not merged[0]:
            # "If an update causes the desired or reported properties to become null, it is
            # removed from the document" [DOC]; an emptied section goes too (decision 6).
            new[section] = new[f"metadata_{section}"] = None
        else:
            new[section], new[f"metadata_{section}"] = merged

    if state_size(_sections(new["desired"], new["reported"])) > STATE_MAX_BYTES:
        raise ShadowError(413, MSG_TOO_LARGE, client_token=token)

    state = ShadowState(
        thing_name=thing_name,
        shadow_name=shadow_name,
        version=base_version + 1,
        deleted_at=None,
        **new,
    )
    accepted = _with_token(
        {
            # "contains only fields that were in the request state document" [DOC].
            "state": None if state_is_null else copy.deepcopy(dict(req_state)),
            "metadata": {}
            if state_is_null
            else {k: _metadata_of(v, ts) for k, v in req_state.items()},
            "version": state.version,
            "timestamp": ts,
        },
        token,
    )
    documents: dict[str, Any] = {}
    if live is not None:
        documents["previous"] = _snapshot(live)
    documents["current"] = _snapshot(state)
    documents["timestamp"] = ts
    _with_token(documents, token)

    delta_doc: dict[str, Any] | None = None
    delta = compute_delta(state.desired, state.reported)
    if delta is not None and isinstance(req_state.get("desired"), dict):
        delta_doc = _with_token(
            {
                "version": state.version,
                "timestamp": ts,
                "state": delta,
                "metadata": _delta_metadata(delta, state.metadata_desired),
            },
            token,
        )
    return UpdateResult(state=state, accepted=accepted, delta=delta_doc, documents=documents)


def _require_live(
    state: ShadowState | None, thing_name: str | None, shadow_name: str | None, token: str | None
) -> ShadowState:
    if state is not None and state.exists:
        return state
    if state is not None:
        thing_name, shadow_name = state.thing_name, state.shadow_name
    if thing_name is None:
        raise ValueError("thing_name is needed to name a shadow that does not exist")
    error = not_found(thing_name, shadow_name)
    error.client_token = token
    raise error


def get_document(
    state: ShadowState | None,
    *,
    now: float,
    client_token: str | None = None,
    thing_name: str | None = None,
    shadow_name: str | None = None,
) -> dict[str, Any]:
    """The ``/get/accepted`` payload (also the GetThingShadow body).

    Args:
        state: the stored shadow, a tombstone, or None.
        now: the current time, epoch seconds.
        client_token: the request's token, echoed when given.
        thing_name: names the missing shadow in the 404 when ``state`` is None.
        shadow_name: likewise, for a named shadow.

    Returns:
        ``state`` (``desired``, ``reported``, and ``delta`` when they differ), ``metadata``
        (``desired``, ``reported``), ``version``, ``timestamp`` and ``clientToken`` if given.

    Raises:
        ShadowError: 404 when the shadow does not exist or was deleted.
        ValueError: ``state`` is None and no ``thing_name`` was given.
    """
    live = _require_live(state, thing_name, shadow_name, client_token)
    doc_state = _sections(live.desired, live.reported)
    delta = compute_delta(live.desired, live.reported)
    if delta is not None:
        doc_state["delta"] = delta
    return _with_token(
        {
            "state": doc_state,
            "metadata": _sections(live.metadata_desired, live.metadata_reported),
            "version": live.version,
            "timestamp": _timestamp(now),
        },
        client_token,
    )


def delete(
    state: ShadowState | None,
    *,
    now: float,
    client_token: str | None = None,
    thing_name: str | None = None,
    shadow_name: str | None = None,
) -> tuple[ShadowState, dict[str, Any]]:
    """Delete a shadow, leaving a tombstone that keeps its version for 48 hours.

    "deleting a shadow does not reset its version number to 0" [FLOW]; the accepted document is
    ``{"version": 4, "timestamp": 1591057529}`` [FLOW], carrying the deleted shadow's version.

    Args:
        state: the stored shadow, a tombstone, or None.
        now: the current time, epoch seconds.
        client_token: the request's token, echoed when given.
        thing_name: names the missing shadow in the 404 when ``state`` is None.
        shadow_name: likewise, for a named shadow.

    Returns:
        (the tombstone to store, the ``/delete/accepted`` payload).

    Raises:
        ShadowError: 404 when the shadow does not exist or was already deleted.
        ValueError: ``state`` is None and no ``thing_name`` was given.
    """
    live = _require_live(state, thing_name, shadow_name, client_token)
    tombstone = replace(
        live,
        desired=None,
        reported=None,
        metadata_desired=None,
        metadata_reported=None,
        deleted_at=now,
    )
    payload = _with_token({"version": live.version, "timestamp": _timestamp(now)}, client_token)
    return tombstone, payload


def rejected_document(
    error: ShadowError, *, now: float, client_token: str | None = None
) -> dict[str, Any]:
    """The ``/rejected`` payload: ``{"code", "message", "timestamp", "clientToken"?}`` [DOC].

    Args:
        error: the refusal.
        now: the current time, epoch seconds.
        client_token: the request's token; defaults to the one the error carries.

    Returns:
        The error response document.
    """
    token = client_token if client_token is not None else error.client_token
    return _with_token(
        {"code": error.code, "message": error.message, "timestamp": _timestamp(now)}, token
    )
