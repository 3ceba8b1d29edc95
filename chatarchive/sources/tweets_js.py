"""The X/Twitter account archive: ``data/tweets.js`` (sources.md §4).

The file is JavaScript, ``window.YTD.tweets.part0 = [ … ]`` (``tweet.js`` /
``window.YTD.tweet.part0`` in old exports, ``tweets-part1.js`` … when split).
It is never executed: everything up to the first ``=`` is dropped and the
array is read element by element, so a huge archive streams and a cut-off
file keeps every post before the cut.

Posts have no ``user``: they all belong to the archive owner, named in the
sibling ``account.js`` (and ``profile.js`` for the avatar).  Without it the
owner's handle is inferred from the archive itself (media links and
self-replies name it); failing that, posts get the author
``x:archive-owner``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

from ..errors import InputError
from ..models import Author, Post
from .fields import ident, nonempty, obj, seq, text
from .reading import Context, InputFile, Skip, iter_array
from .registry import Format, register, state_of
from .twarc2 import x_profile_url
from .twitter_v1 import _MEDIA_SELF_LINK, full_text, quote_from_links, status_to_post

SOURCE = "tweets_js"
UNKNOWN_OWNER_ID = "x:archive-owner"
_PREFIX = re.compile(rb"^\s*window\.YTD\.(\w+)\.part(\d+)\s*=")
_BARE_ARRAY = re.compile(rb'^\s*\[\s*\{\s*"tweet"\s*:')
_POST_PARTS = {"tweets", "tweet", "community_tweet"}
_SMALL_JS = 1 << 20  # account.js and profile.js are a few KB


def sniff(head: bytes) -> bool:
    return bool(_PREFIX.match(head) or _BARE_ARRAY.match(head))


# --------------------------------------------------------------------------
# Reading the array without executing or loading it whole


def iter_elements(chunks: Iterator[str], display: str) -> Iterator[tuple[int, Any]]:
    """Yield (line, element) for each element of the JSON array that follows
    the ``window.YTD.<name>.partN =`` prefix (or starts the text).  A broken
    or cut-off element is yielded as a Skip and ends the reading."""
    buf = ""
    it = iter(chunks)
    # the prefix: everything up to and including the first "="
    for piece in it:
        buf += piece
        if len(buf.lstrip()) >= len("window.") or "[" in buf:
            break
    if not buf.strip():
        raise InputError(f"{display}: the file is empty")
    line = 1
    if buf.lstrip().startswith("window."):
        while "=" not in buf:
            more = next(it, None)
            if more is None:
                raise InputError(f"{display}: no '=' after the window.YTD prefix (the file is cut off)")
            buf += more
            if len(buf) > 4096:  # the prefix is a few dozen characters
                raise InputError(f"{display}: no '=' after the window.YTD prefix")
        eq = buf.find("=")
        line += buf.count("\n", 0, eq)
        buf = buf[eq + 1:]
    try:
        yield from iter_array(chain([buf], it), display, line)
    except InputError as e:  # say it in the archive's terms
        msg = str(e).replace("expected a JSON list", "expected a JSON array after '='")
        raise InputError(msg.replace("nothing where a JSON list should start", "nothing after '='")) from None


def _read_small_js(path: str) -> Any:
    """account.js / profile.js: small, read whole (up to 1 MB); None if
    absent, broken or larger."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(_SMALL_JS + 1)
    except OSError:
        return None
    if len(data) > _SMALL_JS:
        return None
    body = data.decode("utf-8-sig", errors="replace")
    eq = body.find("=")
    body = body[eq + 1:] if eq >= 0 and body.lstrip().startswith("window.") else body
    body = body.strip().rstrip(";").strip()
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _unwrap(item: Any, key: str) -> Any:
    if isinstance(item, dict) and isinstance(item.get(key), dict):
        return item[key]
    return item


def owner_from_account(folder: str) -> Author | None:
    """The owner from account.js (and profile.js) in ``folder``."""
    account = _read_small_js(os.path.join(folder, "account.js"))
    if not isinstance(account, list) or not account:
        return None
    acc = _unwrap(account[0], "account")
    if not isinstance(acc, dict):
        return None
    handle = nonempty(acc.get("username"))
    uid = ident(acc.get("accountId"))
    if not uid or not uid.isdigit():
        uid = f"x:@{handle}" if handle else None
    if uid is None:
        return None
    avatar = None
    profile = _read_small_js(os.path.join(folder, "profile.js"))
    if isinstance(profile, list) and profile:
        prof = _unwrap(profile[0], "profile")
        if isinstance(prof, dict):
            avatar = nonempty(prof.get("avatarMediaUrl"))
    return Author(id=uid, platform="x", handle=handle, name=nonempty(acc.get("accountDisplayName")),
                  avatar_url=avatar, url=x_profile_url(handle))


def infer_owner(elements: Iterator[tuple[int, Any]]) -> Author:
    """Without account.js: the owner's handle is in the self-links of their
    own media (x.com/HANDLE/status/OWN_ID/photo/1), and their id in a reply
    to themselves.  Reads until both are known."""
    handle = uid = None
    for _, item in elements:
        tweet = _unwrap(item, "tweet")
        if not isinstance(tweet, dict):
            continue
        own = ident(tweet.get("id_str")) or ident(tweet.get("id")) or ""
        if handle is None:
            for ents in (tweet.get("extended_entities"), tweet.get("entities")):
                for m in seq(obj(ents).get("media")):
                    hit = _MEDIA_SELF_LINK.match(text(obj(m).get("expanded_url")) or "")
                    if hit and hit.group(2) == own:
                        handle = hit.group(1)
                        break
                if handle:
                    break
        if handle and uid is None and (text(tweet.get("in_reply_to_screen_name")) or "").lower() == handle.lower():
            rid = ident(tweet.get("in_reply_to_user_id_str")) or ident(tweet.get("in_reply_to_user_id")) or ""
            uid = rid if rid.isdigit() else None
        if handle and uid:
            break
    if handle:
        return Author(id=uid or f"x:@{handle}", platform="x", handle=handle,
                      url=x_profile_url(handle))
    return Author(id=UNKNOWN_OWNER_ID, platform="x")


@dataclass
class ArchiveOwner:
    """Per-file state: the account the archive belongs to (its posts carry
    no ``user``).  Set by :func:`records` before the first post is read;
    unknown until then."""

    author: Author | None = None


def _owner(f: InputFile) -> Author:
    if f.path == "-":
        return Author(id=UNKNOWN_OWNER_ID, platform="x")
    folder = os.path.dirname(os.path.abspath(f.path))
    owner = owner_from_account(folder)
    if owner is not None:
        return owner
    # A second pass over the file (not possible for stdin).
    probe = InputFile(f.path)
    try:
        return infer_owner(iter_elements(probe.text_chunks(), probe.display))
    except InputError:
        return Author(id=UNKNOWN_OWNER_ID, platform="x")
    finally:
        probe.close()


def records(f: InputFile, ctx: Context) -> Iterator[tuple[str, Any]]:
    m = _PREFIX.match(f.head.lstrip(b"\xef\xbb\xbf"))
    if m and m.group(1).decode() not in _POST_PARTS:
        part = m.group(1).decode()
        raise InputError(
            f"{f.display}: the account archive's {part!r} data (window.YTD.{part}), not posts; "
            "import data/tweets.js (tweet.js, tweets-partN.js) instead"
        )
    state_of(ctx, ArchiveOwner).author = _owner(f)
    for line, item in iter_elements(f.text_chunks(), f.display):
        yield str(line), item


def normalize(item: Any, ctx: Context) -> Iterator[Post]:
    """One array element: ``{"tweet": {…}}`` or the bare status."""
    tweet = _unwrap(item, "tweet")
    if not isinstance(tweet, dict) or ("full_text" not in tweet and "text" not in tweet):
        raise Skip("not an archive post (no tweet / full_text)")
    owner = state_of(ctx, ArchiveOwner).author or Author(id=UNKNOWN_OWNER_ID, platform="x")
    post = status_to_post(tweet, matched=True, source=SOURCE, author=owner, raw=item)
    text = full_text(tweet)
    # No retweeted_status / quoted_status objects in archives: the RT prefix
    # and a permalink among the links are the signs (sources.md §4.1).
    post.is_repost = text.startswith("RT @")
    if not post.is_repost and post.quote_of_id is None:
        post.quote_of_id = quote_from_links(post.links, post.id)
    # Archives keep no reply or quote counts; 0 would be a lie.
    post.reply_count = post.quote_count = None
    yield post


FORMAT = register(Format(
    name="tweets_js",
    description="X/Twitter account archive tweets.js (window.YTD.tweets.part0)",
    kind="custom",
    sniff=sniff,
    normalize=normalize,
    records=records,
    new_state=lambda ctx: ArchiveOwner(),
))
