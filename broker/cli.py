"""The ``aws-iot-mock`` command line: ``serve``, and verbs named and shaped as ``aws iot``'s.

Every verb takes ``--config``, ``--certs-dir`` and ``--state-dir`` and works while ``serve`` runs
against the same directories (the registry is SQLite in WAL mode). Output is the JSON the AWS CLI
prints. Exit codes follow the AWS CLI's: 252 for a command line that does not parse, 253 for a
bad configuration, 254 for an error the service would return (unknown certificate, bad CSR).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import NoReturn

from broker import pki
from broker.certs_dir import CertsDirectory, write_private_key, write_public_file
from broker.config import Config, load_config
from broker.errors import BrokerError, ConfigError
from broker.registry import CertificateRegistry, CertificateStatus

__all__ = ["main", "main_entry"]

EXIT_USAGE = 252  # AWS CLI: "The command entered on the command line failed to be parsed."
EXIT_CONFIG = 253  # AWS CLI: "The system environment or configuration was invalid."
EXIT_SERVICE = 254  # AWS CLI: "The command ... returned an error" (a service-side error).

DEMO_DEVICE = "demo-device"
ENDPOINT_TYPES = ("iot:Data-ATS", "iot:Data")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument("--certs-dir", type=Path, help="certificate directory (default: certs/)")
    parser.add_argument("--state-dir", type=Path, help="state directory (default: .state/)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aws-iot-mock",
        description="An offline stand-in for the AWS IoT Core device endpoint.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    serve = verbs.add_parser("serve", help="run the broker in the foreground")
    _add_common(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8883; 0 picks a free one)")
    serve.add_argument("--endpoint", help="endpoint host name devices send as SNI")
    serve.add_argument(
        "--demo-device",
        action="store_true",
        help=f"create an ACTIVE '{DEMO_DEVICE}' certificate on first run and print how to use it",
    )

    init = verbs.add_parser(
        "init", help="create the root CA, server certificates (and demo device)"
    )
    _add_common(init)
    init.add_argument("--demo-device", action="store_true")

    endpoint = verbs.add_parser("describe-endpoint", help="print the device data endpoint")
    _add_common(endpoint)
    endpoint.add_argument("--endpoint-type", default="iot:Data-ATS", choices=ENDPOINT_TYPES)

    create = verbs.add_parser(
        "create-keys-and-certificate", help="create a key pair and a certificate signed by the CA"
    )
    _add_common(create)
    create.add_argument("--set-as-active", action="store_true")
    create.add_argument("--certificate-pem-outfile", type=Path)
    create.add_argument("--public-key-outfile", type=Path)
    create.add_argument("--private-key-outfile", type=Path)

    from_csr = verbs.add_parser(
        "create-certificate-from-csr", help="sign a CSR's own public key with the CA"
    )
    _add_common(from_csr)
    from_csr.add_argument(
        "--certificate-signing-request", required=True, help="file://PATH or the PEM itself"
    )
    from_csr.add_argument("--set-as-active", action="store_true")

    update = verbs.add_parser("update-certificate", help="change a certificate's status")
    _add_common(update)
    update.add_argument("--certificate-id", required=True)
    update.add_argument(
        "--new-status",
        required=True,
        choices=[status.value for status in CertificateStatus],
    )

    describe = verbs.add_parser("describe-certificate", help="show one certificate")
    _add_common(describe)
    describe.add_argument("--certificate-id", required=True)

    listing = verbs.add_parser("list-certificates", help="list the registered certificates")
    _add_common(listing)

    health = verbs.add_parser(
        "healthcheck",
        help="connect as the demo device (mutual TLS + MQTT CONNECT); exit 0 if accepted",
    )
    _add_common(health)
    health.add_argument("--host", help="address to connect to (default: the listener's)")
    health.add_argument("--port", type=int, help="port (default: the listener's)")
    health.add_argument("--timeout", type=float, default=5.0)
    return parser


def _load(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    return config.with_overrides(
        certs_dir=args.certs_dir,
        state_dir=args.state_dir,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        endpoint=getattr(args, "endpoint", None),
    )


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=4))


def _open_registry(config: Config) -> CertificateRegistry:
    return CertificateRegistry.open(
        config.state_dir, region=config.region, account_id=config.account_id
    )


def _status(set_as_active: bool) -> CertificateStatus:
    # AWS: "--set-as-active | --no-set-as-active ... Specifies whether the certificate is
    # active"; without it a new certificate is INACTIVE.
    return CertificateStatus.ACTIVE if set_as_active else CertificateStatus.INACTIVE


def _read_file_argument(value: str) -> str:
    """Read an AWS CLI blob argument: ``file://PATH`` means the file's text."""
    if value.startswith("file://"):
        path = Path(value.removeprefix("file://"))
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BrokerError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise BrokerError(f"{path} is not a text file (a PEM file is ASCII)") from None
    return value


def _cmd_describe_endpoint(args: argparse.Namespace) -> int:
    config = _load(args)
    _print_json({"endpointAddress": config.endpoint})
    return 0


def _cmd_create_keys_and_certificate(args: argparse.Namespace) -> int:
    config = _load(args)
    ca = CertsDirectory(config.certs_dir).ensure_root_ca()
    issued = pki.issue_device_certificate(ca)
    assert issued.private_key_pem is not None
    with _open_registry(config) as registry:
        record = registry.register_certificate(issued.certificate_pem, _status(args.set_as_active))
    if args.certificate_pem_outfile:
        write_public_file(args.certificate_pem_outfile, issued.certificate_pem)
    if args.public_key_outfile:
        write_public_file(args.public_key_outfile, issued.public_key_pem)
    if args.private_key_outfile:
        write_private_key(args.private_key_outfile, issued.private_key_pem)
    _print_json(
        {
            "certificateArn": record.certificate_arn,
            "certificateId": record.certificate_id,
            "certificatePem": issued.certificate_pem.decode(),
            "keyPair": {
                "PublicKey": issued.public_key_pem.decode(),
                "PrivateKey": issued.private_key_pem.decode(),
            },
        }
    )
    return 0


def _cmd_create_certificate_from_csr(args: argparse.Namespace) -> int:
    config = _load(args)
    csr_pem = _read_file_argument(args.certificate_signing_request).encode()
    ca = CertsDirectory(config.certs_dir).ensure_root_ca()
    issued = pki.sign_csr(ca, csr_pem)
    with _open_registry(config) as registry:
        record = registry.register_certificate(issued.certificate_pem, _status(args.set_as_active))
    _print_json(
        {
            "certificateArn": record.certificate_arn,
            "certificateId": record.certificate_id,
            "certificatePem": issued.certificate_pem.decode(),
        }
    )
    return 0


def _cmd_update_certificate(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.update_certificate_status(args.certificate_id, CertificateStatus(args.new_status))
    return 0  # AWS's UpdateCertificate returns no output


def _cmd_describe_certificate(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        record = registry.describe_certificate(args.certificate_id)
    _print_json({"certificateDescription": record.to_description()})
    return 0


def _cmd_list_certificates(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        records = registry.list_certificates()
    _print_json({"certificates": [record.to_summary() for record in records]})
    return 0


def _demo_device_paths(certs: CertsDirectory) -> tuple[Path, Path, Path]:
    directory = certs.path / DEMO_DEVICE
    return (
        directory / f"{DEMO_DEVICE}.cert.pem",
        directory / f"{DEMO_DEVICE}.private.key",
        directory / f"{DEMO_DEVICE}.public.key",
    )


def ensure_demo_device(config: Config) -> tuple[Path, Path]:
    """Create the demo device's ACTIVE certificate and key once; return (cert, key) paths.

    On later runs the existing files are reused; if the registry lost the certificate (the
    state directory was deleted) it is registered again as ACTIVE.
    """
    certs = CertsDirectory(config.certs_dir)
    ca = certs.ensure_root_ca()
    cert_path, key_path, public_path = _demo_device_paths(certs)
    with _open_registry(config) as registry:
        if cert_path.exists() and key_path.exists():
            pem = cert_path.read_bytes()
            if registry.get_certificate(pki.certificate_id(pem)) is None:
                registry.register_certificate(pem, CertificateStatus.ACTIVE)
            return cert_path, key_path
        issued = pki.issue_device_certificate(ca)
        assert issued.private_key_pem is not None
        registry.register_certificate(issued.certificate_pem, CertificateStatus.ACTIVE)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    write_private_key(key_path, issued.private_key_pem)
    write_public_file(public_path, issued.public_key_pem)
    write_public_file(cert_path, issued.certificate_pem)
    return cert_path, key_path


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
    return [
        f"mosquitto_sub {tls} -i demo-sub -q 1 -t 'demo/#' -v",
        f"mosquitto_pub {tls} -i demo-pub -q 1 -t demo/hello -m 'hello from the mock'",
    ]


def _cmd_serve(args: argparse.Namespace) -> int:
    # Imported here so that the other verbs start without the asyncio server modules.
    from broker.server.app import Broker  # noqa: PLC0415

    config = _load(args)
    demo = ensure_demo_device(config) if args.demo_device else None

    async def serve() -> None:
        broker = Broker(config)
        # Handlers first: "ready" promises that SIGINT/SIGTERM now stop the broker cleanly.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await broker.start()
        print(f"endpoint:    {broker.endpoint}", file=sys.stderr)
        print(f"port:        {broker.port}", file=sys.stderr)
        print(f"root CA:     {broker.root_ca_path}", file=sys.stderr)
        if demo is not None:
            cert_path, key_path = demo
            print(f"demo device: {cert_path} (key {key_path})", file=sys.stderr)
            hints = _client_hints(config, broker.port, cert_path, key_path, broker.root_ca_path)
            for label, hint in zip(("subscribe:", "publish:"), hints, strict=True):
                print(f"{label:<12} {hint}", file=sys.stderr)
        print("ready (Ctrl-C to stop)", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            await broker.stop()

    _run_event_loop(serve())
    return 0


def _run_event_loop(main_coroutine: Coroutine[None, None, None]) -> None:
    """Run ``main_coroutine`` on uvloop when it is installed (faster I/O), else asyncio's loop."""
    try:
        import uvloop  # noqa: PLC0415 (optional dependency)
    except ImportError:
        asyncio.run(main_coroutine)
    else:
        uvloop.run(main_coroutine)


# MQTT 3.1.1 CONNECT (clean session, keep-alive 30 s) and DISCONNECT, for the health check.
_HEALTH_CLIENT_ID = b"aws-iot-mock-healthcheck"
_HEALTH_CONNECT = (
    bytes((0x10, 12 + len(_HEALTH_CLIENT_ID), 0, 4))
    + b"MQTT\x04\x02\x00\x1e"
    + len(_HEALTH_CLIENT_ID).to_bytes(2, "big")
    + _HEALTH_CLIENT_ID
)
_CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


def _cmd_healthcheck(args: argparse.Namespace) -> int:
    config = _load(args)
    certs = CertsDirectory(config.certs_dir)
    cert_path, key_path, _ = _demo_device_paths(certs)
    host = args.host or config.listener.host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = args.port or config.listener.port
    ctx = ssl.create_default_context(cafile=str(certs.root_ca_path))
    ctx.load_cert_chain(str(cert_path), str(key_path))
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
        print(f"aws-iot-mock: unhealthy: {host}:{port}: {exc}", file=sys.stderr)
        return 1
    if answer != _CONNACK_ACCEPTED:
        print(f"aws-iot-mock: unhealthy: CONNACK {answer.hex()}", file=sys.stderr)
        return 1
    print(f"healthy: {host}:{port} accepted the demo device")
    return 0


_VERBS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": _cmd_serve,
    "init": _cmd_init,
    "describe-endpoint": _cmd_describe_endpoint,
    "create-keys-and-certificate": _cmd_create_keys_and_certificate,
    "create-certificate-from-csr": _cmd_create_certificate_from_csr,
    "update-certificate": _cmd_update_certificate,
    "describe-certificate": _cmd_describe_certificate,
    "list-certificates": _cmd_list_certificates,
    "healthcheck": _cmd_healthcheck,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return _VERBS[args.verb](args)
    except ConfigError as exc:
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokerError as exc:
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_SERVICE
    except OSError as exc:
        # e.g. the port is in use: one line, no traceback.
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def main_entry() -> None:
    """Console-script entry point."""
    with contextlib.suppress(BrokenPipeError):
        code = main()
        sys.stdout.flush()
        sys.exit(code)
    # stdout was closed early (e.g. piped into head): exit quietly, as the AWS CLI does.
    os._exit(0)
