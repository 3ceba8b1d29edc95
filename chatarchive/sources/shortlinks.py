"""t.co links in X post text, replaced by the URLs the file holds.

X wraps every link in a post's text in ``https://t.co/…`` and sends the
real URL beside it (v2 ``entities.urls[].expanded_url``/``unwound_url``, v1.1
``entities.urls[].expanded_url`` and ``entities.media[]``).  Stored text
keeps t.co only where the file does not say what it stands for, so no
output depends on X's redirector (contract C3).  One rule for every X
format, applied when a post is normalized and, by migration
``m006_expand_short_links``, to text stored before (:func:`map_from_raw`).

Which URL: the unwound one (where the link finally leads) when the file
has it, else the expanded one; never a URL that is not http(s) (``safety``),
never another t.co.  Sheets that keep only the expanded URLs in a column
(twarc-csv's processed entities, the Twitter Archiver) pair them with the
t.co links in the order both appear, and only when the counts agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from ..urls import safe_url

SHORT_LINK = re.compile(r"https?://t\.co/[A-Za-z0-9]+", re.IGNORECASE)


def is_short(url: Any) -> bool:
    return isinstance(url, str) and SHORT_LINK.fullmatch(url.strip()) is not None


def _usable(url: Any) -> str | None:
    """An expansion worth putting in text: a web URL that is not t.co itself."""
    if not isinstance(url, str) or not url or is_short(url):
        return None
    return url if safe_url(url) is not None else None


def expand(text: str, links: dict[str, str]) -> str:
    """``text`` with each t.co link that ``links`` knows replaced."""
    if not links or "t.co/" not in text.lower():
        return text
    return SHORT_LINK.sub(lambda m: links.get(m.group(0)) or links.get(m.group(0).lower()) or m.group(0), text)


def add_entity(links: dict[str, str], short: Any, *candidates: Any) -> None:
    """Remember what ``short`` (a t.co URL) stands for: the first usable candidate."""
    if not is_short(short):
        return
    for c in candidates:
        url = _usable(c)
        if url:
            links.setdefault(short.strip(), url)
            return


def v2_entity_links(entities: Any, links: dict[str, str] | None = None) -> dict[str, str]:
    """The t.co -> URL map of X API v2 ``entities`` (a post's, or its note_tweet's)."""
    links = {} if links is None else links
    urls = entities.get("urls") if isinstance(entities, dict) else None
    for u in urls if isinstance(urls, list) else ():
        if isinstance(u, dict):
            add_entity(links, u.get("url"), u.get("unwound_url"), u.get("expanded_url"))
    return links


def v1_entity_links(*entity_dicts: Any, links: dict[str, str] | None = None) -> dict[str, str]:
    """The t.co -> URL map of v1.1 ``entities``/``extended_entities`` dicts
    (links and media; also what tweets.js and TAGS' entities_str hold)."""
    links = {} if links is None else links
    for entities in entity_dicts:
        if not isinstance(entities, dict):
            continue
        for key in ("urls", "media"):
            items = entities.get(key)
            for u in items if isinstance(items, list) else ():
                if isinstance(u, dict):
                    unwound = u.get("unwound")
                    unwound_url = unwound.get("url") if isinstance(unwound, dict) else None
                    add_entity(links, u.get("url"), unwound_url, u.get("expanded_url"))
    return links


def v1_status_links(status: Any, links: dict[str, str] | None = None) -> dict[str, str]:
    """Every t.co -> URL a v1.1 status holds: its own entities, those of
    extended_tweet, and those of the retweeted original (whose text a
    retweet's stored text is built from)."""
    links = {} if links is None else links
    todo = [status]
    while todo:
        s = todo.pop()
        if not isinstance(s, dict):
            continue
        ext = s.get("extended_tweet")
        ext = ext if isinstance(ext, dict) else {}
        v1_entity_links(ext.get("entities"), ext.get("extended_entities"), s.get("entities"),
                        s.get("extended_entities"), links=links)
        if isinstance(s.get("retweeted_status"), dict):
            todo.append(s["retweeted_status"])
    return links


def in_order(text: str, expansions: Iterable[Any]) -> dict[str, str]:
    """Pair the t.co links of ``text`` with ``expansions`` in the order both
    appear, when there are as many of each; else nothing (a guess would put
    a wrong link in the text)."""
    shorts = SHORT_LINK.findall(text) if "t.co/" in text.lower() else []
    given = [e for e in expansions if isinstance(e, str) and e.strip()]
    if not shorts or len(shorts) != len(given):
        return {}
    links: dict[str, str] = {}
    for short, url in zip(shorts, given):
        url = url.strip()
        if not _usable(url) and url.lower().startswith("pic.twitter.com/"):
            url = "https://" + url  # twarc-csv writes a photo's display form
        add_entity(links, short, url)
    return links


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def map_from_raw(fmt: str, raw: Any, text: str) -> dict[str, str]:
    """The t.co -> URL map a stored raw object of format ``fmt`` holds (for
    text stored before expansion; ``text`` is the stored text, for the
    formats that pair in order).  Unknown shapes give an empty map."""
    raw = _json(raw)
    if not isinstance(raw, dict):
        return {}
    if fmt == "twarc2":
        links = v2_entity_links(raw.get("entities"))
        note = raw.get("note_tweet") or raw.get("note_post")
        if isinstance(note, dict):
            v2_entity_links(note.get("entities"), links)
        return links
    if fmt == "twitter_v1":
        return v1_status_links(raw)
    if fmt == "tweets_js":
        tweet = raw.get("tweet") if isinstance(raw.get("tweet"), dict) else raw
        return v1_status_links(tweet)
    if fmt == "tags_csv":
        return v1_entity_links(_json(raw.get("entities_str")), _json(raw.get("extended_entities_str")))
    if fmt == "twarc_csv":
        return twarc_csv_links(raw, text)
    if fmt == "twitter_archiver":
        return archiver_links(raw, text)
    return {}


def twarc_csv_links(row: dict, text: str) -> dict[str, str]:
    """twarc-csv's ``entities.urls``: v2 entity objects (--no-process-entities)
    or the expanded URLs in text order (the default)."""
    value = _json(row.get("entities.urls"))
    if not isinstance(value, list):
        return {}
    if any(isinstance(u, dict) for u in value):
        return v2_entity_links({"urls": value})
    return in_order(text, value)


def archiver_links(row: dict, text: str) -> dict[str, str]:
    """The Twitter Archiver's ``Link(s)`` (then ``Media``) columns, paired
    with the text's t.co links in order when the counts agree."""
    def split(v: Any) -> list[str]:
        if not isinstance(v, str):
            return []
        return [u.strip().strip("\"'") for u in re.split(r"[\s,;|]+", v) if u.strip()]
    found = split(row.get("Link(s)") or row.get("Links"))
    media = split(row.get("Media"))
    return in_order(text, found) or in_order(text, found + media)
