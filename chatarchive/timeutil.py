"""Parsing and formatting of times and durations, shared by every stage."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ChatArchiveError

LEGACY_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Mon May 13 19:05:12 +0000 2024"
_FRACTION = re.compile(r"(\.\d+)")


def iso_utc(dt: datetime) -> str:
    """Format as the archive's one time format: sortable UTC with milliseconds."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """RFC 3339 with any number of fractional digits, 'Z' or an offset."""
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
    return iso_utc(parse_iso(value))


def iso_from_legacy(value: str) -> str:
    """Twitter's v1.1 'Mon May 13 19:05:12 +0000 2024' to archive time."""
    return iso_utc(datetime.strptime(value.strip(), LEGACY_FORMAT))


def get_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ChatArchiveError(f"Unknown time zone: {name!r} (use an IANA name such as America/New_York)") from None


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?$")


def parse_duration(value: str) -> timedelta:
    """'45m', '1h30m', '90s', '2d', or a bare number of minutes."""
    s = value.strip().lower().replace(" ", "")
    if s.isdigit():
        return timedelta(minutes=int(s))
    m = _DURATION.match(s)
    if not s or not m or not any(m.groups()):
        raise ChatArchiveError(f"Invalid duration: {value!r} (examples: 45m, 1h30m, 90s)")
    d, h, mi, se = (int(g) if g else 0 for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=se)


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
    return dt.astimezone(timezone.utc)
