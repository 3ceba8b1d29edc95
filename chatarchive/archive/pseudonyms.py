"""Stable pseudonyms for anonymized publishing (``recap --anonymize``,
``export --anonymize``; #11).

Every author who is not a host of a chat becomes "Participant N" (handle
``participant-N``), N numbered by first appearance in the archive (the time
of their earliest post, then their id): the same person has the same number
on every page, in every export and on every run (as long as no earlier post
of a new person is imported later).  Hosts keep their names.

:class:`Pseudonyms` only maps strings; what an output holds is rewritten by
``present.anonymize`` (posts, people, statistics), which
``present.views.load_session`` applies when the :class:`Publication`
(``archive.published``) carries pseudonyms.  Besides the author fields, the
text of posts is rewritten: @mentions of anyone (known or not), and any
other occurrence of a participant's handle or display name; post ids of
participants' posts become ``PLATFORM-HASH`` (Mastodon ids are URLs with the
handle in them, and any id leads back to the author on the platform).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from ..models import handle_matches
from . import queries
from .queries import Connection

PSEUDONYM = "Participant {n}"
PSEUDONYM_HANDLE = "participant-{n}"
SOMEONE = "someone"  # an @mention of a person the archive does not know

# an @mention as the platforms write them: @user, @user@server, @name.bsky.social
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_](?:[\w.-]*[\w])?(?:@[\w-]+(?:\.[\w-]+)+)?)")


@dataclass
class Pseudonyms:
    numbers: dict[str, int]  # author id -> N (non-hosts only)
    hosts: set[str]  # author ids of hosts (never renamed)
    handles: dict[str, int] = field(default_factory=dict)  # lower-case handle (and Mastodon local part) -> N
    names: dict[str, int] = field(default_factory=dict)  # display name -> N
    host_handles: set[str] = field(default_factory=set)  # lower case
    _words: re.Pattern[str] | None = None

    @classmethod
    def load(cls, db: Connection) -> Pseudonyms:
        conn = queries.connection(db)
        host_names = {h for s in queries.list_sessions(conn) for h in (*s.hosts, *s.configured_hosts)
                      if isinstance(h, str) and h}
        numbers: dict[str, int] = {}
        hosts: set[str] = set()
        handles: dict[str, int] = {}
        names: dict[str, int] = {}
        host_handles: set[str] = set()
        rows = conn.execute(
            """SELECT p.author_id, min(coalesce(p.created_at, '9999')) AS first,
                      coalesce(a.handle, max(p.author_handle)), coalesce(a.name, max(p.author_name))
               FROM posts p LEFT JOIN authors a ON a.id = p.author_id
               WHERE p.author_id IS NOT NULL GROUP BY p.author_id ORDER BY first, p.author_id""").fetchall()
        for author_id, _first, handle, name in rows:
            if handle and any(handle_matches(handle, h) for h in host_names):
                hosts.add(author_id)
                host_handles.add(handle.lower())
                continue
            n = numbers[author_id] = len(numbers) + 1
            for h in {handle, *(r[0] for r in conn.execute(
                    "SELECT DISTINCT author_handle FROM posts WHERE author_id = ? AND author_handle IS NOT NULL",
                    [author_id]))}:
                if h:
                    handles.setdefault(h.lower(), n)
                    handles.setdefault(h.split("@", 1)[0].lower(), n)  # Mastodon: user of user@server
            if name and len(name.strip()) >= 3:
                names.setdefault(name.strip(), n)
        return cls(numbers, hosts, handles, names, host_handles)

    # -- one author -------------------------------------------------------

    def number(self, author_id: str | None, handle: str | None = None) -> int | None:
        """N of this author (None: a host, or nobody the archive knows)."""
        if author_id is not None and author_id in self.hosts:
            return None
        if author_id is not None and author_id in self.numbers:
            return self.numbers[author_id]
        return self.handles.get((handle or "").lower()) if handle else None

    @staticmethod
    def name(n: int) -> str:
        return PSEUDONYM.format(n=n)

    @staticmethod
    def handle(n: int) -> str:
        return PSEUDONYM_HANDLE.format(n=n)

    def handle_of(self, handle: str | None) -> str | None:
        """A handle as an anonymized output shows it (hosts keep theirs)."""
        if not handle or handle.lower() in self.host_handles:
            return handle
        n = self.handles.get(handle.lower())
        return self.handle(n) if n is not None else SOMEONE

    @staticmethod
    def post_id(post_id: str) -> str:
        """A post id in an anonymized output (stable, not the platform's):
        ``x-``, ``bluesky-`` or ``mastodon-`` and 16 hex digits of its SHA-1."""
        platform = "bluesky" if post_id.startswith("at://") else "x" if post_id.isdigit() else (
            "mastodon" if "://" in post_id else "post")
        return f"{platform}-{hashlib.sha1(post_id.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"

    # -- text ---------------------------------------------------------------

    def _word_pattern(self) -> re.Pattern[str]:
        if self._words is None:
            words = sorted({*self.handles, *(n.lower() for n in self.names)}, key=len, reverse=True)
            words = [w for w in words if len(w) >= 3 and w not in self.host_handles]
            alternation = "|".join(re.escape(w) for w in words) or r"(?!x)x"
            self._words = re.compile(rf"(?<![\w.-])(?:{alternation})(?![\w-])", re.IGNORECASE)
        return self._words

    def text(self, value: str | None) -> str | None:
        """Post text with every @mention of a non-host and every other
        occurrence of a participant's handle or name replaced."""
        if not value:
            return value

        def mention(m: re.Match[str]) -> str:
            return "@" + (self.handle_of(m.group(1)) or SOMEONE)

        value = _MENTION.sub(mention, value)
        return self._word_pattern().sub(self._word, value)

    def _word(self, m: re.Match[str]) -> str:
        word = m.group(0)
        n = self.handles.get(word.lower())
        if n is not None:
            return self.handle(n)
        for name, num in self.names.items():
            if name.lower() == word.lower():
                return self.name(num)
        return word

    def data(self, value: Any) -> Any:
        """Any JSON-like value with every string passed through :meth:`text`
        and every avatar or profile URL dropped (statistics, digests)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.data(v) for v in value)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            anonymous = self.number(value.get("author_id"), value.get("handle") or value.get("author_handle"))
            for k, v in value.items():
                if k in ("avatar_url", "profile_url") or (k == "url" and anonymous is not None):
                    out[k] = None
                elif k == "author_id" and anonymous is not None:
                    out[k] = self.handle(anonymous)
                elif k in ("name", "author_name") and anonymous is not None:
                    out[k] = self.name(anonymous)
                elif k in ("handle", "author_handle") and isinstance(v, str):
                    out[k] = self.handle_of(v)
                else:
                    out[k] = self.data(v)
            return out
        return value
