"""In-process start, as a test fixture does it: ``python -m bench.inproc``.

Times ``await Broker(config).start()`` (port 0, certificates already on disk, a fresh copy of the
registry) until it returns (the socket listens), then checks one TLS handshake is served before
stopping. Repeated in the same process: the first start pays for lazy imports and first-use
set-up, later ones show the steady state a test suite with many fixtures sees. ``--broker amqtt``
does the same with amqtt's ``Broker(config).start()`` for reference.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.brokers import handshake_once
from bench.mqttlite import TlsFiles, client_context

__all__ = ["main"]


async def _ours(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    from aws_iot_mock.config import load_config  # noqa: PLC0415
    from aws_iot_mock.server.app import Broker  # noqa: PLC0415

    import_s = time.perf_counter() - t0
    base = load_config(args.config)
    context = client_context(TlsFiles(args.ca, args.cert, args.key))
    samples: list[float] = []
    served = 0
    with tempfile.TemporaryDirectory(prefix="bench-inproc-") as scratch:
        for index in range(args.repeat):
            state = Path(scratch) / f"state-{index}"
            shutil.copytree(args.state_dir, state)
            config = dataclasses.replace(
                base,
                certs_dir=args.certs_dir,
                state_dir=state,
                # Every door of the bench config on a free port (the config lists mqtt only).
                listeners=tuple(
                    dataclasses.replace(listener, host="127.0.0.1", port=0)
                    for listener in base.listeners
                ),
            )
            start = time.perf_counter()
            broker = Broker(config)
            await broker.start()
            samples.append(time.perf_counter() - start)
            ok = await asyncio.to_thread(handshake_once, context, broker.ports["mqtt"])
            served += int(ok)
            await broker.stop()
    return {"import_s": import_s, "samples": samples, "served": served}


async def _amqtt(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    from bench.amqtt_server import TightBroker, amqtt_config  # noqa: PLC0415

    import_s = time.perf_counter() - t0
    context = client_context(TlsFiles(args.ca, args.cert, args.key))
    samples: list[float] = []
    served = 0
    for _ in range(args.repeat):
        from bench.brokers import free_port  # noqa: PLC0415

        port = free_port()
        start = time.perf_counter()
        broker = TightBroker(amqtt_config(port, args.ca, args.server_cert, args.server_key))
        await broker.start()
        samples.append(time.perf_counter() - start)
        ok = await asyncio.to_thread(handshake_once, context, port)
        served += int(ok)
        await broker.shutdown()
    return {"import_s": import_s, "samples": samples, "served": served}


def main(argv: list[str] | None = None) -> int:
    """Measure and print JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.inproc")
    parser.add_argument("--broker", choices=("ours", "amqtt"), default="ours")
    parser.add_argument("--certs-dir", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--server-cert", type=Path, required=True)
    parser.add_argument("--server-key", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    run = _ours if args.broker == "ours" else _amqtt
    result = asyncio.run(run(args))
    samples = result["samples"]
    result["first_s"] = samples[0]
    result["steady_median_s"] = statistics.median(samples[1:] or samples)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
