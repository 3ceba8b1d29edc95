"""What the pages across sessions (community, resources, feeds) need of each
session, kept in the site folder (``.chatarchive-digest.json``) so that an
incremental run (``recap DB THIS-WEEK``) builds them without reading every
session again.

A session's digest is made from the same ``SessionView`` its page shows
(so a hidden or deleted post that its page leaves out is left out here too)
whenever its page is rendered, with the session's search records
(``search_records.py``).  It also keeps the fingerprint of the editorial
state its page was made with (:func:`editorial_fingerprints`): when the host
has since hidden, forgotten, pinned... anything in that session, or a post
was deleted, the fingerprint differs and the run renders that session again
(page, card, digest), so nothing withheld stays in any page, feed, card or
search record.  The file is read back as untrusted data: anything malformed
is dropped and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..archive import queries
from ..archive.published import Publication
from ..archive.queries import Connection
from ..present.text import mentions_in
from ..present.views import SessionView
from .resources import SharedLink, question_links, session_links
from .search_records import SearchRecord, session_records

DIGEST = ".chatarchive-digest.json"
DIGEST_VERSION = 2  # 2: search records and the editorial fingerprint


@dataclass(slots=True)
class QuestionDigest:
    number: int
    text: str
    answers: int
    first_answer: float | None  # seconds from the question to its first answer
    asker: str  # handle ("" when the question's post is not in the session)
    links: list[SharedLink] = field(default_factory=list)


@dataclass(slots=True)
class SessionDigest:
    id: int
    hashtag: str
    start: str
    posts: int
    newcomers: int | None  # first time in this archive; None: unknowable (present.views rule)
    people: dict[str, str]  # author key (id, else handle) -> handle
    hosts: list[str]  # author keys of the session's hosts among ``people``
    questions: list[QuestionDigest]
    links: list[SharedLink]
    replies: list[tuple[str, str, int]] = field(default_factory=list)  # (from, to, replies and mentions): network.py
    records: list[SearchRecord] = field(default_factory=list)  # what search finds of the session
    editorial: str = ""  # editorial_fingerprints() when it was made

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "hashtag": self.hashtag, "start": self.start, "posts": self.posts,
            "newcomers": self.newcomers, "people": self.people, "hosts": self.hosts,
            "questions": [{"number": q.number, "text": q.text, "answers": q.answers, "first_answer": q.first_answer,
                           "asker": q.asker, "links": [link.as_dict() for link in q.links]} for q in self.questions],
            "links": [link.as_dict() for link in self.links],
            "replies": [list(r) for r in self.replies],
            "records": [r.as_dict() for r in self.records],
            "editorial": self.editorial,
        }

    @classmethod
    def of(cls, d: Any) -> SessionDigest | None:
        """From :meth:`as_dict`; None when anything is malformed."""
        try:
            people = {str(k): str(v) for k, v in d["people"].items()}
            questions = [QuestionDigest(int(q["number"]), str(q["text"]), int(q["answers"]),
                                        None if q["first_answer"] is None else float(q["first_answer"]),
                                        str(q["asker"]), _links(q.get("links"))) for q in d["questions"]]
            newcomers = d["newcomers"]
            return cls(id=int(d["id"]), hashtag=str(d["hashtag"]), start=str(d["start"]), posts=int(d["posts"]),
                       newcomers=None if newcomers is None else int(newcomers), people=people,
                       hosts=[str(h) for h in d["hosts"] if str(h) in people], questions=questions,
                       links=_links(d["links"]),
                       replies=[(str(a), str(b), int(n)) for a, b, n in d.get("replies") or []],
                       records=[r for r in (SearchRecord.of(x) for x in d["records"]) if r is not None],
                       editorial=str(d["editorial"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _links(items: Any) -> list[SharedLink]:
    out = []
    for item in items or []:
        link = SharedLink.of(item) if isinstance(item, dict) else None
        if link is not None:
            out.append(link)
    return out


def author_key(author_id: str | None, handle: str | None) -> str:
    """How the statistics tell people apart: the author id, else the handle."""
    return author_id or handle or ""


def session_digest(view: SessionView, *, page: str, title: str, editorial: str) -> SessionDigest:
    """The digest of a loaded session (what its page ``page``, titled
    ``title``, shows), made under the editorial state ``editorial``."""
    s = view.session
    people = {author_key(p.author_id, p.handle): p.handle for p in view.participants}
    hosts = [author_key(p.author_id, p.handle) for p in view.participants if p.host]
    by_number = question_links(view)
    questions = []
    for q in view.questions:
        post = q.post
        deleted = post is not None and post.deleted
        questions.append(QuestionDigest(
            number=q.number, text="(deleted)" if deleted else (q.text or ""), answers=len(q.answers),
            first_answer=q.first_answer_seconds, asker=post.handle if post is not None and not deleted else "",
            links=by_number.get(q.number, [])))
    # Who replied to or mentioned whom (a reply that also mentions its parent's author counts once).
    by_handle = {h.lower(): k for k, h in people.items()}
    replies: dict[tuple[str, str], int] = {}
    for p in view.posts:
        if p.deleted or p.post.is_repost:
            continue
        a = author_key(p.post.author_id, p.handle)
        parent = view.by_id.get(p.post.reply_to_id or "")
        to = set()
        if parent is not None and not parent.deleted:
            to.add(author_key(parent.post.author_id, parent.handle))
        to.update(by_handle[h.lower()] for h in mentions_in(p.post.text or "") if h.lower() in by_handle)
        for b in to:
            if a != b and a in people and b in people:
                replies[(a, b)] = replies.get((a, b), 0) + 1
    return SessionDigest(id=s.id, hashtag=s.hashtag or "", start=s.start or "", posts=len(view.posts),
                         newcomers=view.first_timers, people=people, hosts=hosts, questions=questions,
                         links=session_links(view), replies=sorted((a, b, n) for (a, b), n in replies.items()),
                         records=session_records(view, page, title), editorial=editorial)


def editorial_fingerprints(db: Connection, publication: Publication) -> dict[int, str]:
    """Per session, a hash of everything editorial that changes what its
    published page shows: its withheld posts and why (hidden, consent,
    unlisted: ``withheld_posts`` with this output's reasons), its deleted
    posts (deleted on their platform or forgotten), its pins and its host's
    notes.  A session none of this touches has no entry (fingerprint "")."""
    conn = queries.connection(db)
    reasons = publication.reasons or ()
    placeholders = ", ".join("?" for _ in reasons) or "''"
    rows = conn.execute(
        f"""SELECT sp.session_id, 'w', w.post_id || ' ' || w.reason FROM withheld_posts w
              JOIN session_posts sp ON sp.post_id = w.post_id WHERE w.reason IN ({placeholders})
            UNION ALL
            SELECT sp.session_id, 'd', p.id FROM posts p JOIN session_posts sp ON sp.post_id = p.id
              WHERE p.deleted_at IS NOT NULL
            UNION ALL
            SELECT sp.session_id, 'p', pins.post_id FROM pins JOIN session_posts sp ON sp.post_id = pins.post_id
            UNION ALL
            SELECT session_id, 'n', coalesce(question_number, '') || ' ' || markdown FROM host_notes""",
        list(reasons))
    marks_of: dict[int, list[str]] = {}
    for sid, kind, value in rows:
        marks_of.setdefault(int(sid), []).append(f"{kind} {value}")
    return {sid: hashlib.sha256("\n".join(sorted(found)).encode("utf-8", "surrogatepass")).hexdigest()[:32]
            for sid, found in marks_of.items()}


def read_digests(out: Path) -> dict[int, SessionDigest]:
    """The digests an earlier run left in ``out`` (none when the file is
    missing, a link, unreadable or from another version)."""
    path = out / DIGEST
    if path.is_symlink() or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("version") != DIGEST_VERSION or not isinstance(data.get("sessions"), list):
        return {}
    found = (SessionDigest.of(d) for d in data["sessions"])
    return {d.id: d for d in found if d is not None}


def dump_digests(digests: dict[int, SessionDigest]) -> str:
    """The digest file's content: deterministic (sorted), so an unchanged
    site leaves it untouched."""
    return json.dumps({"version": DIGEST_VERSION, "sessions": [digests[k].as_dict() for k in sorted(digests)]},
                      sort_keys=True, separators=(",", ":")) + "\n"
