"""The normalized records every source produces and every stage consumes.

Sources turn platform JSON/CSV into these dataclasses (pure functions, no I/O);
``store.save_posts`` is the only writer. See sources.md §0.1 for the mapping
rules: ids are strings, times are UTC ``YYYY-MM-DDTHH:MM:SS.fffZ``, counts are
``None`` (not 0) when a source does not supply them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    created_at: str  # UTC, "YYYY-MM-DDTHH:MM:SS.fffZ"
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
