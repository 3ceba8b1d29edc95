"""Sessions: where each chat begins and ends, and which posts belong to it.

A session is one sitting of a chat hashtag (case-insensitive, across every
platform: the same hour on X, Mastodon and Bluesky is one session).  Its
``start``/``end`` are its core, the time it is shown at; its
``window_start``/``window_end`` span every tagged member.  Sessions come from:

* detection (``source='detected'``): a hashtag's matched posts in time
  order, split where the silence exceeds ``gap`` (default 45 min) into
  groups; groups of fewer than ``min_posts`` (default 10) are candidates for
  nothing but a lead-in or tail.  :mod:`.margins` shapes the sessions: the
  core is a group's busy stretch, the window adds the same day's posts up to
  ``lead`` before it (default 6 h) and ``tail`` after it (default 2 h);
* a weekly schedule (``'scheduled'``): one session per occurrence of, say,
  "wed 20:00" in America/New_York that has posts, computed in the chat's
  own zone so daylight-saving changes move the UTC hour with it; its window
  adds the schedule's ``before``/``after``;
* an explicit window (``'manual'``, or ``'capture'`` from live capture):
  exactly that window.

Manual and scheduled sessions are never replaced by detection, and no
detected window enters theirs; detection keeps session ids stable by
matching what it finds to existing sessions whose core (else window)
overlaps.  Membership (``session_posts``): posts carrying the hashtag inside
the window (``via='tag'``), plus untagged posts that reply into those
threads and untagged parents posted during the session (``via='thread'``).
Posts whose time is NULL or unusable (:mod:`.times`) are in no window, but
join a session through its threads.

Which hashtags are chats: those the user named (``sessions detect
--hashtag``, ``add``, ``schedule``; remembered in table ``chats``, see
:mod:`.settings`).  While none is named, every hashtag is tried and a group
is dropped when most of its posts also carry a hashtag used at least as
often in that window (so ``#edtech`` inside ``#edchat`` is not a chat of
its own).

After membership, :func:`member_rows` reads each session's members once for
the steps that need them: Q&A, the session summary (``post_count``,
``platforms``, ``hosts``: :func:`summarise`, :func:`write_summaries`) and,
in a full analysis, each thread's session (:class:`ConversationTally`).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from operator import itemgetter
from typing import Any

import sqlite_utils

from ..archive.queries import chunks, get_session, marks
from ..errors import ChatArchiveError
from ..models import Session
from ..timeutil import get_zone, iso_utc, parse_iso
from . import margins
from .margins import Margins, Shaped, Walls
from .qa import QAPost
from .rewrite import PostRewrite
from .settings import Chat, clean_tag, display_tag, get_chat, save_chat
from .times import MAX_MS, MIN_MS, MS_SQL, iso_ms, to_ms, usable_params, usable_sql

SUBSUME_SHARE = 0.8  # share of a group's posts that also carry the bigger tag
MIN_SHARE = 0.25  # while guessing: share of the window's tagged posts a chat's hashtag must have
ANCESTOR_LEAD = timedelta(hours=1)  # untagged parents this long before the window join it
SLUG_TAG_MAX = 60  # characters of the hashtag in a slug: the date always follows, whole


# --------------------------------------------------------------------------
# Small helpers


def slugify(tag: str) -> str:
    """The hashtag part of a slug; a very long hashtag is cut here, so that
    the slug (tag, date, a counter) stays short and always ends with its date."""
    return (re.sub(r"[^\w]+", "-", tag.lower()).strip("-_")[:SLUG_TAG_MAX].strip("-_")) or "chat"


def zone_of(tz: str | None) -> tzinfo | None:
    """The chat's zone, None when it has none (or names none that exists: a
    stored setting must never stop an analysis)."""
    if not tz:
        return None
    try:
        return get_zone(tz)
    except ChatArchiveError:
        return None


def local_date(iso: str, tz: str | None) -> date:
    """The date of an archive time in the chat's zone (UTC without one)."""
    ms = to_ms(iso)
    if ms is None:  # (the analysis writes only usable times; an old row may hold anything)
        return date(1970, 1, 1)
    dt = datetime.fromtimestamp(ms / 1000, timezone.utc)
    zone = zone_of(tz)
    return (dt.astimezone(zone) if zone is not None else dt).date()


def _overlaps(a0: str, a1: str, b0: str, b1: str) -> bool:
    return a0 <= b1 and b0 <= a1


def _time(s: Session | Detected) -> tuple[str, str]:
    """A session's start and end (the analysis writes both on every session)."""
    return s.start or "", s.end or ""


def _window(s: Session | Detected) -> tuple[str, str]:
    """The window whose tagged posts are a session's members (its time when it has none)."""
    return s.window_start or s.start or "", s.window_end or s.end or ""


# --------------------------------------------------------------------------
# Reading sessions

_SESSION_SELECT = "SELECT " + ", ".join(f'"{c}"' for c in Session.COLUMNS) + " FROM sessions"


def _overlapping(db: sqlite_utils.Database, tag: str, lo: str, hi: str) -> list[Session]:
    """Sessions of a hashtag whose window overlaps [lo, hi], oldest id first."""
    return _session_rows(
        db, """WHERE hashtag = ? COLLATE NOCASE AND coalesce(window_start, start) <= ?
               AND coalesce(window_end, "end") >= ? ORDER BY id""", [tag, hi, lo])


def _session_rows(db: sqlite_utils.Database, where: str = "", params: Iterable[Any] = ()) -> list[Session]:
    return [Session.from_row(r) for r in db.execute(f"{_SESSION_SELECT} {where}", list(params))]


# --------------------------------------------------------------------------
# Writing sessions


class Changes:
    """What a step did to sessions, so later steps touch only those."""

    def __init__(self) -> None:
        self.changed: set[int] = set()
        self.deleted: set[int] = set()
        self.created: set[int] = set()

    def merge(self, other: Changes) -> None:
        self.changed |= other.changed
        self.deleted |= other.deleted
        self.created |= other.created


def unique_slug(db: sqlite_utils.Database, tag: str, day: date, current: str | None = None,
                session_id: int | None = None) -> str:
    base = f"{slugify(tag)}-{day.isoformat()}"
    if current and (current == base or re.fullmatch(re.escape(base) + r"-\d+", current)):
        return current
    n = 1
    while True:
        slug = base if n == 1 else f"{base}-{n}"
        row = db.execute("SELECT id FROM sessions WHERE slug = ?", [slug]).fetchone()
        if row is None or row[0] == session_id:
            return slug
        n += 1


def delete_sessions(db: sqlite_utils.Database, ids: Iterable[int]) -> None:
    ids = sorted(set(ids))
    for chunk in chunks(ids):
        m = marks(len(chunk))
        db.execute(f"UPDATE posts SET question_id = NULL WHERE question_id IN "
                   f"(SELECT id FROM questions WHERE session_id IN ({m}))", chunk)
        db.execute(f"UPDATE posts SET answer_to_id = NULL WHERE answer_to_id IN "
                   f"(SELECT id FROM questions WHERE session_id IN ({m}))", chunk)
        db.execute(f"DELETE FROM questions WHERE session_id IN ({m})", chunk)
        db.execute(f"DELETE FROM session_posts WHERE session_id IN ({m})", chunk)
        db.execute(f"UPDATE conversations SET session_id = NULL WHERE session_id IN ({m})", chunk)
        db.execute(f"DELETE FROM sessions WHERE id IN ({m})", chunk)


def _write_session(db: sqlite_utils.Database, existing: Session | None, values: dict[str, Any],
                   tz: str | None) -> int:
    """Insert or update one session; the slug follows its local date."""
    day = local_date(values["start"], tz)
    if existing is None:
        slug = unique_slug(db, values["hashtag"], day)
        cols = ", ".join(f'"{c}"' for c in ["slug", *values])
        new_id = db.execute(f"INSERT INTO sessions ({cols}) VALUES ({marks(len(values) + 1)})",
                            [slug, *values.values()]).lastrowid
        assert new_id is not None  # (set by every INSERT)
        return new_id
    sid = existing.id
    values = dict(values)
    values["slug"] = unique_slug(db, values["hashtag"], day, existing.slug, sid)
    sets = ", ".join(f'"{c}" = ?' for c in values)
    db.execute(f"UPDATE sessions SET {sets} WHERE id = ?", list(values.values()) + [sid])
    return sid


def add_session(
    db: sqlite_utils.Database,
    hashtag: str,
    start: str,
    end: str,
    *,
    hosts: Iterable[str] = (),
    title: str | None = None,
    source: str = "manual",
    tz: str | None = None,
) -> int:
    """Create (or, for an overlapping window of the same hashtag, take over)
    a session with an explicit window.  ``hosts`` replace the hosts given for
    the session taken over; without any, those are kept.  Returns its id;
    membership and Q&A follow in ``pipeline.analyse_archive(db, refresh_sessions=[id])``."""
    tag = clean_tag(hashtag)
    if end <= start:
        raise ChatArchiveError(f"The session must end after it starts ({start} .. {end})")
    chat = get_chat(db, tag)
    if not chat.explicit:
        chat.explicit = True
        if tz and not chat.timezone:
            chat.timezone = tz
        save_chat(db, chat)
    tz = tz or chat.timezone
    tag = display_tag(db, tag)
    overlapping = _overlapping(db, tag, start, end)
    keep = overlapping[0] if overlapping else None
    delete_sessions(db, [s.id for s in overlapping[1:]])
    host_list = [h.strip().lstrip("@") for h in hosts if h.strip().lstrip("@")]
    if not host_list and keep is not None:
        host_list = keep.configured_hosts  # the same command again without --host keeps them
    values = {
        "hashtag": tag, "title": title if title is not None else (keep.title if keep else None),
        "start": start, "end": end, "window_start": start, "window_end": end, "source": source,
        "timezone": tz, "hosts": json.dumps(host_list),
        "configured_hosts": json.dumps(host_list) if host_list else None,
    }
    return _write_session(db, keep, values, tz)


def remove_session(db: sqlite_utils.Database, id_or_slug: str) -> Session:
    s = get_session(db, id_or_slug)
    delete_sessions(db, [s.id])
    return s


# --------------------------------------------------------------------------
# Schedules

_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_EVERY = re.compile(r"^\s*([a-z]+)\s+(\d{1,2})(?::(\d{2}))?\s*(am|pm)?\s*$", re.I)


def parse_every(value: str) -> tuple[int, int, int]:
    """'wed 20:00', 'Wednesday 8pm', 'thu 12:30' -> (weekday, hour, minute)."""
    m = _EVERY.match(value or "")
    day = m and m.group(1).lower()
    wd = next((i for i, d in enumerate(_WEEKDAYS) if day and len(day) >= 3 and
               (["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][i]).startswith(day)), None)
    if not m or wd is None:
        raise ChatArchiveError(f"Invalid --every {value!r} (use a weekday and a time, e.g. \"wed 20:00\")")
    hour, minute = int(m.group(2)), int(m.group(3) or 0)
    if m.group(4):
        if not 1 <= hour <= 12:
            raise ChatArchiveError(f"Invalid --every {value!r}: hour must be 1-12 with am/pm")
        hour = hour % 12 + (12 if m.group(4).lower() == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ChatArchiveError(f"Invalid --every {value!r}: no such time of day")
    return wd, hour, minute


def occurrences(every: str, tz: str, duration: timedelta, first: str, last: str) -> list[tuple[date, str, str]]:
    """Every occurrence (local date, UTC start, UTC end) from the local day
    before ``first`` to the day after ``last``.  Each one is built in the
    zone's wall-clock time, so it stays at 20:00 local across DST changes."""
    wd, hour, minute = parse_every(every)
    zone = get_zone(tz)
    day = parse_iso(first).astimezone(zone).date() - timedelta(days=1)
    stop = parse_iso(last).astimezone(zone).date() + timedelta(days=1)
    day += timedelta(days=(wd - day.weekday()) % 7)
    out = []
    while day <= stop:
        start = datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(timezone.utc)
        out.append((day, iso_utc(start), iso_utc(start + duration)))
        day += timedelta(days=7)
    return out


def set_schedule(db: sqlite_utils.Database, hashtag: str, every: str, tz: str, duration: timedelta,
                 before: timedelta = timedelta(0), after: timedelta = timedelta(0),
                 hosts: Iterable[str] = (), title: str | None = None) -> Chat:
    """Remember a weekly schedule for a chat (replacing one on the same weekday and time)."""
    tag = clean_tag(hashtag)
    get_zone(tz)
    parse_every(every)
    if duration <= timedelta(0):
        raise ChatArchiveError("--duration must be positive")
    chat = get_chat(db, tag)
    chat.hashtag = display_tag(db, chat.hashtag)
    chat.explicit = True
    chat.timezone = tz
    if hosts:
        chat.hosts = [h.lstrip("@") for h in hosts]
    entry = {"every": every, "timezone": tz, "duration": duration.total_seconds(),
             "before": before.total_seconds(), "after": after.total_seconds(), "title": title}
    key = parse_every(every)
    chat.schedules = [s for s in chat.schedules if parse_every(s["every"]) != key] + [entry]
    save_chat(db, chat)
    return chat


def apply_schedules(db: sqlite_utils.Database, tag: str, tag_id: int | None,
                    span: tuple[str, str] | None = None) -> Changes:
    """Create or update one session per scheduled occurrence with posts.
    ``span`` limits the work to occurrences around new posts."""
    changes = Changes()
    chat = get_chat(db, tag)
    if not chat.schedules or tag_id is None:
        return changes
    if span is None:
        ms = MS_SQL.format("p.created_at")
        row = db.execute(
            f"""SELECT min({ms}), max({ms}) FROM post_hashtags ph
                JOIN posts p ON p.id = ph.post_id WHERE ph.hashtag_id = ? AND p.matched = 1
                AND {_USABLE}""",
            [tag_id, *usable_params()],
        ).fetchone()
        if row[0] is None:
            return changes
        span = (iso_ms(row[0]), iso_ms(row[1]))
    display = display_tag(db, tag)
    for sched in chat.schedules:
        checked = _checked_schedule(sched)
        if checked is None:
            continue  # (a hand-edited entry that is not a schedule: ignored, never fatal)
        every, sched_tz, duration, before, after = checked
        for _day, start, end in occurrences(every, sched_tz, duration, span[0], span[1]):
            w0 = iso_utc(parse_iso(start) - before)
            w1 = iso_utc(parse_iso(end) + after)
            if _count_tagged(db, tag_id, w0, w1) == 0:
                continue
            overlapping = _overlapping(db, tag, w0, w1)
            if any(s.source == "manual" for s in overlapping):
                continue  # an explicit window wins over the schedule
            keep = overlapping[0] if overlapping else None
            extra = [s.id for s in overlapping[1:] if s.source == "detected"]
            delete_sessions(db, extra)
            changes.deleted.update(extra)
            values = {
                "hashtag": display, "title": sched.get("title") or (keep.title if keep else None),
                "start": start, "end": end, "window_start": w0, "window_end": w1,
                "source": "scheduled", "timezone": sched_tz,
            }
            if keep and all(getattr(keep, k) == v for k, v in values.items()):
                continue
            sid = _write_session(db, keep, values, sched_tz)
            changes.changed.add(sid)
            if keep is None:
                changes.created.add(sid)
    return changes


def _checked_schedule(sched: dict[str, Any]) -> tuple[str, str, timedelta, timedelta, timedelta] | None:
    """A stored schedule's (every, zone, duration, before, after), None when it is not a valid one."""
    every, tz = sched.get("every"), sched.get("timezone")
    values = [sched.get(k) or 0 for k in ("duration", "before", "after")]
    if not isinstance(every, str) or zone_of(tz if isinstance(tz, str) else None) is None:
        return None
    if not all(isinstance(v, (int, float)) and 0 <= v <= 7 * 86400 for v in values) or not values[0]:
        return None
    try:
        parse_every(every)
    except ChatArchiveError:
        return None
    assert isinstance(tz, str)
    duration, before, after = (timedelta(seconds=v) for v in values)
    return every, tz, duration, before, after


# Posts whose time the analysis may use (see .times): the same condition
# in every query that places posts in time, so a full and an incremental
# analysis see the same posts.
_USABLE = f"{usable_sql('p.created_at')} AND julianday(p.created_at) IS NOT NULL"


def _count_tagged(db: sqlite_utils.Database, tag_id: int, lo: str, hi: str) -> int:
    return db.execute(
        f"""SELECT count(*) FROM posts p INDEXED BY idx_posts_created_at
            WHERE p.created_at BETWEEN ? AND ? AND p.matched = 1 AND {_USABLE}
              AND EXISTS (SELECT 1 FROM post_hashtags ph WHERE ph.post_id = p.id AND ph.hashtag_id = ?)""",
        [lo, hi, *usable_params(), tag_id],
    ).fetchone()[0]


# --------------------------------------------------------------------------
# Detection


@dataclass
class Group:
    """A candidate session: a run of a hashtag's matched posts with no silence
    longer than ``gap``, of at least ``min_posts`` posts.  ``first``/``last``
    index its posts in the hashtag's times (``Scan.times`` or the block's)."""

    tag_id: int
    start: str
    end: str
    count: int
    first: int = 0
    last: int = 0
    # Filled by scan_all_groups: posts of the group that also carry another
    # hashtag, and the group's span in the scan's post sequence.
    co: dict[int, int] = field(default_factory=dict)
    k_first: int = 0
    k_last: int = 0


def split_groups(rows: Iterable[tuple[str, int]], gap: float, min_posts: int,
                 tag_id: int = 0) -> list[Group]:
    """Split sorted (time, epoch ms) rows where the silence exceeds ``gap``
    seconds; keep groups of at least ``min_posts`` posts."""
    out: list[Group] = []
    first = last = ""
    last_ts = 0
    count = 0
    gap_ms = round(gap * 1000)
    k = -1
    for k, (t, ts) in enumerate(rows):
        if count and ts - last_ts > gap_ms:
            if count >= min_posts:
                out.append(Group(tag_id, first, last, count, k - count, k - 1))
            count = 0
        if not count:
            first = t
        last, last_ts = t, ts
        count += 1
    if count and count >= min_posts:
        out.append(Group(tag_id, first, last, count, k - count + 1, k))
    return out


class Scan:
    """Every hashtag's groups from one pass over the matched tagged posts in
    time order (full detection), with what subsumption needs: per group the
    posts shared with other hashtags, and per hashtag where its posts fall
    in the sequence (to count them in any window by bisection); and per
    hashtag the times of its posts (epoch ms), for the sessions' margins."""

    def __init__(self) -> None:
        self.groups: list[Group] = []
        self.positions: dict[int, array] = {}
        self.times: dict[int, array] = {}


def scan_all_groups(db: sqlite_utils.Database, tag_ids: set[int] | None,
                    settings: dict[int, tuple[float, int]], default: tuple[float, int]) -> Scan:
    conn = db.conn
    scan = Scan()
    where = ""
    params: list[Any] = usable_params()
    if tag_ids is not None:
        if not tag_ids:
            return scan
        where = f"AND ph.hashtag_id IN ({marks(len(tag_ids))})"
        params += sorted(tag_ids)
    # Epoch milliseconds (integers, as split_groups uses: both split alike)
    # come from SQLite (C) rather than a Python parse per post.
    cur = conn.execute(
        f"""SELECT p.rowid, ph.hashtag_id, p.created_at, {MS_SQL.format("p.created_at")}
            FROM posts p INDEXED BY idx_posts_created_at
            JOIN post_hashtags ph ON ph.post_id = p.id
            WHERE p.matched = 1 AND {usable_sql("p.created_at")} {where}
            ORDER BY p.created_at, p.rowid""",
        params,
    )
    # tag -> [first, last, last_ts, count, co, k_first, k_last, gap, min_posts, positions, tag, times]
    state: dict[int, list] = {}
    out = scan.groups
    prev_rowid = None
    k = -1
    # The tags of the current post: its first tag's state, and a list only
    # when it carries several (most posts carry one).
    first: list | None = None
    several: list[list] | None = None
    get = state.get
    for rowid, tag, t, ts in cur:
        if ts is None:
            continue  # not a date SQLite can read: no time window takes it
        if rowid != prev_rowid:
            if several is not None:  # the previous post carried several tags
                _count_shared(several)
                several = None
            first = None
            prev_rowid = rowid
            k += 1
        st = get(tag)
        if st is None:
            gap, min_posts = settings.get(tag, default)
            st = state[tag] = [t, t, ts, 0, {}, k, k, round(gap * 1000), min_posts, array("q"), tag, array("q")]
            scan.positions[tag] = st[9]
            scan.times[tag] = st[11]
        elif ts - st[2] > st[7]:
            if st[3] >= st[8]:
                n = len(st[11])
                out.append(Group(tag, st[0], st[1], st[3], n - st[3], n - 1, st[4], st[5], st[6]))
            st[0], st[3], st[4], st[5] = t, 0, {}, k
        st[1] = t
        st[2] = ts
        st[6] = k
        st[3] += 1
        st[9].append(k)
        st[11].append(ts)
        if first is None:
            first = st
        elif several is None:
            several = [first, st]
        else:
            several.append(st)
    if several is not None:
        _count_shared(several)
    for tag, st in state.items():
        if st[3] >= st[8]:
            n = len(st[11])
            out.append(Group(tag, st[0], st[1], st[3], n - st[3], n - 1, st[4], st[5], st[6]))
    out.sort(key=lambda g: (g.start, g.tag_id))
    return scan


def _count_shared(post_states: list[list]) -> None:
    """One post carried these tags: count it as shared by each pair."""
    for st in post_states:
        co = st[4]
        for other in post_states:
            if other is not st:
                co[other[10]] = co.get(other[10], 0) + 1


def drop_subsumed_scanned(db: sqlite_utils.Database, scan: Scan, keep_tags: set[int]) -> list[Group]:
    """drop_subsumed for a full scan: the counts come from the scan itself."""
    out = []
    names: dict[int, str] = {}

    def name(tag: int) -> str:
        if tag not in names:
            row = db.execute("SELECT lower(tag) FROM hashtags WHERE id = ?", [tag]).fetchone()
            names[tag] = row[0] if row else ""
        return names[tag]

    for g in scan.groups:
        subsumed = False
        if g.tag_id not in keep_tags:
            if g.count < MIN_SHARE * (g.k_last - g.k_first + 1):
                continue  # a side topic of a busier hour
            need = math.ceil(SUBSUME_SHARE * g.count)
            for other, shared in g.co.items():
                if shared < need:
                    continue
                pos = scan.positions.get(other, array("q"))
                total = bisect_right(pos, g.k_last) - bisect_left(pos, g.k_first)
                if total > g.count or (total == g.count and name(other) < name(g.tag_id)):
                    subsumed = True
                    break
        if not subsumed:
            out.append(g)
    return out


_TAGGED = """FROM posts p INDEXED BY idx_posts_created_at
           WHERE p.created_at {lo} ? AND p.created_at {hi} ? AND p.matched = 1 AND {usable}
             AND EXISTS (SELECT 1 FROM post_hashtags ph WHERE ph.post_id = p.id AND ph.hashtag_id = ?)"""


def _tagged(lo: str = ">=", hi: str = "<=") -> str:
    return _TAGGED.format(lo=lo, hi=hi, usable=usable_sql("p.created_at"))


def _tag_times(db: sqlite_utils.Database, tag_id: int, lo: str, hi: str) -> list[tuple[str, int]]:
    """(time, epoch ms) of a hashtag's matched posts in [lo, hi], in order."""
    return [(t, ms) for t, ms in db.execute(
        f"SELECT p.created_at, {MS_SQL.format('p.created_at')} {_tagged()} ORDER BY p.created_at",
        [lo, hi, *usable_params(), tag_id]) if ms is not None]


def _reach(db: sqlite_utils.Database, tag_id: int, t: str, reach_ms: int, before: bool) -> str | None:
    """The farthest tagged post within ``reach_ms`` of ``t`` on one side (a
    bounded range scan: rare hashtags never scan the whole archive)."""
    ms = to_ms(t)
    if ms is None:
        return None
    if before:
        lo, hi, agg, op_lo, op_hi = iso_ms(max(ms - reach_ms, MIN_MS)), t, "min", ">=", "<"
    else:
        lo, hi, agg, op_lo, op_hi = t, iso_ms(min(ms + reach_ms, MAX_MS)), "max", ">", "<="
    row = db.execute(
        f"SELECT {agg}(p.created_at) {_tagged(op_lo, op_hi)} AND julianday(p.created_at) IS NOT NULL",
        [lo, hi, *usable_params(), tag_id],
    ).fetchone()
    return row[0] if row else None


@dataclass
class Block:
    """The posts of one hashtag that incremental detection looks at again:
    its span, their times and its candidate groups."""

    lo: str
    hi: str
    rows: list[tuple[str, int]]
    groups: list[Group]


def window_groups(db: sqlite_utils.Database, tag: str, tag_id: int, lo: str, hi: str,
                  gap: float, min_posts: int, reach_ms: int | None = None) -> Block:
    """The groups of one hashtag around [lo, hi] (incremental detection): the
    range grows until both ends meet a silence longer than ``reach_ms``
    (:func:`.margins.reach`: no session's core, lead-in or tail crosses such
    a silence) and covers every detected session's window it touches."""
    reach_ms = round(gap * 1000) if reach_ms is None else reach_ms
    while True:
        grown = False
        for s in _session_rows(db, """WHERE hashtag = ? COLLATE NOCASE AND source = 'detected'
                                      AND coalesce(window_start, start) <= ? AND coalesce(window_end, "end") >= ?""",
                               [tag, hi, lo]):
            start, end = _window(s)
            if to_ms(start) is None or to_ms(end) is None:
                continue  # (an old row with an unreadable time: reconcile replaces it)
            if start < lo:
                lo, grown = start, True
            if end > hi:
                hi, grown = end, True
        while True:
            prev = _reach(db, tag_id, lo, reach_ms, before=True)
            if prev is None or prev >= lo:
                break
            lo, grown = prev, True
        while True:
            nxt = _reach(db, tag_id, hi, reach_ms, before=False)
            if nxt is None or nxt <= hi:
                break
            hi, grown = nxt, True
        if not grown:
            break
    rows = _tag_times(db, tag_id, lo, hi)
    return Block(lo, hi, rows, split_groups(rows, gap, min_posts, tag_id))


def drop_subsumed(db: sqlite_utils.Database, groups: list[Group], keep_tags: set[int]) -> list[Group]:
    """Drop a group when most of its posts also carry another hashtag that
    is used at least as often in the same window (``#edtech`` in ``#edchat``;
    of twin tags used on every post, the alphabetically first stays), or
    when its hashtag is on under a quarter of the window's tagged posts."""
    if len(groups) == 0:
        return groups
    names = dict(db.execute("SELECT id, lower(tag) FROM hashtags"
                            f" WHERE id IN ({marks(len({g.tag_id for g in groups}))})",
                            sorted({g.tag_id for g in groups})).fetchall())
    out = []
    for g in groups:
        if g.tag_id in keep_tags:
            out.append(g)
            continue
        in_window = db.execute(
            f"""SELECT count(*) FROM posts p INDEXED BY idx_posts_created_at
                WHERE p.created_at BETWEEN ? AND ? AND p.matched = 1 AND {_USABLE}
                  AND EXISTS (SELECT 1 FROM post_hashtags ph WHERE ph.post_id = p.id)""",
            [g.start, g.end, *usable_params()]).fetchone()[0]
        if g.count < MIN_SHARE * in_window:
            continue  # a side topic of a busier hour
        co = db.execute(
            f"""SELECT ph2.hashtag_id, count(*) FROM posts p INDEXED BY idx_posts_created_at
                JOIN post_hashtags ph ON ph.post_id = p.id AND ph.hashtag_id = ?
                JOIN post_hashtags ph2 ON ph2.post_id = p.id AND ph2.hashtag_id != ?
                WHERE p.created_at BETWEEN ? AND ? AND p.matched = 1 AND {_USABLE}
                GROUP BY ph2.hashtag_id HAVING count(*) >= ?""",
            [g.tag_id, g.tag_id, g.start, g.end, *usable_params(), math.ceil(SUBSUME_SHARE * g.count)],
        ).fetchall()
        subsumed = False
        for other, _ in co:
            total = _count_tagged(db, other, g.start, g.end)
            if total > g.count:
                subsumed = True
            elif total == g.count:
                if other not in names:
                    names[other] = db.execute("SELECT lower(tag) FROM hashtags WHERE id = ?", [other]).fetchone()[0]
                subsumed = names[other] < names[g.tag_id]
            if subsumed:
                break
        if not subsumed:
            out.append(g)
    return out


@dataclass(frozen=True)
class Detected:
    """A session as detection found it: its core (``start``/``end``, the
    session's time) and its window (lead-in and tail included)."""

    start: str
    end: str
    window_start: str
    window_end: str


def margins_of(chat: Chat) -> Margins:
    """How a chat's sessions are shaped (its settings, defaults filled in)."""
    return Margins(min_posts=chat.min_count, lead=round(chat.lead * 1000), tail=round(chat.tail * 1000),
                   zone=zone_of(chat.timezone))


def walls_of(db: sqlite_utils.Database, tag: str) -> Walls:
    """The windows of a hashtag's manual, scheduled and capture sessions."""
    windows = []
    for s in _session_rows(db, "WHERE hashtag = ? COLLATE NOCASE AND source != 'detected'", [tag]):
        w0, w1 = (to_ms(x) for x in _window(s))
        if w0 is not None and w1 is not None:
            windows.append((w0, w1))
    return Walls(windows)


def shape_groups(db: sqlite_utils.Database, tag: str, times: Sequence[int], groups: list[Group],
                 chat: Chat) -> list[Detected]:
    """The detected sessions of one hashtag from its candidate groups (see
    :mod:`.margins`); ``times`` are the epoch ms the groups index."""
    shaped: list[Shaped] = margins.shape(times, [(g.first, g.last) for g in groups], margins_of(chat),
                                         walls_of(db, tag))
    return [Detected(iso_ms(x.start), iso_ms(x.end), iso_ms(x.window_start), iso_ms(x.window_end))
            for x in shaped]


def reconcile(db: sqlite_utils.Database, tag: str, found: list[Detected], lo: str | None, hi: str | None,
              tz: str | None) -> Changes:
    """Make the detected sessions of ``tag`` within [lo, hi] (everything
    when None) match ``found``: a session whose core overlaps a found one
    (else whose window does) keeps its id and slug, the others found become
    sessions, detected sessions left over are deleted.  (Manual, scheduled
    and capture sessions are left alone: detection keeps out of their
    windows, :func:`shape_groups`.)"""
    changes = Changes()
    if lo is None:
        rows = _session_rows(db, "WHERE hashtag = ? COLLATE NOCASE ORDER BY id", [tag])
    else:
        rows = _overlapping(db, tag, lo, hi or lo)
    detected = [s for s in rows if s.source == "detected"]
    display = display_tag(db, tag)
    used: set[int] = set()
    match: dict[int, Session] = {}
    for span in (_time, _window):
        for i, d in enumerate(found):
            if i not in match:
                m = next((s for s in detected if s.id not in used
                          and _overlaps(*span(s), *span(d))), None)
                if m is not None:
                    used.add(m.id)
                    match[i] = m
    gone = [s.id for s in detected if s.id not in used]
    delete_sessions(db, gone)  # first: their slugs are free for the sessions found
    changes.deleted.update(gone)
    for i, d in enumerate(found):
        keep = match.get(i)
        values = {"hashtag": display, "start": d.start, "end": d.end, "window_start": d.window_start,
                  "window_end": d.window_end, "source": "detected", "timezone": tz}
        if keep is not None and all(getattr(keep, k) == v for k, v in values.items()) and \
                keep.slug == unique_slug(db, display, local_date(d.start, tz), keep.slug, keep.id):
            continue
        sid = _write_session(db, keep, values, tz)
        changes.changed.add(sid)
        if keep is None:
            changes.created.add(sid)
    return changes


# --------------------------------------------------------------------------
# Membership


def refresh_membership(db: sqlite_utils.Database, session_ids: set[int] | None, *,
                       threads: PostRewrite | None = None) -> set[int]:
    """Recompute session_posts for these sessions (all when None).

    ``threads``: the posts' conversations from a full threading run that are
    not yet written to the posts (``ThreadUpdate.pending``); for all sessions,
    the thread walks then start from the posts it marks as having replies
    instead of probing every member.

    Returns the sessions actually recomputed: also those sharing a
    conversation with them, since a post's thread membership follows its
    nearest tagged ancestor, which may have changed."""
    conn = db.conn
    conn.execute("DROP TABLE IF EXISTS temp._aff")
    conn.execute("CREATE TEMP TABLE _aff (id INTEGER PRIMARY KEY)")
    if session_ids is None:
        conn.execute("INSERT INTO _aff SELECT id FROM sessions")
        conn.execute("DELETE FROM session_posts")
    else:
        conn.executemany("INSERT OR IGNORE INTO _aff VALUES (?)", [(i,) for i in session_ids])
        # Conversations of the old members: their other sessions may gain or
        # lose thread posts too.
        conn.execute("DROP TABLE IF EXISTS temp._convs")
        conn.execute("CREATE TEMP TABLE _convs (id TEXT PRIMARY KEY)")
        conn.execute(
            """INSERT OR IGNORE INTO _convs SELECT p.conversation_id FROM _aff a
               CROSS JOIN session_posts sp ON sp.session_id = a.id CROSS JOIN posts p ON p.id = sp.post_id
               WHERE p.conversation_id IS NOT NULL"""
        )
        conn.execute("DELETE FROM session_posts WHERE session_id IN (SELECT id FROM _aff)")
    _insert_tagged(conn)
    if session_ids is not None:
        conn.execute(
            """INSERT OR IGNORE INTO _convs SELECT p.conversation_id FROM _aff a
               CROSS JOIN session_posts sp ON sp.session_id = a.id CROSS JOIN posts p ON p.id = sp.post_id
               WHERE p.conversation_id IS NOT NULL"""
        )
        more = [r[0] for r in conn.execute(
            """SELECT DISTINCT sp.session_id FROM _convs c
               CROSS JOIN posts p INDEXED BY idx_posts_conversation_id ON p.conversation_id = c.id
               CROSS JOIN session_posts sp ON sp.post_id = p.id
               WHERE sp.session_id NOT IN (SELECT id FROM _aff)""")]
        if more:
            conn.executemany("INSERT OR IGNORE INTO _aff VALUES (?)", [(i,) for i in more])
            conn.execute(f"DELETE FROM session_posts WHERE session_id IN ({marks(len(more))})", more)
            _insert_tagged(conn, more)
        conn.execute("DROP TABLE temp._convs")
    lead = f"-{int(ANCESTOR_LEAD.total_seconds())} seconds"
    not_tagged = "NOT EXISTS (SELECT 1 FROM session_posts x WHERE x.post_id = {0}.id AND x.via = 'tag')"
    # A full threading run marks the posts that have replies: the walks
    # start from those instead of probing every member.
    if session_ids is None and threads is not None and threads.conversations:
        up_seed = f"""
              SELECT s.id, q.id, strftime('%Y-%m-%dT%H:%M:%fZ', s.window_start, '{lead}'), s.window_end
              FROM {threads.table} k CROSS JOIN posts q ON q.rowid = k.rid
              CROSS JOIN posts p ON p.reply_to_id = q.id
              CROSS JOIN session_posts sp ON sp.post_id = p.id
              CROSS JOIN sessions s ON s.id = sp.session_id
              WHERE k.kids = 1 AND p.id != q.id AND sp.via = 'tag' AND {not_tagged.format('q')}"""
        down_seed = f"""
              SELECT sp.session_id, c.id FROM {threads.table} k CROSS JOIN posts p ON p.rowid = k.rid
              CROSS JOIN session_posts sp ON sp.post_id = p.id
              CROSS JOIN posts c ON c.reply_to_id = p.id
              WHERE k.kids = 1 AND c.id != p.id AND {not_tagged.format('c')}"""
    else:
        up_seed = f"""
              SELECT s.id, q.id, strftime('%Y-%m-%dT%H:%M:%fZ', s.window_start, '{lead}'), s.window_end
              FROM _aff a CROSS JOIN sessions s ON s.id = a.id
              CROSS JOIN session_posts sp ON sp.session_id = s.id CROSS JOIN posts p ON p.id = sp.post_id
              CROSS JOIN posts q ON q.id = p.reply_to_id
              WHERE p.reply_to_id != p.id AND {not_tagged.format('q')}"""
        down_seed = f"""
              SELECT sp.session_id, c.id FROM _aff a CROSS JOIN session_posts sp ON sp.session_id = a.id
              CROSS JOIN posts c ON c.reply_to_id = sp.post_id
              WHERE c.id != sp.post_id AND {not_tagged.format('c')}"""
    # Untagged parents posted during the session (or just before it).
    conn.execute(
        f"""WITH RECURSIVE up(session_id, post_id, lo, hi) AS (
              {up_seed}
              UNION
              SELECT up.session_id, q.reply_to_id, up.lo, up.hi FROM up JOIN posts q ON q.id = up.post_id
              WHERE q.reply_to_id IS NOT NULL AND q.reply_to_id != q.id
                AND q.created_at BETWEEN up.lo AND up.hi AND {not_tagged.format('q')}
            )
            INSERT OR IGNORE INTO session_posts (session_id, post_id, via)
            SELECT DISTINCT up.session_id, q.id, 'thread' FROM up JOIN posts q ON q.id = up.post_id
            WHERE q.created_at BETWEEN up.lo AND up.hi AND {not_tagged.format('q')}"""
    )
    # Replies into the session's threads, down to the next tagged post.
    # Seeds are the untagged children of members, so the walk (and its
    # de-duplication, which also stops cycles) holds only thread posts.
    conn.execute(
        f"""WITH RECURSIVE down(session_id, post_id) AS (
              {down_seed}
              UNION
              SELECT down.session_id, c.id FROM down JOIN posts c ON c.reply_to_id = down.post_id
              WHERE c.id != down.post_id AND {not_tagged.format('c')}
            )
            INSERT OR IGNORE INTO session_posts (session_id, post_id, via)
            SELECT session_id, post_id, 'thread' FROM down"""
    )
    done = {r[0] for r in conn.execute("SELECT id FROM _aff")}
    conn.execute("DROP TABLE temp._aff")
    return done


def _insert_tagged(conn: sqlite3.Connection, only: list[int] | None = None) -> None:
    """The tagged members of the sessions in refresh_membership's own temp._aff
    (or of ``only`` those)."""
    where = f"WHERE a.id IN ({marks(len(only))})" if only else ""
    conn.execute(
        f"""INSERT OR IGNORE INTO session_posts (session_id, post_id, via)
            SELECT s.id, p.id, 'tag'
            FROM _aff a CROSS JOIN sessions s ON s.id = a.id
            CROSS JOIN hashtags h ON h.tag = s.hashtag COLLATE NOCASE
            CROSS JOIN posts p INDEXED BY idx_posts_created_at
                 ON p.created_at BETWEEN s.window_start AND s.window_end
            CROSS JOIN post_hashtags ph ON ph.post_id = p.id AND ph.hashtag_id = h.id
            {where}""",
        only or [],
    )


# --------------------------------------------------------------------------
# Each session's members, read once for the steps after membership

# A member row: qa.QAPost's fields (so Q&A takes the rows as they are), then these.
MEMBER_ROWID = len(QAPost._fields)
MEMBER_PLATFORM = MEMBER_ROWID + 1
MEMBER_CONVERSATION = MEMBER_ROWID + 2
_MEMBERS_SQL = """
SELECT p.id, p.author_id, coalesce(p.author_handle, p.author_id), coalesce(p.text, ''),
       coalesce(p.created_at, ''), p.reply_to_id, p.quote_of_id, p.is_repost, p.rowid, p.platform, {conv}
FROM session_posts sp JOIN posts p ON p.id = sp.post_id
WHERE sp.session_id = ?
ORDER BY p.created_at, p.id
"""


def member_rows(db: sqlite_utils.Database, session_ids: Iterable[int], *,
                threads: PostRewrite | None = None) -> Iterator[tuple[int, list[tuple]]]:
    """(session id, its member posts by time then id) for each session in turn.

    Q&A, the session summary and the threads' session tally all look at
    every member, so the pipeline reads them once for all three.  Rows are
    plain tuples (see ``MEMBER_*``; building a record per post costs more than
    the rest of the read).  ``threads``: conversation ids not yet written to
    the posts (``ThreadUpdate.pending``) are read from there."""
    conn = db.conn
    select = _MEMBERS_SQL.format(conv=threads.conversation_sql("p") if threads is not None else "p.conversation_id")
    for sid in session_ids:
        yield sid, conn.execute(select, [sid]).fetchall()


@dataclass
class SessionSummary:
    """What a session's row says about its members (``sessions.post_count``,
    ``platforms``) and its hosts as Q&A found them."""

    posts: int
    platforms: list[str]
    hosts: list[str]


_platform_of = itemgetter(MEMBER_PLATFORM)


def summarise(rows: list[tuple], hosts: list[str]) -> SessionSummary:
    """The summary of one session from its :func:`member_rows`."""
    return SessionSummary(len(rows), sorted(p for p in set(map(_platform_of, rows)) if p), hosts)


def write_summaries(db: sqlite_utils.Database, summaries: dict[int, SessionSummary]) -> None:
    db.conn.executemany(
        "UPDATE sessions SET hosts = ?, post_count = ?, platforms = ? WHERE id = ?",
        [(json.dumps(s.hosts), s.posts, json.dumps(s.platforms), sid) for sid, s in summaries.items()],
    )


class ConversationTally:
    """Each thread's session in a full analysis: the session holding most of
    its posts (the earlier session on a tie), counted while every session's
    members are read anyway (:func:`member_rows`), then written by
    :meth:`write`.  (Incremental runs use :func:`refresh_conversation_sessions`.)"""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.threads = {r[0] for r in db.conn.execute("SELECT id FROM conversations")}
        self.start_of: dict[int, str | None] = dict(db.conn.execute("SELECT id, start FROM sessions").fetchall())
        self.best: dict[str, tuple[int, int, tuple[str, int]]] = {}  # thread -> (session, posts, rank)

    def add(self, session_id: int, conversation_ids: Iterable[str]) -> None:
        """The conversation ids of one session's members."""
        rank = (self.start_of.get(session_id) or "", session_id)
        best = self.best
        for conv, count in Counter(filter(self.threads.__contains__, conversation_ids)).items():
            b = best.get(conv)
            if b is None or count > b[1] or (count == b[1] and rank < b[2]):
                best[conv] = (session_id, count, rank)

    def write(self) -> None:
        """Set conversations.session_id of every thread (NULL for a thread in no session)."""
        conn = self.db.conn
        conn.execute("DROP TABLE IF EXISTS temp._cs")
        conn.execute("CREATE TEMP TABLE _cs (id TEXT PRIMARY KEY, sid INTEGER)")
        conn.executemany("INSERT INTO _cs VALUES (?, ?)", [(c, b[0]) for c, b in self.best.items()])
        conn.execute("""UPDATE conversations SET session_id = NULL
                        WHERE session_id IS NOT NULL AND id NOT IN (SELECT id FROM _cs)""")
        conn.execute("""UPDATE conversations SET session_id = _cs.sid FROM _cs
                        WHERE conversations.id = _cs.id AND conversations.session_id IS NOT _cs.sid""")
        conn.execute("DROP TABLE temp._cs")


def refresh_conversation_sessions(db: sqlite_utils.Database, session_ids: set[int] | None) -> None:
    """conversations.session_id: the session holding most of the thread's
    posts (the earlier session on a tie)."""
    conn = db.conn
    pick = """
        WITH c AS (SELECT p.conversation_id AS cid, sp.session_id AS sid, count(*) AS n
                   FROM {source} GROUP BY 1, 2),
             r AS (SELECT cid, sid, row_number() OVER (
                       PARTITION BY cid ORDER BY n DESC, (SELECT start FROM sessions WHERE id = sid), sid) AS k
                   FROM c)
        UPDATE conversations SET session_id = r.sid FROM r
        WHERE r.k = 1 AND conversations.id = r.cid AND conversations.session_id IS NOT r.sid"""
    if session_ids is None:
        conn.execute(
            """UPDATE conversations SET session_id = NULL WHERE session_id IS NOT NULL AND id NOT IN (
                   SELECT p.conversation_id FROM session_posts sp JOIN posts p ON p.id = sp.post_id
                   WHERE p.conversation_id IS NOT NULL)""")
        conn.execute(pick.format(source="session_posts sp JOIN posts p ON p.id = sp.post_id"))
        return
    ids = sorted(session_ids)
    conn.execute("DROP TABLE IF EXISTS temp._cs")
    conn.execute("CREATE TEMP TABLE _cs (id TEXT PRIMARY KEY)")
    for chunk in chunks(ids):
        m = marks(len(chunk))
        conn.execute(f"""INSERT OR IGNORE INTO _cs SELECT p.conversation_id FROM session_posts sp
                         JOIN posts p ON p.id = sp.post_id
                         WHERE sp.session_id IN ({m}) AND p.conversation_id IS NOT NULL""", chunk)
        conn.execute(f"INSERT OR IGNORE INTO _cs SELECT id FROM conversations WHERE session_id IN ({m})", chunk)
    conn.execute("UPDATE conversations SET session_id = NULL WHERE id IN (SELECT id FROM _cs)")
    conn.execute(pick.format(source="""_cs CROSS JOIN posts p INDEXED BY idx_posts_conversation_id
                                       ON p.conversation_id = _cs.id
                                       JOIN session_posts sp ON sp.post_id = p.id"""))
    conn.execute("DROP TABLE temp._cs")
