"""Atom feeds of the site: ``feed.xml`` (every session with a page, newest
first) and ``feeds/TAG.xml`` per hashtag, each entry linking the recap with
its summary; and the Open Graph / Twitter card tags of a session page.

Links are absolute with ``--base-url`` (what feed readers and link previews
need); without it they are relative to the feed (readers resolve them
against the feed's own address) and ``og:url`` is left out.
"""

from __future__ import annotations

import hashlib
from typing import Any
from xml.etree import ElementTree as ET

from ..errors import ChatArchiveError
from ..urls import safe_url
from .digest import SessionDigest

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 50


def check_base_url(base_url: str | None) -> str | None:
    """``--base-url`` as the site uses it (ending in "/"); a clear error when
    it is not an http(s) URL."""
    if base_url is None or base_url == "":
        return None
    safe = safe_url(base_url)
    if safe is None or "?" in safe or "#" in safe:
        raise ChatArchiveError(f"--base-url {base_url}: not an http(s) address of the site's folder "
                               "(like https://example.org/chats/)")
    return safe if safe.endswith("/") else safe + "/"


def absolute(base_url: str | None, rel: str, prefix: str = "") -> str:
    """A page of the site from a page at ``prefix`` ("" or "../"): absolute with a base URL."""
    return base_url + rel if base_url else prefix + rel


def summary(d: SessionDigest) -> str:
    """One line about a session: posts, people, questions and the most answered one."""
    parts = [f"{d.posts:,} posts", f"{len(d.people):,} people"]
    if d.questions:
        parts.append(f"{len(d.questions)} questions")
    text = ", ".join(parts) + "."
    top = top_question(d)
    if top:
        text += f" Most answered: {top}"
    return text


def top_question(d: SessionDigest) -> str | None:
    best = sorted(d.questions, key=lambda q: (-q.answers, q.number))
    return best[0].text if best and best[0].answers else (best[0].text if best else None)


def _updated(start: str) -> str:
    """An RFC 3339 time from the archive's ISO time ("2026-11-18T20:05:00.000Z")."""
    if len(start) >= 19:
        return start[:19] + "Z"
    return "1970-01-01T00:00:00Z"


def atom_feed(*, title: str, feed_rel: str, site_rel: str, base_url: str | None,
              entries: list[tuple[SessionDigest, dict[str, Any]]]) -> str:
    """An Atom feed (RFC 4287): ``entries`` are (digest, session row), any
    order (newest first in the feed); links relative to ``feed_rel``'s folder
    without a base URL."""
    prefix = "../" * feed_rel.count("/")
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ordered = sorted(entries, key=lambda e: (e[0].start, e[0].id), reverse=True)[:FEED_ENTRIES]
    ET.SubElement(feed, f"{{{ATOM}}}title").text = title
    feed_id = absolute(base_url, feed_rel) if base_url else "tag:chatarchive," + hashlib.sha1(
        (title + feed_rel).encode()).hexdigest()[:16] + ":" + feed_rel
    ET.SubElement(feed, f"{{{ATOM}}}id").text = feed_id
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _updated(ordered[0][0].start) if ordered else _updated("")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=absolute(base_url, feed_rel, prefix))
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=absolute(base_url, site_rel, prefix))
    ET.SubElement(ET.SubElement(feed, f"{{{ATOM}}}author"), f"{{{ATOM}}}name").text = title
    ET.SubElement(feed, f"{{{ATOM}}}generator").text = "chatarchive"
    for d, row in ordered:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}title").text = row.get("title") or d.start[:10]
        href = absolute(base_url, row["page"], prefix)
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=href)
        # a stable id whatever the address: the session's hashtag and start
        ET.SubElement(entry, f"{{{ATOM}}}id").text = (
            f"tag:chatarchive,{(d.start or '1970-01-01')[:10]}:{d.hashtag.lower() or 'chat'}/{d.id}")
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = _updated(d.start)
        ET.SubElement(entry, f"{{{ATOM}}}published").text = _updated(d.start)
        ET.SubElement(entry, f"{{{ATOM}}}summary").text = summary(d)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"


def og_tags(*, title: str, description: str, page: str, card: str, base_url: str | None) -> dict[str, Any]:
    """The Open Graph and Twitter card values of a session page (at ``page``,
    its card at ``card``, both from the site's root)."""
    return {"title": title, "description": description,
            "image": absolute(base_url, card, "../"), "url": base_url + page if base_url else None}


SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def sitemap_xml(base_url: str, pages: list[str]) -> str:
    """``sitemap.xml``: every page of the site at its absolute address (a
    sitemap needs them, so it is written only with ``--base-url``), in a
    stable order so an unchanged site leaves it untouched."""
    root = ET.Element(f"{{{SITEMAP_NS}}}urlset")
    for rel in sorted(pages, key=lambda p: (p != "index.html", p)):
        ET.SubElement(ET.SubElement(root, f"{{{SITEMAP_NS}}}url"), f"{{{SITEMAP_NS}}}loc").text = absolute(base_url, rel)
    ET.register_namespace("", SITEMAP_NS)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
