"""Export one session: a Markdown transcript for a blog post, or JSON/JSONL/CSV.

``export_session(db, session, fmt, stream)`` writes to any text stream, from
the same view model as the recap page and the Datasette page
(``present.views.load_session``), so it says what they say: the session's
post count, "Before the chat", first-timers only when they can be known.
The Markdown groups the chat the way a host recaps it: what was posted
before the chat, each question with its answers (most engaged first) and
their replies nested under them, then the rest of the conversation in time
order, links and people.  Post text is escaped for Markdown (so ``<script>``
or ``[x](javascript:…)`` in a post stays text when the blog renders it) and
only http(s) URLs (``urls.safe_url``) become links, shown shortened.

Every format is written without control characters but newline and tab
(``present.text.clean``): a post cannot send an escape sequence to the
terminal of whoever reads the export.  A deleted post is exported as a
tombstone (``deleted_at``, no text).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from typing import Any, TextIO

import sqlite_utils

from .archive.published import Publication
from .errors import ChatArchiveError
from .present.text import (
    TIME_UNKNOWN,
    URL_IN_TEXT,
    clean,
    clean_data,
    human_duration,
    local_datetime,
    short_url,
    trim_url,
)
from .present.views import SessionPost, SessionView, flatten_tree, load_session
from .urls import safe_url

FORMATS = ("md", "json", "jsonl", "csv")

CSV_COLUMNS = [
    "session", "id", "platform", "created_at", "author_handle", "author_name", "text", "url",
    "reply_to_id", "quote_of_id", "is_repost", "matched", "question", "answers_question",
    "conversation_id", "like_count", "repost_count", "reply_count", "quote_count", "links",
    "media", "media_alt", "deleted_at",
]


def export_session(db: sqlite_utils.Database, session: str | int, fmt: str, stream: TextIO, *,
                   include_unlisted: bool = False, anonymize: bool = False) -> int:
    """Write session ``session`` in ``fmt`` to ``stream``; returns the number of posts.
    An export is published: what the host hid and what people did not
    consent to is left out (``archive.published``; ``include_unlisted``:
    accounts unlisted on their platform are exported too; ``anonymize``:
    every non-host as "Participant N", archive/pseudonyms.py)."""
    if fmt not in FORMATS:
        raise ChatArchiveError(f"Unknown export format {fmt!r} (use one of: {', '.join(FORMATS)})")
    data = load_session(db, session, publication=Publication.load(db, include_unlisted=include_unlisted,
                                                                   anonymize=anonymize))
    if fmt == "md":
        stream.write(clean(markdown(data)))
    elif fmt == "json":
        stream.write(json.dumps(clean_data(as_json(data)), ensure_ascii=False, indent=2) + "\n")
    elif fmt == "jsonl":
        stream.writelines(json.dumps(clean_data(record), ensure_ascii=False) + "\n" for record in post_records(data))
    else:
        writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in post_records(data):
            writer.writerow(csv_row(record))
    return len(data.posts)


# --------------------------------------------------------------------------
# Machine-readable


def post_record(p: SessionPost, slug: str) -> dict[str, Any]:
    sp = p.post
    if p.deleted:  # a tombstone (or a withheld post's place): its place in the threads, nothing it said
        return {
            "session": slug, "id": sp.id, "platform": sp.platform, "created_at": sp.created_at,
            "author_id": None, "author_handle": None, "author_name": None, "text": "", "html": None, "url": None,
            "reply_to_id": sp.reply_to_id, "quote_of_id": sp.quote_of_id, "is_repost": bool(sp.is_repost),
            "matched": bool(sp.matched), "question": p.q_number, "answers_question": p.a_number,
            "conversation_id": sp.conversation_id, "like_count": None, "repost_count": None,
            "reply_count": None, "quote_count": None, "links": [], "media": [], "deleted_at": sp.deleted_at,
        }
    return {
        "session": slug,
        "id": sp.id,
        "platform": sp.platform,
        "created_at": sp.created_at,
        "author_id": sp.author_id,
        "author_handle": p.handle,
        "author_name": p.name or None,
        "text": sp.text or "",
        "html": sp.html,
        "url": sp.url,
        "reply_to_id": sp.reply_to_id,
        "quote_of_id": sp.quote_of_id,
        "is_repost": bool(sp.is_repost),
        "matched": bool(sp.matched),
        "question": p.q_number,
        "answers_question": p.a_number,
        "conversation_id": sp.conversation_id,
        "like_count": sp.like_count,
        "repost_count": sp.repost_count,
        "reply_count": sp.reply_count,
        "quote_count": sp.quote_count,
        "links": list(p.links),
        "media": [{"url": m.url, "type": m.type, "alt": m.alt} for m in p.media],
        "deleted_at": None,
    }


def post_records(data: SessionView) -> Iterable[dict[str, Any]]:
    slug = data.session.slug
    for p in data.posts:
        yield post_record(p, slug)


def as_json(data: SessionView) -> dict[str, Any]:
    stats = {k: v for k, v in data.stats.items() if k != "session"}
    deleted = {p.id for p in data.posts if p.deleted}
    if deleted:  # tombstones keep nothing of what they said, in the statistics either
        stats["top_posts"] = [t for t in stats.get("top_posts") or [] if t.get("id") not in deleted]
        stats["questions"] = [{**q, "text": None} if q.get("post_id") in deleted else q
                              for q in stats.get("questions") or []]
    return {
        "session": data.stats["session"],
        "stats": stats,
        "questions": [
            {"number": q.number, "post_id": q.post_id, "text": None if q.post_id in deleted else q.text,
             "answers": [a.post.id for a in q.answers]}
            for q in data.questions
        ],
        "conversations": [
            {"id": c.id, "size": c.size, "depth": c.depth, "participants": c.participants,
             "started": c.started, "posts": [p.id for _, p in c.items]}
            for c in data.conversations
        ],
        "posts": list(post_records(data)),
    }


_FORMULA = re.compile(r"^(?:[=+\-\t\r]|@\w*\()")


def _cell(value: Any) -> Any:
    # A post that starts like a spreadsheet formula ("=HYPERLINK(…)") must
    # not run when the CSV is opened in Excel/Sheets: prefix a quote (OWASP).
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    row = {k: record.get(k) for k in CSV_COLUMNS}
    row["links"] = " ".join(record["links"])
    row["media"] = " ".join(m["url"] for m in record["media"])
    row["media_alt"] = " | ".join(m["alt"] or "" for m in record["media"]) if record["media"] else ""
    for k in ("is_repost", "matched"):
        row[k] = int(bool(record[k]))
    return {k: _cell(clean(v) if isinstance(v, str) else v) for k, v in row.items()}


# --------------------------------------------------------------------------
# Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_MD_LINE_START = re.compile(r"^(\s*)([-+=>#]|\d+(?=[.)]))")


def md_escape(text: str) -> str:
    """Text that Markdown renders as exactly this text: no emphasis, no
    links, no HTML (``<`` and ``&`` become entities)."""
    text = text.replace("&", "&amp;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _escape_line_start(m: re.Match) -> str:
    # "- x", "> x", "# x" start blocks: escape the mark; "1. x": escape the dot
    mark = m.group(2)
    return m.group(1) + (mark + "\\" if mark[0].isdigit() else "\\" + mark)


def md_text(text: str) -> str:
    """Post text for Markdown: escaped, http(s) URLs as autolinks, line
    breaks kept (as hard breaks)."""

    out, pos = [], 0
    for m in URL_IN_TEXT.finditer(text):
        url, tail = trim_url(m.group(0))
        href = safe_url(url)
        if not href:
            continue
        out.append(md_escape(text[pos:m.start()]))
        out.append(f"{md_url(href, url)}{md_escape(tail)}")
        pos = m.end()
    out.append(md_escape(text[pos:]))
    lines = "".join(out).split("\n")
    lines = [_MD_LINE_START.sub(_escape_line_start, ln) for ln in lines]
    return "  \n".join(ln.rstrip() for ln in lines).strip()


def md_url(href: str, shown: str | None = None) -> str:
    """A URL in Markdown: a link whose text is the URL shortened for reading
    (as the recap shows it); the whole URL is the target."""
    return f"[{md_escape(short_url(shown or href))}]({_md_target(href)})"


def _md_target(href: str) -> str:
    # safe_url percent-encodes spaces, quotes and <>; parentheses are encoded too
    return href.replace("(", "%28").replace(")", "%29")


def _md_link(label: str, url: str | None) -> str:
    href = safe_url(url)
    return f"[{label}]({href})" if href else label


def _who(p: SessionPost) -> str:
    name = md_escape(p.name) if p.name else ""
    handle = md_escape("@" + p.handle)
    return f"**{name}** ({handle})" if name else f"**{handle}**"


def _hhmm(created_at: str | None, data: SessionView) -> str:
    dt = local_datetime(created_at, data.zone)
    return dt.strftime("%H:%M") if dt else TIME_UNKNOWN


def _md_post(p: SessionPost, data: SessionView, indent: str = "", bullet: str = "- ") -> list[str]:
    sp = p.post
    when = _hhmm(sp.created_at, data)
    if p.deleted:
        return [f"{indent}{bullet}*{md_escape(p.placeholder) if p.placeholder else 'Deleted post'}* ({when})"]
    head = f"{indent}{bullet}{_who(p)}, {_md_link(when, sp.url)}: "
    text = sp.text or ""
    if sp.spoiler_text:
        text = f"CW: {sp.spoiler_text}\n{text}"
    body = md_text(text).replace("  \n", "  \n" + indent + " " * len(bullet))
    lines = [head + body]
    extra = []
    for m in p.media:
        kind = "Video" if (m.type or "") in ("video", "animated_gif", "gifv") else "Image"
        alt = f": {md_escape(m.alt)}" if m.alt else ""
        extra.append(_md_link(kind, m.url) + alt)
    if extra:
        lines.append(f"{indent}{' ' * len(bullet)}{' · '.join(extra)}")
    return lines


def _md_note(note: str | None) -> list[str]:
    """The host's note as a quoted block: their Markdown, with raw HTML
    shown as text (the recap shows the same note sanitized)."""
    if not note or not note.strip():
        return []
    lines = note.strip().replace("&", "&amp;").replace("<", "&lt;").splitlines()
    return ["> **Host's note:** " + lines[0], *(f"> {line}" for line in lines[1:]), ""]


def _question_title(text: str, number: int, hashtag: str | None) -> str:
    """The question as a heading: without its "Q1:" marker (the heading has
    it), the chat's own trailing hashtag, or line breaks."""
    text = re.sub(rf"^(?:@\w+\s+)*(?:Q|Question)\s*{number}\s*[:.)\-]?\s*", "", text, flags=re.IGNORECASE)
    if hashtag:
        text = re.sub(rf"(?:\s+#{re.escape(hashtag)})+\s*$", "", text, flags=re.IGNORECASE)
    return md_text(" ".join(text.split()))


def markdown(data: SessionView) -> str:
    s = data.session
    st = data.stats
    zone = data.zone
    start = local_datetime(s.start, zone)
    end = local_datetime(s.end, zone)
    tag = f"#{s.hashtag}" if s.hashtag else "Chat"
    title = s.title or (f"{tag} · {start:%-d %B %Y}" if start else tag)
    out: list[str] = [f"# {md_escape(title)}", ""]
    if start:
        when = f"{start:%A, %-d %B %Y} · {start:%H:%M}"
        if end:
            when += f"–{end:%H:%M}"
        when += f" {start:%Z}"
        if end:
            when += f" ({human_duration((end - start).total_seconds())})"
        out.append(f"**{when}**" + (f" · hosted by {', '.join(md_escape('@' + h) for h in s.hosts)}"
                                      if s.hosts else ""))
        out.append("")
    first = data.first_timers
    counts = [f"{len(data.posts):,} post{'s' if len(data.posts) != 1 else ''}", f"{len(data.participants):,} people"]
    if first:
        counts[-1] += f" ({first} here for the first time in this archive)"
    counts.append(f"{len(data.questions)} question{'s' if len(data.questions) != 1 else ''}")
    out += [" · ".join(counts), ""]
    out += _md_note(data.notes_markdown.get(None))

    shown: set[str] = set()
    qa = {p.id for p in data.posts if p.post.question_id is not None or p.post.answer_to_id is not None}
    before = [p for p in data.lead_in if p.id not in qa and not p.post.is_repost]
    if before:
        out += ["## Before the chat", ""]
        for p in before:
            out += _md_post(p, data)
            shown.add(p.id)
        out.append("")
    for q in data.questions:
        qpost = q.post
        gone = qpost is not None and qpost.deleted
        qtext = "" if gone else (qpost.post.text if qpost else q.text) or ""
        out.append(f"## Q{q.number}: {'*(deleted)*' if gone else _question_title(qtext, q.number, s.hashtag)}")
        out.append("")
        out += _md_note(data.notes_markdown.get(q.number))
        if qpost:
            shown.add(qpost.id)
        if qpost and not gone:
            when = _hhmm(qpost.post.created_at, data)
            n = len(q.answers)
            out.append(f"*Asked by {md_escape('@' + qpost.handle)} at {_md_link(when, qpost.post.url)} · "
                       f"{n} answer{'s' if n != 1 else ''}*")
            out.append("")
        for a in q.answers:
            out += _md_post(a.post, data)
            shown.add(a.post.id)
            for depth, r in a.thread:
                out += _md_post(r, data, indent="  " * depth)
                shown.add(r.id)
        if not q.answers:
            out.append("*No answers in the archive.*")
        out.append("")

    rest = [p for p in data.posts if p.id not in shown and not p.post.is_repost]
    if rest:
        out += ["## The rest of the chat" if data.questions else "## Transcript", ""]
        children = {p.id: [c for c in p.children if c not in shown] for p in rest}
        restset = {p.id for p in rest}
        roots = [p.id for p in rest if p.post.reply_to_id not in restset]
        for depth, pid in flatten_tree(roots, children):
            out += _md_post(data.by_id[pid], data, indent="  " * depth)
        out.append("")

    found = [(safe_url(x.get("url")), x.get("count", 1)) for x in st.get("links") or [] if isinstance(x, dict)]
    links = [(u, n) for u, n in found if u]
    if links:
        out += ["## Links shared", ""]
        out += [f"- {md_url(u)}" + (f" ({n}×)" if n > 1 else "") for u, n in links]
        out.append("")
    if data.participants:
        out += ["## People", ""]
        people = []
        for u in data.participants:
            label = md_escape("@" + (u.handle or "?"))
            badge = " (host)" if u.host else (" (first time in this archive)" if u.first_timer else "")
            people.append(f"{_md_link(label, u.url)}{badge}")
        out += [", ".join(people), ""]
    out += ["---", "", f"*Times in {md_escape(s.timezone or 'UTC')}. Archived with chatarchive.*", ""]
    return "\n".join(out)


__all__ = ["FORMATS", "export_session", "markdown", "md_escape", "md_text", "post_records"]
