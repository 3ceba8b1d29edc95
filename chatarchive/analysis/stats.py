"""Per-session and per-hashtag statistics (used by `show`, the recap site and Datasette).

The returned shapes are a contract that `show`, render.py, export.py and
serve.py rely on (keep keys stable); every count is computed from
the analysis tables, never stored twice:

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

import sqlite_utils

from ..archive.queries import get_session
from ..models import Session
from .sessions import to_ts

TOP = 10
BUSIEST = 5
MAX_MINUTES = 48 * 60  # per_minute covers at most the first two days of a window
_WEB = re.compile(r"^https?://", re.I)  # javascript:, data: … are never "shared links"
_POST_PERMALINK = re.compile(
    r"^https?://(?:(?:www|mobile)\.)?(?:twitter|x)\.com/[^/]+/status/\d+|^https?://bsky\.app/profile/[^/]+/post/",
    re.I,
)


def _minute(iso: str) -> str:
    return iso[:16]


def session_stats(db: sqlite_utils.Database, session_id_or_slug: str | int, *, top: int = TOP) -> dict[str, Any]:
    s = get_session(db, session_id_or_slug)
    sid = s.id
    cols = ["id", "author_id", "handle", "name", "avatar_url", "text", "url", "created_at", "reply_to_id",
            "matched", "is_repost", "likes", "reposts", "replies", "quotes"]
    posts = [
        dict(zip(cols, r))
        for r in db.execute(
            """SELECT p.id, p.author_id, coalesce(a.handle, p.author_handle, p.author_id),
                      coalesce(a.name, p.author_name), a.avatar_url, p.text, p.url, p.created_at,
                      p.reply_to_id, p.matched, p.is_repost, p.like_count, p.repost_count,
                      p.reply_count, p.quote_count
               FROM session_posts sp JOIN posts p ON p.id = sp.post_id
               LEFT JOIN authors a ON a.id = p.author_id
               WHERE sp.session_id = ? ORDER BY p.created_at, p.id""",
            [sid],
        )
    ]
    by_id = {p["id"]: p for p in posts}
    authors: dict[str, dict[str, Any]] = {}
    for p in posts:
        key = p["author_id"] or p["handle"]
        a = authors.get(key)
        if a is None:
            a = authors[key] = {"author_id": p["author_id"], "handle": p["handle"], "name": p["name"],
                                "avatar_url": p["avatar_url"], "posts": 0, "replies_received": 0,
                                "first_timer": True}
        a["posts"] += 1
    for p in posts:
        parent = by_id.get(p["reply_to_id"] or "")
        if parent is not None and parent["author_id"] != p["author_id"]:
            authors[parent["author_id"] or parent["handle"]]["replies_received"] += 1
    earlier = _earlier_authors(db, s, [a["author_id"] for a in authors.values() if a["author_id"]])
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
        "posts": len(posts),
        "matched_posts": sum(1 for p in posts if p["matched"]),
        "context_posts": sum(1 for p in posts if not p["matched"]),
        "participants": len(authors),
        "first_timers": by_handle(a for a in authors.values() if a["first_timer"]),
        "returning": by_handle(a for a in authors.values() if not a["first_timer"]),
        "replies": sum(1 for p in posts if p["reply_to_id"] and p["reply_to_id"] != p["id"]),
        "questions": _questions(db, sid),
        "links": _links(db, sid),
        "top_posts": _top_posts(posts, top),
        "top_participants": ranked[:top],
        **_per_minute(s, posts),
    }


def _earlier_authors(db, s: Session, author_ids: list[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(author_ids), 500):
        chunk = author_ids[i : i + 500]
        out.update(r[0] for r in db.execute(
            # Start from the earlier sessions (few) and walk their members;
            # starting from each author's posts checks every session per post.
            f"""SELECT DISTINCT p.author_id FROM sessions s
                CROSS JOIN session_posts sp ON sp.session_id = s.id
                CROSS JOIN posts p ON p.id = sp.post_id
                WHERE p.author_id IN ({','.join('?' * len(chunk))})
                  AND s.hashtag = ? COLLATE NOCASE AND (s.start < ? OR (s.start = ? AND s.id < ?))""",
            [*chunk, s.hashtag, s.start, s.start, s.id],
        ))
    return out


def _questions(db, sid: int) -> list[dict[str, Any]]:
    out = []
    for qid, number, post_id, text, created_at, handle in db.execute(
        """SELECT q.id, q.number, q.post_id, q.text, p.created_at,
                  coalesce(a.handle, p.author_handle, p.author_id)
           FROM questions q LEFT JOIN posts p ON p.id = q.post_id LEFT JOIN authors a ON a.id = p.author_id
           WHERE q.session_id = ? ORDER BY q.number""",
        [sid],
    ).fetchall():
        answers, first = db.execute(
            """SELECT count(*), min(CASE WHEN created_at >= ? THEN created_at END)
               FROM posts WHERE answer_to_id = ?""",
            [created_at or "", qid],
        ).fetchone()
        out.append({
            "id": qid, "number": number, "post_id": post_id, "text": text, "created_at": created_at,
            "author_handle": handle, "answers": answers,
            "first_answer_seconds": round(to_ts(first) - to_ts(created_at), 3) if first and created_at else None,
        })
    return out


def _links(db, sid: int) -> list[dict[str, Any]]:
    rows = db.execute(
        """SELECT l.url, count(DISTINCT p.id) FROM session_posts sp JOIN posts p ON p.id = sp.post_id
           JOIN post_links pl ON pl.post_id = p.id JOIN links l ON l.id = pl.link_id
           WHERE sp.session_id = ? AND p.is_repost = 0 GROUP BY l.url""",
        [sid],
    ).fetchall()
    urls = [u for u, _ in rows]
    own: set[str] = set()
    for i in range(0, len(urls), 500):
        chunk = urls[i : i + 500]
        own.update(r[0] for r in db.execute(f"SELECT url FROM posts WHERE url IN ({','.join('?' * len(chunk))})", chunk))
    counts: Counter = Counter()
    for url, n in rows:
        if url in own or _POST_PERMALINK.match(url) or not _WEB.match(url):
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


def hashtag_stats(db: sqlite_utils.Database, hashtag: str) -> dict[str, Any]:
    """Every session of a hashtag with posts, participants and first-timers
    (a count), and the regulars (handles seen in two or more sessions)."""
    tag = hashtag.lstrip("#")
    rows = db.execute(
        """SELECT id, slug, start, coalesce(post_count, 0) FROM sessions
           WHERE hashtag = ? COLLATE NOCASE ORDER BY start, id""",
        [tag],
    ).fetchall()
    members: dict[int, dict[str, str]] = {r[0]: {} for r in rows}
    for sid, author_id, handle in db.execute(
        """SELECT sp.session_id, p.author_id, coalesce(a.handle, p.author_handle, p.author_id)
           FROM sessions s JOIN session_posts sp ON sp.session_id = s.id JOIN posts p ON p.id = sp.post_id
           LEFT JOIN authors a ON a.id = p.author_id
           WHERE s.hashtag = ? COLLATE NOCASE GROUP BY sp.session_id, p.author_id""",
        [tag],
    ):
        members[sid][author_id or handle] = handle
    seen: Counter = Counter()
    handles: dict[str, str] = {}
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
    name = db.execute("SELECT hashtag FROM sessions WHERE hashtag = ? COLLATE NOCASE LIMIT 1", [tag]).fetchone()
    return {"hashtag": name[0] if name else tag, "sessions": sessions_out,
            "regulars": [{"handle": h, "sessions": n} for h, n in regulars]}
