"""The three brokers under test: shared PKI, launch with equivalent settings, readiness.

All three listen on 127.0.0.1 with TLS 1.2 only, the single cipher ECDHE-ECDSA-AES128-GCM-SHA256,
our ECDSA server certificate, and a required client certificate signed by our root CA.

* ours: ``python -m aws_iot_mock serve`` with ``bench/ours.yaml`` (log level ERROR, nothing on
  stdout), normal authorization: the device certificate has a policy allowing ``bench-*`` client
  IDs and ``bench/*`` topics. Its TLS policy IoTSecurityPolicy_TLS12_1_2_2022_10 offers more
  ciphers; the clients offer only the bench's one.
* mosquitto: a generated config (see :func:`mosquitto_config`).
* amqtt: ``bench/amqtt_server.py`` (see there for what amqtt lets us configure).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.mqttlite import CIPHER, TlsFiles, client_context, sync_connect
from bench.procs import stop_process

__all__ = [
    "INFO_CONFIG",
    "KINDS",
    "Pki",
    "RunningBroker",
    "bench_republish_rule",
    "free_port",
    "handshake_once",
    "launch",
    "mosquitto_binary",
    "mosquitto_config",
    "setup_pki",
    "wait_ready",
]

KINDS = ("ours", "mosquitto", "amqtt")
REPO = Path(__file__).resolve().parent.parent
OURS_CONFIG = REPO / "bench" / "ours.yaml"
# The same at the default log level (INFO to stdout), for the INFO-logging row.
INFO_CONFIG = REPO / "bench" / "ours-info.yaml"
ACCOUNT = "arn:aws:iot:us-east-1:123456789012"


@dataclass(frozen=True)
class Pki:
    """The CA, server and device material shared by all brokers and clients."""

    certs_dir: Path
    state_template: Path
    device_cert: Path
    device_key: Path
    # A local IAM user of ours with the bench policy (SigV4 on 443: HTTPS and WebSocket rows).
    iam_access_key_id: str = ""
    iam_secret_access_key: str = ""

    @property
    def ca(self) -> Path:
        """The root CA (trusted by clients and, for client certificates, by every broker)."""
        return self.certs_dir / "root-ca.pem"

    @property
    def server_cert(self) -> Path:
        """The ECDSA server certificate (names: localhost, 127.0.0.1, ...)."""
        return self.certs_dir / "server-ecdsa.pem"

    @property
    def server_key(self) -> Path:
        """The ECDSA server key."""
        return self.certs_dir / "server-ecdsa.key"

    @property
    def tls(self) -> TlsFiles:
        """What a client needs."""
        return TlsFiles(self.ca, self.device_cert, self.device_key, "localhost")


def bench_policy() -> dict[str, object]:
    """The IoT policy attached to the device certificate: the bench's client IDs and topics."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ACCOUNT}:client/bench-*"},
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:RetainPublish", "iot:Receive"],
                "Resource": f"{ACCOUNT}:topic/bench/*",
            },
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": f"{ACCOUNT}:topicfilter/bench/*",
            },
        ],
    }


def _cli(python: str, *args: str) -> str:
    argv = [python, "-m", "aws_iot_mock", *args, "--config", str(OURS_CONFIG)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def setup_pki(workdir: Path, python: str) -> Pki:
    """Create the CA, server certificates, one ACTIVE device certificate and its policy.

    Uses our broker's own CLI verbs, as a user would. The state directory is kept as a template
    that every broker instance of ours gets a fresh copy of.
    """
    certs = workdir / "certs"
    state = workdir / "state-template"
    dirs = ("--certs-dir", str(certs), "--state-dir", str(state))
    _cli(python, "init", *dirs)
    device_cert = workdir / "device.pem"
    device_key = workdir / "device.key"
    created = json.loads(
        _cli(
            python,
            "create-keys-and-certificate",
            "--set-as-active",
            "--certificate-pem-outfile",
            str(device_cert),
            "--private-key-outfile",
            str(device_key),
            *dirs,
        )
    )
    policy_file = workdir / "bench-policy.json"
    policy_file.write_text(json.dumps(bench_policy(), indent=2))
    _cli(
        python,
        "create-policy",
        "--policy-name",
        "bench",
        "--policy-document",
        f"file://{policy_file}",
        *dirs,
    )
    _cli(
        python,
        "attach-policy",
        "--policy-name",
        "bench",
        "--target",
        str(created["certificateArn"]),
        *dirs,
    )
    # The republish scenario's topic rule: every message on bench/rin/<x> goes to bench/rout/<x>
    # through the rules engine (the payloads are not JSON: SELECT * passes them through).
    rule_file = workdir / "bench-rule.json"
    rule_file.write_text(json.dumps(bench_republish_rule(), indent=2))
    _cli(
        python,
        "create-topic-rule",
        "--rule-name",
        "bench_republish",
        "--topic-rule-payload",
        f"file://{rule_file}",
        *dirs,
    )
    # The SigV4 rows' caller: an IAM user of the local IAM whose IAM policy is the bench policy.
    _cli(python, "create-user", "--user-name", "bench", *dirs)
    _cli(
        python,
        "put-user-policy",
        "--user-name",
        "bench",
        "--policy-name",
        "bench",
        "--policy-document",
        f"file://{policy_file}",
        *dirs,
    )
    key = json.loads(_cli(python, "create-access-key", "--user-name", "bench", *dirs))["AccessKey"]
    return Pki(
        certs,
        state,
        device_cert,
        device_key,
        iam_access_key_id=key["AccessKeyId"],
        iam_secret_access_key=key["SecretAccessKey"],
    )


def bench_republish_rule() -> dict[str, Any]:
    """The topic rule of the republish scenario (ours only: the others have no rules engine)."""
    return {
        "sql": "SELECT * FROM 'bench/rin/+'",
        "awsIotSqlVersion": "2016-03-23",
        "actions": [
            {
                "republish": {
                    "topic": "bench/rout/${topic(3)}",
                    "roleArn": "arn:aws:iam::123456789012:role/bench",
                }
            }
        ],
    }


def in_process_config(
    pki: Pki, workdir: Path, *, level: str | None = None, log_file: Path | None = None
) -> Any:
    """Our broker's ``Config`` for a ``Broker`` started in this process (the profiling tools).

    ``bench/ours.yaml`` with the PKI's certificates, a copy of its state template in
    ``<workdir>/state``, every door on 127.0.0.1 port 0; ``level`` and ``log_file`` replace the
    logging level and file when given (then nothing goes to stdout).
    """
    import dataclasses  # noqa: PLC0415 (only the profiling tools need these)

    from aws_iot_mock.config import load_config  # noqa: PLC0415

    state = workdir / "state"
    shutil.copytree(pki.state_template, state)
    base = load_config(OURS_CONFIG)
    logging = base.logging
    if level is not None:
        logging = dataclasses.replace(logging, level=level, file=log_file, stdout=False)
    return dataclasses.replace(
        base,
        certs_dir=pki.certs_dir,
        state_dir=state,
        listeners=tuple(
            dataclasses.replace(listener, host="127.0.0.1", port=0) for listener in base.listeners
        ),
        logging=logging,
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str:
    """Where Debian's ``mosquitto`` is (``/usr/sbin`` is not on every user's PATH)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError("mosquitto not found: run bench/ensure-deps.sh")
    return found


def mosquitto_config(
    pki: Pki, port: int, *, as_root: bool, max_queued_messages: int = 10_000_000
) -> str:
    """Mosquitto with the bench's TLS settings, 100 inflight, queues that never drop.

    ``max_queued_messages``: the bench's default is far above any run's message count, so that
    nothing is dropped (0 would mean unlimited); the stress scenarios pass Mosquitto's own
    default (1000), as a user running it out of the box has it.
    """
    lines = [
        f"listener {port} 127.0.0.1",
        f"cafile {pki.ca}",
        f"certfile {pki.server_cert}",
        f"keyfile {pki.server_key}",
        "require_certificate true",
        "tls_version tlsv1.2",
        f"ciphers {CIPHER}",
        "allow_anonymous true",
        "persistence false",
        "max_inflight_messages 100",
        f"max_queued_messages {max_queued_messages}",
        "max_queued_bytes 0",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
    ]
    if as_root:
        # Root would drop to the 'mosquitto' user, which cannot read the bench's keys.
        lines.append("user root")
    return "\n".join(lines) + "\n"


@dataclass
class RunningBroker:
    """A broker process of the bench."""

    kind: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    started: float
    # Our other doors: "https" (8443's) and "alpn" (443's), on free ports; none for the others.
    doors: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The broker's process id (the process itself, not a wrapper)."""
        return self.proc.pid

    def stop(self) -> None:
        """Stop the process."""
        stop_process(self.proc)


def launch(
    kind: str,
    pki: Pki,
    workdir: Path,
    python: str,
    *,
    port: int,
    tag: str,
    mosquitto_queue: int = 10_000_000,
    config: Path = OURS_CONFIG,
    state_dir: Path | None = None,
    stdout: int | None = None,
) -> RunningBroker:
    """Start one broker process (not waiting for it to be ready).

    ``mosquitto_queue`` is Mosquitto's ``max_queued_messages`` (see ``mosquitto_config``);
    ``config`` is our broker's configuration file and ``state_dir`` its state directory (by
    default ``<workdir>/state-<tag>``; either way filled from the PKI's state template).
    ``stdout``: a file descriptor for the broker's standard output (the log-pipe scenarios'
    pipe); the log file then gets its standard error alone. By default both go to the log file.
    """
    log = workdir / f"{kind}-{tag}.log"
    doors: dict[str, int] = {}
    if kind == "ours":
        state = state_dir or workdir / f"state-{tag}"
        if state.exists():
            shutil.rmtree(state)
        shutil.copytree(pki.state_template, state)
        doors = {"https": free_port(), "alpn": free_port()}
        argv = [
            python,
            "-m",
            "aws_iot_mock",
            "serve",
            "--port",
            str(port),
            "--https-port",
            str(doors["https"]),
            "--alpn-port",
            str(doors["alpn"]),
            "--certs-dir",
            str(pki.certs_dir),
            "--state-dir",
            str(state),
            "--config",
            str(config),
        ]
    elif kind == "mosquitto":
        config = workdir / f"mosquitto-{tag}.conf"
        config.write_text(
            mosquitto_config(
                pki, port, as_root=os.geteuid() == 0, max_queued_messages=mosquitto_queue
            )
        )
        argv = [mosquitto_binary(), "-c", str(config)]
    elif kind == "amqtt":
        argv = [
            python,
            "-m",
            "bench.amqtt_server",
            "--port",
            str(port),
            "--ca",
            str(pki.ca),
            "--cert",
            str(pki.server_cert),
            "--key",
            str(pki.server_key),
        ]
    else:
        raise ValueError(kind)
    with log.open("wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out if stdout is None else stdout,
            stderr=subprocess.STDOUT if stdout is None else out,
        )
    return RunningBroker(kind, port, proc, log, started, doors)


def handshake_once(context: ssl.SSLContext, port: int, timeout: float = 2.0) -> bool:
    """One TLS handshake (with SNI ``localhost``); True if the server completed it."""
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    try:
        with context.wrap_socket(raw, server_hostname="localhost"):
            return True
    except (OSError, ssl.SSLError):
        return False
    finally:
        raw.close()


def wait_ready(broker: RunningBroker, pki: Pki, timeout: float = 30.0) -> float:
    """Wait until the broker serves MQTT; return seconds since launch.

    Ours: its ``ready`` line. Others: poll TLS + CONNECT/CONNACK every 20 ms. Bounded.
    """
    context = client_context(pki.tls)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker.proc.poll() is not None:
            raise RuntimeError(
                f"{broker.kind} exited ({broker.proc.returncode}): "
                f"{broker.log.read_text(errors='replace')[-2000:]}"
            )
        if broker.kind == "ours":
            if b"ready" in broker.log.read_bytes():
                return time.monotonic() - broker.started
        else:
            with contextlib.suppress(OSError, ConnectionError, ssl.SSLError):
                sync_connect(context, broker.port, "bench-ready-probe", timeout=2.0).close()
                return time.monotonic() - broker.started
        time.sleep(0.02)
    raise RuntimeError(f"{broker.kind} not ready within {timeout:.0f} s; see {broker.log}")
