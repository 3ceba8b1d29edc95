"""Run the whole analysis (threads, sessions, membership, Q&A) after new posts arrive.

``analyse_archive(db)`` is called after every import (and capture) so a
user never sees stale sessions.  It is incremental: posts not analysed yet
(``posts.conversation_id IS NULL``) and posts a later sighting changed
(table ``analysis_dirty``) are the work list; only their conversations,
their hashtags' time windows and the sessions those touch are recomputed.
When most of the archive is new (the first run) it switches to full mode,
which reads the whole archive once with set-based SQL and compact arrays.

Everything runs in one transaction: an interrupted analysis leaves the
previous one intact.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import sqlite_utils

from ..errors import ChatArchiveError
from ..timeutil import get_zone
from . import qa, sessions, threads
from .sessions import DEFAULTS_ROW, Changes, get_chat, save_chat, settings_for

ANALYSIS_CACHE_KB = 128 * 1024


class _Transaction:
    def __init__(self, db: sqlite_utils.Database):
        self.conn = db.conn
        self.nested = self.conn.in_transaction

    def __enter__(self):
        self.conn.execute("SAVEPOINT analyse" if self.nested else "BEGIN")
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.nested:
            if exc_type:
                self.conn.execute("ROLLBACK TO analyse")
            self.conn.execute("RELEASE analyse")
        else:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _remember(db, tags: list[str] | None, *, gap, min_posts, tz, hosts, question_pattern,
              answer_pattern) -> list[str]:
    """Store the options the user gave, per hashtag (or as defaults)."""
    names = [sessions.clean_tag(t) for t in tags] if tags else [DEFAULTS_ROW]
    out = []
    for name in names:
        chat = get_chat(db, name)
        if name != DEFAULTS_ROW:
            chat.hashtag = sessions.display_tag(db, chat.hashtag)
            chat.explicit = True
        if gap is not None:
            chat.gap_seconds = int(gap.total_seconds())
        if min_posts is not None:
            chat.min_posts = min_posts
        if tz is not None:
            chat.timezone = tz
        if hosts:
            chat.hosts = [h.lstrip("@") for h in hosts]
        if question_pattern is not None:
            chat.question_pattern = question_pattern or None
        if answer_pattern is not None:
            chat.answer_pattern = answer_pattern or None
        save_chat(db, chat)
        out.append(chat.hashtag)
    return out if tags else []


def analyse_archive(
    db: sqlite_utils.Database,
    *,
    hashtags: Iterable[str] | None = None,
    gap: timedelta | None = None,
    min_posts: int | None = None,
    tz: str | None = None,
    hosts: Iterable[str] | None = None,
    question_pattern: str | None = None,
    answer_pattern: str | None = None,
    full: bool = False,
    redetect: bool = False,
    refresh_sessions: Iterable[int] | None = None,
    **_ignored: Any,
) -> dict[str, Any]:
    """Analyse what is new (or, with ``full``/``redetect``, everything).

    ``hashtags`` names chat hashtags (remembered, then always analysed) and
    re-detects their sessions; ``gap``/``min_posts``/``tz``/``hosts``/the
    patterns are remembered for those hashtags (for every hashtag when none
    is named).  ``refresh_sessions`` recomputes membership and Q&A of those
    sessions (after ``sessions add``).  Returns counts and a one-line
    ``summary``."""
    t0 = time.monotonic()
    tags = list(hashtags or [])
    if gap is not None and gap.total_seconds() <= 0:
        raise ChatArchiveError("--gap must be positive")
    if min_posts is not None and min_posts < 1:
        raise ChatArchiveError("--min-posts must be at least 1")
    if tz:
        get_zone(tz)
    qa.compile_pattern(question_pattern, "question")
    qa.compile_pattern(answer_pattern, "answer")
    options_given = any(v is not None for v in (gap, min_posts, tz, question_pattern, answer_pattern)) or bool(hosts)
    conn = db.conn
    # A bigger page cache while rewriting analysis columns of many posts
    # (the default spills dirty pages to disk again and again); restored after.
    # Temp tables and index builds stay in memory (tens of MB for a million posts).
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    temp_store = conn.execute("PRAGMA temp_store").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = {min(cache, -ANALYSIS_CACHE_KB) if cache < 0 else -ANALYSIS_CACHE_KB}")
    # (changing temp_store drops temp tables: only when the caller has none)
    switch_temp = not conn.in_transaction and temp_store != 2 and not conn.execute(
        "SELECT count(*) FROM sqlite_temp_master").fetchone()[0]
    if switch_temp:
        conn.execute("PRAGMA temp_store = MEMORY")
    try:
        with _Transaction(db):
            result = _analyse(db, tags, gap, min_posts, tz, hosts, question_pattern, answer_pattern, full,
                              redetect, refresh_sessions, options_given)
    finally:
        conn.execute(f"PRAGMA cache_size = {cache}")
        if switch_temp:
            conn.execute(f"PRAGMA temp_store = {temp_store}")
    th, changes, done, qa_totals = result
    return _summary(db, th, changes, done, qa_totals, full, time.monotonic() - t0)


def _analyse(db, tags, gap, min_posts, tz, hosts, question_pattern, answer_pattern, full, redetect,
             refresh_sessions, options_given):
    if tags or options_given:
        tags = _remember(db, tags, gap=gap, min_posts=min_posts, tz=tz, hosts=hosts,
                         question_pattern=question_pattern, answer_pattern=answer_pattern)
    redetect = redetect or bool(tags) or options_given
    th = threads.update_threads(db, full=full, defer=True)
    explicit = sessions.explicit_chats(db)
    chosen = tags or explicit or None  # None: every hashtag, guessing which are chats
    changes = Changes()
    wanted: set[int] = set(refresh_sessions or [])
    affected: set[int] | None = wanted
    if full or th.full or redetect:
        changes = _detect_full(db, chosen, guess=not (tags or explicit))
        affected = None if (full or th.full or not tags) else _sessions_of(db, tags) | changes.changed | wanted
    elif th.dirty_ids:
        changes, touched = _detect_incremental(db, th, chosen, guess=not explicit)
        affected = wanted | changes.changed | touched
    if th.full:
        affected = None  # the posts' new conversation ids wait in temp._conv for apply_qa
    if affected is None:
        sessions.refresh_membership(db, None)
        qa_totals = qa.apply_qa(db, None)
        sessions.set_conversation_sessions(db, qa_totals.pop("conversation_sessions"))
        done: set[int] | None = None
    elif affected:
        affected -= changes.deleted
        done = sessions.refresh_membership(db, affected)
        sessions.refresh_conversation_sessions(db, done)
        qa_totals = qa.apply_qa(db, done)
    else:
        done = set()
        qa_totals = {"questions": 0, "answers": 0}
    return th, changes, done, qa_totals


def _summary(db, th, changes, done, qa_totals, full, elapsed) -> dict[str, Any]:
    conn = db.conn
    total_sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    threads_n = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
    questions_n = conn.execute("SELECT count(*) FROM questions").fetchone()[0]
    answers_n = conn.execute("SELECT count(*) FROM posts WHERE answer_to_id IS NOT NULL").fetchone()[0]
    result = {
        "full": bool(full or th.full),
        "posts_threaded": th.posts,
        "new_or_changed_posts": len(th.dirty_ids) if not th.full else th.posts,
        "sessions": total_sessions,
        "sessions_created": len(changes.created),
        "sessions_updated": len(changes.changed - changes.created),
        "sessions_deleted": len(changes.deleted),
        "sessions_analysed": total_sessions if done is None else len(done),
        "threads": threads_n,
        "questions": questions_n,
        "answers": answers_n,
        "seconds": round(elapsed, 3),
    }
    parts = [f"{total_sessions:,} session{'s' if total_sessions != 1 else ''}"]
    news = []
    if changes.created:
        news.append(f"{len(changes.created)} new")
    if result["sessions_updated"]:
        news.append(f"{result['sessions_updated']} updated")
    if changes.deleted:
        news.append(f"{len(changes.deleted)} removed")
    if news:
        parts[0] += f" ({', '.join(news)})"
    parts.append(f"{threads_n:,} threads")
    parts.append(f"{questions_n:,} questions, {answers_n:,} answers")
    result["summary"] = "Analysis: " + "; ".join(parts) + f" ({elapsed:.1f} s)"
    result["qa"] = qa_totals
    return result


def _sessions_of(db, tags: list[str]) -> set[int]:
    out: set[int] = set()
    for t in tags:
        out.update(r[0] for r in db.execute("SELECT id FROM sessions WHERE hashtag = ? COLLATE NOCASE", [t]))
    return out


def _tag_names(db, ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(ids))
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        out.update(db.execute(f"SELECT id, tag FROM hashtags WHERE id IN ({','.join('?' * len(chunk))})", chunk))
    return out


def _detect_full(db: sqlite_utils.Database, chosen: list[str] | None, guess: bool) -> Changes:
    changes = Changes()
    if chosen is not None:
        ids = {t: sessions.hashtag_id(db, t) for t in chosen}
        tag_ids: set[int] | None = {i for i in ids.values() if i is not None}
    else:
        tag_ids = None
    # Schedules first: detection leaves their occurrences alone.
    sched_tags = [r[0] for r in db.execute("SELECT hashtag FROM chats WHERE schedules IS NOT NULL AND schedules != '[]'")]
    for t in sched_tags:
        if chosen is None or any(t.lower() == c.lower() for c in chosen):
            changes.merge(sessions.apply_schedules(db, t, sessions.hashtag_id(db, t)))
    default_chat = settings_for(db, DEFAULTS_ROW)
    default = (default_chat.gap, default_chat.min_count)
    per_tag: dict[int, tuple[float, int]] = {}
    tz_of: dict[int, str | None] = {}
    for t, explicit in db.execute("SELECT hashtag, explicit FROM chats WHERE hashtag != ?", [DEFAULTS_ROW]).fetchall():
        i = sessions.hashtag_id(db, t)
        if i is not None:
            c = settings_for(db, t)
            per_tag[i] = (c.gap, c.min_count)
            tz_of[i] = c.timezone
    scan = sessions.scan_all_groups(db, tag_ids, per_tag, default)
    groups = sessions.drop_subsumed_scanned(db, scan, keep_tags=set()) if guess else scan.groups
    del scan
    by_tag: dict[int, list] = {}
    for g in groups:
        by_tag.setdefault(g.tag_id, []).append(g)
    # Tags that had detected sessions must be reconciled too (to drop them).
    if tag_ids is None:
        stale = {r[0] for r in db.execute("SELECT DISTINCT h.id FROM sessions s JOIN hashtags h ON h.tag = s.hashtag COLLATE NOCASE "
                                          "WHERE s.source = 'detected'")}
        todo = set(by_tag) | stale
    else:
        todo = set(tag_ids)
    names = _tag_names(db, todo)
    for i in sorted(todo):
        name = names.get(i)
        if name is None:
            continue
        tz = tz_of.get(i, default_chat.timezone)
        changes.merge(sessions.reconcile(db, name, by_tag.get(i, []), None, None, tz))
    return changes


class _Windows:
    """Session windows per hashtag id, for "which sessions contain this
    tagged post" without a query per post."""

    def __init__(self, db: sqlite_utils.Database):
        self.by_tag: dict[int, tuple[list[str], list[tuple[str, str, int]], float]] = {}
        rows: dict[int, list[tuple[str, str, int]]] = {}
        for sid, w0, w1, tag_id in db.execute(
                """SELECT s.id, s.window_start, s.window_end, h.id FROM sessions s
                   JOIN hashtags h ON h.tag = s.hashtag COLLATE NOCASE
                   WHERE s.window_start IS NOT NULL AND s.window_end IS NOT NULL"""):
            rows.setdefault(tag_id, []).append((w0, w1, sid))
        for tag_id, ws in rows.items():
            ws.sort()
            longest = max(sessions.to_ts(w1) - sessions.to_ts(w0) for w0, w1, _ in ws)
            self.by_tag[tag_id] = ([w[0] for w in ws], ws, longest)

    def containing(self, tag_id: int, t: str) -> list[int]:
        entry = self.by_tag.get(tag_id)
        if entry is None:
            return []
        starts, ws, longest = entry
        earliest = sessions.from_ts(sessions.to_ts(t) - longest)
        out = []
        i = bisect_right(starts, t) - 1
        while i >= 0 and ws[i][0] >= earliest:
            if ws[i][1] >= t:
                out.append(ws[i][2])
            i -= 1
        return out


def _detect_incremental(db: sqlite_utils.Database, th: threads.ThreadUpdate, chosen: list[str] | None,
                        guess: bool) -> tuple[Changes, set[int]]:
    """Re-detect only around the new posts; return the changes and the other
    sessions they touch (same window, same conversations, old members)."""
    changes = Changes()
    touched: set[int] = set()
    spans: dict[int, list[str]] = {}
    dirty = th.dirty_ids
    chosen_ids = None
    if chosen is not None:
        chosen_ids = {i for i in (sessions.hashtag_id(db, t) for t in chosen) if i is not None}
    windows = _Windows(db)
    for i in range(0, len(dirty), 500):
        chunk = dirty[i : i + 500]
        m = ",".join("?" * len(chunk))
        for tag_id, t, matched in db.execute(
            f"""SELECT ph.hashtag_id, p.created_at, p.matched FROM posts p
                JOIN post_hashtags ph ON ph.post_id = p.id
                WHERE p.id IN ({m}) AND p.created_at IS NOT NULL""", chunk):
            # a tagged post inside an existing window changes that session
            touched.update(windows.containing(tag_id, t))
            if not matched or (chosen_ids is not None and tag_id not in chosen_ids):
                continue
            span = spans.setdefault(tag_id, [t, t])
            span[0], span[1] = min(span[0], t), max(span[1], t)
        # sessions the changed posts belonged to
        for (sid,) in db.execute(f"SELECT DISTINCT session_id FROM session_posts WHERE post_id IN ({m})", chunk):
            touched.add(sid)
    for sid, tag, s0, s1 in db.execute(
            "SELECT id, hashtag, start, \"end\" FROM sessions WHERE id IN (%s)" % ",".join("?" * len(touched)),
            sorted(touched)).fetchall() if touched else []:
        tag_id = sessions.hashtag_id(db, tag)
        if tag_id is not None and (chosen_ids is None or tag_id in chosen_ids):
            span = spans.setdefault(tag_id, [s0, s1])
            span[0], span[1] = min(span[0], s0), max(span[1], s1)
    names = _tag_names(db, spans)
    all_groups: list[tuple[int, str, str, list]] = []
    for tag_id, (lo, hi) in sorted(spans.items()):
        name = names[tag_id]
        chat = settings_for(db, name)
        if chat.schedules:
            changes.merge(sessions.apply_schedules(db, name, tag_id, (lo, hi)))
        lo2, hi2, groups = sessions.window_groups(db, name, tag_id, lo, hi, chat.gap, chat.min_count)
        all_groups.append((tag_id, lo2, hi2, groups))
    if guess:
        flat = [g for _, _, _, gs in all_groups for g in gs]
        kept = {id(g) for g in sessions.drop_subsumed(db, flat, keep_tags=set())}
        all_groups = [(t, lo, hi, [g for g in gs if id(g) in kept]) for t, lo, hi, gs in all_groups]
    for tag_id, lo, hi, groups in all_groups:
        name = names[tag_id]
        changes.merge(sessions.reconcile(db, name, groups, lo, hi, settings_for(db, name).timezone))
    # Sessions holding posts of the conversations the new posts joined.
    convs = sorted(th.conversations)
    for i in range(0, len(convs), 500):
        chunk = convs[i : i + 500]
        touched.update(r[0] for r in db.execute(
            f"""SELECT DISTINCT sp.session_id FROM posts p INDEXED BY idx_posts_conversation_id
                JOIN session_posts sp ON sp.post_id = p.id
                WHERE p.conversation_id IN ({','.join('?' * len(chunk))})""", chunk))
    touched -= changes.deleted
    return changes, touched
