"""The pytest plugin and the ``aws_iot_mock.testing`` API, as a user's test suite sees them.

Example test files are run with ``pytester`` in a subprocess (a fresh interpreter, as ``pytest``
would be run by a user), with their own ini file: ``filterwarnings = error`` there too, so a
leaked socket or thread warning fails them. The README section's examples ("Using it in your tests")
are extracted verbatim and run the same way.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from awscrt import mqtt

from aws_iot_mock.cli import main as cli_main
from aws_iot_mock.testing import (
    DeviceRefusedError,
    IotBroker,
    IotBrokerThread,
    awsiot_connection,
    default_device_policy,
    paho_client,
)
from aws_iot_mock.testing.plugin import REPORT_SECTION
from tests.docs_snippets import snippet

pytest_plugins = ["pytester"]

TIMEOUT = 10.0


def _plugin_autoloaded() -> bool:
    """Whether the ``pytest11`` entry point is installed (then ``-p`` would register it twice)."""
    return any(
        ep.value == "aws_iot_mock.testing.plugin"
        for ep in importlib.metadata.entry_points(group="pytest11")
    )


PLUGIN_ARGS: tuple[str, ...] = () if _plugin_autoloaded() else ("-p", "aws_iot_mock.testing.plugin")


def write_ini(pytester: pytest.Pytester, asyncio_mode: str = "strict") -> None:
    pytester.makeini(
        f"""
        [pytest]
        asyncio_mode = {asyncio_mode}
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*PLUGIN_ARGS, "-p", "no:cacheprovider", *args)


# -- user-style test files through pytester ----------------------------------------------------

SYNC_PAHO = """
import threading

from paho.mqtt.enums import MQTTProtocolVersion

from aws_iot_mock.testing import paho_client


def test_paho_round_trip(iot_broker, iot_device):
    device = iot_device("sensor-1")
    client = paho_client(device, MQTTProtocolVersion.MQTTv5)
    received = []
    subscribed = threading.Event()
    got = threading.Event()

    def on_message(client, userdata, message):
        received.append((message.topic, message.payload))
        got.set()

    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = on_message
    client.subscribe("devices/sensor-1/+", qos=1)
    assert subscribed.wait(5)
    client.publish("devices/sensor-1/reading", b"42", qos=1).wait_for_publish(5)

    message = iot_broker.wait_for_message("devices/sensor-1/#")
    assert (message.topic, message.payload, message.qos) == ("devices/sensor-1/reading", b"42", 1)
    assert message.client_id == "sensor-1"
    assert got.wait(5)
    assert received == [("devices/sensor-1/reading", b"42")]
    client.disconnect()
    client.loop_stop()
    assert iot_broker.refusals == []


def test_not_stopping_the_client_is_fine(iot_broker, iot_device):
    paho_client(iot_device("sensor-2"))  # the fixture disconnects it
"""


ASYNC_SDK = """
import asyncio
{import_pytest}
from awscrt import mqtt

from aws_iot_mock.testing import awsiot_connection


{mark}async def test_sdk_publishes(iot_broker, iot_device):
    device = iot_device("pump-7")
    connection = await asyncio.to_thread(awsiot_connection, device)
    published, _ = connection.publish(
        topic="devices/pump-7/state", payload='{{"on": true}}', qos=mqtt.QoS.AT_LEAST_ONCE
    )
    await asyncio.wrap_future(published)
    message = await iot_broker.wait_for_message_async("devices/pump-7/state", timeout=5)
    assert message.payload == b'{{"on": true}}'
    # The blocking twin works from an async test too (the broker has its own thread).
    assert iot_broker.wait_for_message("devices/pump-7/+") == message
    await asyncio.wrap_future(connection.disconnect())
    assert (await iot_broker.wait_for_message_async("$aws/events/presence/disconnected/pump-7"))


{mark}async def test_sdk_refused_with_wrong_client_id(iot_broker, iot_device):
    iot_device("pump-7")
    impostor = iot_device("pump-8")
    try:
        await asyncio.to_thread(awsiot_connection, impostor, client_id="pump-7")
    except ConnectionError as exc:
        assert "AUTHORIZATION_FAILURE" in str(exc)
    else:
        raise AssertionError("the impostor connected")
    refusal = await iot_broker.wait_for_refusal_async("AUTHORIZATION_FAILURE", client_id="pump-7")
    assert refusal["principalId"] == impostor.certificate_id
"""


REFUSED_PAHO = """
import pytest

from aws_iot_mock.testing import DeviceRefusedError, paho_client


def test_second_device_with_wrong_client_id_is_refused(iot_broker, iot_device):
    paho_client(iot_device("door-1"))
    intruder = iot_device("door-2")
    with pytest.raises(DeviceRefusedError) as refused:
        paho_client(intruder, client_id="door-1")
    assert [r["reason"] for r in refused.value.refusals] == ["AUTHORIZATION_FAILURE"]
    refusals = iot_broker.refusals
    assert len(refusals) == 1
    assert refusals[0]["reason"] == "AUTHORIZATION_FAILURE"
    assert refusals[0]["clientId"] == "door-1"
    assert refusals[0]["principalId"] == intruder.certificate_id
"""


FAILING = """
import pytest

from aws_iot_mock.testing import DeviceRefusedError, paho_client


def test_fails_after_a_refusal(iot_broker, iot_device):
    intruder = iot_device("gate-2")
    with pytest.raises(DeviceRefusedError):
        paho_client(intruder, client_id="gate-1")
    assert False, "the device could not connect"


def test_fails_without_refusal(iot_broker):
    assert False, "nothing to do with the broker"


def test_passes_after_a_refusal(iot_broker, iot_device):
    with pytest.raises(DeviceRefusedError):
        paho_client(iot_device("gate-3"), client_id="gate-9")


def test_session_broker_failure(iot_broker_session):
    intruder = iot_broker_session.create_device("gate-4")
    with pytest.raises(DeviceRefusedError):
        paho_client(intruder, client_id="gate-5")
    assert False


def test_session_broker_failure_shows_only_its_own(iot_broker_session):
    intruder = iot_broker_session.create_device("gate-6")
    with pytest.raises(DeviceRefusedError):
        paho_client(intruder, client_id="gate-7")
    assert False
"""


def test_failure_report_shows_the_refusal(pytester: pytest.Pytester) -> None:
    write_ini(pytester)
    pytester.makepyfile(test_failing=FAILING)
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=4)
    output = result.stdout.str()
    sections = re.findall(rf"-+ {REPORT_SECTION} -+\n(.*?)(?=\n[_=-]{{5}})", output, re.S)
    # One section per failing test that saw a refusal, with only that test's refusals.
    assert len(sections) == 3, output
    records = [[json.loads(line) for line in section.splitlines()] for section in sections]
    assert [[r["clientId"] for r in recs] for recs in records] == [
        ["gate-1"],
        ["gate-5"],
        ["gate-7"],
    ]
    assert all(r["reason"] == "AUTHORIZATION_FAILURE" for recs in records for r in recs)


XDIST_FILE = """
import os
from pathlib import Path


def test_{name}(iot_broker, iot_broker_session, iot_device):
    device = iot_device("thing-{name}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    line = f"{name} {{worker}} {{iot_broker.port}} {{iot_broker_session.port}} {{device.port}}\\n"
    with open(Path(__file__).parent / "ports.txt", "a") as out:
        out.write(line)
"""


def test_xdist_workers_each_get_their_own_brokers(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    write_ini(pytester)
    pytester.makepyfile(
        test_one=XDIST_FILE.format(name="one"), test_two=XDIST_FILE.format(name="two")
    )
    # "each" runs every test on both workers, so both run brokers at the same time.
    result = run(pytester, "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=4)
    lines = [line.split() for line in (pytester.path / "ports.txt").read_text().splitlines()]
    assert {line[1] for line in lines} == {"gw0", "gw1"}
    session_ports = {line[1]: line[3] for line in lines}  # one session broker per worker
    assert len(set(session_ports.values())) == 2
    function_ports = [line[2] for line in lines]
    assert len(set(function_ports)) == len(lines)  # every test had its own broker
    assert all(line[2] == line[4] for line in lines)


DOCUMENTED_EXAMPLES = (
    "readme-pytest-example",
    "testing-paho-example",
    "testing-async-example",
    "testing-cloud-example",
    "testing-marker-example",
)


def _docs_examples() -> dict[str, str]:
    """The documented example files (README, docs/testing.md), by the file name they start with."""
    examples = {}
    for name in DOCUMENTED_EXAMPLES:
        text = snippet(name)
        match = re.fullmatch(r"# (test_\w+\.py)", text.splitlines()[0])
        assert match, f"{name} must start with '# test_<name>.py'"
        examples[match.group(1)] = text
    return examples


def _write_user_suite(pytester: pytest.Pytester, mode: str) -> list[str]:
    """A user's suite: the README examples plus ours; returns the test IDs that must pass."""
    write_ini(pytester, asyncio_mode=mode)
    examples = _docs_examples()
    assert set(examples) == {
        "test_thermostat.py",
        "test_thermostat_paho.py",
        "test_thermostat_async.py",
        "test_thermostat_cloud.py",
        "test_thermostat_config.py",
    }
    for name, text in examples.items():
        (pytester.path / name).write_text(text, encoding="utf-8")
    marked = mode == "strict"
    pytester.makepyfile(
        test_async=ASYNC_SDK.format(
            import_pytest="import pytest\n" if marked else "",
            mark="@pytest.mark.asyncio\n" if marked else "",
        ),
        test_sync=SYNC_PAHO,
        test_refused=REFUSED_PAHO,
    )
    return [
        "test_thermostat.py::test_thermostat_reports_temperature",
        "test_thermostat.py::test_wrong_client_id_is_refused",
        "test_thermostat_paho.py::test_thermostat_hears_its_setpoint",
        "test_thermostat_cloud.py::test_the_cloud_sets_the_temperature",
        "test_thermostat_cloud.py::test_a_command_from_the_cloud",
        "test_thermostat_config.py::test_reconnecting_at_once",
        "test_thermostat_async.py::test_thermostat_reports_asynchronously",
        "test_async.py::test_sdk_publishes",
        "test_async.py::test_sdk_refused_with_wrong_client_id",
        "test_sync.py::test_paho_round_trip",
        "test_sync.py::test_not_stopping_the_client_is_fine",
        "test_refused.py::test_second_device_with_wrong_client_id_is_refused",
    ]


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_user_suite_passes(pytester: pytest.Pytester, mode: str) -> None:
    """Sync (paho) and async (awsiotsdk) tests, and the README's examples, under both modes."""
    expected = _write_user_suite(pytester, mode)
    result = run(pytester, "-v")
    result.stdout.fnmatch_lines_random([f"{test_id} PASSED*" for test_id in expected])
    result.assert_outcomes(passed=len(expected))


def test_plugin_loads_beside_a_users_own_broker_package(pytester: pytest.Pytester) -> None:
    """A project with its own ``broker`` package still gets the fixtures (import name is unique).

    Before the package was renamed, pytest imported the user's ``broker/`` and failed with
    ``No module named 'broker.testing'`` before collecting anything.
    """
    write_ini(pytester)
    package = pytester.path / "broker"
    package.mkdir()
    (package / "__init__.py").write_text('NAME = "the own broker"\n', encoding="utf-8")
    (package / "testing.py").write_text("raise ImportError('not the plugin')\n", encoding="utf-8")
    pytester.makeconftest("")  # rootdir-relative imports: ./broker shadows any installed 'broker'
    pytester.makepyfile(
        test_own_broker="""
import broker

from paho.mqtt.enums import MQTTProtocolVersion

from aws_iot_mock.testing import paho_client


def test_both_brokers(iot_broker, iot_device):
    assert broker.NAME == "the own broker"
    client = paho_client(iot_device("own-1"), protocol=MQTTProtocolVersion.MQTTv311)
    try:
        client.publish("devices/own-1/x", b"1", qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    assert iot_broker.wait_for_message("devices/own-1/x").payload == b"1"
"""
    )
    result = run(pytester, "-v")
    result.stdout.fnmatch_lines(["*test_both_brokers PASSED*"])
    result.assert_outcomes(passed=1)


def test_plugin_import_is_light() -> None:
    """Installing the plugin must cost unrelated suites nothing: the broker loads on use."""
    code = (
        "import sys, aws_iot_mock.testing.plugin\n"
        "assert 'aws_iot_mock.server.app' not in sys.modules, 'the broker was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- the API directly --------------------------------------------------------------------------


def _fds() -> set[str]:
    gc.collect()
    return set(os.listdir("/proc/self/fd"))


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def _thread_cycle() -> tuple[float, Path]:
    """Start a thread broker, leave a paho client connected, stop; (start-to-ready, its dir)."""
    started = time.perf_counter()
    broker = IotBrokerThread()
    broker.start()
    ready = time.perf_counter() - started
    directory = broker.certs_dir.parent
    assert directory.is_dir()
    assert broker.root_ca_path.is_file()
    assert (broker.endpoint, broker.host) == ("localhost", "127.0.0.1")
    assert broker.port > 0
    paho_client(broker.create_device("leak-check"))  # left connected: stop() disconnects it
    broker.stop()
    broker.stop()  # idempotent
    return ready, directory


def test_thread_broker_leaves_nothing_behind() -> None:
    _thread_cycle()  # warm up: imports, lazily created process-wide state
    threads, fds = _threads(), _fds()
    ready, directory = _thread_cycle()
    print(f"IotBrokerThread start-to-ready: {ready * 1000:.0f} ms")
    assert _threads() == threads
    assert _fds() == fds
    assert not directory.exists()


async def _async_cycle() -> tuple[float, IotBroker]:
    """Start an async broker, leave an awsiotsdk connection open, stop; (start-to-ready, it)."""
    started = time.perf_counter()
    async with IotBroker() as broker:
        ready = time.perf_counter() - started
        device = broker.create_device("async-1")
        connection = await asyncio.to_thread(awsiot_connection, device)
        published, _ = connection.publish(
            topic="devices/async-1/x", payload=b"1", qos=mqtt.QoS.AT_LEAST_ONCE
        )
        await asyncio.wait_for(asyncio.wrap_future(published), TIMEOUT)
        message = await broker.wait_for_message("devices/async-1/x")
        assert (message.payload, message.client_id) == (b"1", "async-1")
        # Left connected on purpose: the broker's stop disconnects it first.
    return ready, broker


async def test_async_broker_leaves_nothing_behind() -> None:
    await _async_cycle()  # warm up: awscrt's process-wide event loop group, the executor
    tasks, threads, fds = asyncio.all_tasks(), _threads(), _fds()
    ready, broker = await _async_cycle()
    print(f"IotBroker start-to-ready: {ready * 1000:.0f} ms")
    assert asyncio.all_tasks() == tasks
    assert _threads() == threads
    assert _fds() == fds
    with pytest.raises(RuntimeError, match="not started"):
        _ = broker.certs_dir
    disconnects = [r for r in broker.logs if r["eventType"] == "Disconnect"]
    assert [r.get("reason") for r in disconnects] == ["CLIENT_INITIATED_DISCONNECT"]


def test_start_failure_cleans_up() -> None:
    broker = IotBrokerThread(endpoint="not a host name")
    threads = _threads()
    with pytest.raises(Exception, match="endpoint"):
        broker.start()
    assert _threads() == threads
    with pytest.raises(RuntimeError, match="not started"):
        _ = broker.port


@pytest.fixture
def thread_broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread() as broker:
        yield broker


def _cli(capsys: pytest.CaptureFixture[str], broker: IotBrokerThread, *argv: str) -> object:
    capsys.readouterr()
    dirs = ["--certs-dir", str(broker.certs_dir), "--state-dir", str(broker.config.state_dir)]
    assert cli_main([*argv, *dirs]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if out.strip() else None


def _shape(data: object) -> object:
    """Keys (recursively) and value types: what must match between the CLI and the API."""
    if isinstance(data, dict):
        return {key: _shape(value) for key, value in data.items()}
    return type(data).__name__


def test_api_returns_what_the_cli_prints(
    thread_broker: IotBrokerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = thread_broker
    api_thing = broker.create_thing("api-thing", {"room": "kitchen"})
    cli_thing = _cli(capsys, broker, "create-thing", "--thing-name", "cli-thing")
    assert _shape(api_thing) == _shape(cli_thing)
    assert api_thing["thingName"] == "api-thing"

    api_keys = broker.create_keys_and_certificate(set_as_active=False)
    cli_keys = _cli(capsys, broker, "create-keys-and-certificate")
    assert _shape(api_keys) == _shape(cli_keys)

    document = default_device_policy("api-thing")
    api_policy = broker.create_policy("api-policy", document)
    cli_policy = _cli(
        capsys,
        broker,
        "create-policy",
        "--policy-name",
        "cli-policy",
        "--policy-document",
        json.dumps(document),
    )
    assert _shape(api_policy) == _shape(cli_policy)
    assert json.loads(api_policy["policyDocument"]) == document

    arn = api_keys["certificateArn"]
    # AttachPolicy, AttachThingPrincipal and UpdateCertificate print nothing (return None).
    broker.attach_policy("api-policy", arn)
    broker.attach_thing_principal("api-thing", arn)
    broker.update_certificate(api_keys["certificateId"], "ACTIVE")
    # The CLI sees what the API did (same registry), and the other way round.
    described = _cli(capsys, broker, "describe-certificate", "--certificate-id", arn[-64:])
    assert isinstance(described, dict)
    assert described["certificateDescription"]["status"] == "ACTIVE"
    assert _cli(capsys, broker, "list-thing-principals", "--thing-name", "api-thing") == {
        "principals": [arn]
    }
    assert broker.registry.describe_thing("cli-thing").thing_name == "cli-thing"


def test_inactive_certificate_refusal_and_waits(thread_broker: IotBrokerThread) -> None:
    broker = thread_broker
    device = broker.create_device("lamp-1")
    broker.update_certificate(device.certificate_id, "INACTIVE")
    with pytest.raises(DeviceRefusedError) as refused:
        paho_client(device)
    assert [r["reason"] for r in refused.value.refusals] == ["CERTIFICATE_NOT_ACTIVE"]
    assert broker.wait_for_refusal("CERTIFICATE_NOT_ACTIVE")["principalId"] == (
        device.certificate_id
    )
    with pytest.raises(AssertionError, match="no refusal with reason='NOPE' within"):
        broker.wait_for_refusal("NOPE", timeout=0.05)
    with pytest.raises(AssertionError, match="no message on 'devices/lamp-1/#'"):
        broker.wait_for_message("devices/lamp-1/#", timeout=0.05)
    with pytest.raises(ValueError, match="invalid topic filter"):
        broker.wait_for_message("devices/#/x")


def test_custom_policy_and_aws_topic_matching(thread_broker: IotBrokerThread) -> None:
    broker = thread_broker
    allow_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
    device = broker.create_device("free-1", json.dumps(allow_all))
    client = paho_client(device, client_id="any-name")
    client.publish("sensor", b"a", qos=1).wait_for_publish(TIMEOUT)
    client.publish("sensor/x", b"b", qos=1).wait_for_publish(TIMEOUT)
    # AWS: '#' needs at least one level, so "sensor/#" does not match "sensor".
    assert broker.wait_for_message("sensor/#").payload == b"b"
    assert broker.wait_for_message("+").payload == b"a"
    assert [m.topic for m in broker.messages if m.client_id == "any-name"] == [
        "sensor",
        "sensor/x",
    ]
    broker.clear()
    assert broker.messages == []
    assert broker.logs == []


def test_the_test_broker_serves_every_door_on_its_own_port(thread_broker: IotBrokerThread) -> None:
    ports = thread_broker.ports
    assert set(ports) == {"mqtt", "https", "alpn", "api"}
    assert len(set(ports.values())) == 4
    assert thread_broker.port == ports["mqtt"]
    ports["mqtt"] = 1  # a copy: the broker's own stays
    assert thread_broker.ports["mqtt"] == thread_broker.port


def test_broker_options_fixture_and_marker(pytester: pytest.Pytester) -> None:
    """A directory's ``iot_broker_options`` override, a test's marker on top, and a misuse."""
    write_ini(pytester)
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
def iot_broker_options():
    return {"config": {"tls": {"security_policy": "IoTSecurityPolicy_TLS13_1_2_2022_10"}}}
"""
    )
    pytester.makepyfile(
        test_options="""
import pytest

def test_the_directory_default(iot_broker):
    assert iot_broker.config.tls.security_policy == "IoTSecurityPolicy_TLS13_1_2_2022_10"

@pytest.mark.iot_broker(config={"tls": {"security_policy": "IoTSecurityPolicy_TLS13_1_3_2022_10"}})
def test_the_marker_wins(iot_broker):
    assert iot_broker.config.tls.security_policy == "IoTSecurityPolicy_TLS13_1_3_2022_10"

@pytest.mark.iot_broker(aws_quotas=False)
def test_the_marker_adds_to_the_options(iot_broker):
    assert iot_broker.config.limits.aws_quotas is False
    assert iot_broker.config.tls.security_policy == "IoTSecurityPolicy_TLS13_1_2_2022_10"

@pytest.mark.iot_broker("positional")
def test_a_positional_marker_argument_is_an_error(iot_broker):
    pass
"""
    )
    result = run(pytester, "-v", "--strict-markers")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*takes keyword arguments only*"])
