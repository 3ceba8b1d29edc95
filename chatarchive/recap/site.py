"""Building the recap site: :func:`build_site` checks the folder and reads
its manifest (``files``), names the pages (``sitemap``), copies media when
asked (``media``), writes the session, hashtag, participant and index pages
(``pages`` through the templates of ``templates``), prunes when asked,
indexes the pages (``search_index``) and leaves the manifest, in that order.

``build_site(db, out)`` writes ``index.html``, one page per session
(``sessions/SLUG.html``), per hashtag (``hashtags/TAG.html``) and per
participant (``people/HANDLE.html``), ``search.html`` and ``pagefind/``.
It only reads the archive.

Incremental: ``build_site(db, out, [session])`` writes that session's page
and keeps every other page of the site; the index and the hashtag pages
list every session of the archive (linking those with a page), and the
pages of that session's people are rewritten with all their posts in the
site's sessions.  Nothing is deleted unless ``prune``: then the pages of
sessions (and people, hashtags, media) no longer in the archive go.  Files
whose content did not change are not rewritten.

Safety: every value from a post reaches a page through Jinja's autoescape or
through ``present.html``, which escapes it; URLs pass ``safety.safe_url``
(no ``javascript:`` or ``data:`` URL reaches an ``href``, a ``src`` or a CSS
``url()``) and every page carries a Content-Security-Policy without scripts
(search.html allows Pagefind's files and its own hashed script only).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils
from markupsafe import Markup

from ..archive import queries
from ..errors import ChatArchiveError, NotFoundError
from ..present.views import load_session
from ..safety import safe_url
from . import pages
from .files import MANIFEST, SiteWriter
from .media import copy_session_media, media_index
from .search_index import index_site
from .sitemap import SiteMap
from .templates import FAVICON, make_env, render, template_dirs

__all__ = ["MANIFEST", "RecapResult", "build_site", "make_env", "template_dirs"]


@dataclass
class RecapResult:
    out: Path
    pages: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    sessions: int = 0  # session pages rendered by this run
    listed: int = 0  # sessions the index lists (every session of the archive)
    search: str = ""
    search_ok: bool = False
    media_downloaded: int = 0
    media_failed: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    messages: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out / "index.html"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a page builds hundreds of thousands
    of small objects (no cycles) and its full collections would cost a third
    of the time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def build_site(
    db: sqlite_utils.Database,
    out: str | Path,
    sessions: Iterable[str | int] | None = None,
    *,
    templates: str | Path | None = None,
    download_media: bool = False,
    search: bool = True,
    prune: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RecapResult:
    """Write the recap pages of ``sessions`` (all when empty) into ``out``,
    with the index, hashtag and people pages that list them; keep every
    other page of the site, and with ``prune`` remove the pages of sessions
    no longer in the archive.  Only files whose content changed are written."""
    with gc_paused():
        return _build_site(db, Path(out), sessions, templates=templates, download_media=download_media,
                           search=search, prune=prune, progress=progress or (lambda msg: None))


def _build_site(db: sqlite_utils.Database, out: Path, sessions: Iterable[str | int] | None, *,
                templates: str | Path | None, download_media: bool, search: bool, prune: bool,
                progress: Callable[[str], None]) -> RecapResult:
    t0 = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise ChatArchiveError(f"--out {out}: exists and is not a directory")
    env = make_env(templates)
    keys = list(sessions) if sessions is not None else None
    ids = queries.session_ids(db, keys)  # resolved before anything is written: a wrong name writes nothing
    every = queries.list_sessions(db)
    if not every:
        raise NotFoundError("No sessions in this archive yet: run `chatarchive sessions detect DB` "
                            "(or import posts, which detects them) first")
    writer = SiteWriter(out)  # checks the folder and its manifest (before anything is written)
    out.mkdir(parents=True, exist_ok=True)
    result = RecapResult(out=out)
    site = SiteMap(download_media=download_media)
    site.plan_sessions(every)
    rendered = set(ids)
    published = rendered | {s.id for s in every if writer.has(site.session_pages[s.id])}
    published_ids = sorted(published)
    site.plan_people(db, published_ids, writer.previous_people)
    tags = sorted({s.hashtag for s in every if s.hashtag}, key=str.lower)
    title = f"#{tags[0]} archive" if len({t.lower() for t in tags}) == 1 else "Chat archive"
    env.globals["site_title"] = title
    timings = result.timings
    timings["statistics"] = 0.0
    lap = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - lap
        lap = now

    if download_media and ids:
        copies = copy_session_media(db, ids, out, progress)
        site.local_media.update(copies.local)
        result.media_downloaded, result.media_failed = len(copies.local), len(copies.failed)
        if copies.failed:
            result.messages.append(f"{len(copies.failed)} media file(s) could not be copied (shown as initials or links): "
                                   + "; ".join(f"{u} ({why})" for u, why in list(copies.failed.items())[:3]))
    # Every copy an earlier run made stays (other pages show them); --prune keeps
    # those of the sessions with a page.
    index = media_index(out)
    if index:
        wanted = {safe_url(u) for u in queries.session_media_urls(db, published_ids)} if prune else None
        for url, name in index.items():
            if wanted is None or url in wanted or url in site.local_media:
                writer.keep(f"media/{name}")
        writer.keep("media/index.json")
    for rel in site.local_media.values():
        writer.keep(rel)
    phase("setup")

    first_timers = dict(writer.previous_first_timers)
    for n, sid in enumerate(ids, 1):
        view = load_session(db, sid)
        timings["statistics"] += view.stats_seconds
        ctx = pages.session_context(site, view)
        writer.write(site.session_pages[sid], render(env, "session.html", **ctx))
        writer.pages["sessions"][str(sid)] = site.session_pages[sid]
        first_timers[sid] = ctx["first_timers"]
        result.pages += 1
        if n % 25 == 0:
            progress(f"{n}/{len(ids)} session pages")
    for sid in published - rendered:
        writer.keep(site.session_pages[sid])
        writer.pages["sessions"][str(sid)] = site.session_pages[sid]
    for sid in published:
        writer.pages["first_timers"][str(sid)] = first_timers.get(sid)
    result.sessions = len(ids)
    result.listed = len(every)
    phase("session pages")
    tag_stats = pages.hashtags_stats(db, every)
    rows = pages.session_rows(site, every, tag_stats, published, first_timers)
    for page, ctx in pages.hashtag_contexts(site, rows, tag_stats):
        writer.write(page, render(env, "hashtag.html", **ctx))
        result.pages += 1
    phase("hashtag pages")
    # The pages of the people of the sessions rendered now (with their posts
    # in every session of the site); everyone else's page stays as it is.
    everyone = set(rendered) == published
    authors = None if everyone else {a.id for a in queries.session_authors(db, ids)}
    for page, ctx in pages.participant_contexts(site, db, published_ids, rows, authors=authors):
        writer.write(page, render(env, "participant.html", **ctx))
        result.pages += 1
    for person in site.people.by_id.values():
        if person.page:
            writer.pages["people"][person.author_id] = person.page
            if authors is not None and person.author_id not in authors and writer.has(person.page):
                writer.keep(person.page)
    phase("participant pages")
    writer.write("index.html", render(env, "index.html", **pages.index_context(site, rows, title)))
    result.pages += 1
    writer.write("favicon.svg", FAVICON)
    if prune:
        # Before indexing, so search never finds a removed page; the old search
        # bundle and search.html stay until the new ones replace them.
        for rel in writer.previous:
            if rel.startswith("pagefind/") or rel == "search.html":
                writer.keep(rel)
        writer.prune()
    # Search last: it indexes the pages, and search.html says whether it worked.
    if search:
        ok, message = index_site(out, needed=bool(writer.changed_pages) or not (out / "pagefind" / "pagefind.js").is_file())
    else:
        ok, message = False, "search disabled (--no-search)"
    phase("search index")
    result.search_ok, result.search = ok, message
    writer.write("search.html", render(env, "search.html", root="", page_title="Search",
                                       search_ok=ok, search_message=message,
                                       hashtags=sorted({r["hashtag"] for r in rows if r["hashtag"]}, key=str.lower),
                                       avatar_css=Markup("")))
    result.pages += 1
    if ok:
        for p in (out / "pagefind").rglob("*"):
            if p.is_file():
                writer.keep(p.relative_to(out).as_posix())
    result.removed = writer.finish()
    result.written, result.unchanged = writer.written, writer.unchanged
    result.seconds = time.perf_counter() - t0
    return result

