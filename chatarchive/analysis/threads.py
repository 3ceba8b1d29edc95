"""Conversations: the reply forest of the archive.

Every post gets ``posts.conversation_id``: the id of its root, the earliest
ancestor present in the archive (a post nobody replied to is its own
conversation; table ``conversations`` lists the threads of two or more
posts).  A reply whose parent is not in the archive still names it in
``reply_to_id`` (the parent's id, or a placeholder the importer builds for
it, e.g. from the server and local id of a Mastodon status, replaced by the
real id when the parent arrives).  Such a post hangs under the source's own
root (X ``conversation_id``, Bluesky ``reply.root``: ``posts.root_id``) when
that root is in the archive; otherwise its conversation is named by that
root id, or, when the source gives none, by the root a sibling (another
reply to the same missing parent) gives, else by the missing parent's id.
So the replies of a thread whose root was never archived (a Mastodon
``/context`` without its root status) share one conversation, and when the
parent or root arrives the conversation is re-rooted on it, incrementally.

Everything here is iterative (a 10,000-deep reply chain is just a loop) and
safe with self-replies and cycles (the earliest post of a cycle becomes its
root).  Quotes are links between posts, never tree edges.

Two modes share one solver:

* full: parent links of the whole archive are read as integer rowids into
  compact arrays (``array('q')``), so a million posts cost a few MB; in the
  pipeline the posts' new conversation ids are handed on in
  ``ThreadUpdate.pending`` (a :class:`.rewrite.PostRewrite`) and written
  together with the Q&A columns, in one pass over the posts;
* incremental: only the new or changed posts (``conversation_id IS NULL`` or
  listed in ``analysis_dirty``) and the conversations they touch are read
  and rewritten, so re-analysis costs time in proportion to what arrived.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from ..archive.queries import chunks, marks
from ..errors import NotFoundError
from .rewrite import PostRewrite

# Full mode above this share of unanalysed posts: reading everything once is
# cheaper than chasing many small closures.
FULL_RATIO = 0.2

# One thread in reply order (depth-first, siblings by time), with depth.
# The priority queue ordered by "lvl DESC" makes SQLite walk depth-first
# (see "Controlling Depth-First Versus Breadth-First Search Of a Tree Using
# ORDER BY" in SQLite's WITH documentation); the walk is iterative inside
# SQLite, so deep chains are fine.  Roots of sub-trees whose parent is
# missing start at lvl 0 too, in time order with the root.
THREAD_SQL = """
WITH RECURSIVE t(lvl, depth, id, created_at, reply_to_id, quote_of_id, platform, author_id,
                 author_handle, author_name, text, url, question_id, answer_to_id, is_repost) AS (
  SELECT 0, CASE WHEN p.id = :conversation THEN 0 ELSE 1 END, p.id, p.created_at, p.reply_to_id,
         p.quote_of_id, p.platform, p.author_id, p.author_handle, p.author_name, p.text, p.url,
         p.question_id, p.answer_to_id, p.is_repost
  FROM posts p
  WHERE p.conversation_id = :conversation
    AND (p.id = :conversation OR p.reply_to_id IS NULL OR p.reply_to_id = p.id
         OR NOT EXISTS (SELECT 1 FROM posts q
                        WHERE q.id = p.reply_to_id AND q.conversation_id = :conversation))
  UNION ALL
  SELECT t.lvl + 1, t.depth + 1, c.id, c.created_at, c.reply_to_id, c.quote_of_id, c.platform,
         c.author_id, c.author_handle, c.author_name, c.text, c.url, c.question_id, c.answer_to_id,
         c.is_repost
  FROM t JOIN posts c ON c.reply_to_id = t.id
  WHERE c.conversation_id = :conversation AND c.id != :conversation AND c.id != t.id
  ORDER BY 1 DESC, 4, 3
)
SELECT depth, id, created_at, reply_to_id, quote_of_id, platform, author_id, author_handle,
       author_name, text, url, question_id, answer_to_id, is_repost
FROM t
"""


@dataclass
class ThreadUpdate:
    """What the threads step did, for the steps after it."""

    full: bool = False  # every post was threaded again (the later steps redo every session)
    posts: int = 0  # posts whose conversation was (re)computed
    dirty_ids: list[str] = field(default_factory=list)  # new/changed posts (incremental only)
    conversations: set[str] = field(default_factory=set)  # conversation ids now holding them
    removed: set[str] = field(default_factory=set)  # conversation ids that no longer exist
    # A full run with ``defer``: the posts' new conversation ids, not yet in
    # posts.conversation_id.  Whoever holds it must ``write`` it (or
    # ``discard`` it) before the analysis ends.
    pending: PostRewrite | None = None


# --------------------------------------------------------------------------
# The solver


def solve_forest(
    nodes: Iterable[int],
    parent: Sequence[int] | MutableMapping[int, int],
    root: MutableMapping[int, int] | array,
    depth: MutableMapping[int, int] | array,
    state: MutableMapping[int, int] | bytearray,
    earliest: Callable[[list[int]], int],
) -> int:
    """Find each node's root and depth, iteratively.

    ``parent[n]``: > 0 the parent's key, 0 none, < 0 a missing parent (a
    virtual root code).  ``root[n]`` receives the root's key (or the
    negative code), ``depth[n]`` the number of reply steps from it (a post
    under a missing parent has depth 1).  ``state`` starts at 0 for every
    node.  ``earliest(cycle)`` picks the member that becomes a cycle's root.
    Returns the number of cycles broken.
    """
    cycles = 0
    for start in nodes:
        if state[start] == 2:
            continue
        stack: list[int] = []
        j = start
        while True:
            s = state[j]
            if s == 2:
                break
            if s == 1:  # j is on the stack: a cycle
                cycles += 1
                at = stack.index(j)
                ring = stack[at:]
                del stack[at:]
                r = earliest(ring)
                pos = ring.index(r)
                n = len(ring)
                for k, m in enumerate(ring):
                    root[m] = r
                    depth[m] = (pos - k) % n
                    state[m] = 2
                break
            state[j] = 1
            stack.append(j)
            pj = parent[j]
            if pj == 0:
                root[j] = j
                depth[j] = 0
                state[j] = 2
                stack.pop()
                break
            if pj < 0:
                root[j] = pj
                depth[j] = 1
                state[j] = 2
                stack.pop()
                break
            j = pj
        while stack:
            k = stack.pop()
            p = parent[k]
            root[k] = root[p]
            depth[k] = depth[p] + 1
            state[k] = 2
    return cycles


def _earliest_by_db(conn: sqlite3.Connection) -> Callable[[list[int]], int]:
    def earliest(ring: list[int]) -> int:
        row = conn.execute(
            f"SELECT rowid FROM posts WHERE rowid IN ({marks(len(ring))}) ORDER BY created_at, id LIMIT 1", ring
        ).fetchone()
        return row[0] if row else min(ring)

    return earliest


# Parent links as rowids: the parent when present; for an orphan (a reply
# whose parent is missing) the rowid of the source's root when *it* is
# present, the missing parent's id and the source's root id.
_MISSING = "q.rowid IS NULL AND p.reply_to_id IS NOT NULL AND p.reply_to_id != p.id"
_LINKS_SELECT = f"""
SELECT p.rowid, q.rowid,
       CASE WHEN {_MISSING} THEN (SELECT r.rowid FROM posts r WHERE r.id = p.root_id) END,
       CASE WHEN {_MISSING} THEN p.reply_to_id END,
       CASE WHEN {_MISSING} THEN nullif(p.root_id, p.id) END,
       p.conversation_id
FROM posts p LEFT JOIN posts q ON q.id = p.reply_to_id AND p.reply_to_id != p.id
"""

# The root the replies to a missing parent give (the least of them, when
# they disagree), and the rowid of that root when it is in the archive.
_CLAIM_SQL = """
SELECT c.r, (SELECT x.rowid FROM posts x WHERE x.id = c.r)
FROM (SELECT min(nullif(root_id, id)) AS r FROM posts WHERE reply_to_id = ? AND reply_to_id != id) c
"""

Claim = tuple[str, int | None]  # (root id, its rowid when present)


class _Orphans:
    """Conversation keys of posts whose parent is missing.  A negative code
    stands for each key (``solve_forest``'s virtual roots)."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def code(self, key: str) -> int:
        c = self.codes.get(key)
        if c is None:
            c = self.codes[key] = -(len(self.codes) + 1)
        return c

    def parent(self, rowid: int, rrow: int | None, missing: str, root: str | None,
               claim: Callable[[str], Claim | None]) -> int:
        """The parent code of an orphan: the source's root (present: its
        rowid; missing: its key), else the root its siblings give, else the
        missing parent's key."""
        if root is None:
            got = claim(missing)
            if got is None:
                return self.code(missing)
            root, rrow = got
        if rrow is not None and rrow != rowid:
            return rrow
        return self.code(root)

    def key_of(self) -> dict[int, str]:
        return {code: key for key, code in self.codes.items()}


# --------------------------------------------------------------------------
# Entry point


def update_threads(db: sqlite_utils.Database, *, full: bool = False, defer: bool = False) -> ThreadUpdate:
    """Bring posts.conversation_id and the conversations table up to date.

    With ``defer``, a full run leaves the posts' conversation ids in the
    returned ``ThreadUpdate.pending`` instead of writing them, so the later
    steps can read them there and the posts are rewritten only once (see
    :mod:`.rewrite`)."""
    conn = db.conn
    # max(rowid) is instant and equals the count while nothing is deleted
    total = conn.execute("SELECT max(rowid) FROM posts").fetchone()[0] or 0
    if total == 0:
        conn.execute("DELETE FROM conversations")
        conn.execute("DELETE FROM analysis_dirty")
        return ThreadUpdate(full=True)
    if not full:
        new = conn.execute("SELECT count(*) FROM posts WHERE conversation_id IS NULL").fetchone()[0]
        changed = conn.execute("SELECT count(*) FROM analysis_dirty").fetchone()[0]
        full = (new + changed) > FULL_RATIO * total
        if new + changed == 0:
            return ThreadUpdate()
    result = _full(db, defer) if full else _incremental(db)
    conn.execute("DELETE FROM analysis_dirty")
    return result


def _full(db: sqlite_utils.Database, defer: bool = False) -> ThreadUpdate:
    """Every post's conversation; with ``defer`` the posts are not written
    yet (``ThreadUpdate.pending`` holds the threads' posts)."""
    conn = db.conn
    maxrow = conn.execute("SELECT max(rowid) FROM posts").fetchone()[0]
    n = maxrow + 1
    # Only replies (and the posts they reach) go through Python; a post that
    # replies to nothing is its own conversation, written by one UPDATE.
    parent = array("q", bytes(8 * n))
    replies = array("q")
    kids = bytearray(n)  # has a reply in the archive (membership walks start there)
    orphans = _Orphans()
    claims: dict[str, Claim] = {}  # missing parent -> the least root its replies give
    rootless: list[tuple[int, str]] = []  # orphans the source gives no root: after all claims are known
    for rowid, prow, rrow, missing, root, _ in conn.execute(_LINKS_SELECT + " WHERE p.reply_to_id IS NOT NULL"):
        if prow is not None and prow != rowid:  # the common case: the parent is here
            parent[rowid] = prow
            replies.append(rowid)
            kids[prow] = 1
            continue
        if missing is None:
            continue  # a self-reply: its own root
        if root is None:
            rootless.append((rowid, missing))
            continue
        known = claims.get(missing)
        if known is None or root < known[0]:
            claims[missing] = (root, rrow)
        parent[rowid] = orphans.parent(rowid, rrow, missing, root, claims.get)
        replies.append(rowid)
    for rowid, missing in rootless:
        parent[rowid] = orphans.parent(rowid, None, missing, None, claims.get)
        replies.append(rowid)
    del rootless, claims
    root = array("q", bytes(8 * n))
    depth = array("l", bytes(array("l").itemsize * n))
    state = bytearray(n)
    solve_forest(replies, parent, root, depth, state, _earliest_by_db(conn))
    del replies
    key_of = orphans.key_of()
    # the posts solved: replies and the roots they reach
    solved = [i for i, s in enumerate(state) if s]
    root_rowids = sorted({r for r in map(root.__getitem__, solved) if r > 0})
    id_of: dict[int, str] = {}
    for chunk in chunks(root_rowids):
        id_of.update(conn.execute(
            f"SELECT rowid, id FROM posts WHERE rowid IN ({marks(len(chunk))})", chunk))
    del root_rowids

    pending = PostRewrite(conn, conversations=True)
    pending.add_threads(
        [(i, id_of[r] if r > 0 else key_of[r], depth[i], kids[i])
         for i, r in zip(solved, map(root.__getitem__, solved))],
    )
    del parent, root, depth, state, id_of, kids, solved
    conn.execute("DELETE FROM conversations")
    conn.execute(
        f"""INSERT INTO conversations (id, session_id, size, depth, participants, started, ended)
            SELECT c.cid, NULL, count(*), max(c.depth), count(DISTINCT p.author_id),
                   min(p.created_at), max(p.created_at)
            FROM {pending.table} c JOIN posts p ON p.rowid = c.rid
            GROUP BY c.cid HAVING count(*) > 1"""
    )
    if not defer:
        pending.write(answers=False)
        return ThreadUpdate(full=True, posts=maxrow)
    return ThreadUpdate(full=True, posts=maxrow, pending=pending)


def _incremental(db: sqlite_utils.Database) -> ThreadUpdate:
    conn = db.conn
    dirty_rows = conn.execute(
        "SELECT rowid, id, conversation_id, reply_to_id, root_id FROM posts WHERE conversation_id IS NULL"
    ).fetchall()
    dirty_rows += conn.execute(
        """SELECT p.rowid, p.id, p.conversation_id, p.reply_to_id, p.root_id
           FROM analysis_dirty d JOIN posts p ON p.id = d.post_id"""
    ).fetchall()
    dirty_ids = list(dict.fromkeys(r[1] for r in dirty_rows))
    pending: set[str] = {r[2] for r in dirty_rows if r[2]}
    # Conversations that may be re-rooted by the newcomers: posts replying to
    # them (or keyed by their id while they were missing), and the
    # conversations of their parents and sources' roots.
    keys = set(dirty_ids) | {r[3] for r in dirty_rows if r[3]} | {r[4] for r in dirty_rows if r[4]}
    for chunk in chunks(sorted(keys)):
        m = marks(len(chunk))
        pending.update(r[0] for r in conn.execute(
            f"SELECT DISTINCT conversation_id FROM posts WHERE conversation_id IN ({m})", chunk))
        pending.update(r[0] for r in conn.execute(
            f"""SELECT DISTINCT conversation_id FROM posts
                WHERE (reply_to_id IN ({m}) OR id IN ({m})) AND conversation_id IS NOT NULL""",
            chunk + chunk))
    pending.discard(None)

    parent: dict[int, int] = {}
    old_conv: dict[int, str | None] = {}
    orphans = _Orphans()
    loaded_convs: set[str] = set()
    claims: dict[str, Claim | None] = {}

    def claim(missing: str) -> Claim | None:
        # (the same answer as the full run's: every reply to that parent is asked)
        if missing not in claims:
            root, rrow = conn.execute(_CLAIM_SQL, [missing]).fetchone()
            claims[missing] = None if root is None else (root, rrow)
        return claims[missing]

    def take(rows: Iterable[tuple]) -> None:
        for rowid, prow, rrow, missing, root, conv in rows:
            if rowid in parent:
                continue
            if prow is not None and prow != rowid:
                parent[rowid] = prow
            elif missing is not None:
                parent[rowid] = orphans.parent(rowid, rrow, missing, root, claim)
            else:
                parent[rowid] = 0
            old_conv[rowid] = conv
            if conv and conv not in loaded_convs:
                pending.add(conv)

    dirty_rowids = [r[0] for r in dirty_rows]
    for chunk in chunks(dirty_rowids):
        take(conn.execute(f"{_LINKS_SELECT} WHERE p.rowid IN ({marks(len(chunk))})", chunk))
    while True:
        todo = sorted(pending - loaded_convs)
        pending.clear()
        for chunk in chunks(todo):
            loaded_convs.update(chunk)
            take(conn.execute(
                f"{_LINKS_SELECT} WHERE p.conversation_id IN ({marks(len(chunk))})", chunk))
        missing = sorted({p for p in parent.values() if p > 0 and p not in parent})
        for chunk in chunks(missing):
            take(conn.execute(f"{_LINKS_SELECT} WHERE p.rowid IN ({marks(len(chunk))})", chunk))
        if not (pending - loaded_convs) and not missing:
            break

    root: dict[int, int] = {}
    depth: dict[int, int] = {}
    state = dict.fromkeys(parent, 0)
    solve_forest(list(parent), parent, root, depth, state, _earliest_by_db(conn))
    key_of = orphans.key_of()
    root_rowids = sorted({r for r in root.values() if r > 0})
    id_of: dict[int, str] = {}
    for chunk in chunks(root_rowids):
        id_of.update(conn.execute(
            f"SELECT rowid, id FROM posts WHERE rowid IN ({marks(len(chunk))})", chunk))
    new_conv = {k: (id_of[r] if r > 0 else key_of[r]) for k, r in root.items()}
    updates = [(c, k) for k, c in new_conv.items() if old_conv.get(k) != c]
    conn.executemany("UPDATE posts SET conversation_id = ? WHERE rowid = ?", updates)

    new_ids = set(new_conv.values())
    old_ids = {c for c in old_conv.values() if c}
    removed = old_ids - new_ids
    max_depth: dict[str, int] = {}
    for k, c in new_conv.items():
        if depth[k] > max_depth.get(c, -1):
            max_depth[c] = depth[k]
    for chunk in chunks(sorted(old_ids | new_ids)):
        conn.execute(f"DELETE FROM conversations WHERE id IN ({marks(len(chunk))})", chunk)
    for chunk in chunks(sorted(new_ids)):
        rows = conn.execute(
            f"""SELECT conversation_id, count(*), count(DISTINCT author_id), min(created_at), max(created_at)
                FROM posts WHERE conversation_id IN ({marks(len(chunk))})
                GROUP BY conversation_id HAVING count(*) > 1""",
            chunk,
        ).fetchall()
        conn.executemany(
            """INSERT INTO conversations (id, session_id, size, depth, participants, started, ended)
               VALUES (?, NULL, ?, ?, ?, ?, ?)""",
            [(c, size, max_depth.get(c, 0), parts, started, ended) for c, size, parts, started, ended in rows],
        )
    return ThreadUpdate(full=False, posts=len(parent), dirty_ids=dirty_ids, conversations=new_ids,
                        removed=removed)


# --------------------------------------------------------------------------
# Reading threads


def conversation_of(db: sqlite_utils.Database, post_id: str) -> str | None:
    row = db.execute("SELECT conversation_id FROM posts WHERE id = ?", [post_id]).fetchone()
    if row is not None:
        return row[0]
    row = db.execute("SELECT id FROM conversations WHERE id = ?", [post_id]).fetchone()
    return row[0] if row else None


def thread(db: sqlite_utils.Database, post_id: str) -> list[dict[str, Any]]:
    """The whole thread a post belongs to, in reply order, each row with its depth.

    ``post_id`` may be any post of the thread or the conversation id.
    Raises NotFoundError when neither is in the archive.
    """
    conv = conversation_of(db, post_id)
    if conv is None:
        raise NotFoundError(f"No post or conversation {post_id!r} in the archive (run the analysis first?)")
    cur = db.execute(THREAD_SQL, {"conversation": conv})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur]
