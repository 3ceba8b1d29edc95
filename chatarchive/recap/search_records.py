"""The site's search records: what Pagefind indexes, made from the same data
the pages show instead of from the pages' HTML.

A session gives one record per question block (the question and its
answers, with their replies), one per conversation outside the Q&A (as the
page's Conversations section lists them) and one for the session itself
(its title and the posts in neither); every person with a page gives one.
Each record links to the anchor it describes (``sessions/x.html#q2``, the
root post of a conversation in the transcript) and carries plain text only
(no badges, handles or times), so a snippet is what people wrote.  Filters:
hashtag, date (the session's day in the chat's zone), platform, author.

The records of a session are made from its ``SessionView`` (the published
filter of ``archive.published``: a withheld or deleted post gives no text
and no author) when its page is rendered, and kept in its digest
(``digest.py``) so that a run that renders one session re-indexes the site
without reading the other sessions again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..present.model import Person
from ..present.text import anchor_for, clean, local_datetime, platform_name
from ..present.views import SessionPost, SessionView

# Filter names as the search page shows them.
HASHTAG, DATE, PLATFORM, AUTHOR = "hashtag", "date", "platform", "author"


@dataclass(slots=True)
class SearchRecord:
    url: str  # from the site's root, with the anchor ("sessions/x.html#q1")
    title: str
    content: str
    filters: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "content": self.content, "filters": self.filters}

    @classmethod
    def of(cls, d: Any) -> SearchRecord | None:
        """From :meth:`as_dict` (a digest read back); None when malformed."""
        try:
            filters = {str(k): [str(v) for v in vs] for k, vs in d["filters"].items() if isinstance(vs, list)}
            url, title, content = d["url"], d["title"], d["content"]
        except (KeyError, TypeError, AttributeError):
            return None
        if not all(isinstance(v, str) for v in (url, title, content)) or url.startswith(("/", "\\")) or "://" in url:
            return None
        return cls(url=url, title=title, content=content, filters=filters)


def _text(p: SessionPost) -> str:
    """What a shown post said, as plain text; nothing for a tombstone or a placeholder."""
    if p.deleted or p.post.is_repost:
        return ""
    return " ".join(clean(p.post.text or "").split())


def _shown(posts: Iterable[SessionPost]) -> list[SessionPost]:
    return [p for p in posts if _text(p)]


def _filters(base: dict[str, list[str]], posts: list[SessionPost]) -> dict[str, list[str]]:
    out = dict(base)
    out[PLATFORM] = sorted({platform_name(p.post.platform) for p in posts if p.post.platform})
    out[AUTHOR] = sorted({"@" + p.handle for p in posts}, key=str.lower)
    return {k: v for k, v in out.items() if v}


def session_records(view: SessionView, page: str, title: str) -> list[SearchRecord]:
    """The records of one session page (``page``: "sessions/x.html")."""
    s = view.session
    start = local_datetime(s.start, view.zone)
    base: dict[str, list[str]] = {}
    if s.hashtag:
        base[HASHTAG] = ["#" + s.hashtag]
    if start is not None:
        base[DATE] = [start.strftime("%Y-%m-%d")]
    records: list[SearchRecord] = []
    used: set[str] = set()
    for q in view.questions:
        block: list[SessionPost] = [q.post] if q.post is not None else []
        for a in q.answers:
            block.append(a.post)
            block.extend(p for _, p in a.thread)
        used.update(p.id for p in block)
        shown = _shown(block)
        question = " ".join(clean(q.text or "").split())
        if not shown and not question:
            continue  # a withheld question with no answer left to read
        lines = ([question] if question and (q.post is None or not _text(q.post)) else []) + [_text(p) for p in shown]
        asked = question if re.match(rf"Q{q.number}\b", question) else f"Q{q.number}: {question or 'question'}"
        records.append(SearchRecord(url=f"{page}#q{q.number}", title=f"{asked} · {title}",
                                    content="\n".join(lines), filters=_filters(base, shown)))
    for c in view.conversations:
        root = c.items[0][1] if c.items else None
        if root is None or root.id in used or root.q_number is not None or root.post.answer_to_id is not None:
            continue  # threads of the Q&A are in its question's record
        items = [p for _, p in c.items]
        used.update(p.id for p in items)
        shown = _shown(items)
        if not shown:
            continue
        first = _text(shown[0])
        records.append(SearchRecord(url=f"{page}#{anchor_for(root.id)}",
                                    title=f"{first[:70] + '…' if len(first) > 70 else first} · {title}",
                                    content="\n".join(_text(p) for p in shown), filters=_filters(base, shown)))
    rest = _shown(p for p in view.posts if p.id not in used)
    records.insert(0, SearchRecord(url=page, title=title, content="\n".join([title, *(_text(p) for p in rest)]),
                                   filters=_filters(base, rest)))
    return records


def person_record(person: Person, *, sessions: int, hashtags: list[str]) -> SearchRecord:
    """A participant page's record: who they are and where they took part."""
    name = person.name or person.handle
    where = f" in {', '.join('#' + t for t in hashtags)}" if hashtags else ""
    content = (f"{name} @{person.handle} on {platform_name(person.platform)}: "
               f"took part in {sessions} chat{'s' if sessions != 1 else ''}{where}")
    filters = {AUTHOR: ["@" + person.handle], PLATFORM: [platform_name(person.platform)],
               HASHTAG: ["#" + t for t in hashtags]}
    return SearchRecord(url=person.page, title=f"{name} (@{person.handle})" if person.name else f"@{person.handle}",
                        content=content, filters={k: v for k, v in filters.items() if v})
