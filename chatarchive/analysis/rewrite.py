"""The one-pass rewrite of the posts' analysis columns in a full analysis.

A full analysis gives every post a new ``conversation_id`` (threads) and
``question_id``/``answer_to_id`` (Q&A).  Writing each column as its step
finishes would walk the posts table (far larger than the page cache on a
big archive) once per step, dirtying and spilling every page each time.
Instead the steps put their results into a :class:`PostRewrite`, a temp
table owned by that object, and :meth:`PostRewrite.write` rewrites each post
once at the end, with the columns' indexes dropped and rebuilt around it.

The object is handed from step to step by the pipeline (threads create it,
membership and Q&A read and add to it); no step looks for the table by name.
"""

from __future__ import annotations

import sqlite3
from types import TracebackType


class PostRewrite:
    """Analysis columns of posts, waiting in a temp table until :meth:`write`.

    Rows are keyed by the post's rowid: ``cid`` the conversation id,
    ``depth`` the reply steps from its root, ``kids`` 1 when the post has a
    reply in the archive (the threads step fills these three when
    ``conversations`` is true), ``qid``/``aid`` the question it asks or
    answers (Q&A).  With ``conversations`` every post of a thread has a row
    and a post without one is its own conversation."""

    def __init__(self, conn: sqlite3.Connection, *, conversations: bool, table: str = "_rewrite"):
        self.conn = conn
        self.conversations = conversations
        self.table = f"temp.{table}"
        # (this object's own table, left over only if a caller kept a failed
        # transaction open; a new analysis starts it afresh)
        conn.execute(f"DROP TABLE IF EXISTS {self.table}")
        conn.execute(f"""CREATE TABLE {self.table} (rid INTEGER PRIMARY KEY, cid TEXT, depth INTEGER,
                                                   kids INTEGER, qid INTEGER, aid INTEGER)""")

    def add_threads(self, rows: list[tuple[int, str, int, int]]) -> None:
        """Rows of (rowid, conversation id, depth, has replies)."""
        self.conn.executemany(f"INSERT INTO {self.table} (rid, cid, depth, kids) VALUES (?, ?, ?, ?)", rows)

    def conversation_sql(self, alias: str = "p") -> str:
        """SQL for the new conversation id of post ``alias`` (its own id when it has no row)."""
        if not self.conversations:
            return f"{alias}.conversation_id"
        return f"coalesce((SELECT cid FROM {self.table} WHERE rid = {alias}.rowid), {alias}.id)"

    def add_answers(self, questions: list[tuple[int, int]], answers: list[tuple[int, int]]) -> None:
        """(question id, post rowid) pairs: the posts asking and answering each question."""
        self.conn.executemany(
            f"INSERT INTO {self.table} (rid, qid) VALUES (?2, ?1) ON CONFLICT(rid) DO UPDATE SET qid = ?1",
            questions)
        self.conn.executemany(
            f"INSERT INTO {self.table} (rid, aid) VALUES (?2, ?1) ON CONFLICT(rid) DO UPDATE SET aid = ?1",
            answers)

    def write(self, *, answers: bool) -> None:
        """Rewrite every post's analysis columns in one pass over the posts,
        rebuilding their indexes after, then drop the table.

        ``posts.conversation_id`` is written when this rewrite holds
        conversations (a post outside the table is its own conversation);
        with ``answers``, ``question_id``/``answer_to_id`` too (NULL for a
        post without a row: every answer of the archive must be here).  Each
        post is written once, not once per column, and only when something
        changed."""
        indexes: list[str] = []
        cols: list[tuple[str, str]] = []  # column, its value (a post without a row gets NULL)
        if self.conversations:
            indexes.append("idx_posts_conversation_id")
            cols.append(("conversation_id", "coalesce(max(w.cid), posts.id)"))
        if answers:
            indexes += ["idx_posts_question_id", "idx_posts_answer_to_id"]
            cols += [("question_id", "max(w.qid)"), ("answer_to_id", "max(w.aid)")]
        if cols:
            names = ", ".join(c for c, _ in cols)
            # One row-value lookup gives all the columns (not one subquery
            # each); the aggregate always yields a row, so a post without a
            # row gets its own id / NULLs from the same lookup and the table is
            # walked once (two passes dirtied every page twice, spilling the
            # cache on a big archive).
            row = f"(SELECT {', '.join(v for _, v in cols)} FROM {self.table} w WHERE w.rid = posts.rowid)"
            # A post never analysed (conversation_id NULL) always changes: no
            # second lookup to find that out (on a first run that is every post).
            new = "conversation_id IS NULL OR " if self.conversations else ""
            with without_index(self.conn, *indexes):
                self.conn.execute(f"UPDATE posts SET ({names}) = {row} WHERE {new}({names}) IS NOT {row}")
        self.discard()

    def discard(self) -> None:
        """Drop the table without writing anything."""
        self.conn.execute(f"DROP TABLE IF EXISTS {self.table}")


class without_index:
    """Drop an index around a bulk update and build it again afterwards
    (one sorted build is far cheaper than a million scattered updates).
    Inside the caller's transaction: a failure rolls the drop back too."""

    def __init__(self, conn: sqlite3.Connection, *names: str):
        self.conn = conn
        self.names = names
        self.sql: list[str] = []

    def __enter__(self) -> without_index:
        for name in self.names:
            row = self.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                                    [name]).fetchone()
            if row and row[0]:
                self.sql.append(row[0])
                self.conn.execute(f'DROP INDEX "{name}"')
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            for sql in self.sql:
                self.conn.execute(sql)
