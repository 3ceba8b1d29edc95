"""What published outputs may show: the one filter.

The archive keeps everything; the recap, the exports (every format) and
the Datasette plugin's pages and canned queries show only what the host
and the participants allow.  A post is *withheld* when

* the host hid it, or hid its author (``chatarchive hide``);
* its author withdrew consent (``chatarchive consent ACCOUNT --revoke``);
* its author's account is unlisted on its platform (Mastodon ``noindex`` /
  ``indexable: false``, Bluesky ``!no-unauthenticated``, X protected) and
  has no ``consent --allow``, unless the output was asked to
  ``--include-unlisted``.

Forgotten people's posts and posts deleted on their platform are
tombstones already (``posts.deleted_at``, ``archive/deletion.py``).

The rule itself is SQL, the view ``withheld_posts`` (migrations m009, m013), so
SQL readers (``queries.published_sql``, Datasette's canned queries) and
:class:`Publication` apply the same one.  ``present.views.load_session``
takes a :class:`Publication` (default: :meth:`Publication.load`, the
published defaults), so every page or export built on a ``SessionView``
gets the filter for free; pages that read posts another way pass
:attr:`Publication.reasons` to the ``queries`` function (its ``withheld=``
argument), as ``queries.participant_posts`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import queries
from .pseudonyms import Pseudonyms
from .queries import Connection

# What a withheld post that keeps its place (a reply to it is shown) says instead.
PLACEHOLDERS = {
    "hidden": "This post was hidden by the host.",
    "withdrawn": "Not shown: its author asked not to be published.",
    "unlisted": "Not shown: its author's account is not public.",
    "forgotten": "This post was removed at the author's request.",
}


@dataclass
class Publication:
    """Which posts one published output shows (see the module docstring).

    ``withheld``: post id -> reason; ``forgotten``: author ids removed at
    their request (their tombstones say so); ``pins``: pinned post ids."""

    include_unlisted: bool = False
    withheld: dict[str, str] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)
    pins: set[str] = field(default_factory=set)
    everything: bool = False  # the host's own view (no filter)
    # anonymized publishing (--anonymize): every non-host as "Participant N"
    # (archive/pseudonyms.py; load_session applies it to the whole view)
    pseudonyms: Pseudonyms | None = None

    @classmethod
    def load(cls, db: Connection, *, include_unlisted: bool = False, anonymize: bool = False) -> Publication:
        """The published defaults read from the archive (one query per table)."""
        conn = queries.connection(db)
        reasons = queries.withheld_reasons(include_unlisted)
        return cls(include_unlisted=include_unlisted, withheld=queries.withheld_posts(conn, reasons),
                   forgotten={r[0] for r in conn.execute("SELECT author_id FROM forgotten_accounts")},
                   pins={r[0] for r in conn.execute("SELECT post_id FROM pins")},
                   pseudonyms=Pseudonyms.load(conn) if anonymize else None)

    @classmethod
    def unfiltered(cls, db: Connection) -> Publication:
        """Everything the archive holds (the host's own tools: search, show)."""
        pub = cls.load(db)
        return cls(withheld={}, forgotten=pub.forgotten, pins=pub.pins, everything=True)

    @property
    def reasons(self) -> tuple[str, ...] | None:
        """The reasons that withhold, for ``queries`` functions' ``withheld=`` (None: none)."""
        return None if self.everything else queries.withheld_reasons(self.include_unlisted)

    def reason(self, post_id: str) -> str | None:
        """Why this post is withheld (None: it may be shown)."""
        return self.withheld.get(post_id)

    def placeholder(self, post_id: str, author_id: str | None, deleted: bool) -> str | None:
        """What a post shown in its place only says: withheld, removed at its
        author's request, or None (deleted on its platform: the tombstone's own words)."""
        why = self.reason(post_id)
        if why:
            return PLACEHOLDERS[why]
        if deleted and author_id in self.forgotten:
            return PLACEHOLDERS["forgotten"]
        return None

    def withheld_authors(self, db: Connection) -> set[str]:
        """Authors none of whose posts may be shown (no participant page for them;
        anonymized: nobody has one, a page would name its person)."""
        if self.everything:
            return set()
        conn = queries.connection(db)
        if self.pseudonyms is not None:
            return {r[0] for r in conn.execute("SELECT id FROM authors")}
        out = {r[0] for r in conn.execute("SELECT target_id FROM hidden WHERE target_kind = 'account'")}
        out |= {r[0] for r in conn.execute("SELECT author_id FROM consent WHERE allow = 0")}
        out |= self.forgotten
        if not self.include_unlisted:
            out |= {r[0] for r in conn.execute(
                "SELECT id FROM authors a WHERE unlisted = 1 AND NOT EXISTS "
                "(SELECT 1 FROM consent c WHERE c.author_id = a.id)")}
        return out
