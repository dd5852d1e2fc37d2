"""Topic validation, AWS topic matching and the subscription index (aws_iot_mock/mqtt/topics.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_iot_mock.aws.limits import SHARE_NAME_MAX_CHARS, TOPIC_MAX_BYTES, TOPIC_MAX_SLASHES
from aws_iot_mock.mqtt.topics import (
    MATCH_CACHE_TOPICS,
    Match,
    SharedFilter,
    SubscriptionIndex,
    TopicError,
    is_wildcard,
    parse_shared,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)

# --- matching ---------------------------------------------------------------------------------

MATCH_CASES = [
    # AWS's own example (developer guide, "MQTT"): '#' does not match the parent level.
    ("sensor/#", "sensor", False),
    ("sensor/#", "sensor/", True),
    ("sensor/#", "sensor/temperature", True),
    ("sensor/#", "sensor/temperature/room1", True),
    ("sensor/#", "sensors/temperature", False),
    ("sensor/#", "Sensor/temperature", False),  # case sensitive
    # '#' alone matches every non-'$' topic.
    ("#", "a", True),
    ("#", "/", True),
    ("#", "/a", True),
    ("#", "a/b/c/d/e/f/g/h", True),
    ("#", "$SYS/x", False),
    ("#", "$aws/things/x/shadow/update/accepted", False),
    ("a/+/#", "a/b", False),  # '#' needs one more level
    ("a/+/#", "a/b/", True),
    ("a/+/#", "a/b/c/d", True),
    ("a/#", "a", False),
    ("+/#", "a/b", True),
    ("+/#", "a", False),
    # '+' matches exactly one level, empty levels included.
    ("a/+/c", "a/b/c", True),
    ("a/+/c", "a//c", True),
    ("a/+/c", "a/c", False),
    ("a/+/c", "a/b/b/c", False),
    ("a/+", "a/", True),
    ("a/+", "a", False),
    ("a/+", "a/b/c", False),
    ("+", "a", True),
    ("+", "", True),
    ("+", "a/b", False),
    ("+/+", "/", True),
    ("/+", "/a", True),
    ("+/a", "/a", True),
    ("+", "$SYS", False),
    ("+/x", "$SYS/x", False),
    ("+/+/+/shadow/#", "$aws/things/x/shadow/update", False),
    # Literal levels, '$' filters.
    ("a/b", "a/b", True),
    ("a/b", "a/b/", False),
    ("a/b", "a", False),
    ("a//b", "a//b", True),
    ("$aws/things/+/shadow/#", "$aws/things/x/shadow/update/accepted", True),
    ("$aws/things/+/shadow/#", "$aws/things/x/shadow", False),
    ("$aws/things/x/shadow/update/accepted", "$aws/things/x/shadow/update/accepted", True),
    ("$aws/+/x", "$aws/things/x", True),
    ("$SYS/#", "$SYS/x", True),
    # Shared filters match as their TopicFilter.
    ("$share/g/sensor/#", "sensor/t", True),
    ("$share/g/sensor/#", "sensor", False),
    ("$share/g/#", "$aws/events/x", False),
    ("$share/g/+/a", "x/a", True),
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCH_CASES)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert validate_topic_filter(topic_filter) is None
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCH_CASES)
def test_index_match_agrees_with_table(topic_filter: str, topic: str, expected: bool) -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    index.add("c1", topic_filter, 1)
    result = index.match(topic)
    shared = parse_shared(topic_filter)
    if shared is None:
        assert result.shared == []
        assert result.direct == ([("c1", topic_filter, 1)] if expected else [])
    else:
        assert result.direct == []
        expected_shared = [(shared.group, shared.topic_filter, [("c1", 1)])]
        assert result.shared == (expected_shared if expected else [])


# --- validation: names ------------------------------------------------------------------------


def _slashes(count: int) -> str:
    return "/".join(["l"] * (count + 1))


VALID_NAMES = [
    "a",
    "/",
    "sensor/",
    "a//b",
    "sensor/temperature/room1",
    "$aws/things/x/shadow/update",
    "ünïcödé/ツ",
    "a" * TOPIC_MAX_BYTES,
    "é" * (TOPIC_MAX_BYTES // 2),  # 2 bytes each: exactly 256 bytes
    _slashes(TOPIC_MAX_SLASHES),
    "/" * TOPIC_MAX_SLASHES,
    # Basic Ingest: "$aws/rules/<rule>/" is excluded from both limits.
    "$aws/rules/my_rule/" + _slashes(TOPIC_MAX_SLASHES),
    "$aws/rules/my_rule/" + "a" * TOPIC_MAX_BYTES,
    "$aws/rules/my_rule",
    "$aws/rules/my_rule/",
]

INVALID_NAMES = [
    ("", "empty"),
    ("a\0b", "U+0000"),
    ("a/+", "wildcard"),
    ("a/#", "wildcard"),
    ("#", "wildcard"),
    ("a+b", "wildcard"),
    ("a/b#", "wildcard"),
    ("a" * (TOPIC_MAX_BYTES + 1), "257 bytes"),
    ("é" * (TOPIC_MAX_BYTES // 2) + "a", "257 bytes"),  # 129 characters, 257 bytes
    ("ツ" * 86, "258 bytes"),  # 86 characters, 3 bytes each
    (_slashes(TOPIC_MAX_SLASHES + 1), "8 forward slashes"),
    ("/" * (TOPIC_MAX_SLASHES + 1), "8 forward slashes"),
    ("$aws/rules/my_rule/" + _slashes(TOPIC_MAX_SLASHES + 1), "8 forward slashes"),
    ("$aws/rules/my_rule/" + "a" * (TOPIC_MAX_BYTES + 1), "257 bytes"),
    # Without the Basic Ingest prefix, the same depth is too much.
    ("$aws/things/" + _slashes(TOPIC_MAX_SLASHES - 1), "8 forward slashes"),
    ("a\ud800b", "not valid UTF-8"),
]


@pytest.mark.parametrize("topic", VALID_NAMES)
def test_valid_topic_names(topic: str) -> None:
    assert validate_topic_name(topic) is None


@pytest.mark.parametrize(("topic", "reason"), INVALID_NAMES)
def test_invalid_topic_names(topic: str, reason: str) -> None:
    error = validate_topic_name(topic)
    assert isinstance(error, TopicError)
    assert reason in error.reason


# --- validation: filters ----------------------------------------------------------------------

VALID_FILTERS = [
    "a",
    "#",
    "+",
    "/",
    "+/+",
    "/#",
    "a/#",
    "a/+/c",
    "+/#",
    "a//b",
    "$aws/things/+/shadow/#",
    "$share",  # not a shared filter: no '/' after it
    "$sharegroup/a",
    "a" * TOPIC_MAX_BYTES,
    "é" * (TOPIC_MAX_BYTES // 2),
    _slashes(TOPIC_MAX_SLASHES),
    "/".join(["+"] * (TOPIC_MAX_SLASHES + 1)),
    "/".join(["+"] * TOPIC_MAX_SLASHES) + "/#",
    # Shared subscriptions: limits apply to the TopicFilter only.
    "$share/g/a",
    "$share/g/#",
    "$share/g/+/x",
    "$share/g/$aws/things/+/shadow/#",
    "$share/" + "g" * SHARE_NAME_MAX_CHARS + "/a",
    "$share/" + "é" * SHARE_NAME_MAX_CHARS + "/a",  # characters, not bytes
    "$share/g/" + _slashes(TOPIC_MAX_SLASHES),
    "$share/g/" + "a" * TOPIC_MAX_BYTES,
    "$share/g/" + "é" * (TOPIC_MAX_BYTES // 2),
    "$share/g/a//",
]

INVALID_FILTERS = [
    ("", "empty"),
    ("a\0", "U+0000"),
    ("a#", "'#'"),
    ("#/a", "'#'"),
    ("a/#/b", "'#'"),
    ("a/b#", "'#'"),
    ("##", "'#'"),
    ("a/+b", "'+'"),
    ("a+/b", "'+'"),
    ("++", "'+'"),
    ("a" * (TOPIC_MAX_BYTES + 1), "257 bytes"),
    ("é" * (TOPIC_MAX_BYTES // 2) + "a", "257 bytes"),
    (_slashes(TOPIC_MAX_SLASHES + 1), "8 forward slashes"),
    ("/".join(["+"] * (TOPIC_MAX_SLASHES + 2)), "8 forward slashes"),
    ("a\udfffb", "not valid UTF-8"),
    # Basic Ingest exclusion is for publishing only.
    ("$aws/rules/r/" + _slashes(TOPIC_MAX_SLASHES - 2), "8 forward slashes"),
    # Shared subscriptions.
    ("$share/", "ShareName is empty"),
    ("$share//a", "ShareName is empty"),
    ("$share/g", "no TopicFilter"),
    ("$share/g/", "TopicFilter is empty"),
    ("$share/+/a", "ShareName contains"),
    ("$share/#/a", "ShareName contains"),
    ("$share/g+/a", "ShareName contains"),
    ("$share/" + "g" * (SHARE_NAME_MAX_CHARS + 1) + "/a", "129 characters"),
    ("$share/g/a#", "'#'"),
    ("$share/g/+x", "'+'"),
    ("$share/g/" + _slashes(TOPIC_MAX_SLASHES + 1), "8 forward slashes"),
    ("$share/g/" + "a" * (TOPIC_MAX_BYTES + 1), "257 bytes"),
    ("$share/g/$share/h/a", "itself a shared"),
    ("$share/g\0/a", "U+0000"),
    ("$share/\ud800/a", "not valid UTF-8"),
]


@pytest.mark.parametrize("topic_filter", VALID_FILTERS)
def test_valid_topic_filters(topic_filter: str) -> None:
    assert validate_topic_filter(topic_filter) is None


@pytest.mark.parametrize(("topic_filter", "reason"), INVALID_FILTERS)
def test_invalid_topic_filters(topic_filter: str, reason: str) -> None:
    error = validate_topic_filter(topic_filter)
    assert isinstance(error, TopicError)
    assert reason in error.reason


def test_parse_shared_and_is_wildcard() -> None:
    assert parse_shared("$share/g/a/+") == SharedFilter("g", "a/+")
    assert parse_shared("$share/g//") == SharedFilter("g", "/")
    assert parse_shared("a/b") is None
    assert parse_shared("$share") is None
    assert parse_shared("$sharex/g/a") is None
    assert is_wildcard("a/+/b")
    assert is_wildcard("#")
    assert is_wildcard("$share/g/a/#")
    assert not is_wildcard("a/b")
    assert not is_wildcard("$share/g/a")


# --- SubscriptionIndex ------------------------------------------------------------------------


def _direct(match: Match[int]) -> set[tuple[str, str, int]]:
    return set(match.direct)


def test_index_add_replace_remove() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    assert len(index) == 0
    assert index.match("a/b") == Match([], [])
    assert index.add("c1", "a/b", 0) is True
    assert index.add("c1", "a/+", 1) is True
    assert index.add("c2", "a/b", 1) is True
    assert index.add("c1", "a/b", 1) is False  # replaced
    assert len(index) == 3
    assert index.subscriptions_of("c1") == {"a/b": 1, "a/+": 1}
    assert _direct(index.match("a/b")) == {("c1", "a/b", 1), ("c1", "a/+", 1), ("c2", "a/b", 1)}
    # One subscriber with two matching filters appears once per filter.
    assert sorted(s for s, _, _ in index.match("a/b").direct) == ["c1", "c1", "c2"]
    assert _direct(index.match("a/c")) == {("c1", "a/+", 1)}
    assert index.match("a").direct == []
    assert index.remove("c1", "a/b") is True
    assert index.remove("c1", "a/b") is False
    assert index.remove("c3", "a/b") is False
    assert index.remove("c2", "a/+") is False
    assert len(index) == 2
    assert _direct(index.match("a/b")) == {("c1", "a/+", 1), ("c2", "a/b", 1)}
    assert index.remove_subscriber("c1") == 1
    assert index.remove_subscriber("c1") == 0
    assert index.subscriptions_of("c1") == {}
    assert index.remove("c2", "a/b") is True
    assert len(index) == 0
    assert index.match("a/b") == Match([], [])


def test_index_prunes_empty_nodes() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    for topic_filter in ("a/b/c", "a/+/#", "#", "+", "a/b"):
        index.add("c1", topic_filter, 0)
    assert index.remove_subscriber("c1") == 5
    root = index._root
    assert root.is_empty()


def test_index_subscriptions_of_is_a_copy() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    index.add("c1", "a", 0)
    index.subscriptions_of("c1")["b"] = 1
    assert index.subscriptions_of("c1") == {"a": 0}


def test_index_rejects_invalid_filters() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    with pytest.raises(ValueError, match="'#'"):
        index.add("c1", "a/#/b", 0)
    with pytest.raises(ValueError, match="ShareName"):
        index.add("c1", "$share//a", 0)
    assert len(index) == 0


def test_index_cached_entries_follow_changes() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("c1", "a", "v1")
    assert index.match("a").direct == [("c1", "a", "v1")]
    index.add("c1", "a", "v2")
    assert index.match("a").direct == [("c1", "a", "v2")]
    index.add("c2", "a", "v3")
    assert index.match("a").direct == [("c1", "a", "v2"), ("c2", "a", "v3")]
    assert index.match("a") is index.match("a")  # remembered until the next change
    index.remove("c1", "a")
    assert index.match("a").direct == [("c2", "a", "v3")]
    index.remove_subscriber("c2")
    assert index.match("a") == Match([], [])


def test_index_remembered_matches_are_bounded_and_stay_right() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    index.add("c1", "t/+", 1)
    index.add("g1", "$share/g/t/#", 2)
    topics = [f"t/{n}" for n in range(MATCH_CACHE_TOPICS + 10)]
    for topic in topics:
        assert index.match(topic).direct == [("c1", "t/+", 1)]
        assert index.match(topic).shared == [("g", "t/#", [("g1", 2)])]
    assert len(index._cache) <= MATCH_CACHE_TOPICS
    index.add("c2", "t/1", 0)
    assert _direct(index.match("t/1")) == {("c1", "t/+", 1), ("c2", "t/1", 0)}


def test_index_shared_groups() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    assert index.add("c1", "$share/g1/sensor/+", 0) is True
    assert index.add("c2", "$share/g1/sensor/+", 1) is True
    assert index.add("c3", "$share/g2/sensor/+", 1) is True
    assert index.add("c1", "$share/g1/sensor/#", 1) is True
    assert index.add("c1", "sensor/+", 1) is True  # a different key from the shared one
    assert index.add("c2", "$share/g1/sensor/+", 0) is False  # replaced
    assert len(index) == 5
    assert index.subscriptions_of("c1") == {
        "$share/g1/sensor/+": 0,
        "$share/g1/sensor/#": 1,
        "sensor/+": 1,
    }
    result = index.match("sensor/t")
    assert result.direct == [("c1", "sensor/+", 1)]
    assert sorted(result.shared) == [
        ("g1", "sensor/#", [("c1", 1)]),
        ("g1", "sensor/+", [("c1", 0), ("c2", 0)]),
        ("g2", "sensor/+", [("c3", 1)]),
    ]
    members = next(m for g, f, m in result.shared if (g, f) == ("g1", "sensor/+"))
    members.clear()  # a fresh list per match
    assert len(index.match("sensor/t").shared) == 3
    assert index.match("sensor").shared == []
    assert index.remove("c2", "$share/g1/sensor/+") is True
    assert index.remove("c2", "$share/g1/sensor/+") is False
    assert index.remove_subscriber("c3") == 1
    assert sorted(index.match("sensor/t").shared) == [
        ("g1", "sensor/#", [("c1", 1)]),
        ("g1", "sensor/+", [("c1", 0)]),
    ]
    assert index.remove_subscriber("c1") == 3
    assert len(index) == 0
    assert index._root.is_empty()


def test_index_dollar_topics() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    index.add("all", "#", 0)
    index.add("plus", "+/things/+/shadow/#", 0)
    index.add("shadow", "$aws/things/+/shadow/#", 0)
    index.add("shared", "$share/g/#", 0)
    result = index.match("$aws/things/x/shadow/update/accepted")
    assert result.direct == [("shadow", "$aws/things/+/shadow/#", 0)]
    assert result.shared == []
    result = index.match("aws/things/x/shadow/update")
    assert {s for s, _, _ in result.direct} == {"all", "plus"}
    assert result.shared == [("g", "#", [("shared", 0)])]


def test_index_fan_out() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    for n in range(1000):
        index.add(f"d{n}", f"devices/{n}/cmd", n)
    for n in range(100):
        index.add(f"w{n}", "devices/+/cmd", n)
        index.add(f"h{n}", "#", n)
    result = index.match("devices/42/cmd")
    assert len(result.direct) == 201
    assert ("d42", "devices/42/cmd", 42) in result.direct
    assert len(index) == 1200


# --- property: the trie agrees with the reference matcher -------------------------------------

_FILTER_LEVELS = st.sampled_from(["a", "b", "", "$x", "+", "#"])
_TOPIC_LEVELS = st.sampled_from(["a", "b", "", "$x"])
_FILTERS = st.builds(
    lambda levels, group: (f"$share/{group}/" if group else "") + "/".join(levels),
    st.lists(_FILTER_LEVELS, min_size=1, max_size=4),
    st.sampled_from([None, None, "g1", "g2"]),
).filter(lambda f: validate_topic_filter(f) is None)
_TOPICS = st.builds("/".join, st.lists(_TOPIC_LEVELS, min_size=1, max_size=5)).filter(
    lambda t: validate_topic_name(t) is None
)


@settings(max_examples=300, deadline=None)
@given(
    subscriptions=st.lists(
        st.tuples(st.sampled_from(["c1", "c2", "c3"]), _FILTERS), min_size=0, max_size=15
    ),
    removals=st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), _FILTERS), max_size=5),
    topics=st.lists(_TOPICS, min_size=1, max_size=10),
)
def test_index_matches_reference(
    subscriptions: list[tuple[str, str]],
    removals: list[tuple[str, str]],
    topics: list[str],
) -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    live: dict[tuple[str, str], int] = {}
    for value, (subscriber, topic_filter) in enumerate(subscriptions):
        assert index.add(subscriber, topic_filter, value) is (
            (subscriber, topic_filter) not in live
        )
        live[(subscriber, topic_filter)] = value
    for subscriber, topic_filter in removals:
        assert index.remove(subscriber, topic_filter) is ((subscriber, topic_filter) in live)
        live.pop((subscriber, topic_filter), None)
    assert len(index) == len(live)
    for topic in topics:
        expected = {
            (subscriber, topic_filter, value)
            for (subscriber, topic_filter), value in live.items()
            if topic_matches(topic_filter, topic)
        }
        result = index.match(topic)
        got = list(result.direct)
        for group, topic_filter, members in result.shared:
            got.extend((s, f"$share/{group}/{topic_filter}", v) for s, v in members)
        assert len(got) == len(set(got))
        assert set(got) == expected


def test_a_device_topic_that_matches_nothing_is_remembered_until_someone_subscribes() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    index.add("other", "elsewhere/#", 0)
    first = index.match("dt/telemetry")
    assert first.direct == [] and first.shared == []
    assert index.match("dt/telemetry") is first  # remembered, not walked again
    index.add("app", "dt/+", 1)
    assert index.match("dt/telemetry").direct == [("app", "dt/+", 1)]


def test_an_event_topic_that_matches_nothing_is_not_remembered() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    index.add("other", "elsewhere/#", 0)
    for client in range(100):
        assert index.match(f"$aws/events/presence/connected/c{client}").direct == []
    assert len(index._cache) == 0
    index.add("watcher", "$aws/events/presence/connected/+", 1)
    assert index.match("$aws/events/presence/connected/c7").direct == [
        ("watcher", "$aws/events/presence/connected/+", 1)
    ]
