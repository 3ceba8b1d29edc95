"""The typed records every stage passes on.

* ``Post``, ``Author``, ``Media``: what sources produce (pure functions, no
  I/O) and ``archive.writer.PostWriter`` writes.  Ids are strings, times are
  UTC ``YYYY-MM-DDTHH:MM:SS.fffZ`` (or None when unreadable), counts are
  ``None`` (not 0) when a source does not supply them; ``sources.check``
  holds every field to its type before anything reaches SQL.
* ``StoredPost``: a row of the ``posts`` table.  Its fields are the table's
  columns, in order: the one list of them (``archive.schema.POST_COLUMNS``
  and every query's column list are derived from it).
* ``Session``, ``Question``, ``Conversation``, ``SearchHit``: what
  ``archive.queries`` and ``archive.search`` return.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Author:
    # X: numeric user id; Mastodon: the account uri/url (global, unlike the
    # per-server account id); Bluesky: the DID.  For sources that only know a
    # handle (some CSV exports) use "x:@handle" so it never collides.
    id: str
    platform: str  # "x" | "mastodon" | "bluesky"
    handle: str | None = None  # no leading "@"; Mastodon as user@domain
    name: str | None = None
    avatar_url: str | None = None
    url: str | None = None
    # The account asked its platform to keep it out of public listings and
    # search (Mastodon noindex / indexable false, Bluesky !no-unauthenticated,
    # X protected); None when the source does not say.  Published outputs
    # leave such accounts out unless the host overrides (archive/published.py).
    unlisted: bool | None = None


@dataclass
class Media:
    url: str
    type: str | None = None  # photo | video | animated_gif | image | gifv | audio ...
    alt: str | None = None
    preview_url: str | None = None


@dataclass
class Post:
    id: str  # tweet id | Mastodon status uri | Bluesky at:// uri
    platform: str  # "x" | "mastodon" | "bluesky"
    source: str  # format name that produced it, e.g. "twarc2", "mastodon"
    # UTC, "YYYY-MM-DDTHH:MM:SS.fffZ", within timeutil's range; None when the
    # source's time cannot be read (stored NULL, with a warning)
    created_at: str | None
    author: Author | None
    text: str = ""
    html: str | None = None  # sanitized HTML (Mastodon only)
    url: str | None = None
    reply_to_id: str | None = None
    reply_to_author: str | None = None
    root_id: str | None = None  # the source's conversation/root id, if it has one
    quote_of_id: str | None = None
    is_repost: bool = False
    lang: str | None = None
    like_count: int | None = None
    repost_count: int | None = None
    reply_count: int | None = None
    quote_count: int | None = None
    matched: bool = True  # False for context posts (reply parents, includes)
    hashtags: list[str] = field(default_factory=list)  # without "#", original case
    mentions: list[str] = field(default_factory=list)  # handles without "@"
    links: list[str] = field(default_factory=list)  # expanded URLs, never t.co
    # the page title the data gives for some of ``links`` (X unwound title, Mastodon card,
    # Bluesky external embed): links.title
    link_titles: dict[str, str] = field(default_factory=dict)
    media: list[Media] = field(default_factory=list)
    # Mastodon: the per-server id and server; replies name their parent by the
    # parent's *local* id, which store.resolve_local_replies maps to a uri.
    local_id: str | None = None
    instance: str | None = None
    reply_to_local_id: str | None = None
    spoiler_text: str | None = None
    edited_at: str | None = None
    # The raw source object exactly as read (dict/list), kept in table `raw`.
    raw: Any = None
    # What the source got wrong about this post that was mended or dropped
    # (an unreadable time stored as NULL, a count too large to be true): one
    # plain sentence each, reported as FILE:LINE: warning by the importer.
    # Never stored.
    warnings: list[str] = field(default_factory=list)


# The reply_to_id of a reply whose parent is known only by its id on one
# server (a Mastodon in_reply_to_id, the parent not stored): a stand-in,
# the same for every sibling and every import, never the id of a real
# post; archive.writer.resolve_local_replies puts the parent's uri in its
# place when the parent arrives.
REPLY_PLACEHOLDER_PREFIX = "local:"


def local_placeholder(instance: str | None, local_id: str) -> str:
    """``local:SERVER/LOCAL_ID``: see :data:`REPLY_PLACEHOLDER_PREFIX`."""
    return f"{REPLY_PLACEHOLDER_PREFIX}{instance or 'unknown'}/{local_id}"


def is_reply_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(REPLY_PLACEHOLDER_PREFIX)


# --------------------------------------------------------------------------
# Read back from the archive


def _analysis() -> Any:
    """A column the analysis sets (PostWriter never writes it)."""
    return field(default=None, metadata={"written": False})


def _kept() -> Any:
    """A column the archive keeps about a post beyond what any source says
    (PostWriter never writes it): deletion and removal."""
    return field(default=None, metadata={"written": False})


@dataclass
class StoredPost:
    """One row of ``posts``.  The field order is the column order of the table
    as PostWriter writes it, then the columns the analysis sets, then what
    the archive keeps itself (deletions)."""

    id: str
    platform: str
    source: str | None = None
    url: str | None = None
    author_id: str | None = None
    author_handle: str | None = None
    author_name: str | None = None
    text: str | None = None
    html: str | None = None
    created_at: str | None = None
    reply_to_id: str | None = None
    reply_to_author: str | None = None
    root_id: str | None = None
    quote_of_id: str | None = None
    is_repost: int = 0
    lang: str | None = None
    like_count: int | None = None
    repost_count: int | None = None
    reply_count: int | None = None
    quote_count: int | None = None
    matched: int = 1
    local_id: str | None = None
    instance: str | None = None
    reply_to_local_id: str | None = None
    spoiler_text: str | None = None
    edited_at: str | None = None
    conversation_id: str | None = _analysis()
    question_id: int | None = _analysis()
    answer_to_id: int | None = _analysis()
    deleted_at: str | None = _kept()  # when the post was found deleted (or removed); its content is gone

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


STORED_POST_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StoredPost))
WRITTEN_POST_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StoredPost) if f.metadata.get("written", True))


def _json_list(value: Any) -> list[str]:
    """A JSON array column (hosts, platforms) as a list; tolerant of junk."""
    if not value:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    try:
        got = json.loads(value)
    except (TypeError, ValueError):
        return [str(value)]
    return [str(v) for v in got] if isinstance(got, list) else [str(got)]


@dataclass
class Session:
    """One sitting of a chat hashtag (a row of ``sessions``, JSON columns decoded).

    ``posts`` is the session's post count (``sessions.post_count``); listings
    fill ``participants`` and ``questions`` too."""

    id: int
    slug: str
    hashtag: str | None = None
    title: str | None = None
    start: str | None = None
    end: str | None = None
    hosts: list[str] = field(default_factory=list)
    source: str | None = None
    timezone: str | None = None
    platforms: list[str] = field(default_factory=list)
    posts: int = 0
    window_start: str | None = None
    window_end: str | None = None
    configured_hosts: list[str] = field(default_factory=list)
    participants: int | None = None
    questions: int | None = None

    # the stored columns, in the order Session.from_row reads them
    COLUMNS = ("id", "slug", "hashtag", "title", "start", "end", "hosts", "source", "timezone",
               "platforms", "post_count", "window_start", "window_end", "configured_hosts")

    @classmethod
    def from_row(cls, row: tuple | list, participants: int | None = None, questions: int | None = None) -> Session:
        (sid, slug, hashtag, title, start, end, hosts, source, tz, platforms, post_count,
         window_start, window_end, configured) = row[:14]
        return cls(id=sid, slug=slug, hashtag=hashtag, title=title, start=start, end=end,
                   hosts=_json_list(hosts), source=source, timezone=tz, platforms=_json_list(platforms),
                   posts=post_count or 0, window_start=window_start, window_end=window_end,
                   configured_hosts=_json_list(configured), participants=participants, questions=questions)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.participants is None:
            del out["participants"]
        if self.questions is None:
            del out["questions"]
        return out


@dataclass
class Question:
    id: int
    session_id: int
    number: int
    post_id: str | None
    text: str | None


@dataclass
class Conversation:
    """A reply tree of two or more posts (a row of ``conversations``)."""

    id: str
    session_id: int | None
    size: int
    depth: int
    participants: int
    started: str | None
    ended: str | None


# Where a search snippet's matches start and end (control characters: they
# never occur in stored text, so every output can replace them safely).
HIGHLIGHT_START, HIGHLIGHT_END = "\x02", "\x03"


@dataclass
class SearchHit:
    """One result of ``archive.search.search``: the post, its snippet (matches
    between ``HIGHLIGHT_START``/``HIGHLIGHT_END``) and its bm25 rank (lower is
    better; None when ordered by time)."""

    post: StoredPost
    snippet: str
    rank: float | None = None

    def as_dict(self, highlight: tuple[str, str] = ("**", "**")) -> dict[str, Any]:
        """The JSON shape of ``chatarchive search --json`` (matches between ``highlight``)."""
        p = self.post
        return {
            "id": p.id, "platform": p.platform, "url": p.url, "author_handle": p.author_handle,
            "author_name": p.author_name, "created_at": p.created_at, "text": p.text, "matched": p.matched,
            "like_count": p.like_count, "repost_count": p.repost_count,
            "snippet": self.snippet.replace(HIGHLIGHT_START, highlight[0]).replace(HIGHLIGHT_END, highlight[1]),
            "rank": self.rank,
        }


def handle_matches(handle: str | None, host: str) -> bool:
    """A host given as 'cmgrhost' matches cmgrhost, cmgrhost@mastodon.social
    and cmgrhost.bsky.social (one host on several platforms)."""
    if not handle:
        return False
    h, k = handle.lower().lstrip("@"), host.lower().lstrip("@")
    return h == k or h.startswith((k + "@", k + ".")) or k.startswith(h + "@")
