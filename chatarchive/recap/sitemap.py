"""Who and what has a page in the site, and where links point from a page.

:class:`SiteMap` names the pages of the sessions, hashtags and people of a
site (stable, file-safe slugs: a person keeps the page name an earlier run
gave them) before any page is written, so every page can link to every
other; :class:`SiteTargets` is the site's
``present.views.LinkTargets``: mentions and names link to people's pages,
hashtags to hashtag pages, and pictures load from the original or, with
``--download-media``, from the site's own copies.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from ..archive import queries
from ..archive.queries import Connection
from ..models import Session
from ..present.model import Person
from ..present.text import anchor_for
from ..present.views import People
from ..urls import safe_url

# Names Windows reserves on every drive and in every folder, with any
# extension ("con.html" cannot be created there).
RESERVED_NAMES = frozenset(["con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                            *(f"lpt{i}" for i in range(10))])
SLUG_MAX = 80
_DATE_TAIL = re.compile(r"-\d{4}-\d{2}-\d{2}(?:-\d+)?$")


def slugify(value: str, fallback: str = "x") -> str:
    """A file name from a handle, slug or hashtag, safe on every operating
    system: lower case letters, digits and ``_.-`` only, never empty, never
    ``.``/``..`` (it cannot leave its folder), never a name Windows reserves
    (``con``, ``nul``, ``com1``… get a ``_``), at most 80 characters — a long
    session slug keeps its date at the end."""
    s = re.sub(r"[^a-z0-9_.\-]+", "-", (value if isinstance(value, str) else "").lower()).strip("-.")
    s = re.sub(r"\.{2,}", ".", s)
    if len(s) > SLUG_MAX:
        tail = _DATE_TAIL.search(s)
        keep = tail.group(0) if tail and len(tail.group(0)) < SLUG_MAX // 2 else ""
        s = s[:SLUG_MAX - len(keep)].rstrip("-.") + keep
    s = s or fallback
    if s.split(".", 1)[0] in RESERVED_NAMES:
        s = s.split(".", 1)[0] + "_" + s[len(s.split(".", 1)[0]):]
    return s


def _h(s: str) -> str:
    return hashlib.sha1(s.encode("utf-8", "surrogatepass")).hexdigest()


class SiteMap:
    """The pages of one site: ``people`` (each with ``page``), ``tag_pages``
    and ``session_pages`` (paths from the site's root), and the local copies
    of pictures when ``download_media``."""

    def __init__(self, download_media: bool = False):
        self.people = People()
        self.tag_pages: dict[str, str] = {}  # lower-case hashtag -> "hashtags/tag.html"
        self.community_pages: dict[str, str] = {}  # lower-case hashtag -> "community/tag.html"
        self.session_pages: dict[int, str] = {}  # session id -> "sessions/slug.html"
        self.download_media = download_media
        self.local_media: dict[str, str] = {}  # safe URL -> "media/NAME"

    def plan(self, db: Connection, session_ids: list[int], *, sessions: Iterable[Session] | None = None,
             previous_people: Mapping[str, str] | None = None) -> None:
        """Name every page of the site: a page per session of ``sessions``
        (default: those of ``session_ids``) and per hashtag, and a page per
        author of ``session_ids``' posts.  A person keeps the page name
        ``previous_people`` gave them; a handle or slug that two would share
        gets the platform, then a hash of the id, appended."""
        self.plan_sessions(sessions if sessions is not None else queries.sessions_by_ids(db, session_ids))
        self.plan_people(db, session_ids, previous_people or {})

    def plan_sessions(self, sessions: Iterable[Session]) -> None:
        used: set[str] = set()
        for s in sorted(sessions, key=lambda s: s.id):
            slug = slugify(s.slug, f"session-{s.id}")
            if slug in used:
                slug = f"{slug}-{s.id}"
            used.add(slug)
            self.session_pages[s.id] = f"sessions/{slug}.html"
            if s.hashtag:
                self.tag_pages.setdefault(s.hashtag.lower(), f"hashtags/{slugify(s.hashtag, 'tag')}.html")
                self.community_pages.setdefault(s.hashtag.lower(), f"community/{slugify(s.hashtag, 'tag')}.html")

    def plan_people(self, db: Connection, session_ids: list[int], previous: Mapping[str, str], *,
                    withheld: Iterable[str] = ()) -> None:
        """A page per author of these sessions, but the ``withheld`` (author
        ids none of whose posts may be published: ``Publication.withheld_authors``)."""
        skip = set(withheld)
        authors = [a for a in queries.session_authors(db, session_ids) if a.id not in skip]
        used: set[str] = set()
        named: dict[str, str] = {}
        for a in authors:  # names earlier runs gave first, so they stay
            page = previous.get(a.id)
            if page and page.startswith("people/") and page.endswith(".html"):
                slug = page[len("people/"):-len(".html")]
                if slug == slugify(slug) and slug not in used:
                    used.add(slug)
                    named[a.id] = slug
        for a in authors:
            slug = named.get(a.id) or ""
            if not slug:
                base = slugify(a.handle or a.id, "person")
                slug = base
                if slug in used:
                    slug = f"{base}-{slugify(a.platform, 'x')}"
                if slug in used:
                    slug = f"{base}-{_h(a.id)[:8]}"
                used.add(slug)
            self.people.add(Person.of_author(a, page=f"people/{slug}.html"))

    def targets(self, root: str, *, own: str | None = None, session_page: str = "") -> SiteTargets:
        return SiteTargets(self, root, own, session_page)

    def person_href(self, person: Person | None, root: str) -> str | None:
        return root + person.page if person is not None and person.page else None


class SiteTargets:
    """Where links point from one page of the site at ``root`` ("" or "../").
    On a session page ``own`` is its hashtag: in nearly every post and linked
    from the header, so shown muted and unlinked in post text.
    ``session_page`` is where the page's posts are shown in full, when that
    is another page (a participant's page links into the session pages)."""

    __slots__ = ("own", "root", "session_page", "site")

    def __init__(self, site: SiteMap, root: str, own: str | None = None, session_page: str = ""):
        self.site = site
        self.root = root
        self.own = (own or "").lower()
        self.session_page = session_page

    def mention(self, handle: str) -> str | None:
        person = self.site.people.by_handle.get(handle.lower())
        return self.root + person.page if person is not None and person.page else None

    def tag(self, tag: str) -> str | None:
        low = tag.lower()
        if low == self.own:
            return ""
        page = self.site.tag_pages.get(low)
        return self.root + page if page else None

    def person(self, person: Person) -> str | None:
        return self.root + person.page if person.page else None

    def post(self, post_id: str) -> str:
        anchor = "#" + anchor_for(post_id)
        return self.session_page + anchor if self.session_page else anchor

    def row(self, post_id: str) -> str | None:
        return None

    def image(self, url: str | None) -> str | None:
        """Our copy with --download-media (None when it could not be
        fetched), else the original (hotlinked)."""
        u = safe_url(url)
        if u is None:
            return None
        if self.site.download_media:
            local = self.site.local_media.get(u)
            return self.root + local if local else None
        return u

    def media_link(self, url: str | None) -> str | None:
        if url and self.site.download_media:
            local = self.site.local_media.get(url)
            return self.root + local if local else url
        return url
