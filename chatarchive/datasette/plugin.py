"""Datasette on an archive: its configuration and the chatarchive plugin.

Two halves, one module (the ``datasette`` entry point in pyproject names it):

* **Configuration** (plain functions): :func:`build_metadata` (titles,
  descriptions, hidden tables, label columns, sort orders, facets, canned
  queries), :data:`SETTINGS`, :func:`make_datasette` and :func:`serve`, which
  ``chatarchive serve`` calls.  ``--metadata-out`` writes the same metadata
  so ``datasette -i chats.db -m metadata.json`` gives the same site.
* **Plugin** (the ``@hookimpl`` functions at the end): post text rendered as
  safe linked HTML, avatars and permalinks in tables, a search page across
  sessions, people and posts, and a page per session with its transcript
  grouped by question.  Every hook is a no-op for databases that are not
  chatarchive archives, because an installed plugin sees every Datasette in
  the environment.

Safety: everything taken from posts is escaped; only http(s) URLs become
links or images; the source HTML (``posts.html``) is never rendered.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
import signal
import socket
import sqlite3
import sys
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from ..archive.search import HIGHLIGHT_END, HIGHLIGHT_START
from ..errors import ChatArchiveError, NotFoundError

try:  # the plugin half needs Datasette; the configuration half does not
    from datasette import hookimpl
except ImportError:  # pragma: no cover - datasette is a dependency
    def hookimpl(f=None, **kw):  # type: ignore[misc]
        return f if f is not None else (lambda g: g)


TEMPLATES_DIR = Path(__file__).parent / "templates"
# The recap templates ship inside the wheel as chatarchive/templates.  On
# Python >= 3.12 Datasette's plugin loader resolves a module plugin's
# "templates" folder in its package, so those files (base.html, index.html…)
# would replace Datasette's own; prepare_jinja2_environment removes them.
RECAP_TEMPLATES_IN_PACKAGE = Path(__file__).parent.parent / "templates"

# Tables an archive must have (the plugin leaves other databases alone).
ARCHIVE_TABLES = frozenset({"posts", "authors", "sessions", "session_posts", "posts_fts"})

# Internal tables: raw source objects, bookkeeping, FTS shadow tables.
HIDDEN_TABLES = (
    "raw", "_sqlite_migrations", "imports", "captures", "capture_pages", "chats", "analysis_dirty", "local_ids",
    "posts_fts", "posts_fts_data", "posts_fts_idx", "posts_fts_docsize", "posts_fts_config",
)

# Chosen for archives of a million posts: suggested facets run one query per
# column (seconds), a facet that cannot finish in 200 ms is better skipped,
# and canned queries (a regular's whole history) may need a few seconds.
SETTINGS: dict[str, Any] = {
    "suggest_facets": False,
    "default_page_size": 50,
    "facet_time_limit_ms": 200,
    "sql_time_limit_ms": 3000,
    "max_returned_rows": 5000,
}

SEARCH_PAGE_SIZE = 50


# --------------------------------------------------------------------------
# Configuration


def database_name(path: str | Path) -> str:
    """The name Datasette gives a database file (its stem)."""
    return Path(path).stem


def _session_id_sql(param: str = ":session") -> str:
    # A session is named by slug or numeric id, as on the command line.
    return (
        f"coalesce((select id from sessions where slug = {param}),"
        f" (select id from sessions where id = cast({param} as integer)))"
    )


_SESSIONS_OF_POST = (
    "(select group_concat(s.slug, ' ') from session_posts sp"
    " join sessions s on s.id = sp.session_id where sp.post_id = p.id)"
)
_SNIPPET = "snippet(posts_fts, 0, char(2), char(3), '…', 24)"
_AUTHOR_IDS = "(select id from authors where handle = ltrim(:handle, '@') collate nocase)"
# FTS5 query from free text: each word quoted (so punctuation is no syntax
# error) and implicitly ANDed; runs of spaces collapsed first.
_ESCAPED_FTS = (
    "'\"' || replace(replace(replace(replace(trim(replace(:q, '\"', ' ')),"
    " '    ', ' '), '   ', ' '), '  ', ' '), ' ', '\" \"') || '\"'"
)


def canned_queries() -> dict[str, dict[str, Any]]:
    """The canned queries (each gets a parameter form in Datasette)."""
    return {
        "session_transcript": {
            "title": "Session transcript",
            "description": "Every post of one session in time order, with the question each "
            "post asks or answers. session: a slug such as growthchat-2026-10-14, or an id.",
            "sql": f"""select p.created_at, p.author_handle, a.avatar_url, q.number as question,
  case when p.question_id is not null then 'question'
       when p.answer_to_id is not null then 'answer' else '' end as role,
  p.text, p.reply_to_author, p.url, p.id as post_id
from session_posts sp
join posts p on p.id = sp.post_id
left join authors a on a.id = p.author_id
left join questions q on q.id = coalesce(p.question_id, p.answer_to_id)
where sp.session_id = {_session_id_sql()}
order by p.created_at, p.id""",
        },
        "question_answers": {
            "title": "Answers to a question",
            "description": "The answers to question number N of a session, in time order "
            "(late answers included). session: slug or id; number: 1, 2, 3…",
            "sql": f"""select q.number, q.text as question, p.created_at, p.author_handle,
  a.avatar_url, p.text, p.like_count, p.repost_count, p.url, p.id as post_id
from questions q
join posts p on p.answer_to_id = q.id
left join authors a on a.id = p.author_id
where q.session_id = {_session_id_sql()} and q.number = :number
order by p.created_at, p.id""",
        },
        "participant_history": {
            "title": "Participant history",
            "description": "Everything one person posted, newest first, with the session "
            "and question of each post. handle: with or without @.",
            "sql": f"""select p.created_at, {_SESSIONS_OF_POST} as session, p.platform,
  q.number as question, p.text, p.url, p.id as post_id
from posts p
left join questions q on q.id = coalesce(p.question_id, p.answer_to_id)
where p.author_id in {_AUTHOR_IDS}
order by p.created_at desc, p.id desc""",
        },
        "participant_sessions": {
            "title": "Sessions of a participant",
            "description": "The sessions one person took part in, newest first, with their "
            "number of posts and answers. handle: with or without @.",
            "sql": f"""select s.slug as session, s.hashtag, s.title, s.start, count(*) as posts,
  sum(p.answer_to_id is not null) as answers
from posts p
join session_posts sp on sp.post_id = p.id
join sessions s on s.id = sp.session_id
where p.author_id in {_AUTHOR_IDS}
group by s.id
order by s.start desc""",
        },
        "conversation_thread": {
            "title": "Conversation thread",
            "description": "The whole reply thread that a post belongs to, in time order "
            "(from its root: the earliest ancestor in the archive). post: any post id of "
            "the thread.",
            "sql": """with recursive
  target(id, conv) as (select id, conversation_id from posts where id = :post),
  up(id) as (
    select id from target
    union
    select p.reply_to_id from posts p join up on p.id = up.id where p.reply_to_id is not null
  ),
  root(id) as (
    select coalesce((select conv from target),
      (select p.id from up join posts p on p.id = up.id order by p.created_at, p.id limit 1))
  ),
  down(id) as (
    select id from root
    union
    select p.id from posts p join down on p.reply_to_id = down.id
  )
select p.created_at, p.author_handle, a.avatar_url, p.reply_to_author, p.text, p.url,
  p.id as post_id, p.reply_to_id
from posts p
left join authors a on a.id = p.author_id
where p.id in (select id from down) or p.conversation_id = (select id from root)
order by p.created_at, p.id""",
        },
        "search_posts": {
            "title": "Search posts",
            "description": "Full-text search with highlighted snippets and the sessions of "
            "each hit, best match first. q uses FTS5 syntax: words, \"exact phrases\", "
            "AND / OR / NOT, prefix*.",
            "sql": f"""select p.created_at, p.author_handle, a.avatar_url, {_SNIPPET} as snippet,
  {_SESSIONS_OF_POST} as session, p.url, p.id as post_id
from posts_fts
join posts p on p.rowid = posts_fts.rowid
left join authors a on a.id = p.author_id
where posts_fts match coalesce(nullif(trim(:q), ''), '""')
order by bm25(posts_fts, 10.0, 2.0, 1.0)
limit 100""",
        },
        "search_everything": {
            "title": "Search sessions, people and posts",
            "description": "One search box for everything: sessions (slug, title, hashtag), "
            "people (handle, name) and posts (full text, every word must match). "
            "Punctuation is ignored. The search page of the menu does the same with a nicer "
            "layout.",
            "sql": f"""select kind, session, handle, name, avatar_url, created_at, snippet, url, post_id
from (
  select 1 as k, 'session' as kind, slug as session, null as handle,
    coalesce(title, '#' || hashtag) as name, null as avatar_url, start as created_at,
    null as snippet, null as url, null as post_id
  from (select * from sessions
        where slug like '%' || :q || '%' or title like '%' || :q || '%'
           or hashtag like '%' || ltrim(:q, '#') || '%'
        order by start desc limit 20)
  union all
  select 2, 'person', null, handle, name, avatar_url, null, null, url, null
  from (select * from authors
        where handle like '%' || ltrim(:q, '@') || '%' or name like '%' || :q || '%'
        order by length(handle), handle limit 20)
  union all
  select 3, 'post', session, author_handle, author_name, avatar_url, created_at, snippet, url, id
  from (select p.id, p.author_handle, p.author_name, a.avatar_url, p.created_at, p.url,
          {_SNIPPET} as snippet, {_SESSIONS_OF_POST} as session
        from posts_fts
        join posts p on p.rowid = posts_fts.rowid
        left join authors a on a.id = p.author_id
        where posts_fts match {_ESCAPED_FTS}
        order by posts_fts.rank limit 50)
)
order by k""",
        },
    }


def table_metadata() -> dict[str, dict[str, Any]]:
    """Descriptions, labels, sort orders and facets per table and view."""
    post_columns = {
        "id": "Platform id: tweet id (X), status uri (Mastodon), at:// uri (Bluesky).",
        "platform": "x, mastodon or bluesky.",
        "source": "The input format the post came from (twarc2, mastodon, tags_csv…).",
        "url": "Permalink of the original post.",
        "author_id": "The author (authors.id).",
        "author_handle": "Handle without @ (Mastodon: user@server).",
        "author_name": "Display name.",
        "text": "Plain text of the post (rendered with links, mentions and hashtags).",
        "html": "Sanitized HTML from Mastodon, kept for the record; never rendered.",
        "created_at": "UTC, ISO-8601 (text order is time order).",
        "reply_to_id": "The post this one replies to (may be missing from the archive).",
        "reply_to_author": "Handle (or id) of the author replied to.",
        "root_id": "The platform's own conversation/root id.",
        "quote_of_id": "The post this one quotes.",
        "is_repost": "1 for retweets, boosts and reposts.",
        "lang": "Language code given by the platform.",
        "like_count": "Likes when archived (empty when the source did not say).",
        "repost_count": "Reposts when archived.",
        "reply_count": "Replies when archived.",
        "quote_count": "Quotes when archived.",
        "conversation_id": "Root post of the reply thread (set by the analysis).",
        "matched": "1 when the post itself matched the hashtag/query; 0 for context posts "
        "(reply parents, quoted posts).",
        "question_id": "Set when this post is a question of a session.",
        "answer_to_id": "The question this post answers.",
        "local_id": "Mastodon: the status id on `instance`.",
        "instance": "Mastodon: the server the status was read from.",
        "reply_to_local_id": "Mastodon: the parent's id on `instance`.",
        "spoiler_text": "Mastodon content warning.",
        "edited_at": "Last edit time, when the platform reported one.",
    }
    return {
        "posts": {
            "description": "Every archived post, newest first. Search with the box above "
            "(full text over text, handle and name).",
            "sort_desc": "created_at",
            "facets": ["platform", "author_id", "answer_to_id"],
            "fts_table": "posts_fts",
            "fts_pk": "rowid",
            "columns": post_columns,
        },
        "authors": {
            "description": "People who posted, one row per account.",
            "label_column": "handle",
            "sort": "handle",
            "facets": ["platform"],
            "columns": {
                "id": "X: user id; Mastodon: account uri; Bluesky: DID.",
                "platform": "x, mastodon or bluesky.",
                "handle": "Handle without @.",
                "name": "Display name.",
                "avatar_url": "Profile picture (hotlinked).",
                "url": "Profile page.",
            },
        },
        "sessions": {
            "description": "Chat sessions (one hour of a hashtag chat), newest first. "
            "Each slug links to the session page: its transcript grouped by question.",
            "label_column": "slug",
            "sort_desc": "start",
            "facets": ["hashtag", "source"],
            "columns": {
                "id": "Session id.",
                "slug": "Readable unique name, e.g. growthchat-2026-10-14.",
                "hashtag": "The chat's hashtag (without #).",
                "title": "Title given by the host, if any.",
                "start": "Start (UTC).",
                "end": "End (UTC).",
                "hosts": "JSON array of the hosts' handles.",
                "configured_hosts": "JSON array of the hosts given with --host for this session.",
                "source": "How the session was found: detected, scheduled, manual or capture.",
                "timezone": "The chat's own time zone, when known.",
                "platforms": "JSON array of the platforms the chat took place on.",
                "post_count": "Number of posts in the session.",
                "window_start": "Start of the membership window (with margins).",
                "window_end": "End of the membership window.",
            },
        },
        "session_posts": {
            "description": "Which posts belong to which session.",
            "facets": ["session_id"],
            "columns": {
                "session_id": "The session.",
                "post_id": "The post.",
                "via": "tag: carries the hashtag; thread: an untagged reply into the session.",
            },
        },
        "questions": {
            "description": "The numbered questions (Q1, Q2…) of each session.",
            "label_column": "text",
            "sort": "session_id",
            "facets": ["session_id"],
            "columns": {
                "id": "Question id.",
                "session_id": "The session.",
                "number": "Q number.",
                "post_id": "The post that asks it.",
                "text": "The question as posted.",
            },
        },
        "conversations": {
            "description": "Reply threads, keyed by their root post, newest first.",
            "sort_desc": "started",
            "facets": ["session_id"],
            "columns": {
                "id": "Root post id.",
                "session_id": "The session the thread belongs to.",
                "size": "Number of posts.",
                "depth": "Longest reply chain.",
                "participants": "Number of distinct authors.",
                "started": "First post (UTC).",
                "ended": "Last post (UTC).",
            },
        },
        "hashtags": {"description": "Hashtags seen in posts.", "label_column": "tag", "sort": "tag"},
        "post_hashtags": {"description": "Hashtags of each post.", "facets": ["hashtag_id"]},
        "mentions": {"description": "Handles mentioned in each post.", "facets": ["handle"]},
        "links": {"description": "Links shared in posts (expanded, deduplicated).", "label_column": "url"},
        "post_links": {"description": "Links of each post.", "facets": ["link_id"]},
        "media": {"description": "Images and videos attached to posts (alt text kept).", "label_column": "url"},
        "post_media": {"description": "Media of each post."},
        "posts_in_sessions": {
            "description": "One row per post of a session, newest first: facet by session, "
            "question, author or platform.",
            "sort_desc": "created_at",
            "facets": ["session", "question", "author", "platform"],
        },
        "posts_by_hashtag": {
            "description": "One row per hashtag of a post, newest first: facet by hashtag, "
            "author or platform.",
            "sort_desc": "created_at",
            "facets": ["hashtag", "author", "platform"],
        },
        "thread_posts": {
            "description": "Posts of each reply thread (filter by conversation_id).",
        },
        **{name: {"hidden": True} for name in HIDDEN_TABLES},
        "imports": {"hidden": True, "description": "One row per import run (file, counts)."},
        "captures": {"hidden": True, "description": "One row per live capture run."},
        "capture_pages": {"hidden": True, "description": "API response pages as received by capture."},
        "raw": {"hidden": True, "description": "Each post's source object as read, for re-normalizing."},
        "chats": {"hidden": True, "description": "Per-hashtag analysis settings (hosts, schedules)."},
    }


def archive_facts(db_path: str | Path) -> dict[str, Any]:
    """A few numbers for the description (cheap even on a million posts)."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        one = lambda sql: conn.execute(sql).fetchone()[0]
        return {
            "posts": one("select count(*) from posts"),
            "authors": one("select count(*) from authors"),
            "sessions": one("select count(*) from sessions"),
            "first": one("select min(created_at) from posts"),
            "last": one("select max(created_at) from posts"),
            "platforms": [r[0] for r in conn.execute("select distinct platform from posts where platform is not null")],
            "hashtags": [
                r[0] for r in conn.execute(
                    "select hashtag from sessions where hashtag is not null group by hashtag "
                    "order by count(*) desc, hashtag limit 8")
            ],
        }
    finally:
        conn.close()


PLATFORM_NAMES = {"x": "X", "mastodon": "Mastodon", "bluesky": "Bluesky"}


def build_metadata(
    db_path: str | Path,
    *,
    title: str | None = None,
    allow_sql: bool = True,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Datasette metadata for one archive (JSON-serializable).

    Keyed by the database name Datasette derives from the file name, so the
    file must keep its name when served with ``datasette -m``.
    """
    name = database_name(db_path)
    if facts is None:
        facts = archive_facts(db_path)
    tags = ", ".join(f"#{t}" for t in facts["hashtags"])
    if not title:
        title = f"Chat archive: {tags}" if tags else f"Chat archive: {name}"
    span = ""
    if facts["first"]:
        span = f" from {facts['first'][:10]} to {facts['last'][:10]}"
    platforms = ", ".join(PLATFORM_NAMES.get(p, p) for p in facts["platforms"])
    summary = (
        f"{facts['posts']:,} posts by {facts['authors']:,} people in "
        f"{facts['sessions']:,} chat sessions{span}"
        + (f" ({platforms})" if platforms else "")
        + "."
    )
    from datasette.utils import tilde_encode

    db_url = tilde_encode(name)  # as Datasette spells it in URLs ("my.chats" -> "my~2Echats")
    # Relative links: the index page is "/" and the database page "/<name>",
    # so "<name>/…" resolves under any base_url.
    links = (
        f'<a href="{escape(db_url)}/-/search">Search sessions, people and posts</a> · '
        f'<a href="{escape(db_url)}/sessions">Sessions</a> · '
        f'<a href="{escape(db_url)}/posts">Posts</a>'
    )
    metadata: dict[str, Any] = {
        "title": title,
        "description_html": f"<p>{escape(summary)}</p><p>{links}</p>",
        "license": "Posts © their authors; archived for reference",
        "source": "Hashtag chats on " + (platforms or "social media") + ", archived with chatarchive",
        "about": "chatarchive",
        "databases": {
            name: {
                "description_html": (
                    f"<p>{escape(summary)}</p><p>"
                    f'<a href="{escape(db_url)}/-/search">Search sessions, people and posts</a> · '
                    "Session pages are linked from the sessions table.</p>"
                ),
                "tables": table_metadata(),
                "queries": canned_queries(),
            }
        },
    }
    if not allow_sql:
        metadata["allow_sql"] = False
    return metadata


def datasette_command(db_path: str | Path, metadata_path: str, settings: dict[str, Any] | None = None) -> str:
    """The `datasette` command line that serves what `chatarchive serve` serves."""
    parts = ["datasette", "serve", "-i", str(db_path), "-m", metadata_path]
    for key, value in {**SETTINGS, **(settings or {})}.items():
        if isinstance(value, bool):
            value = "on" if value else "off"
        parts += ["--setting", key, str(value)]
    return " ".join(_shell_quote(p) for p in parts)


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def parse_settings(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """--setting NAME VALUE pairs typed as Datasette's defaults are."""
    from datasette.app import DEFAULT_SETTINGS

    out: dict[str, Any] = {}
    for key, raw in pairs:
        if key not in DEFAULT_SETTINGS:
            raise ChatArchiveError(f"Unknown Datasette setting {key!r} (see `datasette --help-settings`)")
        default = DEFAULT_SETTINGS[key]
        if isinstance(default, bool):
            if raw.lower() not in ("on", "off", "true", "false", "1", "0"):
                raise ChatArchiveError(f"Setting {key} takes on or off, not {raw!r}")
            out[key] = raw.lower() in ("on", "true", "1")
        elif isinstance(default, int):
            try:
                out[key] = int(raw)
            except ValueError:
                raise ChatArchiveError(f"Setting {key} takes a number, not {raw!r}")
        else:
            out[key] = raw
    return out


def prepare_archive(db_path: str | Path) -> bool:
    """Check DB is a chatarchive archive and bring its schema up to date (the
    views and indexes Datasette uses).  Returns False when the file cannot be
    written (it is then served as it is)."""
    path = Path(db_path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file (import posts first: chatarchive import {path} FILE)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in conn.execute("select name from sqlite_master where type in ('table', 'view')")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise ChatArchiveError(f"{path}: not an SQLite database ({e})")
    missing = ARCHIVE_TABLES - names
    if missing:
        raise ChatArchiveError(
            f"{path}: not a chatarchive archive (no {', '.join(sorted(missing))} table); "
            "create one with chatarchive import"
        )
    from ..archive.schema import open_db

    try:
        open_db(path).conn.close()
    except sqlite3.OperationalError as e:
        # A read-only file, or one a running import/capture holds locked:
        # serve it as it is.
        if any(w in str(e) for w in ("readonly", "read-only", "unable to open", "locked")):
            return False
        raise ChatArchiveError(f"{path}: cannot update the schema ({e})")
    return True


def ensure_plugin_registered() -> None:
    """`serve` works from a source checkout too, where the entry point may
    not be installed; never register twice."""
    from datasette.plugins import pm

    me = sys.modules[__name__]
    if not pm.is_registered(me) and pm.get_plugin("chatarchive") is None:
        pm.register(me, name="chatarchive")


def make_datasette(
    db_path: str | Path,
    *,
    metadata: dict[str, Any] | None = None,
    allow_sql: bool = True,
    title: str | None = None,
    immutable: bool = True,
    settings: dict[str, Any] | None = None,
):
    """A configured Datasette instance for one archive (not started)."""
    from datasette.app import Datasette

    ensure_plugin_registered()
    if metadata is None:
        metadata = build_metadata(db_path, title=title, allow_sql=allow_sql)
    path = str(db_path)
    ds = Datasette(
        files=[] if immutable else [path],
        immutables=[path] if immutable else [],
        metadata=metadata,
        settings={**SETTINGS, **(settings or {})},
        inspect_data={database_name(db_path): inspect_archive(db_path)} if immutable else None,
    )
    return ds


def inspect_archive(db_path: str | Path, budget_ms: int = 500) -> dict[str, Any]:
    """What Datasette otherwise works out for an immutable file on its own:
    a sha256 of the whole file (seconds for a big archive, on the first
    index page) and exact row counts of every table (the first request
    waits for them, `raw` included).  Here: a fingerprint of size, mtime and
    header, and counts that give up after `budget_ms` (shown as "many")."""
    path = Path(db_path)
    st = path.stat()
    with path.open("rb") as f:
        head = f.read(1 << 16)
    fingerprint = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:".encode() + head).hexdigest()
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    tables: dict[str, dict[str, Any]] = {}
    try:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
        deadline = 0.0

        def too_long() -> bool:
            return time.monotonic() > deadline

        conn.set_progress_handler(too_long, 10000)
        for name in names:
            deadline = time.monotonic() + budget_ms / 1000
            try:
                # "where 1" keeps SQLite from using its one-instruction count,
                # which the progress handler cannot interrupt.
                count = conn.execute(f"select count(*) from [{name}] where 1").fetchone()[0]
            except sqlite3.DatabaseError:  # interrupted, or an FTS shadow oddity
                count = None
            tables[name] = {"count": count}
    finally:
        conn.close()
    return {"hash": fingerprint, "size": st.st_size, "file": str(path), "tables": tables}


def bind_socket(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ChatArchiveError(f"Cannot listen on {host}:{port}: {e}")
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        reason = "address already in use" if e.errno == 98 else (e.strerror or str(e))
        raise ChatArchiveError(f"Cannot listen on {host}:{port}: {reason} (try --port)")
    return sock


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(
    db_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    open_browser: bool = False,
    allow_sql: bool = True,
    title: str | None = None,
    immutable: bool = True,
    settings: dict[str, Any] | None = None,
    quiet: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Run Datasette on the archive until Ctrl-C (SIGINT) or SIGTERM."""
    # Datasette prints every 4xx (a browser asking for /robots.txt) as a
    # rich traceback *with local variables*, request headers and cookies
    # included: secrets must not reach logs, so not in our server process.
    import datasette.handle_exception as datasette_errors
    import uvicorn

    datasette_errors.rich = None
    if not prepare_archive(db_path):
        echo(f"Note: {db_path} cannot be written now (read-only or locked); serving it as it is.")
    ds = make_datasette(db_path, allow_sql=allow_sql, title=title, immutable=immutable, settings=settings)
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{bound_port}"
    name = database_name(db_path)
    route = ds.urls.database(name)
    echo(f"Serving {db_path} at {base}/  (search: {base}{route}/-/search)  Ctrl-C stops.")
    if host not in LOOPBACK:
        echo(f"Warning: listening on {host}: anyone who can reach this machine can read the archive.")
    config = uvicorn.Config(
        ds.app(), log_level="warning" if quiet else "info", lifespan="on", server_header=False,
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        await ds.invoke_startup()
        task = asyncio.create_task(server.serve(sockets=[sock]))
        if open_browser:
            while not server.started and not task.done():
                await asyncio.sleep(0.05)
            if server.started:
                import webbrowser

                webbrowser.open(f"{base}/")
        await task

    def stop(signum, frame):
        raise KeyboardInterrupt

    # uvicorn catches SIGINT/SIGTERM, shuts down gracefully, then re-raises
    # the signal to the previous handler: for both, a stop is not an error.
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    echo("Stopped.")


# --------------------------------------------------------------------------
# Safe rendering of post text


_URL_RE = r"\bhttps?://[^\s<>\"'`\u00a0\u200b]+"
_MENTION_RE = (
    r"(?<![\w@./])@(?P<handle>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"
    r"(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?)"
)
_TAG_RE = r"(?<![\w&#/])#(?P<tag>(?=\w*[^\W\d])\w+)"
# The lookahead lets the scanner skip every position that cannot start a
# token (5x faster on typical posts).
_TOKENS = re.compile(f"(?=[h@#])(?:(?P<url>{_URL_RE})|{_MENTION_RE}|{_TAG_RE})", re.IGNORECASE)
_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`]+$", re.IGNORECASE)
_TRAILING = ".,;:!?*'\"”’)]}>"


def is_safe_url(url: Any) -> bool:
    """Only http(s) URLs without spaces or quotes may become href/src."""
    return isinstance(url, str) and bool(_SAFE_URL.match(url.strip()))


def _trim_url(url: str) -> tuple[str, str]:
    """Strip trailing punctuation that ends a sentence, keeping balanced
    closing brackets (Wikipedia links)."""
    tail = ""
    while url and url[-1] in _TRAILING:
        ch = url[-1]
        if ch == ")" and url.count("(") >= url.count(")"):
            break
        tail = ch + tail
        url = url[:-1]
    return url, tail


def _text_html(s: str) -> str:
    return str(escape(s)).replace("\r\n", "\n").replace("\n", "<br>")


def linkify(
    text: Any,
    *,
    mention_url: Callable[[str], str] | None = None,
    tag_url: Callable[[str], str] | None = None,
    max_url_chars: int = 60,
) -> Markup:
    """Post text as HTML: escaped, with http(s) links, @mentions and
    #hashtags as links; line breaks kept.  Nothing else is ever markup."""
    if text is None:
        return Markup("")
    text = str(text)
    out: list[str] = []
    pos = 0
    for m in _TOKENS.finditer(text):
        out.append(_text_html(text[pos : m.start()]))
        pos = m.end()
        if m.group("url"):
            url, tail = _trim_url(m.group("url"))
            if len(url) <= len("https://"):
                out.append(_text_html(m.group(0)))
                continue
            shown = url.split("://", 1)[1]
            if len(shown) > max_url_chars:
                shown = shown[: max_url_chars - 1] + "…"
            out.append(
                f'<a class="ca-link" href="{escape(url)}" rel="nofollow noopener noreferrer">'
                f"{escape(shown)}</a>{escape(tail)}"
            )
        elif m.group("handle"):
            handle = m.group("handle")
            if mention_url:
                out.append(f'<a class="ca-mention" href="{escape(mention_url(handle))}">@{escape(handle)}</a>')
            else:
                out.append(f"@{escape(handle)}")
        else:
            tag = m.group("tag")
            if tag_url:
                out.append(f'<a class="ca-tag" href="{escape(tag_url(tag))}">#{escape(tag)}</a>')
            else:
                out.append(f"#{escape(tag)}")
    out.append(_text_html(text[pos:]))
    return Markup("".join(out))


def highlight(snippet: Any) -> Markup:
    """An FTS snippet with HIGHLIGHT_START/END markers as escaped HTML with <mark>."""
    if snippet is None:
        return Markup("")
    parts = str(snippet).replace(HIGHLIGHT_END, HIGHLIGHT_START).split(HIGHLIGHT_START)
    html = []
    for i, part in enumerate(parts):
        piece = _text_html(part)
        html.append(f"<mark>{piece}</mark>" if i % 2 and piece else piece)
    return Markup("".join(html))


def initials(handle: Any, name: Any = None) -> str:
    """Up to two letters for an avatar placeholder (letters and digits only)."""
    for source in (name, handle):
        words = re.findall(r"[^\W_]+", str(source or ""))
        if words:
            return "".join(w[0] for w in words[:2]).upper()
    return "?"


def avatar(url: Any, handle: Any = None, name: Any = None, size: int = 32) -> Markup:
    """An <img> for http(s) avatars, else an initials badge."""
    if is_safe_url(url):
        return Markup(
            f'<img class="ca-avatar" src="{escape(url.strip())}" alt="" width="{size}" height="{size}" '
            'loading="lazy" referrerpolicy="no-referrer">'
        )
    return Markup(f'<span class="ca-avatar ca-initials" aria-hidden="true">{escape(initials(handle, name))}</span>')


def anchor_for(post_id: str) -> str:
    """A short stable HTML id for a post (ids may be at:// or https:// uris)."""
    return "p-" + hashlib.sha1(str(post_id).encode()).hexdigest()[:12]


def local_time(iso: str | None, tz: str | None) -> str:
    """'2026-10-14 20:00 EDT' in the chat's zone (or UTC)."""
    if not iso:
        return ""
    from ..timeutil import parse_iso

    try:
        dt = parse_iso(iso)
        if tz:
            from zoneinfo import ZoneInfo

            dt = dt.astimezone(ZoneInfo(tz))
            return dt.strftime("%Y-%m-%d %H:%M ") + (dt.tzname() or tz)
        return dt.strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, KeyError):  # a malformed time or an unknown zone name
        return iso


# --------------------------------------------------------------------------
# Plugin: which databases are archives


_UTC = timezone.utc
_ARCHIVES: weakref.WeakKeyDictionary[Any, dict[str, bool]] = weakref.WeakKeyDictionary()


async def _detect(datasette, name: str) -> bool:
    known = _ARCHIVES.setdefault(datasette, {})
    if name in known:
        return known[name]
    try:
        db = datasette.get_database(name)
    except KeyError:
        return False
    if db.is_memory and not db.path:
        known[name] = False
        return False
    try:
        tables = set(await db.table_names())
    except sqlite3.Error:  # not a database after all
        tables = set()
    known[name] = tables >= ARCHIVE_TABLES
    return known[name]


def _known(datasette, name: str) -> bool | None:
    return _ARCHIVES.get(datasette, {}).get(name)


async def archive_names(datasette) -> list[str]:
    out = []
    for name in list(datasette.databases):
        if name != "_internal" and await _detect(datasette, name):
            out.append(name)
    return out


class _Links:
    """URLs inside one archive database (mention → participant history…)."""

    def __init__(self, datasette, database: str):
        self.db = datasette.urls.database(database)
        self._mentions: dict[str, str] = {}
        self._tags: dict[str, str] = {}

    def mention(self, handle: str) -> str:
        url = self._mentions.get(handle)
        if url is None:
            url = self._mentions[handle] = (
                f"{self.db}/participant_history?" + urllib.parse.urlencode({"handle": handle}))
        return url

    def tag(self, tag: str) -> str:
        url = self._tags.get(tag)
        if url is None:
            url = self._tags[tag] = f"{self.db}/posts_by_hashtag?" + urllib.parse.urlencode({"hashtag": tag})
        return url

    def session(self, slug_or_id: Any) -> str:
        return f"{self.db}/-/session/" + urllib.parse.quote(str(slug_or_id), safe="")

    def search(self, q: str | None = None) -> str:
        return f"{self.db}/-/search" + ("?" + urllib.parse.urlencode({"q": q}) if q else "")

    def post_row(self, post_id: str) -> str:
        from datasette.utils import tilde_encode

        return f"{self.db}/posts/{tilde_encode(str(post_id))}"

    def linkify(self, text: Any) -> Markup:
        return linkify(text, mention_url=self.mention, tag_url=self.tag)


def _row_get(row: Any, key: str) -> Any:
    try:
        return row[key]
    except (KeyError, IndexError, TypeError):
        return None


# Columns the plugin renders, by name (tables, views and canned queries).
_TEXT_COLUMNS = {"text", "question"}
_HANDLE_COLUMNS = {"author_handle", "handle", "author"}
_SESSION_COLUMNS = {"session", "slug"}


_LINKS: weakref.WeakKeyDictionary[Any, dict[str, _Links]] = weakref.WeakKeyDictionary()


def _links_for(datasette, database: str) -> _Links:
    per_db = _LINKS.setdefault(datasette, {})
    links = per_db.get(database)
    if links is None:
        links = per_db[database] = _Links(datasette, database)
    return links


def _render(row, value, column, table, database, datasette) -> Markup | None:
    links = _links_for(datasette, database)
    if column in _TEXT_COLUMNS and isinstance(value, str):
        # questions.text, posts.text, the views' text; a canned query's
        # "question" column is the question's text where it is a string.
        return Markup(f'<div class="ca-text">{links.linkify(value)}</div>')
    if column == "snippet" and isinstance(value, str):
        return Markup(f'<div class="ca-text">{highlight(value)}</div>')
    if column == "avatar_url":
        return avatar(value, _row_get(row, "handle") or _row_get(row, "author_handle"))
    if column in _HANDLE_COLUMNS and isinstance(value, str) and value:
        if table in (None, "posts", "authors", "mentions", "posts_in_sessions", "posts_by_hashtag"):
            return Markup(f'<a class="ca-mention" href="{escape(links.mention(value))}">@{escape(value)}</a>')
        return None
    if column in _SESSION_COLUMNS and isinstance(value, str) and value:
        if column == "slug" and table != "sessions":
            return None
        slugs = value.split()
        return Markup(" ".join(
            f'<a class="ca-session" href="{escape(links.session(s))}">{escape(s)}</a>' for s in slugs
        ))
    if column == "created_at" and table in (None, "posts"):
        url = _row_get(row, "url")
        if isinstance(value, str) and is_safe_url(url):
            return Markup(
                f'<a class="ca-permalink" href="{escape(url.strip())}" title="Original post" '
                f'rel="nofollow noopener noreferrer">{escape(value)}</a>'
            )
    return None


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if column not in _RENDERED or value is None or isinstance(value, (dict, bytes)):
        return None
    known = _known(datasette, database)
    if known is False:
        return None
    if known:
        return _render(row, value, column, table, database, datasette)

    async def later():
        if await _detect(datasette, database):
            return _render(row, value, column, table, database, datasette)
        return None

    return later()


_RENDERED = _TEXT_COLUMNS | _HANDLE_COLUMNS | _SESSION_COLUMNS | {"snippet", "avatar_url", "created_at"}


@hookimpl
def startup(datasette):
    async def inner():
        for name in await archive_names(datasette):
            await _people_index(datasette.get_database(name))  # so the first search is fast

    return inner


@hookimpl
def prepare_jinja2_environment(env, datasette):
    from jinja2 import ChoiceLoader, FileSystemLoader

    fix_template_loader(env)
    if isinstance(env.loader, ChoiceLoader):
        loaders = list(env.loader.loaders)
        if not any(getattr(ld, "searchpath", None) == [str(TEMPLATES_DIR)] for ld in loaders):
            env.loader.loaders = [*loaders, FileSystemLoader(str(TEMPLATES_DIR))]
    else:
        env.loader = ChoiceLoader([env.loader, FileSystemLoader(str(TEMPLATES_DIR))])


def fix_template_loader(env, recap_dir: Path = RECAP_TEMPLATES_IN_PACKAGE) -> None:
    """Drop the recap's templates folder from Datasette's search path."""
    from jinja2 import ChoiceLoader, FileSystemLoader

    loaders = env.loader.loaders if isinstance(env.loader, ChoiceLoader) else [env.loader]
    bad = str(recap_dir.resolve())
    for loader in loaders:
        if isinstance(loader, FileSystemLoader):
            loader.searchpath = [p for p in loader.searchpath if str(Path(p).resolve()) != bad]


_SYNC_ENVS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def render_posts(datasette, posts: list[dict[str, Any]]) -> Markup:
    """The post partial for many posts.  Datasette's Jinja environment is
    async, which costs ~0.5 ms per post; a plain one sharing its loader (so
    --template-dir overrides still apply) renders a 4,000-post session in a
    fraction of that."""
    env = _SYNC_ENVS.get(datasette)
    if env is None:
        from jinja2 import Environment

        env = Environment(loader=datasette.jinja_env.loader, autoescape=True, auto_reload=False)
        _SYNC_ENVS[datasette] = env
    template = env.get_template("_chatarchive_post_list.html")
    return Markup(template.render(posts=posts))


CSS_PATH = "/-/chatarchive/chatarchive.css"


@functools.lru_cache(maxsize=1)
def _css() -> str:
    return (TEMPLATES_DIR / "chatarchive.css").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _css_version() -> str:
    return hashlib.sha1(_css().encode()).hexdigest()[:8]


@hookimpl
def extra_css_urls(template, database, table, columns, view_name, request, datasette):
    async def inner():
        if (template or "").startswith("chatarchive_") or (
            database and await _detect(datasette, database)
        ):
            return [datasette.urls.path(CSS_PATH) + "?" + _css_version()]
        return []

    return inner


@hookimpl
def menu_links(datasette, actor, request):
    async def inner():
        return [
            {"href": _Links(datasette, name).search(), "label": f"Search {name}"}
            for name in await archive_names(datasette)
        ]

    return inner


@hookimpl
def register_routes(datasette):
    return [
        (r"^/-/chatarchive/chatarchive\.css$", css_view),
        (r"^/(?P<database>[^/]+)/-/search$", search_page),
        (r"^/(?P<database>[^/]+)/-/session/(?P<session>[^/]+)$", session_page),
    ]


# --------------------------------------------------------------------------
# Plugin: pages


async def css_view(datasette, request):
    from datasette import Response

    return Response(
        _css(), content_type="text/css; charset=utf-8",
        headers={"cache-control": "max-age=86400"},
    )


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
