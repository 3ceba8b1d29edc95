"""The last gate before SQL: every field of a ``Post`` held to its type and range.

The normalizers read each field with care (``sources.fields``), but a file
can hold anything and a live page too; this gate makes sure of it, once,
for every post that reaches ``PostWriter`` (imports and live capture
alike), so that nothing untyped reaches an SQL parameter and no value can
abort a batch.  It imports no format module (the archive layer loads
without them):

* ids, handles, names, URLs, language codes: text (a number becomes its
  decimal text, anything else NULL); a post whose own id or platform is
  unusable is refused (:class:`BadPost`);
* times: the archive's fixed-width UTC format within ``timeutil``'s range,
  else NULL with a warning;
* counts: integers from 0 to 2^63 - 1, else NULL (with a warning when the
  source said a number);
* lists (hashtags, mentions, links, media): lists of text / ``Media``;
* text of any kind: lone UTF-16 surrogates (which SQLite cannot store as
  UTF-8) become U+FFFD;
* ``raw``: serialized to JSON text here, whatever its depth, integer sizes
  or key types, so the source object is always kept.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import orjson

from ..models import Author, Media, Post
from ..timeutil import EARLIEST_ISO, latest_iso

PLATFORMS = frozenset({"x", "mastodon", "bluesky"})
MAX_COUNT = (1 << 63) - 1
MAX_ID = 2048  # characters: an id longer than this is not an id
_TIME = re.compile(r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d\.\d{3}Z")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadPost(ValueError):
    """A post that cannot be stored at all (no usable id or platform)."""


def clean_text(s: str) -> str:
    """``s`` without lone surrogates (ASCII, the common case, costs one check)."""
    if s.isascii() or not _SURROGATE.search(s):
        return s
    return _SURROGATE.sub("\ufffd", s)


def _text(v: Any) -> str | None:
    """Text or NULL: str kept (surrogates mended), an integer becomes its
    digits (ids, handles written as numbers), anything else NULL."""
    t = type(v)
    if t is str:
        return v if v.isascii() else clean_text(v)
    if v is None:
        return None
    if t is int:
        return str(v)
    return None


def _strings(values: Any) -> list[str]:
    if type(values) is not list:
        return []
    out = []
    for v in values:
        if type(v) is str and v:
            out.append(v if v.isascii() else clean_text(v))
    return out


def _count(v: Any, name: str, warnings: list[str]) -> int | None:
    if v is None:
        return None
    if type(v) is int:
        if 0 <= v <= MAX_COUNT:
            return v
        warnings.append(f"{name} {v} is not a count (negative, or larger than 2^63); stored as unknown")
        return None
    return None


def _time(v: Any, name: str, warnings: list[str] | None) -> str | None:
    if v is None:
        return None
    if type(v) is str and len(v) == 24 and _TIME.fullmatch(v) and EARLIEST_ISO <= v <= latest_iso():
        return v
    if warnings is not None:
        shown = repr(v[:40]) if isinstance(v, str) else type(v).__name__
        warnings.append(f"{name} {shown} is not a time the archive stores; stored without a time")
    return None


def _author(a: Any) -> Author | None:
    if type(a) is not Author:
        return None
    aid = _text(a.id)
    if not aid or len(aid) > MAX_ID:
        return None
    a.id = aid
    a.platform = _text(a.platform) or ""
    a.handle = _text(a.handle)
    a.name = _text(a.name)
    a.avatar_url = _text(a.avatar_url)
    a.url = _text(a.url)
    return a


def _media(items: Any) -> list[Media]:
    if type(items) is not list:
        return []
    out = []
    for m in items:
        if type(m) is Media:
            url = _text(m.url)
            if url:
                m.url = url
                m.type = _text(m.type)
                m.alt = _text(m.alt)
                m.preview_url = _text(m.preview_url)
                out.append(m)
    return out


def raw_json(raw: Any) -> str | None:
    """The raw source object as JSON text.  orjson for speed; the standard
    library (big integers, non-text keys, lone surrogates escaped) when
    orjson refuses; and an iterative encoder for nesting deeper than
    either allows (a Bluesky thread thousands of levels deep)."""
    if raw is None:
        return None
    if type(raw) is str:
        return clean_text(raw)
    try:
        return orjson.dumps(raw).decode()
    except (TypeError, ValueError):
        pass
    try:
        return json.dumps(raw, ensure_ascii=True, default=repr, separators=(",", ":"))
    except (RecursionError, ValueError, TypeError):
        return dumps_deep(raw)


def dumps_deep(value: Any) -> str:
    """JSON of ``value`` without recursion (ASCII, any depth); anything not
    JSON (a set, an object) is written as its repr string."""
    out: list[str] = []
    encode = json.encoder.encode_basestring_ascii
    # a stack of pending work: values to write, or literal text
    todo: list[tuple[bool, Any]] = [(False, value)]
    while todo:
        literal, v = todo.pop()
        if literal:
            out.append(v)
        elif isinstance(v, dict):
            parts: list[tuple[bool, Any]] = [(True, "{")]
            for i, (k, item) in enumerate(v.items()):
                key = k if isinstance(k, str) else str(k)
                parts.append((True, ("," if i else "") + encode(key) + ":"))
                parts.append((False, item))
            parts.append((True, "}"))
            todo.extend(reversed(parts))
        elif isinstance(v, (list, tuple)):
            parts = [(True, "[")]
            for i, item in enumerate(v):
                if i:
                    parts.append((True, ","))
                parts.append((False, item))
            parts.append((True, "]"))
            todo.extend(reversed(parts))
        elif isinstance(v, str):
            out.append(encode(v))
        elif v is None or isinstance(v, (bool, int)):
            out.append(json.dumps(v))
        elif isinstance(v, float):
            out.append(json.dumps(v) if v == v and v not in (float("inf"), float("-inf")) else "null")
        else:
            out.append(encode(repr(v)))
    return "".join(out)


def check_post(post: Any) -> Post:
    """``post`` with every field held to its type (see the module docstring);
    BadPost when it cannot be stored at all.  Mends in place and returns it;
    what was mended is added to ``post.warnings``."""
    if type(post) is not Post:
        raise BadPost(f"not a post ({type(post).__name__})")
    pid = _text(post.id)
    if not pid or len(pid) > MAX_ID:
        raise BadPost(f"post id {str(post.id)[:40]!r} is not usable")
    if post.platform not in PLATFORMS:
        raise BadPost(f"post {pid}: unknown platform {str(post.platform)[:20]!r}")
    warnings = post.warnings if type(post.warnings) is list else []
    post.warnings = warnings
    post.id = pid
    post.source = _text(post.source) or post.platform
    post.created_at = _time(post.created_at, "created_at", warnings)
    post.edited_at = _time(post.edited_at, "edited_at", None)
    post.author = _author(post.author)
    text = post.text
    post.text = (text if text.isascii() else clean_text(text)) if type(text) is str else (_text(text) or "")
    post.html = _text(post.html)
    post.url = _text(post.url)
    post.reply_to_id = _text(post.reply_to_id)
    post.reply_to_author = _text(post.reply_to_author)
    post.root_id = _text(post.root_id)
    post.quote_of_id = _text(post.quote_of_id)
    post.lang = _text(post.lang)
    post.like_count = _count(post.like_count, "like_count", warnings)
    post.repost_count = _count(post.repost_count, "repost_count", warnings)
    post.reply_count = _count(post.reply_count, "reply_count", warnings)
    post.quote_count = _count(post.quote_count, "quote_count", warnings)
    post.hashtags = _strings(post.hashtags)
    post.mentions = _strings(post.mentions)
    post.links = _strings(post.links)
    post.media = _media(post.media)
    post.local_id = _text(post.local_id)
    post.instance = _text(post.instance)
    post.reply_to_local_id = _text(post.reply_to_local_id)
    post.spoiler_text = _text(post.spoiler_text)
    post.raw = raw_json(post.raw)
    return post


def redact_on_arrival(post: Post) -> Post:
    """A forgotten person's post as the archive may keep it: its place
    (id, time, reply links, session hashtags), nothing it said or showed."""
    a = post.author
    author = Author(id=a.id, platform=a.platform, handle=a.handle) if a is not None else None
    return dataclasses.replace(post, author=author, text="", html=None, spoiler_text=None, raw=None, media=[],
                               links=[], mentions=[], like_count=None, repost_count=None, reply_count=None,
                               quote_count=None, lang=None)
