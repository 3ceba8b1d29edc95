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
    sql = ""
    if order == "best" and filters:
        ranked = _best_filtered(conn, params, extra, hashtag is not None, session_id is not None,
                                since is not None or until is not None, limit)
    elif order == "best":
        sql = f"""SELECT posts_fts.rowid, bm25(posts_fts, {BM25_WEIGHTS}) AS rank FROM posts_fts
                  WHERE posts_fts MATCH :query
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
    if sql:
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



# How many of the best unfiltered matches are ranked before the filters are
# applied to them, as a multiple of the limit (ranking costs the same for
# any window: bm25 is computed for every match either way).
_WINDOW_PER_HIT = 25
_MIN_WINDOW = 500


def _best_filtered(conn: sqlite3.Connection, params: dict[str, Any], extra: str, by_tag: bool, by_session: bool,
                   by_time: bool, limit: int) -> list[tuple[int, float]]:
    """The best ``limit`` matches that pass the filters, exactly as one
    statement with the filters inside would rank them, but at most the cost
    of the unfiltered search.  That statement checks every match against the
    filters (a row and an index lookup each), which made a filtered search
    slower than the same search unfiltered.  Instead:

    * a filter that leaves few posts (a session, a rare hashtag, a short
      time span) is turned into the set of their rowids first, and only the
      matches in it get a bm25 score;
    * otherwise the best matches unfiltered are ranked with a window of a
      few hundred, and the filters checked on those only; when fewer than
      ``limit`` pass, the statement with the filters inside decides."""
    window = max(limit * _WINDOW_PER_HIT, _MIN_WINDOW)
    inside = f"""SELECT posts_fts.rowid, bm25(posts_fts, {BM25_WEIGHTS}) AS rank
                 FROM posts_fts JOIN posts ON posts.rowid = posts_fts.rowid
                 WHERE posts_fts MATCH :query{extra} ORDER BY rank LIMIT :limit"""
    matches = conn.execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH :query", params).fetchone()[0]
    if matches <= window:
        return conn.execute(inside, params).fetchall()  # few matches: checking each costs little
    posts = conn.execute("SELECT coalesce(max(rowid), 0) FROM posts").fetchone()[0] or 1
    # Do enough posts pass for the window to hold the limit (half as many
    # again, for luck)?  Counted in the filter's own index, up to that many.
    enough = min(matches, 3 * limit * posts // (2 * window) + 1)
    drivers = _candidates(by_tag, by_session, by_time, extra)
    if drivers is not None:
        count_sql, rowids_sql = drivers
        passing = conn.execute(f"SELECT count(*) FROM ({count_sql} LIMIT {enough})", params).fetchone()[0]
        if passing < enough:
            # Few posts pass: rank only the matches among them.  The unary +
            # keeps the rowid test out of FTS5's plan (given to FTS5, each
            # rowid would be a full-text query of its own).
            return conn.execute(
                f"""SELECT rowid, bm25(posts_fts, {BM25_WEIGHTS}) AS rank FROM posts_fts
                    WHERE posts_fts MATCH :query AND +rowid IN ({rowids_sql})
                    ORDER BY rank LIMIT :limit""", params).fetchall()
    ranked = conn.execute(
        f"""SELECT rowid, bm25(posts_fts, {BM25_WEIGHTS}) AS rank FROM posts_fts
            WHERE posts_fts MATCH :query ORDER BY rank LIMIT {window}""", params).fetchall()
    best: list[tuple[int, float]] = []
    # best first, a hundred at a time: each check reads a post's row, so
    # stop as soon as the limit is reached
    for chunk in chunks(ranked, 100):
        kept = {r[0] for r in conn.execute(
            f"SELECT posts.rowid FROM posts WHERE posts.rowid IN ({', '.join(str(r[0]) for r in chunk)}){extra}",
            params)}
        best += [r for r in chunk if r[0] in kept]
        if len(best) >= limit:
            return best[:limit]
    if len(ranked) < window:  # that was every match
        return best
    return conn.execute(inside, params).fetchall()


def _candidates(by_tag: bool, by_session: bool, by_time: bool, extra: str) -> tuple[str, str] | None:
    """For the most selective filter with an index of its own (a session, a
    hashtag, a time span): a statement listing its entries in that index
    alone (cheap to count), and one giving the rowids of the posts that
    pass every filter; None for filters without one (an author)."""
    if by_session:
        count = "SELECT 1 FROM session_posts WHERE session_id = :session_id"
        rowids = "SELECT posts.rowid FROM session_posts sp JOIN posts ON posts.id = sp.post_id " \
                 "WHERE sp.session_id = :session_id"
    elif by_tag:
        count = "SELECT 1 FROM post_hashtags INDEXED BY idx_post_hashtags_hashtag WHERE hashtag_id = :tag_id"
        rowids = "SELECT posts.rowid FROM post_hashtags ph JOIN posts ON posts.id = ph.post_id " \
                 "WHERE ph.hashtag_id = :tag_id"
    elif by_time:
        span = " AND ".join(c for c, on in (("created_at >= :since", "since"), ("created_at < :until", "until"))
                            if f":{on}" in extra)
        count = f"SELECT 1 FROM posts INDEXED BY idx_posts_created_at WHERE {span}"
        rowids = "SELECT posts.rowid FROM posts INDEXED BY idx_posts_created_at WHERE 1"
    else:
        return None
    return count, rowids + extra
