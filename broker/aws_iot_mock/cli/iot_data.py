"""The ``aws iot-data`` shadow verbs: get, update and delete-thing-shadow, list-named-shadows.

Flags and behaviour follow the AWS CLI: the response document is written to the ``outfile``
positional argument and nothing is printed on success; a rejected request prints
``An error occurred (<Name>) when calling the <Operation> operation: <message>`` and exits 254.

With a broker running on the same state directory, a request goes through it (a mailbox in
``shadows.sqlite3``), so an update made here publishes ``/update/accepted``, ``/update/delta``
and ``/update/documents`` exactly as one made over MQTT. Without one, the request is applied to
the stored shadows directly.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_iot_mock.cli.output import EXIT_SERVICE, print_response, print_service_error
from aws_iot_mock.config import Config
from aws_iot_mock.errors import BrokerError
from aws_iot_mock.services.shadows import ERROR_NAMES, ShadowService
from aws_iot_mock.state.shadows import ShadowStore

__all__ = ["add_shadow_verbs", "cmd_list_named_shadows", "cmd_shadow_operation"]

# How long the CLI waits for a running broker to claim its request (it polls every 0.2 s),
# and then for the answer.
_CLAIM_TIMEOUT = 1.0
_ANSWER_TIMEOUT = 10.0
_POLL = 0.05

_OPERATION_NAMES = {
    "get": "GetThingShadow",
    "update": "UpdateThingShadow",
    "delete": "DeleteThingShadow",
}
VERB_OPERATIONS = {
    "get-thing-shadow": "get",
    "update-thing-shadow": "update",
    "delete-thing-shadow": "delete",
}


def add_shadow_verbs(
    verbs: argparse._SubParsersAction[Any],
    add_common: Callable[[argparse.ArgumentParser], None],
    load: Callable[[argparse.Namespace], Config],
) -> None:
    """Register the iot-data verbs, each with its runner (``run``).

    ``add_common`` adds --config/--certs-dir/--state-dir; ``load`` reads the configuration they
    name.
    """
    for verb, help_text in (
        ("get-thing-shadow", "write a thing's shadow document to OUTFILE"),
        ("update-thing-shadow", "update a shadow; write the accepted document to OUTFILE"),
        ("delete-thing-shadow", "delete a shadow; write the response to OUTFILE"),
    ):
        parser = verbs.add_parser(verb, help=help_text)
        add_common(parser)
        parser.set_defaults(run=functools.partial(_run_shadow_operation, load, verb))
        parser.add_argument("--thing-name", required=True)
        parser.add_argument("--shadow-name")
        if verb == "update-thing-shadow":
            parser.add_argument(
                "--payload", required=True, help="file://PATH, fileb://PATH or the JSON itself"
            )
        parser.add_argument("outfile", type=Path)
    listing = verbs.add_parser(
        "list-named-shadows-for-thing", help="list the names of a thing's named shadows"
    )
    add_common(listing)
    listing.set_defaults(run=lambda args: cmd_list_named_shadows(load(args), args))
    listing.add_argument("--thing-name", required=True)


def _run_shadow_operation(
    load: Callable[[argparse.Namespace], Config], verb: str, args: argparse.Namespace
) -> int:
    return cmd_shadow_operation(load(args), args, verb)


def _payload(value: str) -> bytes:
    """AWS CLI blob argument: ``file://`` (text), ``fileb://`` (bytes), or the value itself."""
    for prefix in ("fileb://", "file://"):
        if value.startswith(prefix):
            path = Path(value.removeprefix(prefix))
            try:
                return path.read_bytes()
            except OSError as exc:
                raise BrokerError(f"cannot read {path}: {exc.strerror}") from exc
    return value.encode("utf-8")


def cmd_shadow_operation(config: Config, args: argparse.Namespace, verb: str) -> int:
    """Run get/update/delete-thing-shadow; returns the exit code."""
    operation = VERB_OPERATIONS[verb]
    payload = _payload(args.payload) if operation == "update" else b"{}"
    with ShadowStore.open(config.state_dir) as store:
        topic, body = _through_broker_or_locally(
            store, operation, args.thing_name, args.shadow_name, payload
        )
    if topic.endswith("/rejected"):
        error = json.loads(body)
        name = ERROR_NAMES.get(int(error.get("code", 500)), "InternalFailureException")
        print_service_error(_OPERATION_NAMES[operation], name, str(error.get("message", "")))
        return EXIT_SERVICE
    args.outfile.write_bytes(body)
    return 0


def _through_broker_or_locally(
    store: ShadowStore, operation: str, thing_name: str, shadow_name: str | None, payload: bytes
) -> tuple[str, bytes]:
    request_id = store.post_request(operation, thing_name, shadow_name, payload)
    deadline = time.monotonic() + _CLAIM_TIMEOUT
    while time.monotonic() < deadline:
        taken, answer = store.request_status(request_id)
        if answer is not None:
            return answer
        if taken:
            break
        time.sleep(_POLL)  # polling another process's writes to a shared SQLite file
    else:
        if store.withdraw_request(request_id):
            # No broker is running on this state directory: apply the request here.
            service = ShadowService(store, publish=None, emit=lambda _record: None, clock=time.time)
            return service.process(operation, thing_name, shadow_name, payload).response
    deadline = time.monotonic() + _ANSWER_TIMEOUT
    while time.monotonic() < deadline:
        _taken, answer = store.request_status(request_id)
        if answer is not None:
            return answer
        time.sleep(_POLL)
    raise BrokerError("the running broker did not answer the shadow request within 10 s")


def cmd_list_named_shadows(config: Config, args: argparse.Namespace) -> int:
    """list-named-shadows-for-thing: ``{"results": [...], "timestamp": <epoch s>}``."""
    with ShadowStore.open(config.state_dir) as store:
        names = store.list_named_shadows(args.thing_name)
    print_response({"results": names, "timestamp": int(time.time())})
    return 0
