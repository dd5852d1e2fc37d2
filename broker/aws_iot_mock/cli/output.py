"""What the command line prints, as the AWS CLI prints it: formats, ``--query``, errors, exit codes.

Every verb that prints an operation's response calls :func:`print_response`; the options
``--output`` (``json``, ``text``, ``table``) and ``--query`` (a JMESPath expression) apply to all of
them alike. The formats follow the AWS CLI's output page
(https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-output-format.html) and its
formatters (``awscli/formatter.py``, ``text.py``, ``table.py``, Apache-2.0): the query runs on the
response first, then ``json`` prints it with a 4-space indent (nothing for an empty response),
``text`` prints tab-separated lines (scalar members in key order, one line per list element,
nested members on lines headed by their upper-cased key), and ``table`` draws the boxes titled
with the operation's name.

Timestamps are printed as AWS CLI v2 prints them (its default ``cli_timestamp_format`` is
``iso8601``): ISO 8601 in the local time zone, at the precision the api door's answer carries
(milliseconds for the registry's, the epoch seconds as they are for the jobs and provisioning
services'), e.g. ``2026-12-05T17:12:58.600000+00:00``.

A service error is the AWS CLI's text on stderr, ``An error occurred (<Code>) when calling the
<Operation> operation: <message>``, after a blank line. Exit codes are the AWS CLI's
(https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-returncodes.html).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TextIO

__all__ = [
    "EXIT_CONFIG",
    "EXIT_OTHER",
    "EXIT_SERVICE",
    "EXIT_SIGINT",
    "EXIT_USAGE",
    "OUTPUT_FORMATS",
    "TIMESTAMP_MEMBERS",
    "OutputOptions",
    "QueryError",
    "all_pages",
    "error_text",
    "format_response",
    "operation_name",
    "print_response",
    "print_service_error",
    "using",
]

# https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-returncodes.html
EXIT_SIGINT: Final = 130  # "The command was interrupted by a SIGINT."
EXIT_USAGE: Final = 252  # "Command syntax was invalid, an unknown parameter was provided, ..."
EXIT_CONFIG: Final = 253  # "The system environment or configuration was invalid."
EXIT_SERVICE: Final = 254  # "... a request was made to the specified service but the service
# returned an error."
EXIT_OTHER: Final = 255  # "General catch-all error."

OUTPUT_FORMATS: Final = ("json", "text", "table")


class QueryError(ValueError):
    """``--query`` is not a JMESPath expression (the AWS CLI refuses it before any request)."""


@dataclass(frozen=True)
class OutputOptions:
    """How a response is printed.

    Attributes:
        output: ``json``, ``text`` or ``table``.
        query: the compiled ``--query`` expression, or None.
        operation: the operation's name (``DescribeThing``), the table's title.
    """

    output: str = "json"
    query: Any = field(default=None)
    operation: str = ""

    @classmethod
    def parse(cls, output: str | None, query: str | None, operation: str) -> OutputOptions:
        """Options from the command line's ``--output`` and ``--query`` values.

        Raises:
            QueryError: ``query`` does not compile (the message is the AWS CLI's).
        """
        compiled = None
        if query is not None:
            # Imported here: only --query needs it (serve's start-up does not).
            import jmespath  # noqa: PLC0415
            from jmespath.exceptions import JMESPathError  # noqa: PLC0415

            try:
                compiled = jmespath.compile(query)
            except JMESPathError as exc:
                raise QueryError(f"Bad value for --query {query}: {exc}") from None
        return cls(output or "json", compiled, operation)


_OPTIONS: contextvars.ContextVar[OutputOptions | None] = contextvars.ContextVar(
    "aws_iot_mock_cli_output", default=None
)


@contextlib.contextmanager
def using(options: OutputOptions) -> Iterator[None]:
    """Make ``options`` the ones :func:`print_response` applies while the block runs."""
    token = _OPTIONS.set(options)
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def print_response(response: object, stream: TextIO | None = None) -> None:
    """Print an operation's response members with the current ``--output`` and ``--query``."""
    options = _OPTIONS.get() or OutputOptions()
    width = _terminal_width() if options.output == "table" else 80
    (stream or sys.stdout).write(format_response(response, options, width))


# A paginated operation's token in the response -> the member that asks for the next page.
_PAGE_TOKENS: Final = {"nextToken": "nextToken", "nextMarker": "marker"}
_MAX_PAGES: Final = 10_000


def all_pages(
    call: Callable[[str, dict[str, Any]], dict[str, Any]],
    operation: str,
    request: Mapping[str, Any],
) -> dict[str, Any]:
    """Call ``operation`` until its last page and merge the pages, as the AWS CLI does.

    The AWS CLI walks a paginated operation's pages and prints one response with every list
    member joined and no next token
    (https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-pagination.html). A request that
    names a page itself (a token, a page size) gets that one page.
    """
    first = dict(request)
    response = call(operation, first)
    asked = set(_PAGE_TOKENS.values()) | {"maxResults", "pageSize"}
    if asked & set(first):
        return response
    for _ in range(_MAX_PAGES):
        token = next(((key, response[key]) for key in _PAGE_TOKENS if response.get(key)), None)
        if token is None:
            break
        following = call(operation, {**first, _PAGE_TOKENS[token[0]]: token[1]})
        merged = {key: value for key, value in response.items() if key != token[0]}
        for key, value in following.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = [*merged[key], *value]
            elif key not in _PAGE_TOKENS:
                merged.setdefault(key, value)
        if following.get(token[0]):
            merged[token[0]] = following[token[0]]
        response = merged
    return response


def format_response(response: object, options: OutputOptions, terminal_width: int = 80) -> str:
    """The text the AWS CLI prints for ``response`` with these options.

    Args:
        response: the response members (``datetime`` values allowed).
        options: the output format, the compiled query and the operation's name.
        terminal_width: ``table`` turns wider tables' one-row sections vertical, as the AWS
            CLI does for its terminal's width (80 when stdout is not a terminal).
    """
    data = _timestamps(response)
    if options.query is not None:
        data = options.query.search(data)
    if options.output == "text":
        lines: list[str] = []
        _text(data, lines, None, None)
        return "".join(lines)
    if options.output == "table":
        return _table(options.operation or None, data, terminal_width)
    if data == {}:
        return ""  # The AWS CLI prints nothing for an operation without output.
    return json.dumps(data, indent=4, ensure_ascii=False) + "\n"


def error_text(operation: str, code: str, message: str) -> str:
    """The AWS CLI's stderr for a service error (botocore's ClientError), blank line first."""
    return f"\nAn error occurred ({code}) when calling the {operation} operation: {message}\n"


def print_service_error(operation: str, code: str, message: str) -> None:
    """Write :func:`error_text` to stderr."""
    sys.stderr.write(error_text(operation, code, message))


@functools.cache
def _iot_operations() -> dict[str, str]:
    from aws_iot_mock.api.iot_routes import IOT_ROUTE_TABLE  # noqa: PLC0415

    names = (line.split(" ", 1)[0] for line in IOT_ROUTE_TABLE.splitlines() if line)
    return {name.lower(): name for name in names}


def operation_name(verb: str, *, service: bool = True) -> str:
    """The API operation a verb calls: ``list-ca-certificates`` is ``ListCACertificates``.

    The AWS CLI names each verb after its operation (botocore's ``xform_name``); the ``iot``
    model's names are looked up so that acronyms come back upper-case. A verb that calls no
    service (``service=False``: serve, init, healthcheck) is only title-cased: the model's
    table (a large generated module) is not loaded for it.
    """
    titled = "".join(part.title() for part in verb.split("-"))
    if not service:
        return titled
    return _iot_operations().get(verb.replace("-", ""), titled)


# The members of the ``iot`` model's output shapes whose type is ``timestamp``
# (https://docs.aws.amazon.com/iot/latest/apireference/), less ``timestamp``, which is a ``long``
# in ThingConnectivity. A member of one of these names that holds a number is epoch seconds (the
# jobs and provisioning services answer ``time.time()``); tests/test_cli_output.py keeps the list
# in step with botocore's model.
TIMESTAMP_MEMBERS: Final = frozenset(
    {
        "acceptDate",
        "completedAt",
        "createDate",
        "createdAt",
        "creationDate",
        "deprecationDate",
        "endTime",
        "executionEndDate",
        "executionStartDate",
        "expiration",
        "expirationDate",
        "findingTime",
        "lastModelRefreshDate",
        "lastModifiedDate",
        "lastStatusChangeDate",
        "lastUpdatedAt",
        "lastViolationTime",
        "notAfter",
        "notBefore",
        "queuedAt",
        "rejectDate",
        "startTime",
        "startedAt",
        "taskEndTime",
        "taskStartTime",
        "timeToLive",
        "trainingDataCollectionStartDate",
        "transferDate",
        "violationEventTime",
        "violationStartTime",
    }
)


def _timestamps(value: object, member: str | None = None) -> object:
    """Timestamps as the AWS CLI v2 prints them (cli_timestamp_format iso8601).

    What the api door would send is read as botocore reads it: a ``datetime`` travels as epoch
    seconds with milliseconds (``rest_json.epoch_json``), a number as itself; botocore makes
    either a ``datetime`` in the local time zone and the CLI prints its ``isoformat()``.
    """
    if isinstance(value, datetime):
        # Imported here: every verb imports this module, serve too, and the REST-JSON binding
        # (with the HTTP messages and uuid) is not needed before serve's first handshake.
        from aws_iot_mock.api.rest_json import epoch_json  # noqa: PLC0415

        return _local_iso(epoch_json(value))
    if (
        member in TIMESTAMP_MEMBERS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return _local_iso(value)
    if isinstance(value, Mapping):
        return {key: _timestamps(item, key) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_timestamps(item, member) for item in value]
    return value


def _local_iso(seconds: object) -> str:
    assert isinstance(seconds, int | float)
    return datetime.fromtimestamp(seconds, UTC).astimezone().isoformat()


# --- text ----------------------------------------------------------------------------------------


def _scalar(value: object) -> bool:
    return not isinstance(value, dict | list)


def _text(item: object, out: list[str], identifier: str | None, keys: list[str] | None) -> None:
    if isinstance(item, dict):
        _text_dict(item, out, identifier, keys)
    elif isinstance(item, list):
        _text_list(item, out, identifier)
    else:
        out.append(f"{item}\n")


def _text_dict(
    item: dict[str, Any], out: list[str], identifier: str | None, keys: list[str] | None
) -> None:
    """One line of the scalar members (``keys``' columns, if given), then the nested ones."""
    if keys is None:
        scalars = [str(item[key]) for key in sorted(item) if _scalar(item[key])]
        rest = [(key, item[key]) for key in sorted(item) if not _scalar(item[key])]
    else:
        scalars = [str(item.get(key, "")) for key in keys]
        rest = [(key, item[key]) for key in sorted(set(item) - set(keys))]
    if scalars:
        head = [identifier.upper()] if identifier is not None else []
        out.append("\t".join(head + scalars) + "\n")
    for key, value in rest:
        _text(value, out, key, None)


def _text_list(item: list[Any], out: list[str], identifier: str | None) -> None:
    if any(isinstance(element, dict) for element in item):
        # One column per scalar key any element has, so that the lines align.
        columns = sorted(
            {
                key
                for element in item
                if isinstance(element, dict)
                for key, value in element.items()
                if _scalar(value)
            }
        )
        for element in item:
            _text(element, out, identifier, columns)
        return
    scalars = [element for element in item if _scalar(element)]
    if scalars and identifier is not None:
        out.extend(f"{identifier.upper()}\t{element}\n" for element in scalars)
    elif scalars:
        out.append("\t".join(str(element) for element in scalars) + "\n")
    for element in item:
        if not _scalar(element):
            _text(element, out, identifier, None)


# --- table ---------------------------------------------------------------------------------------


def _width(text: object) -> int:
    """Columns ``text`` takes: East Asian wide, full-width and ambiguous characters take two."""
    # Imported here: only table output needs it (an extension module: not at every start).
    import unicodedata  # noqa: PLC0415

    return sum(2 if unicodedata.east_asian_width(c) in "WFA" else 1 for c in str(text))


def _terminal_width() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80


@dataclass
class _Section:
    title: str = ""
    indent: int = 0
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)

    def add_header(self, headers: list[str]) -> None:
        self._grow(headers)
        self.headers = headers

    def add_row(self, row: list[object]) -> None:
        cells = [str(cell) for cell in row]
        self.rows.append(cells)
        self._grow(cells)

    def _grow(self, cells: list[str]) -> None:
        if not self.widths:
            self.widths = [_width(cell) for cell in cells]
        else:
            self.widths = [max(w, _width(c)) for w, c in zip(self.widths, cells, strict=False)]

    def column_widths(self, total: int) -> list[int]:
        """Widths (4 columns of padding each) scaled to sum to ``total``."""
        unscaled = [width + 4 for width in self.widths]
        if not unscaled:
            return unscaled
        scale = total / float(sum(unscaled))
        scaled = [round(scale * width) for width in unscaled]
        off_by = sum(scaled) - total
        while off_by != 0:
            order = range(len(scaled)) if off_by > 0 else reversed(range(len(scaled)))
            for i in order:
                step = 1 if off_by > 0 else -1
                scaled[i] -= step
                off_by -= step
                if off_by == 0:
                    break
        return scaled

    def total_width(self) -> int:
        columns = sum(width + 4 for width in self.widths) + 2 + 2 * self.indent
        return max(_width(self.title) + 2 + 2 * self.indent, columns)


class _TableBuilder:
    """The AWS CLI's table layout: one section per structure, a sub-section per nested member."""

    def __init__(self) -> None:
        self.sections: list[_Section] = []

    def new_section(self, title: str, indent: int) -> None:
        self.sections.append(_Section(title=title, indent=indent))

    @property
    def current(self) -> _Section:
        return self.sections[-1]

    def build(self, title: str | None, value: object, indent: int = 0) -> bool:
        if not value:
            return False
        if title is not None:
            self.new_section(title, indent)
        if isinstance(value, list):
            if isinstance(value[0], dict):
                self._from_list(value, indent, title)
            else:
                for element in value:
                    if _scalar(element):
                        self.current.add_row([element])
                    elif isinstance(element, list) and all(_scalar(e) for e in element):
                        self.current.add_row(list(element))
                    else:
                        self.build(None, element)
        if isinstance(value, dict):
            self._from_dict(value, indent)
        return True

    def _from_dict(self, value: dict[str, Any], indent: int) -> None:
        headers = sorted(key for key in value if _scalar(value[key]))
        more = sorted(key for key in value if not _scalar(value[key]))
        if len(headers) == 1:
            self.current.add_row([headers[0], value[headers[0]]])
        elif headers:
            self.current.add_header(headers)
            self.current.add_row([value[key] for key in headers])
        for key in more:
            self.build(key, value[key], indent + 1)

    def _from_list(self, value: list[Any], indent: int, title: str | None) -> None:
        headers = sorted(
            {key for item in value if isinstance(item, dict) for key in item if _scalar(item[key])}
        )
        more = sorted(
            {
                key
                for item in value
                if isinstance(item, dict)
                for key in item
                if not _scalar(item[key])
            }
        )
        self.current.add_header(headers)
        for position, element in enumerate(value):
            if position and more:
                self.new_section(title or "", indent)
                self.current.add_header(headers)
            self.current.add_row([element.get(key, "") for key in headers])
            for key in more:
                if key in element:
                    self.build(key, element[key], indent + 1)


def _center(text: str, length: int, left: str = "|", right: str = "|") -> str:
    start = (length // 2) - (_width(text) // 2) - 1
    line = left + " " * start + text
    return line + " " * (length - _width(right) - _width(line)) + right


def _align_left(text: str, length: int, left: str, right: str) -> str:
    padding = 2 if length - (_width(text) + 2 + len(left) + len(right)) >= 0 else 0
    line = left + " " * padding + text
    return line + " " * (length - len(left) - padding - _width(text) - len(right)) + right


def _line_break(widths: list[int]) -> str:
    return "".join(
        ("+" + "-" * (width - 2) + "+") if i == 0 else ("-" * (width - 1) + "+")
        for i, width in enumerate(widths)
    )


def _table(title: str | None, data: object, terminal_width: int) -> str:
    builder = _TableBuilder()
    if not builder.build(title, data) or not builder.sections:
        return ""
    sections = builder.sections
    max_width = max(section.total_width() for section in sections)
    if max_width > terminal_width:
        # Too wide: one-row sections become two columns, header and value.
        for i, section in enumerate(sections):
            if len(section.rows) == 1 and section.headers:
                vertical = _Section(title=section.title, indent=section.indent)
                for header, cell in zip(section.headers, section.rows[0], strict=False):
                    vertical.add_row([header, cell])
                sections[i] = vertical
        max_width = max(section.total_width() for section in sections)
    out = ["-" * max_width + "\n"]
    for section in sections:
        width = max_width - section.indent * 2
        lines: list[str] = []
        if section.title:
            lines.append(_center(section.title, width))
            if not section.headers and not section.rows:
                lines.append("+" + "-" * (width - 2) + "+")
        if section.headers:
            widths = section.column_widths(width)
            lines.append(_line_break(widths))
            lines.append(
                "".join(
                    _center(header, w, "|" if i == 0 else "", "|")
                    for i, (w, header) in enumerate(zip(widths, section.headers, strict=False))
                )
            )
        if section.rows:
            widths = section.column_widths(width)
            if widths:
                lines.append(_line_break(widths))
                lines.extend(
                    "".join(
                        _align_left(cell, w, "|" if i == 0 else "", "|")
                        for i, (w, cell) in enumerate(zip(widths, row, strict=False))
                    )
                    for row in section.rows
                )
                lines.append(_line_break(widths))
        edge = "|" * section.indent
        out.extend(f"{edge}{line}{edge}\n" for line in lines)
    return "".join(out)
