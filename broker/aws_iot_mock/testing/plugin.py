"""pytest plugin: an AWS IoT Core broker per test in one fixture.

Registered through the ``pytest11`` entry point, so installing the package is enough (or pass
``-p aws_iot_mock.testing.plugin``). Fixtures:

* ``iot_broker``: a running ``IotBrokerThread`` for one test (fresh certificates, state, port);
* ``iot_broker_session``: one broker shared by the whole session (per xdist worker);
* ``iot_device``: ``iot_device("thing-1", policy=None)`` creates a device on ``iot_broker``;
* ``iot_broker_options``: the keyword arguments ``iot_broker`` is built with (``{}``; override the
  fixture in a conftest.py for a whole directory).

``@pytest.mark.iot_broker(aws_quotas=False, config={"tls": {...}})`` sets ``iot_broker``'s
arguments for one test (on top of ``iot_broker_options``): any ``IotBrokerThread`` argument, and
``config``, a mapping in the configuration file's shape (TLS policy, limits, logging level...).

The broker runs in its own thread, so the fixtures are plain synchronous fixtures that work in
sync tests and in async tests under pytest-asyncio's strict and auto modes alike. When a test
that uses a broker fails, its report gets an "aws-iot-mock refusals" section with the broker's
``Failure`` log records, so a refused device shows why.

The package is imported lazily: merely having the plugin installed costs other suites nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aws_iot_mock.testing import DeviceFiles, IotBrokerThread

__all__ = [
    "iot_broker",
    "iot_broker_options",
    "iot_broker_session",
    "iot_device",
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
]

REPORT_SECTION = "aws-iot-mock refusals"

# Per test: the brokers it used and the log index its own records start at.
_WATCHED = pytest.StashKey[list[tuple["IotBrokerThread", int]]]()
# Per session: the session-scoped broker, once created.
_SESSION_BROKER = pytest.StashKey["IotBrokerThread"]()


def _watch(item: pytest.Item, broker: IotBrokerThread, start: int) -> None:
    item.stash.setdefault(_WATCHED, []).append((broker, start))


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``iot_broker`` marker (``--strict-markers`` suites accept it)."""
    config.addinivalue_line(
        "markers",
        "iot_broker(**options): IotBrokerThread arguments for this test's iot_broker, e.g. "
        "aws_quotas=False or config={'tls': {'security_policy': '...'}}",
    )


@pytest.fixture
def iot_broker_options() -> dict[str, Any]:
    """Keyword arguments for ``iot_broker``'s ``IotBrokerThread``; override it to change them."""
    return {}


@pytest.fixture
def iot_broker(
    request: pytest.FixtureRequest, iot_broker_options: Mapping[str, Any]
) -> Iterator[IotBrokerThread]:
    """A running broker for this test (``IotBrokerThread``), stopped and removed afterwards.

    Built with ``iot_broker_options``, then the test's ``@pytest.mark.iot_broker(...)`` arguments
    (the nearest marker wins).
    """
    from aws_iot_mock.testing import IotBrokerThread  # noqa: PLC0415 (lazy: see the module doc)

    options = dict(iot_broker_options)
    marker = request.node.get_closest_marker("iot_broker")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.iot_broker takes keyword arguments only")
        options.update(marker.kwargs)
    with IotBrokerThread(**options) as broker:
        _watch(request.node, broker, 0)
        yield broker


@pytest.fixture(scope="session")
def iot_broker_session(request: pytest.FixtureRequest) -> Iterator[IotBrokerThread]:
    """One running broker for the whole session (each xdist worker gets its own).

    Tests share its registry, messages and logs: give devices distinct thing names, and call
    ``clear()`` if a test must not see earlier messages.
    """
    from aws_iot_mock.testing import IotBrokerThread  # noqa: PLC0415 (lazy: see the module doc)

    with IotBrokerThread() as broker:
        request.config.stash[_SESSION_BROKER] = broker
        try:
            yield broker
        finally:
            del request.config.stash[_SESSION_BROKER]


@pytest.fixture
def iot_device(iot_broker: IotBrokerThread) -> Callable[..., DeviceFiles]:
    """A factory: ``iot_device("thing-1", policy=None, attributes=None) -> DeviceFiles``.

    Creates the thing, an ACTIVE certificate attached to it and a policy (by default: connect as
    the thing, publish/subscribe/receive under ``devices/<thing>/`` and ``$aws/things/<thing>/``)
    on ``iot_broker``. For the session broker use ``iot_broker_session.create_device(...)``.
    """

    def create(
        thing_name: str,
        policy: str | Mapping[str, Any] | None = None,
        *,
        attributes: Mapping[str, str] | None = None,
    ) -> DeviceFiles:
        return iot_broker.create_device(thing_name, policy, attributes=attributes)

    return create


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """Note where a test's records start in the session broker's log, if it uses that broker."""
    before = item.config.stash.get(_SESSION_BROKER, None)
    start = len(before.logs) if before is not None else 0
    try:
        yield
    finally:
        broker = item.config.stash.get(_SESSION_BROKER, None)
        if broker is not None and "iot_broker_session" in getattr(item, "fixturenames", ()):
            _watch(item, broker, start if broker is before else 0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the broker's refusals to the report of a failed test that used a broker."""
    report = yield
    if report.failed:
        lines = [
            json.dumps(record)
            for broker, start in item.stash.get(_WATCHED, [])
            for record in broker.logs[start:]
            if record.get("status") == "Failure"
        ]
        if lines:
            report.sections.append((REPORT_SECTION, "\n".join(lines)))
    return report
