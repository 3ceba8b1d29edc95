"""X API v2: raw pages (twarc2 JSONL, plain API responses, stream lines)
and twarc2 flattened JSONL (sources.md §1.7, §1.11, §2.1, §2.2).

The August 2026 OpenAPI renames some fields (``referenced_posts``,
``note_post``, ``repost_count``…); both spellings are read (§1.10).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

from ..models import Author, Media, Post
from ..timeutil import iso_from_iso
from . import Context, Format, Skip, register


def _refs(tweet: dict) -> list[dict]:
    return tweet.get("referenced_tweets") or tweet.get("referenced_posts") or []


def _ref_id(tweet: dict, kind: str) -> str | None:
    for ref in _refs(tweet):
        if ref.get("type") == kind:
            return str(ref["id"])
    return None


def unescape_x(text: str) -> str:
    """X escapes only &, < and > in post text; undo exactly that (a literal
    "&amp;" typed by the author arrives as "&amp;amp;")."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _int(v: Any) -> int | None:
    if v is None or v == "":
        return None
    return v if type(v) is int else int(v)


def user_to_author(user: dict | None, fallback_id: str | None) -> Author | None:
    if not user:
        if fallback_id is None:
            return None
        return Author(id=str(fallback_id), platform="x")
    username = user.get("username")
    return Author(
        id=str(user.get("id") or fallback_id),
        platform="x",
        handle=username,
        name=user.get("name"),
        avatar_url=user.get("profile_image_url"),
        url=f"https://x.com/{username}" if username else None,
    )


# X sends times as 2024-05-13T19:05:12.000Z, already the archive's format:
# only other shapes go through the (slower) general parser.
_ARCHIVE_TIME = re.compile(r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d\.\d{3}Z")


def _time(value: Any) -> str:
    if type(value) is str and len(value) == 24 and _ARCHIVE_TIME.fullmatch(value):
        return value
    return iso_from_iso(value)


def tweet_to_post(
    tweet: dict,
    users: dict[str, dict],
    tweets: dict[str, dict],
    media: dict[str, dict],
    *,
    matched: bool,
    source: str,
    raw: Any = None,
) -> Post:
    """Map one v2 Tweet object (with the page's includes as lookups)."""
    tid = str(tweet["id"])
    if not tid.isdigit():
        raise Skip(f"post id {tid!r} is not a number")
    get = tweet.get
    author_id = get("author_id")
    author = user_to_author(get("author") or users.get(str(author_id)), author_id)
    note = get("note_tweet") or get("note_post") or {}
    text = note.get("text") or get("text") or ""
    entities = note.get("entities") or get("entities") or {}
    reply_to = quoted = retweeted = None
    for ref in get("referenced_tweets") or get("referenced_posts") or ():
        kind = ref.get("type")
        if kind == "replied_to":
            reply_to = reply_to or str(ref["id"])
        elif kind == "quoted":
            quoted = quoted or str(ref["id"])
        elif kind == "retweeted":
            retweeted = retweeted or str(ref["id"])
    if retweeted and tweets.get(retweeted, {}).get("text"):
        original = tweets[retweeted]
        orig_author = users.get(str(original.get("author_id")), {}).get("username")
        full = (original.get("note_tweet") or original.get("note_post") or {}).get("text") or original["text"]
        text = f"RT @{orig_author}: {full}" if orig_author else text
    reply_to_author = None
    if reply_to or get("in_reply_to_user_id"):
        reply_user = get("in_reply_to_user") or users.get(str(get("in_reply_to_user_id")))
        reply_to_author = (reply_user or {}).get("username") or get("in_reply_to_user_id")
    metrics = get("public_metrics") or {}
    hashtags = [h["tag"] for h in entities.get("hashtags") or () if h.get("tag")]
    mentions = [m["username"] for m in entities.get("mentions") or () if m.get("username")]
    links: list[str] = []
    for u in entities.get("urls") or ():
        if u.get("media_key"):
            continue
        link = u.get("unwound_url") or u.get("expanded_url") or u.get("url")
        if link and link not in links:
            links.append(link)
    post_media = []
    attachments = get("attachments")
    if attachments:
        media_objs = attachments.get("media")  # flattened form
        if media_objs is None:
            media_objs = [media[k] for k in attachments.get("media_keys") or () if k in media]
        for m in media_objs:
            url = m.get("url") or m.get("preview_image_url")
            if url:
                post_media.append(
                    Media(url=url, type=m.get("type"), alt=m.get("alt_text"),
                          preview_url=m.get("preview_image_url"))
                )
    handle = author.handle if author else None
    if "&" in text:
        text = unescape_x(text)
    conversation_id = get("conversation_id")
    return Post(
        id=tid,
        platform="x",
        source=source,
        created_at=_time(tweet["created_at"]),
        author=author,
        text=text,
        url=f"https://x.com/{handle}/status/{tid}" if handle else f"https://x.com/i/web/status/{tid}",
        reply_to_id=reply_to,
        reply_to_author=str(reply_to_author) if reply_to_author else None,
        root_id=str(conversation_id) if conversation_id else None,
        quote_of_id=quoted,
        is_repost=retweeted is not None,
        lang=get("lang"),
        like_count=_int(metrics.get("like_count")),
        repost_count=_int(metrics.get("retweet_count", metrics.get("repost_count"))),
        reply_count=_int(metrics.get("reply_count")),
        quote_count=_int(metrics.get("quote_count")),
        matched=matched,
        hashtags=hashtags,
        mentions=mentions,
        links=links,
        media=post_media,
        raw=raw if raw is not None else tweet,
    )


def _index(items: Iterable[dict] | None, key: str) -> dict[str, dict]:
    return {str(i[key]): i for i in items or [] if isinstance(i, dict) and key in i}


def normalize_page(page: dict, ctx: Context, source: str = "twarc2") -> Iterator[Post]:
    """One API v2 response page (or stream line): data + includes."""
    data = page.get("data")
    if data is None:
        return
    if isinstance(data, dict):
        data = [data]
    includes = page.get("includes") or {}
    users = _index(includes.get("users"), "id")
    tweets = _index(includes.get("tweets") or includes.get("posts"), "id")
    media = _index(includes.get("media"), "media_key")
    seen = set()
    for tweet in data:
        if "text" not in tweet and "created_at" not in tweet:
            raise Skip("page data holds no posts")
        post = tweet_to_post(tweet, users, tweets, media, matched=True, source=source)
        seen.add(post.id)
        yield post
    # Referenced posts (reply parents, quoted, retweeted originals) are
    # context: stored, but not as matches of the query.
    for tid, tweet in tweets.items():
        if tid in seen or "created_at" not in tweet:
            continue
        yield tweet_to_post(tweet, users, tweets, media, matched=False, source=source)


def normalize_flat(tweet: dict, ctx: Context) -> Iterator[Post]:
    """One flattened post: includes are inlined (author, referenced_tweets[])."""
    users: dict[str, dict] = {}
    tweets: dict[str, dict] = {}
    for ref in _refs(tweet):
        if ref.get("author"):
            users[str(ref["author"].get("id"))] = ref["author"]
        if ref.get("created_at"):
            tweets[str(ref["id"])] = ref
    yield tweet_to_post(tweet, users, tweets, {}, matched=True, source="twarc2")
    for tid, ref in tweets.items():
        if tid != str(tweet["id"]):
            context = {k: v for k, v in ref.items() if k != "type"}
            yield tweet_to_post(context, users, tweets, {}, matched=False, source="twarc2")


def _is_page(v: Any) -> bool:
    if not isinstance(v, dict) or "data" not in v:
        return False
    data = v["data"]
    item = data[0] if isinstance(data, list) and data else data
    return isinstance(item, dict) and "text" in item and "id" in item and "username" not in item


def _is_flat(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and "data" not in v
        and "text" in v
        and "id" in v
        and ("author_id" in v or "edit_history_tweet_ids" in v or "conversation_id" in v)
        and "id_str" not in v
        and "user" not in v
    )


def normalize(value: Any, ctx: Context) -> Iterator[Post]:
    if isinstance(value, dict) and "data" in value:
        yield from normalize_page(value, ctx)
    elif isinstance(value, dict) and ("__twarc" in value or "text" in value) and "id" in value:
        yield from normalize_flat(value, ctx)
    elif isinstance(value, dict) and ("errors" in value or "meta" in value):
        return  # a page with no results: nothing to import, not an error
    else:
        raise Skip("not an X API v2 page or post")


register(Format(
    name="twarc2",
    description="X API v2 pages / twarc2 JSONL (raw or flattened)",
    kind="json",
    sniff=lambda v: _is_page(v) or _is_flat(v),
    normalize=normalize,
))
