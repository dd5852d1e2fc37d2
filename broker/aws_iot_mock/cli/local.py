"""aws-iot-mock's own verbs (no AWS namespace): ``serve``, ``init`` and ``healthcheck``.

Also the demo device and user that ``serve --demo-device`` (``make run``) creates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shlex
import signal
import socket
import ssl
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING

from aws_iot_mock import startup_gc
from aws_iot_mock.certs_dir import (
    CertsDirectory,
    private_directory,
    write_private_key,
    write_public_file,
)
from aws_iot_mock.cli._common import (
    _add_common,
    _load,
    _open_registry,
)
from aws_iot_mock.config import LOG_LEVELS, Config

if TYPE_CHECKING:
    from aws_iot_mock.cli._common import _Verbs
    from aws_iot_mock.cli.iam import DemoUser

__all__ = [
    "DEMO_THINGS",
    "VERBS",
    "api_url",
    "demo_policy_document",
    "ensure_demo_device",
    "register",
]

DEMO_DEVICE = "demo-device"

# The verbs ``register`` adds (the command line builds only these when one of them is asked for).
VERBS = frozenset({"serve", "init", "healthcheck"})

# The demo device's things. AWS IoT lets one MQTT client ID be connected once: a second CONNECT
# with the same ID disconnects the first (session takeover). The demo policy, like AWS's
# recommended least-privilege policies, only lets a client connect with a client ID equal to the
# name of a thing its certificate is attached to (client/${iot:Connection.Thing.ThingName} with
# the iot:Connection.Thing.IsAttached condition). So that the subscriber, the publisher and the
# health check can be connected at the same time with the one demo certificate, the certificate
# is attached (non-exclusively, as AWS allows) to three things, one per client ID:
#   demo-device              the subscriber of the printed hints (the "device" itself)
#   demo-device-publisher    the publisher of the printed hints
#   demo-device-healthcheck  `aws-iot-mock healthcheck --device`, which never takes over the others
DEMO_PUBLISHER = f"{DEMO_DEVICE}-publisher"
DEMO_HEALTHCHECK = f"{DEMO_DEVICE}-healthcheck"
DEMO_THINGS = (DEMO_DEVICE, DEMO_PUBLISHER, DEMO_HEALTHCHECK)
DEMO_POLICY = f"{DEMO_DEVICE}-policy"


# serve's port flags: which door each sets (0 picks a free port, "off" serves without the door).
_DOOR_FLAGS = (
    ("--port", "MQTT over TLS with a client certificate (AWS: 8883)"),
    ("--https-port", "HTTPS with a client certificate (AWS: 8443)"),
    ("--alpn-port", "AWS's 443: MQTT or HTTPS with a client certificate by ALPN, or SigV4"),
    ("--api-port", "the control-plane API for boto3 and the aws CLI"),
)
_DOOR_NAMES = {
    "mqtt": "--port",
    "https": "--https-port",
    "alpn": "--alpn-port",
    "api": "--api-port",
}
_DOOR_LABELS = {
    "mqtt": "MQTT over TLS, X.509 (AWS: 8883)",
    "https": "HTTPS, X.509 (AWS: 8443)",
    "alpn": "443 by ALPN: MQTT or HTTPS with X.509, or SigV4 (AWS: 443)",
    "api": "control plane: boto3 / aws iot --endpoint-url",
}


def _port_value(text: str) -> int | str:
    """A door's port on the command line: a number (0 for a free port) or ``off``."""
    if text == "off":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid port {text!r}: a number (0 picks a free one) or off"
        ) from None


# --- the demo device ---------------------------------------------------------------------------


def _demo_device_paths(certs: CertsDirectory) -> tuple[Path, Path, Path]:
    directory = certs.path / DEMO_DEVICE
    return (
        directory / f"{DEMO_DEVICE}.cert.pem",
        directory / f"{DEMO_DEVICE}.private.key",
        directory / f"{DEMO_DEVICE}.public.key",
    )


def ensure_demo_device(config: Config) -> tuple[Path, Path]:
    """Create the demo device once and bring its registry resources in line; return (cert, key).

    The demo device is an ACTIVE certificate and key under ``certs/demo-device/``, the things
    ``DEMO_THINGS`` with that certificate attached as their principal, and the policy
    ``demo-device-policy`` (see :func:`demo_policy_document`) attached to the certificate. On
    later runs the existing files are reused and only what is missing is created: a certificate
    the registry lost (the state directory was deleted) is registered again as ACTIVE, a missing
    thing or attachment is re-created, and a policy whose document differs (e.g. after the region
    changed) gets the current document as its new default version. Nothing else is touched.
    """
    # Imported here: serve without --demo-device (or resources:) parses no certificate before
    # the first handshake, and must not wait for cryptography.
    from aws_iot_mock import pki  # noqa: PLC0415
    from aws_iot_mock.registry import CertificateStatus  # noqa: PLC0415
    from aws_iot_mock.resources import (  # noqa: PLC0415
        ensure_policy,
        ensure_policy_attached,
        ensure_thing_principal,
        thing_exists,
    )

    certs = CertsDirectory(config.certs_dir)
    ca = certs.ensure_root_ca()
    cert_path, key_path, public_path = _demo_device_paths(certs)
    with _open_registry(config) as registry:
        if cert_path.exists() and key_path.exists():
            pem = cert_path.read_bytes()
            record = registry.get_certificate(pki.certificate_id(pem))
            if record is None:
                record = registry.register_certificate(pem, status=CertificateStatus.ACTIVE)
        else:
            issued = pki.issue_device_certificate(ca)
            assert issued.private_key_pem is not None
            record = registry.register_certificate(
                issued.certificate_pem, status=CertificateStatus.ACTIVE
            )
            private_directory(cert_path.parent)  # it holds the device's private key
            write_private_key(key_path, issued.private_key_pem)
            write_public_file(public_path, issued.public_key_pem)
            write_public_file(cert_path, issued.certificate_pem)
        # The ARN in the configured region and account, which may differ from the stored one if
        # the config changed since the certificate was registered.
        arn = pki.certificate_arn(config.region, config.account_id, record.certificate_id)
        for thing_name in DEMO_THINGS:
            if not thing_exists(registry, thing_name):
                registry.create_thing(thing_name)
            ensure_thing_principal(registry, thing_name, arn)
        ensure_policy(registry, DEMO_POLICY, demo_policy_document(config))
        ensure_policy_attached(registry, DEMO_POLICY, arn)
    return cert_path, key_path


def demo_policy_document(config: Config) -> str:
    """The demo device's policy: least privilege, scoped to the connecting thing.

    A client may connect only with a client ID equal to the name of a thing the certificate is
    attached to, and may publish (retained too), receive and subscribe on ``demo/...``, and
    publish, receive and subscribe on its own thing's reserved topics
    (``$aws/things/<thing name>/...``: shadows, jobs). Not ``iot:*`` on ``*``.

    ``demo/...`` has statements of its own: thing policy variables resolve on MQTT and MQTT over
    WebSocket only (https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html),
    and a statement with an unresolved variable matches nothing, so the certificate can also
    publish on ``demo/...`` over HTTPS (AWS's curl example).
    """
    # Imported here: serve's start-up needs the policy evaluator only with --demo-device.
    from aws_iot_mock.authz.iot_policy_evaluation import resource_arn  # noqa: PLC0415

    thing = "${iot:Connection.Thing.ThingName}"

    def arn(kind: str, name: str) -> str:
        return resource_arn(config.region, config.account_id, kind, name)

    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectAsAnAttachedThing",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": arn("client", thing),
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                # iot:RetainPublish: a PUBLISH with RETAIN needs it besides iot:Publish
                # (https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-actions.html).
                "Sid": "PublishAndReceive",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:RetainPublish", "iot:Receive"],
                "Resource": arn("topic", "demo/*"),
            },
            {
                "Sid": "Subscribe",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": arn("topicfilter", "demo/*"),
            },
            {
                "Sid": "ItsThingsReservedTopics",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": arn("topic", f"$aws/things/{thing}/*"),
            },
            {
                "Sid": "SubscribeToItsThingsReservedTopics",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": arn("topicfilter", f"$aws/things/{thing}/*"),
            },
        ],
    }
    return json.dumps(document, indent=2)


def _cmd_init(args: argparse.Namespace) -> int:
    config = _load(args)
    certs = CertsDirectory(config.certs_dir)
    certs.ensure_root_ca()
    certs.ensure_server_certificates(config.server_names)
    print(f"root CA:     {certs.root_ca_path}")
    if args.demo_device:
        cert_path, key_path = ensure_demo_device(config)
        print(f"demo device: {cert_path} {key_path}")
    return 0


def _client_hints(config: Config, port: int, cert: Path, key: Path, ca: Path) -> list[str]:
    """Ready-to-paste commands for the demo device: subscribe, then publish (mosquitto-clients)."""
    tls = (
        f"-h {config.endpoint} -p {port} --cafile {shlex.quote(str(ca))} "
        f"--cert {shlex.quote(str(cert))} --key {shlex.quote(str(key))}"
    )
    # Two client IDs, two attached things: see DEMO_THINGS. Both may be connected at once.
    return [
        f"mosquitto_sub {tls} -i {DEMO_DEVICE} -q 1 -t 'demo/#' -v",
        f"mosquitto_pub {tls} -i {DEMO_PUBLISHER} -q 1 -t demo/hello -m 'hello from the mock'",
    ]


def _cmd_serve(args: argparse.Namespace) -> int:
    # Imported here so that the other verbs start without the asyncio server modules.
    from aws_iot_mock.server.app import Broker  # noqa: PLC0415

    config = _load(args)
    _raise_open_files_limit()
    demo = ensure_demo_device(config) if args.demo_device else None
    demo_user: DemoUser | None = None
    if args.demo_device:
        # Imported here: the local IAM's verbs (and SigV4) are not needed to start otherwise.
        from aws_iot_mock.cli.iam import ensure_demo_user  # noqa: PLC0415

        demo_user = ensure_demo_user(config)
    for change in _apply_resources(config):
        print(f"resources:   {change}", file=sys.stderr)

    async def serve() -> None:
        broker = Broker(config)
        # Handlers first: "ready" promises that SIGINT/SIGTERM now stop the broker cleanly.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await broker.start()
        # Everything built so far (modules, config, certificates, contexts) lives as long as
        # the process: move it out of the collector's sight, so that full collections stay
        # short and do not show up as latency spikes (gc.freeze, Python 3.7+); then the
        # collector paused by the entry point runs again (startup_gc).
        startup_gc.resume(freeze=True)
        print(f"endpoint:    {broker.endpoint}", file=sys.stderr)
        for listener in broker.listeners:
            label = f"{listener.door}:"
            if listener.port is None:
                print(f"{label:<12} off: {listener.off_reason}", file=sys.stderr)
            else:
                where = f"{listener.port} on {listener.host}"
                print(f"{label:<12} {where} ({_DOOR_LABELS[listener.door]})", file=sys.stderr)
                if listener.door == "api":
                    print(
                        f"{'api url:':<12} {api_url(listener.host, listener.port)} "
                        f"(aws iot --endpoint-url URL --ca-bundle {broker.root_ca_path}; "
                        "plain http:// too on loopback)",
                        file=sys.stderr,
                    )
                    if broker.console_url is not None:
                        print(f"{'console:':<12} {broker.console_url}", file=sys.stderr)
        print(f"root CA:     {broker.root_ca_path}", file=sys.stderr)
        mqtt_port = broker.ports.get("mqtt")
        if demo is not None and mqtt_port is not None:
            cert_path, key_path = demo
            print(f"demo device: {cert_path} (key {key_path})", file=sys.stderr)
            hints = _client_hints(config, mqtt_port, cert_path, key_path, broker.root_ca_path)
            for label, hint in zip(("subscribe:", "publish:"), hints, strict=True):
                print(f"{label:<12} {hint}", file=sys.stderr)
        if demo_user is not None:
            from aws_iot_mock.cli.iam import demo_user_hints  # noqa: PLC0415

            alpn_port = broker.ports.get("alpn")
            for label, hint in demo_user_hints(config, alpn_port, demo_user, broker.root_ca_path):
                print(f"{label:<12} {hint}", file=sys.stderr)
        if args.ready_file is not None:
            _write_ready_file(args.ready_file, broker.endpoint, broker.root_ca_path, broker.ports)
        print("ready (Ctrl-C to stop)", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            await broker.stop()

    _run_event_loop(serve())
    return 0


def api_url(host: str, port: int) -> str:
    """The control plane's URL to paste into ``--endpoint-url`` (``localhost`` for loopback)."""
    if host in ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _write_ready_file(path: Path, endpoint: str, root_ca: Path, ports: dict[str, int]) -> None:
    """Write what a harness needs to connect, atomically (a reader never sees half of it)."""
    document = {"endpoint": endpoint, "root_ca": str(root_ca.resolve()), "ports": ports}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document) + "\n", encoding="utf-8")
    temporary.replace(path)


def _apply_resources(config: Config) -> list[str]:
    """Apply the config's ``resources:`` (nothing to do, nothing opened, when there are none)."""
    resources = config.resources
    if not (resources.things or resources.policies or resources.certificates):
        return []
    from aws_iot_mock.resources import apply_config_resources  # noqa: PLC0415 (see above)

    ca = CertsDirectory(config.certs_dir).ensure_root_ca()
    with _open_registry(config) as registry:
        return apply_config_resources(config, registry, ca.certificate_pem)


def _raise_open_files_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit: every connection takes a descriptor.

    The usual soft limit (1024) caps a broker near a thousand devices; the hard limit is what
    the system allows without privileges. Past it, accept failures are logged with reason
    ``TOO_MANY_OPEN_FILES``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20  # Linux's default nr_open; "unlimited" is not accepted as a soft limit
    if soft != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _run_event_loop(main_coroutine: Coroutine[None, None, None]) -> None:
    """Run ``main_coroutine`` on uvloop when it is installed (faster I/O), else asyncio's loop."""
    try:
        import uvloop  # noqa: PLC0415 (optional dependency)
    except ImportError:
        asyncio.run(main_coroutine)
    else:
        uvloop.run(main_coroutine)


# MQTT 3.1.1 CONNECT (clean session, keep-alive 30 s) and DISCONNECT, for healthcheck --device. Its
# client ID is a thing of its own (see DEMO_THINGS): the demo policy admits it, and it never
# takes over the session of a demo client that is connected at the time.
_HEALTH_CLIENT_ID = DEMO_HEALTHCHECK.encode("ascii")
_HEALTH_CONNECT = (
    bytes((0x10, 12 + len(_HEALTH_CLIENT_ID), 0, 4))
    + b"MQTT\x04\x02\x00\x1e"
    + len(_HEALTH_CLIENT_ID).to_bytes(2, "big")
    + _HEALTH_CLIENT_ID
)
_CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


def _cmd_healthcheck(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.device:
        return _device_healthcheck(args, config)
    return _endpoint_healthcheck(args, config)


def _probe_address(args: argparse.Namespace, config: Config, door: str) -> tuple[str, int | None]:
    """Where to probe ``door``: --host/--port, else its listener (a wildcard bind: loopback)."""
    listener = config.listener_for(door)
    host = args.host or (listener.host if listener else "127.0.0.1")
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = args.port or (listener.port if listener else None)
    return host, port or None


def _unhealthy(where: str, reason: object) -> int:
    print(f"aws-iot-mock: unhealthy: {where}: {reason}", file=sys.stderr)
    return 1


def _endpoint_healthcheck(args: argparse.Namespace, config: Config) -> int:
    """GET the health endpoint on the api door: no device, no session, no log record.

    Plain HTTP, which the api door serves on loopback addresses only: a door bound to a
    wildcard address is probed on 127.0.0.1.
    """
    import http.client  # noqa: PLC0415 (only this verb needs it)

    from aws_iot_mock.api.health import HEALTH_PATH  # noqa: PLC0415
    from aws_iot_mock.doors.listeners import is_loopback_host  # noqa: PLC0415

    host, port = _probe_address(args, config, "api")
    if port is None:
        return _unhealthy(
            "api door",
            "the configuration gives the api door no fixed port (the health endpoint is served "
            "there): pass --port, or check as the demo device with --device",
        )
    if not is_loopback_host(host):
        return _unhealthy(
            f"api door on {host}",
            "the health endpoint answers plain HTTP on loopback only: bind the api door to "
            "127.0.0.1 or 0.0.0.0, or check as the demo device with --device",
        )
    url = f"http://{_url_host(host)}:{port}{HEALTH_PATH}"
    connection = http.client.HTTPConnection(host, port, timeout=args.timeout)
    try:
        connection.request("GET", HEALTH_PATH)
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        hint = " (nothing listens there: is aws-iot-mock serve running?)"
        return _unhealthy(url, f"{exc}{hint if isinstance(exc, ConnectionRefusedError) else ''}")
    finally:
        connection.close()
    try:
        document = json.loads(body)
        doors = document["doors"]
        healthy = response.status == 200 and document["status"] == "ok"
    except (ValueError, KeyError, TypeError):
        return _unhealthy(url, f"HTTP {response.status}: not the health endpoint's answer")
    if not healthy:
        return _unhealthy(url, f"HTTP {response.status}: {body.decode('utf-8', 'replace')}")
    summary = ", ".join(
        f"{door} {state.get('port', state.get('state'))}" for door, state in doors.items()
    )
    print(f"healthy: {url}: {summary}")
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _device_healthcheck(args: argparse.Namespace, config: Config) -> int:
    """Connect as the demo device (mutual TLS, MQTT CONNECT): the whole device path, logged."""
    certs = CertsDirectory(config.certs_dir)
    cert_path, key_path, _ = _demo_device_paths(certs)
    host, port = _probe_address(args, config, "mqtt")
    port = port or 8883
    ctx = ssl.create_default_context(cafile=str(certs.root_ca_path))
    try:
        ctx.load_cert_chain(str(cert_path), str(key_path))
    except OSError as exc:
        return _unhealthy("demo device", f"{exc} (create it with serve --demo-device)")
    # Connect to the address but verify and send SNI for the endpoint name, as a device does.
    try:
        with (
            socket.create_connection((host, port), timeout=args.timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=config.endpoint) as tls,
        ):
            tls.sendall(_HEALTH_CONNECT)
            answer = tls.recv(4)
            tls.sendall(b"\xe0\x00")
    except (OSError, ssl.SSLError) as exc:
        return _unhealthy(f"{host}:{port}", exc)
    if answer != _CONNACK_ACCEPTED:
        return _unhealthy(f"{host}:{port}", f"CONNACK {answer.hex()}")
    print(f"healthy: {host}:{port} accepted the demo device")
    return 0


def register(verbs: _Verbs, *, serve_only: bool = False) -> None:
    """Register ``serve``, ``init`` and ``healthcheck``, each with its runner.

    With ``serve_only``, ``serve`` alone (a command line whose first word is ``serve`` parses
    the same without the others: its usage names the verb ``VERB``, not the list).
    """
    serve = verbs.add_parser("serve", help="run the broker in the foreground")
    _add_common(serve)
    serve.set_defaults(run=_cmd_serve)
    serve.add_argument("--host", help="bind address of every door (default 127.0.0.1)")
    for flag, door in _DOOR_FLAGS:
        serve.add_argument(flag, type=_port_value, metavar="PORT|off", help=door)
    serve.add_argument("--endpoint", help="endpoint host name devices send as SNI")
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="AWSIotLogsV2 level (default: the configuration's logging.level, INFO)",
    )
    serve.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="once every door is bound, write {endpoint, root_ca, ports} there as JSON",
    )
    serve.add_argument(
        "--demo-device",
        action="store_true",
        help=f"create an ACTIVE '{DEMO_DEVICE}' certificate on first run and print how to use it",
    )
    if serve_only:
        return

    init = verbs.add_parser(
        "init", help="create the root CA, server certificates (and demo device)"
    )
    _add_common(init)
    init.set_defaults(run=_cmd_init)
    init.add_argument("--demo-device", action="store_true")

    health = verbs.add_parser(
        "healthcheck",
        help="GET the health endpoint on the api door (no device, no log line); exit 0 if up",
    )
    _add_common(health)
    health.set_defaults(run=_cmd_healthcheck)
    health.add_argument("--host", help="address to connect to (default: the door's)")
    health.add_argument(
        "--port", type=int, help="port (default: the api door's; with --device the mqtt door's)"
    )
    health.add_argument("--timeout", type=float, default=5.0)
    health.add_argument(
        "--device",
        action="store_true",
        help="connect as the demo device instead (mutual TLS + MQTT CONNECT on the mqtt door: "
        "a logged connection that subscribers to lifecycle events see)",
    )
