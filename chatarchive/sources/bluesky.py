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

Times: ``record.createdAt``, else ``indexedAt``, else the time the record
key encodes (a TID: microseconds since 1970), else NULL with a warning —
a post is never dropped for its time.  Every field is read by its type
(``sources.fields``); one bad post of a response costs that post only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..models import Author, Media, Post
from ..timeutil import tid_time
from .fields import count, link_title, nonempty, obj, pick_time, seq, text
from .reading import Context, Skip, each_item
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


def _type(v: Any) -> str:
    """An object's ``$type`` (text; "" when absent or not text)."""
    t = v.get("$type") if isinstance(v, dict) else None
    return t if isinstance(t, str) else ""


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
    titles: dict[str, str] = field(default_factory=dict)  # external embeds' titles by uri
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
    body = text(record.get("text")) or ""
    text_bytes = body.encode("utf-8", errors="replace")
    for facet in seq(record.get("facets")):
        if not isinstance(facet, dict):
            continue
        for feat in seq(facet.get("features")):
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
    for tag in seq(record.get("tags")):
        _add(parts.hashtags, tag.lstrip("#") if isinstance(tag, str) else None, fold=True)


def _media_view(view: dict, parts: _Parts) -> None:
    kind = _type(view)
    if kind.startswith("app.bsky.embed.images"):
        for img in seq(view.get("images")):
            if isinstance(img, dict) and nonempty(img.get("fullsize")):
                parts.media.append(Media(url=img["fullsize"], type="image", alt=nonempty(img.get("alt")),
                                         preview_url=nonempty(img.get("thumb"))))
    elif kind.startswith("app.bsky.embed.video"):
        url = nonempty(view.get("playlist")) or nonempty(view.get("thumbnail"))
        if url:
            parts.media.append(Media(url=url, type="video", alt=nonempty(view.get("alt")),
                                     preview_url=nonempty(view.get("thumbnail"))))
    elif kind.startswith("app.bsky.embed.gallery"):
        for item in seq(view.get("items")):
            url = nonempty(obj(item).get("fullsize")) or nonempty(obj(item).get("thumbnail"))
            if url:
                parts.media.append(Media(url=url, type="image", alt=nonempty(item.get("alt")),
                                         preview_url=nonempty(item.get("thumbnail"))))
    elif kind.startswith("app.bsky.embed.external"):
        ext = view.get("external")
        if isinstance(ext, dict):
            _add(parts.links, ext.get("uri"))
            _title(parts, ext)


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


def _title(parts: _Parts, external: dict) -> None:
    """An external embed's title (app.bsky.embed.external) for its uri."""
    uri, title = external.get("uri"), link_title(external.get("title"))
    if isinstance(uri, str) and uri and title:
        parts.titles.setdefault(uri, title)


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
            _title(parts, ext)


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
        name=nonempty(profile.get("displayName")),
        avatar_url=nonempty(profile.get("avatar")),
        url=f"https://bsky.app/profile/{handle or did}",
        unlisted=profile_unlisted(profile),
    )


# The self-label an account sets to ask apps not to show it to logged-out viewers.
NO_UNAUTHENTICATED = "!no-unauthenticated"


def profile_unlisted(profile: dict) -> bool | None:
    """Whether the author view carries the ``!no-unauthenticated`` label
    (None when the view has no labels list: the source does not say)."""
    labels = profile.get("labels")
    if not isinstance(labels, list):
        return None
    return any(isinstance(label, dict) and label.get("val") == NO_UNAUTHENTICATED for label in labels)


def _created_at(record: dict, view: dict, uri: str, warnings: list[str]) -> str | None:
    """createdAt, else indexedAt, else the time in the record key (a TID),
    else None; ``warnings`` says what was wrong and what was used."""
    return pick_time([("createdAt", record.get("createdAt")), ("indexedAt", view.get("indexedAt"))], warnings,
                     fallback=("the record key", tid_time(rkey_of(uri))))


def _to_post(view: dict, *, matched: bool, handles: dict[str, str]) -> tuple[Post, list[dict]]:
    """A PostView or a viewRecord -> (Post, viewRecords it quotes)."""
    if is_postview(view):
        record, embed_views = view["record"], [view.get("embed")]
    elif _is_view_record(view):
        record, embed_views = view["value"], list(seq(view.get("embeds")))
    else:
        raise Skip("not a Bluesky PostView (needs an at:// uri, author and record)")
    uri = view["uri"]
    warnings: list[str] = []
    author = author_of(view["author"])
    if author.handle:
        handles[author.id] = author.handle
    parts = _Parts()
    _facets(record, parts, handles)
    for ev in embed_views:
        _embed_view(ev, parts)
    _raw_embed(record.get("embed"), parts)
    reply = obj(record.get("reply"))
    parent_uri = nonempty(obj(reply.get("parent")).get("uri"))
    root_uri = nonempty(obj(reply.get("root")).get("uri"))
    reply_to_author = None
    if parent_uri:
        parent_did = did_of(parent_uri)
        reply_to_author = handles.get(parent_did or "") or parent_did
    langs = record.get("langs")
    post = Post(
        id=uri,
        platform=PLATFORM,
        source="bluesky",
        created_at=_created_at(record, view, uri, warnings),
        author=author,
        text=text(record.get("text")) or "",
        url=post_url(uri, author.handle, author.id),
        reply_to_id=parent_uri or None,
        reply_to_author=reply_to_author,
        root_id=(root_uri or parent_uri) if parent_uri else uri,
        quote_of_id=parts.quote_of_id,
        lang=langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None,
        like_count=count(view.get("likeCount"), "likeCount", warnings),
        repost_count=count(view.get("repostCount"), "repostCount", warnings),
        reply_count=count(view.get("replyCount"), "replyCount", warnings),
        quote_count=count(view.get("quoteCount"), "quoteCount", warnings),
        matched=matched,
        hashtags=parts.hashtags,
        mentions=parts.mentions,
        links=parts.links,
        link_titles=parts.titles,
        media=parts.media,
        raw=view,
        warnings=warnings,
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
        try:
            p, more = _to_post(vr, matched=False, handles=handles)
        except Skip:
            continue  # a broken embedded copy costs itself, not the post
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
    warnings: list[str] = []
    when = pick_time([("reason.indexedAt", reason.get("indexedAt"))], warnings,
                     fallback=("the reposted post", original.created_at)) if reason.get("indexedAt") else None
    return Post(
        id=rid,
        platform=PLATFORM,
        source="bluesky",
        created_at=when or original.created_at,
        author=by,
        text=original.text,
        url=original.url,
        is_repost=True,
        lang=original.lang,
        matched=True,
        hashtags=list(original.hashtags),
        mentions=list(original.mentions),
        links=list(original.links),
        link_titles=dict(original.link_titles),
        media=list(original.media),
        raw=item,
        warnings=warnings,
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
    todo = list(reversed(seq(thread.get("replies"))))
    while todo:
        node = todo.pop()
        if not _is_thread_node(node):
            continue  # notFoundPost, blockedPost
        out.append((node["post"], False))
        todo.extend(reversed(seq(node.get("replies"))))
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


def _post_name(i: int, item: Any) -> str:
    view = item[0] if isinstance(item, tuple) else item
    view = view.get("post") if isinstance(view, dict) and isinstance(view.get("post"), dict) else view
    uri = view.get("uri") if isinstance(view, dict) else None
    return f"post {i} ({uri})" if isinstance(uri, str) and uri else f"post {i}"


def _emit(views: list[tuple[dict, bool]], handles: dict[str, str], ctx: Context) -> Iterator[Post]:
    _learn(handles, views)  # every author of the record first: parents may come later
    yield from each_item(ctx, views, _post_name,
                         lambda vm: postview_to_posts(vm[0], matched=vm[1], handles=handles))


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
        yield from _emit(views, handles, ctx)
    elif isinstance(value, dict) and isinstance(value.get("feed"), list):
        yield from each_item(ctx, value["feed"], _post_name, lambda item: _feed_item(item, handles))
    elif isinstance(value, dict) and isinstance(value.get("posts"), list):
        yield from _emit([(v, True) for v in value["posts"]], handles, ctx)
    elif isinstance(value, list):
        def one(item: Any) -> Iterator[Post]:
            if _is_feed_item(item):
                return _feed_item(item, handles)
            _learn(handles, [(item, True)])
            return iter(postview_to_posts(item, matched=True, handles=handles))

        yield from each_item(ctx, value, _post_name, one)
    elif _is_feed_item(value):
        yield from _feed_item(value, handles)
    elif _is_thread_node(value):
        yield from _emit(thread_views(value), handles, ctx)
    elif is_postview(value):
        yield from _emit([(value, True)], handles, ctx)
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
        try:
            yield from postview_to_posts(view, matched=matched, handles=handles)
        except Skip:
            continue  # a broken reply parent costs itself, not the item


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
