"""The SQLite archive: schema (migrations), the one writer of posts, search.

Everything that writes posts goes through :class:`PostWriter` so that
importers and live capture share one idempotent upsert: a post is keyed by
its platform id, a second sighting only fills in what the first lacked (or
refreshes counts), and a context sighting (``matched = 0``) never downgrades
a post that matched the hashtag.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson
import sqlite_utils
from sqlite_utils import Migrations

from .errors import SearchError
from .models import Post

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


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (creating when missing) an archive and bring its schema up to date."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
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


def post_row(post: Post) -> dict[str, Any]:
    a = post.author
    return {
        "id": post.id, "platform": post.platform, "source": post.source,
        "url": post.url, "author_id": a.id if a else None,
        "author_handle": a.handle if a else None, "author_name": a.name if a else None,
        "text": post.text or "", "html": post.html, "created_at": post.created_at,
        "reply_to_id": post.reply_to_id, "reply_to_author": post.reply_to_author,
        "root_id": post.root_id, "quote_of_id": post.quote_of_id,
        "is_repost": 1 if post.is_repost else 0, "lang": post.lang,
        "like_count": post.like_count, "repost_count": post.repost_count,
        "reply_count": post.reply_count, "quote_count": post.quote_count,
        "matched": 1 if post.matched else 0, "local_id": post.local_id,
        "instance": post.instance, "reply_to_local_id": post.reply_to_local_id,
        "spoiler_text": post.spoiler_text, "edited_at": post.edited_at,
    }


def merge_rows(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Combine two sightings of one post.

    The sighting that matched the query (or, at equal rank, the newer one)
    wins; nothing known is replaced by NULL; counts take the newest known
    value; matched and is_repost only ever go up.
    """
    prefer_new = new["matched"] >= old["matched"]
    out = dict(old)
    for col in POST_COLUMNS:
        n, o = new.get(col), old.get(col)
        if col == "matched" or col == "is_repost":
            out[col] = max(o or 0, n or 0)
        elif col in _COUNTS:
            out[col] = n if n is not None else o
        elif n is None or n == "":
            out[col] = o if o is not None else n
        elif o is None or o == "" or prefer_new:
            out[col] = n
    return out


@dataclass
class SaveStats:
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: "SaveStats") -> "SaveStats":
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def _chunks(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class PostWriter:
    """Batched, idempotent writer of Post records (and their authors,
    entities and raw source objects).  Call :meth:`add` with posts, then
    :meth:`flush`; the caller owns the transaction."""

    def __init__(self, db: sqlite_utils.Database, batch_size: int = 2000):
        self.db = db
        self.conn = db.conn
        self.batch_size = batch_size
        self.pending: dict[str, Post] = {}
        self.stats = SaveStats()
        self._tag_ids: dict[str, int] = {}
        self._link_ids: dict[str, int] = {}
        cols = ", ".join(POST_COLUMNS)
        marks = ", ".join("?" for _ in POST_COLUMNS)
        self._insert_sql = f"INSERT INTO posts ({cols}) VALUES ({marks})"
        sets = ", ".join(f"{c} = ?" for c in POST_COLUMNS if c != "id")
        self._update_sql = f"UPDATE posts SET {sets} WHERE id = ?"

    def add(self, posts: Iterable[Post]) -> None:
        for post in posts:
            prior = self.pending.get(post.id)
            if prior is not None:
                # Same post twice in one batch (a context copy and the real
                # one): keep the better sighting, fill gaps from the other.
                if (post.matched, True) < (prior.matched, True):
                    prior, post = post, prior
                self.pending[post.id] = _merge_posts(prior, post)
            else:
                self.pending[post.id] = post
            if len(self.pending) >= self.batch_size:
                self.flush()

    def flush(self) -> SaveStats:
        if not self.pending:
            return self.stats
        posts = list(self.pending.values())
        self.pending = {}
        conn = self.conn
        self._save_authors(posts)
        existing: dict[str, dict[str, Any]] = {}
        for chunk in _chunks([p.id for p in posts], 500):
            q = f"SELECT {', '.join(POST_COLUMNS)} FROM posts WHERE id IN ({', '.join('?' * len(chunk))})"
            for row in conn.execute(q, chunk):
                existing[row[0]] = dict(zip(POST_COLUMNS, row))
        inserts, updates, changed_posts = [], [], []
        for post in posts:
            row = post_row(post)
            old = existing.get(post.id)
            if old is None:
                inserts.append([row[c] for c in POST_COLUMNS])
                changed_posts.append(post)
            else:
                merged = merge_rows(old, row)
                if merged != old:
                    updates.append([merged[c] for c in POST_COLUMNS if c != "id"] + [post.id])
                    changed_posts.append(post)
                else:
                    self.stats.unchanged += 1
        if inserts:
            conn.executemany(self._insert_sql, inserts)
        if updates:
            conn.executemany(self._update_sql, updates)
        self.stats.added += len(inserts)
        self.stats.updated += len(updates)
        self._save_entities(changed_posts)
        conn.executemany(
            "INSERT OR REPLACE INTO raw (post_id, format, json) VALUES (?, ?, ?)",
            [
                (p.id, p.source, p.raw if isinstance(p.raw, str) else orjson.dumps(p.raw).decode())
                for p in changed_posts
                if p.raw is not None
            ],
        )
        return self.stats

    def _save_authors(self, posts: list[Post]) -> None:
        authors = {}
        for p in posts:
            if p.author is not None:
                authors[p.author.id] = p.author
        self.conn.executemany(
            """INSERT INTO authors (id, platform, handle, name, avatar_url, url)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET
                 handle = coalesce(excluded.handle, handle),
                 name = coalesce(excluded.name, name),
                 avatar_url = coalesce(excluded.avatar_url, avatar_url),
                 url = coalesce(excluded.url, url)
               WHERE coalesce(excluded.handle, handle) IS NOT handle
                  OR coalesce(excluded.name, name) IS NOT name
                  OR coalesce(excluded.avatar_url, avatar_url) IS NOT avatar_url
                  OR coalesce(excluded.url, url) IS NOT url""",
            [(a.id, a.platform, a.handle, a.name, a.avatar_url, a.url) for a in authors.values()],
        )

    def _id_for(self, cache: dict[str, int], table: str, column: str, value: str) -> int:
        key = value.lower() if table == "hashtags" else value
        got = cache.get(key)
        if got is None:
            row = self.conn.execute(f"SELECT id FROM {table} WHERE {column} = ?", (value,)).fetchone()
            if row is None:
                got = self.conn.execute(f"INSERT INTO {table} ({column}) VALUES (?)", (value,)).lastrowid
            else:
                got = row[0]
            cache[key] = got
        return got

    def _save_entities(self, posts: list[Post]) -> None:
        # Union semantics: a later sighting adds entities, never removes them.
        tags, mentions, links, media = [], [], [], []
        for p in posts:
            for t in p.hashtags:
                if t:
                    tags.append((p.id, self._id_for(self._tag_ids, "hashtags", "tag", t)))
            for m in p.mentions:
                if m:
                    mentions.append((p.id, m))
            for u in p.links:
                if u:
                    links.append((p.id, self._id_for(self._link_ids, "links", "url", u)))
            for m in p.media:
                if m.url:
                    media.append((p.id, m))
        c = self.conn
        c.executemany("INSERT OR IGNORE INTO post_hashtags (post_id, hashtag_id) VALUES (?, ?)", tags)
        c.executemany("INSERT OR IGNORE INTO mentions (post_id, handle) VALUES (?, ?)", mentions)
        c.executemany("INSERT OR IGNORE INTO post_links (post_id, link_id) VALUES (?, ?)", links)
        for post_id, m in media:
            c.execute(
                """INSERT INTO media (url, type, alt, preview_url) VALUES (?, ?, ?, ?)
                   ON CONFLICT(url) DO UPDATE SET
                     type = coalesce(excluded.type, type), alt = coalesce(excluded.alt, alt),
                     preview_url = coalesce(excluded.preview_url, preview_url)""",
                (m.url, m.type, m.alt, m.preview_url),
            )
            media_id = c.execute("SELECT id FROM media WHERE url = ?", (m.url,)).fetchone()[0]
            c.execute("INSERT OR IGNORE INTO post_media (post_id, media_id) VALUES (?, ?)", (post_id, media_id))


def _merge_posts(worse: Post, better: Post) -> Post:
    """Merge two Post objects of the same id within one batch."""
    row = merge_rows(post_row(worse), post_row(better))
    out = better
    for col in ("url", "text", "html", "created_at", "reply_to_id", "reply_to_author", "root_id",
                "quote_of_id", "lang", "like_count", "repost_count", "reply_count", "quote_count",
                "local_id", "instance", "reply_to_local_id", "spoiler_text", "edited_at"):
        setattr(out, col, row[col])
    out.matched = bool(row["matched"])
    out.is_repost = bool(row["is_repost"])
    for attr in ("hashtags", "mentions", "links"):
        merged = list(dict.fromkeys(getattr(better, attr) + getattr(worse, attr)))
        setattr(out, attr, merged)
    seen = {m.url for m in better.media}
    out.media = better.media + [m for m in worse.media if m.url not in seen]
    if out.author is None:
        out.author = worse.author
    if out.raw is None:
        out.raw = worse.raw
    return out


def save_posts(db: sqlite_utils.Database, posts: Iterable[Post]) -> SaveStats:
    """Convenience: write posts in one transaction and return the counts."""
    writer = PostWriter(db)
    with transaction(db):
        writer.add(posts)
        writer.flush()
        resolve_local_replies(db)
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
    cur = db.conn.execute(
        """UPDATE posts SET reply_to_id = (
               SELECT p2.id FROM posts p2
               WHERE p2.instance = posts.instance AND p2.local_id = posts.reply_to_local_id)
           WHERE reply_to_id IS NULL AND reply_to_local_id IS NOT NULL
             AND EXISTS (SELECT 1 FROM posts p2
                         WHERE p2.instance = posts.instance AND p2.local_id = posts.reply_to_local_id)"""
    )
    return cur.rowcount


# --------------------------------------------------------------------------
# Search

HIGHLIGHT_START, HIGHLIGHT_END = "\x02", "\x03"


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
    HIGHLIGHT_START/HIGHLIGHT_END) and `rank` (bm25, lower is better)."""
    where = ["posts_fts MATCH :query"]
    params: dict[str, Any] = {"query": query, "limit": limit}
    if hashtag:
        where.append(
            """posts.id IN (SELECT ph.post_id FROM post_hashtags ph
                JOIN hashtags h ON h.id = ph.hashtag_id WHERE h.tag = :hashtag)"""
        )
        params["hashtag"] = hashtag.lstrip("#")
    if author:
        where.append("(posts.author_handle = :author COLLATE NOCASE OR posts.author_id = :author)")
        params["author"] = author.lstrip("@")
    if session:
        where.append(
            """posts.id IN (SELECT sp.post_id FROM session_posts sp JOIN sessions s
                ON s.id = sp.session_id WHERE s.slug = :session OR CAST(s.id AS TEXT) = :session)"""
        )
        params["session"] = session
    if since:
        where.append("posts.created_at >= :since")
        params["since"] = since
    if until:
        where.append("posts.created_at < :until")
        params["until"] = until
    order_sql = "rank" if order == "best" else "posts.created_at DESC"
    sql = f"""
        SELECT posts.id, posts.platform, posts.url, posts.author_handle, posts.author_name,
               posts.created_at, posts.text, posts.matched, posts.like_count, posts.repost_count,
               snippet(posts_fts, 0, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', 16) AS snippet,
               bm25(posts_fts, 10.0, 2.0, 1.0) AS rank
        FROM posts_fts JOIN posts ON posts.rowid = posts_fts.rowid
        WHERE {' AND '.join(where)}
        ORDER BY {order_sql}
        LIMIT :limit
    """
    try:
        cursor = db.conn.execute(sql, params)
    except sqlite3.OperationalError as e:
        msg = str(e)
        if "fts5" in msg or "syntax error" in msg or "no such column" in msg:
            raise SearchError(
                f"Invalid search query: {query!r} ({msg}). FTS5 syntax: words, \"exact phrases\", "
                "AND/OR/NOT (upper case), prefix*, NEAR(a b). Quote words with punctuation."
            )
        raise
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, row)) for row in cursor]
