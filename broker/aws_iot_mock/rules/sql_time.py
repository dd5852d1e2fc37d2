"""Date patterns for ``parse_time()`` (Joda-Time) and ``time_to_epoch()`` (JDK 11).

Source: AWS IoT developer guide, "Functions", parse_time and time_to_epoch
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html): parse_time's
pattern "follows Joda-Time formats" and its time zone "The default is "UTC""; time_to_epoch's
pattern "follows JDK11 Time Formats" and "If the timestamp string doesn't specify a timezone,
the function uses the UTC timezone".

Only the pattern letters listed in :data:`JODA_LETTERS` and :data:`JDK_LETTERS` are supported;
a pattern with any other letter gives None (the SQL function then returns Undefined). Month and
day names are English, as the rules engine's default locale.

Pure: no clock; times come in as arguments.
"""

from __future__ import annotations

import calendar
import re
import zoneinfo
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

__all__ = ["JDK_LETTERS", "JODA_LETTERS", "format_joda", "parse_to_epoch_ms", "zone_for"]

JODA_LETTERS: Final = frozenset("GCYxwweEyuDMdaKhHkmsSzZ")
JDK_LETTERS: Final = frozenset("yuMLdHhKkmsSaEzVXxZO")

# A pattern is quoted text ('...', with '' for a quote), a run of one letter, or other text.
_PATTERN_PART: Final = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|[^A-Za-z']+")
_OFFSET: Final = re.compile(r"(?:UTC|GMT|UT)?([+-])([0-9]{1,2})(?::?([0-9]{2}))?")


def _parts(pattern: str) -> list[str] | None:
    parts = [match.group(0) for match in _PATTERN_PART.finditer(pattern)]
    if "".join(parts) != pattern:
        return None  # an unterminated quote
    return parts


def _literal(part: str) -> str:
    if part == "''":
        return "'"
    return part[1:-1].replace("''", "'")


def zone_for(name: str) -> tzinfo | None:
    """A time zone from an ID (``America/Belize``), ``UTC``/``Z``, or an offset (``UTC+01:00``)."""
    if name in ("Z", "UTC", "GMT", "UT"):
        return UTC
    offset = _OFFSET.fullmatch(name)
    if offset is not None:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=18):
            return None
        return timezone(-delta if sign == "-" else delta)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _offset_text(moment: datetime, colon: bool) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


def _joda_field(letter: str, count: int, moment: datetime, zone_name: str) -> str | None:  # noqa: PLR0912
    """One Joda-Time pattern field (``DateTimeFormat`` letters), or None if unsupported."""
    if letter == "G":
        return "AD" if moment.year > 0 else "BC"
    if letter in "yYu":
        return f"{moment.year % 100:02d}" if count == 2 else f"{moment.year:0{count}d}"
    if letter == "C":
        return f"{moment.year // 100:0{count}d}"
    if letter == "x":
        return f"{moment.isocalendar()[0]:0{count}d}"
    if letter == "w":
        return f"{moment.isocalendar()[1]:0{count}d}"
    if letter == "e":
        return f"{moment.isoweekday():0{count}d}"
    if letter == "E":
        return (
            calendar.day_name[moment.weekday()]
            if count >= 4
            else calendar.day_abbr[moment.weekday()]
        )
    if letter == "M":
        if count >= 4:
            return calendar.month_name[moment.month]
        if count == 3:
            return calendar.month_abbr[moment.month]
        return f"{moment.month:0{count}d}"
    numbers = {
        "d": moment.day,
        "D": moment.timetuple().tm_yday,
        "H": moment.hour,
        "k": moment.hour or 24,
        "K": moment.hour % 12,
        "h": moment.hour % 12 or 12,
        "m": moment.minute,
        "s": moment.second,
    }
    if letter in numbers:
        return f"{numbers[letter]:0{count}d}"
    if letter == "S":
        return f"{moment.microsecond // 1000:03d}"[:count].ljust(count, "0")
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "z":
        return moment.tzname() or zone_name
    if letter == "Z":
        if count >= 3:
            return zone_name
        return _offset_text(moment, colon=count == 2)
    return None


def format_joda(pattern: str, epoch_ms: int, zone_name: str = "UTC") -> str | None:
    """Format ``epoch_ms`` with a Joda-Time pattern in ``zone_name``.

    ``format_joda("yyyy.MM.dd G 'at' HH:mm:ss z", 100000000, "America/Belize")`` gives
    ``"1970.01.01 AD at 21:46:40 CST"`` (AWS's parse_time example).

    Returns:
        The text, or None for an unsupported pattern letter, unknown zone or out-of-range time.
    """
    zone = zone_for(zone_name)
    parts = _parts(pattern)
    if zone is None or parts is None:
        return None
    try:
        moment = datetime.fromtimestamp(epoch_ms / 1000, tz=zone)
    except (OverflowError, OSError, ValueError):
        return None
    out: list[str] = []
    for part in parts:
        if part.startswith("'"):
            out.append(_literal(part))
        elif part[0].isalpha():
            if part[0] not in JODA_LETTERS:
                return None
            text = _joda_field(part[0], len(part), moment, zone_name)
            if text is None:
                return None
            out.append(text)
        else:
            out.append(part)
    return "".join(out)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MONTHS: Final = {name.lower(): index for index, name in enumerate(calendar.month_name) if name}
_MONTH_ABBRS: Final = {
    name.lower(): index for index, name in enumerate(calendar.month_abbr) if name
}


def _jdk_group(letter: str, count: int, index: int) -> str | None:
    """The regex group that reads one JDK ``DateTimeFormatter`` field."""
    name = f"{letter}{index}"
    if letter in "yu":
        return rf"(?P<{name}>[0-9]{{2}})" if count == 2 else rf"(?P<{name}>[0-9]{{{count},}})"
    if letter in "ML" and count >= 3:
        return rf"(?P<{name}>[A-Za-z]+)"
    if letter in "MLdHhKkms":
        return rf"(?P<{name}>[0-9]{{1,2}})" if count == 1 else rf"(?P<{name}>[0-9]{{{count}}})"
    if letter == "S":
        return rf"(?P<{name}>[0-9]{{{count}}})"
    if letter == "a":
        return rf"(?P<{name}>[AaPp][Mm])"
    if letter == "E":
        return rf"(?P<{name}>[A-Za-z]+)"
    if letter in "zV":
        return rf"(?P<{name}>[A-Za-z][A-Za-z0-9_/+\-:]*)"
    if letter in "XxZO":
        return rf"(?P<{name}>Z|(?:GMT)?[+-][0-9]{{1,2}}(?::?[0-9]{{2}})?)"
    return None


def parse_to_epoch_ms(text: str, pattern: str) -> int | None:  # noqa: PLR0912, PLR0915
    """Parse ``text`` with a JDK 11 ``DateTimeFormatter`` pattern into epoch milliseconds.

    ``parse_to_epoch_ms("18 December 2015", "dd MMMM yyyy")`` gives ``1450396800000``. A string
    without a zone is UTC. The year, month and day must be present.

    Returns:
        Milliseconds since the epoch, or None when the text does not match the pattern, the
        pattern has an unsupported letter, or the date is invalid.
    """
    parts = _parts(pattern)
    if parts is None:
        return None
    regex: list[str] = []
    fields: list[tuple[str, int, str]] = []
    for index, part in enumerate(parts):
        if part.startswith("'"):
            regex.append(re.escape(_literal(part)))
        elif part[0].isalpha():
            if part[0] not in JDK_LETTERS:
                return None
            group = _jdk_group(part[0], len(part), index)
            if group is None:
                return None
            regex.append(group)
            fields.append((part[0], len(part), f"{part[0]}{index}"))
        else:
            regex.append(re.escape(part))
    match = re.fullmatch("".join(regex), text)
    if match is None:
        return None
    values: dict[str, int] = {}
    zone: tzinfo = UTC
    pm: bool | None = None
    for letter, count, name in fields:
        raw = match.group(name)
        if letter in "yu":
            values["year"] = 2000 + int(raw) if count == 2 else int(raw)
        elif letter in "ML":
            if count >= 3:
                month = (_MONTHS if count >= 4 else _MONTH_ABBRS).get(raw.lower())
                if month is None:
                    return None
                values["month"] = month
            else:
                values["month"] = int(raw)
        elif letter == "d":
            values["day"] = int(raw)
        elif letter in "Hk":
            values["hour"] = int(raw) % 24
        elif letter in "hK":
            values["hour12"] = int(raw) % 12
        elif letter == "m":
            values["minute"] = int(raw)
        elif letter == "s":
            values["second"] = int(raw)
        elif letter == "S":
            values["micro"] = int(raw.ljust(6, "0")[:6])
        elif letter == "a":
            pm = raw.lower() == "pm"
        elif letter in "zVXxZO":
            found = zone_for(raw)
            if found is None:
                return None
            zone = found
    if not {"year", "month", "day"} <= values.keys():
        return None
    hour = values.get("hour", 0)
    if "hour12" in values:
        hour = values["hour12"] + (12 if pm else 0)
    try:
        moment = datetime(
            values["year"],
            values["month"],
            values["day"],
            hour,
            values.get("minute", 0),
            values.get("second", 0),
            values.get("micro", 0),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return (moment - _EPOCH) // timedelta(milliseconds=1)
