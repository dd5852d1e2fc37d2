"""Device Shadows end to end: the AWS IoT Device SDK's shadow clients, restarts, the CLI, logs.

The broker runs in the test's event loop (or as a ``python -m aws_iot_mock serve`` child for the
restart and the README's worked example). SDK callbacks run on awscrt's threads and hand their
events to the loop through an `Inbox`; raw MQTT clients (``tests.test_mqtt_pubsub.RawClient``)
see the exact packets. Nothing sleeps: every wait is on an event with a deadline, and the absence
of a message is proven with a PINGREQ barrier (`RawClient.expect_nothing`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
from awscrt import mqtt, mqtt_request_response
from awsiot import (
    ServiceStreamOptions,
    V2ServiceException,
    iotshadow,
    mqtt5_client_builder,
    mqtt_connection_builder,
)

from aws_iot_mock import cli
from aws_iot_mock.config import Config
from aws_iot_mock.mqtt.codec import Puback, Publish, encode
from aws_iot_mock.server.app import Broker
from tests.conftest import Device, RunningBroker, client_context, make_config
from tests.docs_snippets import output, snippet
from tests.serve_child import (
    STARTUP_TIMEOUT,
    ServeChild,
    child_env,
    make_run,
    run_documented,
)
from tests.test_mqtt_pubsub import RawClient
from tests.test_real_clients import (
    Mqtt5Lifecycle,
    sdk_common_args,
    stop_mqtt5,
    wait_crt_future,
)

# Generous bound for anything that should happen in milliseconds on loopback.
TIMEOUT = 10.0
THING = "lamp"
NOT_AUTHORIZED = 0x87
ACCOUNT_ARN = "arn:aws:iot:us-east-1:123456789012"

T = TypeVar("T")


# -- helpers -----------------------------------------------------------------------------------


class Inbox(Generic[T]):
    """Events put from any thread (awscrt callbacks), awaited in the test's loop with a deadline."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[T] = asyncio.Queue()

    def put(self, item: T) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def get(self) -> T:
        return await asyncio.wait_for(self._queue.get(), TIMEOUT)

    def empty(self) -> bool:
        return self._queue.empty()


def without_timestamps(document: Any) -> Any:
    """``document`` with every ``timestamp`` value replaced by 0 (they depend on the clock)."""
    if isinstance(document, dict):
        return {
            key: 0 if key == "timestamp" else without_timestamps(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [without_timestamps(value) for value in document]
    return document


def policy(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def shadow_topic(thing: str, shadow: str | None = None) -> str:
    base = f"$aws/things/{thing}/shadow"
    return base if shadow is None else f"{base}/name/{shadow}"


async def receive_json(client: RawClient) -> tuple[str, dict[str, Any]]:
    """The next PUBLISH a raw client receives, as (topic, parsed payload)."""
    packet = await client.receive_publish()
    document = json.loads(packet.payload)
    assert isinstance(document, dict)
    return packet.topic, document


async def request(
    client: RawClient, topic: str, document: Mapping[str, object] | None = None
) -> tuple[str, dict[str, Any]]:
    """Publish a shadow request (QoS 1, must be acknowledged) and return the first response."""
    payload = b"" if document is None else json.dumps(document).encode()
    puback = await client.publish(topic, payload)
    assert puback is not None and puback.reason_code == 0, puback
    return await receive_json(client)


@dataclasses.dataclass
class SdkShadow:
    """An awscrt MQTT 5 client, connected, and the current request-response shadow client."""

    client: Any
    lifecycle: Mqtt5Lifecycle
    shadow: Any  # iotshadow.IotShadowClientV2, once connected
    # Open streaming operations, kept referenced until the client stops.
    streams: list[Any] = dataclasses.field(default_factory=list)

    async def stream(self, create: Callable[..., Any], request_object: Any) -> Inbox[Any]:
        """Open a streaming operation and wait until its subscription is established."""
        events: Inbox[Any] = Inbox()
        statuses: Inbox[Any] = Inbox()
        operation = create(
            request_object,
            ServiceStreamOptions(
                incoming_event_listener=events.put, subscription_status_listener=statuses.put
            ),
        )
        operation.open()
        status = await statuses.get()
        assert (
            status.type
            == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED
        ), status
        self.streams.append(operation)
        return events


class Clients:
    """Opens raw and SDK clients against one broker and closes them all at teardown."""

    def __init__(self, running: RunningBroker) -> None:
        self.running = running
        self.device = running.create_device()
        self._raw: list[RawClient] = []
        self._sdk: list[SdkShadow] = []

    async def raw(self, client_id: str, level: int = 5, device: Device | None = None) -> RawClient:
        ctx = client_context(self.running.root_ca_path, device or self.device)
        client = await RawClient.open(
            self.running.port, ctx, level, sni=self.running.config.endpoint
        )
        self._raw.append(client)
        await client.connect(client_id)
        return client

    async def sdk(self, client_id: str) -> SdkShadow:
        lifecycle = Mqtt5Lifecycle()
        client = mqtt5_client_builder.mtls_from_path(
            **sdk_common_args(self.running, self.device, client_id),
            keep_alive_interval_sec=60,
            **lifecycle.callbacks(),
        )
        client.start()
        sdk = SdkShadow(client, lifecycle, None)
        self._sdk.append(sdk)
        await asyncio.wait_for(asyncio.wrap_future(lifecycle.success), TIMEOUT)
        sdk.shadow = iotshadow.IotShadowClientV2(
            client,
            mqtt_request_response.ClientOptions(
                max_request_response_subscriptions=4,
                max_streaming_subscriptions=4,
                operation_timeout_in_seconds=int(TIMEOUT),
            ),
        )
        return sdk

    async def close(self) -> None:
        try:
            for raw in self._raw:
                await raw.close()
        finally:
            for sdk in self._sdk:
                sdk.shadow = None
                sdk.streams.clear()
                if not sdk.lifecycle.stopped.is_set():
                    await stop_mqtt5(sdk.client, sdk.lifecycle)


@pytest.fixture
async def localhost_broker(tmp_path: Path) -> AsyncIterator[RunningBroker]:
    """A broker whose endpoint is ``localhost``, the one name awscrt can resolve here."""
    config = dataclasses.replace(make_config(tmp_path), endpoint="localhost")
    broker = Broker(config)
    running = RunningBroker(broker, config)
    broker.sink.add_listener(running._on_record)
    await broker.start()
    try:
        yield running
    finally:
        await broker.stop()


@pytest.fixture
async def clients(localhost_broker: RunningBroker) -> AsyncIterator[Clients]:
    opened = Clients(localhost_broker)
    try:
        yield opened
    finally:
        await opened.close()


async def sdk_error(future: concurrent.futures.Future[Any]) -> Any:
    """The modeled error (``V2ErrorResponse``) a failed request-response operation carries."""
    with pytest.raises(V2ServiceException) as raised:
        await wait_crt_future(future)
    assert raised.value.modeled_error is not None, raised.value.inner_error
    return raised.value.modeled_error


# -- 1. the SDK's request-response shadow client (MQTT 5) --------------------------------------


async def test_sdk_get_missing_shadow_is_404(clients: Clients) -> None:
    app = await clients.sdk("app")

    classic = await sdk_error(app.shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=THING)))
    named = await sdk_error(
        app.shadow.get_named_shadow(
            iotshadow.GetNamedShadowRequest(thing_name=THING, shadow_name="settings")
        )
    )

    assert (classic.code, classic.message) == (404, f"No shadow exists with name: '{THING}'")
    assert (named.code, named.message) == (404, "No shadow exists with name: 'settings'")
    assert classic.client_token is not None  # the SDK matched the answer by its token


async def test_sdk_desired_reaches_the_device_as_delta_and_the_report_clears_it(
    clients: Clients,
) -> None:
    app = await clients.sdk("app")
    device = await clients.sdk("device")
    deltas = await device.stream(
        device.shadow.create_shadow_delta_updated_stream,
        iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=THING),
    )
    documents = await device.stream(
        device.shadow.create_shadow_updated_stream,
        iotshadow.ShadowUpdatedSubscriptionRequest(thing_name=THING),
    )
    # A watcher through a wildcard filter, as the SDK's own get/delete requests subscribe.
    watcher = await clients.raw("watcher")
    assert (await watcher.subscribe(f"{shadow_topic(THING)}/update/+")).reason_codes == (1,)

    # The app asks for a colour and an interval.
    desired = {"color": "green", "config": {"interval": 10, "unit": "s"}}
    update = iotshadow.UpdateShadowRequest(
        thing_name=THING, state=iotshadow.ShadowState(desired=desired)
    )
    accepted = await wait_crt_future(app.shadow.update_shadow(update))
    assert accepted.version == 1
    assert accepted.state.desired == desired
    assert accepted.client_token == update.client_token  # echoed (the SDK correlates on it)

    delta = await deltas.get()
    assert (delta.version, delta.state) == (1, desired)
    assert delta.client_token == update.client_token
    first = await documents.get()
    assert first.previous is None  # absent on the first update
    assert (first.current.version, first.current.state.desired) == (1, desired)
    assert first.current.state.reported is None
    seen = [await receive_json(watcher) for _ in range(3)]
    assert [topic.rsplit("/", 1)[1] for topic, _ in seen] == ["accepted", "delta", "documents"]
    assert seen[1][1]["state"] == desired

    # The device applies the change and reports it: no delta is published, the documents show
    # the previous and the current version.
    report = iotshadow.UpdateShadowRequest(
        thing_name=THING, state=iotshadow.ShadowState(reported=desired)
    )
    reported = await wait_crt_future(device.shadow.update_shadow(report))
    assert reported.version == 2
    second = await documents.get()
    assert second.previous.version == 1
    assert second.previous.state.reported is None
    assert second.current.version == 2
    assert second.current.state.desired == second.current.state.reported == desired
    seen = [await receive_json(watcher) for _ in range(2)]
    assert [topic.rsplit("/", 1)[1] for topic, _ in seen] == ["accepted", "documents"]
    await watcher.expect_nothing()
    assert deltas.empty()

    # The delta is gone from the shadow itself.
    got = await wait_crt_future(app.shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=THING)))
    assert got.version == 2
    assert got.state.delta is None
    assert got.state.desired == got.state.reported == desired

    # A nested change: the delta keeps the path to the root and only the differing field.
    change = iotshadow.UpdateShadowRequest(
        thing_name=THING, state=iotshadow.ShadowState(desired={"config": {"interval": 20}})
    )
    assert (await wait_crt_future(app.shadow.update_shadow(change))).version == 3
    delta = await deltas.get()
    assert (delta.version, delta.state) == (3, {"config": {"interval": 20}})
    got = await wait_crt_future(app.shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=THING)))
    assert got.state.delta == {"config": {"interval": 20}}

    # Optimistic locking: a stale version is refused with 409 and changes nothing.
    stale = iotshadow.UpdateShadowRequest(
        thing_name=THING, state=iotshadow.ShadowState(desired={"color": "red"}), version=2
    )
    conflict = await sdk_error(app.shadow.update_shadow(stale))
    assert (conflict.code, conflict.message) == (409, "Version conflict")
    assert conflict.client_token == stale.client_token
    current = iotshadow.UpdateShadowRequest(
        thing_name=THING, state=iotshadow.ShadowState(desired={"color": "red"}), version=3
    )
    assert (await wait_crt_future(app.shadow.update_shadow(current))).version == 4


async def test_sdk_named_shadows_are_independent_of_the_classic_shadow(clients: Clients) -> None:
    app = await clients.sdk("app")
    device = await clients.sdk("device")
    classic_deltas = await device.stream(
        device.shadow.create_shadow_delta_updated_stream,
        iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=THING),
    )
    named_deltas = await device.stream(
        device.shadow.create_named_shadow_delta_updated_stream,
        iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest(
            thing_name=THING, shadow_name="settings"
        ),
    )

    named = await wait_crt_future(
        app.shadow.update_named_shadow(
            iotshadow.UpdateNamedShadowRequest(
                thing_name=THING,
                shadow_name="settings",
                state=iotshadow.ShadowState(desired={"mode": "eco"}),
            )
        )
    )
    assert named.version == 1
    delta = await named_deltas.get()
    assert delta.state == {"mode": "eco"}
    # The classic shadow still does not exist.
    missing = await sdk_error(app.shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=THING)))
    assert missing.code == 404

    classic = await wait_crt_future(
        app.shadow.update_shadow(
            iotshadow.UpdateShadowRequest(
                thing_name=THING, state=iotshadow.ShadowState(desired={"mode": "boost"})
            )
        )
    )
    assert classic.version == 1  # its own version
    assert (await classic_deltas.get()).state == {"mode": "boost"}
    got = await wait_crt_future(
        app.shadow.get_named_shadow(
            iotshadow.GetNamedShadowRequest(thing_name=THING, shadow_name="settings")
        )
    )
    assert (got.version, got.state.desired) == (1, {"mode": "eco"})

    deleted = await wait_crt_future(
        app.shadow.delete_named_shadow(
            iotshadow.DeleteNamedShadowRequest(thing_name=THING, shadow_name="settings")
        )
    )
    assert deleted.version == 1
    gone = await sdk_error(
        app.shadow.get_named_shadow(
            iotshadow.GetNamedShadowRequest(thing_name=THING, shadow_name="settings")
        )
    )
    assert (gone.code, gone.message) == (404, "No shadow exists with name: 'settings'")
    still = await wait_crt_future(
        app.shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=THING))
    )
    assert (still.version, still.state.desired) == (1, {"mode": "boost"})
    # Each delta went to its own stream only.
    assert classic_deltas.empty() and named_deltas.empty()


async def test_sdk_mqtt3_connection_with_the_classic_shadow_client(
    localhost_broker: RunningBroker,
) -> None:
    device = localhost_broker.create_device()
    connection = mqtt_connection_builder.mtls_from_path(
        **sdk_common_args(localhost_broker, device, "mqtt3-device"),
        clean_session=True,
        keep_alive_secs=30,
    )
    await wait_crt_future(connection.connect())
    try:
        client = iotshadow.IotShadowClient(connection)
        qos = mqtt.QoS.AT_LEAST_ONCE
        inboxes: dict[str, Inbox[Any]] = {}
        for name, subscribe in (
            ("get_accepted", client.subscribe_to_get_shadow_accepted),
            ("get_rejected", client.subscribe_to_get_shadow_rejected),
            ("update_accepted", client.subscribe_to_update_shadow_accepted),
            ("update_rejected", client.subscribe_to_update_shadow_rejected),
        ):
            inboxes[name] = Inbox()
            subscribed, _topic = subscribe(
                iotshadow.GetShadowSubscriptionRequest(thing_name=THING), qos, inboxes[name].put
            )
            await wait_crt_future(subscribed)
        inboxes["delta"] = Inbox()
        subscribed, _topic = client.subscribe_to_shadow_delta_updated_events(
            iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=THING),
            qos,
            inboxes["delta"].put,
        )
        await wait_crt_future(subscribed)

        await wait_crt_future(
            client.publish_get_shadow(
                iotshadow.GetShadowRequest(thing_name=THING, client_token="get-1"), qos
            )
        )
        rejected = await inboxes["get_rejected"].get()
        assert (rejected.code, rejected.message, rejected.client_token) == (
            404,
            f"No shadow exists with name: '{THING}'",
            "get-1",
        )

        await wait_crt_future(
            client.publish_update_shadow(
                iotshadow.UpdateShadowRequest(
                    thing_name=THING,
                    state=iotshadow.ShadowState(desired={"on": True}, reported={"on": False}),
                    client_token="update-1",
                ),
                qos,
            )
        )
        accepted = await inboxes["update_accepted"].get()
        assert (accepted.version, accepted.client_token) == (1, "update-1")
        delta = await inboxes["delta"].get()
        assert (delta.state, delta.version, delta.client_token) == ({"on": True}, 1, "update-1")

        await wait_crt_future(
            client.publish_update_shadow(
                iotshadow.UpdateShadowRequest(
                    thing_name=THING,
                    state=iotshadow.ShadowState(reported={"on": True}),
                    client_token="update-2",
                    version=0,
                ),
                qos,
            )
        )
        conflict = await inboxes["update_rejected"].get()
        assert (conflict.code, conflict.message, conflict.client_token) == (
            409,
            "Version conflict",
            "update-2",
        )

        await wait_crt_future(
            client.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=THING), qos)
        )
        got = await inboxes["get_accepted"].get()
        assert got.version == 1
        assert got.state.delta == {"on": True}
        assert got.client_token is None  # none sent, none echoed
        assert all(inbox.empty() for inbox in inboxes.values())
    finally:
        await wait_crt_future(connection.disconnect())


async def test_client_token_is_echoed_on_every_response(clients: Clients) -> None:
    device = await clients.raw("device")
    base = shadow_topic(THING)
    await device.subscribe(f"{base}/get/+", f"{base}/update/+", f"{base}/delete/+")
    token = "t" * 64  # the longest token AWS accepts

    topic, document = await request(device, f"{base}/get", {"clientToken": token})
    assert (topic, document["code"], document["clientToken"]) == (
        f"{base}/get/rejected",
        404,
        token,
    )

    update = {"state": {"desired": {"x": 1}}, "clientToken": token}
    responses = [await request(device, f"{base}/update", update)]
    responses += [await receive_json(device) for _ in range(2)]
    assert [t.rsplit("/", 1)[1] for t, _ in responses] == ["accepted", "delta", "documents"]
    assert all(d["clientToken"] == token for _, d in responses)

    conflict = {**update, "version": 7}
    topic, document = await request(device, f"{base}/update", conflict)
    assert topic == f"{base}/update/rejected"
    assert without_timestamps(document) == {
        "code": 409,
        "message": "Version conflict",
        "timestamp": 0,
        "clientToken": token,
    }

    topic, document = await request(device, f"{base}/get", {"clientToken": token})
    assert (topic, document["clientToken"]) == (f"{base}/get/accepted", token)
    topic, document = await request(device, f"{base}/delete", {"clientToken": token})
    assert topic == f"{base}/delete/accepted"
    assert without_timestamps(document) == {"version": 1, "timestamp": 0, "clientToken": token}

    topic, document = await request(device, f"{base}/get")
    assert topic == f"{base}/get/rejected"
    assert "clientToken" not in document
    await device.expect_nothing()


async def test_deleted_shadow_recreated_continues_its_version(clients: Clients) -> None:
    device = await clients.raw("device")
    base = shadow_topic(THING, "history")
    await device.subscribe(f"{base}/update/accepted", f"{base}/delete/accepted")
    for expected in (1, 2):
        _, accepted = await request(device, f"{base}/update", {"state": {"reported": {"n": 1}}})
        assert accepted["version"] == expected
    _, deleted = await request(device, f"{base}/delete")
    assert deleted["version"] == 2
    _, accepted = await request(device, f"{base}/update", {"state": {"reported": {"n": 1}}})
    assert accepted["version"] == 3


# -- 2. a restart in the middle (kill -9) -------------------------------------------------------


@pytest.fixture
async def raw_clients() -> AsyncIterator[list[RawClient]]:
    opened: list[RawClient] = []
    yield opened
    for client in opened:
        if client.eof:
            client.writer.transport.abort()
        else:
            await client.close()


async def start_serve(tmp_path: Path, children: list[ServeChild]) -> tuple[int, Path, Device]:
    child = ServeChild(
        [
            "serve",
            "--endpoint",
            "localhost",
            "--port",
            "0",
            "--https-port",
            "0",
            "--alpn-port",
            "0",
            "--demo-device",
            "--certs-dir",
            str(tmp_path / "certs"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        tmp_path,
        child_env(),
    )
    children.append(child)
    await asyncio.to_thread(
        child.wait_line, "stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT
    )
    match = re.fullmatch(r"(\S+) \(key (\S+)\)", child.banner("demo device"))
    assert match is not None, child.lines
    device = Device("demo-device", Path(match[1]), Path(match[2]))
    return int(child.banner("mqtt").split()[0]), Path(child.banner("root CA")), device


async def test_shadows_survive_kill_9_after_accepted(
    tmp_path: Path, children: list[ServeChild], raw_clients: list[RawClient]
) -> None:
    port, root_ca, demo = await start_serve(tmp_path, children)
    ctx = client_context(root_ca, demo)
    # The demo policy admits the client ID "demo-device" and its own $aws/things/demo-device/*.
    device = await RawClient.open(port, ctx, 5, sni="localhost")
    raw_clients.append(device)
    await device.connect("demo-device")
    classic, named = shadow_topic("demo-device"), shadow_topic("demo-device", "config")
    await device.subscribe(f"{classic}/update/accepted", f"{named}/update/accepted")
    # A deleted shadow is remembered (its version continues if re-created within 48 hours).
    gone = shadow_topic("demo-device", "gone")
    await device.subscribe(f"{gone}/update/accepted", f"{gone}/delete/accepted")
    await request(device, f"{gone}/update", {"state": {"reported": {"x": 1}}})
    assert (await request(device, f"{gone}/delete"))[1]["version"] == 1
    for base, document in (
        (classic, {"state": {"desired": {"color": "green"}, "reported": {"color": "red"}}}),
        (named, {"state": {"reported": {"interval": 5}}}),
        (classic, {"state": {"desired": {"level": 3}}}),
    ):
        topic, accepted = await request(device, f"{base}/update", document)
        assert topic == f"{base}/update/accepted"
    assert accepted["version"] == 2

    children[0].kill9()  # right after the last /update/accepted arrived
    await device.expect_eof()
    port, root_ca, demo = await start_serve(tmp_path, children)
    device = await RawClient.open(port, client_context(root_ca, demo), 5, sni="localhost")
    raw_clients.append(device)
    await device.connect("demo-device")
    await device.subscribe(f"{classic}/get/+", f"{named}/get/+", f"{classic}/update/accepted")

    topic, got = await request(device, f"{classic}/get")
    assert topic == f"{classic}/get/accepted"
    assert got["version"] == 2
    assert got["state"] == {
        "desired": {"color": "green", "level": 3},
        "reported": {"color": "red"},
        "delta": {"color": "green", "level": 3},
    }
    topic, got = await request(device, f"{named}/get")
    assert (topic, got["version"], got["state"]) == (
        f"{named}/get/accepted",
        1,
        {"reported": {"interval": 5}},
    )
    # Versions continue from the stored ones, the deleted shadow's too.
    _, accepted = await request(device, f"{classic}/update", {"state": {"reported": {"level": 3}}})
    assert accepted["version"] == 3
    await device.subscribe(f"{gone}/update/accepted")
    _, accepted = await request(device, f"{gone}/update", {"state": {"reported": {"x": 1}}})
    assert accepted["version"] == 2
    assert (tmp_path / "state" / "shadows.sqlite3").is_file()


# -- 3. the CLI (aws iot-data verbs) -------------------------------------------------------------


def cli_args(config: Config, *args: str) -> list[str]:
    return [
        *args,
        "--certs-dir",
        str(config.certs_dir),
        "--state-dir",
        str(config.state_dir),
    ]


async def run_cli(config: Config, *args: str) -> int:
    """``aws-iot-mock <args>`` in a thread while the broker keeps serving in this loop."""
    return await asyncio.to_thread(cli.main, cli_args(config, *args))


async def test_cli_update_publishes_the_same_messages_as_an_mqtt_update(
    clients: Clients, tmp_path: Path
) -> None:
    config = clients.running.config
    watcher = await clients.raw("watcher")
    await watcher.subscribe("$aws/things/+/shadow/update/+")
    document = {"state": {"desired": {"color": "blue"}, "reported": {"color": "red"}}}
    payload_file = tmp_path / "payload.json"
    payload_file.write_text(json.dumps({**document, "clientToken": "cli-1"}), encoding="utf-8")
    outfile = tmp_path / "update.json"

    code = await run_cli(
        config,
        "update-thing-shadow",
        "--thing-name",
        "by-cli",
        "--cli-binary-format",
        "raw-in-base64-out",
        "--payload",
        f"file://{payload_file}",
        str(outfile),
    )

    assert code == 0
    by_cli = [await receive_json(watcher) for _ in range(3)]
    device = await clients.raw("device")
    mqtt_payload = json.dumps({**document, "clientToken": "cli-1"}).encode()
    puback = await device.publish(shadow_topic("by-mqtt") + "/update", mqtt_payload)
    assert puback is not None and puback.reason_code == 0
    by_mqtt = [await receive_json(watcher) for _ in range(3)]
    await watcher.expect_nothing()
    assert (
        [t for t, _ in by_cli]
        == [t.replace("by-mqtt", "by-cli") for t, _ in by_mqtt]
        == [
            f"{shadow_topic('by-cli')}/update/{stub}" for stub in ("accepted", "delta", "documents")
        ]
    )
    assert [without_timestamps(d) for _, d in by_cli] == [without_timestamps(d) for _, d in by_mqtt]
    # The outfile holds the /update/accepted document, as `aws iot-data` writes it.
    assert json.loads(outfile.read_bytes()) == by_cli[0][1]


async def test_cli_get_delete_and_list_named_shadows(
    clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = clients.running.config
    watcher = await clients.raw("watcher")
    await watcher.subscribe(f"{shadow_topic(THING)}/delete/+")
    binary = tmp_path / "update.bin"
    binary.write_bytes(b'{"state":{"desired":{"on":true}}}')
    # The payload as JSON on the command line, as fileb:// and as file://.
    for shadow, payload in (
        (None, '{"state":{"desired":{"on":true}}}'),
        ("beta", f"fileb://{binary}"),
        ("alpha", f"file://{binary}"),
    ):
        name_args = () if shadow is None else ("--shadow-name", shadow)
        code = await run_cli(
            config,
            "update-thing-shadow",
            "--thing-name",
            THING,
            *name_args,
            "--payload",
            payload,
            str(tmp_path / "update.json"),
        )
        assert code == 0
        assert json.loads((tmp_path / "update.json").read_bytes())["version"] == 1

    outfile = tmp_path / "shadow.json"
    assert await run_cli(config, "get-thing-shadow", "--thing-name", THING, str(outfile)) == 0
    shadow = json.loads(outfile.read_bytes())
    assert without_timestamps(shadow) == {
        "state": {"desired": {"on": True}, "delta": {"on": True}},
        "metadata": {"desired": {"on": {"timestamp": 0}}},
        "version": 1,
        "timestamp": 0,
    }

    capsys.readouterr()
    assert await run_cli(config, "list-named-shadows-for-thing", "--thing-name", THING) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["results"] == ["alpha", "beta"]
    assert isinstance(listing["timestamp"], int)

    deleted = tmp_path / "deleted.json"
    assert await run_cli(config, "delete-thing-shadow", "--thing-name", THING, str(deleted)) == 0
    assert without_timestamps(json.loads(deleted.read_bytes())) == {"version": 1, "timestamp": 0}
    topic, _ = await receive_json(watcher)  # published to MQTT subscribers too
    assert topic == f"{shadow_topic(THING)}/delete/accepted"

    capsys.readouterr()
    code = await run_cli(config, "get-thing-shadow", "--thing-name", THING, str(outfile))
    assert code == 254
    assert capsys.readouterr().err == (  # after a blank line, as the AWS CLI writes it
        "\nAn error occurred (ResourceNotFoundException) when calling the GetThingShadow "
        f"operation: No shadow exists with name: '{THING}'\n"
    )
    # Named shadows are untouched by deleting the classic one.
    capsys.readouterr()
    assert await run_cli(config, "list-named-shadows-for-thing", "--thing-name", THING) == 0
    assert json.loads(capsys.readouterr().out)["results"] == ["alpha", "beta"]


async def test_cli_without_a_running_broker_uses_the_stored_shadows(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    outfile = tmp_path / "out.json"
    update = ("update-thing-shadow", "--thing-name", THING, "--payload")
    assert await run_cli(config, *update, '{"state":{"reported":{"on":true}}}', str(outfile)) == 0
    assert await run_cli(config, *update, '{"state":{"reported":{"on":false}}}', str(outfile)) == 0
    assert await run_cli(config, "get-thing-shadow", "--thing-name", THING, str(outfile)) == 0
    got = json.loads(outfile.read_bytes())
    assert (got["version"], got["state"]) == (2, {"reported": {"on": False}})


async def test_many_requests_at_once_are_all_answered(clients: Clients) -> None:
    """AWS refuses more than 10 in-flight requests with 429; the mock answers each at once."""
    device = await clients.raw("device")
    base = shadow_topic(THING)
    await device.subscribe(f"{base}/update/accepted")
    burst = b"".join(
        encode(
            Publish(f"{base}/update", b'{"state":{"reported":{"n":1}}}', qos=1, packet_id=100 + i),
            5,
        )
        for i in range(20)
    )
    await device.send_raw(burst)
    packets = [await device.recv_packet() for _ in range(40)]
    versions = [json.loads(p.payload)["version"] for p in packets if isinstance(p, Publish)]
    assert versions == list(range(1, 21))
    for packet in packets:
        if isinstance(packet, Publish) and packet.packet_id is not None:
            await device.send(Puback(packet.packet_id))
    await device.expect_nothing()


# -- 4. AWSIotLogsV2 lines -----------------------------------------------------------------------


def shadow_records(running: RunningBroker) -> list[dict[str, object]]:
    kinds = {"UpdateThingShadow", "GetThingShadow", "DeleteThingShadow"}
    return [r for r in running.records if r["eventType"] in kinds]


async def test_shadow_requests_are_logged(clients: Clients) -> None:
    running = clients.running
    device = await clients.raw("device")
    classic, named = shadow_topic(THING), shadow_topic(THING, "settings")
    await device.subscribe(f"{classic}/+/+", f"{named}/+/+")

    await request(device, f"{classic}/update", {"state": {"reported": {"on": True}}})
    await receive_json(device)  # /update/documents
    await request(device, f"{named}/get")  # 404
    await request(device, f"{classic}/get")
    await request(device, f"{classic}/update", {"state": {"reported": {"on": 1}}, "version": 9})
    await request(device, f"{classic}/delete")
    await device.expect_nothing()

    records = [
        {k: v for k, v in r.items() if k not in {"timestamp", "traceId", "sourcePort"}}
        for r in shadow_records(running)
    ]
    common = {"accountId": "123456789012", "protocol": "MQTT", "deviceShadowName": THING}
    assert [
        (r["eventType"], r["status"], r["logLevel"], r["topicName"], r.get("shadowName"))
        for r in records
    ] == [
        ("UpdateThingShadow", "Success", "INFO", f"{classic}/update", None),
        ("GetThingShadow", "Failure", "ERROR", f"{named}/get", "settings"),
        ("GetThingShadow", "Success", "INFO", f"{classic}/get", None),
        ("UpdateThingShadow", "Failure", "ERROR", f"{classic}/update", None),
        ("DeleteThingShadow", "Success", "INFO", f"{classic}/delete", None),
    ]
    assert all(r.items() >= common.items() for r in records), records
    assert (records[1]["reason"], records[1]["details"]) == (
        "ResourceNotFoundException",
        "No shadow exists with name: 'settings'",
    )
    assert (records[3]["reason"], records[3]["details"]) == (
        "ConflictException",
        "Version conflict",
    )
    assert all("reason" not in r for r in records if r["status"] == "Success")
    # The same lines reach the log file, one JSON object per line.
    assert [r for r in running.file_records() if r in shadow_records(running)] == (
        shadow_records(running)
    )


# -- 5. authorization ----------------------------------------------------------------------------


async def test_device_cannot_update_or_hear_another_things_shadow(clients: Clients) -> None:
    running = clients.running
    own = f"{ACCOUNT_ARN}:topic/$aws/things/mine/*"
    limited = running.create_device(
        name="limited",
        policy=policy(
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": own},
            # Subscribing to any thing's topics is allowed; receiving them is not.
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": f"{ACCOUNT_ARN}:topicfilter/$aws/things/*",
            },
        ),
    )
    intruder = await clients.raw("intruder", device=limited)
    owner = await clients.raw("owner")
    theirs, mine = shadow_topic("theirs"), shadow_topic("mine")
    suback = await intruder.subscribe(f"{theirs}/update/+", f"{mine}/update/accepted")
    assert suback.reason_codes == (1, 1)
    await owner.subscribe(f"{theirs}/update/accepted", f"{theirs}/get/+")

    puback = await intruder.publish(f"{theirs}/update", b'{"state":{"desired":{"open":true}}}')
    assert puback is not None and puback.reason_code == NOT_AUTHORIZED
    await owner.expect_nothing()  # the shadow service never saw the request
    denied = await running.wait_for_record(
        lambda r: r["eventType"] == "Publish-In" and r["status"] == "Failure"
    )
    assert (denied["reason"], denied["topicName"]) == ("AUTHORIZATION_FAILURE", f"{theirs}/update")

    # The owner's own update is answered to the owner; the intruder's subscription to the
    # other thing's topics delivers nothing (iot:Receive is checked per message).
    topic, accepted = await request(owner, f"{theirs}/update", {"state": {"reported": {"a": 1}}})
    assert (topic, accepted["version"]) == (f"{theirs}/update/accepted", 1)
    await intruder.expect_nothing()
    topic, got = await request(owner, f"{theirs}/get")
    assert (topic, got["state"]) == (f"{theirs}/get/accepted", {"reported": {"a": 1}})

    # Its own thing's shadow works.
    topic, accepted = await request(intruder, f"{mine}/update", {"state": {"reported": {"a": 1}}})
    assert topic == f"{mine}/update/accepted"
    assert shadow_records(running)[-1]["topicName"] == f"{mine}/update"
    assert not [r for r in shadow_records(running) if r["status"] == "Failure"]


async def test_mqtt311_device_is_disconnected_for_another_things_shadow(clients: Clients) -> None:
    limited = clients.running.create_device(
        name="limited311",
        policy=policy(
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": f"{ACCOUNT_ARN}:topic/$aws/things/mine/*",
            },
        ),
    )
    intruder = await clients.raw("intruder311", level=4, device=limited)
    await intruder.send(Publish(f"{shadow_topic('theirs')}/update", b"{}", qos=1, packet_id=1))
    assert await intruder.expect_eof() == []  # AWS closes an MQTT 3.1.1 connection
    assert shadow_records(clients.running) == []


# -- errors and limits on /rejected --------------------------------------------------------------


def nested(levels: int) -> dict[str, Any]:
    """A state node ``{"desired": {"k": ... 1}}`` of ``levels`` objects (``state`` is level 1)."""
    value: Any = 1
    for _ in range(levels - 1):
        value = {"k": value}
    return {"desired": value}


def sized(size: int) -> dict[str, Any]:
    """A state whose compact JSON ``{"reported":{"k":"xx..."}}`` is ``size`` bytes."""
    return {"reported": {"k": "x" * (size - len('{"reported":{"k":""}}'))}}


ERRORS = [
    pytest.param(b'{"state":', 400, "Invalid JSON", id="invalid-json"),
    pytest.param(b"{}", 400, "Missing required node: state", id="no-state"),
    pytest.param(b'{"state":[]}', 400, "State node must be an object", id="state-array"),
    pytest.param(b'{"state":{"desired":1}}', 400, "Desired node must be an object", id="desired"),
    pytest.param(b'{"state":{"reported":"x"}}', 400, "Reported node must be an object", id="rep"),
    pytest.param(b'{"state":{"delta":{}}}', 400, "State contains an invalid node", id="node"),
    pytest.param(b'{"state":{},"version":-1}', 400, "Invalid version", id="version"),
    pytest.param(
        json.dumps({"state": {}, "clientToken": "t" * 65}).encode(),
        400,
        "Invalid clientToken",
        id="token-65",
    ),
    pytest.param(
        json.dumps({"state": nested(7)}).encode(),
        400,
        "JSON contains too many levels of nesting; maximum is 6",
        id="depth-7",
    ),
    pytest.param(
        json.dumps({"state": sized(8193)}).encode(),
        413,
        "The payload exceeds the maximum size allowed",
        id="size-8193",
    ),
    pytest.param(
        b'{"state":{"reported":{"k":"\xff"}}}',
        415,
        "Unsupported documented encoding; supported encoding is UTF-8",
        id="not-utf8",
    ),
]


@pytest.mark.parametrize(("payload", "code", "message"), ERRORS)
async def test_refused_update_is_answered_on_rejected(
    clients: Clients, payload: bytes, code: int, message: str
) -> None:
    device = await clients.raw("device")
    base = shadow_topic(THING)
    await device.subscribe(f"{base}/update/+", f"{base}/get/+")

    puback = await device.publish(f"{base}/update", payload)

    assert puback is not None and puback.reason_code == 0
    topic, document = await receive_json(device)
    assert topic == f"{base}/update/rejected"
    assert (document["code"], document["message"]) == (code, message)
    assert isinstance(document["timestamp"], int)
    # Nothing was stored.
    topic, _ = await request(device, f"{base}/get")
    assert topic == f"{base}/get/rejected"
    await device.expect_nothing()


@pytest.mark.parametrize(
    "state",
    [pytest.param(nested(6), id="depth-6"), pytest.param(sized(8192), id="size-8192")],
)
async def test_update_at_the_limits_is_accepted(clients: Clients, state: dict[str, Any]) -> None:
    device = await clients.raw("device")
    base = shadow_topic(THING)
    await device.subscribe(f"{base}/update/accepted")
    # A request subscriber sees the request itself: it is an ordinary PUBLISH.
    watcher = await clients.raw("watcher")
    await watcher.subscribe(f"{base}/update")

    topic, accepted = await request(device, f"{base}/update", {"state": state})

    assert (topic, accepted["version"], accepted["state"]) == (f"{base}/update/accepted", 1, state)
    request_seen = await watcher.receive_publish()
    assert json.loads(request_seen.payload) == {"state": state}


# -- names and storage failures -----------------------------------------------------------


@pytest.mark.parametrize(
    ("thing", "shadow"),
    [
        pytest.param(THING, "s" * 65, id="shadow-name-65"),
        pytest.param("t" * 129, None, id="thing-name-129"),
        pytest.param("lamp.1", None, id="thing-name-dot"),
    ],
)
async def test_invalid_thing_or_shadow_name_is_rejected(
    clients: Clients, thing: str, shadow: str | None
) -> None:
    device = await clients.raw("device")
    base = shadow_topic(thing, shadow)
    await device.subscribe(f"{base}/update/+")
    topic, document = await request(device, f"{base}/update", {"state": {"reported": {"a": 1}}})
    assert topic == f"{base}/update/rejected"
    assert document["code"] == 400


async def test_storage_failure_is_answered_with_500(clients: Clients) -> None:
    device = await clients.raw("device")
    base = shadow_topic(THING)
    await device.subscribe(f"{base}/update/accepted", f"{base}/update/rejected")
    # The twin first: an update the store takes is accepted.
    topic, _ = await request(device, f"{base}/update", {"state": {"reported": {"a": 0}}})
    assert topic == f"{base}/update/accepted"

    # Another process (a backup, the sqlite3 shell) holds the shadow file's write lock.
    locker = sqlite3.connect(clients.running.config.state_dir / "shadows.sqlite3")
    try:
        locker.execute("BEGIN IMMEDIATE")
        update = {"state": {"reported": {"a": 1}}}
        topic, document = await request(device, f"{base}/update", update)
    finally:
        locker.rollback()
        locker.close()
    assert topic == f"{base}/update/rejected"
    assert (document["code"], document["message"]) == (500, "Internal service failure")
    record = await clients.running.wait_for_record(
        lambda r: r.get("eventType") == "UpdateThingShadow" and r.get("status") == "Failure"
    )
    assert record["reason"] == "STORAGE_BUSY"
    assert "shadows.sqlite3: database is locked" in str(record["details"])
    await device.expect_nothing()  # still connected, and nothing was accepted


# -- the documented worked example (docs/shadows.md) -------------------------------------------

# The commands docs/shadows.md tells a newcomer to paste, run verbatim except the port (8883
# there); tests/docs_snippets.py finds them by name.
DEVICE_WAITS = snippet("shadows-device-waits").strip()
APP_UPDATES = snippet("shadows-app-updates").strip()
DEVICE_REPORTS = snippet("shadows-device-reports").strip()
APP_READS = snippet("shadows-app-reads").strip()
DOCUMENTED_OUTPUTS = {
    "delta": output("shadows-delta").strip(),
    "shadow.json": output("shadows-shadow-json").strip(),
}


def same_but_timestamps(actual: str, documented: str) -> bool:
    digits = re.compile(r'"timestamp":\d+')
    return digits.sub('"timestamp":0', actual) == digits.sub('"timestamp":0', documented)


@pytest.mark.skipif(
    shutil.which("mosquitto_sub") is None or shutil.which("mosquitto_pub") is None,
    reason="needs Debian's mosquitto-clients",
)
async def test_documented_worked_example(tmp_path: Path, children: list[ServeChild]) -> None:
    assert snippet("shadows-make-run") == "make run\n"  # make_run() runs what it runs
    # `make run` from a checkout: the repository's venv and config; certs/ and .state/ are
    # created in the working directory, which here is a fresh one with the venv linked in.
    venv = Path(sys.prefix)
    if not (venv / "bin" / "aws-iot-mock").exists():
        pytest.skip("the aws-iot-mock console script is not installed in this environment")
    (tmp_path / ".venv").symlink_to(venv)
    serve = make_run(tmp_path, children)
    await asyncio.to_thread(
        serve.wait_line, "stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT
    )
    port = int(serve.banner("mqtt").split()[0])

    # Terminal 2, the device: wait for one delta. It has subscribed once the broker logs it.
    waiting = subprocess.Popen(
        DEVICE_WAITS.replace("-p 8883", f"-p {port}"),
        shell=True,
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def subscribed(line: str) -> bool:
            record = json.loads(line)
            return bool(
                record["eventType"] == "Subscribe"
                and record["status"] == "Success"
                and record.get("clientId") == "demo-device"
            )

        await asyncio.to_thread(serve.wait_line, "stdout", subscribed, TIMEOUT)
        connected_by = time.monotonic()  # demo-device's CONNECT was accepted before this

        # Terminal 3, the app: ask for green.
        app = await asyncio.to_thread(run_documented, APP_UPDATES, port, tmp_path)
        assert (app.returncode, app.stdout, app.stderr) == (0, "", "")
        out, err = await asyncio.to_thread(waiting.communicate, timeout=TIMEOUT)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 0, err
    assert same_but_timestamps(out.strip(), DOCUMENTED_OUTPUTS["delta"]), out
    assert json.loads((tmp_path / "update.json").read_bytes())["version"] == 1

    # The device reports; the app reads the shadow: no delta left. AWS accepts one CONNECT per
    # second per client ID (a person typing the next command takes longer than that).
    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - connected_by)))
    reported = await asyncio.to_thread(run_documented, DEVICE_REPORTS, port, tmp_path)
    assert reported.returncode == 0, reported.stderr
    read = await asyncio.to_thread(run_documented, APP_READS, port, tmp_path)
    assert (read.returncode, read.stderr) == (0, "")
    shadow = (tmp_path / "shadow.json").read_text(encoding="utf-8")
    assert same_but_timestamps(shadow, DOCUMENTED_OUTPUTS["shadow.json"]), shadow
    assert read.stdout == shadow  # the snippet's `cat shadow.json`
    # One UpdateThingShadow line: the device's report (the app's requests came from the CLI).
    serve.wait_line("stdout", lambda line: "UpdateThingShadow" in line, TIMEOUT)
    records = [json.loads(line) for line in serve.lines["stdout"]]
    assert [r["status"] for r in records if r["eventType"] == "UpdateThingShadow"] == ["Success"]

    # Ctrl-C, `make run` again: the same document, version 2.
    serve.proc.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(serve.proc.wait, TIMEOUT) == 0
    again = make_run(tmp_path, children)
    await asyncio.to_thread(
        again.wait_line, "stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT
    )
    port = int(again.banner("mqtt").split()[0])
    (tmp_path / "shadow.json").unlink()
    read = await asyncio.to_thread(run_documented, APP_READS, port, tmp_path)
    assert (read.returncode, read.stderr) == (0, "")
    after = (tmp_path / "shadow.json").read_text(encoding="utf-8")
    assert json.loads(after)["state"] == json.loads(shadow)["state"]
    assert json.loads(after)["metadata"] == json.loads(shadow)["metadata"]
    assert json.loads(after)["version"] == 2
