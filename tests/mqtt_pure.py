"""Pure in-memory MQTT clients of a ``DeviceCore``: no event loop, no socket, a fake clock.

The helper to drive ``MqttConnection`` the way h11's ``ConnectionPair`` drives ``h11.Connection``:
a ``PureClient`` encodes packets with the project's codec, feeds them to the connection, and
parses what ``data_to_send`` returns. Time moves only when a test calls ``clock.advance``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_iot_mock.core.device_core import CoreSettings, DeviceCore
from aws_iot_mock.core.mqtt_connection import MqttConnection
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.core.session_store import MemorySessionStore
from aws_iot_mock.logs.cloudwatch import ConnectionFacts
from aws_iot_mock.mqtt.codec import (
    EMPTY_PROPERTIES,
    Connack,
    Connect,
    Packet,
    PacketReader,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Will,
    encode,
)

ACCOUNT = "123456789012"


class FakeClock:
    """Both clocks of the core: wall (epoch seconds) and monotonic, advanced by hand."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


@dataclass
class PureCore:
    """A device core with a memory store, no authorization, records kept in a list."""

    settings: CoreSettings = field(
        default_factory=lambda: CoreSettings(account_id=ACCOUNT, aws_quotas=False)
    )
    clock: FakeClock = field(default_factory=FakeClock)
    records: list[dict[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = MemorySessionStore()
        self.core = DeviceCore(
            self.store,
            settings=self.settings,
            emit=self._emit,
            permissions=None,
            clock=self.clock.time,
            monotonic=self.clock.monotonic,
        )
        self._ports = 40000

    def _emit(self, record: Mapping[str, object]) -> None:
        self.records.append(dict(record))

    def client(self, level: int = 4) -> PureClient:
        """A new connection (no CONNECT sent yet)."""
        self._ports += 1
        facts = ConnectionFacts(ACCOUNT, "127.0.0.1", self._ports, principal_id="cert-id")
        client = PureClient(level)
        client.connection = self.core.open_mqtt_connection(
            Principal.certificate("cert-id", b"der"), facts, wake=client.woken
        )
        return client

    def connected(self, client_id: str, level: int = 4, **connect: object) -> PureClient:
        client = self.client(level)
        connack = client.connect(client_id, **connect)  # type: ignore[arg-type]
        assert connack.reason_code == 0, connack
        return client

    def failures(self, reason: str) -> list[dict[str, object]]:
        return [r for r in self.records if r.get("reason") == reason]


class PureClient:
    """One MQTT client over an in-memory ``MqttConnection``."""

    connection: MqttConnection

    def __init__(self, level: int) -> None:
        self.level = level
        self.wakes = 0
        self._reader = PacketReader(protocol_level=level)
        self._pending: list[Packet] = []
        self._next_id = 0

    def woken(self) -> None:
        self.wakes += 1

    def send(self, packet: Packet) -> None:
        self.connection.receive_data(encode(packet, self.level))

    def received(self) -> list[Packet]:
        """Every packet the broker has queued for this client since the last call."""
        self._reader.feed(self.connection.data_to_send())
        packets, self._pending = self._pending, []
        while (packet := self._reader.next_packet()) is not None:
            packets.append(packet)
        return packets

    def packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def connect(
        self,
        client_id: str,
        *,
        clean: bool = True,
        keep_alive: int = 60,
        will: Will | None = None,
        properties: Properties = EMPTY_PROPERTIES,
    ) -> Connack:
        self.send(
            Connect("MQTT", self.level, client_id, clean, keep_alive, will, None, None, properties)
        )
        connack, *self._pending = self.received()  # queued messages follow the CONNACK
        assert isinstance(connack, Connack), connack
        return connack

    def subscribe(self, topic_filter: str, qos: int = 1) -> Suback:
        packet_id = self.packet_id()
        self.send(Subscribe(packet_id, ((topic_filter, SubscriptionOptions(qos=qos)),)))
        packets = self.received()
        assert packets and isinstance(packets[0], Suback), packets
        return packets[0]

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        packet_id = self.packet_id() if qos else None
        self.send(Publish(topic, payload, qos=qos, retain=retain, packet_id=packet_id))

    def publishes(self) -> list[Publish]:
        packets = self.received()
        assert all(isinstance(p, Publish) for p in packets), packets
        return [p for p in packets if isinstance(p, Publish)]

    def acknowledge(self, publishes: list[Publish]) -> None:
        for publish in publishes:
            if publish.packet_id is not None:
                self.send(Puback(publish.packet_id))
