"""Where AWSIotLogsV2 records go: stdout, an append-only JSON-lines file, and in-process listeners.

The file is opened in append mode and every record is one ``json.dumps`` line followed by a flush,
so ``tail -f`` and ``jq`` read it while the broker runs. Records below the configured level are
dropped, as AWS IoT's log level works: each level includes everything more severe.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TextIO

from aws_iot_mock.logs.cloudwatch import LogLevel, record_level

__all__ = ["LogSink"]

LogListener = Callable[[Mapping[str, object]], None]


class LogSink:
    """Writes AWSIotLogsV2 records as JSON lines.

    Args:
        level: the most verbose level written (``DISABLED`` writes nothing to stdout or the file;
            listeners still see every record emitted, so tests can assert on refusals
            regardless). The broker does not build INFO records at all when the level is below
            INFO, so listeners then see failures only.
        file: path of the JSON-lines file, created with its parent directories; None for none.
        stdout: whether to write lines to standard output too.
        stream: the stream used for ``stdout`` (tests pass their own).
    """

    def __init__(
        self,
        level: LogLevel = LogLevel.INFO,
        *,
        file: Path | None = None,
        stdout: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.level = level
        self._stdout = stream if stream is not None else (sys.stdout if stdout else None)
        self._file: IO[str] | None = None
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._file = file.open("a", encoding="utf-8")
        self._listeners: list[LogListener] = []
        self._lock = threading.Lock()

    def add_listener(self, listener: LogListener) -> None:
        """Call ``listener(record)`` for every record, whatever the level."""
        self._listeners.append(listener)

    def remove_listener(self, listener: LogListener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    def emit(self, record: Mapping[str, object]) -> None:
        """Write ``record`` where configured, if its level is enabled."""
        for listener in list(self._listeners):
            listener(record)
        if self.level is LogLevel.DISABLED or record_level(record) > self.level:
            return
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            for stream in (self._stdout, self._file):
                if stream is not None:
                    stream.write(line)
                    stream.flush()

    def close(self) -> None:
        """Close the file, if any. Idempotent."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
