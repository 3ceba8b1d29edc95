"""Every read the views make of the archive, as typed records.

The recap, the exports, the terminal and the Datasette pages read through
these functions (Datasette hands them its own connection through
``execute_fn``), so a session is found the same way everywhere and the
post column list exists once (:data:`POST_SELECT`, from ``StoredPost``).

Every function takes a ``sqlite3.Connection`` or a ``sqlite_utils.Database``
(rows may be tuples or ``sqlite3.Row``: Datasette's connections use the latter).

Posts, authors and sessions come back typed as their records say whatever
the file holds (:func:`stored_post`: a count stored as text, a time stored as
a number, bytes in a text column): an archive written by anything must not
make a view fail.  Posts are in time order with unknown (NULL) times last.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from ..errors import NotFoundError
from ..models import STORED_POST_FIELDS, Author, Conversation, Media, Question, Session, StoredPost

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
# Posts in time order, unknown times last (SQLite puts NULL first).
POST_TIME_ORDER = "p.created_at IS NULL, p.created_at, p.id"

_INT_FIELDS = frozenset(("is_repost", "like_count", "repost_count", "reply_count", "quote_count", "matched",
                         "question_id", "answer_to_id"))
_FLAG_DEFAULTS = {"is_repost": 0, "matched": 1}
_POST_KINDS = tuple((i, int if f in _INT_FIELDS else str, f) for i, f in enumerate(STORED_POST_FIELDS))
_NOT_NULL = tuple(STORED_POST_FIELDS.index(f) for f in ("id", *_FLAG_DEFAULTS))


def as_text(value: Any) -> str | None:
    """A text column's value as text (None stays None): numbers as written,
    bytes decoded with replacement characters."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def as_int(value: Any) -> int | None:
    """An integer column's value as an int; None for what is not a whole
    number (text, blobs, NaN)."""
    if value is None or type(value) is int:
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return None


def _typed(values: list[Any]) -> list[Any]:
    for i, kind, name in _POST_KINDS:
        v = values[i]
        if v is not None and type(v) is not kind:
            values[i] = as_int(v) if kind is int else as_text(v)
        if values[i] is None and name in _FLAG_DEFAULTS:
            values[i] = _FLAG_DEFAULTS[name]
    if values[0] is None:
        values[0] = ""
    return values


# Column type signatures already checked: a page reads thousands of rows of a few shapes.
_GOOD_SHAPES: dict[tuple[type, ...], bool] = {}


def _good_shape(shape: tuple[type, ...]) -> bool:
    ok = all(t is type(None) or t is kind for t, (_, kind, _) in zip(shape, _POST_KINDS)) and all(
        shape[i] is not type(None) for i in _NOT_NULL)
    if len(_GOOD_SHAPES) < 4096:
        _GOOD_SHAPES[shape] = ok
    return ok


def stored_post(row: tuple | list) -> StoredPost:
    """A StoredPost from the first columns of a row selected with :data:`POST_SELECT`,
    every field of the type StoredPost declares."""
    values = row[:_NPOST]
    shape = tuple(map(type, values))
    ok = _GOOD_SHAPES.get(shape)
    if ok is None:
        ok = _good_shape(shape)
    return StoredPost(*values) if ok else StoredPost(*_typed(list(values)))


# --------------------------------------------------------------------------
# What published outputs may show (the rule is the view withheld_posts,
# migrations m009 and m013; archive/published.py is its Python side)

# Why a post is left out of published outputs, as withheld_posts says.
WITHHELD_REASONS = ("hidden", "withdrawn", "unlisted")


def withheld_reasons(include_unlisted: bool = False) -> tuple[str, ...]:
    """The reasons that keep a post out: all of them, or all but "unlisted"
    (``--include-unlisted``: the platform's signal is overridden)."""
    return tuple(r for r in WITHHELD_REASONS if not (include_unlisted and r == "unlisted"))


def published_sql(alias: str = "p", reasons: tuple[str, ...] | None = WITHHELD_REASONS) -> str:
    """An SQL condition true for the posts (``alias``) published outputs may
    show (``reasons``: those that withhold; None: every post, no condition)."""
    if not reasons:
        return "1"
    quoted = ", ".join(f"'{r}'" for r in reasons if r in WITHHELD_REASONS)
    return (f"NOT EXISTS (SELECT 1 FROM withheld_posts w WHERE w.post_id = {alias}.id "
            f"AND w.reason IN ({quoted}))")


def withheld_rowids_sql(reasons: tuple[str, ...] = WITHHELD_REASONS) -> str:
    """A subquery of the ``posts`` rowids withheld (for full-text hits, which are rowids)."""
    quoted = ", ".join(f"'{r}'" for r in reasons if r in WITHHELD_REASONS) or "''"
    return (f"(SELECT wp.rowid FROM withheld_posts w JOIN posts wp ON wp.id = w.post_id "
            f"WHERE w.reason IN ({quoted}))")


def published_author_sql(alias: str = "a") -> str:
    """An SQL condition true for the authors (``alias``) published outputs may
    name: not hidden, not forgotten, consenting, and not unlisted without an
    allow override."""
    return (f"NOT EXISTS (SELECT 1 FROM hidden h WHERE h.target_kind = 'account' AND h.target_id = {alias}.id) "
            f"AND NOT EXISTS (SELECT 1 FROM forgotten_accounts f WHERE f.author_id = {alias}.id) "
            f"AND NOT EXISTS (SELECT 1 FROM consent c WHERE c.author_id = {alias}.id AND c.allow = 0) "
            f"AND NOT (coalesce({alias}.unlisted, 0) = 1 AND NOT EXISTS "
            f"(SELECT 1 FROM consent c WHERE c.author_id = {alias}.id AND c.allow = 1))")


def withheld_posts(db: Connection, reasons: tuple[str, ...] = WITHHELD_REASONS) -> dict[str, str]:
    """Every withheld post id with its reason (the first by WITHHELD_REASONS order)."""
    out: dict[str, str] = {}
    rank = {r: i for i, r in enumerate(WITHHELD_REASONS)}
    for pid, reason in connection(db).execute("SELECT post_id, reason FROM withheld_posts"):
        if reason in reasons and (pid not in out or rank[reason] < rank[out[pid]]):
            out[pid] = reason
    return out


# --------------------------------------------------------------------------
# Sessions

_SESSION_SELECT = "SELECT " + ", ".join(f's."{c}"' for c in Session.COLUMNS) + " FROM sessions s"
_SESSION_INTS = frozenset((0, 10))  # id, post_count


def _session(row: Any, participants: Any = None, questions: Any = None) -> Session:
    """Session.from_row on a row whose columns are made the types Session declares."""
    values = [as_int(v) if i in _SESSION_INTS else as_text(v) for i, v in enumerate(row[:len(Session.COLUMNS)])]
    return Session.from_row(values, participants=as_int(participants), questions=as_int(questions))


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
    return _session(row)


def list_sessions(db: Connection, hashtag: str | None = None, *,
                  withheld: tuple[str, ...] | None = None) -> list[Session]:
    """Sessions in time order, with their participants (people as
    ``stats.session_stats`` counts them: by author id, else handle) and
    questions counted.  ``withheld`` (reasons, :func:`published_sql`): a
    published listing, whose post and participant counts leave those posts out."""
    where, params = "", []
    if hashtag:
        where, params = "WHERE s.hashtag = ? COLLATE NOCASE", [hashtag.lstrip("#")]
    shown = published_sql("p", withheld)
    cur = connection(db).execute(
        f"""{_SESSION_SELECT.replace(" FROM sessions s", "")},
               (SELECT count(DISTINCT coalesce(p.author_id, p.author_handle, '')) FROM session_posts sp
                JOIN posts p ON p.id = sp.post_id WHERE sp.session_id = s.id AND {shown}) AS participants,
               (SELECT count(*) FROM questions q WHERE q.session_id = s.id) AS questions,
               {f"(SELECT count(*) FROM session_posts sp JOIN posts p ON p.id = sp.post_id WHERE sp.session_id = s.id AND {shown})"
                if withheld else "NULL"}
            FROM sessions s {where} ORDER BY s.start, s.id""",
        params,
    )
    n = len(Session.COLUMNS)
    out = []
    for r in cur:
        s = _session(r, participants=r[n], questions=r[n + 1])
        if r[n + 2] is not None:
            s.posts = as_int(r[n + 2]) or 0
        out.append(s)
    return out


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


def count_sessions(db: Connection) -> int:
    return int(connection(db).execute("SELECT count(*) FROM sessions").fetchone()[0])


def sessions_by_ids(db: Connection, ids: Iterable[int]) -> list[Session]:
    """The sessions with these ids (any order; unknown ids are left out)."""
    out: list[Session] = []
    conn = connection(db)
    for chunk in chunks(list(ids)):
        out += [_session(r) for r in conn.execute(f"{_SESSION_SELECT} WHERE s.id IN ({marks(len(chunk))})", chunk)]
    return out


def recent_sessions(db: Connection, limit: int = 10) -> list[Session]:
    """The newest sessions first."""
    return [_session(r) for r in connection(db).execute(
        f"{_SESSION_SELECT} ORDER BY s.start DESC, s.id DESC LIMIT ?", [limit])]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def sessions_matching(db: Connection, text: str, limit: int = 11) -> list[Session]:
    """Sessions whose slug, title or hashtag contains ``text`` (any case), newest first."""
    return [_session(r) for r in connection(db).execute(
        rf"""{_SESSION_SELECT} WHERE s.slug LIKE :like ESCAPE '\' OR s.title LIKE :like ESCAPE '\'
             OR s.hashtag LIKE :like ESCAPE '\' ORDER BY s.start DESC LIMIT :limit""",
        {"like": _like(text), "limit": limit})]


def post_sessions(db: Connection, post_ids: Iterable[str]) -> dict[str, list[Session]]:
    """The sessions each post belongs to (posts in none are left out)."""
    out: dict[str, list[Session]] = {}
    conn = connection(db)
    select = _SESSION_SELECT.replace(" FROM sessions s", "")
    for chunk in chunks(list(post_ids)):
        for r in conn.execute(
            f"""{select}, sp.post_id FROM session_posts sp JOIN sessions s ON s.id = sp.session_id
                WHERE sp.post_id IN ({marks(len(chunk))}) ORDER BY s.start, s.id""", chunk):
            out.setdefault(r[len(Session.COLUMNS)], []).append(_session(r))
    return out


# --------------------------------------------------------------------------
# Authors

_AUTHOR_FIELDS = ("id", "platform", "handle", "name", "avatar_url", "url")
_AUTHOR_SELECT = ", ".join(f"a.{c}" for c in _AUTHOR_FIELDS)


_TEXT_TYPES = frozenset((str, type(None)))


def _author(r: Any, at: int = 0) -> Author | None:
    if r[at] is None:
        return None
    values = r[at:at + len(_AUTHOR_FIELDS)]
    if not _TEXT_TYPES.issuperset(map(type, values)):
        values = [as_text(v) for v in values]
    return Author(*values)


def count_authors(db: Connection) -> int:
    return int(connection(db).execute("SELECT count(*) FROM authors").fetchone()[0])


def all_authors(db: Connection) -> list[Author]:
    return [a for a in (_author(r) for r in connection(db).execute(f"SELECT {_AUTHOR_SELECT} FROM authors a"))
            if a is not None]


def authors_matching(db: Connection, text: str, limit: int = 11, *, exact: str | None = None) -> list[Author]:
    """Authors whose handle or name contains ``text`` (SQL LIKE: any case for
    ASCII): the handle ``exact`` (default: ``text``) first, then shorter handles."""
    return [a for a in (_author(r) for r in connection(db).execute(
        rf"""SELECT {_AUTHOR_SELECT} FROM authors a WHERE a.handle LIKE :like ESCAPE '\' OR a.name LIKE :like ESCAPE '\'
             ORDER BY (a.handle = :exact COLLATE NOCASE) DESC, length(a.handle), a.handle LIMIT :limit""",
        {"like": _like(text), "exact": text if exact is None else exact, "limit": limit})) if a is not None]


def session_authors(db: Connection, session_ids: list[int]) -> list[Author]:
    """Every author of a post of these sessions, once, by author id."""
    found: dict[str, Author] = {}
    conn = connection(db)
    for chunk in chunks(session_ids):
        for r in conn.execute(
            f"""SELECT DISTINCT {_AUTHOR_SELECT} FROM session_posts sp JOIN posts p ON p.id = sp.post_id
                JOIN authors a ON a.id = p.author_id WHERE sp.session_id IN ({marks(len(chunk))})""", chunk):
            a = _author(r)
            if a is not None:
                found.setdefault(a.id, a)
    return [found[k] for k in sorted(found)]


# --------------------------------------------------------------------------
# Posts as the views read them


@dataclass(slots=True)
class PostRow:
    """A post as the views read it: its row, its author's row (None when the
    author is not in ``authors``) and its media and links (filled by
    :func:`attach_entities`)."""

    post: StoredPost
    author: Author | None
    media: list[Media] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


_POST_AUTHOR_SELECT = f"{POST_SELECT}, {_AUTHOR_SELECT}"


def _post_row(r: Any) -> PostRow:
    return PostRow(stored_post(r), _author(r, _NPOST))


def session_posts(db: Connection, session_id: int, *, entities: bool = True) -> list[PostRow]:
    """Every post of a session in time order, with its author (and, unless
    ``entities=False``, its media and links)."""
    got = [_post_row(r) for r in connection(db).execute(
        f"""SELECT {_POST_AUTHOR_SELECT} FROM session_posts sp JOIN posts p ON p.id = sp.post_id
            LEFT JOIN authors a ON a.id = p.author_id
            WHERE sp.session_id = ? ORDER BY {POST_TIME_ORDER}""", [session_id])]
    if entities:
        attach_entities(db, got, session_id=session_id)
    return got


def session_link_titles(db: Connection, session_id: int) -> dict[str, str]:
    """The page titles the data gave for the links of a session's posts (links.title), by URL."""
    return dict(connection(db).execute(
        """SELECT DISTINCT l.url, l.title FROM session_posts sp JOIN post_links pl ON pl.post_id = sp.post_id
           JOIN links l ON l.id = pl.link_id WHERE sp.session_id = ? AND l.title IS NOT NULL""", [session_id]))


def attach_entities(db: Connection, posts: list[PostRow], *, session_id: int | None = None) -> None:
    """Fill in the media and links of ``posts`` (all of one session when
    ``session_id`` is given: two queries instead of two per 500 posts)."""
    conn = connection(db)
    by_id = {r.post.id: r for r in posts}
    if session_id is not None:
        media_rows = conn.execute(
            """SELECT pm.post_id, m.url, m.type, m.alt, m.preview_url FROM session_posts sp
               JOIN post_media pm ON pm.post_id = sp.post_id JOIN media m ON m.id = pm.media_id
               WHERE sp.session_id = ? ORDER BY m.id""", [session_id]).fetchall()
        link_rows = conn.execute(
            """SELECT pl.post_id, l.url FROM session_posts sp JOIN post_links pl ON pl.post_id = sp.post_id
               JOIN links l ON l.id = pl.link_id WHERE sp.session_id = ? ORDER BY l.id""", [session_id]).fetchall()
    else:
        media_rows, link_rows = [], []
        for chunk in chunks(list(by_id)):
            m = marks(len(chunk))
            media_rows += conn.execute(
                f"""SELECT pm.post_id, m.url, m.type, m.alt, m.preview_url FROM post_media pm
                    JOIN media m ON m.id = pm.media_id WHERE pm.post_id IN ({m}) ORDER BY m.id""", chunk).fetchall()
            link_rows += conn.execute(
                f"""SELECT pl.post_id, l.url FROM post_links pl JOIN links l ON l.id = pl.link_id
                    WHERE pl.post_id IN ({m}) ORDER BY l.id""", chunk).fetchall()
    for r in posts:
        r.media = []
        r.links = []
    for pid, url, typ, alt, preview in media_rows:
        row = by_id.get(pid)
        if row is not None:
            row.media.append(Media(url=as_text(url) or "", type=as_text(typ), alt=as_text(alt),
                                   preview_url=as_text(preview)))
    for pid, url in link_rows:
        row = by_id.get(pid)
        if row is not None and url is not None:
            row.links.append(as_text(url) or "")


def search_rows(db: Connection, match: str, rowids: list[int]) -> dict[int, tuple[PostRow, str]]:
    """The posts of full-text hits (by ``posts`` rowid, as FTS5 returns them)
    with their snippets for ``match`` (matches between ``models.HIGHLIGHT_START``
    and ``HIGHLIGHT_END``), their authors, media and links."""
    out: dict[int, tuple[PostRow, str]] = {}
    conn = connection(db)
    for chunk in chunks(rowids):
        for r in conn.execute(
            f"""SELECT {_POST_AUTHOR_SELECT}, snippet(posts_fts, 0, char(2), char(3), '…', 24), posts_fts.rowid
                FROM posts_fts JOIN posts p ON p.rowid = posts_fts.rowid LEFT JOIN authors a ON a.id = p.author_id
                WHERE posts_fts MATCH ? AND posts_fts.rowid IN ({marks(len(chunk))})""", [match, *chunk]):
            n = _NPOST + len(_AUTHOR_FIELDS)
            out[r[n + 1]] = (_post_row(r), r[n])
    attach_entities(db, [row for row, _ in out.values()])
    return out


def participant_posts(db: Connection, session_ids: list[int], *, authors: Iterable[str] | None = None,
                      withheld: tuple[str, ...] | None = WITHHELD_REASONS
                      ) -> Iterator[tuple[int, StoredPost, int | None, int | None]]:
    """Every post (reposts and deleted posts left out) of these sessions that
    has an author (one of ``authors`` when given), as (session id, post,
    number of the question it asks, number of the question it answers),
    author by author and in time order within each (unknown times last): a
    stream that a participant page at a time can be cut from.  Posts
    ``withheld`` from published outputs (reasons, :func:`published_sql`) are
    left out too."""
    if not session_ids:
        return
    conn = connection(db)
    sessions = marks(len(session_ids))
    query = f"""SELECT sp.session_id, q1.number, q2.number, {POST_SELECT}
            FROM session_posts sp JOIN posts p ON p.id = sp.post_id
            LEFT JOIN questions q1 ON q1.id = p.question_id
            LEFT JOIN questions q2 ON q2.id = p.answer_to_id
            WHERE sp.session_id IN ({sessions}) AND p.author_id IS NOT NULL AND p.is_repost = 0
              AND p.deleted_at IS NULL AND {published_sql("p", withheld)} {{author}}
            ORDER BY p.author_id, {POST_TIME_ORDER}"""
    if authors is None:
        cursors: Iterable[Any] = [conn.execute(query.format(author=""), session_ids)]
    else:
        wanted = sorted(set(authors))
        cursors = (conn.execute(query.format(author=f"AND p.author_id IN ({marks(len(chunk))})"),
                                [*session_ids, *chunk]) for chunk in chunks(wanted))
    for cur in cursors:
        for r in cur:
            yield as_int(r[0]) or 0, stored_post(r[3:]), as_int(r[1]), as_int(r[2])


def session_media_urls(db: Connection, session_ids: list[int]) -> set[str]:
    """Every avatar, media and media preview URL of these sessions' posts, as stored."""
    conn = connection(db)
    urls: set[str] = set()
    for chunk in chunks(session_ids):
        m = marks(len(chunk))
        urls.update(u for (u,) in conn.execute(
            f"""SELECT DISTINCT a.avatar_url FROM session_posts sp JOIN posts p ON p.id = sp.post_id
                JOIN authors a ON a.id = p.author_id WHERE sp.session_id IN ({m})""", chunk) if u)
        for u, prev in conn.execute(
            f"""SELECT DISTINCT m.url, m.preview_url FROM session_posts sp JOIN post_media pm ON pm.post_id = sp.post_id
                JOIN media m ON m.id = pm.media_id WHERE sp.session_id IN ({m})""", chunk):
            urls.update(v for v in (u, prev) if v)
    return urls


# --------------------------------------------------------------------------
# What the statistics count (analysis.stats)


def earlier_authors(db: Connection, session: Session, author_ids: list[str]) -> set[str]:
    """Which of ``author_ids`` posted in an earlier session of the same hashtag."""
    out: set[str] = set()
    conn = connection(db)
    for chunk in chunks(author_ids):
        out.update(r[0] for r in conn.execute(
            # Start from the earlier sessions (few) and walk their members;
            # starting from each author's posts checks every session per post.
            f"""SELECT DISTINCT p.author_id FROM sessions s
                CROSS JOIN session_posts sp ON sp.session_id = s.id
                CROSS JOIN posts p ON p.id = sp.post_id
                WHERE p.author_id IN ({marks(len(chunk))})
                  AND s.hashtag = ? COLLATE NOCASE AND (s.start < ? OR (s.start = ? AND s.id < ?))""",
            [*chunk, session.hashtag, session.start, session.start, session.id],
        ))
    return out


def question_answers(db: Connection, session_id: int, *, withheld: tuple[str, ...] | None = None
                     ) -> list[tuple[Any, ...]]:
    """The session's questions in number order, as (id, number, post id, text,
    asked at, asker's handle, number of answers, time of the first answer
    posted after the question, or None); answers ``withheld`` (reasons, see
    :func:`published_sql`) are not counted."""
    conn = connection(db)
    shown = published_sql("posts", withheld)
    out = []
    for qid, number, post_id, text, created_at, handle in conn.execute(
        """SELECT q.id, q.number, q.post_id, q.text, p.created_at,
                  coalesce(a.handle, p.author_handle, p.author_id)
           FROM questions q LEFT JOIN posts p ON p.id = q.post_id LEFT JOIN authors a ON a.id = p.author_id
           WHERE q.session_id = ? ORDER BY q.number""", [session_id]).fetchall():
        answers, first = conn.execute(
            f"""SELECT count(*), min(CASE WHEN created_at >= ? THEN created_at END)
               FROM posts WHERE answer_to_id = ? AND {shown}""", [created_at or "", qid]).fetchone()
        out.append((qid, number, post_id, text, created_at, handle, answers, first))
    return out


def session_links(db: Connection, session_id: int, *, withheld: tuple[str, ...] | None = None
                  ) -> list[tuple[str, int]]:
    """The links of the session's posts (reposts and posts ``withheld`` left
    out) with the number of posts sharing each."""
    return [(u, n) for u, n in connection(db).execute(
        f"""SELECT l.url, count(DISTINCT p.id) FROM session_posts sp JOIN posts p ON p.id = sp.post_id
           JOIN post_links pl ON pl.post_id = p.id JOIN links l ON l.id = pl.link_id
           WHERE sp.session_id = ? AND p.is_repost = 0 AND {published_sql("p", withheld)}
           GROUP BY l.url""", [session_id])]


def post_urls(db: Connection, urls: list[str]) -> set[str]:
    """Which of ``urls`` are permalinks of archived posts."""
    out: set[str] = set()
    conn = connection(db)
    for chunk in chunks(urls):
        out.update(r[0] for r in conn.execute(f"SELECT url FROM posts WHERE url IN ({marks(len(chunk))})", chunk))
    return out


def hashtag_sessions(db: Connection, hashtag: str) -> list[tuple[int, str, str | None, int]]:
    """A hashtag's sessions (any case) in time order, as (id, slug, start, post count)."""
    return [(r[0], r[1], r[2], r[3]) for r in connection(db).execute(
        """SELECT id, slug, start, coalesce(post_count, 0) FROM sessions
           WHERE hashtag = ? COLLATE NOCASE ORDER BY start, id""", [hashtag])]


def hashtag_participants(db: Connection, hashtag: str) -> Iterator[tuple[int, str | None, str | None]]:
    """(session id, author id, handle) for every author of every session of a hashtag."""
    for r in connection(db).execute(
        """SELECT sp.session_id, p.author_id, coalesce(a.handle, p.author_handle, p.author_id)
           FROM sessions s JOIN session_posts sp ON sp.session_id = s.id JOIN posts p ON p.id = sp.post_id
           LEFT JOIN authors a ON a.id = p.author_id
           WHERE s.hashtag = ? COLLATE NOCASE GROUP BY sp.session_id, p.author_id""", [hashtag]):
        yield r[0], r[1], r[2]


def hashtag_spelling(db: Connection, hashtag: str) -> str | None:
    """The hashtag as the sessions spell it (they match it in any case)."""
    row = connection(db).execute(
        "SELECT hashtag FROM sessions WHERE hashtag = ? COLLATE NOCASE LIMIT 1", [hashtag]).fetchone()
    return row[0] if row else None


def rows(db: Connection, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """A query's rows as dicts (for the few reads whose shape is their own)."""
    cur = connection(db).execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur]
