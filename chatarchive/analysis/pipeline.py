"""Run the whole analysis (threads, sessions, membership, Q&A) after new posts arrive.

``analyse_archive(db)`` is called after every import (and capture) so a
user never sees stale sessions.  It is incremental: posts not analysed yet
(``posts.conversation_id IS NULL``) and posts a later sighting changed
(table ``analysis_dirty``) are the work list; only their conversations,
their hashtags' time windows and the sessions those touch are recomputed.
When most of the archive is new (the first run) it switches to full mode,
which reads the whole archive once with set-based SQL and compact arrays.

The steps, and what each hands to the next:

1. ``settings.remember``: the options given, stored per hashtag;
2. ``threads.update_threads`` -> ``ThreadUpdate``: the new or changed posts,
   the conversations they are in now and, in full mode, ``pending``: every
   post's new conversation id, not yet written to the posts;
3. detection (``_detect_full``/``_detect_incremental``): each hashtag's
   groups, shaped into sessions with their core, lead-in and tail
   (``sessions.shape_groups``, :mod:`.margins`), then ``sessions.reconcile``
   -> ``Changes``: the sessions created, changed and deleted, and the
   sessions the new posts touch (an incremental run re-detects the block of
   a hashtag between two silences longer than ``margins.reach``);
4. ``sessions.refresh_membership`` (given ``pending``) -> the sessions whose
   members were recomputed;
5. per session, from one read of its members (``sessions.member_rows``):
   Q&A (``qa.QAWriter``), the session summary (post count, platforms,
   hosts) and, over all sessions, each thread's session
   (``sessions.ConversationTally``);
6. in full mode, ``pending`` (now holding the Q&A columns too) rewrites
   every post once.

Everything runs in one transaction: an interrupted analysis leaves the
previous one intact.
"""

from __future__ import annotations

import sqlite3
import time
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from datetime import timedelta
from operator import itemgetter
from types import TracebackType
from typing import Any

import sqlite_utils

from ..archive.queries import chunks, marks
from ..errors import ChatArchiveError
from ..timeutil import get_zone
from . import margins, qa, sessions, settings, threads
from .rewrite import PostRewrite
from .sessions import Changes, Group
from .settings import DEFAULTS_ROW, Chat, settings_for
from .times import MS_SQL, iso_ms, to_ms, usable_params, usable_sql

ANALYSIS_CACHE_KB = 128 * 1024


class _Transaction:
    """One transaction around the analysis (a savepoint inside the caller's)."""

    def __init__(self, db: sqlite_utils.Database):
        self.conn: sqlite3.Connection = db.conn
        self.nested = self.conn.in_transaction

    def __enter__(self) -> _Transaction:
        self.conn.execute("SAVEPOINT analyse" if self.nested else "BEGIN")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.nested:
            if exc_type:
                self.conn.execute("ROLLBACK TO analyse")
            self.conn.execute("RELEASE analyse")
        else:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


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
    lead: timedelta | None = None,
    tail: timedelta | None = None,
    full: bool = False,
    redetect: bool = False,
    refresh_sessions: Iterable[int] | None = None,
) -> dict[str, Any]:
    """Analyse what is new (or, with ``full``/``redetect``, everything).

    ``hashtags`` names chat hashtags (remembered, then always analysed) and
    re-detects their sessions; ``gap``/``min_posts``/``lead``/``tail``/``tz``/
    ``hosts``/the patterns are remembered for those hashtags (for every
    hashtag when none is named).  ``refresh_sessions`` recomputes membership and Q&A of those
    sessions (after ``sessions add``).  Returns counts and a one-line
    ``summary``.  Raises ChatArchiveError for an invalid option."""
    t0 = time.monotonic()
    tags = list(hashtags or [])
    host_list = list(hosts or [])
    if gap is not None and gap.total_seconds() <= 0:
        raise ChatArchiveError("--gap must be positive")
    if min_posts is not None and min_posts < 1:
        raise ChatArchiveError("--min-posts must be at least 1")
    for name, margin in (("lead", lead), ("tail", tail)):
        if margin is not None and not timedelta(0) <= margin <= settings.MAX_MARGIN:
            raise ChatArchiveError(f"--{name} must be between 0 and 24h (got {margin})")
    if tz:
        get_zone(tz)
    qa.compile_pattern(question_pattern, "question")
    qa.compile_pattern(answer_pattern, "answer")
    options_given = any(v is not None for v in (gap, min_posts, tz, question_pattern, answer_pattern, lead, tail)) \
        or bool(host_list)
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
            if tags or options_given:
                tags = settings.remember(db, tags, gap=gap, min_posts=min_posts, tz=tz, hosts=host_list,
                                         question_pattern=question_pattern, answer_pattern=answer_pattern,
                                         lead=lead, tail=tail)
            th, changes, done, qa_totals = _analyse(db, tags, full, redetect or bool(tags) or options_given,
                                                    set(refresh_sessions or []))
    finally:
        conn.execute(f"PRAGMA cache_size = {cache}")
        if switch_temp:
            conn.execute(f"PRAGMA temp_store = {temp_store}")
    return _summary(db, th, changes, done, qa_totals, full, time.monotonic() - t0)


def _analyse(db: sqlite_utils.Database, tags: list[str], full: bool, redetect: bool,
             wanted: set[int]) -> tuple[threads.ThreadUpdate, Changes, set[int] | None, qa.QATotals]:
    """Steps 2-6; returns what the summary reports: the threads' update, the
    sessions' changes, the sessions analysed (None: all) and the Q&A totals."""
    th = threads.update_threads(db, full=full, defer=True)
    explicit = settings.explicit_chats(db)
    chosen = tags or explicit or None  # None: every hashtag, guessing which are chats
    changes = Changes()
    affected: set[int] | None = wanted
    if full or th.full or redetect:
        changes = _detect_full(db, chosen, guess=not (tags or explicit))
        affected = None if (full or th.full or not tags) else _sessions_of(db, tags) | changes.changed | wanted
    elif th.dirty_ids:
        changes, touched = _detect_incremental(db, th, chosen, guess=not explicit)
        affected = wanted | changes.changed | touched
    if th.full:
        affected = None  # every post is rewritten (th.pending): every session goes with it
    if affected is None:
        sessions.refresh_membership(db, None, threads=th.pending)
        return th, changes, None, _per_session(db, None, th.pending)
    if not affected:
        return th, changes, set(), qa.QATotals()
    affected -= changes.deleted
    done = sessions.refresh_membership(db, affected)
    sessions.refresh_conversation_sessions(db, done)
    return th, changes, done, _per_session(db, done, None)


_conversation_of = itemgetter(sessions.MEMBER_CONVERSATION)


def _per_session(db: sqlite_utils.Database, session_ids: set[int] | None,
                 pending: PostRewrite | None) -> qa.QATotals:
    """Steps 5 and 6 for these sessions (all when None): Q&A, the session
    summary and (for all) each thread's session, from one read of each
    session's members; for all sessions the posts' columns are then
    rewritten in one pass (``pending``'s conversations with them)."""
    rewrite = None
    if session_ids is None:
        rewrite = pending if pending is not None else PostRewrite(db.conn, conversations=False)
    qa_step = qa.QAWriter(db, session_ids, rewrite=rewrite)
    tally = sessions.ConversationTally(db) if session_ids is None else None
    summaries: dict[int, sessions.SessionSummary] = {}
    for sid, rows in sessions.member_rows(db, qa_step.session_ids, threads=pending):
        hosts = qa_step.add(sid, rows)
        summaries[sid] = sessions.summarise(rows, hosts)
        if tally is not None:
            tally.add(sid, map(_conversation_of, rows))
    totals = qa_step.finish()
    if rewrite is not None:
        rewrite.write(answers=True)
    sessions.write_summaries(db, summaries)
    if tally is not None:
        tally.write()
    return totals


def _summary(db: sqlite_utils.Database, th: threads.ThreadUpdate, changes: Changes, done: set[int] | None,
             qa_totals: qa.QATotals, full: bool, elapsed: float) -> dict[str, Any]:
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
    parts = [_plural(total_sessions, "session")]
    news = []
    if changes.created:
        news.append(f"{len(changes.created)} new")
    if result["sessions_updated"]:
        news.append(f"{result['sessions_updated']} updated")
    if changes.deleted:
        news.append(f"{len(changes.deleted)} removed")
    if news:
        parts[0] += f" ({', '.join(news)})"
    parts.append(_plural(threads_n, "thread"))
    parts.append(f"{_plural(questions_n, 'question')}, {_plural(answers_n, 'answer')}")
    result["summary"] = "Analysis: " + "; ".join(parts) + f" ({elapsed:.1f} s)"
    result["qa"] = qa_totals.as_dict()
    return result


def _plural(n: int, word: str) -> str:
    # (present.text.plural's rule; the analysis may not import the views)
    return f"{n:,} {word if n == 1 else word + 's'}"


def _sessions_of(db: sqlite_utils.Database, tags: list[str]) -> set[int]:
    out: set[int] = set()
    for t in tags:
        out.update(r[0] for r in db.execute("SELECT id FROM sessions WHERE hashtag = ? COLLATE NOCASE", [t]))
    return out


def _tag_names(db: sqlite_utils.Database, ids: Iterable[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in chunks(sorted(set(ids))):
        out.update(db.execute(f"SELECT id, tag FROM hashtags WHERE id IN ({marks(len(chunk))})", chunk))
    return out


def _detect_full(db: sqlite_utils.Database, chosen: list[str] | None, guess: bool) -> Changes:
    changes = Changes()
    if chosen is not None:
        ids = {t: settings.hashtag_id(db, t) for t in chosen}
        tag_ids: set[int] | None = {i for i in ids.values() if i is not None}
    else:
        tag_ids = None
    # Schedules first: detection leaves their occurrences alone.
    sched_tags = [r[0] for r in db.execute("SELECT hashtag FROM chats WHERE schedules IS NOT NULL AND schedules != '[]'")]
    for t in sched_tags:
        if chosen is None or any(t.lower() == c.lower() for c in chosen):
            changes.merge(sessions.apply_schedules(db, t, settings.hashtag_id(db, t)))
    default_chat = settings_for(db, DEFAULTS_ROW)
    default = (default_chat.gap, default_chat.min_count)
    per_tag: dict[int, tuple[float, int]] = {}
    for (t,) in db.execute("SELECT hashtag FROM chats WHERE hashtag != ?", [DEFAULTS_ROW]).fetchall():
        i = settings.hashtag_id(db, t)
        if i is not None:
            c = settings_for(db, t)
            per_tag[i] = (c.gap, c.min_count)
    scan = sessions.scan_all_groups(db, tag_ids, per_tag, default)
    groups = sessions.drop_subsumed_scanned(db, scan, keep_tags=set()) if guess else scan.groups
    by_tag: dict[int, list[Group]] = {}
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
        chat = settings_for(db, name)
        found = sessions.shape_groups(db, name, scan.times.get(i, array("q")), by_tag.get(i, []), chat)
        changes.merge(sessions.reconcile(db, name, found, None, None, chat.timezone))
    # Detected sessions of a hashtag no post carries (an older version's or a
    # hand-made row): there is nothing they could be detected from.
    wanted = {c.lower() for c in chosen} if chosen is not None else None
    gone = [sid for sid, tag in db.execute(
        """SELECT s.id, s.hashtag FROM sessions s WHERE s.source = 'detected'
           AND NOT EXISTS (SELECT 1 FROM hashtags h WHERE h.tag = s.hashtag COLLATE NOCASE)""")
        if wanted is None or (tag or "").lower() in wanted]
    sessions.delete_sessions(db, gone)
    changes.deleted.update(gone)
    return changes


class _Windows:
    """Session windows per hashtag id, for "which sessions contain this
    tagged post" without a query per post."""

    def __init__(self, db: sqlite_utils.Database):
        self.by_tag: dict[int, tuple[list[int], list[tuple[int, int, int]], int]] = {}
        rows: dict[int, list[tuple[int, int, int]]] = {}
        for sid, w0, w1, tag_id in db.execute(
                """SELECT s.id, s.window_start, s.window_end, h.id FROM sessions s
                   JOIN hashtags h ON h.tag = s.hashtag COLLATE NOCASE
                   WHERE s.window_start IS NOT NULL AND s.window_end IS NOT NULL"""):
            ms0, ms1 = to_ms(w0), to_ms(w1)
            if ms0 is not None and ms1 is not None:  # (an old row with odd times holds no post)
                rows.setdefault(tag_id, []).append((ms0, ms1, sid))
        for tag_id, ws in rows.items():
            ws.sort()
            longest = max(w1 - w0 for w0, w1, _ in ws)
            self.by_tag[tag_id] = ([w[0] for w in ws], ws, longest)

    def containing(self, tag_id: int, ms: int) -> list[int]:
        entry = self.by_tag.get(tag_id)
        if entry is None:
            return []
        starts, ws, longest = entry
        earliest = ms - longest
        out = []
        i = bisect_right(starts, ms) - 1
        while i >= 0 and ws[i][0] >= earliest:
            if ws[i][1] >= ms:
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
        chosen_ids = {i for i in (settings.hashtag_id(db, t) for t in chosen) if i is not None}
    windows = _Windows(db)
    for chunk in chunks(dirty):
        m = marks(len(chunk))
        for tag_id, t, ms, matched in db.execute(
            f"""SELECT ph.hashtag_id, p.created_at, {MS_SQL.format("p.created_at")}, p.matched FROM posts p
                JOIN post_hashtags ph ON ph.post_id = p.id
                WHERE p.id IN ({m}) AND {usable_sql("p.created_at")}""", chunk + usable_params()):
            if ms is None:
                continue  # no usable time: in no window (its threads still place it)
            # a tagged post inside an existing window changes that session
            touched.update(windows.containing(tag_id, ms))
            if not matched or (chosen_ids is not None and tag_id not in chosen_ids):
                continue
            t = iso_ms(ms)  # (the time as SQLite reads it: the stored text may be odd, e.g. 31 February)
            span = spans.setdefault(tag_id, [t, t])
            span[0], span[1] = min(span[0], t), max(span[1], t)
        # sessions the changed posts belonged to
        for (sid,) in db.execute(f"SELECT DISTINCT session_id FROM session_posts WHERE post_id IN ({m})", chunk):
            touched.add(sid)
    for tag, s0, s1 in db.execute(
            f"""SELECT hashtag, coalesce(window_start, start), coalesce(window_end, "end") FROM sessions
                WHERE id IN ({marks(len(touched))})""",
            sorted(touched)).fetchall() if touched else []:
        tag_id = settings.hashtag_id(db, tag)
        if to_ms(s0) is None or to_ms(s1) is None:
            continue  # (an old row with odd times: a full analysis replaces it)
        if tag_id is not None and (chosen_ids is None or tag_id in chosen_ids):
            span = spans.setdefault(tag_id, [s0, s1])
            span[0], span[1] = min(span[0], s0), max(span[1], s1)
    names = _tag_names(db, spans)
    blocks: list[tuple[int, Chat, sessions.Block]] = []
    for tag_id, (lo, hi) in sorted(spans.items()):
        name = names[tag_id]
        chat = settings_for(db, name)
        if chat.schedules:
            changes.merge(sessions.apply_schedules(db, name, tag_id, (lo, hi)))
        reach = margins.reach(round(chat.gap * 1000), sessions.margins_of(chat))
        blocks.append((tag_id, chat, sessions.window_groups(db, name, tag_id, lo, hi, chat.gap, chat.min_count,
                                                           reach)))
    if guess:
        flat = [g for _, _, b in blocks for g in b.groups]
        kept = {id(g) for g in sessions.drop_subsumed(db, flat, keep_tags=set())}
        for _, _, b in blocks:
            b.groups = [g for g in b.groups if id(g) in kept]
    for tag_id, chat, b in blocks:
        name = names[tag_id]
        found = sessions.shape_groups(db, name, [ms for _, ms in b.rows], b.groups, chat)
        changes.merge(sessions.reconcile(db, name, found, b.lo, b.hi, chat.timezone))
    # Sessions holding posts of the conversations the new posts joined.
    convs = sorted(th.conversations)
    for chunk in chunks(convs):
        touched.update(r[0] for r in db.execute(
            f"""SELECT DISTINCT sp.session_id FROM posts p INDEXED BY idx_posts_conversation_id
                JOIN session_posts sp ON sp.post_id = p.id
                WHERE p.conversation_id IN ({marks(len(chunk))})""", chunk))
    touched -= changes.deleted
    return changes, touched
