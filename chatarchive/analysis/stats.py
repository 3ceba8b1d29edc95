"""Per-session and per-hashtag statistics (used by `show`, the recap site and the exports).

The returned shapes are a contract that `show` (and `show --json`), the
recap and the JSON export rely on (keep keys stable); every count is computed
from the analysis tables, never stored twice, read through ``archive.queries``:

* posts: the session's members, its rows in ``session_posts`` (tagged posts
  of the core, lead-in and tail; untagged replies into its threads and
  untagged parents posted during it), the same number as
  ``sessions.post_count`` (``Session.posts``), which every output shows;
* participants: distinct authors of the session's posts (reposts included);
  first-timers had no post in an earlier archived session of the same
  hashtag, returning people had one.  Both are None for the first archived
  session of a hashtag (the archive cannot know who came before it), and
  then so is every participant's ``first_timer``; a host of the session is
  never a first-timer (nor in ``first_timers``);
* replies: session posts that reply to another post;
* questions: with the number of answers and the seconds from the question
  to its first answer;
* links: expanded http(s) URLs, counted once per post (reposts and links
  to posts themselves left out);
* top posts by engagement (likes + reposts + replies + quotes, unknown = 0);
* per_minute: UTC minutes of the session's window, empty minutes included.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from ..archive import queries
from ..archive.queries import Connection, PostRow
from ..models import Session, handle_matches
from ..urls import is_web_url
from .times import seconds_between, to_ms

TOP = 10
BUSIEST = 5
MAX_MINUTES = 48 * 60  # per_minute covers at most the first two days of a window
_POST_PERMALINK = re.compile(
    r"^https?://(?:(?:www|mobile)\.)?(?:twitter|x)\.com/[^/]+/status/\d+|^https?://bsky\.app/profile/[^/]+/post/",
    re.I,
)


def _minute(iso: str) -> str:
    return iso[:16]


def session_stats(db: Connection, session_id_or_slug: str | int, *, top: int = TOP,
                  posts: list[PostRow] | None = None, withheld: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The statistics of one session (by slug or id; raises NotFoundError).
    ``posts``: the session's posts when the caller has read them already
    (``queries.session_posts``), so they are not read twice.  ``withheld``:
    for a published output, the reasons that leave posts out
    (``queries.published_sql``); ``posts`` must then be the published ones."""
    s = queries.get_session(db, session_id_or_slug)
    sid = s.id
    if posts is None:
        posts = queries.session_posts(db, sid, entities=False)
    rows = [_stat_row(r) for r in posts]
    by_id = {p["id"]: p for p in rows}
    authors: dict[str, dict[str, Any]] = {}
    for p in rows:
        key = p["author_id"] or p["handle"] or ""
        a = authors.get(key)
        if a is None:
            a = authors[key] = {"author_id": p["author_id"], "handle": p["handle"], "name": p["name"],
                                "avatar_url": p["avatar_url"], "posts": 0, "replies_received": 0,
                                "first_timer": True}
        a["posts"] += 1
    for p in rows:
        parent = by_id.get(p["reply_to_id"] or "")
        if parent is not None and parent["author_id"] != p["author_id"]:
            authors[parent["author_id"] or parent["handle"] or ""]["replies_received"] += 1
    first_timers: list[str] | None = None
    returning: list[str] | None = None
    if has_earlier_session(db, s):
        earlier = queries.earlier_authors(db, s, [a["author_id"] for a in authors.values() if a["author_id"]])
        for a in authors.values():
            came_before = a["author_id"] in earlier
            a["first_timer"] = not came_before and not is_host(s, a["handle"])
        first_timers = by_handle(a for a in authors.values() if a["first_timer"])
        returning = by_handle(a for a in authors.values() if a["author_id"] in earlier)
    else:
        for a in authors.values():
            a["first_timer"] = None
    ranked = sorted(authors.values(), key=lambda a: (-a["posts"], -a["replies_received"], (a["handle"] or "").lower()))

    return {
        "session": {
            "id": sid, "slug": s.slug, "hashtag": s.hashtag, "title": s.title, "start": s.start,
            "end": s.end, "timezone": s.timezone, "hosts": s.hosts, "source": s.source, "platforms": s.platforms,
        },
        "posts": len(rows),
        "matched_posts": sum(1 for p in rows if p["matched"]),
        "context_posts": sum(1 for p in rows if not p["matched"]),
        "participants": len(authors),
        "first_timers": first_timers,
        "returning": returning,
        "replies": sum(1 for p in rows if p["reply_to_id"] and p["reply_to_id"] != p["id"]),
        "questions": _questions(db, sid, withheld),
        "links": _links(db, sid, withheld),
        "top_posts": _top_posts(rows, top),
        "top_participants": ranked[:top],
        **_per_minute(s, rows),
    }


def by_handle(items: Any) -> list[str]:
    return sorted((a["handle"] or "" for a in items), key=str.lower)


def has_earlier_session(db: Connection, s: Session) -> bool:
    """Whether the hashtag has an archived session before this one (else
    who is new and who returns cannot be known)."""
    ordered = queries.hashtag_sessions(db, s.hashtag or "")  # by start, then id
    return bool(ordered) and ordered[0][0] != s.id


def is_host(s: Session, handle: str | None) -> bool:
    """Whether a handle is one of the session's hosts (on any platform)."""
    return any(handle_matches(handle, h) for h in [*s.hosts, *s.configured_hosts] if isinstance(h, str))


def _stat_row(r: PostRow) -> dict[str, Any]:
    """What the statistics use of a post: the author as the authors table
    names them first (coalesce(a.handle, p.author_handle, p.author_id))."""
    p, a = r.post, r.author
    handle = a.handle if a is not None and a.handle is not None else (
        p.author_handle if p.author_handle is not None else p.author_id)
    name = a.name if a is not None and a.name is not None else p.author_name
    return {"id": p.id, "author_id": p.author_id, "handle": handle, "name": name,
            "avatar_url": a.avatar_url if a is not None else None, "text": p.text, "url": p.url,
            "created_at": p.created_at, "reply_to_id": p.reply_to_id, "matched": p.matched,
            "is_repost": p.is_repost, "likes": p.like_count, "reposts": p.repost_count,
            "replies": p.reply_count, "quotes": p.quote_count}


def _questions(db: Connection, sid: int, withheld: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    return [
        {"id": qid, "number": number, "post_id": post_id, "text": text, "created_at": created_at,
         "author_handle": handle, "answers": answers,
         "first_answer_seconds": _rounded(seconds_between(created_at, first))}
        for qid, number, post_id, text, created_at, handle, answers, first in queries.question_answers(db, sid, withheld=withheld)
    ]


def _links(db: Connection, sid: int, withheld: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    rows = queries.session_links(db, sid, withheld=withheld)
    own = queries.post_urls(db, [u for u, _ in rows])
    counts: Counter = Counter()
    for url, n in rows:
        # javascript:, data: … are never "shared links" (the archive keeps only web links anyway)
        if url in own or _POST_PERMALINK.match(url) or not is_web_url(url):
            continue
        counts[url] += n
    return [{"url": u, "count": n} for u, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def count(value: Any) -> int:
    """A stored count as a number to add up: an integer (a float from an
    overflowing integer is cut to one), 0 for NULL or anything else."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value):
        return max(int(value), 0)
    return 0


def _engagement(p: dict[str, Any]) -> int:
    return sum(count(p[k]) for k in ("likes", "reposts", "replies", "quotes"))


def _top_posts(posts: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    originals = [p for p in posts if not p["is_repost"]]
    ranked = sorted(originals, key=lambda p: (-_engagement(p), _text(p["created_at"]), _text(p["id"])))
    return [
        {"id": p["id"], "author_handle": p["handle"], "text": p["text"], "url": p["url"],
         "created_at": p["created_at"], "engagement": _engagement(p)}
        for p in ranked[:top]
    ]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _per_minute(s: Session, posts: list[dict[str, Any]]) -> dict[str, Any]:
    ends = [x for x in (s.start, s.window_start, s.end, s.window_end) if isinstance(x, str) and to_ms(x) is not None]
    if not ends:  # (an old row with odd times: no timeline rather than a failure)
        return {"per_minute": [], "busiest_minutes": []}
    lo, hi = min(ends), max(ends)
    counts = Counter(_minute(t) for t in map(_text, (p["created_at"] for p in posts))
                     if to_ms(t) is not None and lo[:16] <= t[:16] <= hi[:16])
    t = datetime.fromisoformat(lo[:16]).replace(tzinfo=timezone.utc)
    stop = datetime.fromisoformat(hi[:16]).replace(tzinfo=timezone.utc)
    stop = min(stop, t + timedelta(minutes=MAX_MINUTES - 1))
    minutes: list[dict[str, Any]] = []
    while t <= stop:
        key = t.strftime("%Y-%m-%dT%H:%M")
        minutes.append({"minute": key, "posts": counts.get(key, 0)})
        t += timedelta(minutes=1)
    busiest = sorted((m for m in minutes if m["posts"]), key=lambda m: (-m["posts"], m["minute"]))[:BUSIEST]
    return {"per_minute": minutes, "busiest_minutes": busiest}


def hashtag_stats(db: Connection, hashtag: str, *, withheld_authors: Iterable[str] = ()) -> dict[str, Any]:
    """Every session of a hashtag with posts, participants and first-timers
    (a count: None for the first session, as in :func:`session_stats`; hosts
    are never counted), and the regulars (handles seen in two or more sessions).
    ``withheld_authors`` (``Publication.withheld_authors``): people a published
    output may not name, neither counted nor listed."""
    tag = hashtag.lstrip("#")
    rows = queries.hashtag_sessions(db, tag)
    by_id = {x.id: x for x in queries.sessions_by_ids(db, [r[0] for r in rows])}
    # keyed by author id (by handle for posts without one), as the sessions count people
    members: dict[int, dict[Any, Any]] = {r[0]: {} for r in rows}
    skip = set(withheld_authors)
    for sid, author_id, handle in queries.hashtag_participants(db, tag):
        if author_id not in skip:
            members[sid][author_id or handle] = handle
    seen: Counter = Counter()
    handles: dict[Any, Any] = {}
    sessions_out = []
    for n, (sid, slug, start, posts) in enumerate(rows):
        people = members[sid]
        first = [k for k in people if k not in seen and not is_host(by_id[sid], people[k])]
        sessions_out.append({"id": sid, "slug": slug, "start": start, "posts": posts,
                             "participants": len(people), "first_timers": len(first) if n else None})
        seen.update(people.keys())
        handles.update(people)
    regulars: list[tuple[str, int]] = sorted(
        ((handles[k] or "", n) for k, n in seen.items() if n > 1), key=lambda x: (-x[1], x[0].lower()))
    return {"hashtag": queries.hashtag_spelling(db, tag) or tag, "sessions": sessions_out,
            "regulars": [{"handle": h, "sessions": n} for h, n in regulars]}
