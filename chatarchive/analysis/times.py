"""Archive times as the analysis uses them: which stored values it may use, and conversions that never raise.

The archive's one time format is ``YYYY-MM-DDTHH:MM:SS.fffZ`` (UTC), so text
order is time order.  The importers store only times within 2006-01-01 ..
now + 1 year (anything else is NULL), but an archive may still hold other
values: written by an older version, by hand or by another tool (year 0001,
9999, ``1-01-01T…``, text).  The analysis never fails on them: a post whose
time is NULL or not usable is threaded and counted where it belongs, but
never placed in a time window (it starts, ends or extends no session).

Posts' times are read in SQL (:func:`usable_sql`, :data:`MS_SQL`), the same
way in a full and an incremental analysis, so both see the same posts; the
Python conversions here are for times the analysis wrote itself (session
windows) and for the statistics, and return None instead of raising.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..timeutil import EARLIEST_ISO

# The span the analysis works in.  The lower end is the archive's
# (timeutil.EARLIEST: no hashtag chat is older); the upper one only keeps
# every window far from datetime's year-9999 limit (a lead-in, a schedule's
# week, a zone 14 hours away).  The importers' upper bound (now + 1 year)
# stays theirs: a time the analysis may use must not depend on the day it
# runs, and synthetic archives dated decades ahead (the benchmark) still work.
TIME_MIN = EARLIEST_ISO
TIME_MAX = "9000-01-01T00:00:00.000Z"
_EPOCH = datetime(1970, 1, 1)
MIN_MS = round((datetime(2006, 1, 1) - _EPOCH).total_seconds() * 1000)
MAX_MS = round((datetime(9000, 1, 1) - _EPOCH).total_seconds() * 1000)

# Epoch milliseconds of a stored time, computed by SQLite (NULL when it cannot
# read it); integers, so a gap test is exact and the same in every mode.
MS_SQL = "CAST(round((julianday({0}) - 2440587.5) * 86400000.0) AS INTEGER)"


def usable_sql(column: str) -> str:
    """SQL true when ``column`` holds a time the analysis may use (bind
    :func:`usable_params`); rows whose :data:`MS_SQL` is NULL are left out too
    by the callers (it costs nothing there: they read it anyway).  A filter
    only: the unary ``+`` keeps SQLite from taking this range for an index
    range, so a query's own, narrower time range drives the index."""
    return f"(+{column} BETWEEN ? AND ? AND length({column}) = 24)"


def usable_params() -> list[str]:
    return [TIME_MIN, TIME_MAX]


def to_ms(value: object) -> int | None:
    """An archive time as integer epoch milliseconds; None for NULL or any
    value that is not a usable archive time."""
    if not isinstance(value, str) or len(value) != 24 or value[-1] != "Z" or not TIME_MIN <= value < TIME_MAX:
        return None
    try:
        dt = datetime.fromisoformat(value[:23])
    except ValueError:
        return None
    return round((dt - _EPOCH).total_seconds() * 1000)


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as an archive time (exact: integer arithmetic)."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def seconds_between(earlier: object, later: object) -> float | None:
    """Seconds from one archive time to another; None when either is not usable."""
    a, b = to_ms(earlier), to_ms(later)
    return None if a is None or b is None else (b - a) / 1000
