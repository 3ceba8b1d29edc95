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

import codecs
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..models import Author, Post
from .reading import Context, InputFile, Skip
from .registry import Format, register, state_of
from .twarc2 import x_profile_url
from .twitter_v1 import _MEDIA_SELF_LINK, full_text, quote_from_links, status_to_post

SOURCE = "tweets_js"
UNKNOWN_OWNER_ID = "x:archive-owner"
_PREFIX = re.compile(rb"^\s*window\.YTD\.(\w+)\.part(\d+)\s*=")
_BARE_ARRAY = re.compile(rb'^\s*\[\s*\{\s*"tweet"\s*:')
_POST_PARTS = {"tweets", "tweet", "community_tweet"}
_DECODER = json.JSONDecoder()
_WS = " \t\r\n"


def sniff(head: bytes) -> bool:
    return bool(_PREFIX.match(head) or _BARE_ARRAY.match(head))


# --------------------------------------------------------------------------
# Reading the array without executing or loading it whole


def _text_chunks(f: InputFile) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    for chunk in f.chunks():
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def iter_elements(chunks: Iterator[str], display: str) -> Iterator[tuple[int, Any]]:
    """Yield (line, element) for each element of the JSON array that follows
    the ``window.YTD.<name>.partN =`` prefix (or starts the text).  A broken
    or cut-off element is yielded as a Skip and ends the reading."""
    buf = ""
    line = 1
    eof = False
    it = iter(chunks)

    def more() -> bool:
        nonlocal buf, eof
        if eof:
            return False
        for piece in it:
            if piece:
                buf += piece
                return True
        eof = True
        return False

    # the prefix: everything up to and including the first "="
    while len(buf.lstrip()) < len("window.") and "[" not in buf:
        if not more():
            break
    if not buf.strip():
        raise InputError(f"{display}: the file is empty")
    if buf.lstrip().startswith("window."):
        while "=" not in buf:
            if not more():
                raise InputError(f"{display}: no '=' after the window.YTD prefix (the file is cut off)")
        eq = buf.find("=")
        line += buf.count("\n", 0, eq)
        buf = buf[eq + 1:]
    pos = 0
    # the opening bracket
    while True:
        while pos < len(buf) and buf[pos] in _WS:
            if buf[pos] == "\n":
                line += 1
            pos += 1
        if pos < len(buf):
            break
        buf, pos = "", 0
        if not more():
            raise InputError(f"{display}: nothing after '=' (the file is cut off)")
    if buf[pos] != "[":
        raise InputError(f"{display}: expected a JSON array after '=', found {buf[pos:pos + 20]!r}")
    pos += 1
    index = 0
    while True:
        # skip whitespace and the comma between elements
        while True:
            while pos < len(buf) and (buf[pos] in _WS or buf[pos] == ","):
                if buf[pos] == "\n":
                    line += 1
                pos += 1
            if pos < len(buf):
                break
            buf, pos = "", 0
            if not more():
                yield line, Skip("the array is cut off (no closing ']'): the file may be truncated")
                return
        if buf[pos] == "]":
            return
        index += 1
        while True:
            try:
                value, end = _DECODER.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as e:
                if more():
                    continue  # the element may continue in the next chunk
                cut = not buf.rstrip().rstrip(";").rstrip().endswith("]")
                reason = "the file is cut off" if cut else f"invalid JSON: {e.msg}"
                yield line, Skip(f"item {index}: {reason}; the rest of the file cannot be read")
                return
        yield line, value
        line += buf.count("\n", pos, end)
        pos = end
        if pos > 1 << 20:  # drop what was read, keep memory flat
            buf, pos = buf[pos:], 0


def _read_small_js(path: str) -> Any:
    """account.js / profile.js: small, read whole; None if absent or broken."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    text = data.decode("utf-8-sig", errors="replace")
    eq = text.find("=")
    body = text[eq + 1:] if eq >= 0 and text.lstrip().startswith("window.") else text
    body = body.strip().rstrip(";").strip()
    try:
        return json.loads(body)
    except ValueError:
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
    handle = acc.get("username") or None
    uid = str(acc.get("accountId") or "") or None
    if not uid or not uid.isdigit():
        uid = f"x:@{handle}" if handle else None
    if uid is None:
        return None
    avatar = None
    profile = _read_small_js(os.path.join(folder, "profile.js"))
    if isinstance(profile, list) and profile:
        prof = _unwrap(profile[0], "profile")
        if isinstance(prof, dict):
            avatar = prof.get("avatarMediaUrl") or None
    return Author(id=uid, platform="x", handle=handle, name=acc.get("accountDisplayName") or None,
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
        own = str(tweet.get("id_str") or tweet.get("id") or "")
        if handle is None:
            for ents in (tweet.get("extended_entities"), tweet.get("entities")):
                for m in (ents or {}).get("media") or []:
                    hit = _MEDIA_SELF_LINK.match(str((m or {}).get("expanded_url") or ""))
                    if hit and hit.group(2) == own:
                        handle = hit.group(1)
                        break
                if handle:
                    break
        if handle and uid is None and str(tweet.get("in_reply_to_screen_name") or "").lower() == handle.lower():
            rid = str(tweet.get("in_reply_to_user_id_str") or tweet.get("in_reply_to_user_id") or "")
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
        return infer_owner(iter_elements(_text_chunks(probe), probe.display))
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
    for line, item in iter_elements(_text_chunks(f), f.display):
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
