"""Bluesky / AT Protocol PostView JSON (sources.md §7.3, §7.4, §7.6).

Shapes read (auto-detected; JSONL lines may hold any of them):

* ``app.bsky.feed.searchPosts`` / ``getPosts`` responses ``{posts, cursor?}``
  and plain PostView lists (a JSON array or one PostView per line);
* ``app.bsky.feed.getPostThread`` responses ``{thread: ThreadViewPost}``
  (parents and replies walked iteratively, any depth; ``NotFoundPost`` and
  ``BlockedPost`` nodes skipped), and the flat ``getPostThreadV2`` list;
* feed items ``{post, reply?, reason?}`` — alone, in a list, or as
  ``{feed: [...], cursor?}`` (getAuthorFeed, getTimeline, getFeed).

What ``matched`` means here: the posts the file was fetched *for* are
``matched = 1`` — search hits, PostView list items, the anchor post of a
thread, and the post of each feed item.  Posts that only come along are
context (``matched = 0``): a thread's parents and replies, a feed item's
``reply.parent`` / ``reply.root``, quoted posts embedded as
``app.bsky.embed.record#viewRecord``, and the original behind a repost.

Reposts: a feed item whose ``reason`` is ``reasonRepost`` is a repost by
``reason.by``.  It is stored as its own post (``is_repost``; author = the
reposter; time = ``reason.indexedAt``; content mirrored from the original),
keyed by the repost record's at-uri when the item gives it
(``reason.uri``), else by ``f"{post.uri}#repost-by-{did}"``.

Mapping: ``id`` = at-uri; ``url`` = ``https://bsky.app/profile/{handle}/post/{rkey}``
(the DID when the handle is unknown or ``handle.invalid``); ``created_at`` =
``record.createdAt`` (any number of fraction digits, any offset → UTC ms),
falling back to ``indexedAt``; facets are sliced by UTF-8 byte offsets
(mention handles come from the text slice, without ``@``); ``hashtags`` =
tag facets + ``record.tags``; ``links`` = link facets + external embeds;
``quote_of_id`` only when the embedded record is an ``app.bsky.feed.post``;
``reply_to_author`` is the parent author's handle when the file shows it
(the parent itself, a mention of that DID, or any post of theirs seen
earlier in the file), else the DID.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..models import Author, Media, Post
from ..timeutil import iso_from_iso
from .reading import Context, Skip
from .registry import Format, register, state_of

PLATFORM = "bluesky"
POST_COLLECTION = "app.bsky.feed.post"
MAX_HANDLES = 200_000  # DID -> handle entries kept per file (memory bound)


# --------------------------------------------------------------------------
# Small helpers


def did_of(uri: str | None) -> str | None:
    """The authority (the DID) of an at:// uri."""
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    return uri[5:].split("/", 1)[0] or None


def collection_of(uri: str | None) -> str | None:
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    parts = uri[5:].split("/")
    return parts[1] if len(parts) > 1 else None


def rkey_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def post_url(uri: str, handle: str | None, did: str | None) -> str:
    who = handle if handle and handle != "handle.invalid" else (did or did_of(uri))
    return f"https://bsky.app/profile/{who}/post/{rkey_of(uri)}"


def _int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    return int(v)


def _type(v: Any) -> str:
    return v.get("$type") or "" if isinstance(v, dict) else ""


def is_postview(v: Any) -> bool:
    """A hydrated post (PostView): at:// uri, author and record."""
    return (
        isinstance(v, dict)
        and isinstance(v.get("uri"), str)
        and v["uri"].startswith("at://")
        and isinstance(v.get("author"), dict)
        and isinstance(v.get("record"), dict)
    )


def _is_view_record(v: Any) -> bool:
    """An embedded post (embed.record#viewRecord): ``value`` instead of ``record``."""
    return (
        isinstance(v, dict)
        and isinstance(v.get("uri"), str)
        and collection_of(v["uri"]) == POST_COLLECTION
        and isinstance(v.get("author"), dict)
        and isinstance(v.get("value"), dict)
    )


def facet_slice(text_bytes: bytes, index: Any) -> str | None:
    """The text a facet covers: byteStart inclusive, byteEnd exclusive, UTF-8."""
    if not isinstance(index, dict):
        return None
    start, end = index.get("byteStart"), index.get("byteEnd")
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text_bytes):
        return None
    try:
        return text_bytes[start:end].decode("utf-8")
    except UnicodeDecodeError:
        return None  # offsets that cut a character in two


# --------------------------------------------------------------------------
# Posts


@dataclass
class _Parts:
    hashtags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    quote_of_id: str | None = None
    quoted_views: list[dict] = field(default_factory=list)  # viewRecords to store as context


def _add(items: list[str], value: Any, *, fold: bool = False) -> None:
    if not isinstance(value, str) or not value:
        return
    if fold:
        if value.lower() in (i.lower() for i in items):
            return
    elif value in items:
        return
    items.append(value)


def _facets(record: dict, parts: _Parts, handles: dict[str, str]) -> None:
    text = record.get("text") or ""
    text_bytes = text.encode("utf-8") if isinstance(text, str) else b""
    for facet in record.get("facets") or []:
        if not isinstance(facet, dict):
            continue
        for feat in facet.get("features") or []:
            kind = _type(feat)
            if kind == "app.bsky.richtext.facet#mention":
                shown = facet_slice(text_bytes, facet.get("index"))
                handle = shown.strip().lstrip("@") if shown else None
                did = feat.get("did")
                if handle and isinstance(did, str):
                    handles.setdefault(did, handle)
                _add(parts.mentions, handle or did)
            elif kind == "app.bsky.richtext.facet#link":
                _add(parts.links, feat.get("uri"))
            elif kind == "app.bsky.richtext.facet#tag":
                tag = feat.get("tag")
                _add(parts.hashtags, tag.lstrip("#") if isinstance(tag, str) else None, fold=True)
    for tag in record.get("tags") or []:
        _add(parts.hashtags, tag.lstrip("#") if isinstance(tag, str) else None, fold=True)


def _media_view(view: dict, parts: _Parts) -> None:
    kind = _type(view)
    if kind.startswith("app.bsky.embed.images"):
        for img in view.get("images") or []:
            if isinstance(img, dict) and img.get("fullsize"):
                parts.media.append(Media(url=img["fullsize"], type="image", alt=img.get("alt") or None,
                                         preview_url=img.get("thumb")))
    elif kind.startswith("app.bsky.embed.video"):
        url = view.get("playlist") or view.get("thumbnail")
        if url:
            parts.media.append(Media(url=url, type="video", alt=view.get("alt") or None,
                                     preview_url=view.get("thumbnail")))
    elif kind.startswith("app.bsky.embed.gallery"):
        for item in view.get("items") or []:
            if isinstance(item, dict) and (item.get("fullsize") or item.get("thumbnail")):
                parts.media.append(Media(url=item.get("fullsize") or item["thumbnail"], type="image",
                                         alt=item.get("alt") or None, preview_url=item.get("thumbnail")))
    elif kind.startswith("app.bsky.embed.external"):
        ext = view.get("external")
        if isinstance(ext, dict):
            _add(parts.links, ext.get("uri"))


def _record_view(view: dict, parts: _Parts) -> None:
    """embed.record#view: ``record`` is a viewRecord (a quote when it is a
    post), viewNotFound/viewBlocked/viewDetached, or a feed/list/… view."""
    target = view.get("record")
    if not isinstance(target, dict):
        return
    uri = target.get("uri")
    if collection_of(uri) == POST_COLLECTION:
        parts.quote_of_id = uri
        if _is_view_record(target):
            parts.quoted_views.append(target)


def _embed_view(view: Any, parts: _Parts) -> None:
    if not isinstance(view, dict):
        return
    kind = _type(view)
    if kind.startswith("app.bsky.embed.recordWithMedia"):
        if isinstance(view.get("record"), dict):
            _record_view(view["record"], parts)
        if isinstance(view.get("media"), dict):
            _media_view(view["media"], parts)
    elif kind.startswith("app.bsky.embed.record"):
        _record_view(view, parts)
    else:
        _media_view(view, parts)


def _raw_embed(embed: Any, parts: _Parts) -> None:
    """The record's own (unhydrated) embed: only what needs no CDN: the
    quoted uri and an external link."""
    if not isinstance(embed, dict):
        return
    kind = _type(embed)
    if kind == "app.bsky.embed.recordWithMedia":
        _raw_embed(embed.get("record"), parts)
        _raw_embed(embed.get("media"), parts)
    elif kind == "app.bsky.embed.record":
        ref = embed.get("record")
        uri = ref.get("uri") if isinstance(ref, dict) else None
        if parts.quote_of_id is None and collection_of(uri) == POST_COLLECTION:
            parts.quote_of_id = uri
    elif kind == "app.bsky.embed.external":
        ext = embed.get("external")
        if isinstance(ext, dict):
            _add(parts.links, ext.get("uri"))


def author_of(profile: dict) -> Author:
    did = profile.get("did")
    if not isinstance(did, str) or not did:
        raise Skip("post author has no DID")
    handle = profile.get("handle")
    handle = handle if isinstance(handle, str) and handle and handle != "handle.invalid" else None
    return Author(
        id=did,
        platform=PLATFORM,
        handle=handle,
        name=profile.get("displayName") or None,
        avatar_url=profile.get("avatar") or None,
        url=f"https://bsky.app/profile/{handle or did}",
    )


def _created_at(record: dict, view: dict) -> str:
    for value in (record.get("createdAt"), view.get("indexedAt")):
        if isinstance(value, str) and value:
            try:
                return iso_from_iso(value)
            except ValueError:
                continue
    raise Skip(f"post {view.get('uri')} has no valid createdAt")


def _to_post(view: dict, *, matched: bool, handles: dict[str, str]) -> tuple[Post, list[dict]]:
    """A PostView or a viewRecord -> (Post, viewRecords it quotes)."""
    if is_postview(view):
        record, embed_views = view["record"], [view.get("embed")]
    elif _is_view_record(view):
        record, embed_views = view["value"], list(view.get("embeds") or [])
    else:
        raise Skip("not a Bluesky PostView (needs an at:// uri, author and record)")
    uri = view["uri"]
    author = author_of(view["author"])
    if author.handle:
        handles[author.id] = author.handle
    parts = _Parts()
    _facets(record, parts, handles)
    for ev in embed_views:
        _embed_view(ev, parts)
    _raw_embed(record.get("embed"), parts)
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
    parent_uri = (reply.get("parent") or {}).get("uri") if isinstance(reply.get("parent"), dict) else None
    root_uri = (reply.get("root") or {}).get("uri") if isinstance(reply.get("root"), dict) else None
    reply_to_author = None
    if parent_uri:
        parent_did = did_of(parent_uri)
        reply_to_author = handles.get(parent_did or "") or parent_did
    langs = record.get("langs")
    text = record.get("text")
    post = Post(
        id=uri,
        platform=PLATFORM,
        source="bluesky",
        created_at=_created_at(record, view),
        author=author,
        text=text if isinstance(text, str) else "",
        url=post_url(uri, author.handle, author.id),
        reply_to_id=parent_uri or None,
        reply_to_author=reply_to_author,
        root_id=(root_uri or parent_uri) if parent_uri else uri,
        quote_of_id=parts.quote_of_id,
        lang=langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None,
        like_count=_int(view.get("likeCount")),
        repost_count=_int(view.get("repostCount")),
        reply_count=_int(view.get("replyCount")),
        quote_count=_int(view.get("quoteCount")),
        matched=matched,
        hashtags=parts.hashtags,
        mentions=parts.mentions,
        links=parts.links,
        media=parts.media,
        raw=view,
    )
    return post, parts.quoted_views


def postview_to_post(view: dict, *, matched: bool, handles: dict[str, str] | None = None) -> Post:
    """Map one PostView (or embedded viewRecord) to a Post.  ``handles``
    (DID -> handle) names reply parents' authors; it learns from this post."""
    return _to_post(view, matched=matched, handles=handles if handles is not None else {})[0]


def postview_to_posts(view: dict, *, matched: bool, handles: dict[str, str] | None = None) -> list[Post]:
    """The post, then the posts it quotes (viewRecords, a quote of a quote
    too) as context posts (matched=False)."""
    handles = handles if handles is not None else {}
    post, quoted = _to_post(view, matched=matched, handles=handles)
    out, seen = [post], {post.id}
    while quoted:
        vr = quoted.pop(0)
        if vr["uri"] in seen:
            continue
        seen.add(vr["uri"])
        p, more = _to_post(vr, matched=False, handles=handles)
        out.append(p)
        quoted.extend(more)
    return out


def repost_post(item: dict, original: Post) -> Post | None:
    """The repost a feed item with ``reason: reasonRepost`` stands for."""
    reason = item.get("reason")
    if not isinstance(reason, dict) or "reasonRepost" not in _type(reason) or not isinstance(reason.get("by"), dict):
        return None
    by = author_of(reason["by"])
    uri = reason.get("uri")
    rid = uri if isinstance(uri, str) and uri.startswith("at://") else f"{original.id}#repost-by-{by.id}"
    when = reason.get("indexedAt")
    return Post(
        id=rid,
        platform=PLATFORM,
        source="bluesky",
        created_at=iso_from_iso(when) if isinstance(when, str) and when else original.created_at,
        author=by,
        text=original.text,
        url=original.url,
        is_repost=True,
        lang=original.lang,
        matched=True,
        hashtags=list(original.hashtags),
        mentions=list(original.mentions),
        links=list(original.links),
        media=list(original.media),
        raw=item,
    )


# --------------------------------------------------------------------------
# Shapes


def _is_thread_node(node: Any) -> bool:
    return isinstance(node, dict) and is_postview(node.get("post")) and "threadViewPost" in (
        _type(node) or "app.bsky.feed.defs#threadViewPost")


def thread_views(thread: Any) -> list[tuple[dict, bool]]:
    """(PostView, matched) for every post of a getPostThread tree: the anchor
    (matched), its parents and all replies at any depth (context).  A loop,
    not recursion, so 10,000 levels are fine."""
    out: list[tuple[dict, bool]] = []
    if isinstance(thread, list):  # getPostThreadV2: flat items with depth
        for item in thread:
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, dict) and is_postview(value.get("post")):
                out.append((value["post"], item.get("depth") == 0))
        return out
    if not _is_thread_node(thread):
        return out
    out.append((thread["post"], True))
    node = thread.get("parent")
    while _is_thread_node(node):
        out.append((node["post"], False))
        node = node.get("parent")
    todo = list(reversed(thread.get("replies") or []))
    while todo:
        node = todo.pop()
        if not _is_thread_node(node):
            continue  # notFoundPost, blockedPost
        out.append((node["post"], False))
        todo.extend(reversed(node.get("replies") or []))
    return out


def _is_feed_item(v: Any) -> bool:
    # {post, reply?, reason?}; a ThreadViewPost also has `post` but carries
    # `replies`/`parent` (or says so in $type).
    return (
        isinstance(v, dict)
        and is_postview(v.get("post"))
        and "record" not in v
        and "replies" not in v
        and "parent" not in v
        and "threadViewPost" not in _type(v)
    )


def feed_item_views(item: dict) -> list[tuple[dict, bool]]:
    """The context around a feed item: reply parent and root (matched=False)."""
    out = []
    reply = item.get("reply")
    if isinstance(reply, dict):
        for key in ("parent", "root"):
            if is_postview(reply.get(key)):
                out.append((reply[key], False))
    return out


@dataclass
class BlueskyFile:
    """Per-file state: DID -> handle of every author seen so far, so a reply
    whose parent came earlier in the file names the parent's author."""

    handles: dict[str, str] = field(default_factory=dict)


def _learn(handles: dict[str, str], views: list[tuple[dict, bool]]) -> None:
    for view, _ in views:
        a = view.get("author") if isinstance(view, dict) else None
        if (isinstance(a, dict) and isinstance(a.get("did"), str) and isinstance(a.get("handle"), str)
                and a["handle"] != "handle.invalid"):
            handles[a["did"]] = a["handle"]


def _emit(views: list[tuple[dict, bool]], handles: dict[str, str]) -> Iterator[Post]:
    _learn(handles, views)  # every author of the record first: parents may come later
    for view, matched in views:
        yield from postview_to_posts(view, matched=matched, handles=handles)


def dedupe(posts: Iterator[Post]) -> Iterator[Post]:
    """Each id once per record: a post that is both a hit and quoted (or a
    reply parent) in the same response keeps its matched sighting."""
    out: dict[str, Post] = {}
    for p in posts:
        prior = out.get(p.id)
        if prior is None or (p.matched and not prior.matched):
            out[p.id] = p
    return iter(out.values())


def normalize(value: Any, ctx: Context) -> Iterator[Post]:
    """One record: {posts}, {thread}, {feed}, a feed item, a PostView or a list."""
    return dedupe(_normalize(value, ctx))


def _normalize(value: Any, ctx: Context) -> Iterator[Post]:
    handles = state_of(ctx, BlueskyFile).handles
    if len(handles) > MAX_HANDLES:
        handles.clear()
    if isinstance(value, dict) and "thread" in value:
        views = thread_views(value["thread"])
        if not views:
            node = value["thread"]
            if isinstance(node, dict) and ("notFound" in _type(node) or "blocked" in _type(node)
                                           or node.get("notFound") or node.get("blocked")):
                raise Skip("the thread's post is not found or blocked")
            raise Skip("thread holds no ThreadViewPost")
        yield from _emit(views, handles)
    elif isinstance(value, dict) and isinstance(value.get("feed"), list):
        for item in value["feed"]:
            yield from _feed_item(item, handles)
    elif isinstance(value, dict) and isinstance(value.get("posts"), list):
        yield from _emit([(v, True) for v in value["posts"]], handles)
    elif isinstance(value, list):
        for item in value:
            if _is_feed_item(item):
                yield from _feed_item(item, handles)
            else:
                yield from _emit([(item, True)], handles)
    elif _is_feed_item(value):
        yield from _feed_item(value, handles)
    elif _is_thread_node(value):
        yield from _emit(thread_views(value), handles)
    elif is_postview(value):
        yield from _emit([(value, True)], handles)
    else:
        raise Skip("not a Bluesky searchPosts/getPostThread/feed response or PostView")


def _feed_item(item: Any, handles: dict[str, str]) -> Iterator[Post]:
    if not _is_feed_item(item):
        raise Skip("a feed item has no PostView in `post`")
    context = feed_item_views(item)
    _learn(handles, context + [(item["post"], True)])
    reason = item.get("reason")
    reposted = isinstance(reason, dict) and "reasonRepost" in _type(reason)
    posts = postview_to_posts(item["post"], matched=not reposted, handles=handles)
    if reposted:
        rp = repost_post(item, posts[0])
        if rp is not None:
            yield rp
        else:
            posts[0].matched = True  # a repost without `by`: keep the post as the item
    yield from posts
    for view, matched in context:
        yield from postview_to_posts(view, matched=matched, handles=handles)


def _sniff(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and (is_postview(value[0]) or _is_feed_item(value[0]))
    if not isinstance(value, dict):
        return False
    if "thread" in value:
        t = value["thread"]
        return _is_thread_node(t) or "app.bsky." in _type(t) or (
            isinstance(t, list) and bool(t) and isinstance(t[0], dict) and "value" in t[0])
    if isinstance(value.get("feed"), list):
        return bool(value["feed"]) and _is_feed_item(value["feed"][0])
    if isinstance(value.get("posts"), list):
        posts = value["posts"]
        return is_postview(posts[0]) if posts else ("cursor" in value or "hitsTotal" in value)
    return is_postview(value) or _is_feed_item(value) or _is_thread_node(value)


FORMAT = register(Format(
    name="bluesky",
    description="Bluesky searchPosts / getPostThread / feed JSON (PostViews)",
    kind="json",
    sniff=_sniff,
    normalize=normalize,
    new_state=lambda ctx: BlueskyFile(),
))
