"""The one writer of posts: :class:`PostWriter` and its merge rules.

Everything that writes posts goes through :class:`PostWriter` so that
importers and live capture share one idempotent upsert: a post is keyed by
its platform id, a second sighting only fills in what the first lacked (or
refreshes counts), and a context sighting (``matched = 0``) never downgrades
a post that matched the hashtag.

Every post first passes ``archive.check.check_post`` (nothing untyped
reaches SQL).  A sighting that contradicts the stored post's author or
time is a *conflict*: it is not applied at all, and is counted and
described (``SaveStats.conflicts``, :attr:`PostWriter.conflicts`).  Text
changes only when the stored text is empty, the sighting is an edit with a
newer ``edited_at``, it outranks a context copy, or the stored text is a
truncation of it.  A tombstone (``deleted_at``) is never filled again.

Mastodon replies whose parent is not stored yet point at a placeholder
(``local:SERVER/LOCAL_ID``, :func:`local_placeholder`) so that siblings
share a conversation; :func:`resolve_local_replies` swaps in the real id
when the parent arrives, in whatever order the files come.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
import sqlite_utils

from ..models import WRITTEN_POST_FIELDS, Media, Post, is_reply_placeholder
from ..urls import is_web_url
from .check import BadPost, check_post, redact_on_arrival
from .queries import chunks

# --------------------------------------------------------------------------
# Writing posts

# The columns PostWriter writes, in order (the analysis sets the others).
POST_COLUMNS = list(WRITTEN_POST_FIELDS)
_COUNTS = {"like_count", "repost_count", "reply_count", "quote_count"}
# Columns the FTS index holds: an UPDATE that leaves them alone must not
# name them, so the posts_au trigger (UPDATE OF these) does not fire.
_FTS_COLUMNS = ("text", "author_handle", "author_name")
_IDX = {c: i for i, c in enumerate(POST_COLUMNS)}
_MATCHED, _IS_REPOST = _IDX["matched"], _IDX["is_repost"]
_COUNT_IDX = frozenset(_IDX[c] for c in _COUNTS)
_FTS_IDX = tuple(_IDX[c] for c in _FTS_COLUMNS)
_PLAIN_COLUMNS = [c for c in POST_COLUMNS if c != "id" and c not in _FTS_COLUMNS]
# Which rule merges each column: 0 plain, 1 flag (only goes up), 2 count,
# 3 first known value kept (source: the format that first saw the post, so
# re-reading it through another format is no update).  author_id and the
# Mastodon (instance, local_id, reply_to_local_id) group have rules of
# their own in _merge_values.
_SOURCE, _AUTHOR_ID = _IDX["source"], _IDX["author_id"]
_AUTHOR_HANDLE, _AUTHOR_NAME = _IDX["author_handle"], _IDX["author_name"]
_LOCAL_GROUP = (_IDX["instance"], _IDX["local_id"], _IDX["reply_to_local_id"])
_INSTANCE, _LOCAL_ID, _PLATFORM = _IDX["instance"], _IDX["local_id"], _IDX["platform"]
_RULE = tuple(1 if i in (_MATCHED, _IS_REPOST) else 2 if i in _COUNT_IDX else 3 if i == _SOURCE
              else 4 if i in _LOCAL_GROUP else 0 for i in range(len(POST_COLUMNS)))
X_PLACEHOLDER_PREFIX = "x:@"  # X authors known only by handle (Twitter Archiver CSV)
X_UNKNOWN_OWNER = "x:archive-owner"  # tweets.js without account.js: the owner is unknown
_TEXT, _HTML, _SPOILER = _IDX["text"], _IDX["html"], _IDX["spoiler_text"]
_CREATED, _EDITED, _REPLY_TO = _IDX["created_at"], _IDX["edited_at"], _IDX["reply_to_id"]
_TEXT_GROUP = (_TEXT, _HTML, _SPOILER)
MAX_KEPT_CONFLICTS = 1000  # messages kept per writer (all are counted)


def _is_placeholder(author_id: Any) -> bool:
    """An author id that stands in for an unknown X account."""
    return isinstance(author_id, str) and (author_id.startswith(X_PLACEHOLDER_PREFIX) or author_id == X_UNKNOWN_OWNER)


_TRAILING_LINK = re.compile(r"(?:\s*(?:https?://\S*|…|\.\.\.))+\s*$")


def _is_truncation(old: Any, new: Any) -> bool:
    """Whether ``old`` is ``new`` cut short (v1.1 and TAGS truncate long
    posts and retweets to "… https://t.co/x"; an includes copy may lack
    its note_tweet): then the longer text is the better sighting."""
    if not isinstance(old, str) or not isinstance(new, str) or len(new) <= len(old) - 30:
        return False
    head = _TRAILING_LINK.sub("", old)
    return len(head) >= 10 and len(new) > len(head) and new.startswith(head) and new != old


def conflict_of(old: list[Any], new: list[Any]) -> str | None:
    """How a later sighting contradicts a stored post (another author or
    another time: then it is another post under the same id, or a broken
    file, and is not applied), or None."""
    o, n = old[_CREATED], new[_CREATED]
    if o and n and o[:19] != n[:19]:
        return f"another time ({n}; kept {o})"
    o, n = old[_AUTHOR_ID], new[_AUTHOR_ID]
    if o and n and o != n and not _is_placeholder(o) and not _is_placeholder(n):
        shown_new = f"@{new[_AUTHOR_HANDLE]}" if new[_AUTHOR_HANDLE] else n
        shown_old = f"@{old[_AUTHOR_HANDLE]}" if old[_AUTHOR_HANDLE] else o
        return f"another author ({shown_new}; kept {shown_old})"
    return None


def _values(post: Post) -> list[Any]:
    """A post as a list of column values in POST_COLUMNS order."""
    a = post.author
    return [
        post.id, post.platform, post.source, post.url,
        a.id if a else None, a.handle if a else None, a.name if a else None,
        post.text or "", post.html, post.created_at, post.reply_to_id, post.reply_to_author,
        post.root_id, post.quote_of_id, 1 if post.is_repost else 0, post.lang,
        post.like_count, post.repost_count, post.reply_count, post.quote_count,
        1 if post.matched else 0, post.local_id, post.instance, post.reply_to_local_id,
        post.spoiler_text, post.edited_at,
    ]


def post_row(post: Post) -> dict[str, Any]:
    return dict(zip(POST_COLUMNS, _values(post)))


def _merge_values(old: list[Any], new: list[Any]) -> list[Any]:
    """Combine two sightings of one post (``new`` is the later one); see merge_rows."""
    if old == new:
        return old
    prefer_new = new[_MATCHED] >= old[_MATCHED]
    out = list(old)
    # Mastodon: instance, local_id and reply_to_local_id belong together
    # (ids are valid on that server); the first server's stay unless the
    # later sighting outranks it (matched over context).  Every server's ids
    # are kept in local_ids anyway.
    new_local = new[_INSTANCE] is not None and (
        old[_INSTANCE] is None or new[_MATCHED] > old[_MATCHED])
    # Text (with its HTML and content warning) is what the author wrote:
    # replaced only by an edit, by the matched copy of a context copy, or
    # by the whole of a truncated text; otherwise the first copy stays.
    old_edit, new_edit = old[_EDITED], new[_EDITED]
    take_text = bool(new[_TEXT]) and (
        not old[_TEXT]
        or (new_edit is not None and (old_edit is None or new_edit > old_edit))
        or new[_MATCHED] > old[_MATCHED]
        or _is_truncation(old[_TEXT], new[_TEXT]))
    for i, rule in enumerate(_RULE):
        n = new[i]
        if i in _TEXT_GROUP:
            if ((take_text and n is not None and n != "") or out[i] is None or out[i] == "") \
                    and (n is not None or out[i] is None):
                out[i] = n
        elif i == _EDITED:
            if n is not None and (out[i] is None or n > out[i]):
                out[i] = n
        elif i == _REPLY_TO:
            o = out[i]
            if n is None or n == "":
                pass
            elif o is None or o == "" or (is_reply_placeholder(o) and not is_reply_placeholder(n)):
                out[i] = n
            elif is_reply_placeholder(n) and not is_reply_placeholder(o):
                pass
            elif prefer_new:
                out[i] = n
        elif i == _AUTHOR_ID:
            # a real id beats a placeholder "x:@handle" id, whatever the order
            o = out[i]
            if n is not None and n != "" and (
                o is None or o == "" or (_is_placeholder(o) and not _is_placeholder(n))
                or (prefer_new and _is_placeholder(o) == _is_placeholder(n))):
                out[i] = n
        elif rule == 0:
            if n is None or n == "":
                if out[i] is None:
                    out[i] = n
            elif prefer_new or out[i] is None or out[i] == "":
                out[i] = n
        elif rule == 2:
            if n is not None:
                out[i] = n
        elif rule == 3:
            if out[i] is None or out[i] == "":
                out[i] = n
        elif rule == 4:
            if new_local:
                out[i] = n
        elif n and not out[i]:
            out[i] = n
    if _is_placeholder(new[_AUTHOR_ID]) and not _is_placeholder(out[_AUTHOR_ID]):
        # handle and name are copies of the author kept, not of the placeholder
        for i in (_AUTHOR_HANDLE, _AUTHOR_NAME):
            if old[i] is not None:
                out[i] = old[i]
    return out


def merge_rows(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Combine two sightings of one post (``new`` is the later one).

    The sighting that matched the query (or, at equal rank, the later one)
    wins; nothing known is replaced by NULL or ""; counts take the latest
    known value (NULL means unknown and never overwrites, 0 is a value);
    matched and is_repost only ever go up; ``source`` stays the first
    format's; a real author id beats a placeholder ``x:@handle`` one; the
    Mastodon (instance, local_id, reply_to_local_id) triple stays the first
    server's unless the later sighting matched and the first did not.
    """
    merged = _merge_values([old.get(c) for c in POST_COLUMNS], [new.get(c) for c in POST_COLUMNS])
    return dict(zip(POST_COLUMNS, merged))


@dataclass
class SaveStats:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0  # sightings not applied: they contradict the stored author or time

    def __iadd__(self, other: SaveStats) -> SaveStats:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.conflicts += other.conflicts
        return self


def _raw_json(raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    return orjson.dumps(raw).decode()


def _union(old: list, new: list) -> list:
    if not new or new == old:
        return old
    return old + [x for x in new if x not in old]


def _web_links(links: list[str]) -> list[str]:
    """Only web links reach the links table, by the one rule every output
    applies (``urls.is_web_url``): a source may carry ``javascript:``,
    ``data:`` or other schemes (a Bluesky link facet is any string the
    client chose).  Kept as the source wrote them."""
    if not links:
        return links
    return [u for u in links if is_web_url(u)]


class _Pending:
    """One post waiting in a batch: its column values, entities and raw JSON
    (serialized at once, so the parsed source page can be freed)."""

    __slots__ = ("hashtags", "links", "media", "mentions", "raw", "titles", "values", "where")

    def __init__(self, post: Post, where: str | None = None):
        self.values = _values(post)
        self.hashtags = post.hashtags
        self.mentions = post.mentions
        self.links = _web_links(post.links)
        self.titles = post.link_titles
        self.media = post.media
        self.raw = _raw_json(post.raw)
        self.where = where  # where the sighting was read (FILE:LINE), for conflict messages

    def merge(self, later: _Pending) -> None:
        later_wins = later.values[_MATCHED] >= self.values[_MATCHED]
        self.values = _merge_values(self.values, later.values)
        self.hashtags = _union(self.hashtags, later.hashtags)
        self.mentions = _union(self.mentions, later.mentions)
        self.links = _union(self.links, later.links)
        self.titles = {**self.titles, **later.titles} if later.titles else self.titles
        if later.media:
            urls = {m.url for m in self.media}
            self.media = self.media + [m for m in later.media if m.url not in urls]
        if later.raw is not None and (later_wins or self.raw is None):
            self.raw = later.raw


# The FTS insert trigger (m001, made by sqlite-utils) and the statement that
# does its work for a whole batch at once.  Per row, the trigger costs a
# sub-program run and FTS5 flushes a segment per statement; one INSERT …
# SELECT per batch writes fewer, larger segments, so the index is merged
# less often as it grows (measured: bench/README.md).
_FTS_INSERT_TRIGGER = "posts_ai"
_FTS_INSERT_TRIGGER_SQL = """CREATE TRIGGER "posts_ai" AFTER INSERT ON "posts" BEGIN
  INSERT INTO "posts_fts" (rowid, "text", "author_handle", "author_name") \
VALUES (new.rowid, new."text", new."author_handle", new."author_name");
END"""
_FTS_INDEX_NEW = ("INSERT INTO posts_fts (rowid, text, author_handle, author_name) "
                  "SELECT rowid, text, author_handle, author_name FROM posts WHERE rowid > ?")


def _fts_insert_trigger(conn: sqlite3.Connection) -> str | None:
    """The FTS insert trigger's SQL when it is exactly the one the batch
    statement replaces (else None: the trigger stays and does the work)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                       (_FTS_INSERT_TRIGGER,)).fetchone()
    return row[0] if row and " ".join(row[0].split()) == " ".join(_FTS_INSERT_TRIGGER_SQL.split()) else None


def _max_variables(conn: sqlite3.Connection) -> int:
    """How many ? a statement may hold (SQLite's compile-time limit)."""
    if sys.version_info >= (3, 11):  # Connection.getlimit is new in 3.11
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


_CACHE_LIMIT = 100_000  # ids of hashtags/links/media remembered per writer


class _Background:
    """One thread that writes the batches PostWriter hands it, in order.

    Python's sqlite3 releases the GIL while SQLite steps a statement, and a
    multi-row INSERT with its FTS trigger is one long step: the importer's
    thread parses and normalizes the next pages meanwhile.  At most one
    batch waits in the queue, so memory stays bounded."""

    def __init__(self, write: Callable[[list, list, list], None]):
        self.write = write
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="chatarchive-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            try:
                if job is None:
                    return
                if self.error is None:  # after a failure, drain without writing
                    self.write(*job)
            except BaseException as e:
                self.error = e
            finally:
                self.queue.task_done()

    def submit(self, entries: list, authors: list, rows: list) -> None:
        self.check()
        self.queue.put((entries, authors, rows))

    def wait(self) -> None:
        """Block until every submitted batch is written (or failed)."""
        self.queue.join()
        self.check()

    def check(self) -> None:
        # The error stays set: later batches are drained, not written.
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()


class PostWriter:
    """Batched, idempotent writer of Post records (and their authors,
    entities and raw source objects).  Call :meth:`add` with posts, then
    :meth:`flush` (and :meth:`close` when done); the caller owns the
    transaction.

    Speed matters (a million posts per import): posts are inserted with
    multi-row INSERT statements, so the FTS trigger's per-statement work
    (FTS5 flushes its pending terms at every statement savepoint) happens
    once per few hundred rows instead of once per row; entity ids are
    resolved per batch with set-based SQL and kept in bounded caches.

    With ``background=True`` full batches are written by a worker thread
    while the caller goes on producing posts (the connection must allow
    use from another thread, as open_db's does).  The caller must not use
    the connection until :meth:`flush` or :meth:`close` has returned."""

    def __init__(self, db: sqlite_utils.Database, batch_size: int = 2000, *, background: bool = False,
                 defer_fts: bool = False):
        self.db = db
        self.conn = db.conn
        self.batch_size = batch_size
        self.pending: dict[str, _Pending] = {}
        self.authors: dict[str, tuple] = {}
        self._rows: list[tuple[str, list[tuple]]] = []  # also_write(): written after the batch
        self.stats = SaveStats()
        #: "WHERE: post ID: another author (…)" for the first conflicts (all are counted in stats)
        self.conflicts: list[str] = []
        self._tag_ids: dict[str, int] = {}
        self._link_ids: dict[str, int] = {}
        self._media_ids: dict[str, int] = {}
        self._written_authors: dict[str, tuple] = {}
        self._max_variables = _max_variables(self.conn)
        self._insert_head = f"INSERT INTO posts ({', '.join(POST_COLUMNS)}) VALUES "
        sets = ", ".join(f"{c} = excluded.{c}" for c in POST_COLUMNS if c != "id")
        self._update_all_tail = f" ON CONFLICT(id) DO UPDATE SET {sets}"
        plain = ", ".join(f"{c} = excluded.{c}" for c in _PLAIN_COLUMNS)
        self._update_plain_tail = f" ON CONFLICT(id) DO UPDATE SET {plain}"
        self._select_head = f"SELECT {', '.join(POST_COLUMNS)}, deleted_at FROM posts WHERE id IN "
        self._background = _Background(self._write_batch) if background else None
        # defer_fts (bulk imports, inside the caller's transaction): the FTS
        # insert trigger is dropped while this writer writes, and each
        # batch's new posts are indexed with one INSERT … SELECT; flush()
        # and close() put the trigger back (a rollback does too).
        self._fts_trigger = _fts_insert_trigger(self.conn) if defer_fts else None
        self._fts_trigger_dropped = False
        # People removed at their request (``chatarchive forget``): their
        # posts are redacted before anything of them is written, then made
        # tombstones; ``redacted`` names them so a capture scrubs its page
        # bodies too (deletion.without_posts).
        self._forgotten = {r[0] for r in self.conn.execute("SELECT author_id FROM forgotten_accounts")}
        self.redacted: list[str] = []

    def add(self, posts: Iterable[Post], where: str | None = None) -> list[str]:
        """Queue posts for writing (``where``: where they were read, for
        conflict messages).  Each passes ``check_post`` first; returns the
        reasons of those it refused (no usable id or platform), which are
        not written.  What check_post mended is in each post's ``warnings``."""
        pending, authors = self.pending, self.authors
        refused: list[str] = []
        for post in posts:
            try:
                post = check_post(post)
            except BadPost as e:
                refused.append(str(e))
                continue
            if self._forgotten and post.author is not None and post.author.id in self._forgotten:
                post = redact_on_arrival(post)
                self.redacted.append(post.id)
            entry = _Pending(post, where)
            a = post.author
            if a is not None:
                new = (a.id, a.platform, a.handle, a.name, a.avatar_url, a.url, a.unlisted)
                old = authors.get(a.id)
                authors[a.id] = new if old is None or old == new else tuple(
                    n if n is not None else o for o, n in zip(old, new))
            prior = pending.get(post.id)
            if prior is None:
                pending[post.id] = entry
            else:
                # Same post twice in one batch (a context copy and the real one).
                conflict = conflict_of(prior.values, entry.values)
                if conflict is None:
                    prior.merge(entry)
                else:
                    self._conflict(entry, conflict)
            if len(pending) >= self.batch_size:
                self._submit()
        return refused

    def _conflict(self, entry: _Pending, what: str) -> None:
        # runs in the caller's thread or the writer thread, never both at once
        self.stats.conflicts += 1
        if len(self.conflicts) < MAX_KEPT_CONFLICTS:
            where = f"{entry.where}: " if entry.where else ""
            self.conflicts.append(f"{where}post {entry.values[0]} was already stored with {what}; "
                                  "this sighting was not applied")

    def _submit(self) -> None:
        if not self.pending and not self.authors and not self._rows:
            return
        entries = list(self.pending.values())
        authors = list(self.authors.values())
        rows, self._rows = self._rows, []
        self.pending.clear()  # in place: add() holds a reference
        self.authors.clear()
        if self._background is not None:
            self._background.submit(entries, authors, rows)
        else:
            self._write_batch(entries, authors, rows)

    def flush(self) -> SaveStats:
        """Write everything added so far; returns the running totals."""
        self._submit()
        if self._background is not None:
            self._background.wait()
        self._restore_fts_trigger()
        return self.stats

    def close(self) -> None:
        """Stop the background thread (waiting for the batch it is writing);
        unflushed posts are dropped.  Safe to call more than once."""
        if self._background is not None:
            self._background.close()
            self._background = None
        self._restore_fts_trigger()

    def _restore_fts_trigger(self) -> None:
        if not self._fts_trigger_dropped or self._fts_trigger is None:
            return
        self._fts_trigger_dropped = False
        # a ROLLBACK (TO a savepoint) may have put it back already
        if not self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                                 (_FTS_INSERT_TRIGGER,)).fetchone():
            self.conn.execute(self._fts_trigger)

    def _insert_posts(self, rows: list[list[Any]]) -> None:
        """New posts, and their full-text index entries."""
        conn = self.conn
        if self._fts_trigger is None or not conn.in_transaction:
            self._many(self._insert_head, rows)  # the trigger indexes each row
            return
        if not self._fts_trigger_dropped:
            conn.execute(f"DROP TRIGGER {_FTS_INSERT_TRIGGER}")
            self._fts_trigger_dropped = True
        before = conn.execute("SELECT coalesce(max(rowid), 0) FROM posts").fetchone()[0]
        self._many(self._insert_head, rows)
        # New rows take rowids above every existing one (posts are never
        # deleted while a writer writes), so this is exactly the batch.
        conn.execute(_FTS_INDEX_NEW, (before,))

    def also_write(self, sql: str, rows: list[tuple]) -> None:
        """Run ``sql`` (executemany) with ``rows`` right after the batch the
        posts added so far go in, in the writer's thread: bookkeeping that
        must follow those posts (the importer's known records) without a
        flush, which would end the batch early."""
        self._rows.append((sql, rows))

    def _write_batch(self, entries: list[_Pending], authors: list[tuple],
                     rows: Sequence[tuple[str, list[tuple]]] = ()) -> None:
        conn = self.conn
        self._save_authors(authors)
        existing: dict[str, list[Any]] = {}
        deleted: set[str] = set()
        ncols = len(POST_COLUMNS)
        for chunk in chunks([e.values[0] for e in entries], 500):
            sql = self._select_head + "(" + ", ".join("?" * len(chunk)) + ")"
            for row in conn.execute(sql, chunk):
                existing[row[0]] = list(row[:ncols])
                if row[ncols] is not None:
                    deleted.add(row[0])
        inserts: list[list[Any]] = []
        update_all: list[list[Any]] = []
        update_plain: list[list[Any]] = []
        raws_replace: list[tuple] = []
        raws_keep: list[tuple] = []
        kept: list[_Pending] = []
        for e in entries:
            values = e.values
            old = existing.get(values[0])
            if old is None:
                inserts.append(values)
                kept.append(e)
                if e.raw is not None:
                    raws_replace.append((values[0], values[2], e.raw))
                continue
            if values[0] in deleted:
                # a tombstone: its content was removed for good and stays so
                self.stats.unchanged += 1
                continue
            conflict = conflict_of(old, values)
            if conflict is not None:
                self._conflict(e, conflict)
                continue
            kept.append(e)
            merged = _merge_values(old, values)
            changed = merged is not old and merged != old
            if not changed:
                self.stats.unchanged += 1
            elif any(merged[i] != old[i] for i in _FTS_IDX):
                update_all.append(merged)
            else:
                update_plain.append(merged)
            if e.raw is not None:
                # The raw object of a sighting that changed the post and wins
                # (matched over a context copy) replaces the stored one; any
                # other is kept only when this format has none yet.
                later_wins = changed and values[_MATCHED] >= old[_MATCHED]
                (raws_replace if later_wins else raws_keep).append((values[0], values[2], e.raw))
        if inserts:
            self._insert_posts(inserts)
        # Updates as upserts of whole rows (multi-row, like the inserts);
        # rows whose text, handle and name are unchanged do not name those
        # columns, so the FTS update trigger leaves them alone.
        self._many(self._insert_head, update_all, self._update_all_tail)
        self._many(self._insert_head, update_plain, self._update_plain_tail)
        self.stats.added += len(inserts)
        self.stats.updated += len(update_all) + len(update_plain)
        self._save_entities(kept)
        self._many("INSERT OR REPLACE INTO raw (post_id, format, json) VALUES ", raws_replace)
        self._many("INSERT OR IGNORE INTO raw (post_id, format, json) VALUES ", raws_keep)
        if self.redacted:
            from .deletion import delete_posts

            redacted = set(self.redacted)
            delete_posts(self.db, [e.values[0] for e in entries if e.values[0] in redacted], purge=False)
        for sql, params in rows:
            conn.executemany(sql, params)

    def _many(self, head: str, rows: list, tail: str = "") -> None:
        """``head`` VALUES (…), (…), … ``tail`` for all rows, a few hundred
        rows per statement.  Fewer, longer statements: less overhead per row,
        FTS5 flushes once per statement, and the writer thread holds the GIL
        only to bind parameters (per-row statements would hand the GIL back
        and forth with the parsing thread for every row)."""
        if not rows:
            return
        ncols = len(rows[0])
        per = max(1, min(500, self._max_variables // ncols))
        marks = "(" + ", ".join("?" * ncols) + ")"
        execute = self.conn.execute
        for i in range(0, len(rows), per):
            chunk = rows[i : i + per]
            execute(head + ", ".join([marks] * len(chunk)) + tail, list(chain.from_iterable(chunk)))

    def _save_authors(self, authors: list[tuple]) -> None:
        # Skip authors this writer already wrote with the same values (most
        # of them: the regulars of a chat appear on every page).
        written = self._written_authors
        rows = [a for a in authors if written.get(a[0]) != a]
        if not rows:
            return
        if len(written) + len(rows) > _CACHE_LIMIT:
            written.clear()
        for a in rows:
            written[a[0]] = a
        self._many(
            "INSERT INTO authors (id, platform, handle, name, avatar_url, url, unlisted) VALUES ",
            rows,
            """ ON CONFLICT(id) DO UPDATE SET
                 handle = coalesce(excluded.handle, handle),
                 name = coalesce(excluded.name, name),
                 avatar_url = coalesce(excluded.avatar_url, avatar_url),
                 url = coalesce(excluded.url, url),
                 unlisted = coalesce(excluded.unlisted, unlisted)
               WHERE coalesce(excluded.handle, handle) IS NOT handle
                  OR coalesce(excluded.name, name) IS NOT name
                  OR coalesce(excluded.avatar_url, avatar_url) IS NOT avatar_url
                  OR coalesce(excluded.url, url) IS NOT url
                  OR coalesce(excluded.unlisted, unlisted) IS NOT unlisted""",
        )

    def _ids(self, cache: dict[str, int], table: str, column: str, values: dict[str, Any]) -> None:
        """Make sure every value has a row in table, and its id is in cache."""
        missing = [v for v in values if v not in cache]
        if not missing:
            return
        if len(cache) + len(missing) > _CACHE_LIMIT:
            cache.clear()
            missing = list(values)
        conn = self.conn
        if table != "media":
            self._many(f"INSERT OR IGNORE INTO {table} ({column}) VALUES ", [(v,) for v in missing])
        for chunk in chunks(missing, 500):
            sql = f"SELECT {column}, id FROM {table} WHERE {column} IN ({', '.join('?' * len(chunk))})"
            found = dict(conn.execute(sql, chunk).fetchall())
            for v in chunk:
                got = found.get(v)
                if got is None:
                    # stored with another case (hashtags.tag is COLLATE NOCASE)
                    got = conn.execute(f"SELECT id FROM {table} WHERE {column} = ?", (v,)).fetchone()[0]
                cache[v] = got

    def _save_entities(self, entries: list[_Pending]) -> None:
        # Union semantics: a later sighting adds entities, never removes them.
        # dicts, not sets: new rows get ids in the order of the input
        tags: dict[str, None] = {}
        urls: dict[str, None] = {}
        media: dict[str, Media] = {}
        for e in entries:
            for t in e.hashtags:
                if t:
                    tags[t] = None
            for u in e.links:
                if u:
                    urls[u] = None
            for m in e.media:
                if m.url:
                    media[m.url] = m
        if media:
            self._many(
                "INSERT INTO media (url, type, alt, preview_url) VALUES ",
                [(m.url, m.type, m.alt, m.preview_url) for m in media.values()],
                """ ON CONFLICT(url) DO UPDATE SET
                     type = coalesce(excluded.type, type), alt = coalesce(excluded.alt, alt),
                     preview_url = coalesce(excluded.preview_url, preview_url)
                   WHERE coalesce(excluded.type, type) IS NOT type
                      OR coalesce(excluded.alt, alt) IS NOT alt
                      OR coalesce(excluded.preview_url, preview_url) IS NOT preview_url""",
            )
        self._ids(self._tag_ids, "hashtags", "tag", tags)
        self._ids(self._link_ids, "links", "url", urls)
        titles = [(t, u) for e in entries for u, t in e.titles.items() if u in urls and t]
        if titles:  # a later sighting's title replaces an earlier one; none never erases one
            self.conn.executemany("UPDATE links SET title = ? WHERE url = ? AND title IS NOT ?",
                                  [(t, u, t) for t, u in titles])
        self._ids(self._media_ids, "media", "url", media)
        tag_ids, link_ids, media_ids = self._tag_ids, self._link_ids, self._media_ids
        post_tags: list[tuple[str, int]] = []
        mentions: list[tuple[str, str]] = []
        post_links: list[tuple[str, int]] = []
        post_media: list[tuple[str, int]] = []
        for e in entries:
            pid = e.values[0]
            for t in e.hashtags:
                if t:
                    post_tags.append((pid, tag_ids[t]))
            for handle in e.mentions:
                if handle:
                    mentions.append((pid, handle))
            for u in e.links:
                if u:
                    post_links.append((pid, link_ids[u]))
            for m in e.media:
                if m.url:
                    post_media.append((pid, media_ids[m.url]))
        self._many("INSERT OR IGNORE INTO post_hashtags (post_id, hashtag_id) VALUES ", post_tags)
        self._many("INSERT OR IGNORE INTO mentions (post_id, handle) VALUES ", mentions)
        self._many("INSERT OR IGNORE INTO post_links (post_id, link_id) VALUES ", post_links)
        self._many("INSERT OR IGNORE INTO post_media (post_id, media_id) VALUES ", post_media)
        # Every server's id of a Mastodon post (posts keeps only one).
        local_ids = [(v[_INSTANCE], v[_LOCAL_ID], v[0]) for v in (e.values for e in entries)
                     if v[_LOCAL_ID] is not None and v[_INSTANCE] is not None and v[_PLATFORM] == "mastodon"]
        self._many("INSERT OR IGNORE INTO local_ids (instance, local_id, post_id) VALUES ", local_ids)


def save_posts(db: sqlite_utils.Database, posts: Iterable[Post]) -> SaveStats:
    """Convenience: write posts in one transaction and return the counts."""
    writer = PostWriter(db)
    with transaction(db):
        writer.add(posts)
        writer.flush()
        resolve_local_replies(db)
        merge_placeholder_authors(db)
    return writer.stats


class transaction:
    """BEGIN … COMMIT, or ROLLBACK when the block raises (autocommit connection)."""

    def __init__(self, db: sqlite_utils.Database):
        self.conn = db.conn

    def __enter__(self):
        self.conn.execute("BEGIN")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


# Replies still waiting for their parent: reply_to_id NULL (archives before
# placeholders) or a placeholder.  The same text as the partial index
# idx_posts_waiting_replies (m004), so SQLite uses that index.
WAITING_REPLY = ("reply_to_local_id IS NOT NULL AND (reply_to_id IS NULL OR "
                 "(reply_to_id >= 'local:' AND reply_to_id < 'local;'))")


def resolve_local_replies(db: sqlite_utils.Database) -> int:
    """Mastodon replies name their parent by its id on the serving server;
    replace the placeholder of every reply whose parent is now stored (by
    any server's id of it, table ``local_ids``) with the parent's uri, our
    post id.  Only waiting replies are visited (a partial index)."""
    cur = db.conn.execute(
        f"""UPDATE posts INDEXED BY idx_posts_waiting_replies SET reply_to_id = (
               SELECT l.post_id FROM local_ids l
               WHERE l.instance = posts.instance AND l.local_id = posts.reply_to_local_id)
           WHERE {WAITING_REPLY}
             AND EXISTS (SELECT 1 FROM local_ids l
                         WHERE l.instance = posts.instance AND l.local_id = posts.reply_to_local_id)"""
    )
    return cur.rowcount


def resolve_page_replies(db: sqlite_utils.Database, posts: Iterable[Post]) -> None:
    """Mastodon replies name their parent by its id on the serving server.
    Link this page's replies to parents already stored, and stored replies
    to parents on this page — in both directions, since a timeline pages
    from new to old (replies before their parents).  Indexed lookups only
    (``idx_posts_waiting_replies``), unlike a whole-table
    :func:`resolve_local_replies`, which runs once at the end."""
    conn = db.conn
    for p in posts:
        if not p.instance:
            continue
        if p.reply_to_local_id:
            row = conn.execute("SELECT post_id FROM local_ids WHERE instance = ? AND local_id = ?",
                               (p.instance, p.reply_to_local_id)).fetchone()
            if row is not None:
                conn.execute(f"UPDATE posts SET reply_to_id = ? WHERE id = ? AND {WAITING_REPLY}", (row[0], p.id))
        if p.local_id:
            conn.execute(
                f"UPDATE posts INDEXED BY idx_posts_waiting_replies SET reply_to_id = ? "
                f"WHERE instance = ? AND reply_to_local_id = ? AND {WAITING_REPLY}",
                (p.id, p.instance, p.local_id),
            )


def merge_placeholder_authors(db: sqlite_utils.Database) -> int:
    """One person, one participant: posts whose author is a placeholder
    ``x:@handle`` (Twitter Archiver CSV: no user ids) are re-pointed at the
    numeric X author with that handle (case-insensitive) when exactly one
    exists; placeholder authors left without posts are dropped.  Returns
    how many posts moved."""
    conn = db.conn
    lo, hi = X_PLACEHOLDER_PREFIX, X_PLACEHOLDER_PREFIX[:-1] + chr(ord(X_PLACEHOLDER_PREFIX[-1]) + 1)
    placeholders = conn.execute(
        "SELECT id, handle FROM authors WHERE id >= ? AND id < ?", (lo, hi)).fetchall()
    moved = 0
    for pid, handle in placeholders:
        handle = handle or pid[len(X_PLACEHOLDER_PREFIX):]
        real = conn.execute(
            "SELECT id FROM authors WHERE handle = ? COLLATE NOCASE AND platform = 'x' "
            "AND id <> '' AND id NOT GLOB '*[^0-9]*' LIMIT 2", (handle,)).fetchall()
        if len(real) == 1:
            moved += conn.execute("UPDATE posts SET author_id = ? WHERE author_id = ?",
                                  (real[0][0], pid)).rowcount
        if not conn.execute("SELECT 1 FROM posts WHERE author_id = ? LIMIT 1", (pid,)).fetchone():
            conn.execute("DELETE FROM authors WHERE id = ?", (pid,))
    return moved


