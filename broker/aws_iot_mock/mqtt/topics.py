"""Topic names, topic filters and the subscription index, with AWS IoT Core's semantics.

Sources (the AWS IoT developer guide and the MQTT specifications):

* AWS developer guide, "MQTT topics" (``topics.md``): names and filters are UTF-8 and case
  sensitive; "Publishing clients can't use wildcard characters in the topic names they publish";
  ``#`` must be the last character and alone in its level; ``+`` must be alone in its level.
* AWS quotas: "Topic size ... limited to 256 bytes of UTF-8 encoded characters. This excludes the
  first three mandatory segments for Basic Ingest topics ($AWS/rules/rule-name/)"; "A topic in a
  publish or subscribe request is limited to 7 forward slashes (/)", with the same exclusion.
* AWS developer guide, "MQTT" (``mqtt``): "a subscription to the topic ``sensor/#`` receives
  messages published to the topics ``sensor/``, ``sensor/temperature``,
  ``sensor/temperature/room1``, but not messages published to ``sensor``". This deviates from
  MQTT 3.1.1 4.7.1.2 / MQTT 5 4.7.1.2, where ``#`` also matches the parent level; we copy AWS.
* Shared subscriptions, ``$share/{ShareName}/{TopicFilter}`` (MQTT 5 4.8.2; AWS accepts them on
  MQTT 3.1.1 too): ShareName is non-empty, has no ``/``, ``+`` or ``#`` and at most 128 characters;
  TopicFilter is a valid filter with its own limits, and "The two required slashes ... are not
  included in the [slash] limit".
* MQTT 4.7.2: filters starting with a wildcard do not match topic names starting with ``$``.
* AWS "Reserved topics": "Topics that begin with a dollar sign ($) are reserved ... you can't
  create new topics that begin with a dollar sign"; ``$aws/events/...`` is subscribe-only; "You
  can't publish to a reserved topic with the RETAIN flag set".

Pure: no I/O, no logging, no asyncio. Topic strings are Python ``str`` already decoded from
UTF-8 by the packet layer; sizes are counted in UTF-8 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar, cast

from aws_iot_mock.aws.limits import SHARE_NAME_MAX_CHARS, TOPIC_MAX_BYTES, TOPIC_MAX_SLASHES

__all__ = [
    "MATCH_CACHE_ENTRIES",
    "MATCH_CACHE_TOPICS",
    "Match",
    "SharedFilter",
    "SubscriptionIndex",
    "TopicError",
    "is_wildcard",
    "parse_shared",
    "topic_matches",
    "validate_topic_filter",
    "validate_topic_name",
]

T = TypeVar("T")

_SHARE_PREFIX = "$share/"
# Bounds of SubscriptionIndex's memory of recent matches (topics; matched subscriptions in all).
MATCH_CACHE_TOPICS = 4096
MATCH_CACHE_ENTRIES = 65536
# Basic Ingest: "$aws/rules/<rule-name>/..."; the three leading segments are excluded from the
# size and slash limits. AWS writes the prefix lowercase in topics (topics are case sensitive).
_BASIC_INGEST_PREFIX = "$aws/rules/"


@dataclass(frozen=True, slots=True)
class TopicError:
    """Why a topic name or filter is refused.

    Attributes:
        reason: a human sentence for logs (e.g. "topic has 8 forward slashes; at most 7").
    """

    reason: str


@dataclass(frozen=True, slots=True)
class SharedFilter:
    """The parts of ``$share/{group}/{topic_filter}``.

    Attributes:
        group: the ShareName.
        topic_filter: the TopicFilter the group subscribes to (never itself a ``$share/`` filter).
    """

    group: str
    topic_filter: str


def _utf8_size(text: str) -> int | None:
    """UTF-8 byte length of ``text``, or None if it holds lone surrogates (not valid UTF-8)."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _check_common(text: str, what: str) -> TopicError | None:
    """Checks shared by names and filters on the part the limits apply to (``text``)."""
    size = _utf8_size(text)
    if size is None:
        return TopicError(f"{what} is not valid UTF-8")
    if size > TOPIC_MAX_BYTES:
        return TopicError(f"{what} is {size} bytes of UTF-8; at most {TOPIC_MAX_BYTES}")
    slashes = text.count("/")
    if slashes > TOPIC_MAX_SLASHES:
        return TopicError(f"{what} has {slashes} forward slashes; at most {TOPIC_MAX_SLASHES}")
    return None


def _limited_part(topic: str) -> str:
    """The part of a topic name that the size and slash limits apply to.

    For Basic Ingest topics ``$aws/rules/<rule-name>/<rest>`` that is ``<rest>`` (AWS quotas:
    "This excludes the first three mandatory segments for Basic Ingest topics"); for every other
    topic (including ``$aws/rules/<rule-name>`` with nothing after it) the whole topic.
    """
    if topic.startswith(_BASIC_INGEST_PREFIX):
        end = topic.find("/", len(_BASIC_INGEST_PREFIX))
        if end != -1:
            return topic[end + 1 :]
    return topic


def validate_topic_name(topic: str) -> TopicError | None:
    """Check a topic name a client publishes to (PUBLISH, will topic, HTTP publish).

    Refused: the empty string (MQTT 4.7.3: at least one character), U+0000 (MQTT 4.7.3), lone
    surrogates (not UTF-8), ``+`` or ``#`` anywhere (AWS: "Publishing clients can't use wildcard
    characters"; MQTT 4.7.1), more than 256 bytes of UTF-8 or more than 7 ``/`` (AWS quotas;
    for ``$aws/rules/<rule-name>/...`` only the part after the third ``/`` counts).

    Reserved-topic rules (``$`` topics, retain) are not checked here; see
    ``aws_iot_mock.core.services.ServiceTable.publish_refusal``.

    Returns:
        None when valid, else a :class:`TopicError`.
    """
    if not topic:
        return TopicError("topic name is empty")
    if "\0" in topic:
        return TopicError("topic name contains U+0000")
    if "+" in topic or "#" in topic:
        return TopicError("topic name contains a wildcard character ('+' or '#')")
    return _check_common(_limited_part(topic), "topic name")


def _validate_plain_filter(topic_filter: str, what: str) -> TopicError | None:
    """Validate a non-shared filter (no ``$share/`` prefix handling)."""
    if not topic_filter:
        return TopicError(f"{what} is empty")
    if "+" in topic_filter or "#" in topic_filter:
        levels = topic_filter.split("/")
        last = len(levels) - 1
        for index, level in enumerate(levels):
            if "#" in level and (level != "#" or index != last):
                # MQTT 4.7.1.2; AWS: "#" must be the last character and alone in its level.
                return TopicError(f"{what}: '#' must be alone in the last level")
            if "+" in level and level != "+":
                # MQTT 4.7.1.3; AWS: "+" must be alone in its level.
                return TopicError(f"{what}: '+' must be alone in its level")
    return _check_common(topic_filter, what)


def validate_topic_filter(topic_filter: str) -> TopicError | None:
    """Check a topic filter a client subscribes or unsubscribes with, including ``$share/``.

    Refused: the empty string, U+0000, lone surrogates, ``#`` not alone in the last level, ``+``
    not alone in its level, more than 256 bytes of UTF-8 or more than 7 ``/``.

    Shared ``$share/{ShareName}/{TopicFilter}``: ShareName non-empty, without ``/``, ``+``,
    ``#``, at most 128 characters; TopicFilter non-empty and valid as above, with the size and
    slash limits applied to TopicFilter alone (the two required slashes are not counted). A
    TopicFilter that is itself a ``$share/`` filter is refused (no nesting).

    The Basic Ingest exclusion applies to publishing only (``$aws/rules/...`` is publish-only),
    so filters are always measured whole. Whether a client may subscribe to a given reserved
    topic is the authorizer's business, not this function's.

    Returns:
        None when valid, else a :class:`TopicError`.
    """
    if "\0" in topic_filter:
        return TopicError("topic filter contains U+0000")
    if not topic_filter.startswith(_SHARE_PREFIX):
        return _validate_plain_filter(topic_filter, "topic filter")
    group, sep, inner = topic_filter[len(_SHARE_PREFIX) :].partition("/")
    if not group:
        return TopicError("shared subscription ShareName is empty")
    if not sep:
        return TopicError("shared subscription has no TopicFilter after the ShareName")
    if "+" in group or "#" in group:
        return TopicError("shared subscription ShareName contains '+' or '#'")
    if len(group) > SHARE_NAME_MAX_CHARS:
        return TopicError(
            f"shared subscription ShareName has {len(group)} characters; "
            f"at most {SHARE_NAME_MAX_CHARS}"
        )
    if _utf8_size(group) is None:
        return TopicError("shared subscription ShareName is not valid UTF-8")
    if inner.startswith(_SHARE_PREFIX):
        return TopicError("shared subscription TopicFilter is itself a shared subscription")
    return _validate_plain_filter(inner, "shared subscription TopicFilter")


def parse_shared(topic_filter: str) -> SharedFilter | None:
    """Split a ``$share/{group}/{filter}`` filter; None if ``topic_filter`` is not shared.

    Assumes ``topic_filter`` passed :func:`validate_topic_filter`; a ``$share/`` string without
    a second ``/`` (invalid) also yields None.
    """
    if not topic_filter.startswith(_SHARE_PREFIX):
        return None
    group, sep, inner = topic_filter[len(_SHARE_PREFIX) :].partition("/")
    if not sep:
        return None
    return SharedFilter(group, inner)


def is_wildcard(topic_filter: str) -> bool:
    """True if the (valid) filter has a ``+`` or ``#`` level.

    AWS: "Subscription to topic filters that contain a wildcard character can't receive retained
    messages." ShareNames cannot hold wildcards, so ``$share/...`` filters need no special case.
    """
    return "+" in topic_filter or "#" in topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether a valid filter matches a valid topic name, by AWS IoT's rules.

    The reference implementation (a straight level-by-level comparison); the broker routes with
    :class:`SubscriptionIndex`, which must agree with it.

    * ``+`` matches exactly one level, which may be empty (``a/+/c`` matches ``a//c``).
    * ``#`` matches one or more remaining levels, never zero: ``sensor/#`` matches ``sensor/``
      and ``sensor/a/b`` but not ``sensor`` (AWS deviation from MQTT 4.7.1.2). ``#`` alone
      matches every topic not starting with ``$``.
    * A filter whose first level is ``+`` or ``#`` does not match a topic starting with ``$``
      (MQTT 4.7.2); a filter starting with a literal ``$`` level can.
    * ``$share/{group}/{filter}`` matches as ``{filter}``.
    """
    shared = parse_shared(topic_filter)
    if shared is not None:
        topic_filter = shared.topic_filter
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return len(topic_levels) > index  # at least one level left for '#'
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(topic_levels) == len(filter_levels)


@dataclass(slots=True)
class Match(Generic[T]):
    """The subscriptions a topic name matches.

    Attributes:
        direct: ``(subscriber, filter, value)`` for each matching non-shared subscription, the
            filter as given to :meth:`SubscriptionIndex.add`. A subscriber with several matching
            filters appears once per filter; the broker dedups (MQTT 3.3.4 lets it deliver once
            with the maximum QoS).
        shared: ``(group, filter, members)`` per matching shared subscription, where ``filter``
            is the TopicFilter part (without ``$share/{group}/``) and ``members`` is a list
            of ``(subscriber, value)`` in first-subscribed order. The broker picks one member per
            ``(group, filter)``.
    """

    direct: list[tuple[str, str, T]] = field(default_factory=list)
    shared: list[tuple[str, str, list[tuple[str, T]]]] = field(default_factory=list)


# What ``SubscriptionIndex.match`` returns when nothing matches (shared: callers never change it).
_NO_MATCH: Final[Match[Any]] = Match([], [])


class _Node(Generic[T]):
    """One trie level. Literal children by level text; ``+`` and ``#`` children apart."""

    __slots__ = ("children", "entries", "filter", "hash", "plus", "shared", "subs")

    def __init__(self, topic_filter: str) -> None:
        self.filter = topic_filter  # the (non-shared) filter this node ends
        self.children: dict[str, _Node[T]] = {}
        self.plus: _Node[T] | None = None
        self.hash: _Node[T] | None = None
        self.subs: dict[str, T] = {}  # subscriber -> value, non-shared
        self.shared: dict[str, dict[str, T]] = {}  # group -> subscriber -> value
        # Cached (subscriber, filter, value) tuples for ``subs``; None when stale.
        self.entries: list[tuple[str, str, T]] | None = None

    def is_empty(self) -> bool:
        return not (self.subs or self.shared or self.children or self.plus or self.hash)

    def child(self, level: str) -> _Node[T] | None:
        """The child for a filter level ('+', '#' or literal), if any."""
        if level == "+":
            return self.plus
        if level == "#":
            return self.hash
        return self.children.get(level)

    def make_child(self, level: str, at_root: bool) -> _Node[T]:
        """The child for a filter level, created if missing."""
        child = self.child(level)
        if child is None:
            child = _Node(level if at_root else f"{self.filter}/{level}")
            if level == "+":
                self.plus = child
            elif level == "#":
                self.hash = child
            else:
                self.children[level] = child
        return child

    def drop_child(self, level: str) -> None:
        """Forget the child for a filter level."""
        if level == "+":
            self.plus = None
        elif level == "#":
            self.hash = None
        else:
            del self.children[level]

    def collect(
        self, direct: list[tuple[str, str, T]], shared: list[tuple[str, str, list[tuple[str, T]]]]
    ) -> None:
        if self.subs:
            entries = self.entries
            if entries is None:
                name = self.filter
                entries = self.entries = [(sub, name, value) for sub, value in self.subs.items()]
            direct.extend(entries)
        if self.shared:
            name = self.filter
            shared.extend(
                (group, name, list(members.items())) for group, members in self.shared.items()
            )


class SubscriptionIndex(Generic[T]):
    """Trie of subscriptions. Each (subscriber, filter) pair holds a value (e.g. options).

    Non-shared subscriptions are keyed by ``(subscriber, filter)``; a ``$share/{group}/{f}``
    filter is stored at ``f``'s node under ``group``, and is a different key from ``f``. Matching
    walks the trie once per topic level (literal child, ``+`` child, ``#`` child), so its cost
    depends on the topic's depth and the number of matches, not on the number of filters.

    The last matches are remembered per topic name until the next ``add`` or ``remove``: a
    device publishes to the same few topics over and over, and a dictionary lookup is several
    times cheaper than the walk. The memory is bounded (``MATCH_CACHE_TOPICS`` topics and
    ``MATCH_CACHE_ENTRIES`` matched subscriptions in all; past either it starts again empty).

    Not thread-safe; meant for one event loop.
    """

    __slots__ = ("_by_subscriber", "_cache", "_cached_entries", "_count", "_root", "generation")

    def __init__(self) -> None:
        # Changes whenever the subscriptions may have: what callers derive from matches is
        # valid while it stays the same.
        self.generation = 0
        self._root: _Node[T] = _Node("")
        self._by_subscriber: dict[str, dict[str, T]] = {}
        self._count = 0
        # topic name -> its Match, valid until the subscriptions change.
        self._cache: dict[str, Match[T]] = {}
        self._cached_entries = 0  # subscriptions held by the cached matches

    def __len__(self) -> int:
        """The number of (subscriber, filter) pairs."""
        return self._count

    def add(self, subscriber: str, topic_filter: str, value: T) -> bool:
        """Subscribe ``subscriber`` to ``topic_filter`` (plain or ``$share/``) with ``value``.

        Returns:
            True if the pair is new, False if it existed and its value was replaced (MQTT
            3.8.4: a repeated SUBSCRIBE replaces the existing subscription).

        Raises:
            ValueError: if ``topic_filter`` fails :func:`validate_topic_filter`; callers should
                validate first and answer the client (SUBACK 0x80/0x8F).
        """
        error = validate_topic_filter(topic_filter)
        if error is not None:
            raise ValueError(error.reason)
        self._forget_matches()
        self.generation += 1
        shared = parse_shared(topic_filter)
        path = shared.topic_filter if shared is not None else topic_filter
        node = root = self._root
        for level in path.split("/"):
            node = node.make_child(level, node is root)
        if shared is None:
            node.entries = None
            existed = subscriber in node.subs
            node.subs[subscriber] = value
        else:
            members = node.shared.setdefault(shared.group, {})
            existed = subscriber in members
            members[subscriber] = value
        self._by_subscriber.setdefault(subscriber, {})[topic_filter] = value
        if not existed:
            self._count += 1
        return not existed

    def remove(self, subscriber: str, topic_filter: str) -> bool:
        """Unsubscribe ``subscriber`` from ``topic_filter`` (exactly as it was added).

        Returns:
            True if the subscription existed (and is now gone), else False.
        """
        filters = self._by_subscriber.get(subscriber)
        if filters is None or topic_filter not in filters:
            return False
        del filters[topic_filter]
        if not filters:
            del self._by_subscriber[subscriber]
        self._count -= 1
        self._forget_matches()
        self.generation += 1
        shared = parse_shared(topic_filter)
        path = shared.topic_filter if shared is not None else topic_filter
        trail: list[tuple[_Node[T], str]] = []  # (parent, level) down to the filter's node
        node = self._root
        for level in path.split("/"):
            child = node.child(level)
            if child is None:  # pragma: no cover - _by_subscriber and the trie agree
                return True
            trail.append((node, level))
            node = child
        if shared is None:
            node.subs.pop(subscriber, None)
            node.entries = None
        else:
            members = node.shared.get(shared.group)
            if members is not None:
                members.pop(subscriber, None)
                if not members:
                    del node.shared[shared.group]
        # Prune nodes left empty, bottom-up.
        for parent, level in reversed(trail):
            if not node.is_empty():
                break
            parent.drop_child(level)
            node = parent
        return True

    def remove_subscriber(self, subscriber: str) -> int:
        """Drop every subscription of ``subscriber``.

        Returns:
            How many subscriptions were removed (0 if none).
        """
        filters = list(self._by_subscriber.get(subscriber, ()))
        for topic_filter in filters:
            self.remove(subscriber, topic_filter)
        return len(filters)

    def subscriptions_of(self, subscriber: str) -> dict[str, T]:
        """A new dict of ``subscriber``'s filters (as given, incl. ``$share/...``) to values."""
        return dict(self._by_subscriber.get(subscriber, ()))

    def match(self, topic: str) -> Match[T]:
        """The subscriptions matching a (valid) topic name, by :func:`topic_matches` rules.

        Walks the trie level by level keeping the set of live nodes: each level follows the
        literal child and the ``+`` child; a ``#`` child met before the last level is reached
        matches (it needs at least one level, per AWS). At the root, ``+`` and ``#`` are skipped
        for topics starting with ``$`` (MQTT 4.7.2).

        Returns:
            A :class:`Match`, possibly the one returned for the same topic before (see the class
            docstring): callers must not change its lists.
        """
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        match = self._walk(topic)
        entries = len(match.direct) + sum(len(members) for _, _, members in match.shared)
        if not entries:
            # Not remembered: an empty walk is cheap, and the topics nobody subscribes to (a
            # lifecycle event's, one per client ID) would each hold an entry and their name.
            return cast(Match[T], _NO_MATCH)
        if entries <= MATCH_CACHE_ENTRIES:
            if (
                len(self._cache) >= MATCH_CACHE_TOPICS
                or self._cached_entries + entries > MATCH_CACHE_ENTRIES
            ):
                self._forget_matches()
            self._cache[topic] = match
            self._cached_entries += entries
        return match

    def _forget_matches(self) -> None:
        if self._cache:
            self._cache.clear()
            self._cached_entries = 0

    def _walk(self, topic: str) -> Match[T]:
        """The subscriptions matching ``topic``, from the trie."""
        direct: list[tuple[str, str, T]] = []
        shared: list[tuple[str, str, list[tuple[str, T]]]] = []
        if not self._count:
            return Match(direct, shared)
        levels = topic.split("/")
        nodes = self._first_level(levels[0], direct, shared)
        for index in range(1, len(levels)):
            if not nodes:
                break
            level = levels[index]
            following: list[_Node[T]] = []
            for node in nodes:
                if node.hash is not None:
                    node.hash.collect(direct, shared)
                if node.children:
                    child = node.children.get(level)
                    if child is not None:
                        following.append(child)
                if node.plus is not None:
                    following.append(node.plus)
            nodes = following
        for node in nodes:
            node.collect(direct, shared)
        return Match(direct, shared)

    def _first_level(
        self,
        first: str,
        direct: list[tuple[str, str, T]],
        shared: list[tuple[str, str, list[tuple[str, T]]]],
    ) -> list[_Node[T]]:
        """Step from the root over the topic's first level; collects a root ``#`` if it applies.

        MQTT 4.7.2: a filter starting with ``+`` or ``#`` does not match a topic starting with
        ``$``, so for such topics only the literal child is followed.
        """
        root = self._root
        nodes: list[_Node[T]] = []
        child = root.children.get(first)
        if child is not None:
            nodes.append(child)
        if not first.startswith("$"):
            if root.hash is not None:
                root.hash.collect(direct, shared)
            if root.plus is not None:
                nodes.append(root.plus)
        return nodes
