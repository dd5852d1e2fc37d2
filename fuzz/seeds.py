"""Write the seed corpus, ``fuzz/corpus/<target>/``: valid inputs the fuzzer mutates from.

Run ``python -m fuzz.seeds`` after changing it; the output is committed (small files only). The
MQTT seeds are valid encodings of every packet type at both levels, alone (reader preset to the
level) and as a stream after a CONNECT (server-side reader); the ClientHello seeds are real
ClientHellos from this Python's OpenSSL, whole and split across records.
"""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path

from aws_iot_mock.mqtt.codec import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
    Will,
    encode,
)
from fuzz.targets import mqtt_control_byte

CORPUS = Path(__file__).parent / "corpus"
ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"

_PROPS = Properties(reason_string="why", user_properties=(("k", "v"),))

_COMMON: list[Packet] = [
    Connack(session_present=True, reason_code=0),
    Publish("a/b", b"hello"),
    Publish("dev/\u00e9", b"\x00\xff" * 8, qos=1, packet_id=1, retain=True),
    Publish("a/b", b"x", qos=2, dup=True, packet_id=65535),
    Puback(7),
    Pubrec(8),
    Pubrel(9),
    Pubcomp(10),
    Subscribe(11, (("a/+", SubscriptionOptions(qos=1)), ("#", SubscriptionOptions(qos=2)))),
    Unsubscribe(12, ("a/+", "$share/g/b")),
    Pingreq(),
    Pingresp(),
    Disconnect(),
]

PACKETS: dict[int, list[Packet]] = {
    4: [
        Connect("MQTT", 4, "dev-1", True, 60),
        Connect("MQTT", 4, "", False, 0, Will("w", b"gone", 2, True), "u", b"pw"),
        *_COMMON,
        Connack(session_present=False, reason_code=5),
        Suback(11, (0, 1, 2, 0x80)),
        Unsuback(12),
    ],
    5: [
        Connect(
            "MQTT",
            5,
            "dev-1",
            True,
            60,
            Will(
                "w/t",
                b"bye",
                1,
                False,
                Properties(
                    payload_format_indicator=1,
                    message_expiry_interval=10,
                    content_type="text/plain",
                    response_topic="r/t",
                    correlation_data=b"\x01",
                    will_delay_interval=30,
                ),
            ),
            "u",
            b"p",
            Properties(
                session_expiry_interval=3600,
                authentication_method="SCRAM",
                authentication_data=b"\x00",
                request_problem_information=0,
                request_response_information=1,
                receive_maximum=20,
                topic_alias_maximum=10,
                maximum_packet_size=1 << 20,
                user_properties=(("x", "y"),),
            ),
        ),
        *_COMMON,
        Connack(
            session_present=False,
            reason_code=0x87,
            properties=Properties(
                assigned_client_identifier="auto-1",
                server_keep_alive=120,
                response_information="resp",
                server_reference="other:1883",
                receive_maximum=100,
                topic_alias_maximum=0,
                maximum_qos=1,
                retain_available=0,
                maximum_packet_size=131072,
                wildcard_subscription_available=1,
                subscription_identifier_available=0,
                shared_subscription_available=1,
            ),
        ),
        Publish(
            "",
            b"aliased",
            qos=1,
            packet_id=5,
            properties=Properties(
                topic_alias=3,
                subscription_identifiers=(1, 268_435_455),
                correlation_data=b"cd",
                response_topic="reply/to",
            ),
        ),
        Puback(7, 0x10, _PROPS),
        Pubrec(8, 0x91),
        Pubrel(9, 0x92, _PROPS),
        Pubcomp(10, 0, _PROPS),
        Subscribe(
            3,
            (("a", SubscriptionOptions(qos=2, no_local=True, retain_as_published=True)),),
            Properties(subscription_identifiers=(42,)),
        ),
        Suback(3, (0, 1, 2, 0x80, 0x8F, 0x97), _PROPS),
        Unsuback(4, (0x00, 0x11), _PROPS),
        Disconnect(0x8E, Properties(session_expiry_interval=0, reason_string="r")),
        Auth(0x18, Properties(authentication_method="m", authentication_data=b"x")),
    ],
}

TOPIC_SEEDS: dict[str, str] = {
    "plain": "a/+/c\na/#\n#\na/b/c",
    "shared": "$share/g/a/+\n$share/h/#\na/b",
    "reserved": "$aws/things/+/shadow/update\n$aws/things/t/shadow/update",
    "basic-ingest": "$aws/rules/r/a/b/c/d/e/f/g/h",
    "wildcards-in-name": "+\n#\nsensor/#",
    "empty-levels": "a//c\n+/+/+\n//",
}


def _client_hellos() -> dict[str, bytes]:
    """Real ClientHellos: TLS 1.2 and 1.3, with and without SNI."""
    hellos: dict[str, bytes] = {}
    cases: list[tuple[str, ssl.TLSVersion | None, str | None]] = [
        ("tls12-sni", ssl.TLSVersion.TLSv1_2, ENDPOINT),
        ("tls13-sni", None, ENDPOINT),
        ("tls12-no-sni", ssl.TLSVersion.TLSv1_2, None),
    ]
    for name, maximum, sni in cases:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        if maximum is not None:
            ctx.maximum_version = maximum
        out = ssl.MemoryBIO()
        obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=sni)
        with contextlib.suppress(ssl.SSLWantReadError):
            obj.do_handshake()
        hellos[name] = out.read()
    # The same handshake message split across three records (RFC 5246 section 6.2.1 allows it).
    record = hellos["tls13-sni"]
    message = record[5:]
    third = len(message) // 3
    split = b"".join(
        record[:3] + len(part).to_bytes(2, "big") + part
        for part in (message[:third], message[third : 2 * third], message[2 * third :])
    )
    hellos["tls13-sni-three-records"] = split
    hellos["plaintext-mqtt-connect"] = bytes.fromhex("101100044d5154540402003c0005") + b"dev-1"
    hellos["plaintext-http"] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    return hellos


def seeds() -> dict[str, dict[str, bytes]]:
    """Every seed, by target and file name."""
    out: dict[str, dict[str, bytes]] = {}
    for target, level in (("mqtt311", 4), ("mqtt5", 5)):
        files: dict[str, bytes] = {}
        preset = bytes([mqtt_control_byte(server_side=False)])
        server = bytes([mqtt_control_byte(server_side=True)])
        stream = b""
        for number, packet in enumerate(PACKETS[level]):
            encoded = encode(packet, level)
            kind = type(packet).__name__.lower()
            if isinstance(packet, Connect):
                files[f"{number:02d}-{kind}"] = server + encoded
                if not stream:
                    stream = encoded
            else:
                files[f"{number:02d}-{kind}"] = preset + encoded
                stream += encoded
        files["stream"] = server + stream
        chunked = mqtt_control_byte(server_side=True, max_size_index=3, chunk_seed=5)
        files["stream-chunked-max-2048"] = bytes([chunked]) + stream
        out[target] = files
    out["client_hello"] = _client_hellos()
    out["topics"] = {name: text.encode() for name, text in TOPIC_SEEDS.items()}
    return out


def main() -> None:
    """Write the corpus (old seed files of the same names are overwritten)."""
    for target, files in seeds().items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)
        print(f"{target}: {len(files)} seeds in {directory}")


if __name__ == "__main__":
    main()
