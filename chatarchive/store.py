"""The SQLite archive: schema (migrations), the one writer of posts, search.

Everything that writes posts goes through :class:`PostWriter` so that
importers and live capture share one idempotent upsert: a post is keyed by
its platform id, a second sighting only fills in what the first lacked (or
refreshes counts), and a context sighting (``matched = 0``) never downgrades
a post that matched the hashtag.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils
from sqlite_utils import Migrations

from .errors import SearchError
from .models import Media, Post

migrations = Migrations("chatarchive")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    # One statement list so the schema reads like documentation.  Ids are TEXT
    # (platform ids are strings: tweet ids overflow doubles, Mastodon uses
    # uris, Bluesky at:// uris).  Foreign keys are declared for Datasette's
    # links; SQLite does not enforce them (reply parents may be missing).
    db.executescript(
        """
        CREATE TABLE authors (
            id TEXT PRIMARY KEY,
            platform TEXT NOT NULL,
            handle TEXT,
            name TEXT,
            avatar_url TEXT,
            url TEXT
        );
        CREATE INDEX idx_authors_handle ON authors(handle COLLATE NOCASE);

        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            hashtag TEXT,
            title TEXT,
            start TEXT,
            "end" TEXT,
            hosts TEXT,            -- JSON array of handles
            source TEXT,           -- detected | scheduled | manual | capture
            timezone TEXT,
            platforms TEXT,        -- JSON array
            post_count INTEGER
        );

        CREATE TABLE questions (
            id INTEGER PRIMARY KEY,
            session_id INTEGER REFERENCES sessions(id),
            number INTEGER,
            post_id TEXT,
            text TEXT
        );

        CREATE TABLE posts (
            id TEXT PRIMARY KEY,
            platform TEXT NOT NULL,
            source TEXT,
            url TEXT,
            author_id TEXT REFERENCES authors(id),
            author_handle TEXT,    -- copied from authors so FTS and facets see it
            author_name TEXT,
            text TEXT,
            html TEXT,
            created_at TEXT,
            reply_to_id TEXT REFERENCES posts(id),
            reply_to_author TEXT,
            root_id TEXT,          -- the source's own conversation/root id
            quote_of_id TEXT REFERENCES posts(id),
            is_repost INTEGER NOT NULL DEFAULT 0,
            lang TEXT,
            like_count INTEGER,
            repost_count INTEGER,
            reply_count INTEGER,
            quote_count INTEGER,
            conversation_id TEXT,  -- set by analysis (threads.py)
            matched INTEGER NOT NULL DEFAULT 1,
            question_id INTEGER REFERENCES questions(id),
            answer_to_id INTEGER REFERENCES questions(id),
            local_id TEXT,         -- Mastodon: id on `instance`
            instance TEXT,
            reply_to_local_id TEXT,
            spoiler_text TEXT,
            edited_at TEXT
        );
        CREATE INDEX idx_posts_created_at ON posts(created_at);
        CREATE INDEX idx_posts_author_id ON posts(author_id);
        CREATE INDEX idx_posts_reply_to_id ON posts(reply_to_id);
        CREATE INDEX idx_posts_quote_of_id ON posts(quote_of_id);
        CREATE INDEX idx_posts_conversation_id ON posts(conversation_id);
        CREATE INDEX idx_posts_local ON posts(instance, local_id);

        CREATE TABLE hashtags (
            id INTEGER PRIMARY KEY,
            tag TEXT NOT NULL UNIQUE COLLATE NOCASE
        );
        CREATE TABLE post_hashtags (
            post_id TEXT NOT NULL REFERENCES posts(id),
            hashtag_id INTEGER NOT NULL REFERENCES hashtags(id),
            PRIMARY KEY (post_id, hashtag_id)
        ) WITHOUT ROWID;
        CREATE INDEX idx_post_hashtags_hashtag ON post_hashtags(hashtag_id, post_id);

        CREATE TABLE mentions (
            post_id TEXT NOT NULL REFERENCES posts(id),
            handle TEXT NOT NULL,
            PRIMARY KEY (post_id, handle)
        ) WITHOUT ROWID;

        CREATE TABLE links (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE
        );
        CREATE TABLE post_links (
            post_id TEXT NOT NULL REFERENCES posts(id),
            link_id INTEGER NOT NULL REFERENCES links(id),
            PRIMARY KEY (post_id, link_id)
        ) WITHOUT ROWID;

        CREATE TABLE media (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,
            type TEXT,
            alt TEXT,
            preview_url TEXT
        );
        CREATE TABLE post_media (
            post_id TEXT NOT NULL REFERENCES posts(id),
            media_id INTEGER NOT NULL REFERENCES media(id),
            PRIMARY KEY (post_id, media_id)
        ) WITHOUT ROWID;

        CREATE TABLE session_posts (
            session_id INTEGER NOT NULL REFERENCES sessions(id),
            post_id TEXT NOT NULL REFERENCES posts(id),
            PRIMARY KEY (session_id, post_id)
        ) WITHOUT ROWID;
        CREATE INDEX idx_session_posts_post ON session_posts(post_id);

        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,   -- the root post id
            session_id INTEGER REFERENCES sessions(id),
            size INTEGER,
            depth INTEGER,
            participants INTEGER,
            started TEXT,
            ended TEXT
        );

        CREATE TABLE raw (
            post_id TEXT NOT NULL,
            format TEXT NOT NULL,
            json TEXT NOT NULL,
            PRIMARY KEY (post_id, format)
        ) WITHOUT ROWID;

        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            path TEXT,
            format TEXT,
            started TEXT,
            finished TEXT,
            added INTEGER,
            updated INTEGER,
            unchanged INTEGER,
            skipped INTEGER,
            status TEXT
        );

        CREATE TABLE captures (
            id INTEGER PRIMARY KEY,
            platform TEXT,
            query TEXT,
            endpoint TEXT,
            started TEXT,
            finished TEXT,
            added INTEGER,
            updated INTEGER,
            requests INTEGER,
            state TEXT,            -- JSON: since ids, cursors, for resuming
            status TEXT
        );
        """
    )
    db["posts"].enable_fts(
        ["text", "author_handle", "author_name"],
        tokenize="porter unicode61 remove_diacritics 2",
        create_triggers=True,
    )


@migrations()
def m002_raw_rowid_table(db: sqlite_utils.Database) -> None:
    # `raw` rows are whole source objects (2-4 KB each).  As a WITHOUT ROWID
    # table every row sat in the primary-key b-tree with overflow pages: the
    # file was twice the size and inserts 2-3x slower than a rowid table
    # with a separate key index (measured on 60,000 twarc2 posts).
    db.executescript(
        """
        CREATE TABLE raw_new (
            post_id TEXT NOT NULL,
            format TEXT NOT NULL,
            json TEXT NOT NULL,
            PRIMARY KEY (post_id, format)
        );
        INSERT INTO raw_new (post_id, format, json) SELECT post_id, format, json FROM raw;
        DROP TABLE raw;
        ALTER TABLE raw_new RENAME TO raw;
        """
    )


@migrations()
def m101_analysis(db: sqlite_utils.Database) -> None:
    # Analysis (sessions.py, threads.py, qa.py) bookkeeping.
    # - sessions.window_start/window_end: the membership window (a scheduled
    #   session's start/end are the chat hour; its window adds the margins).
    # - session_posts.via: 'tag' (carries the hashtag, in the window) or
    #   'thread' (an untagged reply into, or parent within, the session).
    # - chats: per-hashtag settings the user gave once (explicit hashtags,
    #   time zone, hosts, Q&A patterns, schedules), so the automatic
    #   re-analysis after each import applies them again.
    # - analysis_dirty: analysed posts that a later sighting changed in a way
    #   that matters (time, matched, reply links, text); new posts are found
    #   by posts.conversation_id IS NULL, so inserts cost nothing extra.
    # - posts_au is re-created to fire only when indexed columns change: the
    #   analysis writes conversation_id/question_id/answer_to_id on every
    #   post, which must not rewrite the FTS index.
    db.executescript(
        """
        ALTER TABLE sessions ADD COLUMN window_start TEXT;
        ALTER TABLE sessions ADD COLUMN window_end TEXT;
        ALTER TABLE sessions ADD COLUMN configured_hosts TEXT;  -- JSON: --host given for this session
        CREATE INDEX idx_sessions_hashtag ON sessions(hashtag COLLATE NOCASE, start);
        ALTER TABLE session_posts ADD COLUMN via TEXT;
        CREATE INDEX idx_questions_session ON questions(session_id, number);
        CREATE INDEX idx_posts_question_id ON posts(question_id) WHERE question_id IS NOT NULL;
        CREATE INDEX idx_posts_answer_to_id ON posts(answer_to_id) WHERE answer_to_id IS NOT NULL;
        CREATE INDEX idx_conversations_session ON conversations(session_id);

        CREATE TABLE chats (
            hashtag TEXT PRIMARY KEY COLLATE NOCASE,
            explicit INTEGER NOT NULL DEFAULT 0,  -- named by the user: always analysed
            timezone TEXT,
            hosts TEXT,              -- JSON array of handles
            gap_seconds INTEGER,
            min_posts INTEGER,
            question_pattern TEXT,
            answer_pattern TEXT,
            schedules TEXT           -- JSON array of {every, timezone, duration, before, after, title}
        );

        CREATE TABLE analysis_dirty (post_id TEXT PRIMARY KEY) WITHOUT ROWID;
        CREATE TRIGGER posts_analysis_dirty
        AFTER UPDATE OF created_at, matched, reply_to_id, root_id, quote_of_id, text, is_repost, author_id
        ON posts
        WHEN NEW.conversation_id IS NOT NULL AND (
            NEW.created_at IS NOT OLD.created_at OR NEW.matched IS NOT OLD.matched
            OR NEW.reply_to_id IS NOT OLD.reply_to_id OR NEW.root_id IS NOT OLD.root_id
            OR NEW.quote_of_id IS NOT OLD.quote_of_id OR NEW.text IS NOT OLD.text
            OR NEW.is_repost IS NOT OLD.is_repost OR NEW.author_id IS NOT OLD.author_id)
        BEGIN
            INSERT OR IGNORE INTO analysis_dirty (post_id) VALUES (NEW.id);
        END;

        DROP TRIGGER IF EXISTS posts_au;
        CREATE TRIGGER posts_au AFTER UPDATE OF text, author_handle, author_name ON posts BEGIN
          INSERT INTO posts_fts (posts_fts, rowid, text, author_handle, author_name)
            VALUES ('delete', old.rowid, old.text, old.author_handle, old.author_name);
          INSERT INTO posts_fts (rowid, text, author_handle, author_name)
            VALUES (new.rowid, new.text, new.author_handle, new.author_name);
        END;

        -- One thread in time order: SELECT * FROM thread_posts WHERE conversation_id = ?
        -- (threads.THREAD_SQL gives reply order with depth).
        CREATE VIEW thread_posts AS
        SELECT conversation_id, id, reply_to_id, quote_of_id, created_at, platform,
               author_id, author_handle, text, url, question_id, answer_to_id
        FROM posts WHERE conversation_id IS NOT NULL
        ORDER BY conversation_id, created_at, id;
        """
    )


@migrations()
def m201_capture(db: sqlite_utils.Database) -> None:
    # Live capture (chatarchive/capture/).
    # - capture_pages: API response pages exactly as received, each one
    #   that added or changed posts (the archive is the record: `raw` keeps
    #   one object per post, but an X page's includes only exist at page
    #   level; quiet polls are not kept).
    #   Request URLs only: tokens travel in headers and are never stored.
    # - captures.resume_key: platform + query + endpoint + window; a rerun
    #   with the same key continues from the newest row's state.
    # - captures.pages / problems: pages committed, recent problems (JSON).
    db.executescript(
        """
        CREATE TABLE capture_pages (
            id INTEGER PRIMARY KEY,
            capture_id INTEGER REFERENCES captures(id),
            platform TEXT,
            kind TEXT,             -- search | context
            url TEXT,
            retrieved_at TEXT,
            posts INTEGER,
            json TEXT
        );
        CREATE INDEX idx_capture_pages_capture ON capture_pages(capture_id);
        ALTER TABLE captures ADD COLUMN resume_key TEXT;
        ALTER TABLE captures ADD COLUMN pages INTEGER;
        ALTER TABLE captures ADD COLUMN problems TEXT;
        CREATE INDEX idx_captures_resume_key ON captures(resume_key);
        """
    )


@migrations()
def m202_unresolved_replies(db: sqlite_utils.Database) -> None:
    # resolve_local_replies runs after every Mastodon page a capture commits;
    # this partial index holds only the replies still waiting for their
    # parent, so it costs nothing once they resolve and spares a scan of
    # every post on each page.
    db.execute(
        "CREATE INDEX idx_posts_unresolved_replies ON posts(instance, reply_to_local_id) "
        "WHERE reply_to_id IS NULL AND reply_to_local_id IS NOT NULL"
    )


@migrations()
def m301_serve(db: sqlite_utils.Database) -> None:
    # Datasette (serve.py) facets on posts by platform: without an index the
    # facet scans every post and times out on big archives.  The two views
    # give Datasette one row per (session, post) and per (hashtag, post), so
    # posts can be faceted by session, question and hashtag, which live in
    # link tables.  Columns are named, not *, so later migrations that add
    # columns to posts leave the views' shape alone.
    db.executescript(
        """
        CREATE INDEX IF NOT EXISTS idx_posts_platform ON posts(platform);

        CREATE VIEW posts_in_sessions AS
        SELECT s.slug AS session, s.hashtag AS hashtag, p.created_at AS created_at,
               p.author_handle AS author, p.platform AS platform, q.number AS question,
               CASE WHEN p.question_id IS NOT NULL THEN 'question'
                    WHEN p.answer_to_id IS NOT NULL THEN 'answer' ELSE '' END AS role,
               p.text AS text, p.url AS url, p.id AS post_id
        FROM session_posts sp
        JOIN sessions s ON s.id = sp.session_id
        JOIN posts p ON p.id = sp.post_id
        LEFT JOIN questions q ON q.id = coalesce(p.question_id, p.answer_to_id);

        CREATE VIEW posts_by_hashtag AS
        SELECT h.tag AS hashtag, p.created_at AS created_at, p.author_handle AS author,
               p.platform AS platform, p.text AS text, p.url AS url, p.id AS post_id
        FROM post_hashtags ph
        JOIN hashtags h ON h.id = ph.hashtag_id
        JOIN posts p ON p.id = ph.post_id;
        """
    )


@migrations()
def m003_local_ids(db: sqlite_utils.Database) -> None:
    # A Mastodon post seen on two servers has a local id on each; posts
    # keeps one (instance, local_id), this table keeps them all, so a reply
    # naming its parent by any server's id resolves (resolve_local_replies).
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS local_ids (
            instance TEXT NOT NULL,
            local_id TEXT NOT NULL,
            post_id TEXT NOT NULL REFERENCES posts(id),
            PRIMARY KEY (instance, local_id)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO local_ids (instance, local_id, post_id)
        SELECT instance, local_id, id FROM posts
        WHERE platform = 'mastodon' AND local_id IS NOT NULL AND instance IS NOT NULL;
        """
    )


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (creating when missing) an archive and bring its schema up to date."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    # Only takes effect when the file is created: 16 KB pages hold whole raw
    # objects and long FTS doclists, the archive is ~25% smaller and bulk
    # imports faster than with the 4 KB default.
    db.execute("PRAGMA page_size = 16384")
    # NORMAL is safe with the rollback journal and much faster for imports;
    # the page cache is bounded so RSS stays flat on huge imports.
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA cache_size = -32000")
    db.execute("PRAGMA foreign_keys = OFF")
    migrations.apply(db)
    return db


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------
# Writing posts

POST_COLUMNS = [
    "id", "platform", "source", "url", "author_id", "author_handle", "author_name",
    "text", "html", "created_at", "reply_to_id", "reply_to_author", "root_id",
    "quote_of_id", "is_repost", "lang", "like_count", "repost_count",
    "reply_count", "quote_count", "matched", "local_id", "instance",
    "reply_to_local_id", "spoiler_text", "edited_at",
]
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


def _is_placeholder(author_id: Any) -> bool:
    return isinstance(author_id, str) and author_id.startswith(X_PLACEHOLDER_PREFIX)


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
    for i, rule in enumerate(_RULE):
        n = new[i]
        if i == _AUTHOR_ID:
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

    def __iadd__(self, other: SaveStats) -> SaveStats:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def _chunks(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _raw_json(raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    return orjson.dumps(raw).decode()


def _union(old: list, new: list) -> list:
    if not new or new == old:
        return old
    return old + [x for x in new if x not in old]


def _web_links(links: list[str]) -> list[str]:
    """Only http(s) links reach the links table: a source may carry
    ``javascript:``, ``data:`` or other schemes (a Bluesky link facet is any
    string the client chose)."""
    if not links:
        return links
    return [u for u in links if isinstance(u, str) and u[:8].lower().startswith(("http://", "https://"))]


class _Pending:
    """One post waiting in a batch: its column values, entities and raw JSON
    (serialized at once, so the parsed source page can be freed)."""

    __slots__ = ("hashtags", "links", "media", "mentions", "raw", "values")

    def __init__(self, post: Post):
        self.values = _values(post)
        self.hashtags = post.hashtags
        self.mentions = post.mentions
        self.links = _web_links(post.links)
        self.media = post.media
        self.raw = _raw_json(post.raw)

    def merge(self, later: _Pending) -> None:
        later_wins = later.values[_MATCHED] >= self.values[_MATCHED]
        self.values = _merge_values(self.values, later.values)
        self.hashtags = _union(self.hashtags, later.hashtags)
        self.mentions = _union(self.mentions, later.mentions)
        self.links = _union(self.links, later.links)
        if later.media:
            urls = {m.url for m in self.media}
            self.media = self.media + [m for m in later.media if m.url not in urls]
        if later.raw is not None and (later_wins or self.raw is None):
            self.raw = later.raw


def _max_variables(conn: sqlite3.Connection) -> int:
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        return getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


_CACHE_LIMIT = 100_000  # ids of hashtags/links/media remembered per writer


class _Background:
    """One thread that writes the batches PostWriter hands it, in order.

    Python's sqlite3 releases the GIL while SQLite steps a statement, and a
    multi-row INSERT with its FTS trigger is one long step: the importer's
    thread parses and normalizes the next pages meanwhile.  At most one
    batch waits in the queue, so memory stays bounded."""

    def __init__(self, write: Callable[[list, list], None]):
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
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                self.error = e
            finally:
                self.queue.task_done()

    def submit(self, entries: list, authors: list) -> None:
        self.check()
        self.queue.put((entries, authors))

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

    def __init__(self, db: sqlite_utils.Database, batch_size: int = 2000, *, background: bool = False):
        self.db = db
        self.conn = db.conn
        self.batch_size = batch_size
        self.pending: dict[str, _Pending] = {}
        self.authors: dict[str, tuple] = {}
        self.stats = SaveStats()
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
        self._select_head = f"SELECT {', '.join(POST_COLUMNS)} FROM posts WHERE id IN "
        self._background = _Background(self._write_batch) if background else None

    def add(self, posts: Iterable[Post]) -> None:
        pending, authors = self.pending, self.authors
        for post in posts:
            entry = _Pending(post)
            a = post.author
            if a is not None:
                new = (a.id, a.platform, a.handle, a.name, a.avatar_url, a.url)
                old = authors.get(a.id)
                authors[a.id] = new if old is None or old == new else tuple(
                    n if n is not None else o for o, n in zip(old, new))
            prior = pending.get(post.id)
            if prior is None:
                pending[post.id] = entry
            else:
                # Same post twice in one batch (a context copy and the real one).
                prior.merge(entry)
            if len(pending) >= self.batch_size:
                self._submit()

    def _submit(self) -> None:
        if not self.pending and not self.authors:
            return
        entries = list(self.pending.values())
        authors = list(self.authors.values())
        self.pending.clear()  # in place: add() holds a reference
        self.authors.clear()
        if self._background is not None:
            self._background.submit(entries, authors)
        else:
            self._write_batch(entries, authors)

    def flush(self) -> SaveStats:
        """Write everything added so far; returns the running totals."""
        self._submit()
        if self._background is not None:
            self._background.wait()
        return self.stats

    def close(self) -> None:
        """Stop the background thread (waiting for the batch it is writing);
        unflushed posts are dropped.  Safe to call more than once."""
        if self._background is not None:
            self._background.close()
            self._background = None

    def _write_batch(self, entries: list[_Pending], authors: list[tuple]) -> None:
        conn = self.conn
        self._save_authors(authors)
        existing: dict[str, list[Any]] = {}
        for chunk in _chunks([e.values[0] for e in entries], 500):
            sql = self._select_head + "(" + ", ".join("?" * len(chunk)) + ")"
            for row in conn.execute(sql, chunk):
                existing[row[0]] = list(row)
        inserts: list[list[Any]] = []
        update_all: list[list[Any]] = []
        update_plain: list[list[Any]] = []
        raws_replace: list[tuple] = []
        raws_keep: list[tuple] = []
        for e in entries:
            values = e.values
            old = existing.get(values[0])
            if old is None:
                inserts.append(values)
                if e.raw is not None:
                    raws_replace.append((values[0], values[2], e.raw))
                continue
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
            self._many(self._insert_head, inserts)
        # Updates as upserts of whole rows (multi-row, like the inserts);
        # rows whose text, handle and name are unchanged do not name those
        # columns, so the FTS update trigger leaves them alone.
        self._many(self._insert_head, update_all, self._update_all_tail)
        self._many(self._insert_head, update_plain, self._update_plain_tail)
        self.stats.added += len(inserts)
        self.stats.updated += len(update_all) + len(update_plain)
        self._save_entities(entries)
        self._many("INSERT OR REPLACE INTO raw (post_id, format, json) VALUES ", raws_replace)
        self._many("INSERT OR IGNORE INTO raw (post_id, format, json) VALUES ", raws_keep)

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
            "INSERT INTO authors (id, platform, handle, name, avatar_url, url) VALUES ",
            rows,
            """ ON CONFLICT(id) DO UPDATE SET
                 handle = coalesce(excluded.handle, handle),
                 name = coalesce(excluded.name, name),
                 avatar_url = coalesce(excluded.avatar_url, avatar_url),
                 url = coalesce(excluded.url, url)
               WHERE coalesce(excluded.handle, handle) IS NOT handle
                  OR coalesce(excluded.name, name) IS NOT name
                  OR coalesce(excluded.avatar_url, avatar_url) IS NOT avatar_url
                  OR coalesce(excluded.url, url) IS NOT url""",
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
        for chunk in _chunks(missing, 500):
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


def resolve_local_replies(db: sqlite_utils.Database) -> int:
    """Mastodon replies name their parent by its id on the same server; map
    those to the parent's uri (our post id) wherever the parent is stored."""
    # local_ids holds every server's id of a post; only replies still
    # waiting for their parent are visited (the partial index of m202).
    cur = db.conn.execute(
        """UPDATE posts INDEXED BY idx_posts_unresolved_replies SET reply_to_id = (
               SELECT l.post_id FROM local_ids l
               WHERE l.instance = posts.instance AND l.local_id = posts.reply_to_local_id)
           WHERE reply_to_id IS NULL AND reply_to_local_id IS NOT NULL
             AND EXISTS (SELECT 1 FROM local_ids l
                         WHERE l.instance = posts.instance AND l.local_id = posts.reply_to_local_id)"""
    )
    return cur.rowcount


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


# --------------------------------------------------------------------------
# Search

HIGHLIGHT_START, HIGHLIGHT_END = "\x02", "\x03"


BM25_WEIGHTS = "10.0, 2.0, 1.0"  # text, author_handle, author_name
# Above this many full-text matches, "newest" walks posts by time and stops
# at the limit instead of sorting every match.
NEWEST_SCAN_THRESHOLD = 2000
_RESULT_COLUMNS = ("id", "platform", "url", "author_handle", "author_name", "created_at", "text",
                   "matched", "like_count", "repost_count")
_FTS_OPERATORS = re.compile(r'["*():^+]|\b(AND|OR|NOT|NEAR)\b')


def _plain_words_query(query: str) -> str | None:
    """For a query without FTS5 operators that FTS5 still rejects (a word
    with punctuation: #cmgrchat, e-mail, don't): every word as a quoted
    string, which FTS5 tokenizes like the text.  None when not applicable."""
    if _FTS_OPERATORS.search(query):
        return None
    words = query.split()
    return " ".join('"' + w.replace('"', '""') + '"' for w in words) if words else None


def search(
    db: sqlite_utils.Database,
    query: str,
    *,
    hashtag: str | None = None,
    author: str | None = None,
    session: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 20,
    order: str = "best",
) -> list[dict[str, Any]]:
    """Full-text search; returns post rows plus `snippet` (matches wrapped in
    HIGHLIGHT_START/HIGHLIGHT_END) and `rank` (bm25, lower is better; None
    with ``order="newest"``).

    Two steps keep big archives fast: first the ids of the best (or newest)
    ``limit`` matches, computing nothing else per match; then rows and
    snippets for those few only."""
    if order not in ("best", "newest"):
        raise ValueError(f"order must be 'best' or 'newest', not {order!r}")
    try:
        return _search(db, query, hashtag, author, session, since, until, limit, order)
    except sqlite3.OperationalError as e:
        msg = str(e)
        if not ("fts5" in msg or "syntax error" in msg or "no such column" in msg or "unterminated" in msg):
            raise
        plain = _plain_words_query(query)
        if plain is not None and plain != query:
            try:
                return _search(db, plain, hashtag, author, session, since, until, limit, order)
            except sqlite3.OperationalError:
                pass
        raise SearchError(
            f"Invalid search query: {query!r} ({msg}). FTS5 syntax: words, \"exact phrases\", "
            "AND/OR/NOT (upper case), prefix*, NEAR(a b). Quote words with punctuation."
        ) from None


def _search(db, query, hashtag, author, session, since, until, limit, order) -> list[dict[str, Any]]:
    conn = db.conn
    filters: list[str] = []
    params: dict[str, Any] = {"query": query, "limit": limit}
    # Filters are checked per candidate post with primary-key lookups (a
    # hashtag can have a hundred thousand posts; the matches are fewer).
    if hashtag:
        row = conn.execute("SELECT id FROM hashtags WHERE tag = ?", (hashtag.lstrip("#"),)).fetchone()
        filters.append("EXISTS (SELECT 1 FROM post_hashtags ph WHERE ph.post_id = posts.id AND ph.hashtag_id = :tag_id)")
        params["tag_id"] = row[0] if row else None  # unknown: matches nothing
    if author:
        filters.append("(posts.author_handle = :author COLLATE NOCASE OR posts.author_id = :author)")
        params["author"] = author.lstrip("@")
    if session:
        row = conn.execute("SELECT id FROM sessions WHERE slug = ? OR CAST(id AS TEXT) = ?", (session, session)).fetchone()
        filters.append("EXISTS (SELECT 1 FROM session_posts sp WHERE sp.session_id = :session_id AND sp.post_id = posts.id)")
        params["session_id"] = row[0] if row else None
    if since:
        filters.append("posts.created_at >= :since")
        params["since"] = since
    if until:
        filters.append("posts.created_at < :until")
        params["until"] = until
    extra = "".join(" AND " + f for f in filters)
    if order == "best":
        join = " JOIN posts ON posts.rowid = posts_fts.rowid" if filters else ""
        sql = f"""SELECT posts_fts.rowid, bm25(posts_fts, {BM25_WEIGHTS}) AS rank FROM posts_fts{join}
                  WHERE posts_fts MATCH :query{extra}
                  ORDER BY rank LIMIT :limit"""
    else:
        matches = conn.execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH :query", params).fetchone()[0]
        if matches > NEWEST_SCAN_THRESHOLD:
            # Many matches: newest first through the time index, each post
            # checked against the set of matches, stopping at the limit.
            sql = f"""SELECT posts.rowid, NULL FROM posts INDEXED BY idx_posts_created_at
                      WHERE posts.rowid IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH :query){extra}
                      ORDER BY posts.created_at DESC LIMIT :limit"""
        else:
            sql = f"""SELECT posts.rowid, NULL FROM posts_fts JOIN posts ON posts.rowid = posts_fts.rowid
                      WHERE posts_fts MATCH :query{extra}
                      ORDER BY posts.created_at DESC LIMIT :limit"""
    ranked = conn.execute(sql, params).fetchall()
    # Step two: rows and snippets of those posts only.  (No bm25 here: for
    # a phrase it would count the phrase's documents all over again.)
    found: dict[int, dict[str, Any]] = {}
    cols = ", ".join(f"posts.{c}" for c in _RESULT_COLUMNS)
    for chunk in _chunks([r[0] for r in ranked], 500):
        marks = ", ".join("?" * len(chunk))
        cursor = conn.execute(
            f"""SELECT posts.rowid, {cols},
                   snippet(posts_fts, 0, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', 16) AS snippet
                FROM posts_fts JOIN posts ON posts.rowid = posts_fts.rowid
                WHERE posts_fts MATCH ? AND posts_fts.rowid IN ({marks})""",
            [query, *chunk],
        )
        names = [d[0] for d in cursor.description][1:]
        for row in cursor:
            found[row[0]] = dict(zip(names, row[1:]))
    out = []
    for rowid, rank in ranked:
        row = found.get(rowid)
        if row is not None:
            row["rank"] = rank
            out.append(row)
    return out
