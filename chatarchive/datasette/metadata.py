"""The Datasette configuration of an archive: metadata (titles, descriptions,
hidden tables, facets, canned queries) and settings.

Plain data: ``chatarchive serve --metadata-out`` writes the same metadata, so
``datasette -i chats.db -m metadata.json`` gives the same site.
"""

from __future__ import annotations

import shlex
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datasette.utils import tilde_encode
from markupsafe import escape

from ..archive.queries import published_author_sql, published_sql
from ..errors import ChatArchiveError
from ..present.text import platform_name

# Tables an archive must have (the plugin leaves other databases alone).

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


# Canned queries are published views: what the host hid, and the posts of
# people who did not consent, are left out (archive/published.py).  The
# raw tables stay the host's own.
_SHOWN = published_sql("p")


def canned_queries() -> dict[str, dict[str, Any]]:
    """The canned queries (each gets a parameter form in Datasette)."""
    return {
        "session_transcript": {
            "title": "Session transcript",
            "description": "Every post of one session in time order, with the question each "
            "post asks or answers; times in the chat's zone (zone), as on the session page. "
            "session: a slug such as growthchat-2026-10-14, or an id.",
            "sql": f"""select p.created_at, p.author_handle, a.avatar_url, q.number as question,
  case when p.question_id is not null then 'question'
       when p.answer_to_id is not null then 'answer' else '' end as role,
  p.text, p.reply_to_author, p.url, p.id as post_id, s.timezone as zone
from session_posts sp
join sessions s on s.id = sp.session_id
join posts p on p.id = sp.post_id
left join authors a on a.id = p.author_id
left join questions q on q.id = coalesce(p.question_id, p.answer_to_id)
where sp.session_id = {_session_id_sql()} and {_SHOWN}
order by p.created_at is null, p.created_at, p.id""",
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
where q.session_id = {_session_id_sql()} and q.number = :number and {_SHOWN}
order by p.created_at is null, p.created_at, p.id""",
        },
        "participant_history": {
            "title": "Participant history",
            "description": "Everything one person posted, newest first, with the session "
            "and question of each post. handle: with or without @.",
            "sql": f"""select p.created_at, {_SESSIONS_OF_POST} as session, p.platform,
  q.number as question, p.text, p.url, p.id as post_id
from posts p
left join questions q on q.id = coalesce(p.question_id, p.answer_to_id)
where p.author_id in {_AUTHOR_IDS} and {_SHOWN}
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
where p.author_id in {_AUTHOR_IDS} and {_SHOWN}
group by s.id
order by s.start desc""",
        },
        "conversation_thread": {
            "title": "Conversation thread",
            "description": "The whole reply thread that a post belongs to, in time order "
            "(from its root: the earliest ancestor in the archive). post: any post id of "
            "the thread.",
            "sql": f"""with recursive
  target(id, conv) as (select id, conversation_id from posts where id = :post),
  up(id) as (
    select id from target
    union
    select p.reply_to_id from posts p join up on p.id = up.id where p.reply_to_id is not null
  ),
  root(id) as (
    select coalesce((select conv from target),
      (select p.id from up join posts p on p.id = up.id order by p.created_at is null, p.created_at, p.id limit 1))
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
where (p.id in (select id from down) or p.conversation_id = (select id from root)) and {_SHOWN}
order by p.created_at is null, p.created_at, p.id""",
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
where posts_fts match coalesce(nullif(trim(:q), ''), '""') and {_SHOWN}
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
  from (select * from authors a
        where (handle like '%' || ltrim(:q, '@') || '%' or name like '%' || :q || '%')
          and {published_author_sql("a")}
        order by length(handle), handle limit 20)
  union all
  select 3, 'post', session, author_handle, author_name, avatar_url, created_at, snippet, url, id
  from (select p.id, p.author_handle, p.author_name, a.avatar_url, p.created_at, p.url,
          {_SNIPPET} as snippet, {_SESSIONS_OF_POST} as session
        from posts_fts
        join posts p on p.rowid = posts_fts.rowid
        left join authors a on a.id = p.author_id
        where posts_fts match {_ESCAPED_FTS} and {_SHOWN}
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
        "html": "Sanitized HTML from Mastodon: shown here as text; post cards show it sanitized again.",
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
    """A few numbers for the description (cheap even on a million posts).
    While a writer holds the archive locked (``serve --live`` during an
    import) the numbers are None: the site starts anyway."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True, timeout=5.0)
    try:
        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()[0]

        return {
            "posts": one("select count(*) from posts"),
            "authors": one("select count(*) from authors"),
            "sessions": one("select count(*) from sessions"),
            "first": one("select min(created_at) from posts"),
            "last": one("select max(created_at) from posts"),
            "platforms": [r[0] for r in conn.execute("select distinct platform from posts where platform is not null")],
            "hashtags": [
                str(r[0]) for r in conn.execute(
                    "select hashtag from sessions where hashtag is not null group by hashtag "
                    "order by count(*) desc, hashtag limit 8")
            ],
        }
    except sqlite3.OperationalError as e:
        if "locked" not in str(e) and "busy" not in str(e):
            raise
        return {"posts": None, "authors": None, "sessions": None, "first": None, "last": None,
                "platforms": [], "hashtags": []}
    finally:
        conn.close()


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
    if facts["first"] and facts["last"]:
        span = f" from {str(facts['first'])[:10]} to {str(facts['last'])[:10]}"
    platforms = ", ".join(platform_name(str(p)) for p in facts["platforms"])
    if facts["posts"] is None:
        summary = "Hashtag chats archived with chatarchive."
    else:
        summary = (
            f"{facts['posts']:,} posts by {facts['authors']:,} people in "
            f"{facts['sessions']:,} chat sessions{span}"
            + (f" ({platforms})" if platforms else "")
            + "."
        )
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
    return shlex.quote(s)


def parse_settings(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """--setting NAME VALUE pairs typed as Datasette's defaults are."""
    # Not at the top: datasette.app imports datasette.plugins, which imports
    # this plugin (entry point) while it loads, which imports this module.
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
                raise ChatArchiveError(f"Setting {key} takes a number, not {raw!r}") from None
        else:
            out[key] = raw
    return out


