"""X/Twitter API v1.1 statuses (sources.md §3): twarc v1 JSONL (one status
per line), a JSON array of statuses, the search response
``{statuses, search_metadata}``, and Enterprise "native" JSON.

The helpers here (entities, links, status URLs) are shared by the other
v1-derived formats: the account archive (tweets_js) and TAGS (csv_sheets).
Fields are read by their type (``sources.fields``); an unreadable or
out-of-range ``created_at`` gives way to the time in the post id; t.co
links in the text are replaced by the entities' URLs (``sources.shortlinks``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ..models import Author, Media, Post
from ..timeutil import LEGACY_FORMAT, parse_iso, snowflake_time
from ..urls import safe_url
from .detect import sample_of
from .fields import count, ident, nonempty, obj, pick_time, seq, text
from .reading import Context, InputFile, Skip, each_item, json_records
from .registry import Format, register
from .shortlinks import expand, v1_status_links
from .twarc2 import unescape_x, user_to_author, x_post_url

SOURCE = "twitter_v1"

# A permalink of a post: twitter.com/x.com, with or without www./mobile.,
# the old "#!/" and "statuses" forms, and i/web/status.  Media self-links
# (…/status/ID/photo/1) are not posts being quoted: the trailing part must
# be empty or a query.
STATUS_URL = re.compile(
    r"^https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/(?:#!/)?(?:i/web|\w{1,50})/status(?:es)?/(\d{1,20})/?(?:[?#].*)?$",
    re.IGNORECASE,
)
_MEDIA_SELF_LINK = re.compile(
    r"^https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/(\w{1,50})/status(?:es)?/(\d{1,20})/(?:photo|video)/\d",
    re.IGNORECASE,
)
# v1.1 stream lines that are not posts: skipped silently, they are not errors.
STREAM_MESSAGES = {"delete", "limit", "scrub_geo", "status_withheld", "user_withheld",
                   "disconnect", "warning", "event", "friends", "friends_str"}


def status_id_from_url(url: str | None) -> str | None:
    """The post id in a permalink of a post (not a media self-link), else None."""
    if not url:
        return None
    m = STATUS_URL.match(url.strip())
    return m.group(1) if m else None


def quote_from_links(links: list[str], own_id: str) -> str | None:
    """Heuristic for sources without quote fields: X renders a post whose
    links include another post's permalink as a quote of that post; the
    last such link wins (X uses the last one)."""
    found = None
    for link in links:
        sid = status_id_from_url(link)
        if sid and sid != own_id:
            found = sid
    return found


def drop_self_links(links: list[str], own_id: str) -> list[str]:
    """A truncated post links to itself ("… https://t.co/x" -> i/web/status/ID):
    that is not a link the author shared."""
    return [link for link in links if status_id_from_url(link) != own_id]


_SHORTENER_HOSTS = ("t.co", "www.t.co")


def is_web_link(url: Any) -> bool:
    """A link worth storing: a web URL by the one rule (``urls.safe_url``:
    never a javascript:/data: link a page could run), and not a t.co
    shortlink, since the archive stores the expanded URLs."""
    normalized = safe_url(url)
    if normalized is None:
        return False
    host = normalized.split("/", 3)[2].rsplit("@", 1)[-1].lower()
    return host not in _SHORTENER_HOSTS


def parse_legacy_or_iso(value: str) -> datetime:
    """The legacy 'Mon May 13 19:05:12 +0000 2024' form; ISO as a fallback
    (some re-serialised files use it).  ValueError when neither."""
    try:
        return datetime.strptime(value.strip(), LEGACY_FORMAT)
    except ValueError:
        return parse_iso(value)


def created_at(value: Any, post_id: str, warnings: list[str]) -> str | None:
    """A v1.1 post's time, or the time in its id, or None (with a warning)."""
    return pick_time([("created_at", value)], warnings, fallback=("the post id", snowflake_time(post_id)),
                     parse=parse_legacy_or_iso)


def full_text(status: dict) -> str:
    """extended_tweet.full_text, else full_text, else text (twarc's order)."""
    ext = obj(status.get("extended_tweet"))
    return (nonempty(ext.get("full_text")) or nonempty(status.get("full_text"))
            or nonempty(status.get("text")) or "")


def status_entities(status: dict) -> tuple[dict, dict]:
    """(entities, extended_entities), preferring the extended_tweet copies."""
    ext = obj(status.get("extended_tweet"))
    entities = obj(ext.get("entities")) or obj(status.get("entities"))
    extended = obj(ext.get("extended_entities")) or obj(status.get("extended_entities"))
    return entities, extended


def entity_lists(entities: dict, extended: dict | None = None
                 ) -> tuple[list[str], list[str], list[str], list[Media]]:
    """hashtags, mentions, expanded links and media from v1 entities."""
    entities = obj(entities)
    hashtags = _unique(h.get("text") for h in seq(entities.get("hashtags")) if isinstance(h, dict))
    mentions = _unique(m.get("screen_name") for m in seq(entities.get("user_mentions"))
                       if isinstance(m, dict))
    links: list[str] = []
    for u in seq(entities.get("urls")):
        if not isinstance(u, dict):
            continue
        unwound = u.get("unwound")
        link = (unwound.get("url") if isinstance(unwound, dict) else None) or u.get("expanded_url")
        if isinstance(link, str) and is_web_link(link) and link not in links:
            links.append(link)
    media_items = seq(obj(extended).get("media")) or seq(entities.get("media"))
    media: list[Media] = []
    seen: set[str] = set()
    for m in media_items:
        if not isinstance(m, dict):
            continue
        url = m.get("media_url_https") or m.get("media_url")
        if not isinstance(url, str) or not is_web_link(url) or url in seen:
            continue
        seen.add(url)
        kind = text(m.get("type"))
        # Same URLs as the v2 importer (photo url / video preview), so one
        # post read from both formats has one media row.
        media.append(Media(url=url, type=kind, alt=nonempty(m.get("ext_alt_text")),
                           preview_url=url if kind in ("video", "animated_gif") else None))
    return hashtags, mentions, links, media


def _unique(values) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, str) and v and v not in out:
            out.append(v)
    return out


def _id(v: Any) -> str | None:
    """A numeric X id (text or integer), else None."""
    s = ident(v)
    return s if s is not None and s.isdigit() else None


def v1_user_to_author(user: Any) -> Author | None:
    if not isinstance(user, dict):
        return None
    uid = _id(user.get("id_str")) or _id(user.get("id"))
    handle = nonempty(user.get("screen_name"))
    if uid is None:
        if not handle:
            return None
        uid = f"x:@{handle}"
    return user_to_author(
        {"id": uid, "username": handle, "name": user.get("name"),
         "profile_image_url": nonempty(user.get("profile_image_url_https")) or user.get("profile_image_url"),
         "protected": user.get("protected")},
        uid,
    )


def status_to_post(
    status: dict,
    *,
    matched: bool,
    source: str = SOURCE,
    author: Author | None = None,
    raw: Any = None,
) -> Post:
    """Map one v1.1 status object (sources.md §3.3).  ``author`` overrides
    the ``user`` object (the account archive has none)."""
    if not isinstance(status, dict):
        raise Skip("not a status object")
    tid = _id(status.get("id_str")) or _id(status.get("id"))
    if tid is None:
        raise Skip(f"post id {status.get('id_str', status.get('id'))!r} is not a number")
    if author is None:
        author = v1_user_to_author(status.get("user"))
    warnings: list[str] = []
    entities, extended = status_entities(status)
    hashtags, mentions, links, media = entity_lists(entities, extended)
    body = full_text(status)
    original = status.get("retweeted_status")
    if isinstance(original, dict):
        # The top-level text of a retweet is truncated; rebuild it from the
        # original, which is complete.
        orig_user = nonempty(obj(original.get("user")).get("screen_name"))
        if orig_user:
            body = f"RT @{orig_user}: {full_text(original)}"
        o_tags, o_mentions, o_links, o_media = entity_lists(*status_entities(original))
        hashtags = _unique(hashtags + o_tags)
        mentions = _unique(mentions + o_mentions)
        links = _unique(links + o_links)
        urls = {m.url for m in media}
        media = media + [m for m in o_media if m.url not in urls]
    links = drop_self_links(links, tid)
    reply_to = _id(status.get("in_reply_to_status_id_str")) or _id(status.get("in_reply_to_status_id"))
    reply_to_author = nonempty(status.get("in_reply_to_screen_name")) or _id(
        status.get("in_reply_to_user_id_str")) or _id(status.get("in_reply_to_user_id"))
    if not reply_to:
        reply_to_author = None
    handle = author.handle if author else None
    return Post(
        id=tid,
        platform="x",
        source=source,
        created_at=created_at(status.get("created_at"), tid, warnings),
        author=author,
        text=expand(unescape_x(body), v1_status_links(status)),
        url=x_post_url(handle, tid),
        reply_to_id=reply_to,
        reply_to_author=reply_to_author,
        # v1.1 has no conversation id: a post that replies to nothing is its
        # own root; for replies analysis walks the chain.
        root_id=None if reply_to else tid,
        quote_of_id=_id(status.get("quoted_status_id_str")) or _id(status.get("quoted_status_id")),
        is_repost=isinstance(original, dict),
        lang=nonempty(status.get("lang")),
        like_count=count(status.get("favorite_count"), "favorite_count", warnings),
        repost_count=count(status.get("retweet_count"), "retweet_count", warnings),
        reply_count=count(status.get("reply_count"), "reply_count", warnings),
        quote_count=count(status.get("quote_count"), "quote_count", warnings),
        matched=matched,
        hashtags=hashtags,
        mentions=mentions,
        links=links,
        media=media,
        raw=raw if raw is not None else status,
        warnings=warnings,
    )


def status_to_posts(status: dict, *, source: str = SOURCE) -> Iterator[Post]:
    """A status and the posts embedded in it: the retweeted original and the
    quoted post (each possibly quoting another) are context, matched=False."""
    first = status_to_post(status, matched=True, source=source)
    yield first
    seen = {first.id}
    stack = [status]
    while stack:
        current = stack.pop()
        for key in ("retweeted_status", "quoted_status"):
            inner = current.get(key)
            if not isinstance(inner, dict) or "created_at" not in inner:
                continue
            iid = _id(inner.get("id_str")) or _id(inner.get("id"))
            if iid is None or iid in seen:
                continue
            seen.add(iid)
            try:
                yield status_to_post(inner, matched=False, source=source)
            except Skip:
                continue  # a broken embedded copy costs itself, not the status
            stack.append(inner)


def is_status(v: Any) -> bool:
    """A v1.1 status: has id_str and a v1 text field (a v2 post has neither
    id_str nor user; a v1 user object has no text)."""
    return (
        isinstance(v, dict)
        and "id_str" in v
        and "created_at" in v
        and ("full_text" in v or "text" in v or "extended_tweet" in v)
        and "data" not in v
        and "author_id" not in v
    )


def _sniff(value: Any) -> bool:
    if isinstance(value, dict) and isinstance(value.get("statuses"), list):
        first = sample_of(value["statuses"])
        return first is None or is_status(first)
    return is_status(sample_of(value))


def normalize(value: Any, ctx: Context | None = None) -> Iterator[Post]:
    """One record: a status, a list of statuses, or a search response."""
    if isinstance(value, list):
        yield from _each(value, ctx)
    elif isinstance(value, dict) and isinstance(value.get("statuses"), list):
        yield from _each(value["statuses"], ctx)
    elif isinstance(value, dict) and STREAM_MESSAGES & value.keys() and "id_str" not in value:
        return  # a stream control message (delete, limit…): not a post, not an error
    elif is_status(value):
        yield from status_to_posts(value)
    else:
        raise Skip("not a Twitter v1.1 status")


def _each(items: list, ctx: Context | None) -> Iterator[Post]:
    if ctx is None:  # called as a plain function: every item must be good
        for item in items:
            yield from normalize(item, ctx)
        return

    def name(i: int, item: Any) -> str:
        sid = (_id(item.get("id_str")) or _id(item.get("id"))) if isinstance(item, dict) else None
        return f"status {i} (id {sid})" if sid else f"status {i}"

    yield from each_item(ctx, items, name, lambda item: normalize(item, ctx))


def records(f: InputFile, ctx: Context) -> Iterator[tuple[str, Any]]:
    """JSON records, with a search response split into its statuses so that
    one bad status costs that status, not the page."""
    for loc, value in json_records(f, ctx):
        if isinstance(value, dict) and isinstance(value.get("statuses"), list):
            for i, status in enumerate(value["statuses"], 1):
                yield f"{loc} status {i}", status
        else:
            yield loc, value


FORMAT = register(Format(
    name="twitter_v1",
    description="Twitter API v1.1 statuses (JSONL, JSON array or search response)",
    kind="json",
    sniff=_sniff,
    normalize=normalize,
    records=records,
))
