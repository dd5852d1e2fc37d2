"""The parsed form of YAML config files, kept between runs: ``serve`` starts without PyYAML.

Importing PyYAML (its reader and resolver compile large regular expressions at import) and
parsing a config file took about a tenth of the time from ``serve``'s start to its first
handshake. So the document a config file's text parses to is kept as JSON in the user's cache
directory (``$XDG_CACHE_HOME``, else ``~/.cache``), as ``aws-iot-mock/config/<key>.json``
where the key is the SHA-256 of this package's version and the text; a later run with the same
text reads it instead of parsing, much as Python keeps bytecode. The configuration is still
validated from that document at every run, with the same messages.

Only a document JSON represents exactly is kept (strings, finite numbers, booleans, null,
lists, and mappings with string keys); anything else (a YAML date, a number as a key) is parsed
at every run, and so is a file that does not parse. The directory is created 0700 and the files
0600; a file that is not the user's own, or that others may write, is ignored. At most
``MAX_ENTRIES`` documents are kept (the oldest are removed). The cache only saves time: when it
cannot be read or written the text is parsed, and deleting it is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
from pathlib import Path
from typing import cast

from aws_iot_mock import __version__
from aws_iot_mock.certs_dir import private_directory, write_private_key

__all__ = ["MAX_ENTRIES", "cache_directory", "cached_document", "store_document"]

# Documents kept; each config file edit adds one, so the oldest go.
MAX_ENTRIES = 32
# Config files are small; a larger cache file is not one this module wrote.
_MAX_BYTES = 1 << 20


def cache_directory() -> Path | None:
    """``$XDG_CACHE_HOME/aws-iot-mock/config`` (``~/.cache`` by default), or None without a home.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG Base Directory specification says.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # no home directory (no HOME, no passwd entry)
            return None
    return Path(base) / "aws-iot-mock" / "config"


def _entry(text: str) -> Path | None:
    directory = cache_directory()
    if directory is None:
        return None
    key = hashlib.sha256(f"aws-iot-mock {__version__}\0{text}".encode()).hexdigest()
    return directory / f"{key}.json"


def cached_document(text: str) -> tuple[bool, object]:
    """The document stored for a config file's ``text``: ``(True, document)``, or ``(False, None)``.

    Never raises: a missing, foreign, unreadable or malformed entry is a miss.
    """
    path = _entry(text)
    if path is None:
        return False, None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False, None
    with os.fdopen(fd, "rb") as handle:
        try:
            status = os.fstat(handle.fileno())
            if (
                not stat.S_ISREG(status.st_mode)
                or status.st_uid != os.getuid()
                or status.st_mode & 0o022
                or status.st_size > _MAX_BYTES
            ):
                return False, None
            raw = handle.read(_MAX_BYTES + 1)
        except OSError:
            return False, None
    try:
        stored = json.loads(raw)
    except ValueError:
        return False, None
    if not isinstance(stored, dict) or "document" not in stored:
        return False, None
    return True, stored["document"]


def store_document(text: str, document: object) -> None:
    """Keep ``document``, which ``text`` parsed to, if JSON represents it exactly.

    Never raises: a cache that cannot be written is skipped.
    """
    path = _entry(text)
    if path is None or not _json_exact(document):
        return
    with contextlib.suppress(OSError, ValueError):
        data = json.dumps({"document": document}, allow_nan=False).encode("utf-8")
        if len(data) > _MAX_BYTES:
            return
        private_directory(path.parent)
        # write_private_key: an atomic write with mode 0600 (the cache is the user's alone).
        write_private_key(path, data)
        _prune(path.parent)


def _prune(directory: Path) -> None:
    """Remove the oldest entries beyond ``MAX_ENTRIES``."""
    entries = []
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime, path))
    entries.sort(reverse=True)
    for _, path in entries[MAX_ENTRIES:]:
        with contextlib.suppress(OSError):
            path.unlink()


def _json_exact(value: object, depth: int = 0) -> bool:
    """Whether ``json.loads(json.dumps(value))`` gives ``value`` back, types included."""
    if depth > 100:  # deeper than any config; json would hit its own limit
        return False
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return True
    if kind is float:
        return math.isfinite(cast(float, value))
    if kind is list:
        return all(_json_exact(item, depth + 1) for item in cast(list[object], value))
    if kind is dict and isinstance(value, dict):
        return all(
            isinstance(key, str) and _json_exact(item, depth + 1) for key, item in value.items()
        )
    return False
