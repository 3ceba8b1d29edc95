"""Building the recap site: :func:`build_site` checks the folder and reads
its manifest (``files``), names the pages (``sitemap``), copies media when
asked (``media``), writes the session, hashtag, participant and index pages
(``pages`` through the templates of ``templates``), prunes when asked,
indexes the records of the pages (``search_records``, ``search_index``) and
leaves the manifest, in that order.

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
through ``present.html``, which escapes it; URLs pass ``urls.safe_url``
(no ``javascript:`` or ``data:`` URL reaches an ``href``, a ``src`` or a CSS
``url()``) and every page carries a Content-Security-Policy without scripts
(search.html allows Pagefind's files and its own hashed script only).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils
from markupsafe import Markup

from ..archive import queries
from ..archive.published import Publication
from ..errors import ChatArchiveError, NotFoundError
from ..gc_pause import gc_paused
from ..present.views import load_session
from ..urls import safe_url
from . import pages
from .about import ABOUT, about_context
from .cards import session_card
from .community import community_context
from .digest import DIGEST, SessionDigest, dump_digests, editorial_fingerprints, read_digests, session_digest
from .feeds import atom_feed, check_base_url, og_tags, sitemap_xml, summary, top_question
from .files import MANIFEST, SiteWriter
from .media import copy_session_media, media_index
from .network import reply_network
from .search_index import SEARCH_STAMP, index_site, records_stamp
from .search_records import SearchRecord, person_record
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
    include_unlisted: bool = False,
    base_url: str | None = None,
    anonymize: bool = False,
) -> RecapResult:
    """Write the recap pages of ``sessions`` (all when empty) into ``out``,
    with the index, hashtag and people pages that list them; keep every
    other page of the site, and with ``prune`` remove the pages of sessions
    no longer in the archive.  Only files whose content changed are written.
    What the pages show is the published filter (``archive.published``;
    ``include_unlisted``: accounts unlisted on their platform too).
    ``base_url`` (the address the site is published at) makes the links of
    feeds, cards and ``og:url`` absolute.  ``anonymize``: every non-host
    shown as "Participant N" (archive/pseudonyms.py), no participant pages."""
    base = check_base_url(base_url)  # before anything is read or written
    with gc_paused():
        return _build_site(db, Path(out), sessions, templates=templates, download_media=download_media,
                           search=search, prune=prune, progress=progress or (lambda msg: None),
                           publication=Publication.load(db, include_unlisted=include_unlisted,
                                                                    anonymize=anonymize), base_url=base)


def _build_site(db: sqlite_utils.Database, out: Path, sessions: Iterable[str | int] | None, *,
                templates: str | Path | None, download_media: bool, search: bool, prune: bool,
                progress: Callable[[str], None], publication: Publication,
                base_url: str | None = None) -> RecapResult:
    t0 = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise ChatArchiveError(f"--out {out}: exists and is not a directory")
    env = make_env(templates)
    keys = list(sessions) if sessions is not None else None
    ids = queries.session_ids(db, keys)  # resolved before anything is written: a wrong name writes nothing
    every = queries.list_sessions(db, withheld=publication.reasons)
    if not every:
        raise NotFoundError("No sessions in this archive yet: run `chatarchive sessions detect DB` "
                            "(or import posts, which detects them) first")
    writer = SiteWriter(out)  # checks the folder and its manifest (before anything is written)
    if publication.pseudonyms is not None and writer.previous_people:
        raise ChatArchiveError(f"--out {out}: holds a site built without --anonymize, whose pages name the "
                               "participants; write the anonymized site into a folder of its own")
    out.mkdir(parents=True, exist_ok=True)
    result = RecapResult(out=out)
    site = SiteMap(download_media=download_media)
    site.plan_sessions(every)
    rendered = set(ids)
    published = rendered | {s.id for s in every if writer.has(site.session_pages[s.id])}
    published_ids = sorted(published)
    # A page made before the host's last editorial change to its session (or
    # by an older version: no digest) is rendered again, so nothing withheld
    # since stays in it, nor in the feeds, cards and search records made from it.
    digests = read_digests(out)
    fingerprints = editorial_fingerprints(db, publication)
    stale = sorted(sid for sid in published - rendered
                   if sid not in digests or digests[sid].editorial != fingerprints.get(sid, ""))
    ids += stale
    rendered |= set(stale)
    withheld_people = publication.withheld_authors(db)
    site.plan_people(db, published_ids, writer.previous_people, withheld=withheld_people)
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
        view = load_session(db, sid, publication=publication)
        timings["statistics"] += view.stats_seconds
        ctx = pages.session_context(site, view)
        digests[sid] = session_digest(view, page=site.session_pages[sid], title=ctx["title"],
                                      editorial=fingerprints.get(sid, ""))
        ctx["network"] = reply_network(digests[sid])
        page = site.session_pages[sid]
        card = card_path(page)
        writer.write(card, session_card(title=ctx["title"], date=ctx["date"], posts=ctx["post_count"],
                                        people=len(ctx["participants"]), question=top_question(digests[sid]),
                                        site_title=title))
        ctx["og"] = og_tags(title=ctx["title"], description=summary(digests[sid]), page=page, card=card,
                            base_url=base_url)
        writer.write(site.session_pages[sid], render(env, "session.html", **ctx))
        writer.pages["sessions"][str(sid)] = site.session_pages[sid]
        first_timers[sid] = ctx["first_timers"]
        result.pages += 1
        if n % 25 == 0:
            progress(f"{n}/{len(ids)} session pages")
    for sid in published - rendered:
        writer.keep(site.session_pages[sid])
        if writer.has(card_path(site.session_pages[sid])):
            writer.keep(card_path(site.session_pages[sid]))
        writer.pages["sessions"][str(sid)] = site.session_pages[sid]
    for sid in published:
        writer.pages["first_timers"][str(sid)] = first_timers.get(sid)
    digests = {sid: d for sid, d in digests.items() if sid in published}
    result.sessions = len(ids)
    result.listed = len(every)
    phase("session pages")
    tag_stats = pages.hashtags_stats(db, every, withheld_authors=withheld_people)
    if publication.pseudonyms is not None:  # the regulars are people too
        tag_stats = publication.pseudonyms.data(tag_stats)
    rows = pages.session_rows(site, every, tag_stats, published, first_timers)
    for page, ctx in pages.hashtag_contexts(site, rows, tag_stats):
        writer.write(page, render(env, "hashtag.html", **ctx))
        result.pages += 1
    write_community_pages(env, writer, site, rows, digests, result)
    write_feeds(writer, site, rows, digests, title, base_url)
    writer.write(DIGEST, dump_digests(digests))
    phase("hashtag pages")
    # The pages of the people of the sessions rendered now (with their posts
    # in every session of the site); everyone else's page stays as it is.
    everyone = set(rendered) == published
    authors = None if everyone else {a.id for a in queries.session_authors(db, ids)}
    for page, ctx in pages.participant_contexts(site, db, published_ids, rows, authors=authors,
                                                withheld=publication.reasons):
        writer.write(page, render(env, "participant.html", **ctx))
        result.pages += 1
    for person in site.people.by_id.values():
        if person.page:
            writer.pages["people"][person.author_id] = person.page
            if authors is not None and person.author_id not in authors and writer.has(person.page):
                writer.keep(person.page)
    for author_id, page in writer.previous_people.items():  # withheld since: their page goes, --prune or not
        if author_id in withheld_people and page not in writer.files:
            writer.remove(page)
    for person in site.people.by_id.values():  # asked for, but nothing of theirs may be shown any more
        if person.page and person.page not in writer.files and (authors is None or person.author_id in authors):
            writer.remove(person.page)
    phase("participant pages")
    writer.write("index.html", render(env, "index.html", **pages.index_context(site, rows, title)))
    writer.write(ABOUT, render(env, "about.html", **about_context(db, title, tags, publication)))
    result.pages += 2
    writer.write("favicon.svg", FAVICON)
    if base_url:  # every page that stays (--prune: only this run's); search.html is a tool, not a page
        listed = writer.files if prune else writer.files | writer.previous
        writer.write("sitemap.xml", sitemap_xml(base_url, [rel for rel in listed if rel.endswith(".html")
                                                           and rel != "search.html"
                                                           and (rel in writer.files or writer.has(rel))]))
    if prune:
        # Before indexing, so search never finds a removed page; the old search
        # bundle and search.html stay until the new ones replace them.
        for rel in writer.previous:
            if rel.startswith("pagefind/") or rel == "search.html":
                writer.keep(rel)
        writer.prune()
    # Search last: it indexes the pages' records, and search.html says whether it worked.
    if search:
        records = site_records(site, digests, writer.files)
        # The index is rebuilt when what it holds changed (SEARCH_STAMP: a hash of the records).
        changed = writer.write(SEARCH_STAMP, records_stamp(records))
        ok, message = index_site(out, records, needed=changed or not (out / "pagefind" / "pagefind.js").is_file())
        if not ok:
            writer.remove(SEARCH_STAMP)  # so the next run tries again
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


def write_community_pages(env: Any, writer: SiteWriter, site: SiteMap, rows: list[dict[str, Any]],
                          digests: dict[int, SessionDigest], result: RecapResult) -> None:
    """The community page of every hashtag with a session page (community.py)."""
    by_id = {r["id"]: r for r in rows}
    by_tag: dict[str, list[SessionDigest]] = {}
    for d in digests.values():
        if d.hashtag:
            by_tag.setdefault(d.hashtag.lower(), []).append(d)
    for key, tagged in sorted(by_tag.items()):
        page = site.community_pages.get(key)
        if page is None:
            continue
        tag = next((r["hashtag"] for r in rows if r["hashtag"].lower() == key), tagged[0].hashtag)
        writer.write(page, render(env, "community.html", **community_context(site, tag, tagged, by_id)))
        result.pages += 1


def site_records(site: SiteMap, digests: dict[int, SessionDigest], files: set[str]) -> list[SearchRecord]:
    """What search finds: every session's records (kept in its digest) and
    one per person with a page among the site's ``files``, in a stable order."""
    records = [r for sid in sorted(digests) for r in digests[sid].records]
    sessions: dict[str, int] = {}
    tags: dict[str, set[str]] = {}
    for d in digests.values():
        for key in d.people:
            sessions[key] = sessions.get(key, 0) + 1
            if d.hashtag:
                tags.setdefault(key, set()).add(d.hashtag)
    for person in sorted(site.people.by_id.values(), key=lambda p: p.page):
        key = person.author_id or person.handle
        if person.page in files and key in sessions:
            records.append(person_record(person, sessions=sessions[key],
                                         hashtags=sorted(tags.get(key, ()), key=str.lower)))
    return records


def card_path(page: str) -> str:
    """The preview card of a session page ("sessions/x.html" -> "cards/x.png")."""
    return "cards/" + page.rsplit("/", 1)[-1].removesuffix(".html") + ".png"


def write_feeds(writer: SiteWriter, site: SiteMap, rows: list[dict[str, Any]], digests: dict[int, SessionDigest],
                title: str, base_url: str | None) -> None:
    """``feed.xml`` (every session with a page) and ``feeds/TAG.xml`` per hashtag (feeds.py)."""
    by_id = {r["id"]: r for r in rows}
    entries = [(d, by_id[sid]) for sid, d in digests.items() if sid in by_id and by_id[sid]["page"]]
    writer.write("feed.xml", atom_feed(title=title, feed_rel="feed.xml", site_rel="index.html", base_url=base_url,
                                       entries=entries))
    tags: dict[str, list[tuple[SessionDigest, dict[str, Any]]]] = {}
    for d, row in entries:
        if d.hashtag:
            tags.setdefault(d.hashtag.lower(), []).append((d, row))
    for key, tagged in sorted(tags.items()):
        page = site.tag_pages.get(key)
        if page is None:
            continue
        rel = "feeds/" + page.rsplit("/", 1)[-1].removesuffix(".html") + ".xml"
        writer.write(rel, atom_feed(title=f"#{tagged[0][1]['hashtag'] or tagged[0][0].hashtag} chats", feed_rel=rel,
                                    site_rel=page, base_url=base_url, entries=tagged))
