"""Write ``broker/aws_iot_mock/api/iot_routes.py`` from botocore's ``iot`` service model.

Run ``.venv/bin/python -m tests.iot_routes_gen`` from the repository root after upgrading
botocore. ``tests/test_iot_control_routes.py`` checks the implemented operations' lines against
the installed model.
"""

from __future__ import annotations

from pathlib import Path

import botocore.session

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "broker" / "aws_iot_mock" / "api" / "iot_routes.py"

_HEADER = '''"""Every operation of the ``iot`` control-plane API and its HTTP binding. Generated.

From botocore's ``iot`` service model ({version}), the machine-readable form of the AWS IoT API
reference (https://docs.aws.amazon.com/iot/latest/apireference/). One line per operation:
``Name METHOD /request/uri/{{label}} member=location:wire-name:type ...``, listing the members that
travel outside the JSON body (``uri`` labels, ``querystring`` parameters, ``header`` fields, and
the ``payload`` member that is the whole JSON body); every other member is a key of the body.
Regenerate with ``.venv/bin/python -m tests.iot_routes_gen`` after upgrading botocore.
"""

# ruff: noqa: E501

__all__ = ["IOT_API_VERSION", "IOT_ROUTE_TABLE"]

IOT_API_VERSION = "{version}"
IOT_ROUTE_TABLE = """\\
'''


def route_line(model: botocore.model.ServiceModel, name: str) -> str:
    """One operation's line of the table."""
    operation = model.operation_model(name)
    parts = [name, operation.http["method"], operation.http["requestUri"]]
    if operation.input_shape is not None:
        for member, shape in operation.input_shape.members.items():
            location = shape.serialization.get("location")
            if location in ("uri", "querystring", "header"):
                wire = shape.serialization.get("name", member)
                parts.append(f"{member}={location}:{wire}:{shape.type_name}")
        # A structure "payload" member is the whole JSON body (CreateTopicRule's
        # topicRulePayload), not a key of it.
        payload = operation.input_shape.serialization.get("payload")
        if payload is not None:
            kind = operation.input_shape.members[payload].type_name
            parts.append(f"{payload}=payload:{payload}:{kind}")
    return " ".join(parts)


def render() -> str:
    """The module's text."""
    model = botocore.session.get_session().get_service_model("iot")
    lines = [route_line(model, name) for name in sorted(model.operation_names)]
    version = model.metadata["apiVersion"]
    return _HEADER.format(version=version) + "\n".join(lines) + '\n"""\n'


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
