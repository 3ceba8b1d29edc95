"""Which databases of a Datasette are chatarchive archives, and where links
point inside one: :class:`DatasetteTargets` is the plugin's
``present.views.LinkTargets`` (a mention goes to the person's history, a
hashtag to its posts, a post to its row; sessions have pages)."""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
import weakref
from pathlib import Path
from typing import Any

from datasette.utils import tilde_encode

from ..archive.schema import ARCHIVE_TABLES
from ..present.model import Person
from ..present.text import anchor_for
from ..urls import safe_url
from .busy import ArchiveBusy, is_busy, wait_for_writers

TEMPLATES_DIR = Path(__file__).parent / "templates"
# The recap templates ship inside the wheel as chatarchive/templates.  On
# Python >= 3.12 Datasette's plugin loader resolves a module plugin's
# "templates" folder in its package, so those files (base.html, index.html…)
# would replace Datasette's own; prepare_jinja2_environment removes them.
RECAP_TEMPLATES_IN_PACKAGE = Path(__file__).parent.parent / "templates"


# --------------------------------------------------------------------------
# Which databases are archives


_ARCHIVES: weakref.WeakKeyDictionary[Any, dict[str, bool]] = weakref.WeakKeyDictionary()


async def detect(datasette: Any, name: str) -> bool:
    """Whether database ``name`` is an archive (it has the archive's tables); remembered."""
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
    except sqlite3.Error as e:
        if is_busy(e):  # a writer holds the file (serve --live during an import): 503, and ask again next time
            raise ArchiveBusy(name) from None
        tables = set()  # not a database after all
    known[name] = tables >= ARCHIVE_TABLES
    if known[name]:
        wait_for_writers(db)  # serve --live: queries wait for a writer instead of failing
    return known[name]


def known(datasette: Any, name: str) -> bool | None:
    """What :func:`detect` found for ``name``, None when it has not looked yet."""
    return _ARCHIVES.get(datasette, {}).get(name)


async def maybe_archive(datasette: Any, name: str) -> bool:
    """:func:`detect` for the plugin's hooks: a database a writer holds locked
    counts as an archive for now (its pages then answer "busy")."""
    try:
        return await detect(datasette, name)
    except ArchiveBusy:
        return True


def mark_archive(datasette: Any, name: str) -> None:
    """Record that database ``name`` is an archive without reading it (``chatarchive
    serve`` checked the file before starting), so a writer holding it from the
    first request on gets "busy" pages, not errors."""
    _ARCHIVES.setdefault(datasette, {})[name] = True
    wait_for_writers(datasette.get_database(name))


async def archive_names(datasette: Any, *, busy: bool = False) -> list[str]:
    """The archives among the databases (``busy``: count one a writer holds
    locked as an archive instead of raising :class:`ArchiveBusy`)."""
    out = []
    for name in list(datasette.databases):
        if name == "_internal":
            continue
        try:
            if await detect(datasette, name):
                out.append(name)
        except ArchiveBusy:
            if not busy:
                raise
            out.append(name)
    return out


# --------------------------------------------------------------------------
# Where links point

_TILDE_SAFE = re.compile(r"[A-Za-z0-9_\-]+")  # what tilde_encode leaves as it is


class DatasetteTargets:
    """URLs inside one archive database.  ``anchors``: the page shows the
    session's posts, so a reply or quote links to the post on the page (the
    session page); elsewhere to the post's row."""

    def __init__(self, datasette: Any, database: str, *, anchors: bool = False):
        self.db = datasette.urls.database(database)
        self.anchors = anchors
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

    def person(self, person: Person) -> str:
        return self.mention(person.handle)

    def post(self, post_id: str) -> str:
        return "#" + anchor_for(post_id) if self.anchors else self.row(post_id)

    def row(self, post_id: str) -> str:
        # X ids (digits) need no tilde-encoding, and a session page links thousands
        key = post_id if _TILDE_SAFE.fullmatch(post_id) else tilde_encode(str(post_id))
        return f"{self.db}/posts/{key}"

    def image(self, url: str | None) -> str | None:
        return safe_url(url)  # hotlinked: Datasette has no copies

    def media_link(self, url: str | None) -> str | None:
        return url

    def session(self, slug_or_id: Any) -> str:
        return f"{self.db}/-/session/" + urllib.parse.quote(str(slug_or_id), safe="")

    def search(self, q: str | None = None) -> str:
        return f"{self.db}/-/search" + ("?" + urllib.parse.urlencode({"q": q}) if q else "")
