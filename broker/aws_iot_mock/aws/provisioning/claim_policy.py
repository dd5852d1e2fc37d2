"""The AWS IoT policy a provisioning claim certificate needs. Pure.

"Provisioning by claim" gives this policy for the claim certificate
(https://docs.aws.amazon.com/iot/latest/developerguide/provision-wo-cert.html): connect, and
publish/receive/subscribe on ``$aws/certificates/create/*`` and
``$aws/provisioning-templates/<templateName>/provision/*``. That policy does not cover
CreateCertificateFromCsr (``$aws/certificates/create-from-csr/*``); ``include_csr`` adds it, as
the AWS IoT Device SDK v2's CSR sample policy does (samples/service_clients/
fleet_provisioning_csr.md in aws/aws-iot-device-sdk-python-v2).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["claim_certificate_policy", "claim_certificate_policy_json"]


def claim_certificate_policy(
    region: str, account_id: str, template_name: str, *, include_csr: bool = False
) -> dict[str, Any]:
    """The claim policy document of provision-wo-cert.html, for one template.

    Args:
        region: the region of the ARNs.
        account_id: the account of the ARNs.
        template_name: the provisioning template the claim may use.
        include_csr: also allow ``$aws/certificates/create-from-csr/*``.

    Returns:
        The policy document (Version 2012-10-17).
    """
    prefix = f"arn:aws:iot:{region}:{account_id}"
    paths = ["$aws/certificates/create/*"]
    if include_csr:
        paths.append("$aws/certificates/create-from-csr/*")
    paths.append(f"$aws/provisioning-templates/{template_name}/provision/*")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": [f"{prefix}:topic/{path}" for path in paths],
            },
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [f"{prefix}:topicfilter/{path}" for path in paths],
            },
        ],
    }


def claim_certificate_policy_json(
    region: str, account_id: str, template_name: str, *, include_csr: bool = False
) -> str:
    """`claim_certificate_policy` as JSON text, ready for CreatePolicy."""
    return json.dumps(
        claim_certificate_policy(region, account_id, template_name, include_csr=include_csr),
        indent=2,
    )
