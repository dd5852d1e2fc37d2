"""Connect as the demo device with the AWS IoT Device SDK v2, publish one message, disconnect.

The device's view of AWS IoT: the endpoint name it was given (``AWS_IOT_ENDPOINT``, which is also
the TLS SNI it sends), port 443 (the SDK then offers ALPN ``x-amzn-mqtt-ca`` by itself, as it does
against AWS), and the certificate files from the broker's volume (``CERTS_DIR``). Exits 0 once
the broker acknowledged the QoS 1 PUBLISH (PUBACK), 1 otherwise.

Environment: AWS_IOT_ENDPOINT (required), AWS_IOT_PORT (443), CERTS_DIR (/data/certs),
CLIENT_ID (demo-device-publisher), TOPIC (demo/sdk-client), MESSAGE (a JSON greeting).
"""

from __future__ import annotations

import os
import sys

from awscrt import mqtt
from awsiot import mqtt_connection_builder

TIMEOUT = 30.0


def main() -> int:
    endpoint = os.environ["AWS_IOT_ENDPOINT"]
    port = int(os.environ.get("AWS_IOT_PORT", "443"))
    certs = os.environ.get("CERTS_DIR", "/data/certs")
    client_id = os.environ.get("CLIENT_ID", "demo-device-publisher")
    topic = os.environ.get("TOPIC", "demo/sdk-client")
    message = os.environ.get("MESSAGE", '{"from": "sdk-client"}')
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=endpoint,
        port=port,
        cert_filepath=f"{certs}/demo-device/demo-device.cert.pem",
        pri_key_filepath=f"{certs}/demo-device/demo-device.private.key",
        ca_filepath=f"{certs}/root-ca.pem",
        client_id=client_id,
        clean_session=True,
        keep_alive_secs=30,
    )
    try:
        connection.connect().result(TIMEOUT)
    except Exception as exc:  # the SDK raises awscrt errors of several types
        print(f"sdk-client: connect to {endpoint}:{port} failed: {exc}", file=sys.stderr)
        return 1
    try:
        published, _ = connection.publish(topic, message.encode(), mqtt.QoS.AT_LEAST_ONCE)
        published.result(TIMEOUT)
    except Exception as exc:
        print(f"sdk-client: publish to {topic} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.disconnect().result(TIMEOUT)
    print(f"sdk-client: {client_id} published to {topic} via {endpoint}:{port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
