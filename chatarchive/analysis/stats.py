"""Per-session and per-hashtag statistics (used by `show`, the recap site and the exports).

The returned shapes are a contract that `show` (and `show --json`), the
recap and the JSON export rely on (keep keys stable); every count is computed
from the analysis tables, never stored twice, read through ``archive.queries``:

* participants: distinct authors of the session's posts (reposts included);
  first-timers had no post in an earlier session of the same hashtag;
* replies: session posts that reply to another post;
* questions: with the number of answers and the seconds from the question
  to its first answer;
* links: expanded http(s) URLs, counted once per post (reposts and links
  to posts themselves left out);
* top posts by engagement (likes + reposts + replies + quotes, unknown = 0);
* per_minute: UTC minutes of the session's window, empty minutes included.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from ..archive import queries
from ..archive.queries import Connection, PostRow
from ..models import Session
from ..safety import is_web_url
from .sessions import to_ts

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
                  posts: list[PostRow] | None = None) -> dict[str, Any]:
    """The statistics of one session (by slug or id; raises NotFoundError).
    ``posts``: the session's posts when the caller has read them already
    (``queries.session_posts``), so they are not read twice."""
    s = queries.get_session(db, session_id_or_slug)
    sid = s.id
    if posts is None:
        posts = queries.session_posts(db, sid, entities=False)
    rows = [_stat_row(r) for r in posts]
    by_id = {p["id"]: p for p in rows}
    authors: dict[str, dict[str, Any]] = {}
    for p in rows:
        key = p["author_id"] or p["handle"]
        a = authors.get(key)
        if a is None:
            a = authors[key] = {"author_id": p["author_id"], "handle": p["handle"], "name": p["name"],
                                "avatar_url": p["avatar_url"], "posts": 0, "replies_received": 0,
                                "first_timer": True}
        a["posts"] += 1
    for p in rows:
        parent = by_id.get(p["reply_to_id"] or "")
        if parent is not None and parent["author_id"] != p["author_id"]:
            authors[parent["author_id"] or parent["handle"]]["replies_received"] += 1
    earlier = queries.earlier_authors(db, s, [a["author_id"] for a in authors.values() if a["author_id"]])
    for a in authors.values():
        a["first_timer"] = a["author_id"] not in earlier
    ranked = sorted(authors.values(), key=lambda a: (-a["posts"], -a["replies_received"], a["handle"].lower()))

    def by_handle(items):
        return sorted((a["handle"] for a in items), key=str.lower)

    return {
        "session": {
            "id": sid, "slug": s.slug, "hashtag": s.hashtag, "title": s.title, "start": s.start,
            "end": s.end, "timezone": s.timezone, "hosts": s.hosts, "source": s.source, "platforms": s.platforms,
        },
        "posts": len(rows),
        "matched_posts": sum(1 for p in rows if p["matched"]),
        "context_posts": sum(1 for p in rows if not p["matched"]),
        "participants": len(authors),
        "first_timers": by_handle(a for a in authors.values() if a["first_timer"]),
        "returning": by_handle(a for a in authors.values() if not a["first_timer"]),
        "replies": sum(1 for p in rows if p["reply_to_id"] and p["reply_to_id"] != p["id"]),
        "questions": _questions(db, sid),
        "links": _links(db, sid),
        "top_posts": _top_posts(rows, top),
        "top_participants": ranked[:top],
        **_per_minute(s, rows),
    }


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


def _questions(db: Connection, sid: int) -> list[dict[str, Any]]:
    return [
        {"id": qid, "number": number, "post_id": post_id, "text": text, "created_at": created_at,
         "author_handle": handle, "answers": answers,
         "first_answer_seconds": round(to_ts(first) - to_ts(created_at), 3) if first and created_at else None}
        for qid, number, post_id, text, created_at, handle, answers, first in queries.question_answers(db, sid)
    ]


def _links(db: Connection, sid: int) -> list[dict[str, Any]]:
    rows = queries.session_links(db, sid)
    own = queries.post_urls(db, [u for u, _ in rows])
    counts: Counter = Counter()
    for url, n in rows:
        # javascript:, data: … are never "shared links" (the archive keeps only web links anyway)
        if url in own or _POST_PERMALINK.match(url) or not is_web_url(url):
            continue
        counts[url] += n
    return [{"url": u, "count": n} for u, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _engagement(p: dict[str, Any]) -> int:
    return sum(p[k] or 0 for k in ("likes", "reposts", "replies", "quotes"))


def _top_posts(posts: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    originals = [p for p in posts if not p["is_repost"]]
    ranked = sorted(originals, key=lambda p: (-_engagement(p), p["created_at"] or "", p["id"]))
    return [
        {"id": p["id"], "author_handle": p["handle"], "text": p["text"], "url": p["url"],
         "created_at": p["created_at"], "engagement": _engagement(p)}
        for p in ranked[:top]
    ]


def _per_minute(s: Session, posts: list[dict[str, Any]]) -> dict[str, Any]:
    lo = min(x for x in (s.start, s.window_start) if x) if (s.start or s.window_start) else None
    hi = max(x for x in (s.end, s.window_end) if x) if (s.end or s.window_end) else None
    if lo is None or hi is None:
        return {"per_minute": [], "busiest_minutes": []}
    counts = Counter(_minute(p["created_at"]) for p in posts if p["created_at"] and lo[:16] <= p["created_at"][:16] <= hi[:16])
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


def hashtag_stats(db: Connection, hashtag: str) -> dict[str, Any]:
    """Every session of a hashtag with posts, participants and first-timers
    (a count), and the regulars (handles seen in two or more sessions)."""
    tag = hashtag.lstrip("#")
    rows = queries.hashtag_sessions(db, tag)
    # keyed by author id (by handle for posts without one), as the sessions count people
    members: dict[int, dict[Any, Any]] = {r[0]: {} for r in rows}
    for sid, author_id, handle in queries.hashtag_participants(db, tag):
        members[sid][author_id or handle] = handle
    seen: Counter = Counter()
    handles: dict[Any, Any] = {}
    sessions_out = []
    for sid, slug, start, posts in rows:
        people = members[sid]
        first = [k for k in people if k not in seen]
        sessions_out.append({"id": sid, "slug": slug, "start": start, "posts": posts,
                             "participants": len(people), "first_timers": len(first)})
        seen.update(people.keys())
        handles.update(people)
    regulars: list[tuple[str, int]] = sorted(
        ((handles[k], n) for k, n in seen.items() if n > 1), key=lambda x: (-x[1], x[0].lower()))
    return {"hashtag": queries.hashtag_spelling(db, tag) or tag, "sessions": sessions_out,
            "regulars": [{"handle": h, "sessions": n} for h, n in regulars]}
