"""The search page and the session pages the plugin adds to Datasette."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import urllib.parse
import weakref
from datetime import datetime
from typing import Any

from .archives import _UTC, _detect, _Links, render_posts
from .html import anchor_for, avatar, highlight, is_safe_url, local_time
from .metadata import PLATFORM_NAMES

SEARCH_PAGE_SIZE = 50


class _NotFound(Exception):
    """Turned into a 404 page by the views (Datasette's NotFound would be
    logged with a full traceback)."""


async def _not_found(datasette, request, message: str):
    from datasette import Response

    html = await datasette.render_template(
        "error.html", {"ok": False, "error": message, "status": 404, "title": "Not found"},
        request=request,
    )
    return Response.html(html, status=404)


async def _archive_database(datasette, request):
    from datasette.utils import tilde_decode

    route = tilde_decode(request.url_vars["database"])
    try:
        db = datasette.get_database(route=route)
    except KeyError:
        raise _NotFound(f"Database not found: {route}")
    if not await _detect(datasette, db.name):
        raise _NotFound(f"{db.name} is not a chatarchive archive")
    await datasette.ensure_permissions(
        request.actor,
        [("view-table", (db.name, "posts")), ("view-database", db.name), "view-instance"],
    )
    return db


def _fts_escape(q: str) -> str:
    words = re.findall(r"\w+", q, re.UNICODE)
    return " ".join(f'"{w}"' for w in words)


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _json_list(value: Any) -> list[str]:
    if not value:
        return []
    try:
        got = json.loads(value)
    except (TypeError, ValueError):
        return [str(value)]
    if isinstance(got, list):
        return [str(x) for x in got]
    return [str(got)]


_POST_COLUMNS_SQL = """p.id, p.platform, p.url, p.author_id, p.author_handle, p.author_name,
    p.text, p.created_at, p.reply_to_id, p.reply_to_author, p.quote_of_id, p.is_repost,
    p.like_count, p.repost_count, p.reply_count, p.matched, p.question_id, p.answer_to_id,
    a.avatar_url"""


class _View(dict):
    """A dict whose keys templates read as attributes without Jinja's
    getattr-then-getitem fallback (an exception per lookup)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _post_view(row: dict[str, Any], links: _Links, zone: Any = None) -> dict[str, Any]:
    """What the post partial needs, with every piece of markup built here.
    `zone` (a ZoneInfo) shows date and time in the chat's own time zone."""
    url = row.get("url")
    created = row.get("created_at") or ""
    date, hhmm = created[:10], created[11:16]
    if zone is not None and len(created) >= 19:
        try:
            local = datetime.fromisoformat(created[:19]).replace(tzinfo=_UTC).astimezone(zone)
            date, hhmm = local.strftime("%Y-%m-%d"), local.strftime("%H:%M")
        except ValueError:
            pass
    return _View({
        "id": row["id"],
        "anchor": anchor_for(row["id"]),
        "platform": row.get("platform"),
        "handle": row.get("author_handle") or row.get("author_id") or "unknown",
        "name": row.get("author_name"),
        "handle_url": links.mention(row.get("author_handle") or ""),
        "avatar": avatar(row.get("avatar_url"), row.get("author_handle"), row.get("author_name")),
        "html": links.linkify(row.get("text") or ""),
        "snippet": highlight(row["snippet"]) if row.get("snippet") else None,
        "created_at": created,
        "time": hhmm,
        "date": date,
        "permalink": str(url).strip() if is_safe_url(url) else None,
        "row_url": links.post_row(row["id"]),
        "reply_to_author": row.get("reply_to_author"),
        "is_repost": bool(row.get("is_repost")),
        "matched": row.get("matched", 1),
        "likes": row.get("like_count"),
        "reposts": row.get("repost_count"),
        "role": None,
        "sessions": [],
    })


async def search_page(datasette, request):
    from datasette import Response

    try:
        db = await _archive_database(datasette, request)
    except _NotFound as e:
        return await _not_found(datasette, request, str(e))
    links = _Links(datasette, db.name)
    q = (request.args.get("q") or "").strip()[:500]
    order = "newest" if request.args.get("order") == "newest" else "best"
    try:
        page = max(1, min(int(request.args.get("page") or 1), 1000))
    except ValueError:
        page = 1
    ctx: dict[str, Any] = {
        "datasette": datasette, "database": db.name, "q": q, "order": order, "page": page,
        "sessions": [], "people": [], "posts": [], "total": 0, "note": None,
        "search_url": links.search(), "db_url": datasette.urls.database(db.name),
        "prev_url": None, "next_url": None, "error": None,
    }
    if q:
        await _search(db, links, q, order, page, ctx)
    else:
        rows = await db.execute(
            "select id, slug, hashtag, title, start, post_count from sessions order by start desc limit 10"
        )
        ctx["recent"] = [dict(r) | {"url": links.session(r["slug"])} for r in rows]
    html = await datasette.render_template(
        "chatarchive_search.html", ctx, request=request, view_name="chatarchive_search"
    )
    return Response.html(html)


_BEST_HITS = """select rowid from posts_fts where posts_fts match :q
    order by bm25(posts_fts, 10.0, 2.0, 1.0) limit :limit offset :offset"""
# Newest first, two plans: walk the time index backwards keeping matches
# (cheap when matches are common: it stops after `limit` of them), or fetch
# every match and sort (cheap when they are few).
_NEWEST_BY_INDEX = """select rowid from posts indexed by idx_posts_created_at
    where rowid in (select rowid from posts_fts where posts_fts match :q)
    order by created_at desc, rowid desc limit :limit offset :offset"""
_NEWEST_BY_SORT = """select p.rowid from posts_fts join posts p on p.rowid = posts_fts.rowid
    where posts_fts match :q order by p.created_at desc, p.rowid desc limit :limit offset :offset"""


def newest_by_index(matches: int, needed: int, posts: int) -> bool:
    """Walking the index visits about needed * posts / matches entries; the
    sort looks up every match (~15 times the cost of an index step)."""
    return matches > 0 and needed * posts / matches < 15 * matches


async def _search(db, links: _Links, q: str, order: str, page: int, ctx: dict[str, Any]) -> None:
    from datasette.database import QueryInterrupted

    like = _like(q.lstrip("#@"))
    offset = (page - 1) * SEARCH_PAGE_SIZE
    limit = SEARCH_PAGE_SIZE + 1

    async def find_sessions():
        return await db.execute(
            r"""select id, slug, hashtag, title, start, post_count from sessions
                where slug like :like escape '\' or title like :like escape '\'
                   or hashtag like :like escape '\'
                order by start desc limit 11""",
            {"like": like},
        )

    async def find_people():
        index = await _people_index(db)
        if index is not None:
            return search_people(index, q.lstrip("#@"), 11)
        return await db.execute(
            r"""select id, platform, handle, name, avatar_url from authors
                where handle like :like escape '\' or name like :like escape '\'
                order by (handle = :exact collate nocase) desc, length(handle), handle limit 11""",
            {"like": like, "exact": q.lstrip("@")},
        )

    async def find_posts(match: str) -> tuple[list[int], int]:
        # The hits' rowids first (ordered, limited), then snippets and
        # details for those 50 only: snippet() over every match of a common
        # word would cost seconds on a big archive.
        total = (await db.execute(
            "select count(*) from posts_fts where posts_fts match :q", {"q": match})).first()[0]
        if not total:
            return [], 0
        if order == "best":
            sql = _BEST_HITS
        else:
            posts = (await db.execute("select max(rowid) from posts")).first()[0] or 0
            sql = _NEWEST_BY_INDEX if newest_by_index(total, offset + limit, posts) else _NEWEST_BY_SORT
        rows = await db.execute(sql, {"q": match, "limit": limit, "offset": offset})
        return [r[0] for r in rows], total

    async def posts_with_fallback():
        try:
            return (*await find_posts(q), q, None, None)
        except QueryInterrupted:
            return [], 0, q, None, "The search took too long; try more specific words."
        except sqlite3.OperationalError:
            pass
        match = _fts_escape(q)
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
    sessions, people, (hits, total, match, note, error) = await asyncio.gather(
        find_sessions(), find_people(), posts_with_fallback())
    ctx["sessions"] = [dict(r) | {"url": links.session(r["slug"])} for r in sessions]
    ctx["people"] = [
        dict(r) | {"avatar": avatar(r["avatar_url"], r["handle"], r["name"]),
                   "url": links.mention(r["handle"] or r["id"])}
        for r in people
    ]
    ctx["note"], ctx["error"] = note, error
    if error:
        return
    more = len(hits) > SEARCH_PAGE_SIZE
    hits = hits[:SEARCH_PAGE_SIZE]
    ctx["total"] = total
    if hits:
        marks = ", ".join(str(int(h)) for h in hits)
        rows = await db.execute(
            f"""select {_POST_COLUMNS_SQL},
                  snippet(posts_fts, 0, char(2), char(3), '…', 24) as snippet, posts_fts.rowid as fts_rowid
                from posts_fts join posts p on p.rowid = posts_fts.rowid
                left join authors a on a.id = p.author_id
                where posts_fts match :q and posts_fts.rowid in ({marks})""",
            {"q": match},
        )
        by_rowid = {r["fts_rowid"]: dict(r) for r in rows}
        posts = [_post_view(by_rowid[h], links) for h in hits if h in by_rowid]
        await _attach_sessions(db, links, posts)
        ctx["posts"] = posts
        ctx["posts_html"] = render_posts(ctx["datasette"], posts)
    base = {"q": q} | ({"order": order} if order != "best" else {})
    if page > 1:
        ctx["prev_url"] = links.search() + "?" + urllib.parse.urlencode(base | {"page": page - 1})
    if more:
        ctx["next_url"] = links.search() + "?" + urllib.parse.urlencode(base | {"page": page + 1})
    ctx["order_urls"] = {
        "best": links.search() + "?" + urllib.parse.urlencode({"q": q}),
        "newest": links.search() + "?" + urllib.parse.urlencode({"q": q, "order": "newest"}),
    }
    ctx["first"] = offset + 1
    ctx["last"] = offset + len(hits)


# People of immutable archives, kept in memory: a substring search over
# 60,000 handles and names is ~5 ms in Python and ~80 ms as SQL LIKE, and
# casefold() matches "ZOË" to "Zoë", which LIKE does only for ASCII.
_PEOPLE: weakref.WeakKeyDictionary[Any, list[tuple[str, dict[str, Any]]] | None] = (
    weakref.WeakKeyDictionary())
PEOPLE_IN_MEMORY_MAX = 500_000


async def _people_index(db) -> list[tuple[str, dict[str, Any]]] | None:
    if db.is_mutable:
        return None  # --live: authors change under us, ask SQLite each time
    if db in _PEOPLE:
        return _PEOPLE[db]
    n = (await db.execute("select count(*) from authors")).first()[0]
    index = None
    if n <= PEOPLE_IN_MEMORY_MAX:
        rows = await db.execute(
            "select id, platform, handle, name, avatar_url from authors", custom_time_limit=30_000)
        index = [(f"{r['handle'] or ''}\n{r['name'] or ''}".casefold(), dict(r)) for r in rows]
    _PEOPLE[db] = index
    return index


def search_people(index: list[tuple[str, dict[str, Any]]], needle: str, limit: int) -> list[dict[str, Any]]:
    """Handles or names containing `needle` (any case): exact handle
    first, then shorter handles."""
    q = needle.casefold()
    if not q:
        return []
    found = [row for key, row in index if q in key]
    found.sort(key=lambda r: ((r["handle"] or "").casefold() != q, len(r["handle"] or ""), r["handle"] or ""))
    return found[:limit]


async def _attach_sessions(db, links: _Links, posts: list[dict[str, Any]]) -> None:
    if not posts:
        return
    ids = [p["id"] for p in posts]
    marks = ", ".join("?" for _ in ids)
    rows = await db.execute(
        f"""select sp.post_id, s.slug, s.title, s.hashtag, s.start from session_posts sp
            join sessions s on s.id = sp.session_id where sp.post_id in ({marks})""",
        ids,
    )
    by_post: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_post.setdefault(r["post_id"], []).append(
            {"slug": r["slug"], "title": r["title"], "hashtag": r["hashtag"],
             "url": links.session(r["slug"])}
        )
    for p in posts:
        p["sessions"] = [_View(s) for s in by_post.get(p["id"], [])]


async def session_page(datasette, request):
    from datasette import Response

    try:
        db = await _archive_database(datasette, request)
    except _NotFound as e:
        return await _not_found(datasette, request, str(e))
    links = _Links(datasette, db.name)
    key = urllib.parse.unquote(request.url_vars["session"])
    rows = await db.execute("select * from sessions where slug = ?", [key])
    session = rows.first()
    if session is None and key.isdigit():
        session = (await db.execute("select * from sessions where id = ?", [int(key)])).first()
    if session is None:
        return await _not_found(datasette, request, f"No session {key!r} in {db.name}.")
    session = dict(session)
    posts_rows = await db.execute(
        f"""select {_POST_COLUMNS_SQL}
            from session_posts sp join posts p on p.id = sp.post_id
            left join authors a on a.id = p.author_id
            where sp.session_id = ? order by p.created_at, p.id""",
        [session["id"]],
    )
    questions = [dict(r) for r in await db.execute(
        "select id, number, post_id, text from questions where session_id = ? order by number, id",
        [session["id"]],
    )]
    ctx = build_session_view(session, [dict(r) for r in posts_rows], questions, links)
    for g in ctx["groups"]:
        g["posts_html"] = render_posts(datasette, g["posts"])
        if g.get("post"):
            g["post_html"] = render_posts(datasette, [g["post"]])
    ctx["database"] = db.name
    ctx["db_url"] = datasette.urls.database(db.name)
    ctx["search_url"] = links.search()
    ctx["transcript_url"] = f"{ctx['db_url']}/session_transcript?" + urllib.parse.urlencode(
        {"session": session["slug"]})
    ctx["table_url"] = f"{ctx['db_url']}/posts_in_sessions?" + urllib.parse.urlencode(
        {"session": session["slug"]})
    html = await datasette.render_template(
        "chatarchive_session.html", ctx, request=request, view_name="chatarchive_session"
    )
    return Response.html(html)


# "Q1:", "@host Q 1 -", "Question 1." at the start of a question's text.
_QUESTION_MARKER = re.compile(r"^\s*(?:@\S+\s+)*(?:q|question)\s*\d+\s*[:.)\-–—]?\s*", re.IGNORECASE)


def build_session_view(
    session: dict[str, Any], posts: list[dict[str, Any]], questions: list[dict[str, Any]], links: _Links
) -> dict[str, Any]:
    """Group a session's posts under its questions.

    A post goes under the question it asks or answers (so a late answer
    keeps its number); any other post under the last question asked before
    it, or under "Before the first question".
    """
    post_time = {p["id"]: p["created_at"] or "" for p in posts}
    groups: list[dict[str, Any]] = [
        {"question": None, "anchor": "before", "title": "Before the first question", "posts": []}
    ]
    group_of: dict[int, dict[str, Any]] = {}
    for q in questions:
        g = {
            "question": q,
            "number": q["number"],
            "anchor": f"q{q['number']}" if q["number"] is not None else f"question-{q['id']}",
            "title": f"Q{q['number']}" if q["number"] is not None else "Question",
            "html": links.linkify(q["text"] or ""),
            "summary": _QUESTION_MARKER.sub("", q["text"] or "", count=1).strip(),
            "post": None,
            "posts": [],
            "answers": 0,
            "time": post_time.get(q["post_id"] or "", ""),
        }
        group_of[q["id"]] = g
        groups.append(g)
    # Questions in the order they were asked (by their post's time, else number).
    timeline = sorted(
        (g for g in groups[1:] if g["time"]), key=lambda g: (g["time"], g["number"] or 0)
    )
    authors: dict[str, dict[str, Any]] = {}
    zone = None
    if session.get("timezone"):
        try:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(session["timezone"])
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            zone = None
    for row in posts:
        view = _post_view(row, links, zone)
        handle = view["handle"]
        a = authors.setdefault(handle, {"handle": handle, "name": view["name"], "avatar": view["avatar"],
                                        "url": view["handle_url"], "posts": 0})
        a["posts"] += 1
        qid = row.get("question_id")
        if qid in group_of and group_of[qid]["question"]["post_id"] == row["id"]:
            view["role"] = "question"
            group_of[qid]["post"] = view
            continue
        target = None
        aid = row.get("answer_to_id")
        if aid in group_of:
            target = group_of[aid]
            view["role"] = "answer"
            target["answers"] += 1
        elif qid in group_of:
            target = group_of[qid]
            view["role"] = "question"
        else:
            t = row.get("created_at") or ""
            for g in timeline:
                if g["time"] <= t:
                    target = g
                else:
                    break
        (target or groups[0])["posts"].append(view)
    if not groups[0]["posts"]:
        groups = groups[1:]
    for g in groups:
        g["posts"].sort(key=lambda v: (v["created_at"], v["id"]))
    tz = session.get("timezone")
    participants = sorted(authors.values(), key=lambda a: (-a["posts"], a["handle"].lower()))
    return {
        "session": session,
        "title": session.get("title") or (f"#{session['hashtag']}" if session.get("hashtag") else session["slug"]),
        "hashtag": session.get("hashtag"),
        "hashtag_url": links.tag(session["hashtag"]) if session.get("hashtag") else None,
        "when": local_time(session.get("start"), tz),
        "until": local_time(session.get("end"), tz),
        "start_utc": session.get("start"),
        "hosts": [{"handle": h.lstrip("@"), "url": links.mention(h.lstrip("@"))} for h in _json_list(session.get("hosts"))],
        "platforms": [PLATFORM_NAMES.get(p, p) for p in _json_list(session.get("platforms"))],
        "groups": groups,
        "questions": [g for g in groups if g["question"] is not None],
        "post_count": len(posts),
        "participants": participants,
        "participant_count": len(participants),
    }

