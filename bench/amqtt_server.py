"""Run amqtt's broker with the bench's TLS settings: ``python -m bench.amqtt_server``.

amqtt's listener configuration takes a CA file, a certificate and a key, but its SSL context is
hard-wired to ``CERT_OPTIONAL`` (a client certificate is checked if sent, not required) with
the ``ssl`` module's default protocol range and ciphers. For an equivalent handshake, this runner
subclasses the broker and tightens the context the configuration produced: client certificate
required, TLS 1.2 only, the bench's single cipher. Everything else is amqtt as shipped, with the
logging and ``$SYS`` plugins left out (the bench measures the broker, not its logs). amqtt has no
inflight or queue limits to configure.

Prints ``ready`` on stdout once listening; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

from amqtt.broker import Broker  # type: ignore[import-untyped]
from amqtt.contexts import ListenerConfig  # type: ignore[import-untyped]

__all__ = ["TightBroker", "amqtt_config", "main"]

CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"


class TightBroker(Broker):  # type: ignore[misc]
    """amqtt's broker with mutual TLS enforced, TLS 1.2 and one cipher."""

    @staticmethod
    def _create_ssl_context(listener: ListenerConfig) -> ssl.SSLContext:
        context: ssl.SSLContext = Broker._create_ssl_context(listener)
        context.verify_mode = ssl.CERT_REQUIRED
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(CIPHER)
        return context


def amqtt_config(port: int, ca: Path, cert: Path, key: Path) -> dict[str, Any]:
    """The broker configuration: one TLS listener on 127.0.0.1, anonymous (the cert is the auth)."""
    return {
        "listeners": {
            "default": {
                "type": "tcp",
                "bind": f"127.0.0.1:{port}",
                "max_connections": 0,
                "ssl": True,
                "cafile": str(ca),
                "certfile": str(cert),
                "keyfile": str(key),
            }
        },
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def serve(port: int, ca: Path, cert: Path, key: Path) -> None:
    """Start, print ``ready``, run until SIGTERM/SIGINT."""
    broker = TightBroker(amqtt_config(port, ca, cert, key))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await broker.start()
    print("ready", flush=True)
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench.amqtt_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop to run on"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    coroutine = serve(args.port, args.ca, args.cert, args.key)
    if args.loop == "uvloop":
        import uvloop  # noqa: PLC0415

        uvloop.run(coroutine)
    else:
        asyncio.run(coroutine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
