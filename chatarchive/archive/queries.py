"""Every read the views make of the archive, as typed records.

The recap, the exports, the terminal and the Datasette pages read through
these functions (Datasette hands them its own connection through
``execute_fn``), so a session is found the same way everywhere and the
post column list exists once (:data:`POST_SELECT`, from ``StoredPost``).

Every function takes a ``sqlite3.Connection`` or a ``sqlite_utils.Database``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

import sqlite_utils

from ..errors import NotFoundError
from ..models import STORED_POST_FIELDS, Conversation, Question, Session, StoredPost

Connection = sqlite3.Connection | sqlite_utils.Database

CHUNK = 500  # ids per IN (…) list: well under SQLite's variable limit


def connection(db: Connection) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def chunks(seq: list, n: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def marks(n: int) -> str:
    return ",".join("?" * n)


def post_columns(alias: str = "p") -> str:
    """The posts columns as a select list (``p.id, p.platform, …``), in StoredPost order."""
    return ", ".join(f"{alias}.{c}" for c in STORED_POST_FIELDS)


POST_SELECT = post_columns("p")
_NPOST = len(STORED_POST_FIELDS)


def stored_post(row: tuple | list) -> StoredPost:
    """A StoredPost from the first columns of a row selected with :data:`POST_SELECT`."""
    return StoredPost(*row[:_NPOST])


# --------------------------------------------------------------------------
# Sessions

_SESSION_SELECT = "SELECT " + ", ".join(f's."{c}"' for c in Session.COLUMNS) + " FROM sessions s"


def resolve_session(db: Connection, id_or_slug: str | int) -> int:
    """The id of the session named by its slug or its id (the one resolver:
    the command line, the recap, the exports and Datasette all use it)."""
    key = str(id_or_slug).strip()
    conn = connection(db)
    row = conn.execute("SELECT id FROM sessions WHERE slug = ?", [key]).fetchone()
    if row is None and key.isdigit():
        row = conn.execute("SELECT id FROM sessions WHERE id = ?", [int(key)]).fetchone()
    if row is None:
        raise NotFoundError(f"No session {key!r} (see: chatarchive sessions list DB)")
    return int(row[0])


def find_session(db: Connection, id_or_slug: str | int) -> Session | None:
    try:
        return get_session(db, id_or_slug)
    except NotFoundError:
        return None


def get_session(db: Connection, id_or_slug: str | int) -> Session:
    """A session by slug or id (raises NotFoundError)."""
    sid = resolve_session(db, id_or_slug)
    row = connection(db).execute(f"{_SESSION_SELECT} WHERE s.id = ?", [sid]).fetchone()
    return Session.from_row(row)


def list_sessions(db: Connection, hashtag: str | None = None) -> list[Session]:
    """Sessions in time order, with their participants and questions counted."""
    where, params = "", []
    if hashtag:
        where, params = "WHERE s.hashtag = ? COLLATE NOCASE", [hashtag.lstrip("#")]
    cur = connection(db).execute(
        f"""{_SESSION_SELECT.replace(" FROM sessions s", "")},
               (SELECT count(DISTINCT p.author_id) FROM session_posts sp JOIN posts p ON p.id = sp.post_id
                WHERE sp.session_id = s.id) AS participants,
               (SELECT count(*) FROM questions q WHERE q.session_id = s.id) AS questions
            FROM sessions s {where} ORDER BY s.start, s.id""",
        params,
    )
    n = len(Session.COLUMNS)
    return [Session.from_row(r, participants=r[n], questions=r[n + 1]) for r in cur]


def session_ids(db: Connection, keys: Iterable[str | int] | None = None) -> list[int]:
    """The ids of the sessions named (in that order, once each), or of every
    session, newest first."""
    if keys:
        out: list[int] = []
        for key in keys:
            sid = resolve_session(db, key)
            if sid not in out:
                out.append(sid)
        return out
    return [r[0] for r in connection(db).execute("SELECT id FROM sessions ORDER BY start DESC, id DESC")]


def session_questions(db: Connection, session_id: int) -> list[Question]:
    return [Question(*r) for r in connection(db).execute(
        "SELECT id, session_id, number, post_id, text FROM questions WHERE session_id = ? ORDER BY number, id",
        [session_id])]


def session_conversations(db: Connection, session_id: int) -> list[Conversation]:
    return [Conversation(*r) for r in connection(db).execute(
        """SELECT id, session_id, size, depth, participants, started, ended FROM conversations
           WHERE session_id = ? ORDER BY started, id""", [session_id])]


def rows(db: Connection, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """A query's rows as dicts (for the few reads whose shape is their own)."""
    cur = connection(db).execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur]
