"""Full-text search over posts (FTS5): the ids of the best or newest
matches first, then rows and snippets for those only.  Results are
:class:`models.SearchHit` (the post as a ``StoredPost``, its snippet, its rank);
an invalid FTS5 query is a :class:`errors.SearchError`."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import sqlite_utils

from ..errors import SearchError
from ..models import HIGHLIGHT_END, HIGHLIGHT_START, SearchHit
from .queries import chunks, post_columns, resolve_session, stored_post

BM25_WEIGHTS = "10.0, 2.0, 1.0"  # text, author_handle, author_name
# Above this many full-text matches, "newest" walks posts by time and stops
# at the limit instead of sorting every match.
NEWEST_SCAN_THRESHOLD = 2000
_WORD = re.compile(r"\w+")


def words_query(query: str) -> str:
    """What hosts type that is not FTS5 syntax (``A1:``, ``Q3:``, ``@handle``,
    ``#tag``, URLs, ``e-mail``, ``community AND``) as an FTS5 query for its
    words, each quoted (so nothing in it is syntax) and all required; ""
    when it has no words.  The CLI, the API and the Datasette search page
    fall back to it the same way."""
    return " ".join(f'"{w}"' for w in _WORD.findall(query))


class SearchResults(list[SearchHit]):
    """The hits of a search, best or newest first.  ``query`` is the FTS5
    query that ran; ``note`` says why it differs from what was typed (None
    when it does not)."""

    def __init__(self, hits: list[SearchHit], query: str, note: str | None = None) -> None:
        super().__init__(hits)
        self.query = query
        self.note = note


# What SQLite says when FTS5 cannot parse a MATCH query (as opposed to a
# locked or broken database, which must not be taken for a typo).
_SYNTAX_ERRORS = ("fts5", "syntax error", "no such column", "unterminated", "unknown special query",
                  "malformed MATCH")


def _is_syntax_error(e: sqlite3.OperationalError) -> bool:
    msg = str(e)
    return any(m in msg for m in _SYNTAX_ERRORS)


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
) -> SearchResults:
    """Full-text search: the best (bm25) or newest ``limit`` matches, each a
    SearchHit with the post, its snippet (matches between HIGHLIGHT_START
    and HIGHLIGHT_END) and its rank (bm25, lower is better; None with
    ``order="newest"``).

    A query that is not valid FTS5 syntax is searched for its words
    (:func:`words_query`) and the result's ``note`` says so; only a query
    without words is a SearchError.  An unknown ``session`` is a
    NotFoundError.

    Two steps keep big archives fast: first the ids of the best (or newest)
    ``limit`` matches, computing nothing else per match; then rows and
    snippets for those few only."""
    if order not in ("best", "newest"):
        raise ValueError(f"order must be 'best' or 'newest', not {order!r}")
    session_id = resolve_session(db, session) if session else None
    try:
        return SearchResults(_search(db, query, hashtag, author, session_id, since, until, limit, order), query)
    except sqlite3.OperationalError as e:
        if not _is_syntax_error(e):
            raise
        reason = str(e)
    words = words_query(query)
    if words and words != query:
        try:
            hits = _search(db, words, hashtag, author, session_id, since, until, limit, order)
        except sqlite3.OperationalError as e:
            if not _is_syntax_error(e):
                raise
        else:
            return SearchResults(hits, words, f"{query!r} is not FTS5 syntax ({reason}), so its words were "
                                 f"searched: {words}")
    raise SearchError(
        f"Invalid search query: {query!r} ({reason}). FTS5 syntax: words, \"exact phrases\", "
        "AND/OR/NOT (upper case), prefix*, NEAR(a b)."
    ) from None


def _search(db: sqlite_utils.Database, query: str, hashtag: str | None, author: str | None, session_id: int | None,
            since: str | None, until: str | None, limit: int, order: str) -> list[SearchHit]:
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
    if session_id is not None:
        filters.append("EXISTS (SELECT 1 FROM session_posts sp WHERE sp.session_id = :session_id AND sp.post_id = posts.id)")
        params["session_id"] = session_id
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
    found: dict[int, tuple[Any, ...]] = {}
    for chunk in chunks([r[0] for r in ranked], 500):
        marks = ", ".join("?" * len(chunk))
        cursor = conn.execute(
            f"""SELECT {post_columns("posts")},
                   snippet(posts_fts, 0, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', 16) AS snippet, posts.rowid
                FROM posts_fts JOIN posts ON posts.rowid = posts_fts.rowid
                WHERE posts_fts MATCH ? AND posts_fts.rowid IN ({marks})""",
            [query, *chunk],
        )
        for row in cursor:
            found[row[-1]] = row
    out = []
    for rowid, rank in ranked:
        row = found.get(rowid)
        if row is not None:
            out.append(SearchHit(post=stored_post(row), snippet=row[-2], rank=rank))
    return out

