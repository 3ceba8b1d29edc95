"""Spreadsheet exports of X/Twitter searches (CSV), mapped by header name:

* TAGS (Twitter Archiving Google Sheet), sources.md §5: 18 columns from
  ``id_str`` to ``entities_str``; R/pandas re-writes put ``NA`` in empty
  cells; ``created_at`` is the (UTC) time; newest rows first.
* The "Twitter Archiver" Google-Sheets add-on: a query row above the header
  (``Date, Screen Name, Full Name, Tweet Text, Tweet ID, …``), dates in the
  sheet's *local* time (so ``--tz`` is required), and ids that Excel may
  have turned into ``1.22587E+18`` — such rows are refused one by one.
* twarc-csv (``twarc2 csv``), sources.md §2.3: dotted v2 column names,
  JSON-encoded list cells, ``\\n`` for newlines, retweets merged with their
  original.

Unknown columns are ignored; missing ones are NULL.  Cells are always
text; counts are held to 0..2^63 and times to the archive's range (a
broken time gives way to the time in the post id, else NULL with a
warning).  t.co links in the text are replaced by the URLs the sheet holds
(``sources.shortlinks``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from ..errors import InputError
from ..models import Author, Media, Post
from ..timeutil import TimeProblem, checked, get_zone, snowflake_time, source_time
from .fields import count as held_count
from .fields import ident, pick_time
from .reading import Context, InputFile, Skip, csv_head, csv_records
from .registry import Format, register, state_of
from .shortlinks import archiver_links, expand, twarc_csv_links, v1_entity_links
from .twarc2 import unescape_x, user_to_author, x_post_url, x_profile_url
from .twitter_v1 import (
    drop_self_links,
    entity_lists,
    is_web_link,
    parse_legacy_or_iso,
    quote_from_links,
    status_id_from_url,
)

_NULLS = {"", "NA", "N/A", "NaN", "nan", "None", "null", "NULL"}
_SCIENTIFIC = re.compile(r"^\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_DECIMAL = re.compile(r"^\d+[.,]\d+$")
# Hashtags and mentions typed in the text, for exports without entities.
_HASHTAG = re.compile(r"(?<![\w&/#])[#＃](\w*[^\W\d]\w*)")
_MENTION = re.compile(r"(?<![A-Za-z0-9_!@#$%&*.])[@＠]([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_@])")


def cell(row: dict, *names: str) -> str | None:
    """The first non-empty value among ``names``; NA/empty are NULL."""
    for name in names:
        v = row.get(name)
        if v is None:
            continue
        v = v.strip()
        if v not in _NULLS:
            return v
    return None


def count(v: str | None, name: str = "count", warnings: list[str] | None = None) -> int | None:
    """Counts as written by Sheets/pandas: '3', '3.0', '1,204'; NULL stays
    NULL; one that is not a count (negative, above 2^63, 'inf') is NULL with
    a warning."""
    if v is None:
        return None
    s = v.replace(",", "").strip()
    if len(s) > 40:
        return None
    try:
        number: int | float = int(s) if s.lstrip("-").isdigit() else float(s)
    except ValueError:
        return None
    return held_count(number, name, warnings)


def post_id(value: str | None, column: str, *urls: str | None) -> str:
    """A post id from an id cell, refusing ids a spreadsheet has mangled;
    a permalink in ``urls`` (e.g. TAGS status_url) can stand in for it."""
    from_url = next((sid for sid in map(status_id_from_url, urls) if sid), None)
    v = (value or "").strip().lstrip("'")  # a sheet's "as text" marker
    if v.isdigit():
        # Excel keeps 15 significant digits: 1225866843658424320 becomes
        # 1225866843658420000.  Such an id names another post.
        if len(v) >= 18 and not v[15:].strip("0"):
            if from_url and from_url[:15] == v[:15]:
                return from_url
            raise Skip(f"Excel-rounded id {v} (15 significant digits, then zeros); re-export the "
                       f"sheet with the {column} column formatted as text")
        return v
    if _SCIENTIFIC.match(v) or _DECIMAL.match(v):
        if from_url and _close(from_url, v):
            return from_url
        raise Skip(f"Excel-mangled id {v}; re-export the sheet with the {column} column formatted as text")
    if from_url:
        return from_url
    if not v:
        raise Skip(f"no post id (empty {column} column)")
    raise Skip(f"post id {v[:30]!r} is not a number")


def _close(exact: str, mangled: str) -> bool:
    try:
        return abs(int(exact) - float(mangled.replace(",", "."))) <= abs(float(mangled.replace(",", "."))) * 1e-4
    except ValueError:
        return False


def text_entities(text: str) -> tuple[list[str], list[str]]:
    """Hashtags and mentions found in the text itself."""
    tags = list(dict.fromkeys(m.group(1) for m in _HASHTAG.finditer(text)))
    mentions = list(dict.fromkeys(m.group(1) for m in _MENTION.finditer(text)))
    return tags, mentions


def _https_avatar(url: str | None) -> str | None:
    if not url or not is_web_link(url):
        return None
    # TAGS v6 copies the http:// avatar; the same image is served over https.
    if url.startswith("http://pbs.twimg.com/"):
        return "https://" + url[len("http://"):]
    return url


_LOCAL_FORMATS = (
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
    "%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M",  # Excel re-saves with 2-digit years
)


def parse_local(value: str, tz: str) -> str:
    """A spreadsheet date cell in the sheet's zone: 'M/D/YYYY HH:MM(:SS)'
    (D/M when the first number cannot be a month), 'YYYY-MM-DD HH:MM:SS';
    Skip when unreadable or outside the archive's range."""
    s = re.sub(r"\s+", " ", value.strip())
    s = re.sub(r"(?<=\d)Z$", "", s)  # R adds a "Z" to local sheet times (sources.md §5.2)
    s = re.sub(r"\.\d+$", "", s)
    m = re.match(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})(.*)$", s)
    if m and int(m.group(1)) > 12 >= int(m.group(2)):
        s = f"{m.group(2)}/{m.group(1)}/{m.group(3)}{m.group(4)}"
    for fmt in _LOCAL_FORMATS:
        try:
            dt = datetime.strptime(s, fmt)
        except ValueError:
            continue
        try:
            return checked(dt.replace(tzinfo=get_zone(tz)), value)
        except TimeProblem as e:
            raise Skip(str(e)) from None
    raise Skip(f"unreadable date {value[:40]!r} (expected M/D/YYYY HH:MM:SS)")


def _sheet_time(pid: str, warnings: list[str], utc: str | None, local: str | None, tz: str | None) -> str | None:
    """A row's time: the UTC cell, else the local-time cell (with --tz),
    else the time the post id encodes, else None, with a warning saying
    what was wrong and what was used."""
    problem = None
    if utc:
        try:
            return source_time(utc, parse_legacy_or_iso)
        except TimeProblem as e:
            problem = f"created_at: {e}"
    if local:
        if tz:
            try:
                got = parse_local(local, tz)
                if problem:
                    warnings.append(f"{problem}; the time was taken from the local time column")
                return got
            except Skip as e:
                problem = problem or f"date: {e}"
        else:
            problem = problem or "no UTC time, and the local time column needs the sheet's time zone (--tz)"
    from_id = snowflake_time(pid)
    if from_id is not None:
        if problem:
            warnings.append(f"{problem}; the time was taken from the post id")
        return from_id
    warnings.append(f"{problem or 'no time given'}; stored without a time")
    return None


# --------------------------------------------------------------------------
# TAGS

TAGS_COLUMNS = ("id_str", "from_user", "text", "created_at")


def _is_tags(rows: list[list[str]]) -> bool:
    return bool(rows) and all(c in rows[0] for c in TAGS_COLUMNS) and "entities_str" in rows[0]


def _json_cell(v: str | None) -> Any:
    if not v:
        return None
    try:
        return orjson.loads(v)
    except orjson.JSONDecodeError:
        return None  # e.g. cut at the sheet's 50,000-character cell limit


def tags_row_to_post(row: dict, ctx: Context | None) -> Post:
    pid = post_id(cell(row, "id_str"), "id_str", cell(row, "status_url"))
    handle = cell(row, "from_user")
    if handle:
        handle = handle.lstrip("@")
    text = unescape_x(row.get("full_text") or row.get("text") or "")
    warnings: list[str] = []
    created_at = _sheet_time(pid, warnings, cell(row, "created_at"), cell(row, "time"), ctx.tz if ctx else None)
    uid = cell(row, "from_user_id_str")
    if not (uid and uid.isdigit()):
        uid = f"x:@{handle}" if handle else None
    author = None
    if uid:
        author = Author(id=uid, platform="x", handle=handle, name=cell(row, "user_name"),
                        avatar_url=_https_avatar(cell(row, "profile_image_url", "user_profile_image_url")),
                        url=x_profile_url(handle))
    entities = _json_cell(cell(row, "entities_str"))
    extended = _json_cell(cell(row, "extended_entities_str"))
    if isinstance(entities, dict):
        hashtags, mentions, links, media = entity_lists(entities, extended if isinstance(extended, dict) else None)
        links = drop_self_links(links, pid)
        text = expand(text, v1_entity_links(entities, extended))
    else:
        hashtags, mentions = text_entities(text)
        links, media = [], []
    reply_to = cell(row, "in_reply_to_status_id_str")
    reply_to = reply_to if reply_to and reply_to.isdigit() else None
    reply_author = cell(row, "in_reply_to_screen_name", "in_reply_to_user_id_str") if reply_to else None
    # TAGS builds "RT @user: " itself, so the prefix is reliable here.
    is_repost = text.startswith("RT @")
    quote_of = cell(row, "quoted_status_id_str")
    quote_of = quote_of if quote_of and quote_of.isdigit() else None
    is_quote = (cell(row, "is_quote_status") or "").lower()
    if quote_of is None and not is_repost and is_quote not in ("false", "0", "no"):
        quote_of = quote_from_links(links, pid)
    return Post(
        id=pid,
        platform="x",
        source="tags_csv",
        created_at=created_at,
        author=author,
        text=text,
        url=x_post_url(handle, pid),
        reply_to_id=reply_to,
        reply_to_author=reply_author.lstrip("@") if reply_author else None,
        root_id=None if reply_to else pid,
        quote_of_id=quote_of,
        is_repost=is_repost,
        lang=cell(row, "lang"),
        like_count=count(cell(row, "favorite_count"), "favorite_count", warnings),
        repost_count=count(cell(row, "retweet_count"), "retweet_count", warnings),
        reply_count=count(cell(row, "reply_count"), "reply_count", warnings),
        quote_count=count(cell(row, "quote_count"), "quote_count", warnings),
        matched=True,
        hashtags=hashtags,
        mentions=mentions,
        links=links,
        media=media,
        raw=row,
        warnings=warnings,
    )


def normalize_tags(row: dict, ctx: Context) -> Iterator[Post]:
    yield tags_row_to_post(row, ctx)


# --------------------------------------------------------------------------
# Twitter Archiver add-on

ARCHIVER_COLUMNS = ("Tweet ID", "Screen Name", "Tweet Text")
_ARCHIVER_URL_HEADERS = ("tweet url", "tweet link", "link to tweet", "permalink", "status url",
                         "tweet permalink", "url")


def _archiver_header_index(rows: list[list[str]]) -> int | None:
    for i, row in enumerate(rows[:2]):
        if all(c in row for c in ARCHIVER_COLUMNS):
            return i
    return None


def _is_archiver(rows: list[list[str]]) -> bool:
    return _archiver_header_index(rows) is not None


def _split_urls(v: str | None) -> list[str]:
    if not v:
        return []
    return [u.strip().strip('"\'') for u in re.split(r"[\s,;|]+", v) if u.strip()]


_QUERY_CELL = re.compile(r"^\s*Twitter Query:\s*(.*)$", re.IGNORECASE)
_QUERY_TAG = re.compile(r"(?<![\w-])#(\w+)")


@dataclass
class ArchiverSheet:
    """Per-file state: the hashtags the sheet's query row names (when it is
    one ``#tag`` query, every row matched it)."""

    query_tags: list[str] = field(default_factory=list)


def query_tags(rows: list[list[str]]) -> list[str]:
    """The hashtags of the sheet's query row ("Twitter Query: #chat lang:en
    -filter:retweets"): those every row matched — not negated ones, and none
    when the query is an OR of several."""
    for row in rows[:1]:
        for c in row:
            m = _QUERY_CELL.match(c or "")
            if m:
                query = m.group(1)
                if re.search(r"\bOR\b", query):
                    return []
                return list(dict.fromkeys(_QUERY_TAG.findall(query)))
    return []


def split_glued_retweet(text: str, tags: list[str]) -> str:
    """The Archiver writes a quoted retweet as "… #chatRT @user: …": put
    back the space, so the tag is #chat (not #chatRT) and "RT @user:" reads
    as a retweet.  Done for the query's own tags, and for any tag directly
    followed by "RT @user:"."""
    if "RT @" not in text:
        return text
    for tag in tags:
        text = re.sub(rf"#({re.escape(tag)})RT(?= @)", r"#\1 RT", text, flags=re.IGNORECASE)
    return re.sub(r"#(\w+?)RT(?= @\w{1,15}:)", r"#\1 RT", text)


def archiver_row_to_post(row: dict, ctx: Context) -> Post:
    if not ctx.tz:
        raise InputError(f"{ctx.path}: Twitter Archiver dates are in the sheet's local time; give its time zone with --tz")
    sheet = ctx.state if isinstance(ctx.state, ArchiverSheet) else ArchiverSheet()
    url_cells = [v for k, v in row.items()
                 if k and k.strip().lower() in _ARCHIVER_URL_HEADERS and v]
    pid = post_id(cell(row, "Tweet ID"), "Tweet ID", *url_cells)
    handle = (cell(row, "Screen Name") or "").lstrip("@").strip() or None
    if not handle:
        raise Skip("no Screen Name")
    warnings: list[str] = []
    created_at = _sheet_time(pid, warnings, None, cell(row, "Date"), ctx.tz)
    # The sheet shows the text as X sent it, already unescaped ("&", not "&amp;").
    text = split_glued_retweet(row.get("Tweet Text") or "", sheet.query_tags)
    text = expand(text, archiver_links(row, text))
    hashtags, mentions = text_entities(text)
    seen = {t.lower() for t in hashtags}
    hashtags += [t for t in sheet.query_tags if t.lower() not in seen]
    links: list[str] = []
    media: list[Media] = []
    for u in _split_urls(cell(row, "Link(s)", "Links")) + _split_urls(cell(row, "Media")):
        if not is_web_link(u):
            continue  # pic.twitter.com/… and t.co are not the media or the link itself
        host = u.split("/", 3)[2].lower()
        if host.endswith("twimg.com"):
            if u not in {m.url for m in media}:
                kind = "photo" if re.search(r"\.(jpe?g|png|gif|webp)(\?|$)", u, re.I) else None
                media.append(Media(url=u, type=kind))
        elif u not in links and status_id_from_url(u) != pid:
            links.append(u)
    avatar = cell(row, "Profile Image", "Profile Image URL")
    return Post(
        id=pid,
        platform="x",
        source="twitter_archiver",
        created_at=created_at,
        author=Author(id=f"x:@{handle}", platform="x", handle=handle,
                      name=cell(row, "Full Name"), avatar_url=_https_avatar(avatar),
                      url=x_profile_url(handle)),
        text=text,
        url=x_post_url(handle, pid),
        # The add-on records no reply-to id; a leading @mention is not enough.
        root_id=None,
        quote_of_id=quote_from_links(links, pid),
        is_repost=text.startswith("RT @"),
        like_count=count(cell(row, "Favorites", "Likes"), "Favorites", warnings),
        repost_count=count(cell(row, "Retweets"), "Retweets", warnings),
        matched=True,
        hashtags=hashtags,
        mentions=mentions,
        links=links,
        media=media,
        raw=row,
        warnings=warnings,
    )


def normalize_archiver(row: dict, ctx: Context) -> Iterator[Post]:
    yield archiver_row_to_post(row, ctx)


def archiver_records(f: InputFile, ctx: Context) -> Iterator[tuple[str, Any]]:
    """Refuse the file before reading a row when no --tz was given; find the
    header in row 2 (or row 1 when the query row was deleted)."""
    if not ctx.tz:
        raise InputError(
            f"{f.display}: Twitter Archiver dates are in the sheet's local time zone; "
            "give it with --tz (e.g. --tz America/New_York)"
        )
    get_zone(ctx.tz)
    rows = csv_head(f.head)
    index = _archiver_header_index(rows)
    state_of(ctx, ArchiverSheet).query_tags = query_tags(rows) if index else []
    yield from csv_records(f, ctx, ARCHIVER.header_row if index is None else index)


# --------------------------------------------------------------------------
# twarc-csv


def _is_twarc_csv(rows: list[list[str]]) -> bool:
    if not rows:
        return False
    h = set(rows[0])
    return (
        {"id", "text", "created_at"} <= h
        and bool({"author_id", "author.id", "author.username", "conversation_id"} & h)
        and "id_str" not in h
        and "from_user" not in h
    )


def _json_list(v: str | None) -> list:
    if not v:
        return []
    value = _json_cell(v)
    if isinstance(value, list):
        return value
    return [v] if value is None and not v.startswith("[") else []


def _twarc_text(v: str | None) -> str:
    if not v:
        return ""
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        try:  # --json-encode-text (and older twarc-csv defaults)
            decoded = orjson.loads(v)
            if isinstance(decoded, str):
                return decoded
        except orjson.JSONDecodeError:
            pass
    # twarc-csv drops CR and writes LF as the two characters "\n".
    return v.replace("\\n", "\n")


def _strip(values: list, prefix: str, key: str) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, dict):  # --no-process-entities: the v2 entity objects
            v = v.get(key)
        if isinstance(v, str):
            v = v[1:] if v.startswith(prefix) else v
            if v and v not in out:
                out.append(v)
    return out


def twarc_csv_row_to_post(row: dict, ctx: Context | None) -> Post:
    pid = post_id(cell(row, "id"), "id")
    warnings: list[str] = []
    refs = {}
    for r in _json_list(cell(row, "referenced_tweets")):  # older twarc-csv: a JSON list
        if isinstance(r, dict) and isinstance(r.get("type"), str) and ident(r.get("id")):
            refs[r["type"]] = str(ident(r.get("id")))
    reply_to = cell(row, "referenced_tweets.replied_to.id") or refs.get("replied_to")
    retweeted = cell(row, "referenced_tweets.retweeted.id") or refs.get("retweeted")
    quoted = cell(row, "referenced_tweets.quoted.id") or refs.get("quoted")
    author_id = cell(row, "author_id", "author.id")
    author = user_to_author(
        {"id": author_id, "username": cell(row, "author.username"), "name": cell(row, "author.name"),
         "profile_image_url": cell(row, "author.profile_image_url")} if author_id else None,
        author_id,
    )
    text = unescape_x(_twarc_text(cell(row, "text")))
    text = expand(text, twarc_csv_links(row, text))
    rt_user = cell(row, "retweeted_username")
    if retweeted and rt_user:
        # --merge-retweets put the original's full text here; store the
        # repost as every other importer does.
        text = f"RT @{rt_user}: {text}"
    links = []
    for u in _json_list(cell(row, "entities.urls")):
        if isinstance(u, dict):
            if u.get("media_key"):
                continue
            u = u.get("unwound_url") or u.get("expanded_url")
        if is_web_link(u) and u not in links and status_id_from_url(u) != pid:
            links.append(u)
    media = []
    for m in _json_list(cell(row, "attachments.media")):
        if isinstance(m, dict):
            url = m.get("url") or m.get("preview_image_url")
            if isinstance(url, str) and is_web_link(url):
                media.append(Media(url=url, type=m.get("type"), alt=m.get("alt_text"),
                                   preview_url=m.get("preview_image_url")))
    handle = author.handle if author else None
    # For a merged retweet the metrics are the original's, not the repost's.
    metric = (lambda name: None) if retweeted else (
        lambda name: count(cell(row, f"public_metrics.{name}"), name, warnings))
    return Post(
        id=pid,
        platform="x",
        source="twarc_csv",
        created_at=pick_time([("created_at", cell(row, "created_at"))], warnings,
                             fallback=("the post id", snowflake_time(pid))),
        author=author,
        text=text,
        url=x_post_url(handle, pid),
        reply_to_id=reply_to,
        reply_to_author=(cell(row, "in_reply_to_username", "in_reply_to_user_id") if reply_to else None),
        root_id=cell(row, "conversation_id"),
        quote_of_id=quoted,
        is_repost=retweeted is not None,
        lang=cell(row, "lang"),
        like_count=metric("like_count"),
        repost_count=metric("retweet_count"),
        reply_count=metric("reply_count"),
        quote_count=metric("quote_count"),
        matched=True,
        hashtags=_strip(_json_list(cell(row, "entities.hashtags")), "#", "tag"),
        mentions=_strip(_json_list(cell(row, "entities.mentions")), "@", "username"),
        links=links,
        media=media,
        raw=row,
        warnings=warnings,
    )


def normalize_twarc_csv(row: dict, ctx: Context) -> Iterator[Post]:
    yield twarc_csv_row_to_post(row, ctx)


# Detection tries these in registry.ORDER: the Archiver's preamble row, then
# TAGS' id_str/from_user header, then twarc-csv's v2 names (which exclude both).
ARCHIVER = register(Format(
    name="twitter_archiver",
    description='"Twitter Archiver" add-on CSV (local times: needs --tz)',
    kind="csv",
    sniff=_is_archiver,
    normalize=normalize_archiver,
    records=archiver_records,
    header_row=1,
    new_state=lambda ctx: ArchiverSheet(),
))
TAGS = register(Format(
    name="tags_csv",
    description="TAGS (Twitter Archiving Google Sheet) CSV export",
    kind="csv",
    sniff=_is_tags,
    normalize=normalize_tags,
))
TWARC_CSV = register(Format(
    name="twarc_csv",
    description="twarc-csv CSV (twarc2 csv)",
    kind="csv",
    sniff=_is_twarc_csv,
    normalize=normalize_twarc_csv,
))
