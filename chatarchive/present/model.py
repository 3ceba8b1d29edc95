"""The view models every output renders: a person and a post, ready for
``present.html``, and a whole session (``SessionView``, built by
``views.load_session``).  Plain data: built by ``present.views`` from the archive,
rendered by ``present.html``, read by the recap's and Datasette's templates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from markupsafe import Markup

from ..archive.queries import PostRow
from ..models import Author, Media, Session, StoredPost
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


# --------------------------------------------------------------------------
# A session as every output sees it (built by views.load_session)


@dataclass(slots=True)
class SessionPost:
    """A post with its author, media and links, and what its session adds."""

    post: StoredPost
    author: Author | None
    media: list[Media]
    links: list[str]
    handle: str  # the post's own author handle, else the author row's, else the author id
    name: str
    children: list[str] = field(default_factory=list)  # ids of the replies to it in the session, in time order
    q_number: int | None = None  # the number of the question it asks
    a_number: int | None = None  # the number of the question it answers
    engagement: int = 0
    session_id: int | None = None
    # shown in its place only, saying why (hidden by the host, removed at its
    # author's request...): archive.published.PLACEHOLDERS
    placeholder: str | None = None
    pinned: bool = False

    @property
    def id(self) -> str:
        return self.post.id

    @property
    def deleted(self) -> bool:
        """A tombstone: the post was deleted, or is withheld from this output
        and shown only in its place; nothing it said is shown."""
        return bool(self.post.deleted_at) or self.placeholder is not None

    @classmethod
    def of(cls, row: PostRow, session_id: int | None = None) -> SessionPost:
        p, a = row.post, row.author
        handle = p.author_handle or (a.handle if a is not None else None) or p.author_id or "unknown"
        name = p.author_name or (a.name if a is not None else None) or ""
        return cls(p, a, row.media, row.links, handle, name, session_id=session_id)


@dataclass(slots=True)
class Answer:
    post: SessionPost
    thread: list[tuple[int, SessionPost]]  # its replies, depth first, with their depth (1 = a direct reply)


@dataclass(slots=True)
class SessionQuestion:
    id: int
    number: int
    post_id: str | None
    text: str | None
    post: SessionPost | None  # the post that asked it, when it is in the session
    answers: list[Answer]  # most engaged first
    created_at: str | None = None
    first_answer_seconds: float | None = None  # only with statistics


@dataclass(slots=True)
class ConversationView:
    """A reply tree of two or more of the session's posts."""

    id: str
    size: int
    depth: int
    participants: int
    started: str
    items: list[tuple[int, SessionPost]]  # depth first, with their depth


@dataclass(slots=True)
class Participant:
    """Someone who posted in the session (authors of context posts only are left out)."""

    author_id: str | None
    handle: str
    name: str
    avatar_url: str | None
    url: str | None
    platform: str
    posts: int = 0
    replies_received: int = 0
    answers: int = 0
    first_timer: bool | None = False  # first time in this archive; None: unknowable (the hashtag's first session)
    host: bool = False


@dataclass(slots=True)
class SessionView:
    """Everything an output shows of one session."""

    session: Session
    stats: dict[str, Any]  # stats.session_stats; {} when loaded without statistics
    posts: list[SessionPost]  # time order
    by_id: dict[str, SessionPost]
    questions: list[SessionQuestion]
    conversations: list[ConversationView]  # started order
    participants: list[Participant]
    zone: tzinfo
    stats_seconds: float = 0.0  # time spent in stats.session_stats
    lead_in: list[SessionPost] = field(default_factory=list)  # posted before the core ("Before the chat"), time order
    highlights: list[SessionPost] = field(default_factory=list)  # pinned posts, time order
    notes: dict[int | None, Markup] = field(default_factory=dict)  # host's notes by question number (None: session)
    notes_markdown: dict[int | None, str] = field(default_factory=dict)  # the same, as the host wrote them
    link_titles: dict[str, str] = field(default_factory=dict)  # page titles the data gave, by link URL (links.title)

    @property
    def first_timers(self) -> int | None:
        """How many people came for the first time (in this archive); None when unknowable."""
        if not self.stats or self.stats.get("first_timers") is None:
            return None
        return sum(1 for p in self.participants if p.first_timer)
