"""X API v2: raw pages (twarc2 JSONL, plain API responses, stream lines)
and twarc2 flattened JSONL (sources.md §1.7, §1.11, §2.1, §2.2).

The August 2026 OpenAPI renames some fields (``referenced_posts``,
``note_post``, ``repost_count``…); both spellings are read (§1.10).

Every field is read by its type (``sources.fields``); one bad post of a
page costs that post only (``reading.each_item``).  A post whose
``created_at`` is unreadable or outside the archive's range takes the time
its id encodes (X ids are snowflakes), else is stored without one.  t.co
links in the text are replaced by the URLs the entities hold
(``sources.shortlinks``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import orjson

from ..models import Author, Media, Post
from ..timeutil import EARLIEST_ISO, latest_iso, snowflake_time
from .fields import MAX_COUNT, count, ident, link_title, nonempty, obj, pick_time, seq, text
from .reading import (
    Context,
    InputFile,
    Overlong,
    Skip,
    each_item,
    is_jsonl,
    json_records,
    overlong_skip,
    short_json_error,
)
from .registry import Format, register
from .shortlinks import add_entity, expand, v2_entity_links


def _refs(tweet: dict) -> list[dict]:
    return [r for r in seq(tweet.get("referenced_tweets") or tweet.get("referenced_posts")) if isinstance(r, dict)]


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


def user_to_author(user: Any, fallback_id: Any) -> Author | None:
    """An X author from a v2 user object (or only the author id)."""
    user = obj(user)
    uid = ident(user.get("id")) or ident(fallback_id)
    if uid is None:
        return None
    username = nonempty(user.get("username"))
    return Author(
        id=uid,
        platform="x",
        handle=username,
        name=text(user.get("name")),
        avatar_url=nonempty(user.get("profile_image_url")),
        url=x_profile_url(username),
        unlisted=protected if isinstance(protected := user.get("protected"), bool) else None,
    )


def post_time(value: Any, post_id: str, warnings: list[str]) -> str | None:
    """An X post's time: ``created_at`` when it is a real time, else the
    time its (snowflake) id encodes, else None; ``warnings`` says which."""
    if type(value) is str and len(value) == 24 and _ARCHIVE_TIME.fullmatch(value) and (
            EARLIEST_ISO <= value <= latest_iso()):
        return value  # X's own format, in range: nearly every post
    return pick_time([("created_at", value)], warnings, fallback=("the post id", snowflake_time(post_id)))


# X sends times as 2024-05-13T19:05:12.000Z, already the archive's format:
# only other shapes go through the (slower) general parser.
_ARCHIVE_TIME = re.compile(r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d\.\d{3}Z")


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
    if not isinstance(tweet, dict):
        raise Skip("a post is not a JSON object")
    get = tweet.get
    tid = ident(get("id"))
    if tid is None or not tid.isdigit():
        raise Skip(f"post id {str(get('id'))[:40]!r} is not a number")
    warnings: list[str] = []
    author_id = get("author_id")
    author = user_to_author(get("author") or users.get(str(ident(author_id))), author_id)
    note = obj(get("note_tweet") or get("note_post"))
    body = nonempty(note.get("text")) or text(get("text")) or ""
    entities = obj(note.get("entities")) or obj(get("entities"))
    links_map = v2_entity_links(entities)
    if note:
        v2_entity_links(get("entities"), links_map)
    reply_to = quoted = retweeted = None
    for ref in _refs(tweet):
        kind, rid = ref.get("type"), ident(ref.get("id"))
        if rid is None:
            continue
        if kind == "replied_to":
            reply_to = reply_to or rid
        elif kind == "quoted":
            quoted = quoted or rid
        elif kind == "retweeted":
            retweeted = retweeted or rid
    original = obj(tweets.get(retweeted)) if retweeted else {}
    if nonempty(original.get("text")):
        orig_author = nonempty(obj(users.get(str(ident(original.get("author_id"))))).get("username"))
        orig_note = obj(original.get("note_tweet") or original.get("note_post"))
        full = nonempty(orig_note.get("text")) or original["text"]
        if orig_author:
            body = f"RT @{orig_author}: {full}"
            v2_entity_links(orig_note.get("entities"), links_map)
            v2_entity_links(original.get("entities"), links_map)
    reply_to_author = None
    if reply_to or get("in_reply_to_user_id"):
        reply_user = obj(get("in_reply_to_user")) or obj(users.get(str(ident(get("in_reply_to_user_id")))))
        reply_to_author = nonempty(reply_user.get("username")) or ident(get("in_reply_to_user_id"))
    metrics = obj(get("public_metrics"))
    hashtags = [t for h in seq(entities.get("hashtags")) if (t := nonempty(obj(h).get("tag")))]
    mentions = [m for u in seq(entities.get("mentions")) if (m := nonempty(obj(u).get("username")))]
    links: list[str] = []
    titles: dict[str, str] = {}
    for u in seq(entities.get("urls")):
        u = obj(u)
        if u.get("media_key"):
            continue
        link = nonempty(u.get("unwound_url")) or nonempty(u.get("expanded_url")) or nonempty(u.get("url"))
        if link and link not in links:
            links.append(link)
        if link and (title := link_title(u.get("title"))):
            titles.setdefault(link, title)
    post_media = []
    attachments = obj(get("attachments"))
    if attachments:
        media_objs = attachments.get("media")  # flattened form
        if not isinstance(media_objs, list):
            media_objs = [media[k] for k in seq(attachments.get("media_keys")) if isinstance(k, str) and k in media]
        for item in media_objs:
            medium = obj(item)
            url = nonempty(medium.get("url")) or nonempty(medium.get("preview_image_url"))
            if url:
                post_media.append(
                    Media(url=url, type=text(medium.get("type")), alt=text(medium.get("alt_text")),
                          preview_url=nonempty(medium.get("preview_image_url")))
                )
    handle = author.handle if author else None
    if "&" in body:
        body = unescape_x(body)
    body = expand(body, links_map)
    conversation_id = ident(get("conversation_id"))
    reposts = metrics.get("retweet_count", metrics.get("repost_count"))
    return Post(
        id=tid,
        platform="x",
        source=source,
        created_at=post_time(get("created_at"), tid, warnings),
        author=author,
        text=body,
        url=x_post_url(handle, tid),
        reply_to_id=reply_to,
        reply_to_author=reply_to_author,
        root_id=conversation_id,
        quote_of_id=quoted,
        is_repost=retweeted is not None,
        lang=nonempty(get("lang")),
        like_count=count(metrics.get("like_count"), "like_count", warnings),
        repost_count=count(reposts, "repost_count", warnings),
        reply_count=count(metrics.get("reply_count"), "reply_count", warnings),
        quote_count=count(metrics.get("quote_count"), "quote_count", warnings),
        matched=matched,
        hashtags=hashtags,
        mentions=mentions,
        links=links,
        link_titles=titles,
        media=post_media,
        raw=raw if raw is not None else tweet,
        warnings=warnings,
    )


def _post_name(i: int, tweet: Any) -> str:
    """How a message names a page's post: "post 3 (id 17…)"."""
    tid = ident(tweet.get("id")) if isinstance(tweet, dict) else ident(getattr(tweet, "id", None))
    return f"post {i} (id {tid})" if tid else f"post {i}"


def _index(items: Any, key: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in seq(items):
        if isinstance(i, dict):
            k = ident(i.get(key))
            if k is not None:
                out[k] = i
    return out


def normalize_page(page: dict, ctx: Context, source: str = "twarc2") -> Iterator[Post]:
    """One API v2 response page (or stream line): data + includes.  A bad
    post costs itself only (its reason goes to ``ctx.problems``)."""
    data = page.get("data")
    if data is None:
        return
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise Skip("page data is neither a list of posts nor a post")
    includes = obj(page.get("includes"))
    users = _index(includes.get("users"), "id")
    tweets = _index(includes.get("tweets") or includes.get("posts"), "id")
    media = _index(includes.get("media"), "media_key")
    seen = set()

    def one(tweet: Any) -> list[Post]:
        if not isinstance(tweet, dict) or ("text" not in tweet and "created_at" not in tweet):
            raise Skip("not a post (no text, no created_at)")
        post = tweet_to_post(tweet, users, tweets, media, matched=True, source=source)
        seen.add(post.id)
        return [post]

    yield from each_item(ctx, data, _post_name, one)

    # Referenced posts (reply parents, quoted, retweeted originals) are
    # context: stored, but not as matches of the query.
    def context(tweet: dict) -> list[Post]:
        if ident(tweet.get("id")) in seen or tweet.get("created_at") is None:
            return []
        return [tweet_to_post(tweet, users, tweets, media, matched=False, source=source)]

    yield from each_item(ctx, list(tweets.values()), lambda i, t: "included " + _post_name(i, t), context)


def normalize_flat(tweet: dict, ctx: Context) -> Iterator[Post]:
    """One flattened post: includes are inlined (author, referenced_tweets[])."""
    users: dict[str, dict] = {}
    tweets: dict[str, dict] = {}
    for ref in _refs(tweet):
        author = obj(ref.get("author"))
        if ident(author.get("id")):
            users[str(ident(author.get("id")))] = author
        rid = ident(ref.get("id"))
        if ref.get("created_at") is not None and rid:
            tweets[rid] = ref
    yield tweet_to_post(tweet, users, tweets, {}, matched=True, source="twarc2")
    own = ident(tweet.get("id"))

    def context(item: tuple[str, dict]) -> list[Post]:
        tid, ref = item
        if tid == own:
            return []
        data = {k: v for k, v in ref.items() if k != "type"}
        return [tweet_to_post(data, users, tweets, {}, matched=False, source="twarc2")]

    yield from each_item(ctx, list(tweets.items()), lambda i, t: f"referenced post {i} (id {t[0]})", context)


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
    title: Any = None  # the unwound page's title (checked by fields.link_title)


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
    protected: Any = None


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
    uid = ident(user.id if user is not None else None) or ident(fallback_id)
    if uid is None:
        return None
    if user is None:
        return Author(id=uid, platform="x")
    username = user.username or None
    return Author(
        id=uid,
        platform="x",
        handle=username,
        name=user.name,
        avatar_url=user.profile_image_url or None,
        url=x_profile_url(username),
        unlisted=user.protected if isinstance(user.protected, bool) else None,
    )


def _struct_links(entities: _Entities | None, links: dict[str, str]) -> None:
    if entities is not None:
        for u in entities.urls or ():
            add_entity(links, u.url, u.unwound_url, u.expanded_url)


def _struct_to_post(
    tweet: _Tweet,
    raw: str,
    users: dict[str, _User],
    tweets: dict[str, tuple[_Tweet, str]],
    media: dict[str, _Media],
    matched: bool,
) -> Post:
    """tweet_to_post for a decoded struct (same rules, same result)."""
    tid = ident(tweet.id)
    if tid is None or not tid.isdigit():
        raise Skip(f"post id {str(tweet.id)[:40]!r} is not a number")
    warnings: list[str] = []
    author_id = tweet.author_id
    author = _author_s(tweet.author or users.get(str(ident(author_id))), author_id)
    note = tweet.note_tweet or tweet.note_post
    body = (note.text if note else None) or tweet.text or ""
    entities = (note.entities if note else None) or tweet.entities
    links_map: dict[str, str] = {}
    _struct_links(entities, links_map)
    if note:
        _struct_links(tweet.entities, links_map)
    reply_to = quoted = retweeted = None
    for ref in tweet.referenced_tweets or tweet.referenced_posts or ():
        kind, rid = ref.type, ident(ref.id)
        if rid is None:
            continue
        if kind == "replied_to":
            reply_to = reply_to or rid
        elif kind == "quoted":
            quoted = quoted or rid
        elif kind == "retweeted":
            retweeted = retweeted or rid
    if retweeted:
        original = tweets.get(retweeted)
        if original is not None and original[0].text:
            orig = original[0]
            orig_user = users.get(str(ident(orig.author_id)))
            orig_author = (orig_user.username if orig_user else None) or None
            orig_note = orig.note_tweet or orig.note_post
            full = (orig_note.text if orig_note else None) or orig.text
            if orig_author:
                body = f"RT @{orig_author}: {full}"
                _struct_links(orig_note.entities if orig_note else None, links_map)
                _struct_links(orig.entities, links_map)
    reply_to_author = None
    if reply_to or tweet.in_reply_to_user_id:
        reply_user = tweet.in_reply_to_user or users.get(str(ident(tweet.in_reply_to_user_id)))
        reply_to_author = (reply_user.username if reply_user else None) or ident(tweet.in_reply_to_user_id)
    hashtags: list[str] = []
    mentions: list[str] = []
    links: list[str] = []
    titles: dict[str, str] = {}
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
            if link and (title := link_title(u.title)):
                titles.setdefault(link, title)
    post_media = []
    if tweet.attachments and tweet.attachments.media_keys:
        for k in tweet.attachments.media_keys:
            m = media.get(k)
            if m is not None:
                url = m.url or m.preview_image_url
                if url:
                    post_media.append(Media(url=url, type=m.type, alt=m.alt_text,
                                            preview_url=m.preview_image_url or None))
    handle = author.handle if author else None
    if "&" in body:
        body = unescape_x(body)
    body = expand(body, links_map)
    metrics = tweet.public_metrics
    if metrics is not None:
        reposts = metrics.retweet_count if metrics.retweet_count is not None else metrics.repost_count
        # an int in range is what count() would return; anything else goes through it
        likes, replies, quotes = metrics.like_count, metrics.reply_count, metrics.quote_count
        counts = (likes if type(likes) is int and 0 <= likes <= MAX_COUNT else count(likes, "like_count", warnings),
                  reposts if type(reposts) is int and 0 <= reposts <= MAX_COUNT
                  else count(reposts, "repost_count", warnings),
                  replies if type(replies) is int and 0 <= replies <= MAX_COUNT
                  else count(replies, "reply_count", warnings),
                  quotes if type(quotes) is int and 0 <= quotes <= MAX_COUNT
                  else count(quotes, "quote_count", warnings))
    else:
        counts = (None, None, None, None)
    return Post(
        id=tid,
        platform="x",
        source="twarc2",
        created_at=post_time(tweet.created_at, tid, warnings),
        author=author,
        text=body,
        url=x_post_url(handle, tid),
        reply_to_id=reply_to,
        reply_to_author=reply_to_author,
        root_id=ident(tweet.conversation_id),
        quote_of_id=quoted,
        is_repost=retweeted is not None,
        lang=tweet.lang or None,
        like_count=counts[0],
        repost_count=counts[1],
        reply_count=counts[2],
        quote_count=counts[3],
        matched=matched,
        hashtags=hashtags,
        mentions=mentions,
        links=links,
        link_titles=titles,
        media=post_media,
        raw=raw,
        warnings=warnings,
    )


class _NotFast(Exception):
    """The line does not fit the structs: use the dict path."""


def _fast_page(line: bytes | bytearray, ctx: Context) -> list[Post]:
    """The posts of one raw-page JSONL line; _NotFast when it is not one.
    A post that cannot be mapped costs itself only (``ctx.problems``)."""
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
                uid = ident(u.id)
                if uid is not None:
                    users[uid] = u
            for m in includes.media or ():
                if m.media_key:
                    media[m.media_key] = m
            for r in includes.tweets or includes.posts or ():
                t = _tweet_decoder.decode(r)
                key = ident(t.id)
                if key is not None:
                    context[key] = (t, bytes(r).decode())
    except msgspec.DecodeError:
        raise _NotFast from None
    posts = []
    seen = set()
    for i, (tweet, r) in enumerate(decoded, 1):
        try:
            if tweet.text is None and tweet.created_at is None:
                raise Skip("not a post (no text, no created_at)")
            post = _struct_to_post(tweet, bytes(r).decode(), users, context, media, True)
        except Skip as e:
            ctx.problems.append(f"{_post_name(i, tweet)}: {e}")
            continue
        seen.add(post.id)
        posts.append(post)
    for i, (tid, (tweet, raw)) in enumerate(context.items(), 1):
        if tid in seen or tweet.created_at is None:
            continue
        try:
            posts.append(_struct_to_post(tweet, raw, users, context, media, False))
        except Skip as e:
            ctx.problems.append(f"included {_post_name(i, tweet)}: {e}")
    return posts


def records(f: InputFile, ctx: Context) -> Iterator[tuple[str, Any]]:
    """JSONL lines as bytes (decoded by normalize); documents as values."""
    if not is_jsonl(f):
        yield from json_records(f, ctx)
        return
    for n, line in f.numbered_lines():
        if type(line) is Overlong:
            yield str(n), overlong_skip()
        else:
            yield str(n), line


def normalize(value: Any, ctx: Context) -> Iterator[Post]:
    if isinstance(value, (bytes, bytearray)):
        try:
            yield from _fast_page(value, ctx)
            return
        except _NotFast:
            ctx.problems.clear()
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as e:
            raise Skip(f"invalid JSON ({short_json_error(e, value)})") from None
        if isinstance(value, list):  # a compact one-line array of posts or pages
            yield from each_item(ctx, value, lambda i, _: f"item {i}", lambda item: normalize(item, ctx))
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
