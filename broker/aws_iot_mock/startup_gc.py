"""The cyclic garbage collector paused while the command starts.

A start-up creates hundreds of thousands of objects (modules, classes, functions, the config)
that all live as long as the process: the collections they trigger find nothing to free and
cost ``serve`` about 9 ms of CPU before its first handshake. The command's entry points
(``python -m aws_iot_mock`` and the ``aws-iot-mock`` script) pause the collector before they
import anything; ``cli.main`` resumes it as soon as it knows the verb is not ``serve``, and
``serve`` once the broker has started (after ``gc.freeze()``: see :func:`resume`).

Only a pause made here is undone here: a process that imports the CLI (tests, a harness
calling ``cli.main``) keeps whatever collector settings it had.
"""

from __future__ import annotations

import gc

__all__ = ["main_entry", "pause", "paused", "resume"]

_paused_here = False


def pause() -> None:
    """Disable the collector if it is enabled (and remember that this module did)."""
    global _paused_here  # noqa: PLW0603 (one flag per process)
    if gc.isenabled():
        gc.disable()
        _paused_here = True


def paused() -> bool:
    """True while a :func:`pause` of this module is in effect."""
    return _paused_here


def resume(*, freeze: bool = False) -> None:
    """Undo :func:`pause` (nothing when it did not disable the collector).

    Args:
        freeze: first move every object tracked so far to the permanent generation
            (``gc.freeze()``): what the start-up built lives as long as the process, and
            frozen objects are skipped by later full collections, which stay short.
    """
    global _paused_here  # noqa: PLW0603 (one flag per process)
    if freeze:
        gc.freeze()
    if _paused_here:
        _paused_here = False
        gc.enable()


def main_entry() -> None:
    """The command's entry point: pause the collector, then run the CLI (``cli.main_entry``)."""
    pause()
    from aws_iot_mock.cli import main_entry as cli_main_entry  # noqa: PLC0415 (after pause)

    cli_main_entry()
