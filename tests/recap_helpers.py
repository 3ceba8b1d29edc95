"""Test archives for the recap/export tests.

``recap_archive(path)`` imports tests/fixtures/recap/*.jsonl and runs the
analysis.  Until the analysis modules (sessions.py, stats.py) exist, a small
stand-in fills the analysis tables directly (sessions, session_posts,
questions, conversations, posts.question_id/answer_to_id/conversation_id)
and provides ``stats.session_stats``/``hashtag_stats`` per the contract in
docs/HELPERS.md, so the renderer can be built and tested against it.
"""

from __future__ import annotations

import json
import re
import sys
import types
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from chatarchive.errors import NotFoundError
from chatarchive.importer import import_files
from chatarchive.store import open_db

RECAP_FIXTURES = Path(__file__).parent / "fixtures" / "recap"
CHAT = RECAP_FIXTURES / "recapchat.jsonl"
HOSTILE = RECAP_FIXTURES / "hostile.jsonl"
ZONE = "America/New_York"


def real_analysis_available() -> bool:
    import chatarchive

    pkg = Path(chatarchive.__file__).parent
    return (pkg / "stats.py").is_file() and (pkg / "sessions.py").is_file()


def recap_archive(path: Path, files=(CHAT,), *, hosts=("chathost",)):
    """A fresh analysed archive at ``path`` built from our fixtures."""
    db = open_db(path)
    results = import_files(db, [str(f) for f in files])
    assert all(r.error is None for r in results), results
    analyse(db, hosts=hosts)
    return db


def analyse(db, hosts=("chathost",)) -> None:
    if real_analysis_available():
        from chatarchive.analyse import analyse_archive

        analyse_archive(db)
        if db.execute("select count(*) from sessions").fetchone()[0]:
            db.execute("update sessions set timezone = ? where timezone is null", [ZONE])
            return
    install_standins()
    fake_analysis(db, hosts)


# --------------------------------------------------------------------------
# Stand-in analysis (only used while the real one is missing)

Q_RE = re.compile(r"^(?:@\w+\s+)*(?:Q|Question\s*)(\d+)\s*[:.)\-]", re.I)
A_RE = re.compile(r"^(?:@\w+\s+)*(?:Late to Q\d+ but )?A\s?(\d+)[a-z]?\b", re.I)


def fake_analysis(db, hosts=("chathost",)) -> None:
    c = db.conn
    c.execute("BEGIN")
    for t in ("session_posts", "questions", "conversations", "sessions"):
        c.execute(f"DELETE FROM {t}")
    c.execute("UPDATE posts SET question_id = NULL, answer_to_id = NULL, conversation_id = NULL")
    rows = c.execute(
        """SELECT p.id, p.created_at, p.text, p.author_handle, p.reply_to_id, p.quote_of_id, p.is_repost
           FROM posts p WHERE p.matched = 1 ORDER BY p.created_at"""
    ).fetchall()
    groups: list[list] = []
    last = None
    for r in rows:
        t = _dt(r[1])
        if last is None or t - last > timedelta(minutes=45):
            groups.append([])
        groups[-1].append(r)
        last = t
    zone = ZoneInfo(ZONE)
    parent = dict(c.execute("SELECT id, reply_to_id FROM posts").fetchall())
    for g in groups:
        start, end = g[0][1], g[-1][1]
        slug = "recapchat-" + _dt(start).astimezone(zone).strftime("%Y-%m-%d")
        sid = c.execute(
            """INSERT INTO sessions (slug, hashtag, title, start, "end", hosts, source, timezone, platforms, post_count)
               VALUES (?, 'RecapChat', NULL, ?, ?, ?, 'detected', ?, '["x"]', ?)""",
            (slug, start, end, json.dumps(list(hosts)), ZONE, len(g)),
        ).lastrowid
        ids = {r[0] for r in g}
        # context posts (reply parents) and replies into the session's threads
        for r in list(g):
            p = r[4]
            while p and p not in ids and p in parent:
                ids.add(p)
                p = parent[p]
        c.executemany("INSERT INTO session_posts (session_id, post_id) VALUES (?, ?)", [(sid, i) for i in ids])
        qids: dict[int, int] = {}
        qposts: dict[str, int] = {}
        for r in g:
            m = Q_RE.match(r[2] or "")
            if m and r[3] in hosts and not r[6] and int(m.group(1)) not in qids:
                qid = c.execute(
                    "INSERT INTO questions (session_id, number, post_id, text) VALUES (?, ?, ?, ?)",
                    (sid, int(m.group(1)), r[0], r[2]),
                ).lastrowid
                qids[int(m.group(1))] = qid
                qposts[r[0]] = qid
                c.execute("UPDATE posts SET question_id = ? WHERE id = ?", (qid, r[0]))
        for r in g:
            if r[6] or r[0] in qposts:
                continue
            m = A_RE.match(r[2] or "")
            qid = qids.get(int(m.group(1))) if m else None
            if qid is None:
                qid = qposts.get(r[4]) or qposts.get(r[5])
            if qid:
                c.execute("UPDATE posts SET answer_to_id = ? WHERE id = ?", (qid, r[0]))
        # conversations: root = earliest ancestor present
        convs: dict[str, list[str]] = defaultdict(list)
        for i in ids:
            root, seen = i, {i}
            while parent.get(root) and parent[root] in parent and parent[root] not in seen:
                root = parent[root]
                seen.add(root)
            convs[root].append(i)
        for root, members in convs.items():
            c.executemany("UPDATE posts SET conversation_id = ? WHERE id = ?", [(root, m) for m in members])
            info = c.execute(
                f"""SELECT min(created_at), max(created_at), count(distinct author_id) FROM posts
                    WHERE id IN ({','.join('?' * len(members))})""",
                members,
            ).fetchone()
            c.execute(
                "INSERT OR REPLACE INTO conversations (id, session_id, size, depth, participants, started, ended) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (root, sid, len(members), _depth(members, parent), info[2], info[0], info[1]),
            )
    c.execute("COMMIT")


def _depth(members, parent) -> int:
    best = 0
    mset = set(members)
    for m in members:
        d, p = 0, parent.get(m)
        while p in mset and d < 10000:
            d, p = d + 1, parent.get(p)
        best = max(best, d)
    return best


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _get_session(db, id_or_slug):
    row = db.execute(
        "SELECT * FROM sessions WHERE slug = ? OR CAST(id AS TEXT) = ?", [str(id_or_slug), str(id_or_slug)]
    ).fetchone()
    if row is None:
        raise NotFoundError(f"No session {id_or_slug!r}")
    cols = [d[0] for d in db.execute("SELECT * FROM sessions LIMIT 0").description]
    return dict(zip(cols, row))


def _session_stats(db, id_or_slug) -> dict:
    s = _get_session(db, id_or_slug)
    sid = s["id"]
    posts = [
        dict(zip(("id", "author_id", "handle", "name", "avatar", "text", "url", "created_at", "reply_to_id",
                  "matched", "likes", "reposts", "replies", "quotes"), r))
        for r in db.execute(
            """SELECT p.id, p.author_id, p.author_handle, p.author_name, a.avatar_url, p.text, p.url,
                      p.created_at, p.reply_to_id, p.matched, p.like_count, p.repost_count, p.reply_count,
                      p.quote_count
               FROM session_posts sp JOIN posts p ON p.id = sp.post_id LEFT JOIN authors a ON a.id = p.author_id
               WHERE sp.session_id = ? ORDER BY p.created_at""",
            [sid],
        )
    ]
    earlier = {
        r[0]
        for r in db.execute(
            """SELECT DISTINCT p.author_id FROM sessions s JOIN session_posts sp ON sp.session_id = s.id
               JOIN posts p ON p.id = sp.post_id WHERE s.hashtag = ? AND s.start < ?""",
            [s["hashtag"], s["start"]],
        )
    }
    by_author: dict[str, dict] = {}
    author_of = {p["id"]: p["author_id"] for p in posts}
    for p in posts:
        a = by_author.setdefault(p["author_id"], {
            "author_id": p["author_id"], "handle": p["handle"], "name": p["name"], "avatar_url": p["avatar"],
            "posts": 0, "replies_received": 0, "first_timer": p["author_id"] not in earlier})
        a["posts"] += 1
        if p["reply_to_id"] in author_of:
            by_author[author_of[p["reply_to_id"]]]["replies_received"] += 1 if author_of[p["reply_to_id"]] in by_author else 0
    questions = []
    for q in db.execute("SELECT id, number, post_id, text FROM questions WHERE session_id = ? ORDER BY number", [sid]):
        qp = next((p for p in posts if p["id"] == q[2]), None)
        answers = db.execute("SELECT min(created_at), count(*) FROM posts WHERE answer_to_id = ?", [q[0]]).fetchone()
        questions.append({
            "id": q[0], "number": q[1], "post_id": q[2], "text": q[3], "created_at": qp["created_at"] if qp else None,
            "author_handle": qp["handle"] if qp else None, "answers": answers[1],
            "first_answer_seconds": (_dt(answers[0]) - _dt(qp["created_at"])).total_seconds() if answers[0] and qp else None,
        })
    links = Counter(
        r[0] for r in db.execute(
            """SELECT l.url FROM session_posts sp JOIN post_links pl ON pl.post_id = sp.post_id
               JOIN links l ON l.id = pl.link_id WHERE sp.session_id = ?""", [sid])
    )
    per: Counter = Counter(p["created_at"][:16] for p in posts if p["matched"])
    minutes = []
    if per:
        t, stop = _dt(min(per) + ":00Z"), _dt(max(per) + ":00Z")
        while t <= stop:
            k = t.strftime("%Y-%m-%dT%H:%M")
            minutes.append({"minute": k, "posts": per.get(k, 0)})
            t += timedelta(minutes=1)
    eng = lambda p: sum(p[k] or 0 for k in ("likes", "reposts", "replies", "quotes"))  # noqa: E731
    parts = sorted(by_author.values(), key=lambda a: -a["posts"])
    return {
        "session": {"id": sid, "slug": s["slug"], "hashtag": s["hashtag"], "title": s["title"], "start": s["start"],
                    "end": s["end"], "timezone": s["timezone"], "hosts": json.loads(s["hosts"] or "[]"),
                    "source": s["source"], "platforms": json.loads(s["platforms"] or "[]")},
        "posts": len(posts), "matched_posts": sum(1 for p in posts if p["matched"]),
        "context_posts": sum(1 for p in posts if not p["matched"]), "participants": len(by_author),
        "first_timers": [a["handle"] for a in parts if a["first_timer"]],
        "returning": [a["handle"] for a in parts if not a["first_timer"]],
        "replies": sum(1 for p in posts if p["reply_to_id"]),
        "questions": questions,
        "links": [{"url": u, "count": n} for u, n in links.most_common()],
        "top_posts": [{"id": p["id"], "author_handle": p["handle"], "text": p["text"], "url": p["url"],
                       "created_at": p["created_at"], "engagement": eng(p)}
                      for p in sorted(posts, key=lambda p: -eng(p))[:5]],
        "top_participants": parts[:10],
        "per_minute": minutes,
        "busiest_minutes": sorted(minutes, key=lambda m: -m["posts"])[:5],
    }


def _hashtag_stats(db, hashtag) -> dict:
    rows = db.execute("SELECT slug FROM sessions WHERE hashtag = ? COLLATE NOCASE ORDER BY start", [hashtag]).fetchall()
    sessions, seen = [], Counter()
    for (slug,) in rows:
        st = _session_stats(db, slug)
        sessions.append({"id": st["session"]["id"], "slug": slug, "start": st["session"]["start"],
                         "posts": st["posts"], "participants": st["participants"],
                         "first_timers": len(st["first_timers"])})
        seen.update(set(st["first_timers"]) | set(st["returning"]))
    return {"hashtag": hashtag, "sessions": sessions,
            "regulars": [{"handle": h, "sessions": n} for h, n in seen.most_common() if n > 1]}


def install_standins() -> None:
    import chatarchive

    pkg = Path(chatarchive.__file__).parent
    if not (pkg / "stats.py").is_file() and "chatarchive.stats" not in sys.modules:
        stats = types.ModuleType("chatarchive.stats")
        stats.session_stats = _session_stats
        stats.hashtag_stats = _hashtag_stats
        sys.modules["chatarchive.stats"] = stats
        chatarchive.stats = stats
    if not (pkg / "sessions.py").is_file() and "chatarchive.sessions" not in sys.modules:
        sessions = types.ModuleType("chatarchive.sessions")
        sessions.get_session = _get_session
        sys.modules["chatarchive.sessions"] = sessions
        chatarchive.sessions = sessions
