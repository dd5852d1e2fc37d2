"""The message a rule's ``errorAction`` receives when its actions fail.

Source: AWS IoT developer guide, "Error handling (error action)"
(https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html): "If a problem
occurs when triggering an action, the rules engine triggers an error action"; "A single message
is generated per rule and message. For example, if two rule actions in the same rule fail, the
error action receives one message that contains both errors." Its fields are ``ruleName``,
``topic``, ``cloudwatchTraceId``, ``clientId``, ``base64OriginalPayload`` and ``failures`` (each
``failedAction``, ``failedResource``, ``errorMessage``).

SQL evaluation problems do not trigger the error action ("The error handling covered in this
topic is for rule actions").

Pure: no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ActionFailure", "error_action_document", "failed_action_name"]


def failed_action_name(action_type: str) -> str:
    """The ``failedAction`` name of an action type: ``s3`` -> ``S3Action``.

    AWS shows ``S3Action`` (error action page) and ``RepublishAction`` (rules engine logs); the
    other names follow the same pattern (UNCONFIRMED), e.g. ``DynamoDBv2Action``.
    """
    return action_type[:1].upper() + action_type[1:] + "Action"


@dataclass(frozen=True, slots=True)
class ActionFailure:
    """One action that could not be performed.

    Attributes:
        action_type: the Action member name (``s3``, ``sqs``, ``http``, ...).
        failed_resource: the resource it addressed (bucket, queue URL, topic, URL, ...).
        error_message: what went wrong, in AWS's style ("Failed to put S3 object. The error
            received was ... Message arrived on: <topic>, Action: s3, Bucket: ...").
    """

    action_type: str
    failed_resource: str
    error_message: str

    @property
    def failed_action(self) -> str:
        """The ``failedAction`` name (``S3Action``)."""
        return failed_action_name(self.action_type)


def error_action_document(
    *,
    rule_name: str,
    topic: str,
    trace_id: str,
    client_id: str | None,
    payload: bytes,
    failures: Sequence[ActionFailure],
) -> dict[str, object]:
    """The JSON document an errorAction is performed with, for one rule and one message.

    Args:
        rule_name: the rule whose actions failed.
        topic: "The topic on which the original message was received".
        trace_id: ``cloudwatchTraceId``, "A unique identity referring to the error logs in
            CloudWatch" (the traceId of the rules engine log entries for this message).
        client_id: "The client ID of the message publisher"; None gives ``"n/a"`` like
            ``clientid()`` for messages not sent over MQTT.
        payload: the original message payload (base64-encoded into the document).
        failures: every failed action of this rule for this message, in action order.

    Returns:
        The document; serialize it with ``json.dumps`` to get the error action's payload.
    """
    return {
        "ruleName": rule_name,
        "topic": topic,
        "cloudwatchTraceId": trace_id,
        "clientId": "n/a" if client_id is None else client_id,
        "base64OriginalPayload": base64.b64encode(payload).decode("ascii"),
        "failures": [
            {
                "failedAction": failure.failed_action,
                "failedResource": failure.failed_resource,
                "errorMessage": failure.error_message,
            }
            for failure in failures
        ],
    }
