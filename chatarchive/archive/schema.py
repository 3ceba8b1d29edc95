"""The archive's schema: numbered migrations (never edited once released) and opening the file.

Each migration says why it exists.  ``open_db`` applies the pending ones, in
the order they are defined in this file, which is the order they were
released (``m003_local_ids`` came after ``m301_serve``).  A new migration goes
at the end, numbered above every existing one (``m302_…`` and on), so
numbers and run order agree from here on.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from ..errors import BusyError, ChatArchiveError, NotFoundError

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
    db.table("posts").enable_fts(
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


@migrations()
def m004_import_conflicts(db: sqlite_utils.Database) -> None:
    # imports.conflicts: sightings of a post that contradicted what the
    # archive holds (another author or time) and were not applied; counted
    # so an import can say so.
    # imports.warnings: values mended on the way in (a time stored as NULL,
    # a count too large to be true).
    # Mastodon replies whose parent is not stored used to keep reply_to_id
    # NULL, so threading saw no reply at all and a thread whose root was
    # missing fell apart into one conversation per reply.  They now point at
    # a placeholder for the absent parent, "local:SERVER/LOCAL_ID"
    # (writer.local_placeholder), which resolve_local_replies replaces with
    # the parent's uri when it arrives; the partial index holds exactly the
    # replies still waiting (writer.WAITING_REPLY, the same expression).
    db.executescript(
        """
        ALTER TABLE imports ADD COLUMN conflicts INTEGER;
        ALTER TABLE imports ADD COLUMN warnings INTEGER;
        UPDATE posts SET reply_to_id = 'local:' || coalesce(instance, 'unknown') || '/' || reply_to_local_id
        WHERE reply_to_id IS NULL AND reply_to_local_id IS NOT NULL;
        DROP INDEX IF EXISTS idx_posts_unresolved_replies;
        CREATE INDEX idx_posts_waiting_replies ON posts(instance, reply_to_local_id)
        WHERE reply_to_local_id IS NOT NULL AND (reply_to_id IS NULL OR
              (reply_to_id >= 'local:' AND reply_to_id < 'local;'));
        """
    )


@migrations()
def m005_session_margins(db: sqlite_utils.Database) -> None:
    # chats.lead_seconds / tail_seconds: how far before and after a
    # session's core (its dense hour) same-day tagged posts still belong to
    # it (announcements, reminders, early and late answers); NULL: defaults.
    db.executescript(
        """
        ALTER TABLE chats ADD COLUMN lead_seconds INTEGER;
        ALTER TABLE chats ADD COLUMN tail_seconds INTEGER;
        """
    )


@migrations()
def m006_expand_short_links(db: sqlite_utils.Database) -> None:
    # X post text stored before this version holds t.co links although the
    # source file held the expanded URLs (entities), so every output showed
    # t.co and a published recap depended on X's redirector.  New imports
    # expand them when they normalize (sources.shortlinks); this re-expands
    # the stored text from the raw objects, a batch of posts at a time.
    expand_stored_short_links(db)


def expand_stored_short_links(db: sqlite_utils.Database, batch: int = 500) -> int:
    """Replace t.co links in stored X text by the URLs the posts' raw
    objects hold (m006).  Walks the X posts whose text has "t.co/" in rowid
    order, ``batch`` at a time, so memory stays flat on any archive;
    returns how many posts changed."""
    from ..sources.shortlinks import expand, map_from_raw

    conn = db.conn
    changed, last = 0, 0
    while True:
        rows = conn.execute(
            "SELECT rowid, id, text FROM posts WHERE rowid > ? AND platform = 'x' AND text LIKE '%t.co/%' "
            "ORDER BY rowid LIMIT ?", (last, batch)).fetchall()
        if not rows:
            return changed
        last = rows[-1][0]
        ids = [r[1] for r in rows]
        raws: dict[str, list[tuple[str, str]]] = {}
        marks = ", ".join("?" * len(ids))
        for pid, fmt, raw in conn.execute(f"SELECT post_id, format, json FROM raw WHERE post_id IN ({marks})", ids):
            raws.setdefault(pid, []).append((fmt, raw))
        for _, pid, text in rows:
            links: dict[str, str] = {}
            for fmt, raw in raws.get(pid, ()):
                for short, url in map_from_raw(fmt, raw, text).items():
                    links.setdefault(short, url)
                if fmt == "twarc2":  # a repost's text is its original's: so are the links
                    for short, url in _original_links(conn, raw, text).items():
                        links.setdefault(short, url)
            new = expand(text, links)
            if new != text:
                conn.execute("UPDATE posts SET text = ? WHERE rowid = (SELECT rowid FROM posts WHERE id = ?)",
                             (new, pid))
                changed += 1


def _original_links(conn: sqlite3.Connection, raw: str, text: str) -> dict[str, str]:
    """For a stored twarc2 repost, the t.co map of the reposted original."""
    import orjson

    from ..sources.shortlinks import map_from_raw

    if not text.startswith("RT @"):
        return {}
    try:
        tweet = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    refs = (tweet.get("referenced_tweets") or tweet.get("referenced_posts")) if isinstance(tweet, dict) else None
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, dict) and ref.get("type") == "retweeted" and ref.get("id") is not None:
            row = conn.execute("SELECT json FROM raw WHERE post_id = ? AND format = 'twarc2'",
                               (str(ref["id"]),)).fetchone()
            if row:
                return map_from_raw("twarc2", row[0], text)
    return {}


@migrations()
def m007_deletions(db: sqlite_utils.Database) -> None:
    # posts.deleted_at: when a post was found deleted (a Jetstream delete,
    # check-deleted) or removed at its author's request.  Its content is
    # removed (archive/deletion.py); the row stays as a tombstone so threads
    # stay whole.  The partial index holds the tombstones only (few), so
    # listing them is instant and costs the other posts nothing.
    db.executescript(
        """
        ALTER TABLE posts ADD COLUMN deleted_at TEXT;
        CREATE INDEX idx_posts_deleted ON posts(deleted_at) WHERE deleted_at IS NOT NULL;
        """
    )


@migrations()
def m008_editorial(db: sqlite_utils.Database) -> None:
    # The host's editorial control and the participants' consent (#11,
    # archive/editorial.py, archive/published.py):
    # - hidden: posts or accounts the host keeps out of published outputs
    #   (the archive keeps them); target_kind 'post' (target_id: posts.id)
    #   or 'account' (authors.id).
    # - pins: a question's best answers, shown first and as "Highlights".
    # - host_notes: the host's Markdown note on a session (question_number
    #   NULL) or on one of its questions.
    # - forgotten_accounts: people removed at their request; later imports
    #   and captures of their posts are redacted on arrival (writer.py).
    # - consent: a per-account decision that overrides the platform's
    #   signal: allow = 1 publishes an unlisted account, 0 withholds any.
    # - settings: the archive's own facts (owner, contact, ...) for the
    #   recap's "about this archive" page.
    db.executescript(
        """
        CREATE TABLE hidden (
            target_kind TEXT NOT NULL,     -- post | account
            target_id TEXT NOT NULL,
            reason TEXT,
            hidden_at TEXT,
            PRIMARY KEY (target_kind, target_id)
        );
        CREATE TABLE pins (
            post_id TEXT PRIMARY KEY REFERENCES posts(id),
            pinned_at TEXT
        );
        CREATE TABLE host_notes (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id),
            question_number INTEGER,
            markdown TEXT NOT NULL,
            updated_at TEXT
        );
        CREATE UNIQUE INDEX idx_host_notes_place ON host_notes(session_id, coalesce(question_number, -1));
        CREATE TABLE forgotten_accounts (
            author_id TEXT PRIMARY KEY,
            forgotten_at TEXT
        );
        CREATE TABLE consent (
            author_id TEXT PRIMARY KEY,
            allow INTEGER NOT NULL,        -- 1: publish (overrides unlisted), 0: never publish
            decided_at TEXT
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT
        );
        """
    )


@migrations()
def m009_unlisted_authors(db: sqlite_utils.Database) -> None:
    # authors.unlisted: the account asked its platform not to be indexed or
    # shown to the public (Mastodon noindex / indexable false, Bluesky
    # !no-unauthenticated, X protected): 1, 0, or NULL when the source does
    # not say.  withheld_posts is the one rule of what published outputs
    # leave out (archive/published.py reads it; Datasette's canned queries
    # filter on it): each post with the first reason that applies
    # (a post can be listed twice; readers take any row).
    db.executescript(
        """
        ALTER TABLE authors ADD COLUMN unlisted INTEGER;
        CREATE INDEX idx_authors_unlisted ON authors(id) WHERE unlisted = 1;
        CREATE VIEW withheld_posts AS
        SELECT h.target_id AS post_id, 'hidden' AS reason FROM hidden h WHERE h.target_kind = 'post'
        UNION ALL
        SELECT p.id, 'hidden' FROM hidden h JOIN posts p ON p.author_id = h.target_id
        WHERE h.target_kind = 'account'
        UNION ALL
        SELECT p.id, 'withdrawn' FROM consent c JOIN posts p ON p.author_id = c.author_id WHERE c.allow = 0
        UNION ALL
        SELECT p.id, 'unlisted' FROM authors a JOIN posts p ON p.author_id = a.id
        WHERE a.unlisted = 1 AND NOT EXISTS (SELECT 1 FROM consent c WHERE c.author_id = a.id);
        """
    )


@migrations()
def m010_link_titles(db: sqlite_utils.Database) -> None:
    # links.title: the page's title when the data gives one (X entities.urls[].title,
    # the unwound title; Mastodon card.title for the card's url; Bluesky
    # app.bsky.embed.external title for its uri), filled on import (Post.link_titles);
    # NULL when the data has none.  The recap's resources digest shows it.
    db.executescript("ALTER TABLE links ADD COLUMN title TEXT;")


@migrations()
def m012_imported_records(db: sqlite_utils.Database) -> None:
    # imported_records: records (JSONL pages of posts) already imported
    # cleanly, by a digest of their bytes and of how they were read
    # (archive/known_records.py); a re-import counts their posts as
    # unchanged without parsing them again.  post_ids: the ids they gave,
    # one per line, so the counts stay those of a full merge.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS imported_records (
            hash BLOB PRIMARY KEY,
            post_ids TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    )


@migrations()
def m013_withheld_posts_by_account(db: sqlite_utils.Database) -> None:
    # withheld_posts, same rows as m009's, each branch driven from its small
    # table.  m009 joined consent to posts, and with no statistics SQLite
    # chose to walk every post and look its author up in consent: ~150 ms at
    # 1M posts for every page that reads the view, even with consent empty.
    # `posts.author_id IN (SELECT ... small table)` makes each branch read its
    # table (hidden, consent, the unlisted authors' partial index) once and
    # reach the posts by idx_posts_author_id; a reader that asks about one
    # post (published_sql: w.post_id = p.id) still finds it by its id first.
    db.executescript(
        """
        DROP VIEW IF EXISTS withheld_posts;
        CREATE VIEW withheld_posts AS
        SELECT h.target_id AS post_id, 'hidden' AS reason FROM hidden h WHERE h.target_kind = 'post'
        UNION ALL
        SELECT p.id, 'hidden' FROM posts p
        WHERE p.author_id IN (SELECT h.target_id FROM hidden h WHERE h.target_kind = 'account')
        UNION ALL
        SELECT p.id, 'withdrawn' FROM posts p
        WHERE p.author_id IN (SELECT c.author_id FROM consent c WHERE c.allow = 0)
        UNION ALL
        SELECT p.id, 'unlisted' FROM posts p
        WHERE p.author_id IN (SELECT a.id FROM authors a WHERE a.unlisted = 1
                              AND NOT EXISTS (SELECT 1 FROM consent c WHERE c.author_id = a.id));
        """
    )


# The tables that make an SQLite file a chatarchive archive (Datasette's
# plugin uses the same test to leave other databases alone).
ARCHIVE_TABLES = frozenset({"posts", "authors", "sessions", "session_posts", "posts_fts"})


def archive_state(path: str | Path) -> str:
    """What is at ``path``, found without writing a byte: ``"missing"``,
    ``"empty"`` (an SQLite file with no tables, or a 0-byte file),
    ``"archive"``, ``"other"`` (SQLite with other tables) or ``"not-sqlite"``."""
    p = Path(path)
    if not p.exists():
        return "missing"
    if p.is_dir():
        return "not-sqlite"
    if p.stat().st_size == 0:
        return "empty"
    try:
        # mode=ro: looking must never create, migrate or journal anything
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return "not-sqlite"
    if not names:
        return "empty"
    return "archive" if names >= ARCHIVE_TABLES else "other"


def check_archive(path: str | Path, *, create: bool = False) -> str:
    """Raise a one-line error unless ``path`` may be opened as an archive:
    an existing archive always, a missing or empty file only with ``create``
    (``import``, ``capture`` and ``demo`` create archives; every other
    command only reads or changes one).  Returns :func:`archive_state`."""
    state = archive_state(path)
    if state == "missing" and not create:
        raise NotFoundError(f"no such archive: {path} (create one with: chatarchive import {path} FILE...)")
    if state == "empty" and not create:
        raise ChatArchiveError(f"{path}: an empty file, not a chatarchive archive yet "
                               f"(create one with: chatarchive import {path} FILE...)")
    if state == "other":
        raise ChatArchiveError(f"{path}: cannot open as a chatarchive database: an SQLite database of something "
                               "else, not a chatarchive archive; left as it is (give a new file name)")
    if state == "not-sqlite":
        raise ChatArchiveError(f"{path}: cannot open as a chatarchive database: not an SQLite database "
                               "(left as it is)")
    return state


DEFAULT_BUSY_TIMEOUT = 5.0  # seconds a command waits for another's lock


def busy_timeout() -> float:
    """Seconds to wait for another process's lock before giving up:
    ``CHATARCHIVE_BUSY_TIMEOUT`` (seconds) or 5."""
    value = os.environ.get("CHATARCHIVE_BUSY_TIMEOUT", "")
    try:
        seconds = float(value) if value.strip() else DEFAULT_BUSY_TIMEOUT
    except ValueError:
        raise ChatArchiveError(f"CHATARCHIVE_BUSY_TIMEOUT={value!r} is not a number of seconds") from None
    return max(0.0, min(seconds, 3600.0)) if seconds == seconds else DEFAULT_BUSY_TIMEOUT


def is_busy(e: BaseException) -> bool:
    """Whether an SQLite error means another connection holds a lock."""
    return isinstance(e, sqlite3.OperationalError) and (
        "locked" in str(e) or "busy" in str(e).lower())


def open_db(path: str | Path, *, create: bool = False) -> sqlite_utils.Database:
    """Open an archive and bring its schema up to date.  A missing (or empty)
    file becomes a new archive only with ``create``; a file that is not an
    archive is refused before anything is written to it (``":memory:"`` is
    always new).  When another process holds the archive for longer than
    :func:`busy_timeout`, BusyError says so in one line."""
    if str(path) != ":memory:":
        check_archive(path, create=create)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout())
    try:
        return _prepare(conn)
    except sqlite3.OperationalError as e:
        conn.close()
        if is_busy(e):
            raise BusyError(str(path)) from None
        raise


def _prepare(conn: sqlite3.Connection) -> sqlite_utils.Database:
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


