"""The community page of a hashtag (``community/TAG.html``): the chat over
time, from the digests of its sessions with a page (``digest``).

* sessions over time: posts, participants, newcomers and returning people;
* retention: the share of a session's participants seen again within the
  next :data:`RETENTION_WINDOW` sessions;
* regulars: people in at least half the sessions;
* every question of every session with its answer count and the time to
  its first answer; the ones that drew the most answers first;
* the links shared across sessions (``resources.merge``).

Newcomers follow the one rule of ``present.views``: unknown for the
hashtag's first archived session, never a host.  "Returning" means seen in
an earlier session of this site.  Writes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..present.html import avatar_css
from .digest import SessionDigest
from .resources import merge
from .sitemap import SiteMap

RETENTION_WINDOW = 4
TOP_QUESTIONS = 10


def regular_threshold(sessions: int) -> int:
    """In at least half the sessions (and in two at least: one chat makes no regular)."""
    return max(2, (sessions + 1) // 2)


def community_context(site: SiteMap, tag: str, digests: list[SessionDigest],
                      rows: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The variables of community.html for one hashtag: ``digests`` of its
    sessions with a page, ``rows`` the session rows (``pages.session_row``) by id."""
    root = "../"
    ordered = sorted(digests, key=lambda d: (d.start, d.id))
    n = len(ordered)
    seen: set[str] = set()
    timeline: list[dict[str, Any]] = []
    for i, d in enumerate(ordered):
        row = rows.get(d.id) or {}
        members = set(d.people)
        returning = len(members & seen)
        later: set[str] = set()
        window = ordered[i + 1:i + 1 + RETENTION_WINDOW]
        for nxt in window:
            later |= set(nxt.people)
        retained = len(members & later)
        timeline.append({
            "id": d.id, "short": row.get("short") or d.start[:10], "title": row.get("title") or d.start[:10],
            "href": root + row["page"] if row.get("page") else None, "posts": d.posts, "participants": len(members),
            "newcomers": d.newcomers, "returning": returning,
            "retained": retained if window else None, "window": len(window),
            "retention": round(100.0 * retained / len(members)) if window and members else None,
        })
        seen |= members
    peak_posts = max((t["posts"] for t in timeline), default=0) or 1
    peak_people = max((t["participants"] for t in timeline), default=0) or 1
    for t in timeline:
        t["posts_h"] = round(100.0 * t["posts"] / peak_posts, 1)
        t["people_h"] = round(100.0 * t["participants"] / peak_people, 1)
        t["new_h"] = round(100.0 * (t["newcomers"] or 0) / peak_people, 1)
        t["ret_h"] = round(100.0 * t["returning"] / peak_people, 1)
    known = [t for t in timeline if t["retention"] is not None]
    attended: Counter[str] = Counter()
    handles: dict[str, str] = {}
    for d in ordered:
        attended.update(d.people.keys())
        handles.update(d.people)
    need = regular_threshold(n)
    regulars: list[dict[str, Any]] = []
    for key, count in sorted(attended.items(), key=lambda kv: (-kv[1], handles[kv[0]].lower())):
        if count < need:
            break
        person = site.people.by_id.get(key) or site.people.by_handle.get(handles[key].lower())
        regulars.append({"handle": handles[key], "sessions": count, "share": round(100.0 * count / n),
                         "person": person, "href": site.person_href(person, root)})
    questions: list[dict[str, Any]] = []
    for d in ordered:
        row = rows.get(d.id) or {}
        for q in d.questions:
            questions.append({
                "session": row.get("short") or d.start[:10], "start": d.start, "number": q.number,
                "text": q.text, "answers": q.answers, "first_answer": q.first_answer, "asker": q.asker,
                "href": f"{root}{row['page']}#q{q.number}" if row.get("page") else None,
            })
    by_answers = sorted(questions, key=lambda q: (-q["answers"], q["first_answer"] is None,
                                                  q["first_answer"] or 0.0, q["start"], q["number"]))
    answered = [q for q in questions if q["first_answer"] is not None]
    people = [r["person"] for r in regulars if r["person"]]
    return {
        "root": root, "page_title": f"#{tag} community", "tag": tag,
        "hashtag_href": root + site.tag_pages[tag.lower()] if tag.lower() in site.tag_pages else None,
        "timeline": timeline, "sessions": n, "people": len(attended),
        "window": RETENTION_WINDOW,
        "retention": round(sum(t["retention"] for t in known) / len(known)) if known else None,
        "regulars": regulars, "regular_need": need,
        "questions": by_answers, "questions_by_date": questions, "top_questions": by_answers[:TOP_QUESTIONS],
        "median_first_answer": _median([q["first_answer"] for q in answered]),
        "links": merge(d.links for d in ordered)[:100],
        "avatar_css": avatar_css(people, site.targets(root).image),
    }


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
