"""The CLI's job and provisioning-template verbs: the broker's control plane, from another process.

The verbs are ``aws iot``'s (``create-job``, ``describe-job``, ...,
``create-provisioning-template``, ...) with its flags, and each runs one operation of
``IotControlPlane`` (the layer the api door serves to boto3): ``built_in_operations`` gives the
CLI's control plane the operations the broker adds to its own.

Where each runs: the Jobs state lives in the running broker (CreateJob notifies connected
devices, and one process changes that state while devices update it), so a job verb is posted to
the jobs store's mailbox and the broker answers it through its control plane; with no broker on
the state directory it runs here, on the store. Provisioning templates are read from their store
on every RegisterThing, so their verbs always run here.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from aws_iot_mock.config import Config
from aws_iot_mock.registry import CertificateRegistry
from aws_iot_mock.resources import thing_exists

__all__ = ["BUILT_IN_VERBS", "built_in_operations"]

Operation = Callable[[dict[str, Any]], dict[str, Any]]

# (flag, request member, kind, required), as the CLI's _SERVICE_VERBS; kind "text" is a string
# that may be given as file://PATH (a job document, a template body).
_Flag = tuple[str, str, str, bool]
_JOB_ID: Final = ("--job-id", "jobId", "str", True)
_THING: Final = ("--thing-name", "thingName", "str", True)
_TEMPLATE: Final = ("--template-name", "templateName", "str", True)
_VERSION: Final = ("--version-id", "versionId", "int", True)

BUILT_IN_VERBS: Final[dict[str, tuple[str, str, tuple[_Flag, ...]]]] = {
    "create-job": (
        "CreateJob",
        "create a job for things and thing groups (an inline --document)",
        (
            _JOB_ID,
            ("--targets", "targets", "strs", True),
            ("--document", "document", "text", False),
            ("--document-source", "documentSource", "str", False),
            ("--description", "description", "str", False),
            ("--target-selection", "targetSelection", "str", False),
            ("--timeout-config", "timeoutConfig", "struct", False),
            ("--job-executions-rollout-config", "jobExecutionsRolloutConfig", "struct", False),
            ("--abort-config", "abortConfig", "struct", False),
            ("--tags", "tags", "tags", False),
        ),
    ),
    "describe-job": ("DescribeJob", "show a job and its progress", (_JOB_ID,)),
    "list-jobs": (
        "ListJobs",
        "list jobs",
        (
            ("--status", "status", "str", False),
            ("--target-selection", "targetSelection", "str", False),
            ("--thing-group-name", "thingGroupName", "str", False),
            ("--max-results", "maxResults", "int", False),
            ("--next-token", "nextToken", "str", False),
        ),
    ),
    "cancel-job": (
        "CancelJob",
        "cancel a job (--force: its IN_PROGRESS executions too)",
        (
            _JOB_ID,
            ("--reason-code", "reasonCode", "str", False),
            ("--comment", "comment", "str", False),
            ("--force", "force", "bool", False),
        ),
    ),
    "delete-job": (
        "DeleteJob",
        "delete a job and its executions",
        (_JOB_ID, ("--force", "force", "bool", False)),
    ),
    "associate-targets-with-job": (
        "AssociateTargetsWithJob",
        "add targets to a CONTINUOUS job",
        (_JOB_ID, ("--targets", "targets", "strs", True), ("--comment", "comment", "str", False)),
    ),
    "describe-job-execution": (
        "DescribeJobExecution",
        "show a thing's execution of a job",
        (_JOB_ID, _THING, ("--execution-number", "executionNumber", "int", False)),
    ),
    "list-job-executions-for-job": (
        "ListJobExecutionsForJob",
        "list a job's executions",
        (
            _JOB_ID,
            ("--status", "status", "str", False),
            ("--max-results", "maxResults", "int", False),
            ("--next-token", "nextToken", "str", False),
        ),
    ),
    "list-job-executions-for-thing": (
        "ListJobExecutionsForThing",
        "list a thing's job executions",
        (
            _THING,
            ("--status", "status", "str", False),
            ("--job-id", "jobId", "str", False),
            ("--max-results", "maxResults", "int", False),
            ("--next-token", "nextToken", "str", False),
        ),
    ),
    "cancel-job-execution": (
        "CancelJobExecution",
        "cancel a thing's execution of a job",
        (
            _JOB_ID,
            _THING,
            ("--force", "force", "bool", False),
            ("--expected-version", "expectedVersion", "int", False),
            ("--status-details", "statusDetails", "struct", False),
        ),
    ),
    "delete-job-execution": (
        "DeleteJobExecution",
        "delete a job execution",
        (
            _JOB_ID,
            _THING,
            ("--execution-number", "executionNumber", "int", True),
            ("--force", "force", "bool", False),
        ),
    ),
    "create-provisioning-template": (
        "CreateProvisioningTemplate",
        "create a fleet-provisioning template",
        (
            _TEMPLATE,
            ("--template-body", "templateBody", "text", True),
            ("--provisioning-role-arn", "provisioningRoleArn", "str", True),
            ("--description", "description", "str", False),
            ("--enabled", "enabled", "bool", False),
            ("--pre-provisioning-hook", "preProvisioningHook", "struct", False),
            ("--type", "type", "str", False),
            ("--tags", "tags", "tags", False),
        ),
    ),
    "describe-provisioning-template": (
        "DescribeProvisioningTemplate",
        "show a provisioning template and its default version's body",
        (_TEMPLATE,),
    ),
    "list-provisioning-templates": (
        "ListProvisioningTemplates",
        "list provisioning templates",
        (
            ("--max-results", "maxResults", "int", False),
            ("--next-token", "nextToken", "str", False),
        ),
    ),
    "update-provisioning-template": (
        "UpdateProvisioningTemplate",
        "enable or disable a template, or change its default version, role or hook",
        (
            _TEMPLATE,
            ("--description", "description", "str", False),
            ("--enabled", "enabled", "bool", False),
            ("--default-version-id", "defaultVersionId", "int", False),
            ("--provisioning-role-arn", "provisioningRoleArn", "str", False),
            ("--pre-provisioning-hook", "preProvisioningHook", "struct", False),
            ("--remove-pre-provisioning-hook", "removePreProvisioningHook", "bool", False),
        ),
    ),
    "delete-provisioning-template": (
        "DeleteProvisioningTemplate",
        "delete a provisioning template",
        (_TEMPLATE,),
    ),
    "create-provisioning-template-version": (
        "CreateProvisioningTemplateVersion",
        "add a version to a provisioning template",
        (
            _TEMPLATE,
            ("--template-body", "templateBody", "text", True),
            ("--set-as-default", "setAsDefault", "bool", False),
        ),
    ),
    "describe-provisioning-template-version": (
        "DescribeProvisioningTemplateVersion",
        "show one version of a provisioning template",
        (_TEMPLATE, _VERSION),
    ),
    "list-provisioning-template-versions": (
        "ListProvisioningTemplateVersions",
        "list a provisioning template's versions",
        (_TEMPLATE,),
    ),
    "delete-provisioning-template-version": (
        "DeleteProvisioningTemplateVersion",
        "delete a version that is not the default",
        (_TEMPLATE, _VERSION),
    ),
}
"""verb -> (operation, help, flags), merged into the CLI's control-plane verbs."""


@contextlib.contextmanager
def built_in_operations(
    config: Config, registry: CertificateRegistry, operation: str
) -> Iterator[Mapping[str, Operation]]:
    """The built-in service operations the CLI's control plane needs for ``operation``.

    Yields:
        Operation name -> callable, for ``IotControlPlane.add_operations``: the Jobs operations
        (through a running broker, else on the store here) when ``operation`` is one of them,
        the provisioning-template operations when it is one of those, otherwise nothing. The
        stores are open until the context exits.
    """
    # Imported here so that the other verbs start without the services.
    from aws_iot_mock.services.jobs import JOBS_OPERATIONS, JobsService  # noqa: PLC0415
    from aws_iot_mock.services.provisioning_templates import (  # noqa: PLC0415
        PROVISIONING_OPERATIONS,
        ProvisioningTemplateService,
    )
    from aws_iot_mock.state.jobs import JobStore  # noqa: PLC0415
    from aws_iot_mock.state.mailbox import call_through_broker  # noqa: PLC0415
    from aws_iot_mock.state.provisioning import ProvisioningStore  # noqa: PLC0415

    if operation in JOBS_OPERATIONS:
        with JobStore.open(config.state_dir) as store:

            def run_locally(name: str, request: Mapping[str, Any]) -> dict[str, Any]:
                jobs = JobsService(
                    store,
                    region=config.region,
                    account_id=config.account_id,
                    publish=None,  # no broker runs: nobody is connected to notify
                    reply=None,
                    emit=lambda record: None,
                    clock=time.time,
                    group_members=registry.thing_group_members,
                    thing_exists=functools.partial(thing_exists, registry),
                )
                return jobs.operations()[name](dict(request))

            def through_broker(name: str, request: dict[str, Any]) -> dict[str, Any]:
                return call_through_broker(
                    store, name, request, functools.partial(run_locally, name, request)
                )

            yield {name: functools.partial(through_broker, name) for name in JOBS_OPERATIONS}
    elif operation in PROVISIONING_OPERATIONS:
        with ProvisioningStore.open(config.state_dir) as templates:
            yield ProvisioningTemplateService(
                templates, region=config.region, account_id=config.account_id, clock=time.time
            ).operations()
    else:
        yield {}
