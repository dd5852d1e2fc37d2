"""The local IAM store and the aws iam / aws sts service layer, on a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aws_iot_mock.errors import BrokerError, ResourceNotFoundError
from aws_iot_mock.iam import service
from aws_iot_mock.iam.errors import (
    EntityAlreadyExistsError,
    IamAccessDeniedError,
    IamDeleteConflictError,
    IamLimitExceededError,
    IamRequestError,
    IamValidationError,
    MalformedPolicyDocumentError,
    NoSuchEntityError,
)
from aws_iot_mock.iam.store import DATABASE_NAME, IamStore
from aws_iot_mock.registry import aws_error_code

ACCOUNT = "123456789012"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}],
    }
)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path) -> Iterator[IamStore]:
    with IamStore.open(state_dir, account_id=ACCOUNT) as opened:
        yield opened


def make_user(store: IamStore, name: str = "alice") -> None:
    service.create_user(store, user_name=name, now=NOW)


# -- users -----------------------------------------------------------------------------------


def test_create_user_prints_what_the_aws_cli_prints(store: IamStore) -> None:
    printed = service.create_user(store, user_name="alice", now=NOW)
    user = printed["User"]
    assert list(printed) == ["User"]
    assert list(user) == ["Path", "UserName", "UserId", "Arn", "CreateDate"]
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user["UserId"])
    assert user == {
        "Path": "/",
        "UserName": "alice",
        "UserId": user["UserId"],
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
        "CreateDate": "2026-03-01T12:00:00+00:00",
    }
    assert service.get_user(store, user_name="ALICE") == printed
    assert service.list_users(store) == {"Users": [user]}


def test_create_user_with_a_path(store: IamStore) -> None:
    user = service.create_user(store, user_name="bob", path="/devices/", now=NOW)["User"]
    assert (user["Path"], user["Arn"]) == ("/devices/", f"arn:aws:iam::{ACCOUNT}:user/devices/bob")
    with pytest.raises(IamValidationError, match="at 'path'"):
        service.create_user(store, user_name="carol", path="devices")


def test_user_names_are_unique_whatever_their_case(store: IamStore) -> None:
    make_user(store)
    with pytest.raises(EntityAlreadyExistsError) as error:
        service.create_user(store, user_name="Alice")
    assert str(error.value) == "EntityAlreadyExists: User with name Alice already exists."
    assert aws_error_code(error.value) == "EntityAlreadyExists"
    service.create_user(store, user_name="Alice2")  # the twin


@pytest.mark.parametrize(
    ("name", "constraint"),
    [
        ("", "Member must have length greater than or equal to 1"),
        ("x" * 65, "Member must have length less than or equal to 64"),
        ("a b", r"Member must satisfy regular expression pattern: [\w+=,.@-]+"),
        ("ü", r"Member must satisfy regular expression pattern: [\w+=,.@-]+"),
    ],
)
def test_user_name_constraints(store: IamStore, name: str, constraint: str) -> None:
    with pytest.raises(IamValidationError) as error:
        service.create_user(store, user_name=name)
    assert error.value.aws_message == (
        f"1 validation error detected: Value '{name}' at 'userName' failed to satisfy "
        f"constraint: {constraint}"
    )
    service.create_user(store, user_name="x" * 64)
    service.create_user(store, user_name="a+b=c,d.e@f_g-h")


def test_get_missing_user(store: IamStore) -> None:
    with pytest.raises(NoSuchEntityError) as error:
        service.get_user(store, user_name="nobody")
    assert error.value.aws_message == "The user with name nobody cannot be found."
    assert isinstance(error.value, ResourceNotFoundError)
    assert (error.value.http_status, aws_error_code(error.value)) == (404, "NoSuchEntity")


def test_delete_user_needs_its_keys_and_policies_gone(store: IamStore) -> None:
    make_user(store)
    key = service.create_access_key(store, user_name="alice")["AccessKey"]["AccessKeyId"]
    service.put_user_policy(store, user_name="alice", policy_name="p", policy_document=POLICY)
    session = service.get_session_token(store, user_name="alice")["Credentials"]
    with pytest.raises(IamDeleteConflictError, match="must delete access keys first"):
        service.delete_user(store, user_name="alice")
    service.delete_access_key(store, access_key_id=key, user_name="alice")
    with pytest.raises(IamDeleteConflictError, match="must delete policies first"):
        service.delete_user(store, user_name="alice")
    service.delete_user_policy(store, user_name="alice", policy_name="p")
    assert store.credential_for(session["AccessKeyId"]) is not None
    service.delete_user(store, user_name="alice")
    assert store.credential_for(session["AccessKeyId"]) is None
    with pytest.raises(NoSuchEntityError):
        service.get_user(store, user_name="alice")


# -- access keys -----------------------------------------------------------------------------


def test_create_access_key_prints_the_secret_once(store: IamStore) -> None:
    make_user(store)
    printed = service.create_access_key(store, user_name="alice", now=NOW)
    key = printed["AccessKey"]
    assert list(key) == ["UserName", "AccessKeyId", "Status", "SecretAccessKey", "CreateDate"]
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key["AccessKeyId"])
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", key["SecretAccessKey"])
    assert (key["UserName"], key["Status"], key["CreateDate"]) == (
        "alice",
        "Active",
        "2026-03-01T12:00:00+00:00",
    )
    listed = service.list_access_keys(store, user_name="alice")
    assert listed == {
        "AccessKeyMetadata": [
            {
                "UserName": "alice",
                "AccessKeyId": key["AccessKeyId"],
                "Status": "Active",
                "CreateDate": "2026-03-01T12:00:00+00:00",
            }
        ]
    }
    credential = store.credential_for(key["AccessKeyId"])
    assert credential is not None
    assert credential.secret_access_key == key["SecretAccessKey"]
    assert key["SecretAccessKey"] not in repr(credential)
    assert key["SecretAccessKey"] not in repr(store.list_access_keys("alice"))


def test_two_access_keys_per_user(store: IamStore) -> None:
    make_user(store)
    first = service.create_access_key(store, user_name="alice")["AccessKey"]["AccessKeyId"]
    service.create_access_key(store, user_name="alice")
    with pytest.raises(IamLimitExceededError) as error:
        service.create_access_key(store, user_name="alice")
    assert str(error.value) == "LimitExceeded: Cannot exceed quota for AccessKeysPerUser: 2"
    service.delete_access_key(store, access_key_id=first)
    service.create_access_key(store, user_name="alice")  # the twin: room again


def test_delete_access_key_of_another_user(store: IamStore) -> None:
    make_user(store)
    make_user(store, "bob")
    key = service.create_access_key(store, user_name="alice")["AccessKey"]["AccessKeyId"]
    with pytest.raises(NoSuchEntityError) as error:
        service.delete_access_key(store, access_key_id=key, user_name="bob")
    assert error.value.aws_message == f"The Access Key with id {key} cannot be found."
    with pytest.raises(NoSuchEntityError, match="user with name carol"):
        service.delete_access_key(store, access_key_id=key, user_name="carol")
    service.delete_access_key(store, access_key_id=key, user_name="alice")
    assert store.credential_for(key) is None
    with pytest.raises(NoSuchEntityError):
        service.delete_access_key(store, access_key_id=key)


def test_update_access_key_status(store: IamStore) -> None:
    make_user(store)
    key = service.create_access_key(store, user_name="alice")["AccessKey"]["AccessKeyId"]
    service.update_access_key(store, access_key_id=key, status="Inactive", user_name="alice")
    credential = store.credential_for(key)
    assert credential is not None
    assert not credential.active
    with pytest.raises(IamValidationError, match=r"enum value set: \[Active, Inactive\]"):
        service.update_access_key(store, access_key_id=key, status="Disabled")
    service.update_access_key(store, access_key_id=key, status="Active")
    credential = store.credential_for(key)
    assert credential is not None
    assert credential.active


# -- inline policies -------------------------------------------------------------------------


def test_user_policies(store: IamStore) -> None:
    make_user(store)
    service.put_user_policy(store, user_name="alice", policy_name="pub", policy_document=POLICY)
    service.put_user_policy(store, user_name="alice", policy_name="a-first", policy_document=POLICY)
    assert service.list_user_policies(store, user_name="alice") == {
        "PolicyNames": ["a-first", "pub"]
    }
    assert service.get_user_policy(store, user_name="alice", policy_name="pub") == {
        "UserName": "alice",
        "PolicyName": "pub",
        "PolicyDocument": json.loads(POLICY),
    }
    replacement = POLICY.replace("iot:Publish", "iot:Subscribe")
    service.put_user_policy(
        store, user_name="alice", policy_name="pub", policy_document=replacement
    )
    printed = service.get_user_policy(store, user_name="alice", policy_name="pub")
    assert printed["PolicyDocument"] == json.loads(replacement)
    service.delete_user_policy(store, user_name="alice", policy_name="pub")
    with pytest.raises(NoSuchEntityError) as error:
        service.get_user_policy(store, user_name="alice", policy_name="pub")
    assert error.value.aws_message == "The user policy with name pub cannot be found."
    with pytest.raises(NoSuchEntityError):
        service.delete_user_policy(store, user_name="alice", policy_name="pub")


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        json.dumps({"Version": "2012-10-17", "Statement": []}),
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Permit", "Action": "iot:*", "Resource": "*"}],
            }
        ),
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": "iot:*", "Resource": "*"}
                ],
            }
        ),
    ],
)
def test_malformed_policy_documents(store: IamStore, document: str) -> None:
    make_user(store)
    with pytest.raises(MalformedPolicyDocumentError) as error:
        service.put_user_policy(store, user_name="alice", policy_name="p", policy_document=document)
    assert str(error.value).startswith("MalformedPolicyDocument: Policy document is malformed")
    assert service.list_user_policies(store, user_name="alice") == {"PolicyNames": []}
    service.put_user_policy(store, user_name="alice", policy_name="p", policy_document=POLICY)


def test_inline_policies_share_2048_characters(store: IamStore) -> None:
    make_user(store)

    def document(size: int) -> str:
        base = json.loads(POLICY)
        base["Statement"][0]["Sid"] = ""
        padding = size - len("".join(json.dumps(base).split()))
        base["Statement"][0]["Sid"] = "x" * padding
        text = json.dumps(base, indent=4)  # white space does not count
        assert sum(not ch.isspace() for ch in text) == size
        return text

    service.put_user_policy(
        store, user_name="alice", policy_name="one", policy_document=document(1024)
    )
    service.put_user_policy(
        store, user_name="alice", policy_name="two", policy_document=document(1024)
    )
    # Replacing a policy does not count its old version.
    service.put_user_policy(
        store, user_name="alice", policy_name="two", policy_document=document(1024)
    )
    with pytest.raises(IamLimitExceededError) as error:
        service.put_user_policy(
            store, user_name="alice", policy_name="two", policy_document=document(1025)
        )
    assert error.value.aws_message == "Maximum policy size of 2048 bytes exceeded for user alice"


# -- session credentials ---------------------------------------------------------------------


def test_get_session_token(store: IamStore) -> None:
    make_user(store)
    printed = service.get_session_token(store, user_name="alice", now=NOW)
    credentials = printed["Credentials"]
    assert list(credentials) == ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"]
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", credentials["AccessKeyId"])
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", credentials["SecretAccessKey"])
    assert credentials["Expiration"] == "2026-03-02T00:00:00+00:00"  # 12 hours, STS's default
    stored = store.credential_for(credentials["AccessKeyId"])
    assert stored is not None
    assert stored.temporary
    assert stored.identity == store.get_user("alice").identity
    assert (
        stored.session_token_sha256
        == hashlib.sha256(credentials["SessionToken"].encode()).hexdigest()
    )
    assert stored.expiration == NOW + timedelta(hours=12)


@pytest.mark.parametrize(
    ("duration", "error"),
    [
        (899, "Member must have value greater than or equal to 900"),
        (900, None),
        (129_600, None),
        (129_601, "Member must have value less than or equal to 129600"),
    ],
)
def test_session_duration_bounds(store: IamStore, duration: int, error: str | None) -> None:
    make_user(store)
    if error is None:
        printed = service.get_session_token(
            store, user_name="alice", duration_seconds=duration, now=NOW
        )
        expected = (NOW + timedelta(seconds=duration)).isoformat()
        assert printed["Credentials"]["Expiration"] == expected
        return
    with pytest.raises(IamValidationError) as raised:
        service.get_session_token(store, user_name="alice", duration_seconds=duration)
    assert raised.value.aws_message == (
        f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to "
        f"satisfy constraint: {error}"
    )


def test_session_token_for_the_calling_key(store: IamStore) -> None:
    make_user(store)
    key = service.create_access_key(store, user_name="alice")["AccessKey"]["AccessKeyId"]
    session = service.get_session_token(store, access_key_id=key)["Credentials"]
    stored = store.credential_for(session["AccessKeyId"])
    assert stored is not None
    assert stored.identity.user_name == "alice"
    with pytest.raises(IamAccessDeniedError) as error:
        service.get_session_token(store, access_key_id=session["AccessKeyId"])
    assert error.value.aws_message == "Cannot call GetSessionToken with session credentials"
    service.update_access_key(store, access_key_id=key, status="Inactive")
    with pytest.raises(IamAccessDeniedError):
        service.get_session_token(store, access_key_id=key)
    with pytest.raises(NoSuchEntityError):
        service.get_session_token(store, access_key_id="AKIANOSUCHKEYEXAMPLE")
    with pytest.raises(ValueError, match="exactly one"):
        service.get_session_token(store)


def test_expired_sessions_are_dropped_when_new_ones_are_issued(store: IamStore) -> None:
    make_user(store)
    old = service.get_session_token(store, user_name="alice", duration_seconds=900, now=NOW)
    old_key = old["Credentials"]["AccessKeyId"]
    service.get_session_token(store, user_name="alice", now=NOW + timedelta(seconds=899))
    assert store.credential_for(old_key) is not None  # still valid: kept
    service.get_session_token(store, user_name="alice", now=NOW + timedelta(seconds=900))
    assert store.credential_for(old_key) is None


def test_unknown_access_key(store: IamStore) -> None:
    assert store.credential_for("AKIANOSUCHKEYEXAMPLE") is None


# -- the file --------------------------------------------------------------------------------


def test_the_file_is_private_and_separate(state_dir: Path, store: IamStore) -> None:
    make_user(store)
    service.create_access_key(store, user_name="alice")
    database = state_dir / DATABASE_NAME
    assert database.name == "iam.sqlite3"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    for path in state_dir.iterdir():  # the database and its -wal / -shm files
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not (state_dir / "registry.sqlite3").exists()


def test_an_existing_file_is_made_private(state_dir: Path) -> None:
    state_dir.mkdir(mode=0o700)
    database = state_dir / DATABASE_NAME
    database.touch(mode=0o644)
    database.chmod(0o644)
    IamStore.open(state_dir, account_id=ACCOUNT).close()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_state_survives_reopening(state_dir: Path) -> None:
    with IamStore.open(state_dir, account_id=ACCOUNT) as first:
        make_user(first)
        key = service.create_access_key(first, user_name="alice")["AccessKey"]
        service.put_user_policy(first, user_name="alice", policy_name="p", policy_document=POLICY)
    with IamStore.open(state_dir, account_id=ACCOUNT) as second:
        credential = second.credential_for(key["AccessKeyId"])
        assert credential is not None
        assert credential.secret_access_key == key["SecretAccessKey"]
        assert second.user_policies("alice") == [("p", POLICY)]


def test_a_newer_schema_is_refused(state_dir: Path) -> None:
    IamStore.open(state_dir, account_id=ACCOUNT).close()
    with sqlite3.connect(state_dir / DATABASE_NAME) as connection:
        connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(BrokerError, match="schema version 99"):
        IamStore.open(state_dir, account_id=ACCOUNT)


def test_generation_moves_on_writes_only(store: IamStore) -> None:
    start = store.generation()
    service.list_users(store)
    assert store.generation() == start
    make_user(store)
    assert store.generation() == start + 1
    with pytest.raises(EntityAlreadyExistsError):
        make_user(store)
    assert store.generation() == start + 1


def test_every_iam_error_names_its_code() -> None:
    for error_class in IamRequestError.__subclasses__():
        error = error_class("message")
        assert str(error) == f"{error_class.aws_code}: message"
        assert aws_error_code(error) == error_class.aws_code
        assert isinstance(error, BrokerError)
