"""The console's HTTP endpoints and live stream, with real HTTP and MQTT clients.

Each page's data comes from the same service layers as the APIs: a paho device appears on the
connections stream, the console's publish reaches a paho subscriber through the ingress, its
disconnect is DeleteConnection's, its shadow update sends the delta a device subscribed to.
Every refusal has a passing twin.
"""

from __future__ import annotations

import json
import queue
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from paho.mqtt.enums import MQTTProtocolVersion

from aws_iot_mock.console.access import COOKIE_NAME
from aws_iot_mock.testing import DeviceRefusedError, IotBrokerThread, paho_client
from tests.console_client import TIMEOUT, ConsoleHttp, EventStream, bundle_device, received
from tests.docs_snippets import output, snippet

# docs/console.md's fixed token (control_plane.console_token), as a reader configures it.
TOKEN_CONFIG: dict[str, Any] = yaml.safe_load(snippet("console-token-config"))
TOKEN: str = TOKEN_CONFIG["control_plane"]["console_token"]


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread(aws_quotas=False) as running:
        yield running


@pytest.fixture
def console(broker: IotBrokerThread) -> ConsoleHttp:
    return ConsoleHttp(broker.ports["api"])


@pytest.fixture
def events(console: ConsoleHttp) -> Iterator[EventStream]:
    stream = EventStream(console, "?topic=console/%23")
    yield stream
    stream.close()


# -- pages ---------------------------------------------------------------------------------------


def test_the_pages_are_served_from_the_package_with_nothing_from_elsewhere(
    console: ConsoleHttp,
) -> None:
    status, headers, body = console.request("GET", "/console/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert b'src="/console/static/console.js"' in body
    for name in ("console.js", "console.css"):
        status, _, asset = console.request("GET", f"/console/static/{name}")
        assert status == 200
        assert (
            asset == resources.files("aws_iot_mock.console").joinpath("static", name).read_bytes()
        )
    # Offline: no page or asset loads anything from another host.
    for item in resources.files("aws_iot_mock.console").joinpath("static").iterdir():
        assert not re.search(r"https?://", item.read_text(encoding="utf-8")), item.name
    # Refusal twins: outside the static files, and a name that climbs out.
    assert console.request("GET", "/console/static/nothing.js")[0] == 404
    assert console.request("GET", "/console/static/..%2Fendpoint.py")[0] == 404
    assert console.request("GET", "/console")[1]["location"] == "/console/"


def test_the_control_plane_still_answers_beside_the_console(broker: IotBrokerThread) -> None:
    status, _, body = ConsoleHttp(broker.ports["api"]).request(
        "GET", "/things", headers={"Authorization": _sigv4_dummy()}
    )
    # Not the console's answer: the iot API's (SigV4 is checked, the route is ListThings).
    assert b"console" not in body.lower()
    assert status in (200, 403)


def _sigv4_dummy() -> str:
    return "not-sigv4"


# -- overview ------------------------------------------------------------------------------------


def test_overview_lists_the_doors_and_serves_the_root_ca(
    broker: IotBrokerThread, console: ConsoleHttp
) -> None:
    overview = console.get("/console/api/overview")
    doors = {door["door"]: door["port"] for door in overview["doors"]}
    assert doors == broker.ports
    assert overview["endpoint"] == broker.endpoint
    assert overview["securityPolicy"] == broker.config.tls.security_policy
    assert {"connected", "messagesPerSecond", "refusalsLastMinute"} <= overview.keys()
    status, headers, pem = console.request("GET", "/console/api/root-ca.pem")
    assert status == 200
    assert "attachment" in headers["content-disposition"]
    assert pem == broker.root_ca_path.read_bytes()


# -- connections ---------------------------------------------------------------------------------


def test_a_device_appears_live_and_the_console_disconnects_it(
    broker: IotBrokerThread, console: ConsoleHttp, events: EventStream
) -> None:
    device = broker.create_device("console-lamp")
    client = paho_client(device, MQTTProtocolVersion.MQTTv5)
    gone: queue.Queue[Any] = queue.Queue()
    client.on_disconnect = lambda _c, _u, _flags, reason, _p: gone.put(reason)

    def listed(document: dict[str, Any]) -> bool:
        return any(row["clientId"] == "console-lamp" for row in document["connections"])

    connections = events.wait("connections", listed)
    row = next(r for r in connections["connections"] if r["clientId"] == "console-lamp")
    assert (row["door"], row["protocolVersion"]) == ("mqtt", "5")
    assert row["principalId"] == device.certificate_id
    # The things attached to the certificate come from the control plane (ListPrincipalThings).
    listed_row = _wait_for_thing(events, "console-lamp")
    assert listed_row["things"] == ["console-lamp"]

    before = events.mark()
    status, answer = console.post("/console/api/disconnect", {"clientId": "console-lamp"})
    assert (status, answer) == (200, {"clientId": "console-lamp", "disconnected": True})
    # MQTT 5 DISCONNECT 0x98 Administrative action, as DeleteConnection sends.
    assert gone.get(timeout=TIMEOUT).value == 0x98
    events.wait("connections", lambda document: not listed(document), since=before)
    record = events.wait(
        "log",
        lambda e: (
            e["record"]["eventType"] == "Disconnect"
            and e["record"].get("clientId") == "console-lamp"
        ),
    )["record"]
    assert record["disconnectReason"] == "API_INITIATED_DISCONNECT"
    # Refusal twin: nobody to disconnect.
    status, answer = console.post("/console/api/disconnect", {"clientId": "console-lamp"})
    assert status == 404
    assert answer["message"] == "Client console-lamp is not connected"
    client.loop_stop()


def _wait_for_thing(events: EventStream, client_id: str) -> dict[str, Any]:
    document = events.wait(
        "connections",
        lambda d: any(r["clientId"] == client_id and r["things"] for r in d["connections"]),
    )
    return next(r for r in document["connections"] if r["clientId"] == client_id)


# -- log -----------------------------------------------------------------------------------------


def test_a_refused_device_is_logged_with_its_explanation_and_filters_apply(
    broker: IotBrokerThread, console: ConsoleHttp
) -> None:
    device = broker.create_device("console-refused")
    failures = EventStream(console, "?status=Failure&clientId=not-my-thing")
    try:
        with pytest.raises(DeviceRefusedError):
            paho_client(device, client_id="not-my-thing")
        entry = failures.wait("log", lambda e: e["record"].get("clientId") == "not-my-thing")
        assert entry["record"]["status"] == "Failure"
        reason = entry["record"]["reason"]
        catalogue = console.get("/console/api/reasons")["reasons"]
        assert entry["explanation"] == catalogue[reason]
        assert entry["explanation"]["meaning"]
    finally:
        failures.close()
    # The passing twin connects, and its success is not in the Failure filter's answer.
    client = paho_client(device)
    client.disconnect()
    client.loop_stop()
    only_failures = console.get("/console/api/log?status=Failure")["entries"]
    assert only_failures
    assert all(e["record"]["status"] == "Failure" for e in only_failures)
    successes = console.get("/console/api/log?status=Success&clientId=console-refused")["entries"]
    assert any(e["record"]["eventType"] == "Connect" for e in successes)
    assert all("explanation" not in e for e in successes)


# -- MQTT test client ----------------------------------------------------------------------------


def test_publish_from_the_console_reaches_a_device_and_the_console_subscription(
    broker: IotBrokerThread, console: ConsoleHttp
) -> None:
    device = broker.create_device("console-sub")
    client = paho_client(device, MQTTProtocolVersion.MQTTv5)
    inbox = received(client, "devices/console-sub/in")
    watching = EventStream(console, "?topic=devices/%2B/in")
    try:
        watching.wait("hello")
        status, answer = console.post(
            "/console/api/publish",
            {
                "topic": "devices/console-sub/in",
                "payload": '{"on": true}',
                "qos": 1,
                "contentType": "application/json",
                "userProperties": [["origin", "console"]],
            },
        )
        assert (status, answer) == (200, {"topic": "devices/console-sub/in", "published": True})
        message = inbox.get(timeout=TIMEOUT)
        assert json.loads(message.payload) == {"on": True}
        properties: Any = message.properties
        assert properties.ContentType == "application/json"
        assert properties.UserProperty == [("origin", "console")]
        seen = watching.wait("message", lambda m: m["topic"] == "devices/console-sub/in")
        assert seen["payload"] == '{"on": true}'
        assert seen["filters"] == ["devices/+/in"]
        assert seen["properties"]["userProperties"] == [["origin", "console"]]
        record = watching.wait(
            "log",
            lambda e: (
                e["record"].get("topicName") == "devices/console-sub/in"
                and e["record"]["eventType"] == "Publish-In"
            ),
        )["record"]
        assert (record["protocol"], record["principalId"]) == ("HTTP", "aws-iot-mock-console")
    finally:
        watching.close()
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"topic": "$aws/things/t/shadow/update/accepted", "payload": "{}"}, "RESERVED_TOPIC"),
        ({"topic": "a/b", "payload": "x", "qos": 2}, "QOS_NOT_SUPPORTED"),
    ],
)
def test_a_refused_publish_says_why_in_the_catalogue_s_words(
    console: ConsoleHttp, document: dict[str, Any], reason: str
) -> None:
    status, answer = console.post("/console/api/publish", document)
    assert status == 400
    assert answer["reason"] == reason
    assert answer["explanation"] == console.get("/console/api/reasons")["reasons"][reason]
    # Passing twin: the same publish to an ordinary topic at QoS 1.
    status, _ = console.post("/console/api/publish", {**document, "topic": "ok/topic", "qos": 1})
    assert status == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"payload": "x"}, "topic is required"),
        ({"topic": "a", "qos": "1"}, "qos must be a number"),
        (
            {"topic": "a", "userProperties": [["only-a-name"]]},
            "Each user property is [name, value]",
        ),
        (b"not json", "The body is not JSON"),
    ],
)
def test_a_malformed_publish_form_is_refused_with_what_is_wrong(
    console: ConsoleHttp, body: object, message: str
) -> None:
    status, answer = console.post("/console/api/publish", body)
    assert status == 400
    assert answer["message"].startswith(message)


def test_topic_filters_are_checked_as_aws_checks_them(console: ConsoleHttp) -> None:
    assert console.get("/console/api/topic-filter?topic=a/%2B/c")["topicFilters"] == ["a/+/c"]
    status, _, body = console.request("GET", "/console/api/topic-filter?topic=a/%23/c")
    assert status == 400
    assert b"a/#/c" in body
    assert EventStream(console, "?topic=a/%23/c").status == 400


# -- shadows -------------------------------------------------------------------------------------


def test_a_shadow_edited_in_the_console_sends_the_delta_to_the_device(
    broker: IotBrokerThread, console: ConsoleHttp
) -> None:
    device = broker.create_device("console-shadow")
    client = paho_client(device)
    deltas = received(client, "$aws/things/console-shadow/shadow/name/cfg/update/delta")
    watching = EventStream(console, "?topic=%24aws/things/console-shadow/shadow/name/cfg/%23")
    try:
        watching.wait("hello")
        status, answer = console.post(
            "/console/api/shadow",
            {
                "operation": "update",
                "thingName": "console-shadow",
                "shadowName": "cfg",
                "document": {"state": {"desired": {"color": "green"}}},
            },
        )
        assert status == 200
        assert answer["accepted"] is True
        assert answer["document"]["version"] == 1
        delta = json.loads(deltas.get(timeout=TIMEOUT).payload)
        assert delta["state"] == {"color": "green"}
        live = watching.wait("message", lambda m: m["topic"].endswith("/update/delta"))
        assert json.loads(live["payload"])["state"] == {"color": "green"}
    finally:
        watching.close()
        client.disconnect()
        client.loop_stop()
    listing = console.get("/console/api/shadows?thingName=console-shadow")
    assert listing == {"thingName": "console-shadow", "classic": False, "named": ["cfg"]}
    shown = console.get("/console/api/shadow?thingName=console-shadow&shadowName=cfg")
    assert shown["accepted"] is True
    assert shown["document"]["state"]["desired"] == {"color": "green"}
    assert "metadata" in shown["document"]
    # Refusal twin: a version conflict is the service's 409, answered to the console only.
    status, answer = console.post(
        "/console/api/shadow",
        {
            "operation": "update",
            "thingName": "console-shadow",
            "shadowName": "cfg",
            "document": {"state": {"desired": {"color": "red"}}, "version": 7},
        },
    )
    assert status == 200
    assert answer["accepted"] is False
    assert (answer["document"]["code"], answer["document"]["message"]) == (409, "Version conflict")
    missing = console.get("/console/api/shadow?thingName=console-shadow")
    assert (missing["accepted"], missing["document"]["code"]) == (False, 404)


def test_things_are_listed_through_the_control_plane(
    broker: IotBrokerThread, console: ConsoleHttp
) -> None:
    broker.create_thing("console-listed")
    assert "console-listed" in console.get("/console/api/things")["things"]


# -- registry ------------------------------------------------------------------------------------


def test_the_registry_page_reads_things_certificates_and_policies_through_the_control_plane(
    broker: IotBrokerThread, console: ConsoleHttp
) -> None:
    device = broker.create_device("console-registry", attributes={"room": "lab"})
    things = console.get("/console/api/registry/things")["things"]
    thing = next(t for t in things if t["thingName"] == "console-registry")
    assert thing["attributes"] == {"room": "lab"}
    detail = console.get("/console/api/registry/thing?thingName=console-registry")
    assert detail["principals"] == [device.certificate_arn]
    assert detail["thing"]["thingName"] == "console-registry"
    listed = console.get("/console/api/registry/certificates")["certificates"]
    assert {"certificateId": device.certificate_id, "status": "ACTIVE"}.items() <= next(
        c for c in listed if c["certificateId"] == device.certificate_id
    ).items()
    certificate = console.get(
        f"/console/api/registry/certificate?certificateId={device.certificate_id}"
    )
    assert certificate["things"] == ["console-registry"]
    assert certificate["policies"] == [device.policy_name]
    assert "BEGIN CERTIFICATE" in certificate["certificate"]["certificatePem"]
    names = [p["policyName"] for p in console.get("/console/api/registry/policies")["policies"]]
    assert device.policy_name in names
    policy = console.get(f"/console/api/registry/policy?policyName={device.policy_name}")
    assert "iot:Connect" in policy["policy"]["policyDocument"]
    assert policy["targets"] == [device.certificate_arn]
    # Refusal twin: the control plane's own error, as boto3 would get it.
    status, _, body = console.request("GET", "/console/api/registry/thing?thingName=nothing-here")
    assert status == 404
    assert json.loads(body)["code"] == "ResourceNotFoundException"


def test_a_certificate_status_set_in_the_console_takes_effect_on_the_next_connection(
    broker: IotBrokerThread, console: ConsoleHttp
) -> None:
    device = broker.create_device("console-status")
    status, answer = console.post(
        "/console/api/registry/certificate-status",
        {"certificateId": device.certificate_id, "newStatus": "INACTIVE"},
    )
    assert (status, answer["certificate"]["status"]) == (200, "INACTIVE")
    with pytest.raises(DeviceRefusedError) as refused:
        paho_client(device)
    assert any(r.get("reason") == "CERTIFICATE_NOT_ACTIVE" for r in refused.value.refusals)
    # Passing twin: active again, it connects.
    status, answer = console.post(
        "/console/api/registry/certificate-status",
        {"certificateId": device.certificate_id, "newStatus": "ACTIVE"},
    )
    assert (status, answer["certificate"]["status"]) == (200, "ACTIVE")
    client = paho_client(device)
    client.disconnect()
    client.loop_stop()
    # An internal status is not the console's to set, as UpdateCertificate refuses it.
    status, answer = console.post(
        "/console/api/registry/certificate-status",
        {"certificateId": device.certificate_id, "newStatus": "PENDING_TRANSFER"},
    )
    assert status == 400
    assert answer["message"] == "newStatus is one of ACTIVE, INACTIVE, REVOKED"


def test_a_certificate_created_in_the_console_comes_as_a_bundle_a_device_connects_with(
    broker: IotBrokerThread, console: ConsoleHttp, tmp_path: Path
) -> None:
    template = broker.create_device("console-bundle")
    before = len(console.get("/console/api/registry/certificates")["certificates"])
    # Refusal twin first: an unknown thing is refused before any key is made.
    status, answer = console.post(
        "/console/api/registry/certificates", {"thingName": "no-such-thing"}
    )
    assert (status, answer["code"]) == (404, "ResourceNotFoundException")
    assert len(console.get("/console/api/registry/certificates")["certificates"]) == before
    status, headers, body = console.request(
        "POST",
        "/console/api/registry/certificates",
        {"thingName": "console-bundle", "policyName": template.policy_name},
    )
    assert status == 201
    assert headers["content-type"] == "application/zip"
    device = bundle_device(body, tmp_path, "console-bundle", broker)
    assert headers["content-disposition"] == (
        f'attachment; filename="{device.certificate_id[:10]}-device-bundle.zip"'
    )
    certificate = console.get(
        f"/console/api/registry/certificate?certificateId={device.certificate_id}"
    )
    assert certificate["certificate"]["status"] == "ACTIVE"
    assert (certificate["things"], certificate["policies"]) == (
        ["console-bundle"],
        [template.policy_name],
    )
    client = paho_client(device)
    client.disconnect()
    client.loop_stop()


def test_test_authorization_from_the_console_is_the_control_plane_s(
    broker: IotBrokerThread, console: ConsoleHttp
) -> None:
    device = broker.create_device("console-authz")
    prefix = f"arn:aws:iot:{broker.config.region}:{broker.config.account_id}"
    form = {
        "principal": device.certificate_id,
        "clientId": "console-authz",
        "actionType": "PUBLISH",
        "resources": f"{prefix}:topic/devices/console-authz/telemetry\n",
    }
    status, answer = console.post("/console/api/registry/test-authorization", form)
    assert status == 200
    [result] = answer["authResults"]
    assert result["authDecision"] == "ALLOWED"
    assert result["allowed"]["policies"][0]["policyName"] == device.policy_name
    # Denied twin: another device's topic.
    other = {**form, "resources": [f"{prefix}:topic/devices/someone-else/telemetry"]}
    status, answer = console.post("/console/api/registry/test-authorization", other)
    assert answer["authResults"][0]["authDecision"] == "IMPLICIT_DENY"
    # A malformed form says what is wrong.
    status, answer = console.post(
        "/console/api/registry/test-authorization", {**form, "actionType": "DELETE"}
    )
    assert status == 400
    assert answer["message"] == "actionType is one of CONNECT, PUBLISH, SUBSCRIBE, RECEIVE"


def test_a_thing_created_in_the_console_is_in_the_registry(
    broker: IotBrokerThread, console: ConsoleHttp
) -> None:
    status, answer = console.post(
        "/console/api/registry/things",
        {"thingName": "console-created", "attributes": {"floor": "2"}},
    )
    assert (status, answer["thingName"]) == (200, "console-created")
    assert broker.registry.describe_thing("console-created").attributes == {"floor": "2"}
    status, answer = console.post("/console/api/registry/things", {"thingName": ""})
    assert (status, answer["message"]) == (400, "thingName is required")


# -- access --------------------------------------------------------------------------------------


def test_on_loopback_without_a_token_only_loopback_host_names_are_served(
    console: ConsoleHttp,
) -> None:
    assert console.request("GET", "/console/api/overview")[0] == 200
    for host in ("127.0.0.1", "[::1]"):
        assert ConsoleHttp(console.port, host_header=host).request("GET", "/console/")[0] == 200
    # DNS rebinding: a page of evil.example resolved to 127.0.0.1 is refused.
    status, _, body = ConsoleHttp(console.port, host_header="evil.example").request(
        "GET", "/console/api/overview"
    )
    assert status == 403
    assert b"not loopback" in body


def test_actions_must_be_json_from_the_console_s_own_origin(console: ConsoleHttp) -> None:
    document = {"topic": "ok/origin", "payload": "x"}
    form = console.request(
        "POST",
        "/console/api/publish",
        b"topic=ok/origin",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form[0] == 415
    other = console.request(
        "POST", "/console/api/publish", document, headers={"Origin": "http://evil.example"}
    )
    assert other[0] == 403
    own = console.request(
        "POST",
        "/console/api/publish",
        document,
        headers={"Origin": f"http://localhost:{console.port}"},
    )
    assert own[0] == 200


@pytest.fixture(scope="module")
def token_broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread(config=TOKEN_CONFIG) as running:
        yield running


def test_with_a_token_every_request_needs_it(token_broker: IotBrokerThread) -> None:
    port = token_broker.ports["api"]
    anonymous = ConsoleHttp(port)
    status, _, body = anonymous.request("GET", "/console/api/overview")
    assert status == 401
    assert b"token" in body
    assert EventStream(anonymous, "").status == 401
    assert ConsoleHttp(port, token="wrong-token-0123456789").request("GET", "/console/")[0] == 403
    # Passing twins: the header, then the address the banner prints, which sets the cookie.
    assert ConsoleHttp(port, token=TOKEN).request("GET", "/console/api/overview")[0] == 200
    status, headers, _ = anonymous.request("GET", f"/console/?token={TOKEN}")
    assert (status, headers["location"]) == (303, "/console/")
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    pair = cookie.split(";", 1)[0]
    status, _, _ = anonymous.request("GET", "/console/api/overview", headers={"Cookie": pair})
    assert status == 200
    # A token makes the Host rule moot (it is what a published Docker port needs).
    elsewhere = ConsoleHttp(port, host_header="iot-mock.internal", token=TOKEN)
    assert elsewhere.request("GET", "/console/api/overview")[0] == 200


def test_the_documented_console_addresses_are_the_banner_s(token_broker: IotBrokerThread) -> None:
    # The line without a token is the README's banner, which a test checks against `make run`.
    assert output("console-banner").strip() in output("make-run-banner").splitlines()
    label, url = output("console-token-banner").split()
    assert (label, url) == ("console:", f"http://localhost:9443/console/?token={TOKEN}")
    # Opened as documented (the test broker's port for 9443), it lets the browser in.
    status, headers, _ = ConsoleHttp(token_broker.ports["api"]).request(
        "GET", url.removeprefix("http://localhost:9443")
    )
    assert (status, headers["location"]) == (303, "/console/")
    assert headers["set-cookie"].startswith(f"{COOKIE_NAME}={TOKEN};")


def test_the_console_can_be_turned_off() -> None:
    with IotBrokerThread(config={"control_plane": {"console": False}}) as broker:
        status, _, body = ConsoleHttp(broker.ports["api"]).request("GET", "/console/")
        assert status != 200
        assert b"<html" not in body


def test_a_console_built_on_its_first_request_shows_what_happened_before() -> None:
    # The console and the control plane are built on the api door's first connection (a device
    # never needs them); the log records of the devices that came first are in its log all
    # the same, and the control plane answers that first request.
    with IotBrokerThread(aws_quotas=False) as fresh:
        broker = fresh._running_broker()
        assert broker._console is None and broker._control_plane is None
        device = fresh.create_device("early-device")
        with pytest.raises(DeviceRefusedError):
            paho_client(device, client_id="not-early-device")
        client = paho_client(device)
        client.disconnect()
        client.loop_stop()
        console = ConsoleHttp(fresh.ports["api"])
        entries = console.get("/console/api/log?clientId=early-device")["entries"]
        assert any(e["record"]["eventType"] == "Connect" for e in entries)
        refused = console.get("/console/api/log?status=Failure&clientId=not-early-device")
        assert refused["entries"] and "explanation" in refused["entries"][0]
        assert broker._console is not None
        # Later records reach the console directly (the early buffer is gone).
        assert not broker._early_records
        client = paho_client(device)
        client.disconnect()
        client.loop_stop()
        later = console.get("/console/api/log?clientId=early-device&eventType=Connect")
        assert len([e for e in later["entries"] if e["record"]["eventType"] == "Connect"]) == 2
