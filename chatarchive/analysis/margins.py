"""From one hashtag's groups of posts to detected sessions: each session's core, lead-in and tail.

Detection splits a hashtag's matched posts where the silence exceeds
``gap`` (:func:`.sessions.split_groups`, :func:`.sessions.scan_all_groups`);
a group of at least ``min_posts`` posts is a candidate.  :func:`shape` makes
the sessions out of them, and a plain gap splitter would get three things
wrong on real chats:

1. **The core is the busy stretch.**  A reminder 25 minutes before the
   hour, or stragglers 40 minutes after it, fall within ``gap`` of the chat
   and so inside its group; shown as the session's time it would say 12:35
   for a 1 PM chat.  So the group is cut where posts are more than
   :data:`PEEL_MIN` apart (or :data:`PEEL_FACTOR` times the group's mean
   spacing, for slow chats), and the core runs from the first to the last
   of those stretches that hold at least :data:`CORE_SHARE` of the posts of
   the busiest one; the posts outside stay members (lead-in or tail).  The
   core keeps at least half the group and ``min_posts`` posts (else it is
   the whole group).
2. **Satellites are not sessions.**  A group inside another group's lead-in
   or tail with under :data:`SATELLITE_SHARE` of its posts (a burst of
   greetings an hour early, replies to the morning announcement) is part of
   that session, not a session of its own.  Two sittings of similar size
   the same day stay two sessions.
3. **The lead-in and the tail.**  A session's window reaches from its core
   back by ``lead`` (the same morning's announcements, reminders, early
   answers), never into the previous local day of the chat's zone (when the
   zone is known), and forward by ``tail`` (late answers, wrap-ups).  Where
   the reach of two sessions meets, a post goes to the nearer core (the
   earlier one on a tie); a session's own group is always its own.  No
   window enters a manual or scheduled session's window (a "wall"), and a
   group overlapping one is that session's, not a candidate.

The window stored is the span of the hashtag's posts in those bounds (its
group at least): ``sessions.window_start/window_end``; the core is
``start``/``end``.  Everything here is pure and in integer epoch
milliseconds over the sorted times of one hashtag, so a full analysis (the
whole hashtag) and an incremental one (a block of it bounded by silences
longer than :func:`reach`) compute the same sessions.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timezone, tzinfo

PEEL_MIN = 10 * 60_000  # ms: an edge post this far from the next one is not the busy stretch
PEEL_FACTOR = 4.0  # ... or this many times the group's mean spacing, whichever is longer
PEEL_KEEP = 0.5  # the core keeps at least this share of its group
CORE_SHARE = 0.25  # a stretch with this share of the busiest stretch's posts is part of the core
SATELLITE_SHARE = 0.25  # a group with under this share of a neighbour's posts, in its reach, joins it


@dataclass(frozen=True)
class Margins:
    """How one hashtag's sessions are shaped (all durations in ms)."""

    min_posts: int
    lead: int
    tail: int
    zone: tzinfo | None = None  # the chat's zone: the lead-in stays within the core's local day

    def midnight(self, ms: int) -> int | None:
        """The start of the local day holding ``ms`` (None: no zone known)."""
        if self.zone is None:
            return None
        day = datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(self.zone).date()
        start = datetime.combine(day, time(0), tzinfo=self.zone)
        return round(start.timestamp() * 1000)


@dataclass(frozen=True)
class Shaped:
    """A detected session: its core and its window (epoch ms), and its group
    (indexes into the hashtag's times)."""

    start: int
    end: int
    window_start: int
    window_end: int
    first: int
    last: int

    @property
    def posts(self) -> int:
        """Posts of its own group (the core and the peeled edges)."""
        return self.last - self.first + 1


def reach(gap: int, margins: Margins) -> int:
    """A silence longer than this (ms) between two posts of a hashtag
    separates sessions that cannot affect each other (incremental detection
    recomputes the block between two such silences)."""
    return max(gap, margins.lead, margins.tail)


def peel(times: Sequence[int], first: int, last: int, min_posts: int) -> tuple[int, int]:
    """The core of the group ``times[first..last]``: the indexes of its first
    and last post in the busy stretches."""
    n = last - first + 1
    if n < 3:
        return first, last
    threshold = max(PEEL_MIN, PEEL_FACTOR * (times[last] - times[first]) / (n - 1))
    cuts = [k for k in range(first + 1, last + 1) if times[k] - times[k - 1] > threshold]
    if not cuts:
        return first, last
    bounds = [first, *cuts, last + 1]
    stretches = [(bounds[k], bounds[k + 1] - 1) for k in range(len(bounds) - 1)]
    busiest = max(b - a + 1 for a, b in stretches)
    core = [(a, b) for a, b in stretches if b - a + 1 >= CORE_SHARE * busiest]
    i, j = core[0][0], core[-1][1]
    if j - i + 1 < max(min_posts, math.ceil(PEEL_KEEP * n)):
        return first, last
    return i, j


class Walls:
    """The windows of a hashtag's manual and scheduled sessions, which no
    detected session's group or window may enter."""

    def __init__(self, windows: Sequence[tuple[int, int]] = ()):
        ws = sorted(windows)
        self.starts = [w0 for w0, _ in ws]
        self.max_end: list[int] = []  # the latest end among the first k+1 windows
        for _, w1 in ws:
            self.max_end.append(max(w1, self.max_end[-1]) if self.max_end else w1)

    def hit(self, a: int, b: int) -> bool:
        """Whether a window lies within or across [a, b]."""
        k = bisect_right(self.starts, b)
        return k > 0 and self.max_end[k - 1] >= a

    def before(self, a: int) -> int | None:
        """The end of the latest window starting before ``a`` (for a span
        starting at ``a`` that no window overlaps: the nearest wall before it)."""
        k = bisect_left(self.starts, a)
        return self.max_end[k - 1] if k > 0 else None

    def after(self, b: int) -> int | None:
        """The start of the first window starting after ``b``."""
        k = bisect_right(self.starts, b)
        return self.starts[k] if k < len(self.starts) else None


def shape(times: Sequence[int], groups: Sequence[tuple[int, int]], m: Margins,
          walls: Walls | None = None) -> list[Shaped]:
    """The sessions of one hashtag: ``times`` are its matched posts' times
    (sorted), ``groups`` the (first, last) indexes of its candidate groups in
    time order, ``walls`` the windows of its manual and scheduled sessions."""
    walls = walls or Walls()
    groups = [g for g in groups if not walls.hit(times[g[0]], times[g[1]])]
    cores = [peel(times, a, b, m.min_posts) for a, b in groups]
    sizes = [b - a + 1 for a, b in groups]

    def joins(k: int, n: int) -> bool:
        """Whether group k is a satellite of its neighbour n."""
        if sizes[k] >= SATELLITE_SHARE * sizes[n]:
            return False
        g0, g1 = times[groups[k][0]], times[groups[k][1]]
        c0, c1 = times[cores[n][0]], times[cores[n][1]]
        if n > k:  # k before n: in its lead-in
            day = m.midnight(c0)
            return c0 - g0 <= m.lead and (day is None or g0 >= day) and not walls.hit(g1, c0)
        return g1 - c1 <= m.tail and not walls.hit(c1, g0)

    kept = [k for k in range(len(groups))
            if not ((k > 0 and joins(k, k - 1)) or (k + 1 < len(groups) and joins(k, k + 1)))]
    out: list[Shaped] = []
    los, his = [], []
    for k in kept:
        (a, b), (i, j) = groups[k], cores[k]
        c0 = times[i]
        lo = c0 - m.lead
        day = m.midnight(c0)
        if day is not None:
            lo = max(lo, day)
        lo = min(lo, times[a])
        # the walls nearest the core on either side bound its reach
        wall = walls.before(times[a])
        if wall is not None:
            lo = max(lo, wall + 1)
        hi = max(times[j] + m.tail, times[b])
        wall = walls.after(times[b])
        if wall is not None:
            hi = min(hi, wall - 1)
        los.append(lo)
        his.append(hi)
    for n in range(1, len(kept)):
        p, c = kept[n - 1], kept[n]
        if his[n - 1] < los[n]:
            continue
        # both reach the posts between them: the nearer core takes each
        cut = (times[cores[p][1]] + times[cores[c][0]]) // 2
        cut = min(max(cut, los[n] - 1), his[n - 1])
        cut = min(max(cut, times[groups[p][1]]), times[groups[c][0]] - 1)
        his[n - 1], los[n] = cut, cut + 1
    for n, k in enumerate(kept):
        (a, b), (i, j) = groups[k], cores[k]
        first = min(a, bisect_left(times, los[n]))
        last = max(b, bisect_right(times, his[n]) - 1)
        out.append(Shaped(times[i], times[j], times[first], times[last], a, b))
    return out
