"""docs/rules-engine.md, run as written.

The worked example is a user's test file: it runs with pytest in a fresh directory (its own moto
server, broker, boto3 and paho). The configuration block is loaded by the config reader; the CLI
block runs with bash against a fresh state directory, with the JSON block as ``rule.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aws_iot_mock.config import load_config
from tests.docs_snippets import snippet
from tests.serve_child import child_env

TIMEOUT = 120.0
VENV_BIN = Path(sys.executable).parent


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = child_env()
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def test_the_worked_example_passes_as_a_users_test(tmp_path: Path) -> None:
    text = snippet("rules-engine-example")
    name = text.splitlines()[0].removeprefix("# ")
    assert name == "test_hot_readings.py"
    (tmp_path / name).write_text(text, encoding="utf-8")
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", name],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_configuration_block_sets_the_aws_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(snippet("rules-engine-config"), encoding="utf-8")
    assert load_config(path).rules.aws_endpoint_url == "http://127.0.0.1:5000"


def test_the_cli_block_manages_the_documented_rule(tmp_path: Path) -> None:
    rule = json.loads(snippet("rules-engine-rule-json"))
    (tmp_path / "rule.json").write_text(json.dumps(rule), encoding="utf-8")
    lines = snippet("rules-engine-cli").strip().splitlines()
    outputs = []
    for line in lines:
        result = run(["bash", "-e", "-c", line], tmp_path)
        assert result.returncode == 0, (line, result.stderr)
        outputs.append(result.stdout)
    created, got, disabled, listed, deleted = outputs
    assert created == disabled == deleted == ""  # no output members, as the AWS CLI prints
    shown = json.loads(got)
    assert shown["ruleArn"] == "arn:aws:iot:us-east-1:123456789012:rule/hot_readings"
    assert shown["rule"]["sql"] == rule["sql"]
    assert shown["rule"]["errorAction"] == rule["errorAction"]
    [item] = json.loads(listed)["rules"]
    assert (item["ruleName"], item["topicPattern"], item["ruleDisabled"]) == (
        "hot_readings",
        "devices/+/telemetry",
        True,
    )
    # The passing twin's refusal: the rule is gone.
    gone = run(["bash", "-c", "aws-iot-mock get-topic-rule --rule-name hot_readings"], tmp_path)
    assert gone.returncode == 254
    assert gone.stderr == (
        "\nAn error occurred (UnauthorizedException) when calling the GetTopicRule operation:"
        " Access to topic rule 'hot_readings' was denied\n"
    )
