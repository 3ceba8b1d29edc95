"""Parsing and formatting of times and durations, shared by every stage.

The archive has one time format, UTC ``YYYY-MM-DDTHH:MM:SS.fffZ`` (fixed
width, so text order is time order), and one range of times it stores:
:data:`EARLIEST` (2006-01-01, before the first post of any platform) to
one year after now (:func:`latest`).  A source time outside that range is
not a time a post was written at (``0000-01-01``, ``9999-12-31``, a
misread clock): the sources store such posts without a time (NULL) and say
so.  Every helper here is safe at the edges of what ``datetime`` holds
(years 1 and 9999, offsets of ±14 h): nothing raises OverflowError.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ChatArchiveError

LEGACY_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Mon May 13 19:05:12 +0000 2024"
_FRACTION = re.compile(r"(\.\d+)")

# The range of times the archive stores (see the module docstring).
EARLIEST = datetime(2006, 1, 1, tzinfo=timezone.utc)
AHEAD = timedelta(days=366)
_MIN_UTC = datetime.min.replace(tzinfo=timezone.utc)
_MAX_UTC = datetime.max.replace(tzinfo=timezone.utc)


def latest() -> datetime:
    """The latest time the archive stores: a year from now (clocks and
    scheduled posts may run ahead a little; a post from 2090 is a misread)."""
    return datetime.now(timezone.utc) + AHEAD


_latest_iso: tuple[float, str] = (0.0, "")


def latest_iso() -> str:
    """:func:`latest` in the archive's format, recomputed once a minute (a
    year ahead, a minute's staleness changes nothing; a call per post costs)."""
    global _latest_iso
    now = time.monotonic()
    if now - _latest_iso[0] > 60:
        _latest_iso = (now, iso_utc(latest()))
    return _latest_iso[1]


EARLIEST_ISO = "2006-01-01T00:00:00.000Z"


def in_range(dt: datetime) -> bool:
    """Whether ``dt`` (aware, or naive meaning UTC) is within the stored range."""
    try:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return EARLIEST <= dt <= latest()
    except OverflowError:  # comparing needs the UTC value: at the very edges it has none
        return False


def to_utc(dt: datetime) -> datetime:
    """``dt`` in UTC (naive means UTC); clamped to datetime's limits instead
    of overflowing (0001-01-01T00:00+01:00 has no UTC value in datetime)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:
        return _MIN_UTC if dt.year < 5000 else _MAX_UTC


def to_zone(dt: datetime, zone: tzinfo) -> datetime:
    """``dt.astimezone(zone)`` that never overflows: at the very edges of
    datetime (year 1 west of UTC, year 9999 east of it) the instant is
    clamped to the nearest time the zone can show."""
    try:
        return to_utc(dt).astimezone(zone)
    except (OverflowError, ValueError):
        edge = datetime.min if dt.year < 5000 else datetime.max
        return edge.replace(tzinfo=zone)


def iso_utc(dt: datetime) -> str:
    """Format as the archive's one time format: sortable UTC with
    milliseconds, always four-digit years (strftime writes year 1 as "1")."""
    u = to_utc(dt)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}."
            f"{u.microsecond // 1000:03d}Z")


def parse_iso(value: str) -> datetime:
    """RFC 3339 with any number of fractional digits, 'Z' or an offset.
    ValueError for anything else (including year 0, which datetime lacks)."""
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    # fromisoformat (3.10) wants 3 or 6 fractional digits
    m = _FRACTION.search(s)
    if m:
        frac = m.group(1)[1:]
        s = s[: m.start(1)] + "." + (frac + "000000")[:6] + s[m.end(1):]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def iso_from_iso(value: str) -> str:
    """An ISO-8601/RFC 3339 time in the archive's format (ValueError if unreadable)."""
    return iso_utc(parse_iso(value))


def iso_from_legacy(value: str) -> str:
    """Twitter's v1.1 'Mon May 13 19:05:12 +0000 2024' to archive time."""
    return iso_utc(datetime.strptime(value.strip(), LEGACY_FORMAT))


class TimeProblem(ValueError):
    """A source time that cannot be stored: unreadable, or outside the
    archive's range.  The message says which, in plain words."""


def _shown(value: Any) -> str:
    """A source value as a message shows it: quoted text, at most 40 characters."""
    if not isinstance(value, str):
        value = repr(value)
        return value[:40] + ("…" if len(value) > 40 else "")
    return repr(value[:40] + ("…" if len(value) > 40 else ""))


def checked(dt: datetime, value: Any = None) -> str:
    """``dt`` in the archive's format when it is within the stored range,
    else TimeProblem (naming ``value``, the source's text, when given)."""
    if in_range(dt):
        return iso_utc(dt)
    shown = _shown(value) if value is not None else iso_utc(dt)
    side = "before 2006" if to_utc(dt) < EARLIEST else "more than a year from now"
    raise TimeProblem(f"time {shown} is {side}, not a real post time")


def source_time(value: Any, parse: Any = None) -> str:
    """A time read from a source file, checked: the archive's format, or
    TimeProblem saying why not.  ``parse`` turns the text into a datetime
    (default: RFC 3339, :func:`parse_iso`)."""
    if not isinstance(value, str) or not value.strip():
        raise TimeProblem("no time" if value in (None, "") else f"time {_shown(value)} is not text")
    try:
        dt = (parse or parse_iso)(value)
    except (ValueError, OverflowError):
        raise TimeProblem(f"unreadable time {_shown(value)}") from None
    return checked(dt, value)


def read_stored(value: Any) -> datetime | None:
    """A time as stored in the archive (or any ISO text) as an aware UTC
    datetime; None for NULL or anything unreadable.  For outputs, which
    must never fail on what an old or hand-edited archive holds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return to_utc(parse_iso(value))
    except (ValueError, OverflowError):
        return None


# --------------------------------------------------------------------------
# Times that ids carry: the fallback when a post's own time field is broken

_SNOWFLAKE_EPOCH_MS = 1288834974657  # X snowflake epoch (2010-11-04T01:42:54.657Z)
_SNOWFLAKE_FIRST = 1 << 42  # smaller ids are pre-2010 sequential ones: no time in them
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable
_TID = re.compile(r"^[234567a-j][234567a-z]{12}$")  # the top bit is 0: the first character is < "k"
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def snowflake_time(post_id: Any) -> str | None:
    """The creation time an X post id (a snowflake) encodes, when the id is
    one and the time is in range; else None."""
    if not isinstance(post_id, str) or not post_id.isdigit() or len(post_id) > 19:
        return None
    n = int(post_id)
    if n < _SNOWFLAKE_FIRST or n >= 1 << 63:
        return None
    dt = datetime.fromtimestamp(((n >> 22) + _SNOWFLAKE_EPOCH_MS) / 1000, timezone.utc)
    return iso_utc(dt) if in_range(dt) else None


def tid_time(rkey: Any) -> str | None:
    """The time a Bluesky record key encodes when it is a TID (13
    base32-sortable characters: microseconds since 1970 in the top 53 bits,
    a clock id in the low 10), in range; else None."""
    if not isinstance(rkey, str) or not _TID.match(rkey):
        return None
    n = 0
    for c in rkey:
        n = n * 32 + _TID_ALPHABET.index(c)
    micros = n >> 10
    try:
        dt = _UNIX_EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None
    return iso_utc(dt) if in_range(dt) else None


# --------------------------------------------------------------------------
# What users type


def get_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ChatArchiveError(f"Unknown time zone: {name!r} (use an IANA name such as America/New_York)") from None


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?$")


def parse_duration(value: str) -> timedelta:
    """'45m', '1h30m', '90s', '2d', or a bare number of minutes."""
    s = value.strip().lower().replace(" ", "")
    m = _DURATION.match(s)
    try:
        if s.isdigit():
            return timedelta(minutes=int(s))
        if s and m and any(m.groups()):
            d, h, mi, se = (int(g) if g else 0 for g in m.groups())
            return timedelta(days=d, hours=h, minutes=mi, seconds=se)
    except OverflowError:
        raise ChatArchiveError(f"Invalid duration: {value!r} (too long)") from None
    raise ChatArchiveError(f"Invalid duration: {value!r} (examples: 45m, 1h30m, 90s)")


def parse_time(value: str, tz: str | None = None) -> datetime:
    """An ISO-8601 time or date given by a user; UTC unless an offset or tz says otherwise."""
    s = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            dt = datetime.fromisoformat(s)
        else:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ChatArchiveError(f"Invalid time: {value!r} (use ISO-8601, e.g. 2026-11-18T20:00 or 2026-11-18)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=get_zone(tz) if tz else timezone.utc)
    return to_utc(dt)
