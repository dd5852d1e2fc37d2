"""Our CLI prints what the real AWS CLI prints: formats, --query, errors, --cli-input-json.

One ``serve`` child with the api door on a free port; the real ``aws iot ... --endpoint-url``
(the awscli package) and ``aws-iot-mock`` run the same operations on the same registry, and the
test compares their stdout, stderr and exit codes byte for byte. The AWS CLI's user
configuration is never read: ``HOME`` and ``AWS_CONFIG_FILE`` point into the test's directory.

The awscli package is AWS CLI v1. Two known differences with it, both documented:
- v1 prints timestamps as the wire's epoch seconds unless ``cli_timestamp_format = iso8601``;
  v2's default is iso8601, which our CLI follows, so the AWS CLI here runs with that setting.
- v1 exits 255 on a service error and on a parameter error; v2 (and our CLI) exits 254 and 252
  (https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-returncodes.html).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs_snippets import output, snippet
from tests.serve_child import STARTUP_TIMEOUT, ServeChild, child_env

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0
AWS = Path(sys.prefix) / "bin" / "aws"

pytestmark = pytest.mark.skipif(not AWS.exists(), reason="needs the awscli package")

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}'


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Served:
    directory: Path
    api_port: int
    env: dict[str, str]

    def aws(self, *args: str) -> Ran:
        """The real ``aws iot`` against the api door."""
        url = f"http://127.0.0.1:{self.api_port}"
        return self._run([str(AWS), "iot", *args, "--endpoint-url", url])

    def ours(self, *args: str) -> Ran:
        """``aws-iot-mock`` on the same directories (its registry is the one served)."""
        return self._run([sys.executable, "-m", "aws_iot_mock", *args])

    def _run(self, command: list[str]) -> Ran:
        done = subprocess.run(
            command,
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        return Ran(done.returncode, done.stdout, done.stderr)


def _isolated_env(directory: Path) -> dict[str, str]:
    env = {key: value for key, value in child_env().items() if not key.startswith("AWS_")}
    home = directory / "home"
    home.mkdir(exist_ok=True)
    config = home / "config"
    # AWS CLI v2's default timestamp format (v1's default prints epoch seconds).
    config.write_text("[default]\nregion = us-east-1\ncli_timestamp_format = iso8601\n")
    env.update(
        {
            "HOME": str(home),
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
            # The api door accepts any signature on loopback (control_plane.strict_sigv4 off).
            "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "TZ": "UTC",  # both CLIs print timestamps in the local time zone
            "COLUMNS": "80",
        }
    )
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("habits")
    ports = ("--port", "0", "--https-port", "0", "--alpn-port", "off", "--api-port", "0")
    config = REPO_ROOT / "config" / "default.yaml"
    child = ServeChild(["serve", "--config", str(config), *ports], directory, child_env())
    try:
        child.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
        api_port = int(child.banner("api").split()[0])
        yield Served(directory, api_port, _isolated_env(directory))
    finally:
        child.close()


@pytest.fixture(scope="module")
def registry(served: Served) -> Served:
    """A thing with attributes, a second thing, a policy and a certificate, made by aws."""
    for args in (
        ("create-thing", "--thing-name", "lamp", "--attribute-payload", "attributes={room=hall}"),
        ("create-thing", "--thing-name", "kettle"),
        ("create-policy", "--policy-name", "all", "--policy-document", POLICY),
        ("create-keys-and-certificate", "--set-as-active"),
    ):
        made = served.aws(*args)
        assert made.code == 0, made.err
    return served


def _same(served: Served, *args: str) -> Ran:
    ours, theirs = served.ours(*args), served.aws(*args)
    assert (ours.code, ours.err) == (theirs.code, theirs.err)
    assert ours.out == theirs.out
    return ours


RULE = json.dumps(
    {"sql": "SELECT * FROM 'lamps/+'", "awsIotSqlVersion": "2016-03-23", "actions": []}
)
TEMPLATE = json.dumps(
    {
        "Parameters": {"SerialNumber": {"Type": "String"}},
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {"ThingName": {"Ref": "SerialNumber"}},
            }
        },
    }
)


@pytest.fixture(scope="module")
def services(registry: Served) -> Served:
    """A job on the thing lamp, a topic rule and a provisioning template, made by aws."""
    lamp = json.loads(registry.aws("describe-thing", "--thing-name", "lamp").out)["thingArn"]
    for args in (
        ("create-job", "--job-id", "ota", "--targets", lamp, "--document", '{"step":"update"}'),
        ("create-topic-rule", "--rule-name", "lamps", "--topic-rule-payload", RULE),
        (
            "create-provisioning-template",
            "--template-name",
            "sensors",
            "--template-body",
            TEMPLATE,
            "--provisioning-role-arn",
            "arn:aws:iam::123456789012:role/provisioning",
        ),
    ):
        made = registry.aws(*args)
        assert made.code == 0, made.err
    return registry


@pytest.mark.parametrize("output", ["json", "text", "table"])
@pytest.mark.parametrize(
    "command",
    [
        ("describe-thing", "--thing-name", "lamp"),
        ("list-things",),
        ("get-policy", "--policy-name", "all"),  # timestamps; wider than 80 columns as a table
        ("list-certificates",),
        # The built-in services' verbs (their timestamps are epoch seconds, not datetimes).
        ("describe-job", "--job-id", "ota"),
        ("list-jobs",),
        ("list-job-executions-for-job", "--job-id", "ota"),
        ("get-topic-rule", "--rule-name", "lamps"),
        ("list-topic-rules",),
        ("describe-provisioning-template", "--template-name", "sensors"),
        ("list-provisioning-templates",),
    ],
    ids=lambda command: command[0],
)
def test_each_format_prints_what_the_aws_cli_prints(
    services: Served, command: tuple[str, ...], output: str
) -> None:
    printed = _same(services, *command, "--output", output)
    assert printed.code == 0 and printed.out


@pytest.mark.parametrize(
    ("query", "output"),
    [
        ("things[].thingName", "json"),
        ("things[].thingName", "text"),
        ("things[?thingName=='lamp'].attributes", "table"),
        ("length(things)", "json"),
        ("things[?thingName=='nothing']|[0]", "json"),  # null
        ("things[0].[thingName,version]", "text"),
    ],
)
def test_query_selects_what_the_aws_cli_selects(registry: Served, query: str, output: str) -> None:
    printed = _same(registry, "list-things", "--query", query, "--output", output)
    assert printed.code == 0 and printed.out


def test_query_on_timestamps_sees_the_same_text(registry: Served) -> None:
    printed = _same(registry, "list-certificates", "--query", "certificates[0].creationDate")
    assert printed.out.startswith('"20')  # an ISO 8601 string, as AWS CLI v2 prints it


def test_a_missing_thing_is_the_aws_cli_error_text_and_exit_254(registry: Served) -> None:
    ours = registry.ours("describe-thing", "--thing-name", "nope")
    theirs = registry.aws("describe-thing", "--thing-name", "nope")
    assert (
        ours.err
        == theirs.err
        == (
            "\nAn error occurred (ResourceNotFoundException) when calling the DescribeThing"
            " operation: Thing nope cannot be found.\n"
        )
    )
    assert ours.out == theirs.out == ""
    # AWS CLI v2's code for a service error; the installed v1 still answers 255.
    assert ours.code == 254
    assert theirs.code in (254, 255)
    # The twin: the thing that exists.
    assert registry.ours("describe-thing", "--thing-name", "lamp").code == 0


def test_a_missing_policy_and_certificate_name_their_operations(registry: Served) -> None:
    for args in (
        ("get-policy", "--policy-name", "nope"),
        ("describe-certificate", "--certificate-id", "0" * 64),
        ("list-policy-versions", "--policy-name", "nope"),
        ("describe-thing-group", "--thing-group-name", "nope"),
    ):
        ours, theirs = registry.ours(*args), registry.aws(*args)
        assert ours.err == theirs.err, args
        assert ours.err.startswith("\nAn error occurred (ResourceNotFoundException)")
        assert ours.code == 254


def test_cli_input_json_gives_the_request_members(registry: Served) -> None:
    printed = _same(registry, "describe-thing", "--cli-input-json", '{"thingName": "lamp"}')
    assert json.loads(printed.out)["thingName"] == "lamp"
    # From a file, and the command line's own flag wins over the file's member.
    (registry.directory / "input.json").write_text('{"thingName": "lamp"}')
    printed = _same(
        registry,
        "describe-thing",
        "--cli-input-json",
        "file://input.json",
        "--thing-name",
        "kettle",
    )
    assert json.loads(printed.out)["thingName"] == "kettle"


def test_cli_input_json_structures_lists_and_booleans(registry: Served) -> None:
    members = {
        "thingName": "heater",
        "attributePayload": {"attributes": {"room": "attic", "watts": "900"}},
    }
    made = registry.ours("create-thing", "--cli-input-json", json.dumps(members))
    assert made.code == 0, made.err
    described = registry.ours("describe-thing", "--thing-name", "heater")
    assert json.loads(described.out)["attributes"] == {"room": "attic", "watts": "900"}
    # A boolean member: setAsActive false is --no-set-as-active.
    created = registry.ours(
        "create-keys-and-certificate", "--cli-input-json", '{"setAsActive": false}'
    )
    certificate_id = json.loads(created.out)["certificateId"]
    status = _status(registry, certificate_id)
    assert status.out == "INACTIVE\n"


def _status(served: Served, certificate_id: str) -> Ran:
    """The certificate's status as ``--query ... --output text`` prints it."""
    query = ("--query", "certificateDescription.status", "--output", "text")
    return served.ours("describe-certificate", "--certificate-id", certificate_id, *query)


def test_cli_input_json_refuses_an_unknown_member(registry: Served) -> None:
    ours = registry.ours("describe-thing", "--cli-input-json", '{"thingNam": "lamp"}')
    assert ours.code == 252
    assert ours.err == (
        '\nParameter validation failed:\nUnknown parameter in input: "thingNam", must be one of:'
        " thingName\n"
    )
    theirs = registry.aws("describe-thing", "--cli-input-json", '{"thingNam": "lamp"}')
    assert 'Unknown parameter in input: "thingNam", must be one of: thingName' in theirs.err


def test_a_bad_query_is_refused_before_anything_runs(registry: Served) -> None:
    ours = registry.ours("list-things", "--query", "things[")
    theirs = registry.aws("list-things", "--query", "things[")
    assert ours.err == theirs.err
    assert ours.err.startswith("\nBad value for --query things[: Invalid jmespath expression")
    assert ours.code == 252  # v2's parameter error; v1 answers 255
    assert ours.out == ""


@pytest.mark.parametrize("flag", ["--set-as-active", "--no-set-as-active"])
def test_set_as_active_and_its_negation(registry: Served, flag: str) -> None:
    created = registry.ours("create-keys-and-certificate", flag, "--query", "certificateId")
    certificate_id = json.loads(created.out)
    status = _status(registry, certificate_id)
    assert status.out == ("ACTIVE\n" if flag == "--set-as-active" else "INACTIVE\n")


def test_the_aws_cli_global_options_are_accepted_before_and_after_the_verb(
    registry: Served,
) -> None:
    habits = (
        "--region",
        "eu-west-1",
        "--profile",
        "dev",
        "--endpoint-url",
        f"http://127.0.0.1:{registry.api_port}",
        "--no-cli-pager",
        "--no-paginate",
        "--no-verify-ssl",
    )
    after = registry.ours("describe-thing", "--thing-name", "lamp", *habits)
    before = registry.ours(
        "--output", "text", "--query", "thingName", "describe-thing", "--thing-name", "lamp"
    )
    assert after.code == 0, after.err
    assert json.loads(after.out)["thingName"] == "lamp"
    assert (before.code, before.out) == (0, "lamp\n"), before.err


# --- the built-in services' verbs: jobs, topic rules, provisioning templates ---------------------


@pytest.mark.parametrize(
    ("command", "query"),
    [
        (("describe-job", "--job-id", "ota"), "job.[jobId,status,targets[0]]"),
        (("list-topic-rules",), "rules[?ruleName=='lamps'].topicPattern"),
        (("list-provisioning-templates",), "templates[].[templateName,enabled]"),
    ],
    ids=["job", "rule", "template"],
)
def test_the_service_verbs_query_what_the_aws_cli_queries(
    services: Served, command: tuple[str, ...], query: str
) -> None:
    printed = _same(services, *command, "--query", query, "--output", "text")
    assert printed.code == 0 and printed.out.strip()


@pytest.mark.parametrize(
    ("command", "operation"),
    [
        (("describe-job", "--job-id", "nope"), "DescribeJob"),
        (("get-topic-rule", "--rule-name", "nope"), "GetTopicRule"),
        (
            ("describe-provisioning-template", "--template-name", "nope"),
            "DescribeProvisioningTemplate",
        ),
    ],
    ids=["job", "rule", "template"],
)
def test_a_missing_service_resource_is_the_aws_cli_error_text(
    services: Served, command: tuple[str, ...], operation: str
) -> None:
    ours, theirs = services.ours(*command), services.aws(*command)
    assert ours.err == theirs.err
    assert ours.err.startswith("\nAn error occurred (")
    assert f"when calling the {operation} operation: " in ours.err
    assert (ours.code, ours.out) == (254, "")


def test_a_service_verb_takes_cli_input_json(services: Served) -> None:
    printed = _same(
        services,
        "get-topic-rule",
        "--cli-input-json",
        '{"ruleName": "lamps"}',
        "--query",
        "rule.sql",
    )
    assert json.loads(printed.out) == "SELECT * FROM 'lamps/+'"


def test_ctrl_c_exits_130(tmp_path: Path) -> None:
    """SIGINT while healthcheck waits on a server that never answers: the shell's 128 + 2."""
    env = child_env()
    init = subprocess.run(
        [sys.executable, "-m", "aws_iot_mock", "init", "--demo-device"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aws_iot_mock",
                "healthcheck",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--timeout",
                "60",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as child:
            listener.settimeout(TIMEOUT)
            connection, _ = listener.accept()  # the child is connected and waiting
            with connection:
                # Ctrl-C, pressed again if the first press was lost: one CI run in three on
                # 2026-12-05 saw the child ignore a single SIGINT sent right after it connected
                # (not reproduced in 40 local tries; see the closing note of that day).
                err = ""
                for _ in range(6):
                    os.kill(child.pid, signal.SIGINT)
                    try:
                        _out, err = child.communicate(timeout=TIMEOUT / 6)
                        break
                    except subprocess.TimeoutExpired:
                        continue
                else:
                    child.kill()
                    _out, err = child.communicate()
    assert child.returncode == 130, err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["cli-habits", "cli-habits-error"])
def test_the_documented_habits_print_what_docs_cli_md_shows(tmp_path: Path, name: str) -> None:
    env = child_env()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["COLUMNS"] = "80"
    shown = subprocess.run(
        ["bash", "-c", snippet(name)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # the page shows stderr where it appears
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert shown.stdout == output(name)
