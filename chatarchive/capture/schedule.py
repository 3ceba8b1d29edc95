"""Set and forget: wait for a chat's next occurrence and capture it.

An occurrence comes from ``--at "wed 20:00" --tz America/New_York --duration
1h15m`` (weekly, built in the zone's wall-clock time, so 20:00 stays 20:00
across DST), from ``--at 2026-11-18T20:00`` (once), or from the schedules
stored with ``sessions schedule`` (with their ``--before``/``--after``
margins).  :func:`run_schedule` waits (on a :class:`~.http.Clock`, so tests
skip the wait) until the capture window of the next occurrence opens, runs
the capture for that window, and repeats for the following one unless
``once``.  An occurrence already under way is captured at once, from its
start: the streams replay or search what came before the command started.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeVar

import sqlite_utils

from ..analysis.sessions import occurrences, parse_every
from ..analysis.settings import get_chat
from ..errors import CaptureError, ChatArchiveError
from ..timeutil import get_zone, iso_utc, parse_iso, parse_time
from .http import Clock, format_seconds

R = TypeVar("R")
_WEEKLY = re.compile(r"^\s*[a-z]{3,}\s+\d{1,2}(:\d{2})?\s*(am|pm)?\s*$", re.I)


@dataclass
class Plan:
    """One way a chat recurs: weekly (``every``) or once (``at``)."""

    duration: timedelta
    tz: str = "UTC"
    every: str | None = None
    at: datetime | None = None
    before: timedelta = timedelta(0)
    after: timedelta = timedelta(0)
    title: str | None = None

    def describe(self) -> str:
        if self.every:
            return f"every {self.every} {self.tz}"
        return f"at {self.at.astimezone(get_zone(self.tz)).strftime('%Y-%m-%d %H:%M %Z') if self.at else '?'}"


@dataclass
class Occurrence:
    start: datetime  # the chat itself (UTC)
    end: datetime
    capture_from: datetime  # start - before
    capture_until: datetime  # end + after
    tz: str

    @property
    def label(self) -> str:
        local = self.start.astimezone(get_zone(self.tz))
        return f"{local.strftime('%a %Y-%m-%d %H:%M')} {self.tz}"


def plan_at(value: str, tz: str | None, duration: timedelta | None, before: timedelta = timedelta(0),
            after: timedelta = timedelta(0)) -> Plan:
    """``--at``: a weekday and time (weekly) or an ISO time (once)."""
    if duration is None or duration <= timedelta(0):
        raise CaptureError("--at needs --duration: how long each chat is captured (e.g. --duration 1h15m)")
    zone = tz or "UTC"
    get_zone(zone)
    if _WEEKLY.match(value or ""):
        try:
            parse_every(value)
        except ChatArchiveError as e:
            raise CaptureError(str(e).replace("--every", "--at")) from None
        return Plan(duration, zone, every=value.strip(), before=before, after=after)
    try:
        when = parse_time(value, tz)
    except ChatArchiveError:
        raise CaptureError(f"Invalid --at {value!r}: give a weekday and time (\"wed 20:00\", weekly, in --tz) "
                           "or a date and time (2026-11-18T20:00, once)") from None
    return Plan(duration, zone, at=when, before=before, after=after)


def stored_plans(db: sqlite_utils.Database, hashtag: str) -> list[Plan]:
    """The schedules ``sessions schedule`` stored for this hashtag."""
    chat = get_chat(db, hashtag.lstrip("#"))
    plans = []
    for s in chat.schedules or []:
        try:
            plans.append(Plan(timedelta(seconds=float(s["duration"])), s.get("timezone") or "UTC",
                              every=s["every"], before=timedelta(seconds=float(s.get("before") or 0)),
                              after=timedelta(seconds=float(s.get("after") or 0)), title=s.get("title")))
        except (KeyError, TypeError, ValueError):
            continue
    if not plans:
        raise CaptureError(f"#{hashtag.lstrip('#')} has no stored schedule: add one with "
                           f"chatarchive sessions schedule DB --hashtag {hashtag.lstrip('#')} --every \"wed 20:00\" "
                           "--tz ZONE --duration 1h (or use --at)")
    return plans


def next_occurrence(plans: list[Plan], now: datetime) -> Occurrence | None:
    """The earliest occurrence whose capture window has not closed yet."""
    best: Occurrence | None = None
    for plan in plans:
        if plan.every:
            span = plan.duration + plan.before + plan.after
            first = iso_utc(now - span - timedelta(days=1))
            last = iso_utc(now + timedelta(days=8))
            starts = [parse_iso(s) for _, s, _ in occurrences(plan.every, plan.tz, plan.duration, first, last)]
        else:
            starts = [plan.at] if plan.at else []
        for start in starts:
            occ = Occurrence(start, start + plan.duration, start - plan.before, start + plan.duration + plan.after,
                             plan.tz)
            if occ.capture_until > now and (best is None or occ.capture_from < best.capture_from):
                best = occ
                break
    return best


def wait_until(when: datetime, clock: Clock, on_wait: Callable[[float], None] | None = None) -> None:
    """Sleep until ``when`` (in steps, so Ctrl-C and clock changes are noticed)."""
    while True:
        left = when.timestamp() - clock.time()
        if left <= 0:
            return
        if on_wait is not None:
            on_wait(left)
        clock.sleep(min(left, 30.0))


def run_schedule(plans: list[Plan], capture: Callable[[Occurrence], R], *, clock: Clock | None = None,
                 once: bool = False, say: Callable[[str], None] | None = None,
                 max_occurrences: int | None = None) -> list[R]:
    """Wait for each occurrence and ``capture`` it; returns what each capture returned."""
    clock = clock or Clock()
    results: list[R] = []
    repeats = any(p.every for p in plans)
    while max_occurrences is None or len(results) < max_occurrences:
        now = datetime.fromtimestamp(clock.time(), tz=timezone.utc)
        occ = next_occurrence(plans, now)
        if occ is None:
            break
        left = occ.capture_from.timestamp() - clock.time()
        if say is not None:
            if left > 0:
                say(f"Waiting for {occ.label} (capturing from {occ.capture_from.astimezone(get_zone(occ.tz)):%H:%M}, "
                    f"in {format_seconds(left)}); Ctrl-C to stop")
            else:
                say(f"Capturing {occ.label} (under way: from its start)")
        wait_until(occ.capture_from, clock)
        results.append(capture(occ))
        if once or not repeats:
            break
        # the next one: at least a moment after this window closed
        wait_until(occ.capture_until + timedelta(seconds=1), clock)
    return results
