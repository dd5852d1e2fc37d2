"""Rule actions: deliver a rule's SQL result to MQTT, HTTP endpoints, commands and AWS services.

Shell module: it performs network and process I/O, each call bounded by a timeout, and returns
an outcome value (never raises for a delivery problem). Action parameters are the JSON shapes of
botocore's ``iot`` model ``Action`` structure (the members of a TopicRulePayload's ``actions``
entries). Sources, AWS IoT developer guide (https://docs.aws.amazon.com/iot/latest/developerguide/):
``republish-rule-action.html``, ``https-rule-action.html``, ``lambda-rule-action.html``,
``sqs-rule-action.html``, ``sns-rule-action.html``, ``dynamodb-v2-rule-action.html``,
``kinesis-rule-action.html``, ``kinesis-firehose-rule-action.html``, ``s3-rule-action.html``,
``cloudwatch-logs-rule-action.html``, ``rule-error-handling.html``.

* ``republish`` is not performed here: :meth:`ActionRunner.run` returns a
  :class:`RepublishRequest` that the rules engine hands to the broker's ingress.
* ``http`` POSTs with :mod:`http.client` to confirmed destinations only (see
  :class:`ActionsConfig`), retrying as AWS does.
* ``lambda`` runs a configured local command with the payload on stdin, or invokes the function
  (asynchronously, "AWS IoT invokes Lambda functions asynchronously") at a Lambda endpoint.
* ``sqs``, ``sns``, ``dynamoDBv2``, ``kinesis``, ``firehose``, ``s3`` and ``cloudwatchLogs``
  call the service with boto3 (the ``aws`` extra) at the configured endpoint (a moto server,
  LocalStack). Real AWS is used only when the configuration gives credentials and no endpoint;
  credentials are never read from the environment.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import json
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from aws_iot_mock.hosts import is_loopback_host
from aws_iot_mock.mqtt.topics import validate_topic_name
from aws_iot_mock.rules.error_action import ActionFailure
from aws_iot_mock.rules.sql import EvaluationContext, SqlParseError, SqlResult, SqlVersion
from aws_iot_mock.rules.sql_values import Value, serialize
from aws_iot_mock.rules.templates import Template, TemplateError, parse_template

__all__ = [
    "AWS_EXTRA",
    "ActionFailure",
    "ActionInput",
    "ActionOutcome",
    "ActionRunner",
    "ActionSuccess",
    "ActionsConfig",
    "RepublishRequest",
    "action_type",
]

# The optional dependency group that brings boto3 (pyproject.toml).
AWS_EXTRA: Final = "aws"

# "The rules engine retries at most twice. The maximum number of tries is three."; no retry
# after "a response larger than 16384 bytes" (HTTP rule action, "HTTP action retry logic").
HTTP_MAX_TRIES: Final = 3
HTTP_NO_RETRY_RESPONSE_BYTES: Final = 16384
# Firehose batchMode: "The resulting array can't have more than 500 records".
FIREHOSE_BATCH_MAX: Final = 500
# Bytes of a local command's stderr kept in an error message.
_STDERR_TAIL: Final = 2000


@dataclass(frozen=True, slots=True)
class ActionsConfig:
    """Where actions deliver, and their limits.

    Attributes:
        aws_endpoint_url: the AWS services endpoint for sqs, sns, dynamoDBv2, kinesis, firehose,
            s3, cloudwatchLogs (and lambda unless ``lambda_endpoint_url`` is set), e.g. a moto
            server or LocalStack at ``http://127.0.0.1:4566``. None: real AWS, only when
            ``aws_access_key_id`` and ``aws_secret_access_key`` are given; otherwise these
            actions fail with a message saying so.
        aws_region: the region of the AWS clients.
        aws_access_key_id: credentials for the AWS clients; with an endpoint and none given,
            the dummy ``testing``/``testing`` pair (moto and LocalStack accept any).
        aws_secret_access_key: see ``aws_access_key_id``.
        lambda_endpoint_url: a separate Lambda endpoint; None uses ``aws_endpoint_url``.
        lambda_commands: function name or full function ARN -> command (argv) run with the
            payload on stdin; exit status 0 is success. Looked up before any endpoint.
        http_confirmed_destinations: URL prefixes the http action may POST to (AWS: "You must
            confirm and enable HTTPS endpoints before the rules engine can use them").
        http_allow_loopback: also allow any URL whose host is a loopback address or
            ``localhost``.
        http_ssl_context: TLS settings for ``https://`` URLs (e.g. a local CA); None uses the
            system's default verification.
        timeout_s: the time limit of one action (all tries of an http action together).
    """

    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    lambda_endpoint_url: str | None = None
    lambda_commands: Mapping[str, Sequence[str]] = field(default_factory=dict)
    http_confirmed_destinations: tuple[str, ...] = ()
    http_allow_loopback: bool = True
    http_ssl_context: ssl.SSLContext | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ActionInput:
    """One message's SQL result for the actions of one rule.

    Attributes:
        rule_name: the rule.
        sql_version: the rule's ``awsIotSqlVersion`` (templates are parsed with it).
        result: the SQL result (what the actions deliver).
        payload: the original message payload (what templates read).
        topic: the topic ``topic()`` reports.
        context: the evaluation context the SQL ran with.
    """

    rule_name: str
    sql_version: SqlVersion | str
    result: SqlResult
    payload: bytes
    topic: str
    context: EvaluationContext


@dataclass(frozen=True, slots=True)
class RepublishRequest:
    """A message for the broker to publish on the rule's behalf (``republish`` action).

    Attributes:
        topic: the rendered topic, ``$$`` already turned into ``$``.
        payload: the SQL result's payload.
        qos: 0 or 1.
        content_type: MQTT 5 Content Type, or None.
        response_topic: MQTT 5 Response Topic, or None.
        correlation_data: MQTT 5 Correlation Data (decoded from base64), or None.
        message_expiry_interval: MQTT 5 Message Expiry Interval in seconds, or None.
        payload_format_utf8: MQTT 5 Payload Format Indicator: True for ``UTF8_DATA``, False for
            ``UNSPECIFIED_BYTES``, None when not given.
        user_properties: MQTT 5 User Properties, in order.
    """

    topic: str
    payload: bytes
    qos: int = 0
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    message_expiry_interval: int | None = None
    payload_format_utf8: bool | None = None
    user_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ActionSuccess:
    """An action that was performed.

    Attributes:
        action_type: the Action member (``sqs``, ``republish``, ...).
        resources: what it addressed, for the RuleExecution log entry (e.g.
            ``{"RepublishTopic": "rules/republish"}``).
        republish: for ``republish``, the message the engine must publish.
    """

    action_type: str
    resources: dict[str, str]
    republish: RepublishRequest | None = None


ActionOutcome = ActionSuccess | ActionFailure


class _Failed(Exception):
    """Internal: an action failed; carries the resource and message for ActionFailure."""

    def __init__(self, resource: str, message: str) -> None:
        super().__init__(message)
        self.resource = resource
        self.message = message


def action_type(action: Mapping[str, Any]) -> str | None:
    """The one Action member set in ``action`` (``{"sqs": {...}}`` -> ``"sqs"``), else None."""
    present = [name for name, value in action.items() if value is not None]
    return present[0] if len(present) == 1 else None


@functools.lru_cache(maxsize=1024)
def _template(text: str, version: str) -> Template:
    return parse_template(text, version)


class ActionRunner:
    """Performs rule actions. Thread-safe: the engine may run actions in worker threads.

    Args:
        config: endpoints, confirmed destinations and limits.
        run_command: runs a local command (argv, stdin bytes, timeout) and returns its exit
            status and stderr; tests and the engine may replace it, the default uses
            :func:`subprocess.run`.
    """

    def __init__(
        self,
        config: ActionsConfig,
        *,
        run_command: Callable[[Sequence[str], bytes, float], tuple[int, bytes]] | None = None,
    ) -> None:
        self._config = config
        self._run_command = run_command or _run_command
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    # Entry point -------------------------------------------------------------------------------

    def run(self, action: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        """Perform one action of a rule for one message.

        Args:
            action: one entry of the rule's ``actions`` (or its ``errorAction``), e.g.
                ``{"sqs": {"queueUrl": "...", "roleArn": "...", "useBase64": false}}``.
            given: the message, its SQL result and the rule it matched.

        Returns:
            :class:`ActionSuccess` (with a :class:`RepublishRequest` for republish), or an
            :class:`ActionFailure` with AWS's error-action fields.
        """
        kind = action_type(action)
        if kind is None:
            return ActionFailure("unknown", "", "The action must set exactly one action type")
        parameters = action[kind]
        if not isinstance(parameters, Mapping):
            return ActionFailure(kind, "", f"The {kind} action's parameters must be an object")
        perform = _PERFORMERS.get(kind)
        if perform is None:
            return ActionFailure(kind, "", f"The {kind} action is not emulated by aws-iot-mock")
        try:
            return perform(self, parameters, given)
        except _Failed as failure:
            # AWS's messages end with where the message came from and what was addressed: "...
            # Message arrived on: error/action, Action: s3, Bucket: ..." (error action page).
            where = f"Message arrived on: {given.topic}, Action: {kind}"
            if failure.resource:
                where += f", Resource: {failure.resource}"
            return ActionFailure(kind, failure.resource, f"{failure.message}. {where}")

    # Helpers -----------------------------------------------------------------------------------

    def _render(self, parameters: Mapping[str, Any], name: str, given: ActionInput) -> str:
        """A (templated) string parameter rendered against the original message."""
        text = parameters.get(name)
        if not isinstance(text, str):
            raise _Failed("", f"The required parameter {name} is missing or not a string")
        return self._render_text(text, given)

    def _render_text(self, text: str, given: ActionInput) -> str:
        try:
            template = _template(text, SqlVersion(given.sql_version).value)
        except (TemplateError, SqlParseError, ValueError) as error:
            raise _Failed(text, str(error)) from None
        return template.render(
            given.payload, given.topic, given.context, variables=given.result.variables
        )

    def _client(self, service: str) -> Any:
        """A boto3 client for ``service`` at the configured endpoint (cached)."""
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._clients[service] = self._new_client(service)
            return client

    def _new_client(self, service: str) -> Any:
        config = self._config
        endpoint = config.aws_endpoint_url
        if service == "lambda" and config.lambda_endpoint_url is not None:
            endpoint = config.lambda_endpoint_url
        key, secret = config.aws_access_key_id, config.aws_secret_access_key
        if endpoint is None and (key is None or secret is None):
            raise _Failed(
                "",
                f"No AWS endpoint is configured for {service}: set aws_endpoint_url (a moto "
                "server or LocalStack), or give real AWS credentials explicitly",
            )
        try:
            import boto3  # noqa: PLC0415 - optional dependency, imported on first use
            from botocore.config import Config  # noqa: PLC0415
        except ImportError:
            raise _Failed(
                "",
                f"The {service} action needs boto3: pip install 'aws-iot-mock[{AWS_EXTRA}]'",
            ) from None
        session = boto3.session.Session(
            aws_access_key_id=key or "testing",
            aws_secret_access_key=secret or "testing",
            region_name=config.aws_region,
        )
        timeout = max(config.timeout_s, 0.1)
        return session.client(
            service,
            endpoint_url=endpoint,
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )

    def _call(self, service: str, resource: str, what: str, call: Callable[[Any], Any]) -> Any:
        """Run one AWS API call; errors become AWS-style failure messages."""
        client = self._client(service)
        try:
            from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415
        except ImportError:  # pragma: no cover - _client imported boto3 already
            raise _Failed(resource, "boto3 is missing") from None
        try:
            return call(client)
        except (ClientError, BotoCoreError) as error:
            raise _Failed(resource, f"Failed to {what}. The error received was {error}") from None

    # Actions -----------------------------------------------------------------------------------

    def _republish(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        topic = self._render(parameters, "topic", given)
        written = str(parameters["topic"])
        if topic.startswith("$$"):
            # "To republish to a reserved topic, which begins with $, use $$ instead".
            topic = topic[1:]
        elif written.startswith("$") and not written.startswith("${"):
            # A single '$' is refused here (what AWS does with it is UNCONFIRMED).
            raise _Failed(
                topic, f"Failed to republish to topic {topic}: use $$ for reserved topics"
            )
        # The topic's syntax is checked here; whether a reserved topic may be published is the
        # publish ingress's call when the engine publishes the request (one way in).
        problem = validate_topic_name(topic)
        problem_text: str | None = None if problem is None else problem.reason
        if problem is None and topic.startswith("$aws/things/") and "/jobs/" in topic:
            problem_text = "Republishing to reserved job topics is not supported"
        if problem_text is not None:
            raise _Failed(topic, f"Failed to republish to topic {topic}: {problem_text}")
        qos = parameters.get("qos", 0)
        if qos not in (0, 1):
            raise _Failed(topic, f"Failed to republish to topic {topic}: qos must be 0 or 1")
        request = RepublishRequest(
            topic=topic,
            payload=given.result.payload(),
            qos=int(qos),
            **self._headers(parameters, given),
        )
        return ActionSuccess("republish", {"RepublishTopic": topic}, republish=request)

    def _headers(self, parameters: Mapping[str, Any], given: ActionInput) -> dict[str, Any]:
        """MQTT 5 properties from the republish action's ``headers``.

        contentType ("Supports substitution templates"), responseTopic and user property values
        are rendered as templates; which ones AWS renders besides contentType is UNCONFIRMED.
        """
        headers = parameters.get("headers")
        if not isinstance(headers, Mapping):
            return {}
        out: dict[str, Any] = {}
        if isinstance(headers.get("contentType"), str):
            out["content_type"] = self._render_text(headers["contentType"], given)
        if isinstance(headers.get("responseTopic"), str):
            out["response_topic"] = self._render_text(headers["responseTopic"], given)
        if isinstance(headers.get("correlationData"), str):
            try:
                out["correlation_data"] = base64.b64decode(
                    headers["correlationData"], validate=True
                )
            except ValueError:
                raise _Failed("", "correlationData must be base64-encoded binary data") from None
        expiry = headers.get("messageExpiry")
        if isinstance(expiry, (int, str)) and str(expiry).isdigit():
            out["message_expiry_interval"] = int(expiry)
        indicator = headers.get("payloadFormatIndicator")
        if indicator in ("UTF8_DATA", "UNSPECIFIED_BYTES"):
            out["payload_format_utf8"] = indicator == "UTF8_DATA"
        properties = headers.get("userProperties")
        if isinstance(properties, list):
            out["user_properties"] = tuple(
                (str(item.get("key", "")), self._render_text(str(item.get("value", "")), given))
                for item in properties
                if isinstance(item, Mapping)
            )
        return out

    def _http(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        url = self._render(parameters, "url", given)
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise _Failed(url, f"Failed to send the HTTP request: {url!r} is not an http(s) URL")
        if not self._confirmed(url, parsed.hostname):
            raise _Failed(
                url,
                f"Failed to send the HTTP request: the topic rule destination for {url} is not "
                "confirmed and enabled (configure http_confirmed_destinations)",
            )
        body = given.result.payload()
        headers = {"content-type": _content_type(given.result.value)}
        for header in parameters.get("headers") or ():
            if isinstance(header, Mapping) and isinstance(header.get("key"), str):
                headers[header["key"].lower()] = self._render_text(
                    str(header.get("value", "")), given
                )
        status, reason = self._post(parsed, body, headers)
        if not 200 <= status < 300:
            raise _Failed(
                url,
                f"Failed to send the HTTP request. The error received was HTTP {status} {reason}",
            )
        return ActionSuccess("http", {"Url": url})

    def _confirmed(self, url: str, host: str) -> bool:
        config = self._config
        if any(url.startswith(prefix) for prefix in config.http_confirmed_destinations):
            return True
        return config.http_allow_loopback and is_loopback_host(host)

    def _post(
        self, parsed: urllib.parse.SplitResult, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str]:
        """POST with AWS's retry rules; returns the last status and reason."""
        deadline = time.monotonic() + self._config.timeout_s
        target = parsed.path or "/"
        if parsed.query:
            target += "?" + parsed.query
        status, reason = 0, ""
        for _attempt in range(HTTP_MAX_TRIES):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            connection: http.client.HTTPConnection
            if parsed.scheme == "https":
                context = self._config.http_ssl_context or ssl.create_default_context()
                connection = http.client.HTTPSConnection(
                    parsed.hostname or "", parsed.port, timeout=remaining, context=context
                )
            else:
                connection = http.client.HTTPConnection(
                    parsed.hostname or "", parsed.port, timeout=remaining
                )
            try:
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                content = response.read(HTTP_NO_RETRY_RESPONSE_BYTES + 1)
                status, reason = response.status, response.reason
            except (OSError, http.client.HTTPException) as error:
                raise _Failed(
                    parsed.geturl(),
                    f"Failed to send the HTTP request. The error received was {error}",
                ) from None
            finally:
                connection.close()
            retryable = status == 429 or 500 <= status <= 599
            if not retryable or len(content) > HTTP_NO_RETRY_RESPONSE_BYTES:
                break
        return status, reason

    def _lambda(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        arn = self._render(parameters, "functionArn", given)
        payload = given.result.payload()
        name = _function_name(arn)
        command = self._config.lambda_commands.get(arn) or self._config.lambda_commands.get(name)
        if command is not None:
            try:
                status, stderr = self._run_command(command, payload, self._config.timeout_s)
            except (OSError, subprocess.SubprocessError) as error:
                raise _Failed(
                    arn, f"Failed to invoke lambda function. The error received was {error}"
                ) from None
            if status != 0:
                tail = stderr[-_STDERR_TAIL:].decode("utf-8", "replace")
                raise _Failed(
                    arn,
                    "Failed to invoke lambda function. "
                    f"The command exited with status {status}: {tail}",
                )
            return ActionSuccess("lambda", {"FunctionArn": arn})
        self._call(
            "lambda",
            arn,
            "invoke lambda function",
            lambda client: client.invoke(FunctionName=arn, InvocationType="Event", Payload=payload),
        )
        return ActionSuccess("lambda", {"FunctionArn": arn})

    def _sqs(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        queue_url = self._render(parameters, "queueUrl", given)
        payload = given.result.payload()
        if parameters.get("useBase64"):
            body = base64.b64encode(payload).decode("ascii")
        else:
            body = _text(payload, queue_url, "SQS")
        self._call(
            "sqs",
            queue_url,
            "send the message to the SQS queue",
            lambda client: client.send_message(QueueUrl=queue_url, MessageBody=body),
        )
        return ActionSuccess("sqs", {"QueueUrl": queue_url})

    def _sns(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        target = self._render(parameters, "targetArn", given)
        message = _text(given.result.payload(), target, "SNS")
        extra = {"MessageStructure": "json"} if parameters.get("messageFormat") == "JSON" else {}
        self._call(
            "sns",
            target,
            "publish the SNS message",
            lambda client: client.publish(TargetArn=target, Message=message, **extra),
        )
        return ActionSuccess("sns", {"TargetArn": target})

    def _dynamodb_v2(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        put_item = parameters.get("putItem")
        if not isinstance(put_item, Mapping):
            raise _Failed("", "The required parameter putItem is missing")
        table = self._render(put_item, "tableName", given)
        value = given.result.value
        if not isinstance(value, dict):
            raise _Failed(
                table,
                "Failed to put the DynamoDB item: the SQL result is not a JSON object "
                "(each attribute becomes a column)",
            )
        try:
            from boto3.dynamodb.types import TypeSerializer  # noqa: PLC0415
        except ImportError:
            self._client("dynamodb")  # reports the missing extra
            raise
        serializer = TypeSerializer()
        plain = json.loads(serialize(value), parse_float=Decimal, parse_int=Decimal)
        try:
            item = {key: serializer.serialize(attribute) for key, attribute in plain.items()}
        except (TypeError, ValueError) as error:
            raise _Failed(table, f"Failed to put the DynamoDB item: {error}") from None
        self._call(
            "dynamodb",
            table,
            "put the DynamoDB item",
            lambda client: client.put_item(TableName=table, Item=item),
        )
        return ActionSuccess("dynamoDBv2", {"TableName": table})

    def _kinesis(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        stream = self._render(parameters, "streamName", given)
        key_text = parameters.get("partitionKey")
        # Without partitionKey AWS's behaviour is UNCONFIRMED: a new UUID spreads the records.
        key = (
            self._render_text(key_text, given)
            if isinstance(key_text, str)
            else given.context.new_uuid()
        )
        data = given.result.payload()
        self._call(
            "kinesis",
            stream,
            "put the Kinesis record",
            lambda client: client.put_record(StreamName=stream, Data=data, PartitionKey=key),
        )
        return ActionSuccess("kinesis", {"StreamName": stream})

    def _firehose(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        stream = self._render(parameters, "deliveryStreamName", given)
        separator = str(parameters.get("separator") or "").encode("utf-8")
        value = given.result.value
        if parameters.get("batchMode") and isinstance(value, list):
            if len(value) > FIREHOSE_BATCH_MAX:
                raise _Failed(
                    stream,
                    f"Failed to put the Firehose records: more than {FIREHOSE_BATCH_MAX} records",
                )
            records = [{"Data": SqlResult(element).payload() + separator} for element in value]
            self._call(
                "firehose",
                stream,
                "put the Firehose records",
                lambda client: client.put_record_batch(DeliveryStreamName=stream, Records=records),
            )
        else:
            data = given.result.payload() + separator
            self._call(
                "firehose",
                stream,
                "put the Firehose record",
                lambda client: client.put_record(DeliveryStreamName=stream, Record={"Data": data}),
            )
        return ActionSuccess("firehose", {"DeliveryStreamName": stream})

    def _s3(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        bucket = self._render(parameters, "bucketName", given)
        key = self._render(parameters, "key", given)
        extra = (
            {"ACL": parameters["cannedAcl"]} if isinstance(parameters.get("cannedAcl"), str) else {}
        )
        body = given.result.payload()
        self._call(
            "s3",
            bucket,
            "put S3 object",
            lambda client: client.put_object(Bucket=bucket, Key=key, Body=body, **extra),
        )
        return ActionSuccess("s3", {"BucketName": bucket, "Key": key})

    def _cloudwatch_logs(self, parameters: Mapping[str, Any], given: ActionInput) -> ActionOutcome:
        group = self._render(parameters, "logGroupName", given)
        value = given.result.value
        elements = value if parameters.get("batchMode") and isinstance(value, list) else [value]
        timestamp = given.context.timestamp_ms
        events = [
            {
                "timestamp": timestamp,
                "message": _text(SqlResult(element).payload(), group, "CloudWatch Logs"),
            }
            for element in elements
        ]
        # The log stream AWS writes to is UNCONFIRMED: one stream per rule here.
        stream = given.rule_name

        def put(client: Any) -> Any:
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
            return client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

        response = self._call("logs", group, "put the CloudWatch Logs events", put)
        rejected = response.get("rejectedLogEventsInfo") if isinstance(response, dict) else None
        if rejected:
            raise _Failed(group, f"Failed to put the CloudWatch Logs events: rejected {rejected}")
        return ActionSuccess("cloudwatchLogs", {"LogGroupName": group})


_PERFORMERS: Final[
    dict[str, Callable[[ActionRunner, Mapping[str, Any], ActionInput], ActionOutcome]]
] = {
    "republish": ActionRunner._republish,
    "http": ActionRunner._http,
    "lambda": ActionRunner._lambda,
    "sqs": ActionRunner._sqs,
    "sns": ActionRunner._sns,
    "dynamoDBv2": ActionRunner._dynamodb_v2,
    "kinesis": ActionRunner._kinesis,
    "firehose": ActionRunner._firehose,
    "s3": ActionRunner._s3,
    "cloudwatchLogs": ActionRunner._cloudwatch_logs,
}


def _content_type(value: Value) -> str:
    """The http action's default Content-Type.

    "The default content type is application/json when the payload is in JSON format.
    Otherwise, it is application/octet-stream" (HTTP rule action).
    """
    return "application/octet-stream" if isinstance(value, bytes) else "application/json"


def _text(payload: bytes, resource: str, service: str) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise _Failed(
            resource,
            f"Failed to send to {service}: the payload is binary; select encode(*, 'base64')",
        ) from None


def _function_name(arn: str) -> str:
    """``arn:aws:lambda:region:account:function:name[:qualifier]`` -> ``name``."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[5] == "function":
        return parts[6]
    return arn


def _run_command(argv: Sequence[str], stdin: bytes, timeout: float) -> tuple[int, bytes]:
    completed = subprocess.run(  # argv comes from the configuration
        list(argv), input=stdin, capture_output=True, timeout=timeout, check=False
    )
    return completed.returncode, completed.stderr
