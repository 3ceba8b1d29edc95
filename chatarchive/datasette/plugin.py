"""The chatarchive Datasette plugin: its hooks (the ``datasette`` entry point
in pyproject names this module).

Post text in tables rendered as safe linked HTML (``present.text.linkify``,
the recap's), search snippets highlighted, avatars and permalinks in tables,
the stylesheet (``chatarchive.css`` and ``present/post.css``, the recap's post
styles), the menu and the routes of the search and session pages
(``pages.py``).  Every hook is a no-op for databases that are not chatarchive
archives, because an installed plugin sees every Datasette in the environment.

Safety: everything taken from posts is escaped; only URLs that pass
``urls.safe_url`` (http and https) become links or images; the source HTML
(``posts.html``) is never rendered in tables.  Every response of a Datasette
serving an archive carries ``X-Content-Type-Options: nosniff``, and every
page a Content-Security-Policy (:data:`CSP`) that allows scripts from the
server only, plus Datasette's own inline scripts by their hashes (read from
the installed Datasette's templates), so text that got into a page could
not run even if escaping failed.

A busy archive (``serve --live`` while an import or capture writes) never
answers 500 (``busy``): the page is a 503 "busy, try again" with
``Retry-After``, without a traceback in the log.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import weakref
from datetime import timezone
from pathlib import Path
from typing import Any

from datasette import Response, hookimpl
from jinja2 import ChoiceLoader, FileSystemLoader
from markupsafe import Markup, escape

from ..present.html import post_css
from ..present.text import highlight, initials, linkify, local_datetime
from ..present.views import session_zone
from ..urls import safe_url
from .archives import (
    RECAP_TEMPLATES_IN_PACKAGE,
    TEMPLATES_DIR,
    DatasetteTargets,
    archive_names,
    known,
    maybe_archive,
)
from .busy import ArchiveBusy, busy_response, is_busy
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


_TARGETS: weakref.WeakKeyDictionary[Any, dict[str, DatasetteTargets]] = weakref.WeakKeyDictionary()


def _targets_for(datasette: Any, database: str) -> DatasetteTargets:
    per_db = _TARGETS.setdefault(datasette, {})
    targets = per_db.get(database)
    if targets is None:
        targets = per_db[database] = DatasetteTargets(datasette, database)
    return targets


def avatar_cell(url: Any, handle: Any = None, size: int = 32) -> Markup:
    """An avatar_url cell: the picture of an http(s) URL, else the handle's
    initials (as the recap shows them).  A picture that does not load (gone,
    offline, blocked) shows the initials too, never a broken image: a broken
    image draws its ``::after`` (chatarchive.css), which holds them."""
    src = safe_url(url)
    letters = escape(initials(None, handle if isinstance(handle, str) else None))
    if src:
        return Markup(f'<img class="ca-avatar" src="{escape(src)}" alt="" data-initials="{letters}" width="{size}" '
                      f'height="{size}" loading="lazy" referrerpolicy="no-referrer">')
    return Markup(f'<span class="ca-avatar ca-initials" aria-hidden="true">{letters}</span>')


def _render(row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any) -> Markup | None:
    targets = _targets_for(datasette, database)
    if column in _TEXT_COLUMNS and isinstance(value, str):
        # questions.text, posts.text, the views' text; a canned query's
        # "question" column is the question's text where it is a string.
        return Markup(f'<div class="ca-text">{linkify(value, targets.mention, targets.tag)}</div>')
    if column == "snippet" and isinstance(value, str):
        return Markup(f'<div class="ca-text">{highlight(value)}</div>')
    if column == "avatar_url":
        return avatar_cell(value, _row_get(row, "handle") or _row_get(row, "author_handle"))
    if column in _HANDLE_COLUMNS and isinstance(value, str) and value:
        if table in (None, "posts", "authors", "mentions", "posts_in_sessions", "posts_by_hashtag"):
            return Markup(f'<a class="mention" href="{escape(targets.mention(value))}">@{escape(value)}</a>')
        return None
    if column in _SESSION_COLUMNS and isinstance(value, str) and value:
        if column == "slug" and table != "sessions":
            return None
        slugs = value.split()
        return Markup(" ".join(
            f'<a class="ca-session" href="{escape(targets.session(s))}">{escape(s)}</a>' for s in slugs
        ))
    if column == "created_at" and table in (None, "posts") and isinstance(value, str):
        url = safe_url(_row_get(row, "url"))
        shown = zoned_time(value, _row_get(row, "zone"))
        if url:
            return Markup(
                f'<a class="ca-permalink" href="{escape(url)}" title="Original post ({escape(value)})" '
                f'rel="nofollow noopener noreferrer">{shown}</a>'
            )
        return shown
    return None


def zoned_time(value: str, zone: Any) -> Markup:
    """An archive time labelled with its zone: in the chat's ``zone`` when the
    row has one (the session page's times), else in UTC, said so."""
    tz = session_zone(zone if isinstance(zone, str) else None)
    dt = local_datetime(value, tz)
    if dt is None:
        return Markup(escape(value))
    label = dt.strftime("%Z") if tz is not timezone.utc else "UTC"
    return Markup(f'{escape(dt.strftime("%Y-%m-%d %H:%M:%S"))} <span class="ca-zone">{escape(label)}</span>')


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if column not in _RENDERED or value is None or isinstance(value, (dict, bytes)):
        return None
    is_archive = known(datasette, database)
    if is_archive is False:
        return None
    if is_archive:
        return _render(row, value, column, table, database, datasette)

    async def later():
        if await maybe_archive(datasette, database):
            return _render(row, value, column, table, database, datasette)
        return None

    return later()


_RENDERED = _TEXT_COLUMNS | _HANDLE_COLUMNS | _SESSION_COLUMNS | {"snippet", "avatar_url", "created_at"}


@hookimpl
def startup(datasette):
    async def inner():
        for name in await archive_names(datasette, busy=True):
            try:
                await _people_index(datasette.get_database(name))  # so the first search is fast
            except ArchiveBusy:
                pass  # (mutable archives are not indexed in memory anyway)

    return inner


@hookimpl
def prepare_jinja2_environment(env, datasette):
    fix_template_loader(env)
    # overrides/ (query.html, table.html: tab titles, folded column descriptions)
    # first, extending Datasette's own ("default:"); a --template-dir still wins
    # for chatarchive_*.html, which come last.
    overrides = FileSystemLoader(str(TEMPLATES_DIR / "overrides"))
    if isinstance(env.loader, ChoiceLoader):
        loaders = list(env.loader.loaders)
        if not any(getattr(ld, "searchpath", None) == [str(TEMPLATES_DIR)] for ld in loaders):
            env.loader.loaders = [overrides, *loaders, FileSystemLoader(str(TEMPLATES_DIR))]
    else:
        env.loader = ChoiceLoader([overrides, env.loader, FileSystemLoader(str(TEMPLATES_DIR))])


def fix_template_loader(env, recap_dir: Path = RECAP_TEMPLATES_IN_PACKAGE) -> None:
    """Drop the recap's templates folder from Datasette's search path."""
    loaders = env.loader.loaders if isinstance(env.loader, ChoiceLoader) else [env.loader]
    bad = str(recap_dir.resolve())
    for loader in loaders:
        if isinstance(loader, FileSystemLoader):
            loader.searchpath = [p for p in loader.searchpath if str(Path(p).resolve()) != bad]



CSS_PATH = "/-/chatarchive/chatarchive.css"


@functools.lru_cache(maxsize=1)
def _css() -> str:
    # The plugin's own page styles, then the recap's post styles (the markup is the same).
    return (TEMPLATES_DIR / "chatarchive.css").read_text(encoding="utf-8") + "\n" + post_css()


@functools.lru_cache(maxsize=1)
def _css_version() -> str:
    return hashlib.sha1(_css().encode()).hexdigest()[:8]


@hookimpl
def extra_css_urls(template, database, table, columns, view_name, request, datasette):
    async def inner():
        if (template or "").startswith("chatarchive_") or (
            database and await maybe_archive(datasette, database)
        ):
            return [datasette.urls.path(CSS_PATH) + "?" + _css_version()]
        return []

    return inner


@hookimpl
def menu_links(datasette, actor, request):
    async def inner():
        return [
            {"href": DatasetteTargets(datasette, name).search(), "label": f"Search {name}"}
            for name in await archive_names(datasette, busy=True)
        ]

    return inner


@hookimpl
def register_routes(datasette):
    return [
        (r"^/-/chatarchive/chatarchive\.css$", css_view),
        (r"^/(?P<database>[^/]+)/-/search$", search_page),
        (r"^/(?P<database>[^/]+)/-/session/(?P<session>[^/]+)$", session_page),
    ]


async def css_view(datasette, request):
    return Response(
        _css(), content_type="text/css; charset=utf-8",
        headers={"cache-control": "max-age=86400"},
    )


# --------------------------------------------------------------------------
# Security headers


def _datasette_inline_script_hashes() -> list[str]:
    """The CSP hashes of the inline scripts in Datasette's own templates (the
    menu closer, the SQL editor's set-up, the table page's facet flag in its
    two values), read from the installed Datasette so they follow its version.
    Scripts other plugins add with ``extra_body_script`` are not among them."""
    import datasette

    folder = Path(datasette.__file__).parent / "templates"
    bodies: set[str] = set()
    for template in sorted(folder.glob("*.html")):
        text = template.read_text(encoding="utf-8")
        for body in re.findall(r"<script>(.*?)</script>", text, flags=re.S):
            if "{{ datasette_allow_facet }}" in body:
                bodies.update(body.replace("{{ datasette_allow_facet }}", v) for v in ("true", "false"))
            elif "{{" not in body and "{%" not in body:
                bodies.add(body)
    return sorted("sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in bodies)


@functools.lru_cache(maxsize=1)
def csp() -> str:
    """The Content-Security-Policy of every page: scripts from the server and
    Datasette's own inline ones only; pictures from anywhere on the web
    (avatars are hotlinked); no plugins, no framing by other sites, forms
    and links to the base only to the server."""
    scripts = " ".join(f"'{h}'" for h in _datasette_inline_script_hashes())
    return ("default-src 'self'; "
            f"script-src 'self' {scripts}; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' https: http: data:; media-src 'self' https: http:; "
            "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'self'")


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def with_headers(scope, receive, send):
            if scope.get("type") != "http" or not await archive_names(datasette, busy=True):
                return await app(scope, receive, send)

            async def send_with_headers(event):
                if event.get("type") == "http.response.start":
                    headers = [(k, v) for k, v in event.get("headers") or []
                               if k.lower() not in (b"content-security-policy", b"x-content-type-options")]
                    headers.append((b"x-content-type-options", b"nosniff"))
                    ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                    if ctype.startswith(b"text/html"):
                        headers.append((b"content-security-policy", csp().encode()))
                    event = {**event, "headers": headers}
                await send(event)

            return await app(scope, receive, send_with_headers)

        return with_headers

    return wrap


@hookimpl
def handle_exception(datasette, request, exception):
    if not isinstance(exception, ArchiveBusy) and not is_busy(exception):
        return None
    return busy_response(datasette, request, exception)



