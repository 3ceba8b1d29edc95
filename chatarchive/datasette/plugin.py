"""The chatarchive Datasette plugin: its hooks (the ``datasette`` entry point
in pyproject names this module).

Post text rendered as safe linked HTML, avatars and permalinks in tables,
the stylesheet, the menu and the routes of the search and session pages
(``pages.py``).  Every hook is a no-op for databases that are not chatarchive
archives, because an installed plugin sees every Datasette in the environment.

Safety: everything taken from posts is escaped; only http(s) URLs become
links or images; the source HTML (``posts.html``) is never rendered.
"""

from __future__ import annotations

import functools
import hashlib
import weakref
from pathlib import Path
from typing import Any

from datasette import hookimpl
from markupsafe import Markup, escape

from .archives import RECAP_TEMPLATES_IN_PACKAGE, TEMPLATES_DIR, _detect, _known, _Links, archive_names
from .html import avatar, highlight, is_safe_url
from .pages import _people_index, search_page, session_page


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



