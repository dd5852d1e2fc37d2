"""The CLI-to-broker mailbox in ``jobs.sqlite3``: two connections to one file, as two processes.

The "CLI" side and the "broker" side each open the store (one SQLite connection each, as the two
processes would); the broker side answers with ``answer_requests`` on a thread that polls until
the test is done.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.state.jobs import JobStore
from aws_iot_mock.state.mailbox import answer_requests, call_through_broker


def service(operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """A stand-in control plane: echoes DescribeJob, refuses anything else."""
    if operation == "DescribeJob":
        return {"job": {"jobId": request["jobId"], "answeredBy": "broker"}}
    raise AwsApiError("ResourceNotFoundException", f"no {operation}", status=404)


@pytest.fixture
def broker_side(tmp_path: Path) -> Iterator[None]:
    store = JobStore.open(tmp_path)
    stop = threading.Event()

    def serve() -> None:
        while not stop.wait(0.05):  # the broker's mailbox timer
            answer_requests(store, service)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        store.close()


def local() -> dict[str, Any]:
    return {"answeredBy": "cli"}


def test_a_running_broker_answers_and_its_errors_come_back(
    tmp_path: Path, broker_side: None
) -> None:
    with JobStore.open(tmp_path) as cli:
        answer = call_through_broker(cli, "DescribeJob", {"jobId": "j"}, local)
        assert answer == {"job": {"jobId": "j", "answeredBy": "broker"}}
        with pytest.raises(AwsApiError) as refused:
            call_through_broker(cli, "DeleteJob", {"jobId": "j"}, local)
        assert (refused.value.code, refused.value.status) == ("ResourceNotFoundException", 404)
        # Answered requests are removed by the CLI that read them.
        assert cli.take_requests() == []


def test_without_a_broker_the_cli_runs_the_operation_itself(tmp_path: Path) -> None:
    with JobStore.open(tmp_path) as cli:
        assert call_through_broker(cli, "DescribeJob", {"jobId": "j"}, local) == {
            "answeredBy": "cli"
        }
        # The request was withdrawn: a broker starting later does not run it again.
        assert cli.take_requests() == []
