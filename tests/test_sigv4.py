"""SigV4 verification: requests signed by real clients, AWS's test vectors, and every refusal.

Signers used (never a hand-written one): botocore's pure-Python ``SigV4Auth`` /
``SigV4QueryAuth``, botocore's CRT signers, a boto3 ``iot-data`` client end to end (its request
captured before it would be sent), awscrt's ``aws_sign_request`` directly, and the AWS IoT Device
SDK's own WebSocket handshake signer.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import awscrt.auth
import awscrt.http
import boto3
import botocore.auth
import botocore.crt.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from aws_iot_mock.auth.credentials import IamIdentity, SigningCredential
from aws_iot_mock.auth.sigv4 import (
    FORBIDDEN,
    IOT_CONTROL_PLANE_SERVICES,
    IOT_DATA_SERVICES,
    QueryTokenSigning,
    Refused,
    SignatureForm,
    SignedRequest,
    SigV4Reason,
    Verified,
    verify,
)
from tests.sigv4_clients import (
    amz_date_of,
    capture_requests,
    device_sdk_handshake,
    from_botocore,
    isolated_aws_config,
)

__all__ = ["isolated_aws_config"]  # a fixture, used by name

REGION = "us-east-1"
HOST = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
ACCOUNT = "123456789012"
KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TEMP_KEY = "ASIAIOSFODNN7EXAMPLE"
TEMP_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEBYaDE+Session/Token+With=Odd/Chars=="
INACTIVE_KEY = "AKIAINACTIVEEXAMPLE1"
SIGNED_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
# Far enough ahead for the tests whose signers read the real clock.
EXPIRATION = datetime(2100, 1, 1, tzinfo=UTC)
TOPIC = "a/b c+#/ü"
ALICE = IamIdentity(ACCOUNT, "alice", "AIDAJQABLZS4A3QDU576Q", f"arn:aws:iam::{ACCOUNT}:user/alice")

CREDENTIALS = {
    KEY: SigningCredential(KEY, SECRET, ALICE),
    INACTIVE_KEY: SigningCredential(INACTIVE_KEY, SECRET, ALICE, active=False),
    TEMP_KEY: SigningCredential(
        TEMP_KEY,
        TEMP_SECRET,
        ALICE,
        session_token_sha256=hashlib.sha256(TOKEN.encode()).hexdigest(),
        expiration=EXPIRATION,
    ),
}


def lookup(access_key_id: str) -> SigningCredential | None:
    return CREDENTIALS.get(access_key_id)


def check(
    request: SignedRequest,
    *,
    now: datetime = SIGNED_AT,
    services: frozenset[str] = IOT_DATA_SERVICES,
    region: str | None = REGION,
    query_token: QueryTokenSigning = QueryTokenSigning.APPENDED,
) -> Verified | Refused:
    return verify(
        request,
        credentials=lookup,
        now=now,
        services=services,
        region=region,
        query_token=query_token,
    )


def accepted(result: Verified | Refused) -> Verified:
    assert isinstance(result, Verified), result
    return result


def refused(result: Verified | Refused) -> Refused:
    assert isinstance(result, Refused), result
    return result


def topic_path(topic: str) -> str:
    # botocore's encoding of a non-greedy URI label: everything but unreserved characters.
    return "/topics/" + quote(topic, safe="~")


# ---------------------------------------------------------------------------------------------
# Signers


def crt_sign(
    *,
    method: str = "POST",
    target: str = topic_path(TOPIC) + "?qos=1",
    headers: tuple[tuple[str, str], ...] = (("Host", HOST),),
    body: bytes = b"{}",
    key: str = KEY,
    secret: str = SECRET,
    token: str | None = None,
    service: str = "iotdata",
    region: str = REGION,
    date: datetime = SIGNED_AT,
    query: bool = False,
    omit_token: bool = False,
    expires: int | None = None,
    content_sha256_header: bool = False,
) -> SignedRequest:
    """Sign with awscrt's aws_sign_request, which hashes the body stream itself."""
    config = awscrt.auth.AwsSigningConfig(
        algorithm=awscrt.auth.AwsSigningAlgorithm.V4,
        signature_type=(
            awscrt.auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS
            if query
            else awscrt.auth.AwsSignatureType.HTTP_REQUEST_HEADERS
        ),
        credentials_provider=awscrt.auth.AwsCredentialsProvider.new_static(key, secret, token),
        region=region,
        service=service,
        date=date,
        omit_session_token=omit_token,
        expiration_in_seconds=expires,
        signed_body_header_type=(
            awscrt.auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256
            if content_sha256_header
            else awscrt.auth.AwsSignedBodyHeaderType.NONE
        ),
    )
    request = awscrt.http.HttpRequest(
        method, target, awscrt.http.HttpHeaders(list(headers)), io.BytesIO(body)
    )
    signed = awscrt.auth.aws_sign_request(request, config).result()
    return SignedRequest.from_target(signed.method, signed.path, list(signed.headers), body)


def botocore_request(
    *, method: str = "POST", target: str = topic_path(TOPIC) + "?qos=1", body: bytes = b"{}"
) -> Any:
    return AWSRequest(method=method, url=f"https://{HOST}{target}", data=body)


PYTHON_SIGNERS = {"python": botocore.auth.SigV4Auth, "crt": botocore.crt.auth.CrtSigV4Auth}
PYTHON_QUERY_SIGNERS = {
    "python": botocore.auth.SigV4QueryAuth,
    "crt": botocore.crt.auth.CrtSigV4QueryAuth,
}


# ---------------------------------------------------------------------------------------------
# AWS's published vector and the IoT WebSocket vector


def test_get_vanilla_test_vector() -> None:
    """AWS SigV4 test suite ``get-vanilla``: the published signature verifies."""
    vanilla = SigningCredential("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ALICE)
    request = SignedRequest(
        "GET",
        "/",
        "",
        (
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                "SignedHeaders=host;x-amz-date, "
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ),
    )
    at = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    ok = verify(
        request,
        credentials={"AKIDEXAMPLE": vanilla}.get,
        now=at,
        services=frozenset({"service"}),
        region="us-east-1",
    )
    verified = accepted(ok)
    assert (verified.service, verified.form, verified.signed_at) == (
        "service",
        SignatureForm.HEADER,
        at,
    )
    # One hex digit off: refused as a mismatch.
    tampered = SignedRequest(
        "GET",
        "/",
        "",
        (*request.headers[:2], (request.headers[2][0], request.headers[2][1][:-1] + "0")),
    )
    no = verify(
        tampered,
        credentials={"AKIDEXAMPLE": vanilla}.get,
        now=at,
        services=frozenset({"service"}),
        region="us-east-1",
    )
    assert refused(no).reason is SigV4Reason.SIGV4_SIGNATURE_MISMATCH


def test_iot_websocket_vector_with_token_appended_after_signing() -> None:
    """The handshake awscrt signs for AWS IoT (token outside the signature) verifies."""
    token = "SESSION/TOKEN+="
    credential = SigningCredential(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ALICE,
        session_token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        expiration=datetime(2015, 8, 31, tzinfo=UTC),
    )
    request = SignedRequest.from_target(
        "GET",
        "/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2F"
        "us-east-1%2Fiotdevicegateway%2Faws4_request&X-Amz-Date=20150830T123600Z&"
        "X-Amz-SignedHeaders=connection%3Bhost&X-Amz-Security-Token=SESSION%2FTOKEN%2B%3D&"
        "X-Amz-Signature=bb97ceda63bdd9199ada8c5ce76411245451e9449f3ef5bfcb5ebb278816da2e",
        [
            ("Host", "example-ats.iot.us-east-1.amazonaws.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "mqtt"),
        ],
    )
    result = verify(
        request,
        credentials={"AKIDEXAMPLE": credential}.get,
        now=datetime(2015, 8, 30, 12, 37, tzinfo=UTC),
        services=IOT_DATA_SERVICES,
        region="us-east-1",
    )
    verified = accepted(result)
    assert (verified.form, verified.service, verified.temporary) == (
        SignatureForm.QUERY,
        "iotdevicegateway",
        True,
    )


# ---------------------------------------------------------------------------------------------
# Real clients


TOPICS = ["t", "a/b c+#/ü", "$aws/things/thing-1/shadow/update", "sp ace/++/##/~tilde"]
QUERIES = [
    "",
    "qos=1",
    "qos=1&retain=true&contentType=application%2Fjson&responseTopic=r%2Fs%20t%2B",
    "name=shadow%2B1&b=2&a=1&a=0",
]


@pytest.mark.parametrize("signer", sorted(PYTHON_SIGNERS))
@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "session"])
@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_botocore_header_signature(signer: str, token: str | None, topic: str, query: str) -> None:
    key, secret = (TEMP_KEY, TEMP_SECRET) if token else (KEY, SECRET)
    body = f'{{"topic": "{topic}"}}'.encode()
    target = topic_path(topic) + (f"?{query}" if query else "")
    request = botocore_request(target=target, body=body)
    PYTHON_SIGNERS[signer](Credentials(key, secret, token), "iotdata", REGION).add_auth(request)
    signed = from_botocore(request, body)
    verified = accepted(check(signed, now=amz_date_of(signed) + timedelta(seconds=30)))
    assert (verified.access_key_id, verified.temporary) == (key, token is not None)
    assert verified.form is SignatureForm.HEADER
    # The same request with the body changed no longer verifies.
    changed = replace(signed, payload=body + b" ")
    assert refused(check(changed, now=amz_date_of(signed))).reason is (
        SigV4Reason.SIGV4_SIGNATURE_MISMATCH
    )


@pytest.mark.parametrize("signer", sorted(PYTHON_QUERY_SIGNERS))
@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "session"])
@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_botocore_presigned_query_signature(
    signer: str, token: str | None, topic: str, query: str
) -> None:
    """botocore's presigned URLs sign the token: accepted unless AWS IoT's rule is enforced."""
    key, secret = (TEMP_KEY, TEMP_SECRET) if token else (KEY, SECRET)
    target = topic_path(topic) + (f"?{query}" if query else "")
    request = botocore_request(method="GET", target=target, body=b"")
    PYTHON_QUERY_SIGNERS[signer](
        Credentials(key, secret, token), "iotdevicegateway", REGION, expires=3600
    ).add_auth(request)
    signed = from_botocore(request)
    now = amz_date_of(signed) + timedelta(minutes=30)
    verified = accepted(check(signed, now=now, query_token=QueryTokenSigning.EITHER))
    assert verified.form is SignatureForm.QUERY
    if token is None:
        accepted(check(signed, now=now))
    else:
        # AWS IoT: "do not include X-Amz-Security-Token in the canonical query string".
        strict = refused(check(signed, now=now))
        assert strict.reason is SigV4Reason.SIGV4_SIGNATURE_MISMATCH
        assert "covers X-Amz-Security-Token" in strict.details
        accepted(check(signed, now=now, query_token=QueryTokenSigning.SIGNED))


@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "session"])
@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
@pytest.mark.parametrize("content_sha256_header", [False, True], ids=["hashed", "sha-header"])
def test_awscrt_header_signature(
    token: str | None, topic: str, query: str, content_sha256_header: bool
) -> None:
    key, secret = (TEMP_KEY, TEMP_SECRET) if token else (KEY, SECRET)
    target = topic_path(topic) + (f"?{query}" if query else "")
    signed = crt_sign(
        target=target,
        key=key,
        secret=secret,
        token=token,
        body="ü payload".encode(),
        content_sha256_header=content_sha256_header,
        headers=(("Host", HOST), ("Content-Type", "application/json"), ("X-Custom", " a  b ")),
    )
    verified = accepted(check(signed))
    assert verified.temporary is (token is not None)


@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "session"])
@pytest.mark.parametrize("omit_token", [True, False], ids=["token-appended", "token-signed"])
@pytest.mark.parametrize("expires", [None, 86400], ids=["no-expires", "expires"])
@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_awscrt_presigned_query_signature(
    token: str | None, omit_token: bool, expires: int | None, query: str
) -> None:
    key, secret = (TEMP_KEY, TEMP_SECRET) if token else (KEY, SECRET)
    target = "/mqtt" + (f"?{query}" if query else "")
    signed = crt_sign(
        method="GET",
        target=target,
        body=b"",
        key=key,
        secret=secret,
        token=token,
        service="iotdevicegateway",
        query=True,
        omit_token=omit_token,
        expires=expires,
        headers=(("Host", HOST), ("Connection", "Upgrade"), ("Upgrade", "websocket")),
    )
    verified = accepted(check(signed, query_token=QueryTokenSigning.EITHER))
    assert verified.form is SignatureForm.QUERY
    strict = check(signed)  # AWS IoT's rule: the token must not be signed
    if token is None or omit_token:
        accepted(strict)
    else:
        assert refused(strict).reason is SigV4Reason.SIGV4_SIGNATURE_MISMATCH


@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "session"])
def test_aws_iot_device_sdk_websocket_handshake(token: str | None) -> None:
    """The Device SDK's own handshake signer (websockets_with_default_aws_signing)."""
    key, secret = (TEMP_KEY, TEMP_SECRET) if token else (KEY, SECRET)
    signed = device_sdk_handshake(host=HOST, region=REGION, key=key, secret=secret, token=token)
    assert ("X-Amz-Security-Token" in signed.query) is (token is not None)
    verified = accepted(check(signed, now=amz_date_of(signed) + timedelta(seconds=5)))
    assert (verified.service, verified.form) == ("iotdevicegateway", SignatureForm.QUERY)


@pytest.mark.usefixtures("isolated_aws_config")
@pytest.mark.parametrize("signer", ["python", "crt"])
@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "session"])
def test_boto3_iot_data_client_end_to_end(
    monkeypatch: pytest.MonkeyPatch, signer: str, token: str | None
) -> None:
    """What boto3 actually sends for publish / update-thing-shadow / get-retained-message."""
    if signer == "python":
        # Without this botocore uses its CRT signer, because awscrt is installed.
        monkeypatch.setitem(botocore.auth.AUTH_TYPE_MAPS, "v4", botocore.auth.SigV4Auth)
    key, secret = (TEMP_KEY, TEMP_SECRET) if token else (KEY, SECRET)
    client = boto3.client(
        "iot-data",
        region_name=REGION,
        endpoint_url=f"https://{HOST}",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )
    sent = capture_requests(client)
    client.publish(
        topic=TOPIC,
        qos=1,
        retain=True,
        payload=b"\x00\x01 binary",
        contentType="application/octet-stream",
        responseTopic="reply/ü to",
    )
    client.update_thing_shadow(thingName="thing-1", shadowName="s+1", payload=b'{"state":{}}')
    client.get_retained_message(topic="$aws/things/x y/shadow")
    assert len(sent) == 3
    assert sent[0].path == "/topics/a%2Fb%20c%2B%23%2F%C3%BC"
    for request in sent:
        verified = accepted(check(request, now=amz_date_of(request)))
        assert verified.service == "iotdata"
        assert verified.identity is ALICE


@pytest.mark.usefixtures("isolated_aws_config")
def test_boto3_iot_control_plane_client() -> None:
    """The control plane signs as "iot"; the data plane door refuses that scope."""
    client = boto3.client(
        "iot",
        region_name=REGION,
        endpoint_url="https://iot.us-east-1.amazonaws.com",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )
    sent = capture_requests(client)
    client.create_thing(thingName="thing 1", attributePayload={"attributes": {"a": "b"}})
    client.list_things(maxResults=5, attributeName="a", attributeValue="b c")
    for request in sent:
        now = amz_date_of(request)
        accepted(check(request, now=now, services=IOT_CONTROL_PLANE_SERVICES))
        wrong = refused(check(request, now=now))
        assert wrong.reason is SigV4Reason.SIGV4_INVALID_CREDENTIAL_SCOPE
        assert wrong.message == "Credential should be scoped to correct service: 'iotdata'. "


def test_repeated_and_padded_headers() -> None:
    """Header values are folded and repeats joined, as botocore signs them."""
    request = botocore_request()
    request.headers.add_header("X-Multi", "first")
    request.headers.add_header("X-Multi", "  second   value ")
    botocore.auth.SigV4Auth(Credentials(KEY, SECRET), "iotdata", REGION).add_auth(request)
    signed = from_botocore(request, b"{}")
    assert "x-multi" in signed.header_values("Authorization")[0]
    accepted(check(signed, now=amz_date_of(signed)))


# ---------------------------------------------------------------------------------------------
# Refusals, each with a passing twin


@dataclass(frozen=True)
class Case:
    """A refusal and its twin: ``build(False)`` must verify, ``build(True)`` must be refused."""

    name: str
    build: Callable[[bool], tuple[SignedRequest, dict[str, Any]]]
    reason: SigV4Reason
    code: str
    status: int
    message: str


def _plain(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
    return crt_sign(), {}


def _strip_authorization(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
    signed = crt_sign()
    if bad:
        signed = replace(
            signed, headers=tuple(h for h in signed.headers if h[0].lower() != "authorization")
        )
    return signed, {}


def _edit_authorization(old: str, new: str) -> Callable[[bool], tuple[SignedRequest, Any]]:
    def build(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
        signed = crt_sign()
        if bad:
            headers = tuple(
                (name, value.replace(old, new) if name == "Authorization" else value)
                for name, value in signed.headers
            )
            assert headers != signed.headers
            signed = replace(signed, headers=headers)
        return signed, {}

    return build


def _edit_query(old: str, new: str, **sign: Any) -> Callable[[bool], tuple[SignedRequest, Any]]:
    def build(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
        signed = crt_sign(method="GET", target="/mqtt", body=b"", query=True, **sign)
        if bad:
            assert old in signed.query
            signed = replace(signed, query=signed.query.replace(old, new))
        return signed, {}

    return build


def _both_forms(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
    signed = crt_sign()
    if bad:
        presigned = crt_sign(query=True)
        signed = replace(signed, query=presigned.query)
    return signed, {}


def _host_unsigned(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
    if not bad:
        return crt_sign(), {}
    signed = crt_sign(headers=(("X-Other", "1"),))
    return replace(signed, headers=(("Host", HOST), *signed.headers)), {}


def _edit_header(name: str, value: str) -> Callable[[bool], tuple[SignedRequest, Any]]:
    def build(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
        signed = crt_sign()
        if bad:
            signed = replace(
                signed,
                headers=tuple((n, value if n == name else v) for n, v in signed.headers),
            )
        return signed, {}

    return build


def _signed_with(**bad_sign: Any) -> Callable[[bool], tuple[SignedRequest, Any]]:
    def build(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
        return crt_sign(**bad_sign) if bad else crt_sign(), {}

    return build


def _at(
    good: timedelta, bad: timedelta, **sign: Any
) -> Callable[[bool], tuple[SignedRequest, Any]]:
    def build(bad_case: bool) -> tuple[SignedRequest, dict[str, Any]]:
        return crt_sign(**sign), {"now": SIGNED_AT + (bad if bad_case else good)}

    return build


def _temporary(**override: Any) -> Callable[[bool], tuple[SignedRequest, Any]]:
    def build(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
        sign: dict[str, Any] = {"key": TEMP_KEY, "secret": TEMP_SECRET, "token": TOKEN}
        if bad:
            sign.update(override)
        return crt_sign(**sign), {}

    return build


def _expired_session(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
    date = EXPIRATION + (timedelta(seconds=1) if bad else -timedelta(seconds=1))
    signed = crt_sign(key=TEMP_KEY, secret=TEMP_SECRET, token=TOKEN, date=date)
    return signed, {"now": date}


def _content_sha256(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
    signed = crt_sign(content_sha256_header=True, body=b"original")
    if bad:
        signed = replace(signed, payload=b"tampered")
    return signed, {}


def _changed(**fields: Any) -> Callable[[bool], tuple[SignedRequest, Any]]:
    def build(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
        signed = crt_sign(
            headers=(("Host", HOST), ("Content-Type", "application/json")), target="/t?qos=1"
        )
        return (replace(signed, **fields) if bad else signed), {}

    return build


def _drop_signed_header(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
    signed = crt_sign(headers=(("Host", HOST), ("Content-Type", "application/json")))
    if bad:
        signed = replace(signed, headers=tuple(h for h in signed.headers if h[0] != "Content-Type"))
    return signed, {}


def _token_signed_in_query(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
    signed = crt_sign(
        method="GET",
        target="/mqtt",
        body=b"",
        query=True,
        key=TEMP_KEY,
        secret=TEMP_SECRET,
        token=TOKEN,
        service="iotdevicegateway",
        omit_token=not bad,
    )
    return signed, {}


class _UserAgentSigner(botocore.auth.SigV4Auth):  # type: ignore[misc]
    """A signer that also signs User-Agent, as the AWS SDK for Java v1 does."""

    def headers_to_sign(self, request: Any) -> Any:
        headers = super().headers_to_sign(request)
        if "User-Agent" in request.headers:
            headers["user-agent"] = request.headers["User-Agent"]
        return headers


def _user_agent_signed(bad: bool) -> tuple[SignedRequest, dict[str, Any]]:
    request = botocore_request()
    request.headers["User-Agent"] = "aws-sdk-java/1.12"
    signer = _UserAgentSigner if bad else botocore.auth.SigV4Auth
    signer(Credentials(KEY, SECRET), "iotdata", REGION).add_auth(request)
    signed = from_botocore(request, b"{}")
    return signed, {"now": amz_date_of(signed)}


_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_INVALID_TOKEN = "The security token included in the request is invalid."
_INCOMPLETE = "IncompleteSignatureException"
_INVALID_SIGNATURE = "InvalidSignatureException"
_UNRECOGNIZED = "UnrecognizedClientException"

CASES = [
    Case(
        "unsigned",
        _strip_authorization,
        SigV4Reason.SIGV4_MISSING_AUTHENTICATION,
        "MissingAuthenticationTokenException",
        403,
        "Missing Authentication Token",
    ),
    Case(
        "no-signature-part",
        _edit_authorization(", Signature=", ", Sig="),
        SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE,
        _INCOMPLETE,
        403,
        "Authorization header requires 'Signature' parameter.",
    ),
    Case(
        "unsupported-algorithm",
        _edit_authorization("AWS4-HMAC-SHA256 ", "AWS4-ECDSA-P256-SHA256 "),
        SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE,
        _INCOMPLETE,
        403,
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'.",
    ),
    Case(
        "credential-elements",
        _edit_authorization("/aws4_request", ""),
        SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE,
        _INCOMPLETE,
        403,
        "Credential must have exactly 5 slash-delimited elements, e.g. "
        f"keyid/date/region/service/term, got '{KEY}/20260301/us-east-1/iotdata'",
    ),
    Case(
        "host-not-signed",
        _host_unsigned,
        SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE,
        _INCOMPLETE,
        403,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    ),
    Case(
        "both-forms",
        _both_forms,
        SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE,
        _INCOMPLETE,
        403,
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
        "query string parameter or the Authorization header should be specified",
    ),
    Case(
        "query-missing-signed-headers",
        _edit_query("X-Amz-SignedHeaders=host", "X-Amz-Other=host"),
        SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE,
        _INCOMPLETE,
        403,
        "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', "
        "'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the query-string "
        "parameters.",
    ),
    Case(
        "expires-too-long",
        _edit_query("X-Amz-Expires=60", "X-Amz-Expires=604801", expires=60),
        SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE,
        _INCOMPLETE,
        403,
        "X-Amz-Expires must be less than a week (in seconds) that is 604800",
    ),
    Case(
        "malformed-date",
        _edit_header("X-Amz-Date", "2026-03-01T12:00:00Z"),
        SigV4Reason.SIGV4_MALFORMED_DATE,
        _INCOMPLETE,
        403,
        "Date must be in ISO-8601 'basic format'. Got '2026-03-01T12:00:00Z'. See "
        "http://en.wikipedia.org/wiki/ISO_8601",
    ),
    Case(
        "scope-date",
        _edit_authorization("/20260301/", "/20260302/"),
        SigV4Reason.SIGV4_INVALID_CREDENTIAL_SCOPE,
        _INVALID_SIGNATURE,
        403,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20260302' != '20260301', from '20260301T120000Z'.",
    ),
    Case(
        "scope-terminator",
        _edit_authorization("/aws4_request", "/aws5_request"),
        SigV4Reason.SIGV4_INVALID_CREDENTIAL_SCOPE,
        _INVALID_SIGNATURE,
        403,
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
    ),
    Case(
        "scope-region",
        _signed_with(region="eu-west-1"),
        SigV4Reason.SIGV4_INVALID_CREDENTIAL_SCOPE,
        _INVALID_SIGNATURE,
        403,
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    ),
    Case(
        "scope-service",
        _signed_with(service="iot"),
        SigV4Reason.SIGV4_INVALID_CREDENTIAL_SCOPE,
        _INVALID_SIGNATURE,
        403,
        "Credential should be scoped to correct service: 'iotdata'. ",
    ),
    Case(
        "signed-too-long-ago",
        _at(timedelta(minutes=4, seconds=59), timedelta(minutes=5, seconds=1)),
        SigV4Reason.SIGV4_CLOCK_SKEW,
        _INVALID_SIGNATURE,
        403,
        "Signature expired: 20260301T120000Z is now earlier than 20260301T120001Z "
        "(20260301T120501Z - 5 min.)",
    ),
    Case(
        "signed-in-the-future",
        _at(-timedelta(minutes=4, seconds=59), -timedelta(minutes=5, seconds=1)),
        SigV4Reason.SIGV4_CLOCK_SKEW,
        _INVALID_SIGNATURE,
        403,
        "Signature not yet current: 20260301T120000Z is still later than 20260301T115959Z "
        "(20260301T115459Z + 5 min.)",
    ),
    Case(
        "presigned-skew-without-expires",
        _at(
            timedelta(minutes=5),
            timedelta(minutes=6),
            method="GET",
            target="/mqtt",
            body=b"",
            query=True,
        ),
        SigV4Reason.SIGV4_CLOCK_SKEW,
        _INVALID_SIGNATURE,
        403,
        "Signature expired: 20260301T120000Z is now earlier than 20260301T120100Z "
        "(20260301T120600Z - 5 min.)",
    ),
    Case(
        "presigned-expired",
        _at(
            timedelta(seconds=600),
            timedelta(seconds=601),
            method="GET",
            target="/mqtt",
            body=b"",
            query=True,
            expires=600,
        ),
        SigV4Reason.SIGV4_REQUEST_EXPIRED,
        _INVALID_SIGNATURE,
        403,
        "Request has expired",
    ),
    Case(
        "unknown-key",
        _signed_with(key="AKIAUNKNOWNEXAMPLE00"),
        SigV4Reason.SIGV4_UNKNOWN_ACCESS_KEY,
        _UNRECOGNIZED,
        403,
        _INVALID_TOKEN,
    ),
    Case(
        "inactive-key",
        _signed_with(key=INACTIVE_KEY),
        SigV4Reason.SIGV4_INACTIVE_ACCESS_KEY,
        _UNRECOGNIZED,
        403,
        _INVALID_TOKEN,
    ),
    Case(
        "session-without-token",
        _temporary(token=None),
        SigV4Reason.SIGV4_INVALID_SESSION_TOKEN,
        _UNRECOGNIZED,
        403,
        _INVALID_TOKEN,
    ),
    Case(
        "session-wrong-token",
        _temporary(token=TOKEN + "x"),
        SigV4Reason.SIGV4_INVALID_SESSION_TOKEN,
        _UNRECOGNIZED,
        403,
        _INVALID_TOKEN,
    ),
    Case(
        "long-term-key-with-token",
        _signed_with(token=TOKEN),
        SigV4Reason.SIGV4_INVALID_SESSION_TOKEN,
        _UNRECOGNIZED,
        403,
        _INVALID_TOKEN,
    ),
    Case(
        "session-expired",
        _expired_session,
        SigV4Reason.SIGV4_EXPIRED_CREDENTIALS,
        "ExpiredTokenException",
        403,
        "The security token included in the request is expired",
    ),
    Case(
        "content-sha256-mismatch",
        _content_sha256,
        SigV4Reason.SIGV4_PAYLOAD_HASH_MISMATCH,
        "XAmzContentSHA256Mismatch",
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
    Case(
        "wrong-secret",
        _signed_with(secret=SECRET[::-1]),
        SigV4Reason.SIGV4_SIGNATURE_MISMATCH,
        _INVALID_SIGNATURE,
        403,
        _MISMATCH,
    ),
    Case(
        "changed-body",
        _changed(payload=b"{ }"),
        SigV4Reason.SIGV4_SIGNATURE_MISMATCH,
        _INVALID_SIGNATURE,
        403,
        _MISMATCH,
    ),
    Case(
        "changed-path",
        _changed(path="/u"),
        SigV4Reason.SIGV4_SIGNATURE_MISMATCH,
        _INVALID_SIGNATURE,
        403,
        _MISMATCH,
    ),
    Case(
        "changed-query",
        _changed(query="qos=0"),
        SigV4Reason.SIGV4_SIGNATURE_MISMATCH,
        _INVALID_SIGNATURE,
        403,
        _MISMATCH,
    ),
    Case(
        "changed-method",
        _changed(method="PUT"),
        SigV4Reason.SIGV4_SIGNATURE_MISMATCH,
        _INVALID_SIGNATURE,
        403,
        _MISMATCH,
    ),
    Case(
        "signed-header-absent",
        _drop_signed_header,
        SigV4Reason.SIGV4_SIGNATURE_MISMATCH,
        _INVALID_SIGNATURE,
        403,
        _MISMATCH,
    ),
    Case(
        "presigned-token-inside-signature",
        _token_signed_in_query,
        SigV4Reason.SIGV4_SIGNATURE_MISMATCH,
        _INVALID_SIGNATURE,
        403,
        _MISMATCH,
    ),
    Case(
        "user-agent-signed",
        _user_agent_signed,
        SigV4Reason.SIGV4_UNSUPPORTED_SIGNED_HEADER,
        _INVALID_SIGNATURE,
        403,
        _MISMATCH,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_refusal_and_its_twin(case: Case) -> None:
    twin, twin_kwargs = case.build(False)
    accepted(check(twin, **twin_kwargs))
    request, kwargs = case.build(True)
    result = refused(check(request, **kwargs))
    assert result.reason is case.reason, result.details
    assert (result.code, result.status, result.message) == (case.code, case.status, case.message)
    assert result.iot_data_error == FORBIDDEN
    assert SECRET not in result.details
    assert TEMP_SECRET not in result.details


def test_refusal_details_name_the_cause() -> None:
    request, _ = _drop_signed_header(True)
    assert refused(check(request)).details == "signed header 'content-type' is not in the request"
    request, _ = _token_signed_in_query(True)
    assert "covers X-Amz-Security-Token" in refused(check(request)).details
    request, kwargs = _user_agent_signed(True)
    assert "user-agent" in refused(check(request, **kwargs)).details


def test_any_region_when_none_is_configured() -> None:
    accepted(check(crt_sign(region="eu-west-1"), region=None))


def test_verified_identity_and_principal_id() -> None:
    verified = accepted(check(crt_sign(key=TEMP_KEY, secret=TEMP_SECRET, token=TOKEN)))
    assert verified.identity == ALICE
    assert verified.principal_id == "AIDAJQABLZS4A3QDU576Q"
    assert verified.credential_expiration == EXPIRATION
    assert (verified.region, verified.service) == (REGION, "iotdata")


def test_secret_never_in_repr() -> None:
    assert SECRET not in repr(CREDENTIALS[KEY])
    assert "session_token_sha256" not in repr(CREDENTIALS[TEMP_KEY])


def test_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check(crt_sign(), now=SIGNED_AT.replace(tzinfo=None))


@pytest.mark.parametrize(
    "target",
    [
        "/t?X-Amz-Signature",
        "/t?X-Amz-Algorithm=&X-Amz-Credential=%%%",
        "/t?X-Amz-Signature=a&x-amz-signature=b",
    ],
)
def test_garbage_is_refused_not_raised(target: str) -> None:
    request = SignedRequest.from_target("GET", target, [("Host", HOST)])
    assert refused(check(request)).reason is SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE


def test_signer_is_loaded_lazily() -> None:
    """Importing the verifier does not load awscrt (the broker's start-up budget)."""
    code = (
        "import sys, aws_iot_mock.auth.sigv4, aws_iot_mock.iam.store, "
        "aws_iot_mock.iam.authorization; "
        "print(sorted(m for m in sys.modules if m.startswith(('awscrt', '_awscrt', 'botocore'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"
