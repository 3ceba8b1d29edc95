"""What each page of the site shows: the template variables of the session
pages, the hashtag pages, the participant pages and the index.

Every post comes from ``present.views`` (the same view model and HTML as the
exports and the Datasette pages) with the site's link targets; this module
only arranges them (before the chat, Q&A, threads, conversations,
transcript, timeline, people, links, media) and reads nothing but through
``archive.queries`` and the analysis' statistics.  It writes nothing.

The index and hashtag pages list every session of the archive
(:func:`session_rows`), whether or not this run renders its page: a row's
post count is ``Session.posts``, the count its own page shows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from markupsafe import Markup, escape

from ..analysis import stats as stats_mod
from ..archive import queries
from ..archive.queries import Connection, PostRow
from ..models import Session
from ..present.html import DELETED, avatar_css, mini_html, post_html
from ..present.model import Person, PostView
from ..present.text import linkify, local_datetime
from ..present.views import (
    SessionPost,
    SessionView,
    engagement,
    post_view,
    session_post_views,
    session_zone,
    time_key,
)
from ..urls import safe_url
from .resources import SharedLink, eligible_links, question_links, session_links
from .sitemap import SiteMap

# --------------------------------------------------------------------------
# Session pages


@dataclass(slots=True)
class TreeItem:
    """A post in a reply tree: its depth (capped for indentation) and the depth shown beyond the cap."""

    d: int
    deep: int
    p: PostView


@dataclass(slots=True)
class AnswerItem:
    post: PostView
    thread: list[TreeItem]


@dataclass(slots=True)
class QuestionItem:
    number: int
    anchor: str
    post: PostView | None
    text: Markup
    answers_count: int
    first_answer: float | None
    answers: list[AnswerItem]
    links: list[SharedLink] = field(default_factory=list)  # shared in the question, its answers and their replies


@dataclass(slots=True)
class ConversationItem:
    size: int
    participants: int
    depth: int
    started: str
    items: list[TreeItem]


@dataclass(slots=True)
class PersonItem:
    """Someone in the session's People list."""

    person: Person
    href: str | None
    handle: str
    name: str
    posts: int
    replies_received: int
    host: bool
    first_timer: bool | None  # first time in this archive; None: unknowable


def session_title(s: Session) -> str:
    if s.title:
        return s.title
    tag = f"#{s.hashtag}" if s.hashtag else "Chat"
    start = local_datetime(s.start, session_zone(s.timezone))
    return f"{tag} · {start.strftime('%-d %B %Y')}" if start else tag


# The timeline starts this many minutes before the chat's core: a lead-in
# hours long is listed under "Before the chat" instead of flattening the bars.
TIMELINE_LEAD_MINUTES = 15


def session_context(site: SiteMap, view: SessionView) -> dict[str, Any]:
    """The variables of session.html."""
    root = "../"
    st = view.stats
    s = view.session
    targets = site.targets(root, own=s.hashtag)
    views = session_post_views(view, site.people, targets)

    def tree(items: Iterable[tuple[int, SessionPost]], shift: int = 0) -> list[TreeItem]:
        out = []
        for d, p in items:
            v = views[p.post.id]
            if v.mini is None:
                v.mini = mini_html(v)
            out.append(TreeItem(min(d - shift, 7), d - shift, v))
        return out

    eligible = eligible_links(view)
    links_of = question_links(view, eligible)
    questions = []
    for q in view.questions:
        post = views.get(q.post_id) if q.post_id else None
        text = Markup(escape(post.placeholder or DELETED)) if post is not None and post.deleted else post.body if post else linkify(q.text or "")
        questions.append(QuestionItem(
            number=q.number, anchor=f"q{q.number}", post=post, text=text,
            answers_count=len(q.answers), first_answer=q.first_answer_seconds,
            answers=[AnswerItem(views[a.post.post.id], tree(a.thread, 1)) for a in q.answers],
            links=links_of.get(q.number, [])))
    # Threads that start at a question or an answer are in the Q&A (answers with
    # their replies); the conversations view holds the rest, biggest first.
    convs = [ConversationItem(c.size, c.participants, c.depth, c.started, tree(c.items))
             for c in view.conversations
             if c.items and c.items[0][1].q_number is None and c.items[0][1].post.answer_to_id is None]
    convs.sort(key=lambda c: (-c.size, *time_key(c.started)))
    start = local_datetime(s.start, view.zone)
    end = local_datetime(s.end, view.zone)
    people = [site.people.of(p) for p in view.posts]
    participants = []
    for part in view.participants:
        person = site.people.get(part.author_id, part.handle, part.name, part.platform)
        participants.append(PersonItem(person, site.person_href(person, root), part.handle, part.name, part.posts,
                                       part.replies_received, part.host, part.first_timer))
    media = [(m, v) for v in views.values() for m in v.media if not v.repost and not v.deleted]
    top = [views[t["id"]] for t in st.get("top_posts") or []
           if isinstance(t, dict) and t.get("id") in views and not views[t["id"]].repost and not views[t["id"]].deleted]
    links = session_links(view, eligible)  # once each (urls.canonical_url), with who shared them
    hosts: list[dict[str, Any]] = []
    for h in s.hosts:
        host = site.people.by_handle.get((h or "").lstrip("@").lower())
        hosts.append({"handle": (h or "").lstrip("@"), "href": site.person_href(host, root), "person": host})
    zone_name = start.strftime("%Z") if start else "UTC"
    posts = [views[p.post.id] for p in view.posts]
    title = session_title(s)
    first_timers = view.first_timers
    return {
        "root": root,
        "page_title": title,
        "s": s,
        "st": st,
        "hashtag_href": root + site.tag_pages[s.hashtag.lower()] if s.hashtag and s.hashtag.lower() in site.tag_pages else None,
        "title": title,
        "date": start.strftime("%A, %-d %B %Y") if start else "",
        "day": start.strftime("%-d") if start else "",
        "short": start.strftime("%-d %b %Y") if start else "",
        "month": start.strftime("%b %Y") if start else "",
        "start_time": start.strftime("%H:%M") if start else "",
        "end_time": end.strftime("%H:%M") if end else "",
        "zone_abbr": zone_name,
        "zone_name": s.timezone or "UTC",
        "duration": (end - start).total_seconds() if start and end else None,
        "hosts": hosts,
        "posts": posts,
        "questions": questions,
        "conversations": convs,
        "participants": participants,
        "first_timers": first_timers,  # None: unknowable (the hashtag's first archived session)
        "post_count": len(posts),  # the session's posts (Session.posts, session_stats()["posts"])
        "matched_count": sum(1 for p in view.posts if p.post.matched),
        "context_count": sum(1 for p in view.posts if not p.post.matched),
        "lead_in": [views[p.post.id] for p in view.lead_in],
        "highlights": [views[p.post.id] for p in view.highlights],  # pinned by the host
        "host_note": view.notes.get(None),  # sanitized HTML (present.text.note_html)
        "question_notes": {k: v for k, v in view.notes.items() if k is not None},
        "media": media,
        "links": links,
        "top_posts": top[:5],
        "timeline": timeline(st, view.zone, since=s.start),
        "transcript": transcript_groups(posts),
        "avatar_css": avatar_css(people + [h["person"] for h in hosts if h["person"]], targets.image),
        "multi_platform": len({p.post.platform for p in view.posts}) > 1,
    }


def session_row(site: SiteMap, s: Session, *, participants: int | None, first_timers: int | None,
                published: bool) -> dict[str, Any]:
    """A session as the index and hashtag pages list it (every session of the
    archive; ``published``: it has a page in the site, which the row links)."""
    zone = session_zone(s.timezone)
    start = local_datetime(s.start, zone)
    return {
        "id": s.id, "page": site.session_pages.get(s.id, ""), "published": published, "slug": s.slug,
        "hashtag": s.hashtag or "", "title": session_title(s), "start": s.start or "",
        "date": start.strftime("%A, %-d %B %Y") if start else "", "time": start.strftime("%H:%M") if start else "",
        "zone": start.strftime("%Z") if start else "", "day": start.strftime("%-d") if start else "",
        "month": start.strftime("%b %Y") if start else "", "short": start.strftime("%-d %b %Y") if start else "",
        "posts": s.posts, "participants": participants if participants is not None else (s.participants or 0),
        "first_timers": first_timers, "questions": s.questions or 0,
        "hosts": [h.lstrip("@") for h in s.hosts if h],
    }


def hashtags_stats(db: Connection, sessions: Iterable[Session], *,
                   withheld_authors: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """``stats.hashtag_stats`` of every hashtag of these sessions, by lower-case hashtag
    (without the people a published output may not name: ``withheld_authors``)."""
    skip = set(withheld_authors)
    return {tag: stats_mod.hashtag_stats(db, tag, withheld_authors=skip)
            for tag in sorted({s.hashtag.lower() for s in sessions if s.hashtag})}


def session_rows(site: SiteMap, sessions: list[Session], tag_stats: dict[str, dict[str, Any]], published: set[int],
                 first_timers: dict[int, int | None]) -> list[dict[str, Any]]:
    """Every session of the archive as the index and hashtag pages list it,
    newest first; participants as the statistics count them (per hashtag,
    ``stats.hashtag_stats``), first-timers as each session's page says
    (``first_timers``; unknown without a page)."""
    people: dict[int, int] = {}
    for hs in tag_stats.values():
        for entry in hs.get("sessions") or []:
            people[entry["id"]] = entry.get("participants") or 0
    rows = [session_row(site, s, participants=people.get(s.id), first_timers=first_timers.get(s.id),
                        published=s.id in published) for s in sessions]
    rows.sort(key=lambda r: (r["start"], r["id"]), reverse=True)
    return rows


def transcript_groups(posts: list[PostView]) -> list[dict[str, Any]]:
    """The transcript cut every 10 minutes (local time), each cut a heading
    with an anchor; posts whose time is unknown last, under "Time unknown"."""
    groups: list[dict[str, Any]] = []
    unknown = [v for v in posts if v.dt is None]
    for v in posts:
        dt = v.dt
        if dt is None:
            continue
        key = dt.strftime("%Y%m%d%H") + f"{dt.minute // 10}0"
        if not groups or groups[-1]["key"] != key:
            label = dt.replace(minute=dt.minute // 10 * 10).strftime("%H:%M")
            if groups and groups[-1]["day"] != dt.date():
                label = dt.strftime("%-d %b ") + label
            groups.append({"key": key, "day": dt.date(), "anchor": f"t{key[-4:]}" if not groups or
                           groups[-1]["day"] == dt.date() else f"t{key[-8:]}", "label": label, "posts": []})
        groups[-1]["posts"].append(v)
    if unknown:
        groups.append({"key": "unknown", "day": None, "anchor": "t-unknown", "label": "Time unknown", "posts": unknown})
    seen: set[str] = set()
    for g in groups:
        while g["anchor"] in seen:
            g["anchor"] += "x"
        seen.add(g["anchor"])
    return groups


def timeline(st: dict[str, Any], zone: tzinfo, since: str | None = None) -> dict[str, Any]:
    """Posts per minute as one SVG path of bars, the questions marked on it,
    and time ticks; from a quarter of an hour before ``since`` (the core's
    start) when the statistics reach back further (a lead-in)."""
    minutes = [m for m in st.get("per_minute") or []
               if isinstance(m, dict) and isinstance(m.get("minute"), str) and isinstance(m.get("posts"), int)
               and _minute_dt(m["minute"]) is not None]
    first = local_datetime(since, timezone.utc) if since else None
    if first is not None and minutes and first.year > 1:  # (0001-01-01 has no quarter hour before it)
        cut = (first - timedelta(minutes=TIMELINE_LEAD_MINUTES)).strftime("%Y-%m-%dT%H:%M")
        minutes = [m for m in minutes if m["minute"] >= cut] or minutes
    if not minutes:
        return {"bars": "", "n": 0, "max": 0, "marks": [], "ticks": [], "busiest": None}
    n = len(minutes)
    peak = max(m["posts"] for m in minutes) or 1
    # One path of bars on a 0..n x 0..100 grid, stretched to the box.
    path = []
    for i, m in enumerate(minutes):
        if m["posts"]:
            h = max(2.0, 100.0 * m["posts"] / peak)
            path.append(f"M{i + 0.1:.1f} 100v-{h:.1f}h0.8v{h:.1f}z")
    t0 = _minute_dt(minutes[0]["minute"])
    assert t0 is not None
    marks = []
    for q in st.get("questions") or []:
        t = local_datetime(q.get("created_at"), timezone.utc) if isinstance(q, dict) else None
        if t is None:
            continue
        x = (t - t0).total_seconds() / 60.0
        local = local_datetime(q["created_at"], zone)
        if -1 <= x <= n and local is not None:
            marks.append({"left": max(0.0, min(100.0, 100.0 * (x + 0.5) / n)), "label": f"Q{q['number']}",
                          "anchor": f"q{q['number']}", "time": local.strftime("%H:%M")})
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 1440, 10080) if n / s <= 8), 10080)
    ticks = []
    for i, m in enumerate(minutes):
        t = _minute_dt(m["minute"], zone)
        if t is not None and (t.hour * 60 + t.minute) % step == 0:
            ticks.append({"left": 100.0 * (i + 0.5) / n, "label": t.strftime("%H:%M")})
    busiest = max(minutes, key=lambda m: m["posts"])
    bt = _minute_dt(busiest["minute"], zone)
    return {"bars": " ".join(path), "n": n, "max": peak, "marks": marks, "ticks": ticks,
            "busiest": {"time": bt.strftime("%H:%M") if bt else "", "posts": busiest["posts"]}}


def _minute_dt(minute: str, zone: tzinfo = timezone.utc) -> datetime | None:
    """A per-minute key ("2026-11-18T20:04", UTC) in ``zone``; None when unreadable there."""
    return local_datetime(minute + ":00.000Z", zone)


# --------------------------------------------------------------------------
# Hashtag pages


def hashtag_contexts(site: SiteMap, rows: list[dict[str, Any]], tag_stats: dict[str, dict[str, Any]],
                     only: set[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(page, variables of hashtag.html) for each hashtag of ``rows`` (every
    session of the archive; ``only``: these lower-case hashtags)."""
    by_tag: dict[str, list[dict]] = defaultdict(list)
    for s in rows:
        if s["hashtag"] and (only is None or s["hashtag"].lower() in only):
            by_tag[s["hashtag"].lower()].append(s)
    for key, sess in by_tag.items():
        tag = sess[0]["hashtag"]
        hs = tag_stats.get(key) or {}
        ordered = sorted(sess, key=lambda s: (s["start"], s["id"]))
        peak = max((s["participants"] for s in ordered), default=0) or 1
        bars = []
        n = len(ordered)
        for i, s in enumerate(ordered):
            total = 100.0 * s["participants"] / peak
            known = s["first_timers"] is not None
            new = 100.0 * s["first_timers"] / peak if known else 0.0
            label = f"{s['short']}: {s['participants']} participants" + (
                f", {s['first_timers']} here for the first time in this archive" if known else "")
            bars.append({"x": i, "total": total, "new": new, "label": label,
                         "href": "../" + s["page"] if s["published"] else None})
        regulars = []
        for r in hs.get("regulars") or []:
            person = site.people.by_handle.get((r.get("handle") or "").lower())
            regulars.append({"handle": r.get("handle") or "", "sessions": r.get("sessions", 0), "person": person,
                             "href": site.person_href(person, "../")})
        people = [r["person"] for r in regulars if r["person"]]
        yield site.tag_pages[key], {
            "root": "../", "page_title": f"#{tag}", "tag": tag, "hs": hs,
            "sessions": sorted(sess, key=lambda s: (s["start"], s["id"]), reverse=True),
            "growth": {"bars": bars, "n": n, "peak": peak,
                       "first": ordered[0]["short"] if ordered else "", "last": ordered[-1]["short"] if ordered else ""},
            "regulars": regulars[:60], "total_posts": sum(s["posts"] for s in sess),
            "community_href": "../" + site.community_pages[key] if key in site.community_pages else None,
            "avatar_css": avatar_css(people, site.targets("../").image),
        }


# --------------------------------------------------------------------------
# Participant pages


def participant_contexts(site: SiteMap, db: Connection, ids: list[int], listed: list[dict[str, Any]], *,
                         authors: Iterable[str] | None = None, withheld: tuple[str, ...] | None = None
                         ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(page, variables of participant.html) for everyone with a page (or
    the ``authors`` named): their posts in the site's sessions ``ids`` (those
    with a page), grouped by session, newest session first.  Read as one
    stream, author by author, so memory holds one person's posts; posts
    ``withheld`` from publication (``Publication.reasons``) left out."""
    if not ids:
        return
    info = {s["id"]: s for s in listed}
    zones: dict[int, tzinfo] = {s.id: session_zone(s.timezone) for s in queries.sessions_by_ids(db, ids)}
    targets = {sid: site.targets("../", session_page="../" + info[sid]["page"]) for sid in ids}

    def page(author_id: str, rows: list[tuple[int, PostRow, int | None, int | None]]
             ) -> tuple[str, dict[str, Any]] | None:
        person = site.people.by_id.get(author_id)
        if person is None or not person.page or not rows:  # known from a session page, but given no page
            return None
        queries.attach_entities(db, [r for _, r, _, _ in rows])
        groups: dict[int, list[PostView]] = defaultdict(list)
        answers = 0
        for sid, row, q_number, a_number in rows:
            p = SessionPost.of(row, sid)
            p.q_number, p.a_number, p.engagement = q_number, a_number, engagement(row.post)
            v = post_view(p, person, targets[sid], zones.get(sid, timezone.utc))
            v.html = post_html(v)
            groups[sid].append(v)
            answers += 1 if row.post.answer_to_id else 0
        sessions = sorted(groups, key=lambda sid: (info[sid]["start"], sid), reverse=True)
        return person.page, {
            "root": "../", "page_title": f"{person.name or person.handle} (@{person.handle})",
            "person": person, "profile": safe_url(person.url),
            "groups": [{"s": info[sid], "posts": groups[sid]} for sid in sessions],
            "total": len(rows), "first": info[sessions[-1]], "answers": answers,
            "hashtags": sorted({info[sid]["hashtag"] for sid in sessions if info[sid]["hashtag"]}),
            "avatar_css": avatar_css([person], targets[sessions[0]].image),
        }

    current: str | None = None
    rows: list[tuple[int, PostRow, int | None, int | None]] = []
    for sid, post, q_number, a_number in queries.participant_posts(db, ids, authors=authors,
                                                                   withheld=withheld or ()):
        if post.author_id != current:
            if current is not None:
                got = page(current, rows)
                if got:
                    yield got
            current, rows = post.author_id, []
        rows.append((sid, PostRow(post, None), q_number, a_number))
    if current is not None:
        got = page(current, rows)
        if got:
            yield got


# --------------------------------------------------------------------------
# The index


def index_context(site: SiteMap, rows: list[dict[str, Any]], title: str) -> dict[str, Any]:
    """The variables of index.html: every hashtag and chat of the archive, newest first."""
    tags: dict[str, dict] = {}
    for s in rows:
        if not s["hashtag"]:
            continue
        t = tags.setdefault(s["hashtag"].lower(), {"tag": s["hashtag"], "sessions": 0, "posts": 0,
                                                    "latest": s, "href": site.tag_pages[s["hashtag"].lower()],
                                                    "community": site.community_pages.get(s["hashtag"].lower()),
                                                    "first": s})
        t["sessions"] += 1
        t["posts"] += s["posts"]
        if s["start"] > t["latest"]["start"]:
            t["latest"] = s
        if s["start"] < t["first"]["start"]:
            t["first"] = s
    ordered = sorted(rows, key=lambda s: (s["start"], s["id"]), reverse=True)
    hashtags = sorted(tags.values(), key=lambda t: t["latest"]["start"], reverse=True)
    return {"root": "", "page_title": title, "title": title, "sessions": ordered, "hashtags": hashtags,
            "total_posts": sum(s["posts"] for s in rows), "people": len(site.people.by_id),
            "avatar_css": Markup("")}
