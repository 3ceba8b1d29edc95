"""X API v2: raw pages (twarc2 JSONL, plain API responses, stream lines)
and twarc2 flattened JSONL (sources.md §1.7, §1.11, §2.1, §2.2).

The August 2026 OpenAPI renames some fields (``referenced_posts``,
``note_post``, ``repost_count``…); both spellings are read (§1.10).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import orjson

from ..models import Author, Media, Post
from ..timeutil import iso_from_iso
from .reading import Context, InputFile, Skip, is_jsonl, json_records, short_json_error
from .registry import Format, register


def _refs(tweet: dict) -> list[dict]:
    return tweet.get("referenced_tweets") or tweet.get("referenced_posts") or []


def x_post_url(handle: str | None, post_id: str) -> str:
    """The permalink of an X post (the handle-free form when the handle is unknown)."""
    return f"https://x.com/{handle}/status/{post_id}" if handle else f"https://x.com/i/web/status/{post_id}"


def x_profile_url(handle: str | None) -> str | None:
    return f"https://x.com/{handle}" if handle else None


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
        url=x_profile_url(username),
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
        url=x_post_url(handle, tid),
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


# --------------------------------------------------------------------------
# The fast path for JSONL files: a line is decoded with msgspec into small
# structs holding only the fields the mapping reads (the rest is skipped,
# not built), and each post's raw object is the exact slice of the line.
# This is several times cheaper than building the whole page as dicts and
# serializing every post again for the `raw` table, and matters on files of
# millions of posts.  Lines that do not fit (flattened posts, odd types) go
# through the dict path above, which stays the reference: tests check that
# both give the same posts.


class _S(msgspec.Struct, gc=False):
    pass


class _Ref(_S):
    type: str | None = None
    id: str | int | None = None


class _Tag(_S):
    tag: str | None = None


class _Mention(_S):
    username: str | None = None


class _Url(_S):
    url: str | None = None
    expanded_url: str | None = None
    unwound_url: str | None = None
    media_key: str | None = None


class _Entities(_S):
    hashtags: list[_Tag] | None = None
    mentions: list[_Mention] | None = None
    urls: list[_Url] | None = None


class _Note(_S):
    text: str | None = None
    entities: _Entities | None = None


class _Metrics(_S):
    like_count: Any = None
    retweet_count: Any = None
    repost_count: Any = None
    reply_count: Any = None
    quote_count: Any = None


class _Attachments(_S):
    media_keys: list[str] | None = None


class _User(_S):
    id: str | int | None = None
    username: str | None = None
    name: str | None = None
    profile_image_url: str | None = None


class _Tweet(_S):
    id: str | int
    text: str | None = None
    author_id: str | int | None = None
    created_at: str | None = None
    conversation_id: str | int | None = None
    lang: str | None = None
    in_reply_to_user_id: str | int | None = None
    referenced_tweets: list[_Ref] | None = None
    referenced_posts: list[_Ref] | None = None
    note_tweet: _Note | None = None
    note_post: _Note | None = None
    entities: _Entities | None = None
    public_metrics: _Metrics | None = None
    attachments: _Attachments | None = None
    author: _User | None = None
    in_reply_to_user: _User | None = None


class _Media(_S):
    media_key: str | None = None
    type: str | None = None
    url: str | None = None
    preview_image_url: str | None = None
    alt_text: str | None = None


class _Includes(_S):
    users: list[_User] | None = None
    tweets: list[msgspec.Raw] | None = None
    posts: list[msgspec.Raw] | None = None
    media: list[_Media] | None = None


class _Page(_S):
    data: msgspec.Raw = msgspec.Raw()  # empty when missing (Raw takes no Optional)
    includes: _Includes | None = None


_page_decoder = msgspec.json.Decoder(_Page)
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_tweet_decoder = msgspec.json.Decoder(_Tweet)


def _author_s(user: _User | None, fallback_id: Any) -> Author | None:
    if user is None:
        if fallback_id is None:
            return None
        return Author(id=str(fallback_id), platform="x")
    username = user.username
    return Author(
        id=str(user.id or fallback_id),
        platform="x",
        handle=username,
        name=user.name,
        avatar_url=user.profile_image_url,
        url=x_profile_url(username),
    )


def _struct_to_post(
    tweet: _Tweet,
    raw: str,
    users: dict[str, _User],
    tweets: dict[str, tuple[_Tweet, str]],
    media: dict[str, _Media],
    matched: bool,
) -> Post:
    """tweet_to_post for a decoded struct (same rules, same result)."""
    tid = str(tweet.id)
    if not tid.isdigit():
        raise Skip(f"post id {tid!r} is not a number")
    if tweet.created_at is None:
        raise KeyError("created_at")
    author_id = tweet.author_id
    author = _author_s(tweet.author or users.get(str(author_id)), author_id)
    note = tweet.note_tweet or tweet.note_post
    text = (note.text if note else None) or tweet.text or ""
    entities = (note.entities if note else None) or tweet.entities
    reply_to = quoted = retweeted = None
    for ref in tweet.referenced_tweets or tweet.referenced_posts or ():
        kind = ref.type
        if kind == "replied_to":
            reply_to = reply_to or str(ref.id)
        elif kind == "quoted":
            quoted = quoted or str(ref.id)
        elif kind == "retweeted":
            retweeted = retweeted or str(ref.id)
    if retweeted:
        original = tweets.get(retweeted)
        if original is not None and original[0].text:
            orig = original[0]
            orig_user = users.get(str(orig.author_id))
            orig_author = orig_user.username if orig_user else None
            orig_note = orig.note_tweet or orig.note_post
            full = (orig_note.text if orig_note else None) or orig.text
            text = f"RT @{orig_author}: {full}" if orig_author else text
    reply_to_author = None
    if reply_to or tweet.in_reply_to_user_id:
        reply_user = tweet.in_reply_to_user or users.get(str(tweet.in_reply_to_user_id))
        reply_to_author = (reply_user.username if reply_user else None) or tweet.in_reply_to_user_id
    hashtags: list[str] = []
    mentions: list[str] = []
    links: list[str] = []
    if entities is not None:
        if entities.hashtags:
            hashtags = [h.tag for h in entities.hashtags if h.tag]
        if entities.mentions:
            mentions = [m.username for m in entities.mentions if m.username]
        for u in entities.urls or ():
            if u.media_key:
                continue
            link = u.unwound_url or u.expanded_url or u.url
            if link and link not in links:
                links.append(link)
    post_media = []
    if tweet.attachments and tweet.attachments.media_keys:
        for k in tweet.attachments.media_keys:
            m = media.get(k)
            if m is not None:
                url = m.url or m.preview_image_url
                if url:
                    post_media.append(Media(url=url, type=m.type, alt=m.alt_text, preview_url=m.preview_image_url))
    handle = author.handle if author else None
    if "&" in text:
        text = unescape_x(text)
    metrics = tweet.public_metrics
    if metrics is not None:
        reposts = metrics.retweet_count if metrics.retweet_count is not None else metrics.repost_count
        counts = (_int(metrics.like_count), _int(reposts), _int(metrics.reply_count), _int(metrics.quote_count))
    else:
        counts = (None, None, None, None)
    conversation_id = tweet.conversation_id
    return Post(
        id=tid,
        platform="x",
        source="twarc2",
        created_at=_time(tweet.created_at),
        author=author,
        text=text,
        url=x_post_url(handle, tid),
        reply_to_id=reply_to,
        reply_to_author=str(reply_to_author) if reply_to_author else None,
        root_id=str(conversation_id) if conversation_id else None,
        quote_of_id=quoted,
        is_repost=retweeted is not None,
        lang=tweet.lang,
        like_count=counts[0],
        repost_count=counts[1],
        reply_count=counts[2],
        quote_count=counts[3],
        matched=matched,
        hashtags=hashtags,
        mentions=mentions,
        links=links,
        media=post_media,
        raw=raw,
    )


class _NotFast(Exception):
    """The line does not fit the structs: use the dict path."""


def _fast_page(line: bytes | bytearray) -> list[Post]:
    """The posts of one raw-page JSONL line; _NotFast when it is not one."""
    try:
        page = _page_decoder.decode(line)
        data = bytes(page.data)
        if not data or data == b"null":
            raise _NotFast
        items = _raw_list_decoder.decode(data) if data[:1] == b"[" else [page.data]
        decoded = [(_tweet_decoder.decode(r), r) for r in items]
        includes = page.includes
        users: dict[str, _User] = {}
        media: dict[str, _Media] = {}
        context: dict[str, tuple[_Tweet, str]] = {}
        if includes is not None:
            for u in includes.users or ():
                if u.id is not None:
                    users[str(u.id)] = u
            for m in includes.media or ():
                if m.media_key is not None:
                    media[m.media_key] = m
            for r in includes.tweets or includes.posts or ():
                t = _tweet_decoder.decode(r)
                context[str(t.id)] = (t, bytes(r).decode())
    except msgspec.DecodeError:
        raise _NotFast from None
    posts = []
    seen = set()
    for tweet, r in decoded:
        if tweet.text is None and tweet.created_at is None:
            raise Skip("page data holds no posts")
        post = _struct_to_post(tweet, bytes(r).decode(), users, context, media, True)
        seen.add(post.id)
        posts.append(post)
    for tid, (tweet, raw) in context.items():
        if tid in seen or tweet.created_at is None:
            continue
        posts.append(_struct_to_post(tweet, raw, users, context, media, False))
    return posts


def records(f: InputFile, ctx: Context) -> Iterator[tuple[str, Any]]:
    """JSONL lines as bytes (decoded by normalize); documents as values."""
    if not is_jsonl(f):
        yield from json_records(f, ctx)
        return
    for n, line in enumerate(f.lines(), 1):
        if n == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if line.strip():
            yield str(n), line


def normalize(value: Any, ctx: Context) -> Iterator[Post]:
    if isinstance(value, (bytes, bytearray)):
        try:
            yield from _fast_page(value)
            return
        except _NotFast:
            pass
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as e:
            raise Skip(f"invalid JSON ({short_json_error(e, value)})") from None
        if isinstance(value, list):  # a compact one-line array of posts or pages
            for item in value:
                yield from normalize(item, ctx)
            return
    if isinstance(value, dict) and "data" in value:
        yield from normalize_page(value, ctx)
    elif isinstance(value, dict) and ("__twarc" in value or "text" in value) and "id" in value:
        yield from normalize_flat(value, ctx)
    elif isinstance(value, dict) and ("errors" in value or "meta" in value):
        return  # a page with no results: nothing to import, not an error
    else:
        raise Skip("not an X API v2 page or post")


FORMAT = register(Format(
    name="twarc2",
    description="X API v2 pages / twarc2 JSONL (raw or flattened)",
    kind="json",
    sniff=lambda v: _is_page(v) or _is_flat(v),
    normalize=normalize,
    records=records,
))
