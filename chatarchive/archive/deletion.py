"""Removing posts' content for good: the one function that does it.

A post deleted on its platform (a Jetstream ``delete`` commit, a Mastodon
``delete`` event) or removed at its author's request keeps its row as a
*tombstone* (``posts.deleted_at``): its id, author, time and reply links stay,
so the threads it was part of stay whole, but everything it said is gone —
``text``, ``html``, ``spoiler_text``, its ``raw`` source objects, its copies
inside ``capture_pages`` bodies, the question text copied into ``questions``,
its mentions, the hashtags no session needs, and the link and media rows no
other post uses.

"Gone" means not a byte of it remains in the file.  SQLite normally leaves
deleted content in freed page space, FTS5 keeps a deleted post's tokens in
its older index segments until they are merged, and a WAL file keeps old
page images until it is truncated.  So :func:`delete_posts` works with
``PRAGMA secure_delete=ON`` (freed space is zeroed), and :func:`purge` then
rebuilds the full-text index from the posts as they are (every old index
page is freed and zeroed), overwrites the free pages, and truncates the WAL.  ``delete_posts(...,
purge=True)`` does both; a live capture that deletes a post now and then
passes ``purge=False`` and purges every few minutes and at its end
(rebuilding the index takes about a second per 100,000 posts).

The next wave's "forget a person" reuses :func:`delete_posts`.  Imports
nothing of the package: any stage that removes content may call it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import orjson
import sqlite_utils

from .queries import chunks, marks


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def tombstoned(db: sqlite_utils.Database, ids: Iterable[str]) -> set[str]:
    """The ids among ``ids`` that are tombstones: a later sighting of one (a
    replayed stream event, an old file) must not bring its content back."""
    wanted = list(dict.fromkeys(i for i in ids if i))
    out: set[str] = set()
    for chunk in chunks(wanted):
        out.update(r[0] for r in db.conn.execute(
            f"SELECT id FROM posts WHERE deleted_at IS NOT NULL AND id IN ({marks(len(chunk))})", chunk))
    return out


def stored(db: sqlite_utils.Database, ids: Iterable[str]) -> list[str]:
    """The ids among ``ids`` that are posts in the archive (tombstones included)."""
    wanted = list(dict.fromkeys(i for i in ids if i))
    have: set[str] = set()
    for chunk in chunks(wanted):
        have.update(r[0] for r in db.conn.execute(f"SELECT id FROM posts WHERE id IN ({marks(len(chunk))})", chunk))
    return [i for i in wanted if i in have]


class _SecureDelete:
    """``PRAGMA secure_delete=ON`` for a block, then back to what it was."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.before: Any = None

    def __enter__(self) -> _SecureDelete:
        self.before = self.conn.execute("PRAGMA secure_delete").fetchone()[0]
        self.conn.execute("PRAGMA secure_delete = ON")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.execute(f"PRAGMA secure_delete = {int(self.before or 0)}")


secure_delete = _SecureDelete  # for other modules that remove content (archive/editorial.py)


def without_posts(body: Any, post_ids: Iterable[str]) -> Any:
    """An API page body with every copy of these posts replaced by a small
    marker (a capture keeps pages; a forgotten person's post must not stay
    in one).  Only the post ids are known here, not local ids."""
    for pid in dict.fromkeys(post_ids):
        keys = [pid] + ([pid.rstrip("/").rsplit("/", 1)[-1]] if pid.startswith("at://") else [])
        body, _ = _scrub(body, pid, set(keys[1:]))
    return body


def delete_posts(db: sqlite_utils.Database, ids: Iterable[str], *, when: str | None = None,
                 purge: bool = True) -> int:
    """Turn the posts ``ids`` into tombstones; returns how many were changed
    (ids not in the archive, and tombstones already, are left alone).

    Runs inside the caller's transaction when one is open (a savepoint),
    else in its own; with ``purge`` (and no transaction open) the index is
    rebuilt, free pages overwritten and the WAL truncated afterwards (see the
    module docstring), so no byte of the posts' content remains."""
    conn = db.conn
    wanted = stored(db, ids)
    when = when or _now()
    changed = 0
    with _SecureDelete(conn):
        conn.execute("SAVEPOINT chatarchive_delete")
        try:
            for chunk in chunks(wanted):
                changed += _delete_chunk(conn, chunk, when)
        except BaseException:
            conn.execute("ROLLBACK TO chatarchive_delete")
            conn.execute("RELEASE chatarchive_delete")
            raise
        conn.execute("RELEASE chatarchive_delete")
    if purge and changed and not conn.in_transaction:
        _purge(db)
    return changed


def _delete_chunk(conn: sqlite3.Connection, ids: list[str], when: str) -> int:
    live = [r[0] for r in conn.execute(
        f"SELECT id FROM posts WHERE deleted_at IS NULL AND id IN ({marks(len(ids))})", ids)]
    # Tombstones already: their content went with the first deletion, but a
    # copy may have come back since (a capture page stored later); scrubbing
    # the pages again is cheap and makes the call idempotent.
    _scrub_capture_pages(conn, ids)
    if not live:
        return 0
    lm = marks(len(live))
    # The text is emptied by UPDATE, so the FTS trigger removes the post's
    # entry from the index (handle and name stay searchable: the row stays).
    conn.execute(
        f"""UPDATE posts SET text = '', html = NULL, spoiler_text = NULL, deleted_at = ?
            WHERE id IN ({lm})""", [when, *live])
    conn.execute(f"DELETE FROM raw WHERE post_id IN ({lm})", live)
    conn.execute(f"UPDATE questions SET text = NULL WHERE post_id IN ({lm})", live)
    conn.execute(f"DELETE FROM mentions WHERE post_id IN ({lm})", live)
    # Links and media: the rows of this post; the links/media themselves
    # only when no other post uses them (a shared URL is not its content).
    link_ids = [r[0] for r in conn.execute(f"SELECT DISTINCT link_id FROM post_links WHERE post_id IN ({lm})", live)]
    media_ids = [r[0] for r in conn.execute(f"SELECT DISTINCT media_id FROM post_media WHERE post_id IN ({lm})", live)]
    conn.execute(f"DELETE FROM post_links WHERE post_id IN ({lm})", live)
    conn.execute(f"DELETE FROM post_media WHERE post_id IN ({lm})", live)
    for part in chunks(link_ids):
        conn.execute(f"""DELETE FROM links WHERE id IN ({marks(len(part))})
                         AND NOT EXISTS (SELECT 1 FROM post_links pl WHERE pl.link_id = links.id)""", part)
    for part in chunks(media_ids):
        conn.execute(f"""DELETE FROM media WHERE id IN ({marks(len(part))})
                         AND NOT EXISTS (SELECT 1 FROM post_media pm WHERE pm.media_id = media.id)""", part)
    # Hashtags: a tombstone keeps the tag of the sessions it belongs to (so it
    # keeps its place, shown as "deleted"); any other tag of it is content.
    # A hashtag no post carries any more goes too.
    tag_ids = [r[0] for r in conn.execute(f"SELECT DISTINCT hashtag_id FROM post_hashtags WHERE post_id IN ({lm})", live)]
    conn.execute(
        f"""DELETE FROM post_hashtags WHERE post_id IN ({lm}) AND hashtag_id NOT IN (
                SELECT h.id FROM session_posts sp JOIN sessions s ON s.id = sp.session_id
                JOIN hashtags h ON h.tag = s.hashtag COLLATE NOCASE
                WHERE sp.post_id = post_hashtags.post_id)""", live)
    for part in chunks(tag_ids):
        conn.execute(f"""DELETE FROM hashtags WHERE id IN ({marks(len(part))})
                         AND NOT EXISTS (SELECT 1 FROM post_hashtags ph WHERE ph.hashtag_id = hashtags.id)""", part)
    return len(live)


# --------------------------------------------------------------------------
# capture_pages: the API bodies a capture kept hold copies of each post


def _needles(conn: sqlite3.Connection, ids: list[str]) -> dict[str, list[str]]:
    """For each post id, the strings that identify it inside a page body: the
    id itself (X id, Mastodon uri, at:// uri), a Bluesky record key (a
    Jetstream event names the post by did + rkey), Mastodon local ids."""
    out: dict[str, list[str]] = {i: [i] for i in ids}
    for i in ids:
        if i.startswith("at://"):
            out[i].append(i.rstrip("/").rsplit("/", 1)[-1])
    for chunk in chunks(ids):
        for post_id, local_id in conn.execute(
                f"SELECT post_id, local_id FROM local_ids WHERE post_id IN ({marks(len(chunk))})", chunk):
            out[post_id].append(str(local_id))
    return out


# Keys only an object holding a post's content has: a reference to the post
# (a reply's {uri, cid}, X's referenced_tweets {type, id}) is left alone.
_CONTENT_KEYS = ("text", "content", "record", "value", "commit", "created_at", "author", "account", "note_tweet")


def _is_copy(node: dict, post_id: str, keys: set[str]) -> bool:
    """Is this JSON object the post itself (in whichever shape the page holds it)?"""
    if not any(k in node for k in _CONTENT_KEYS):
        return False
    if node.get("uri") == post_id or node.get("id") == post_id:
        return True
    if post_id.startswith("at://"):
        did, _, rest = post_id[5:].partition("/")
        collection, _, rkey = rest.partition("/")
        inner = node.get("commit")
        commit: dict = inner if isinstance(inner, dict) else node
        if node.get("did") == did and commit.get("rkey") == rkey and commit.get("collection", collection) == collection:
            return True  # a Jetstream event (classic: commit.rkey; 2026: payload.rkey)
    # a Mastodon status seen on a server under its local id
    return node.get("uri") is None and isinstance(node.get("id"), str) and node["id"] in keys


def _scrub(value: Any, post_id: str, keys: set[str]) -> tuple[Any, bool]:
    """``value`` with every copy of the post replaced by a small marker.
    Iterative: page bodies can nest threads deeper than Python recurses."""
    marker = {"id": post_id, "deleted": True}
    if isinstance(value, dict) and _is_copy(value, post_id, keys):
        return marker, True
    changed = False
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        items: Iterable[tuple[Any, Any]]
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        for k, v in items:
            if isinstance(v, dict) and _is_copy(v, post_id, keys):
                node[k] = marker
                changed = True
            elif isinstance(v, (dict, list)):
                stack.append(v)
    return value, changed


def _scrub_capture_pages(conn: sqlite3.Connection, ids: list[str]) -> None:
    needles = _needles(conn, ids)
    for post_id, keys in needles.items():
        cond = " OR ".join("instr(json, ?) > 0" for _ in keys)
        rows = conn.execute(f"SELECT id, json FROM capture_pages WHERE {cond}", keys).fetchall()
        for page_id, body in rows:
            try:
                value = orjson.loads(body)
            except orjson.JSONDecodeError:
                continue
            value, changed = _scrub(value, post_id, set(keys[1:]))
            if changed:
                conn.execute("UPDATE capture_pages SET json = ? WHERE id = ?", (orjson.dumps(value).decode(), page_id))


# --------------------------------------------------------------------------
# No byte left behind


def purge(db: sqlite_utils.Database) -> None:
    """Make deletions final in the file (see :func:`_purge`); not inside a transaction."""
    _purge(db)


def _purge(db: sqlite_utils.Database) -> None:
    """Make deletions final in the file: rebuild the full-text index (FTS5
    keeps deleted entries in older segments, and merges can leave them in
    pages they keep),
    overwrite every free page (space freed before ``secure_delete`` was on),
    and truncate the WAL (it holds old page images).  Not inside a
    transaction."""
    conn = db.conn
    with _SecureDelete(conn):
        conn.execute("BEGIN")
        try:
            # 'rebuild', not 'optimize': a merge may leave the deleted tokens in
            # pages it keeps; a rebuild frees (zeroes) every index page and
            # writes the index again from the posts as they are now
            conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('rebuild')")
            _overwrite_free_pages(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # a reader holds the WAL: the capture truncates it again at its end


def _overwrite_free_pages(conn: sqlite3.Connection) -> None:
    """Take every page on the freelist with a blob of zeros, then free them
    again (zeroed, as secure_delete is on): pages freed while it was off
    may still hold old content."""
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if not free:
        return
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("CREATE TABLE chatarchive_scrub (b BLOB)")
    conn.execute("INSERT INTO chatarchive_scrub VALUES (zeroblob(?))", (free * (size - 8),))
    conn.execute("DROP TABLE chatarchive_scrub")
