"""AWS IoT Core message-broker quotas and protocol deviations, as data.

Each value quotes where AWS states it: "AWS IoT Core message broker and protocol limits and
quotas" (https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits; some
values only in the 2019-2021 copies of that table) and the developer guide's "MQTT" page
(https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html). Pure: constants and small
functions.
"""

from __future__ import annotations

__all__ = [
    "CLIENT_ID_MAX_BYTES",
    "CONNECTS_PER_SECOND_PER_CLIENT_ID",
    "DEFAULT_KEEP_ALIVE",
    "FILTERS_PER_SUBSCRIBE",
    "INFLIGHT_MAX",
    "MAX_KEEP_ALIVE",
    "MESSAGE_EXPIRY_MAX",
    "MIN_KEEP_ALIVE",
    "PAYLOAD_MAX_BYTES",
    "PUBLISHES_PER_SECOND",
    "SESSION_EXPIRY_DEFAULT_MAX",
    "SESSION_EXPIRY_MAX",
    "SHARE_NAME_MAX_CHARS",
    "SUBSCRIPTIONS_PER_CONNECTION",
    "THROUGHPUT_BYTES_PER_SECOND",
    "TOPIC_ALIAS_MAX",
    "TOPIC_MAX_BYTES",
    "TOPIC_MAX_SLASHES",
    "clamp_message_expiry",
    "effective_keep_alive",
    "grant_session_expiry",
]

# "Message size: The payload for every publish request is limited to 128 KB."
PAYLOAD_MAX_BYTES = 128 * 1024
# "Client ID size: 128 bytes of UTF-8 encoded characters."
CLIENT_ID_MAX_BYTES = 128
# "Topic size ... limited to 256 bytes of UTF-8 encoded characters."
TOPIC_MAX_BYTES = 256
# "A topic in a publish or subscribe request is limited to 7 forward slashes (/)."
TOPIC_MAX_SLASHES = 7
# Shared subscriptions: "ShareName ... at most 128 UTF-8 characters".
SHARE_NAME_MAX_CHARS = 128
# "Subscriptions per connection: 50".
SUBSCRIPTIONS_PER_CONNECTION = 50
# "Maximum subscriptions per subscribe call: 8".
FILTERS_PER_SUBSCRIBE = 8
# "Publish requests per second per connection: 100 ... Publish requests exceeding that limit will
# be discarded" (inbound and outbound counted together).
PUBLISHES_PER_SECOND = 100
# "Throughput per connection: 512 KiB/s ... Data received at a rate that exceeds this limit will
# be delayed in processing."
THROUGHPUT_BYTES_PER_SECOND = 512 * 1024
# "AWS IoT limits MQTT CONNECT requests from the same accountId and clientId to 1 MQTT CONNECT
# operation per second."
CONNECTS_PER_SECOND_PER_CLIENT_ID = 1
# "Inbound/Outbound unacknowledged QoS 1 messages: 100"; also our Receive Maximum.
INFLIGHT_MAX = 100
# "AWS IoT Core has a default limit of 8 topic aliases."
TOPIC_ALIAS_MAX = 8
# Keep-alive: "between 30 - 1200 seconds ... The default keep-alive interval is 1200 seconds."
MIN_KEEP_ALIVE = 30
MAX_KEEP_ALIVE = 1200
DEFAULT_KEEP_ALIVE = 1200
# Session Expiry Interval: "maximum of 7 days, with a default maximum of one hour".
SESSION_EXPIRY_DEFAULT_MAX = 3600
SESSION_EXPIRY_MAX = 7 * 24 * 3600
# Message Expiry Interval: minimum 1 (0 is adjusted to 1), maximum 604800 (7 days).
MESSAGE_EXPIRY_MAX = 604800

# MQTT 5 user properties: the bytes of one message's user properties as encoded (keys, values
# and 5 bytes of framing each, so that empty ones count too). AWS does not state a
# broker-side figure on its MQTT pages (UNCONFIRMED); its quota table lists 8 KB for user
# properties (https://docs.aws.amazon.com/general/latest/gr/iot-core.html), and the safer
# choice is to bound them: one PUBLISH of 26,000 empty properties cost 1.9 MB of memory and
# was kept across restarts as a retained message. ``limits.user_properties_max_bytes``.
USER_PROPERTIES_MAX_BYTES = 8 * 1024
# Retained messages per account (AWS IoT Core quotas, "Maximum number of retained messages per
# account", adjustable): past it, AWS "returns a throttled response to messages published
# with RETAIN set and payloads greater than 0 bytes" (developer guide, mqtt.html, "Retained
# messages"). ``limits.retained_messages_max``.
RETAINED_MESSAGES_MAX = 500_000


def effective_keep_alive(requested: int) -> int:
    """The keep-alive AWS applies: 0 or >1200 -> 1200; 1..29 -> 30; otherwise as requested."""
    if requested == 0 or requested > MAX_KEEP_ALIVE:
        return DEFAULT_KEEP_ALIVE
    return max(requested, MIN_KEEP_ALIVE)


def grant_session_expiry(requested: int, cap: int = SESSION_EXPIRY_DEFAULT_MAX) -> int:
    """The Session Expiry Interval AWS grants (returned in CONNACK when adjusted)."""
    return min(requested, cap, SESSION_EXPIRY_MAX)


def clamp_message_expiry(requested: int) -> int:
    """The Message Expiry Interval AWS applies: clamped to 1..604800 seconds."""
    return min(max(requested, 1), MESSAGE_EXPIRY_MAX)
