"""The search page and the session pages the plugin adds to Datasette.

Both read through ``archive.queries`` (``db.execute_fn``: one thread hop per
page) and show posts through ``present.views`` and ``present.html``, the
recap's view model and post HTML, with :class:`DatasetteTargets` for links.
Only the full-text hit lists stay SQL here: they run through
``db.execute`` for Datasette's time limit (a search that takes too long
says so instead of holding a thread).

Their templates, ``chatarchive_search.html`` and ``chatarchive_session.html``,
can be overridden with Datasette's ``--template-dir``; posts come to them as
HTML (``posts_html``, ``g.posts_html``, ``p.html``), so the post markup is
the same as the recap's and cannot be overridden per template.
"""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.parse
import weakref
from datetime import timezone
from typing import Any

from datasette import Response
from datasette.database import QueryInterrupted
from datasette.utils import tilde_decode

from ..archive import queries
from ..archive.search import words_query
from ..errors import NotFoundError
from ..gc_pause import gc_paused
from ..models import Author, Session
from ..present.html import avatar, avatar_css, post_html, post_list_html
from ..present.model import Person, PostView, Ref, SessionLink
from ..present.text import TIME_UNKNOWN, clean, highlight, local_datetime, platform_name
from ..present.views import (
    People,
    SessionPost,
    SessionView,
    load_session,
    post_view,
    question_groups,
    session_post_views,
)
from .archives import DatasetteTargets, detect

SEARCH_PAGE_SIZE = 50


class _NotFound(Exception):
    """Turned into a 404 page by the views (Datasette's NotFound would be
    logged with a full traceback)."""


async def _not_found(datasette: Any, request: Any, message: str) -> Response:
    html = await datasette.render_template(
        "error.html", {"ok": False, "error": message, "status": 404, "title": "Not found"},
        request=request,
    )
    return Response.html(html, status=404)


async def _archive_database(datasette: Any, request: Any) -> Any:
    route = tilde_decode(request.url_vars["database"])
    try:
        db = datasette.get_database(route=route)
    except KeyError:
        raise _NotFound(f"Database not found: {route}") from None
    if not await detect(datasette, db.name):
        raise _NotFound(f"{db.name} is not a chatarchive archive")
    await datasette.ensure_permissions(
        request.actor,
        [("view-table", (db.name, "posts")), ("view-database", db.name), "view-instance"],
    )
    return db


def _session_item(s: Session, targets: DatasetteTargets) -> dict[str, Any]:
    return {"id": s.id, "slug": s.slug, "hashtag": s.hashtag, "title": s.title, "start": s.start,
            "post_count": s.posts, "url": targets.session(s.slug)}


def local_time(iso: str | None, zone: Any) -> str:
    """'2026-10-14 20:00 EDT' in the chat's zone (UTC when it has none)."""
    if not iso:
        return ""
    dt = local_datetime(iso, zone)
    if dt is None:  # a malformed time, or one out of the calendar in that zone
        return TIME_UNKNOWN
    return dt.strftime("%Y-%m-%d %H:%M ") + (dt.tzname() or "UTC")


# --------------------------------------------------------------------------
# The search page


async def search_page(datasette: Any, request: Any) -> Response:
    try:
        db = await _archive_database(datasette, request)
    except _NotFound as e:
        return await _not_found(datasette, request, str(e))
    targets = DatasetteTargets(datasette, db.name)
    q = (request.args.get("q") or "").strip()[:500]
    order = "newest" if request.args.get("order") == "newest" else "best"
    try:
        page = max(1, min(int(request.args.get("page") or 1), 1000))
    except ValueError:
        page = 1
    ctx: dict[str, Any] = {
        "datasette": datasette, "database": db.name, "q": q, "order": order, "page": page,
        "sessions": [], "people": [], "posts": [], "posts_html": "", "total": 0, "note": None,
        "search_url": targets.search(), "db_url": datasette.urls.database(db.name),
        "prev_url": None, "next_url": None, "error": None, "avatar_css": "",
    }
    if q:
        await _search(db, targets, q, order, page, ctx)
    else:
        recent = await db.execute_fn(lambda conn: queries.recent_sessions(conn, 10))
        ctx["recent"] = [_session_item(s, targets) for s in recent]
    html = await datasette.render_template(
        "chatarchive_search.html", ctx, request=request, view_name="chatarchive_search"
    )
    return Response.html(html)


# What the host hid and what people did not consent to is no hit (archive/published.py).
_SHOWN_HIT = f"rowid not in {queries.withheld_rowids_sql()}"
_BEST_HITS = f"""select rowid from posts_fts where posts_fts match :q and {_SHOWN_HIT}
    order by bm25(posts_fts, 10.0, 2.0, 1.0) limit :limit offset :offset"""
# Newest first, two plans: walk the time index backwards keeping matches
# (cheap when matches are common: it stops after `limit` of them), or fetch
# every match and sort (cheap when they are few).
_NEWEST_BY_INDEX = f"""select rowid from posts indexed by idx_posts_created_at
    where rowid in (select rowid from posts_fts where posts_fts match :q) and {_SHOWN_HIT}
    order by created_at desc, rowid desc limit :limit offset :offset"""
_NEWEST_BY_SORT = f"""select p.rowid from posts_fts join posts p on p.rowid = posts_fts.rowid
    where posts_fts match :q and p.{_SHOWN_HIT} order by p.created_at desc, p.rowid desc limit :limit offset :offset"""


def newest_by_index(matches: int, needed: int, posts: int) -> bool:
    """Walking the index visits about needed * posts / matches entries; the
    sort looks up every match (~15 times the cost of an index step)."""
    return matches > 0 and needed * posts / matches < 15 * matches


async def _search(db: Any, targets: DatasetteTargets, q: str, order: str, page: int, ctx: dict[str, Any]) -> None:
    offset = (page - 1) * SEARCH_PAGE_SIZE
    limit = SEARCH_PAGE_SIZE + 1
    words = q.lstrip("#@")

    async def find_sessions() -> list[Session]:
        return await db.execute_fn(lambda conn: queries.sessions_matching(conn, words, 11))

    async def find_people() -> list[Author]:
        index = await _people_index(db)
        if index is not None:
            return search_people(index, words, 11)
        return await db.execute_fn(lambda conn: queries.authors_matching(conn, words, 11, exact=q.lstrip("@")))

    async def find_posts(match: str) -> tuple[list[int], int]:
        # The hits' rowids first (ordered, limited), then snippets and
        # details for those 50 only: snippet() over every match of a common
        # word would cost seconds on a big archive.
        total = (await db.execute(
            f"select count(*) from posts_fts where posts_fts match :q and {_SHOWN_HIT}", {"q": match})).first()[0]
        if not total:
            return [], 0
        if order == "best":
            sql = _BEST_HITS
        else:
            posts = (await db.execute("select max(rowid) from posts")).first()[0] or 0
            sql = _NEWEST_BY_INDEX if newest_by_index(total, offset + limit, posts) else _NEWEST_BY_SORT
        rows = await db.execute(sql, {"q": match, "limit": limit, "offset": offset})
        return [r[0] for r in rows], total

    async def posts_with_fallback() -> tuple[list[int], int, str, str | None, str | None]:
        try:
            return (*await find_posts(q), q, None, None)
        except QueryInterrupted:
            return [], 0, q, None, "The search took too long; try more specific words."
        except sqlite3.OperationalError:
            pass
        match = words_query(q)
        if not match:
            return [], 0, q, "Type some words to search posts.", None
        note = ("That is not valid FTS5 syntax, so the words were searched as they are "
                "(FTS5 syntax: words, \"exact phrases\", AND/OR/NOT, prefix*).")
        try:
            return (*await find_posts(match), match, note, None)
        except (sqlite3.OperationalError, QueryInterrupted):
            return [], 0, match, note, "Could not search for that."

    # Three independent searches: run them side by side (Datasette has a
    # pool of read connections).
    sessions, authors, (hits, total, match, note, error) = await asyncio.gather(
        find_sessions(), find_people(), posts_with_fallback())
    ctx["sessions"] = [_session_item(s, targets) for s in sessions]
    people = People()
    found = [people.add(Person.of_author(a)) for a in authors]
    ctx["people"] = [
        {"id": a.id, "platform": a.platform, "handle": a.handle, "name": a.name, "avatar_url": a.avatar_url,
         "person": person, "avatar": avatar(person), "url": targets.mention(a.handle or a.id)}
        for a, person in zip(authors, found)
    ]
    ctx["note"], ctx["error"] = note, error
    if error:
        ctx["avatar_css"] = avatar_css(found, targets.image)
        return
    more = len(hits) > SEARCH_PAGE_SIZE
    hits = hits[:SEARCH_PAGE_SIZE]
    ctx["total"] = total
    posts: list[PostView] = []
    if hits:
        def read(conn: sqlite3.Connection) -> tuple[dict, dict[str, list[Session]]]:
            rows = queries.search_rows(conn, match, hits)
            return rows, queries.post_sessions(conn, [row.post.id for row, _ in rows.values()])

        rows, sessions_of = await db.execute_fn(read)
        for h in hits:
            if h not in rows:
                continue
            row, snippet = rows[h]
            p = SessionPost.of(row)
            v = post_view(p, people.of(p), targets, timezone.utc, with_date=True)
            # The hit shows where the words matched (escaped, matches marked), as text.
            v.body, v.is_html, v.snippet = highlight(snippet), False, True
            if row.post.reply_to_author:
                v.reply_to = Ref(None, clean(row.post.reply_to_author))
            v.sessions = [SessionLink(s.slug, targets.session(s.slug)) for s in sessions_of.get(row.post.id, [])]
            v.html = post_html(v)
            posts.append(v)
    ctx["posts"] = posts
    ctx["posts_html"] = post_list_html(posts)
    ctx["avatar_css"] = avatar_css([*found, *(v.person for v in posts)], targets.image)
    base = {"q": q} | ({"order": order} if order != "best" else {})
    if page > 1:
        ctx["prev_url"] = targets.search() + "?" + urllib.parse.urlencode(base | {"page": page - 1})
    if more:
        ctx["next_url"] = targets.search() + "?" + urllib.parse.urlencode(base | {"page": page + 1})
    ctx["order_urls"] = {
        "best": targets.search() + "?" + urllib.parse.urlencode({"q": q}),
        "newest": targets.search() + "?" + urllib.parse.urlencode({"q": q, "order": "newest"}),
    }
    ctx["first"] = offset + 1
    ctx["last"] = offset + len(hits)


# People of immutable archives, kept in memory: a substring search over
# 60,000 handles and names is ~5 ms in Python and ~80 ms as SQL LIKE, and
# casefold() matches "ZOË" to "Zoë", which LIKE does only for ASCII.  The
# rows are tuples of strings, which the garbage collector stops tracking:
# 60,000 objects (and their dicts) it would otherwise walk on every full
# collection of a long-running server.
_PEOPLE: weakref.WeakKeyDictionary[Any, list[tuple[str, tuple]] | None] = weakref.WeakKeyDictionary()
PEOPLE_IN_MEMORY_MAX = 500_000


async def _people_index(db: Any) -> list[tuple[str, tuple]] | None:
    if db.is_mutable:
        return None  # --live: authors change under us, ask SQLite each time
    if db in _PEOPLE:
        return _PEOPLE[db]

    def read(conn: sqlite3.Connection) -> list[tuple[str, tuple]] | None:
        if queries.count_authors(conn) > PEOPLE_IN_MEMORY_MAX:
            return None
        return [(f"{a.handle or ''}\n{a.name or ''}".casefold(),
                 (a.id, a.platform, a.handle, a.name, a.avatar_url, a.url)) for a in queries.all_authors(conn)]

    index = await db.execute_fn(read)
    _PEOPLE[db] = index
    return index


def search_people(index: list[tuple[str, tuple]], needle: str, limit: int) -> list[Author]:
    """Handles or names containing `needle` (any case): exact handle
    first, then shorter handles.  ``index``: (handle and name casefolded,
    the author's id, platform, handle, name, avatar_url, url)."""
    q = needle.casefold()
    if not q:
        return []
    found = [row for key, row in index if q in key]
    found.sort(key=lambda r: ((r[2] or "").casefold() != q, len(r[2] or ""), r[2] or ""))
    return [Author(*row) for row in found[:limit]]


# --------------------------------------------------------------------------
# The session page


async def session_page(datasette: Any, request: Any) -> Response:
    try:
        db = await _archive_database(datasette, request)
    except _NotFound as e:
        return await _not_found(datasette, request, str(e))
    targets = DatasetteTargets(datasette, db.name, anchors=True)
    key = urllib.parse.unquote(request.url_vars["session"])
    # A 4,000-post session is ~300,000 objects alive until the page is
    # written: with the collector on, its full collections doubled the time.
    with gc_paused():
        try:
            view = await db.execute_fn(lambda conn: load_session(conn, key, statistics=False, summaries=False))
        except NotFoundError:
            return await _not_found(datasette, request, f"No session {key!r} in {db.name}.")
        return await _session_response(datasette, request, db, targets, view)


async def _session_response(datasette: Any, request: Any, db: Any, targets: DatasetteTargets,
                            view: SessionView) -> Response:
    people = People()
    views = session_post_views(view, people, targets, with_date=True)
    groups = question_groups(view, views, targets)
    authors: dict[str, dict[str, Any]] = {}
    for p in view.posts:
        person = people.of(p)
        a = authors.setdefault(person.author_id or person.handle, {
            "handle": person.handle, "name": person.name, "person": person, "avatar": avatar(person),
            "url": targets.person(person), "posts": 0})
        a["posts"] += 1
    participants = sorted(authors.values(), key=lambda a: (-a["posts"], a["handle"].lower()))
    s = view.session
    db_url = datasette.urls.database(db.name)
    ctx = {
        "session": s,
        "title": s.title or (f"#{s.hashtag}" if s.hashtag else s.slug),
        "hashtag": s.hashtag,
        "hashtag_url": targets.tag(s.hashtag) if s.hashtag else None,
        "when": local_time(s.start, view.zone),
        "until": local_time(s.end, view.zone),
        "start_utc": s.start,
        "hosts": [{"handle": h.lstrip("@"), "url": targets.mention(h.lstrip("@"))} for h in s.hosts],
        "platforms": [platform_name(p) for p in s.platforms],
        "groups": groups,
        "questions": [g for g in groups if g.question is not None],
        "post_count": len(view.posts),
        "participants": participants,
        "participant_count": len(participants),
        "avatar_css": avatar_css([a["person"] for a in participants], targets.image),
        "database": db.name,
        "db_url": db_url,
        "search_url": targets.search(),
        "transcript_url": f"{db_url}/session_transcript?" + urllib.parse.urlencode({"session": s.slug}),
        "table_url": f"{db_url}/posts_in_sessions?" + urllib.parse.urlencode({"session": s.slug}),
    }
    html = await datasette.render_template(
        "chatarchive_session.html", ctx, request=request, view_name="chatarchive_session"
    )
    return Response.html(html)
