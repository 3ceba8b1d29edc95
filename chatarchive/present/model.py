"""The view models every output renders: a person and a post, ready for
``present.html``.  Plain data: built by ``present.views`` from the archive,
rendered by ``present.html``, read by the recap's and Datasette's templates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup

from ..models import Author
from .text import clean, initials


def _hex(s: str) -> str:
    return hashlib.sha1(s.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class Person:
    """An author as pages show them.  ``cls`` (the avatar's CSS class) and
    ``hue`` come from a hash of the author id, so a person looks the same on
    every page and in every output."""

    author_id: str
    handle: str
    name: str
    platform: str
    avatar_url: str | None
    url: str | None
    page: str = ""  # the recap's page of this person ("people/slug.html"); "" elsewhere
    cls: str = ""
    initials: str = "?"
    hue: int = 0

    @classmethod
    def make(cls, author_id: str, handle: str, name: str | None, platform: str | None, avatar_url: str | None,
             url: str | None, *, page: str = "", key: str | None = None) -> Person:
        """A person; ``key`` (default: the author id) is what the colour is hashed from."""
        hx = _hex(author_id if key is None else key)
        handle, name = clean(handle), clean(name or "")  # shown everywhere: no control characters
        return cls(author_id=author_id, handle=handle, name=name, platform=platform or "",
                   avatar_url=avatar_url, url=url, page=page, cls="a" + hx[:8], initials=initials(name, handle),
                   hue=int(hx[8:12], 16) % 360)

    @classmethod
    def of_author(cls, a: Author, *, page: str = "") -> Person:
        return cls.make(a.id, a.handle or a.id, a.name, a.platform, a.avatar_url, a.url, page=page)


@dataclass(slots=True)
class MediaView:
    src: str | None  # the picture to show (None: a text link or label instead)
    href: str | None  # the full image or video
    alt: str
    video: bool


@dataclass(slots=True)
class Ref:
    """Another post a post refers to (its parent, the post it quotes)."""

    href: str | None
    handle: str


@dataclass(slots=True)
class SessionLink:
    slug: str
    href: str


@dataclass(slots=True)
class PostView:
    """One post as ``present.html`` renders it: ``body`` and the person's
    pieces are markup made safe here; every other string is text (escaped by
    the renderer) or an href that passed ``safe_url`` or came from the
    output's LinkTargets."""

    id: str
    anchor: str
    href: str  # where the post is shown (LinkTargets.post)
    url: str | None  # the original post, http(s) only
    platform: str
    person: Person
    person_href: str | None
    av: Markup
    av_s: Markup
    who: Markup
    handle: str
    time: str  # as shown: "20:04", "2026-11-18 20:04", or "time unknown"
    dt: datetime | None  # in the page's zone; None when the time is unknown
    iso: str  # the archive time ("" when unknown)
    body: Markup
    is_html: bool
    cw: str
    links: list[str]
    media: list[MediaView]
    likes: str
    reposts: str
    replies: str
    engagement: int
    repost: bool
    context: bool
    q: int | None
    a: int | None
    edited: bool
    reply_to: Ref | None = None
    quote: Ref | None = None
    on: str = ""  # the platform's name, on pages that mix platforms
    row: str | None = None  # LinkTargets.row
    sessions: list[SessionLink] = field(default_factory=list)  # the sessions it belongs to, where a page says so
    snippet: bool = False  # body is a search snippet, not the whole text
    html: Markup = field(default_factory=Markup)  # present.html.post_html of this view
    mini: Markup | None = None  # present.html.mini_html, made when a page needs it
    deleted: bool = False  # a tombstone: shown as deleted, without text, author, media or counts
    placeholder: str = ""  # what a tombstone says instead of "deleted" (hidden by the host, …)
