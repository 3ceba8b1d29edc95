"""Building the recap site: :func:`build_site` names the pages
(``sitemap``), copies media when asked (``media``), writes the session,
hashtag, participant and index pages (``pages`` through the templates of
``templates``), indexes them (``search_index``) and leaves the manifest
(``files``), in that order.

``build_site(db, out)`` writes ``index.html``, one page per session
(``sessions/SLUG.html``), per hashtag (``hashtags/TAG.html``) and per
participant (``people/HANDLE.html``), ``search.html`` and ``pagefind/``.
It only reads the archive.

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
from typing import Any

import sqlite_utils
from markupsafe import Markup

from ..archive import queries
from ..errors import ChatArchiveError, NotFoundError
from ..present.views import load_session
from . import pages
from .files import MANIFEST, SiteWriter
from .media import copy_session_media
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
    sessions: int = 0
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
    progress: Callable[[str], None] | None = None,
) -> RecapResult:
    """Write the recap site of ``sessions`` (all when empty) into ``out``.

    Re-running rewrites only files whose content changed, and removes pages
    an earlier run wrote for sessions no longer in the site."""
    with gc_paused():
        return _build_site(db, Path(out), sessions, templates=templates, download_media=download_media,
                           search=search, progress=progress or (lambda msg: None))


def _build_site(db: sqlite_utils.Database, out: Path, sessions: Iterable[str | int] | None, *,
                templates: str | Path | None, download_media: bool, search: bool,
                progress: Callable[[str], None]) -> RecapResult:
    t0 = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise ChatArchiveError(f"--out {out}: exists and is not a directory")
    env = make_env(templates)
    out.mkdir(parents=True, exist_ok=True)
    result = RecapResult(out=out)
    ids = queries.session_ids(db, sessions)
    if not ids and sessions is None and not queries.count_sessions(db):
        raise NotFoundError("No sessions in this archive yet: run `chatarchive sessions detect DB` "
                            "(or import posts, which detects them) first")
    site = SiteMap(download_media=download_media)
    site.plan(db, ids)
    tags = sorted({s.hashtag for s in queries.sessions_by_ids(db, ids) if s.hashtag})
    title = f"#{tags[0]} archive" if len(tags) == 1 else "Chat archive"
    env.globals["site_title"] = title
    writer = SiteWriter(out)
    if download_media and ids:
        copies = copy_session_media(db, ids, out, progress)
        site.local_media.update(copies.local)
        for rel in copies.local.values():
            writer.keep(rel)
        writer.keep("media/index.json")
        result.media_downloaded, result.media_failed = len(copies.local), len(copies.failed)
        if copies.failed:
            result.messages.append(f"{len(copies.failed)} media file(s) could not be copied (shown as initials or links): "
                                   + "; ".join(f"{u} ({why})" for u, why in list(copies.failed.items())[:3]))
    summaries: list[dict[str, Any]] = []
    timings = result.timings
    timings["statistics"] = 0.0
    lap = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - lap
        lap = now

    phase("setup")
    for n, sid in enumerate(ids, 1):
        view = load_session(db, sid)
        timings["statistics"] += view.stats_seconds
        ctx = pages.session_context(site, view)
        writer.write(site.session_pages[sid], render(env, "session.html", **ctx))
        result.pages += 1
        summaries.append(pages.session_summary(site, view, ctx))
        if n % 25 == 0:
            progress(f"{n}/{len(ids)} session pages")
    result.sessions = len(ids)
    phase("session pages")
    for page, ctx in pages.hashtag_contexts(site, db, summaries):
        writer.write(page, render(env, "hashtag.html", **ctx))
        result.pages += 1
    phase("hashtag pages")
    for page, ctx in pages.participant_contexts(site, db, ids, summaries):
        writer.write(page, render(env, "participant.html", **ctx))
        result.pages += 1
    phase("participant pages")
    writer.write("index.html", render(env, "index.html", **pages.index_context(site, summaries, title)))
    result.pages += 1
    writer.write("favicon.svg", FAVICON)
    # Stale pages go before indexing (so search never finds them); the old
    # search bundle and search.html stay until the new ones replace them.
    writer.remove_stale(keep=lambda rel: rel.startswith("pagefind/") or rel == "search.html")
    # Search last: it indexes the pages, and search.html says whether it worked.
    if search:
        ok, message = index_site(out, needed=bool(writer.changed_pages) or not (out / "pagefind" / "pagefind.js").is_file())
    else:
        ok, message = False, "search disabled (--no-search)"
    phase("search index")
    result.search_ok, result.search = ok, message
    writer.write("search.html", render(env, "search.html", root="", page_title="Search",
                                       search_ok=ok, search_message=message,
                                       hashtags=sorted({s["hashtag"] for s in summaries if s["hashtag"]}),
                                       avatar_css=Markup("")))
    if ok:
        for p in (out / "pagefind").rglob("*"):
            if p.is_file():
                writer.keep(p.relative_to(out).as_posix())
    result.removed = writer.finish()
    result.pages += 1
    result.written, result.unchanged = writer.written, writer.unchanged
    result.seconds = time.perf_counter() - t0
    return result
