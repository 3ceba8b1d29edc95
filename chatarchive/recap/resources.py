"""The resources people shared: the links of a session, of each question
(the question's post, its answers and their replies), and of a hashtag
across sessions, each link once (``urls.canonical_url``), with its domain,
title when the archive has one, and who shared it.

Which links count is the statistics' rule (``stats.session_stats()["links"]``:
no reposts, no permalinks of archived posts, web links only); this module
only groups them.  It reads nothing: it takes a loaded ``SessionView``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..present.text import url_domain
from ..present.views import SessionPost, SessionView, time_key
from ..urls import canonical_url, link_href


@dataclass(slots=True)
class SharedLink:
    key: str  # canonical_url: the same page whatever tracking or case the posts used
    href: str  # what the page links to (urls.link_href of the first spelling seen)
    domain: str
    title: str | None
    posts: int = 0  # posts sharing it
    sharers: list[str] = field(default_factory=list)  # handles, first sharer first
    sessions: int = 1  # (hashtag digest) sessions it was shared in

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "href": self.href, "domain": self.domain, "title": self.title,
                "posts": self.posts, "sharers": list(self.sharers), "sessions": self.sessions}

    @classmethod
    def of(cls, d: dict[str, Any]) -> SharedLink | None:
        """From :meth:`as_dict` (the site's digest cache); None when malformed."""
        try:
            link = cls(key=str(d["key"]), href=str(d["href"]), domain=str(d.get("domain") or ""),
                       title=d.get("title") if isinstance(d.get("title"), str) else None,
                       posts=int(d.get("posts") or 0), sharers=[str(h) for h in d.get("sharers") or []],
                       sessions=int(d.get("sessions") or 1))
        except (KeyError, TypeError, ValueError):
            return None
        # the cache is a file in the site folder: its hrefs pass the same rule again
        href = link_href(link.href)
        if href is None or canonical_url(href) != link.key:
            return None
        link.href = href
        return link


def _collect(posts: Iterable[SessionPost], eligible: set[str] | None,
             titles: dict[str, str] | None = None) -> list[SharedLink]:
    found: dict[str, SharedLink] = {}
    for p in posts:
        if p.post.is_repost or p.deleted:
            continue
        for url in p.links:
            key = canonical_url(url)
            href = link_href(url)
            if key is None or href is None or (eligible is not None and key not in eligible):
                continue
            link = found.get(key)
            if link is None:
                link = found[key] = SharedLink(key=key, href=href, domain=url_domain(href), title=None)
            link.title = link.title or (titles or {}).get(url)  # any spelling's title (links.title)
            link.posts += 1
            if p.handle not in link.sharers:
                link.sharers.append(p.handle)
    return sorted(found.values(), key=lambda link: (-link.posts, -len(link.sharers), link.key))


def eligible_links(view: SessionView) -> set[str] | None:
    """The canonical URLs the statistics count as shared in this session
    (None without statistics: every web link counts)."""
    if not view.stats:
        return None
    return {k for k in (canonical_url(x.get("url")) for x in view.stats.get("links") or [] if isinstance(x, dict))
            if k}


def session_links(view: SessionView, eligible: set[str] | None = None) -> list[SharedLink]:
    """Every link shared in the session, once each, most shared first."""
    return _collect(view.posts, eligible if eligible is not None else eligible_links(view), view.link_titles)


def question_links(view: SessionView, eligible: set[str] | None = None) -> dict[int, list[SharedLink]]:
    """By question number: the links of the question's post, its answers and
    the replies to them."""
    allowed = eligible if eligible is not None else eligible_links(view)
    out: dict[int, list[SharedLink]] = {}
    for q in view.questions:
        posts: list[SessionPost] = [q.post] if q.post is not None else []
        for a in q.answers:
            posts.append(a.post)
            posts.extend(p for _, p in a.thread)
        links = _collect(sorted(posts, key=lambda p: time_key(p.post.created_at)), allowed,  # first sharer first
                         view.link_titles)
        if links:
            out[q.number] = links
    return out


def merge(per_session: Iterable[list[SharedLink]]) -> list[SharedLink]:
    """A hashtag's digest: the links of its sessions, once each, shared in
    the most sessions (then by the most posts) first."""
    found: dict[str, SharedLink] = {}
    for links in per_session:
        for link in links:
            got = found.get(link.key)
            if got is None:
                found[link.key] = SharedLink(link.key, link.href, link.domain, link.title, link.posts,
                                             list(link.sharers), 1)
                continue
            got.posts += link.posts
            got.sessions += 1
            got.title = got.title or link.title
            got.sharers.extend(h for h in link.sharers if h not in got.sharers)
    return sorted(found.values(), key=lambda link: (-link.sessions, -link.posts, -len(link.sharers), link.key))
