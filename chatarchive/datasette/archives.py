"""Which databases of a Datasette are chatarchive archives, the URLs inside
one (mention → participant history, tag → posts by hashtag, session pages),
and the synchronous template environment post lists are rendered with."""


from __future__ import annotations

import sqlite3
import urllib.parse
import weakref
from datetime import timezone
from pathlib import Path
from typing import Any

from markupsafe import Markup

from .html import linkify
from .metadata import ARCHIVE_TABLES

TEMPLATES_DIR = Path(__file__).parent / "templates"
# The recap templates ship inside the wheel as chatarchive/templates.  On
# Python >= 3.12 Datasette's plugin loader resolves a module plugin's
# "templates" folder in its package, so those files (base.html, index.html…)
# would replace Datasette's own; prepare_jinja2_environment removes them.
RECAP_TEMPLATES_IN_PACKAGE = Path(__file__).parent.parent / "templates"


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


