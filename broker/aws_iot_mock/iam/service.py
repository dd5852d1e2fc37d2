"""The IAM and STS operations as the AWS CLI runs them: same arguments, same JSON printed.

Each function takes the store and the CLI's options as keyword arguments (``--user-name`` is
``user_name``) and returns exactly the JSON document ``aws iam ...`` / ``aws sts
get-session-token`` prints, or None for the commands that print nothing (``delete-*``,
``put-user-policy``, ``update-access-key``). Timestamps are written as the AWS CLI writes them,
ISO 8601 with ``+00:00`` (``2026-03-01T12:00:00+00:00``).

Errors are ``aws_iot_mock.iam.errors`` exceptions carrying IAM's codes (``NoSuchEntity``,
``EntityAlreadyExists``, ``LimitExceeded``, ``MalformedPolicyDocument``, ``DeleteConflict``,
``ValidationError``).

Response shapes: IAM API Reference ``API_CreateUser``, ``API_GetUser``, ``API_ListUsers``,
``API_CreateAccessKey``, ``API_ListAccessKeys``, ``API_GetUserPolicy``,
``API_ListUserPolicies``; STS ``API_GetSessionToken``
(https://docs.aws.amazon.com/IAM/latest/APIReference/,
https://docs.aws.amazon.com/STS/latest/APIReference/API_GetSessionToken.html). The AWS CLI
pages list results (no ``IsTruncated``/``Marker`` in its output) and prints the URL-encoded
policy document of GetUserPolicy decoded, as a JSON object.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aws_iot_mock.iam.store import IamStore, UserRecord

__all__ = [
    "create_access_key",
    "create_user",
    "delete_access_key",
    "delete_user",
    "delete_user_policy",
    "get_session_token",
    "get_user",
    "get_user_policy",
    "list_access_keys",
    "list_user_policies",
    "list_users",
    "put_user_policy",
    "update_access_key",
]


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _user(record: UserRecord) -> dict[str, Any]:
    identity = record.identity
    return {
        "Path": record.path,
        "UserName": identity.user_name,
        "UserId": identity.user_id,
        "Arn": identity.arn,
        "CreateDate": _timestamp(record.created),
    }


def create_user(
    store: IamStore, *, user_name: str, path: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """``aws iam create-user --user-name NAME [--path PATH]`` -> ``{"User": {...}}``."""
    return {"User": _user(store.create_user(user_name, path=path, now=now))}


def get_user(store: IamStore, *, user_name: str) -> dict[str, Any]:
    """``aws iam get-user --user-name NAME`` -> ``{"User": {...}}``."""
    return {"User": _user(store.get_user(user_name))}


def list_users(store: IamStore) -> dict[str, Any]:
    """``aws iam list-users`` -> ``{"Users": [...]}``."""
    return {"Users": [_user(record) for record in store.list_users()]}


def delete_user(store: IamStore, *, user_name: str) -> None:
    """``aws iam delete-user --user-name NAME`` (prints nothing)."""
    store.delete_user(user_name)


def create_access_key(
    store: IamStore, *, user_name: str, now: datetime | None = None
) -> dict[str, Any]:
    """``aws iam create-access-key --user-name NAME`` -> ``{"AccessKey": {...}}``.

    The only time the secret is returned.
    """
    key = store.create_access_key(user_name, now=now)
    return {
        "AccessKey": {
            "UserName": key.user_name,
            "AccessKeyId": key.access_key_id,
            "Status": key.status,
            "SecretAccessKey": key.secret_access_key,
            "CreateDate": _timestamp(key.created),
        }
    }


def list_access_keys(store: IamStore, *, user_name: str) -> dict[str, Any]:
    """``aws iam list-access-keys --user-name NAME`` -> ``{"AccessKeyMetadata": [...]}``."""
    return {
        "AccessKeyMetadata": [
            {
                "UserName": key.user_name,
                "AccessKeyId": key.access_key_id,
                "Status": key.status,
                "CreateDate": _timestamp(key.created),
            }
            for key in store.list_access_keys(user_name)
        ]
    }


def update_access_key(
    store: IamStore, *, access_key_id: str, status: str, user_name: str | None = None
) -> None:
    """``aws iam update-access-key --access-key-id ID --status Active|Inactive [--user-name]``."""
    store.update_access_key(access_key_id, status, user_name=user_name)


def delete_access_key(store: IamStore, *, access_key_id: str, user_name: str | None = None) -> None:
    """``aws iam delete-access-key --access-key-id ID [--user-name NAME]`` (prints nothing)."""
    store.delete_access_key(access_key_id, user_name=user_name)


def put_user_policy(
    store: IamStore, *, user_name: str, policy_name: str, policy_document: str
) -> None:
    """``aws iam put-user-policy --user-name --policy-name --policy-document`` (prints nothing).

    ``policy_document`` is the JSON text (the CLI has already read any ``file://``).
    """
    store.put_user_policy(user_name, policy_name, policy_document)


def get_user_policy(store: IamStore, *, user_name: str, policy_name: str) -> dict[str, Any]:
    """``aws iam get-user-policy`` -> ``{"UserName", "PolicyName", "PolicyDocument": {...}}``."""
    name, policy, document = store.get_user_policy(user_name, policy_name)
    return {"UserName": name, "PolicyName": policy, "PolicyDocument": json.loads(document)}


def list_user_policies(store: IamStore, *, user_name: str) -> dict[str, Any]:
    """``aws iam list-user-policies --user-name NAME`` -> ``{"PolicyNames": [...]}``."""
    return {"PolicyNames": store.list_user_policies(user_name)}


def delete_user_policy(store: IamStore, *, user_name: str, policy_name: str) -> None:
    """``aws iam delete-user-policy --user-name --policy-name`` (prints nothing)."""
    store.delete_user_policy(user_name, policy_name)


def get_session_token(
    store: IamStore,
    *,
    user_name: str | None = None,
    access_key_id: str | None = None,
    duration_seconds: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``aws sts get-session-token [--duration-seconds N]`` -> ``{"Credentials": {...}}``.

    The real command acts as the caller; here the caller is named by ``user_name`` (the local
    CLI) or by the long-term ``access_key_id`` that signed the request (an STS endpoint).
    Exactly one must be given. The session token is returned only here.
    """
    session = store.get_session_token(
        user_name=user_name,
        access_key_id=access_key_id,
        duration_seconds=duration_seconds,
        now=now,
    )
    return {
        "Credentials": {
            "AccessKeyId": session.access_key_id,
            "SecretAccessKey": session.secret_access_key,
            "SessionToken": session.session_token,
            "Expiration": _timestamp(session.expiration),
        }
    }
