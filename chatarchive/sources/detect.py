"""Format detection: which registered format an opened file is, or one
sentence saying what it looks like instead (counts, profiles, an errors-only
API response, an unrelated CSV…)."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..safety import printable
from .reading import (
    MAX_RECORD_BYTES,
    NOTHING,
    InputFile,
    csv_head,
    first_element,
    first_lines,
    is_jsonl,
    loads_or_nothing,
)
from .registry import FORMATS, Format


def sample_of(value: Any) -> Any:
    """For sniffing: the first element of a list, else the value."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _first_json_value(f: InputFile) -> Any:
    """The first record of a JSONL file, or the whole JSON document."""
    if is_jsonl(f):
        for line in first_lines(f.head):
            value = loads_or_nothing(line)
            if value is not NOTHING:
                return value
        return NOTHING
    if f.head.lstrip(b" \t\r\n")[:1] == b"[":
        # A list (of statuses, PostViews…): its first element is enough, and
        # json_records streams the rest.
        while True:
            first = first_element(f.head)
            if first is not NOTHING or len(f.head) > MAX_RECORD_BYTES or not f.read_more():
                return first
    # A whole (probably pretty-printed) object: parse it once, up to the
    # cap; json_records hands on the parsed value.
    value = loads_or_nothing(f.read_document())
    f.document = value
    return value


def detect(f: InputFile) -> Format:
    """Pick the format of an opened file (formats in registry order within
    each kind), or raise InputError saying what it looks like."""
    head = f.head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise InputError(f"{f.display}: the file is empty")
    if b"\x00" in head[:4096]:
        raise InputError(f"{f.display}: binary data (or UTF-16 text), not a chat file; "
                         "expected UTF-8 JSON, JSONL or CSV")
    for fmt in FORMATS.values():
        if fmt.kind == "custom" and fmt.sniff(head):
            return fmt
    if head[:1] in (b"{", b"["):
        value = _first_json_value(f)
        if value is NOTHING:
            raise InputError(f"{f.display}: looks like JSON but cannot be parsed (truncated or corrupt?)")
        for fmt in FORMATS.values():
            if fmt.kind == "json" and fmt.sniff(value):
                return fmt
        raise InputError(f"{f.display}: {describe_non_posts(value)}")
    rows = csv_head(head)
    for fmt in FORMATS.values():
        if fmt.kind == "csv" and fmt.sniff(rows):
            return fmt
    if rows and len(rows[0]) > 1:
        cols = printable(", ".join(c for c in rows[0][:6] if c))
        raise InputError(f"{f.display}: a CSV file whose columns ({cols}…) match no known chat export")
    raise InputError(f"{f.display}: not a recognised chat file (not JSON, JSONL, CSV or tweets.js)")


def describe_non_posts(value: Any) -> str:
    """A sentence naming what a JSON value that holds no posts looks like."""
    item = sample_of(value)
    if isinstance(item, dict) and "errors" in item and not item.get("data") and "text" not in item:
        errors = item.get("errors")
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        said = first.get("detail") or first.get("message") or first.get("title")
        said = f" ({printable(str(said))})" if said else ""
        return f"an API response holding only errors{said} and no posts; nothing to import"
    if isinstance(item, dict) and "data" in item and "text" not in item:
        data = item.get("data")
        if not data:
            return "an API response with no posts; nothing to import"
        item = sample_of(data)
    if not isinstance(item, dict):
        return "JSON that holds no posts"
    keys = set(item)
    if "tweet_count" in keys:
        return "twarc2 counts output (post counts per period), not posts; nothing to import"
    if "action" in keys and "reason" in keys:
        return "compliance output (deleted/protected ids), not posts; nothing to import"
    if {"owner_id", "follower_count"} & keys or "member_count" in keys:
        return "Twitter lists output, not posts; nothing to import"
    if "acct" in keys:  # before "username": Mastodon accounts have both
        return "Mastodon accounts, not statuses; nothing to import"
    if "username" in keys and "text" not in keys:
        return "user profiles (twarc2 users output), not posts; nothing to import"
    if "did" in keys and "handle" in keys:
        return "Bluesky profiles, not posts; nothing to import"
    shown = printable(", ".join(sorted(map(str, keys))[:8]))
    return f"JSON objects with keys ({shown}) that match no known post format"
