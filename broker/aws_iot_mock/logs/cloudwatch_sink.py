"""The optional CloudWatch Logs output: the AWSIotLogsV2 records, sent with boto3's ``logs`` client.

AWS IoT writes its log to the CloudWatch Logs group ``AWSIotLogsV2``
(https://docs.aws.amazon.com/iot/latest/developerguide/cloud-watch-logs.html); this output does
the same at a configured endpoint (a moto server, LocalStack, or AWS itself), so ``aws logs
filter-log-events --log-group-name AWSIotLogsV2`` and boto3's ``filter_log_events`` read our
records as they read AWS's. The group and the stream are created when missing.

How AWS IoT names its log streams is not documented (its console steps search the whole group:
"Search Log Group" on the page above). This output writes to one stream per broker start, named
``aws-iot-mock/YYYY/MM/DD/<random hex>`` (the UTC start date) unless configured; the name only
has to follow CloudWatch's rules (1..512 characters, no ``:`` or ``*``).

Records never wait on the network: ``put`` queues them (``logs.drain.Drain``, bounded in bytes)
and the drain's thread sends batches with ``PutLogEvents`` within its limits
(https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html): at
most 10,000 events and 1,048,576 bytes (each event's UTF-8 message plus 26 bytes), events in
chronological order, a batch spanning at most 24 hours. When the endpoint is slow or down, the
batch is retried with a growing pause while the queue fills; past its bound, records are dropped
and counted, and a ``LOG_RECORDS_DROPPED`` record with the count follows once a call succeeds.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from aws_iot_mock.config import CloudWatchConfig
from aws_iot_mock.logs.drain import Drain

__all__ = ["BATCH_BYTES", "BATCH_EVENTS", "EVENT_OVERHEAD", "CloudWatchLogsOutput", "batches"]

# PutLogEvents' limits (the API reference above).
BATCH_EVENTS = 10_000
BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
_BATCH_SPAN_MS = 24 * 60 * 60 * 1000
# Each call waits this long at most, so a dead endpoint costs the drain's thread, never the broker.
_CALL_TIMEOUT = 5.0

Event = tuple[int, str]  # (milliseconds since the epoch, message)


def event_size(event: Event) -> int:
    """What ``event`` counts for against ``BATCH_BYTES``."""
    return len(event[1].encode("utf-8")) + EVENT_OVERHEAD


def batches(events: Sequence[Event]) -> list[list[dict[str, object]]]:
    """Sort ``events`` by time and cut them into ``PutLogEvents`` batches within its limits."""
    out: list[list[dict[str, object]]] = []
    current: list[dict[str, object]] = []
    size = 0
    first = 0
    for stamp, message in sorted(events, key=lambda event: event[0]):
        cost = event_size((stamp, message))
        if current and (
            len(current) >= BATCH_EVENTS
            or size + cost > BATCH_BYTES
            or stamp - first >= _BATCH_SPAN_MS
        ):
            out.append(current)
            current, size = [], 0
        if not current:
            first = stamp
        current.append({"timestamp": stamp, "message": message})
        size += cost
    if current:
        out.append(current)
    return out


def default_stream_name(now: _dt.datetime | None = None) -> str:
    """A stream of this broker start's own: ``aws-iot-mock/2026/12/05/<hex>``."""
    moment = (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    return f"aws-iot-mock/{moment:%Y/%m/%d}/{uuid.uuid4().hex}"


class CloudWatchLogsOutput:
    """A ``LogSink`` output that sends each JSON line to CloudWatch Logs (a ``LogOutput``).

    Args:
        config: the ``logging.cloudwatch`` section.
        region: the region used when the section names none (the configuration's).
        drop_report: makes the JSON line saying how many lines were dropped.
        stderr: where notices go (the endpoint failing, recovering, records dropped).
        client_factory: makes the boto3 ``logs`` client (tests of the batching pass their own);
            by default one at ``config.endpoint_url``, made on the drain's thread at the first
            delivery (importing boto3 takes a while; the broker does not wait for it).
    """

    def __init__(
        self,
        config: CloudWatchConfig,
        *,
        region: str,
        drop_report: Callable[[int], str],
        stderr: TextIO | None = None,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config
        self.log_group = config.log_group
        self.log_stream = config.log_stream or default_stream_name()
        self.name = f"CloudWatch Logs {self.log_group}/{self.log_stream}"
        self._region = config.region or region
        self._factory = client_factory or self._new_client
        self._client: Any = None
        self._ready = False  # the group and the stream are known to exist

        def report(count: int) -> Event:
            return (_now_ms(), drop_report(count).rstrip("\n"))

        self._drain: Drain[Event] = Drain(
            self.name,
            self._deliver,
            size=event_size,
            drop_report=report,
            max_bytes=config.queue_bytes,
            batch_items=BATCH_EVENTS,
            batch_bytes=BATCH_BYTES,
            retry=True,
            stderr=stderr,
        )

    @property
    def dropped(self) -> int:
        """Records dropped since the output was made."""
        return self._drain.dropped

    def put(self, item: str) -> None:
        """Queue one JSON line, stamped now. Never blocks."""
        self._drain.put((_now_ms(), item.rstrip("\n")))

    def put_many(self, items: Sequence[str]) -> None:
        """Queue JSON lines, in order, stamped now. Never blocks."""
        now = _now_ms()
        self._drain.put_many([(now, item.rstrip("\n")) for item in items])

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record has been accepted by the endpoint."""
        return self._drain.flush(timeout)

    def close(self, grace: float = 2.0) -> bool:
        """Send what is queued within ``grace`` seconds; give up on a dead endpoint."""
        return self._drain.close(grace)

    # -- the drain's thread ---------------------------------------------------------------

    def _deliver(self, events: Sequence[Event]) -> None:
        if self._client is None:
            self._client = self._factory()
        client = self._client
        if not self._ready:
            self._create(client)
        for batch in batches(events):
            try:
                client.put_log_events(
                    logGroupName=self.log_group, logStreamName=self.log_stream, logEvents=batch
                )
            except client.exceptions.ResourceNotFoundException:
                # Deleted while we ran (someone cleaned up): create them again, then retry.
                self._ready = False
                raise

    def _create(self, client: Any) -> None:
        with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
            client.create_log_group(logGroupName=self.log_group)
        with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
            client.create_log_stream(logGroupName=self.log_group, logStreamName=self.log_stream)
        self._ready = True

    def _new_client(self) -> Any:
        import boto3  # noqa: PLC0415 - optional dependency (the cloudwatch extra), used lazily
        from botocore.config import Config  # noqa: PLC0415

        session = boto3.session.Session(region_name=self._region)
        credentials: dict[str, str] = {}
        if self.config.endpoint_url is not None and session.get_credentials() is None:
            # A moto server or LocalStack accepts any signature; AWS itself needs real
            # credentials, which boto3 finds where it always does (environment, profile, role).
            credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return session.client(
            "logs",
            endpoint_url=self.config.endpoint_url,
            config=Config(
                connect_timeout=_CALL_TIMEOUT,
                read_timeout=_CALL_TIMEOUT,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
            **credentials,
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
