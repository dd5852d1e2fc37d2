"""Write the seed corpus, ``fuzz/corpus/<target>/``: valid inputs the fuzzer mutates from.

Run ``python -m fuzz.seeds`` after changing it; the output is committed (small files only). The
MQTT seeds are valid encodings of every packet type at both levels, alone (reader preset to the
level) and as a stream after a CONNECT (server-side reader); the ClientHello seeds are real
ClientHellos from this Python's OpenSSL, whole and split across records. Needs the ``dev`` extra
(the packets come from the codec tests' tables).
"""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path

from aws_iot_mock.mqtt.codec import Connect, Packet, encode
from fuzz.targets import mqtt_control_byte
from tests.test_codec import V4_PACKETS, V5_PACKETS

CORPUS = Path(__file__).parent / "corpus"
ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"

# The codec tests' round-trip tables: every packet type at each level, with every property.
PACKETS: dict[int, list[Packet]] = {4: V4_PACKETS, 5: V5_PACKETS}

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
