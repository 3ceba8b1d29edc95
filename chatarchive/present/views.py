"""The view models every output shows: a session and its posts, read once
through ``archive.queries`` (and the analysis' statistics), and each post
ready for the one renderer (``present.html``).

* :class:`Person`, :class:`People`: who wrote a post, as every output shows
  them (initials, avatar colour), found by author id or handle.
* :class:`SessionPost`: a post as read (its row, author, media and links) with
  what its session adds: the replies to it, the numbers of the questions it
  asks or answers, its engagement.
* :class:`SessionView` (:func:`load_session`): everything the recap page, the
  exports and the Datasette session page show of one session.
* :class:`LinkTargets`: how an output says where a post's links point
  (mentions, hashtags, people, other posts, its record, pictures).
* :class:`PostView` (:func:`post_view`, :func:`session_post_views`): one
  post with every piece decided (escaped text, safe URLs, hrefs).
* :func:`question_groups`: a session's posts grouped under its questions.

What every output shows the same way (so they all say the same thing):

* a session's post count is ``Session.posts`` (``sessions.post_count``: its
  rows in ``session_posts``, lead-in, tail and context posts included), the
  length of :attr:`SessionView.posts`;
* its lead-in (:attr:`SessionView.lead_in`): the members posted before the
  core (``sessions.start``), shown as "Before the chat";
* first-timers are unknown (``None``) for a hashtag's first archived
  session, never a host, and otherwise mean "first time in this archive";
* a post whose time is unknown (NULL or unreadable) sorts last and shows
  "time unknown"; a deleted post (``deleted_at``) is shown as deleted,
  without its text, author or media.

What is published (``archive.published``): :func:`load_session` applies a
:class:`~chatarchive.archive.published.Publication` (by default the
published defaults read from the archive), so every output built on a
:class:`SessionView` leaves out what the host hid and what the participants
did not consent to.  A withheld post with a shown reply keeps its place as a
placeholder (``SessionPost.placeholder``: "hidden by the host", rendered as
a tombstone); any other withheld post is not in the view at all, nor in its
statistics, counts, participants or links.  Pinned answers come first under
their question and in :attr:`SessionView.highlights`; the host's notes are
:attr:`SessionView.notes` (sanitized HTML).

Safety: post text becomes HTML only through ``present.text.linkify`` (escaped
piece by piece), Mastodon HTML only through ``safety.sanitize_html``, and
every URL passes ``urls.safe_url``; names, handles, alt text and content
warnings stay text, escaped by whatever renders them.

May import: analysis, archive, models, errors, timeutil, safety.  Never writes.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import timezone, tzinfo
from typing import Any, Protocol

from markupsafe import Markup

from ..analysis import stats as stats_mod
from ..archive import editorial, queries
from ..archive.published import Publication
from ..archive.queries import Connection, PostRow
from ..errors import ChatArchiveError
from ..models import Session, StoredPost, handle_matches
from ..safety import sanitize_html
from ..timeutil import get_zone
from ..urls import link_href, safe_url
from .anonymize import anonymize_view
from .html import person_markup, post_html, post_list_html
from .model import (
    Answer,
    ConversationView,
    MediaView,
    Participant,
    Person,
    PostView,
    Ref,
    SessionPost,
    SessionQuestion,
    SessionView,
)
from .text import PLATFORM_NAMES, TIME_UNKNOWN, anchor_for, archive_datetime, clean, linkify, local_datetime, note_html

# --------------------------------------------------------------------------
# People


class People:
    """The people one output knows, by author id and by handle (lower case;
    the first person with a handle keeps it)."""

    def __init__(self) -> None:
        self.by_id: dict[str, Person] = {}
        self.by_handle: dict[str, Person] = {}

    def add(self, person: Person) -> Person:
        self.by_id[person.author_id] = person
        self.by_handle.setdefault(person.handle.lower(), person)
        return person

    def of(self, p: SessionPost) -> Person:
        """The person who wrote ``p``: known, or made from its author row (and
        then known), or from the handle and name the post carries."""
        person = self.by_id.get(p.post.author_id or "")
        if person is not None:
            return person
        if p.author is not None:
            return self.add(Person.of_author(p.author))
        return self.stranger(p.post.author_id, p.handle or p.post.author_handle, p.name, p.post.platform)

    def get(self, author_id: str | None, handle: str | None, name: str | None, platform: str | None) -> Person:
        """A known person by author id, else :meth:`stranger`."""
        return self.by_id.get(author_id or "") or self.stranger(author_id, handle, name, platform)

    @staticmethod
    def stranger(author_id: str | None, handle: str | None, name: str | None, platform: str | None) -> Person:
        """Someone with no author row: no picture, no page, a colour from the handle."""
        handle = handle or "unknown"
        return Person.make(author_id or "", handle, name, platform, None, None, key=handle)


# --------------------------------------------------------------------------
# A session as read


def engagement(p: StoredPost, replies: int = 0) -> int:
    """Likes + reposts + quotes + replies (the larger of the platform's count
    and the replies in the archive); unknown counts are 0."""
    return (p.like_count or 0) + (p.repost_count or 0) + (p.quote_count or 0) + max(p.reply_count or 0, replies)


def time_key(created_at: str | None) -> tuple[bool, str]:
    """Sort key of a post's time: known times in order, unknown ones last."""
    return (not created_at, created_at or "")


def session_zone(name: str | None) -> tzinfo:
    """The chat's time zone (UTC when unknown or not a zone name)."""
    if name:
        try:
            return get_zone(name)
        except ChatArchiveError:
            pass
    return timezone.utc


def load_session(db: Connection, id_or_slug: str | int, *, statistics: bool = True,
                 publication: Publication | None = None, summaries: bool = True) -> SessionView:
    """Everything a recap page, an export or a Datasette page shows about one
    session (by slug or id; raises NotFoundError).  ``statistics=False`` skips
    ``stats.session_stats`` (the Datasette page shows none): no first-timers
    then, and no time to the first answer.  ``summaries=False`` leaves
    ``conversations`` and ``participants`` empty (the Datasette page shows
    neither; on a 4,000-post session they cost ~30 ms).

    ``publication``: what may be shown (``archive.published``; default: the
    published defaults, ``Publication.load(db)``; ``Publication.unfiltered``
    for the host's own tools).  Withheld posts are left out, or kept as
    placeholders when a shown post replies to them (see the module
    docstring); ``session.posts`` then counts the shown posts only."""
    pub = publication if publication is not None else Publication.load(db)
    session = queries.get_session(db, id_or_slug)
    sid = session.id
    rows, kept_places = _published_rows(queries.session_posts(db, sid), pub)
    shown_rows = [r for r in rows if r.post.id not in kept_places]
    stats: dict[str, Any] = {}
    stats_seconds = 0.0
    if statistics:
        t0 = time.perf_counter()
        stats = stats_mod.session_stats(db, sid, posts=shown_rows, withheld=pub.reasons)
        stats_seconds = time.perf_counter() - t0
        for q in stats.get("questions") or []:
            if pub.reason(q.get("post_id") or ""):
                q["text"] = None  # a withheld question says nothing
    if len(shown_rows) != session.posts and not pub.everything:
        session = replace(session, posts=len(shown_rows))
        if stats:
            stats["posts"] = len(shown_rows)
    posts = []
    for r in rows:
        p = SessionPost.of(r)
        p.placeholder = pub.placeholder(p.post.id, p.post.author_id, bool(p.post.deleted_at)) \
            if p.post.id in kept_places or p.post.deleted_at else None
        if p.placeholder is not None and p.post.id in kept_places:
            p.handle, p.name, p.author = "hidden", "", None
        p.pinned = p.post.id in pub.pins and not p.deleted
        posts.append(p)
    by_id = {p.post.id: p for p in posts}
    for p in posts:
        parent = p.post.reply_to_id
        if parent and parent != p.post.id:
            up = by_id.get(parent)
            if up is not None:
                up.children.append(p.post.id)
    children = {p.post.id: p.children for p in posts}
    zone = session_zone(session.timezone)

    # Q&A: answers most engaged first, each with its reply thread.
    if statistics:
        asked = [(q["id"], q["number"], q.get("post_id"), q.get("text"), q.get("created_at"),
                  q.get("first_answer_seconds")) for q in stats.get("questions") or []]
    else:
        asked = [(q.id, q.number, q.post_id, q.text, None, None) for q in queries.session_questions(db, sid)]
    qnum = {q[0]: q[1] for q in asked}
    answers_of: dict[int, list[SessionPost]] = defaultdict(list)
    for p in posts:
        sp = p.post
        if sp.question_id is not None:
            p.q_number = qnum.get(sp.question_id)
        if sp.answer_to_id is not None:
            p.a_number = qnum.get(sp.answer_to_id)
            if not sp.is_repost:
                answers_of[sp.answer_to_id].append(p)
        p.engagement = engagement(sp, len(p.children))
    questions = []
    for qid, number, post_id, text, created_at, first in asked:
        # most engaged first; deleted answers (no content left to read) last
        answers = sorted(answers_of.get(qid, []),
                         key=lambda a: (a.deleted, -a.engagement, *time_key(a.post.created_at)))
        if post_id and (pub.reason(post_id) or (post_id in by_id and by_id[post_id].deleted)):
            text = None  # a withheld or deleted question says nothing
        answers.sort(key=lambda a: not a.pinned)  # the host's pick first (a stable sort keeps the rest)
        questions.append(SessionQuestion(
            id=qid, number=number, post_id=post_id, text=text, post=by_id.get(post_id) if post_id else None,
            answers=[Answer(a, [(d, by_id[i]) for d, i in flatten_tree(a.children, children, 1)]) for a in answers],
            created_at=created_at, first_answer_seconds=first))
    # The lead-in: members before the core (C5), as fixed-width UTC text compares.
    start = session.start if isinstance(session.start, str) else None
    lead_in = [p for p in posts if start and p.post.created_at and p.post.created_at < start] if start else []
    notes_md = editorial.notes(db, sid)
    shown = [p for p in posts if p.placeholder is None]  # people of the posts shown in full
    view = SessionView(session=session, stats=stats, posts=posts, by_id=by_id, questions=questions,
                       conversations=_conversations(db, sid, posts, by_id) if summaries else [],
                       participants=_participants(session, stats, shown, {p.id: p for p in shown})
                       if summaries else [], zone=zone,
                       stats_seconds=stats_seconds, lead_in=lead_in,
                       highlights=[p for p in posts if p.pinned],
                       notes={k: note_html(v) for k, v in notes_md.items()}, notes_markdown=notes_md,
                       link_titles=queries.session_link_titles(db, sid))
    if pub.pseudonyms is not None:  # --anonymize: every output built on the view shows pseudonyms
        anonymize_view(view, pub.pseudonyms)
    return view


def _published_rows(rows: list[PostRow], pub: Publication) -> tuple[list[PostRow], set[str]]:
    """The rows an output shows, and the ids among them kept only as
    placeholders: withheld posts that a shown post replies to (directly, or
    through other withheld posts).  The rest of the withheld are dropped."""
    if pub.everything or not pub.withheld:
        return rows, set()
    by_id = {r.post.id: r for r in rows}
    places: set[str] = set()
    for r in rows:
        if pub.reason(r.post.id):
            continue
        parent, seen = r.post.reply_to_id, 0
        while parent and parent in by_id and pub.reason(parent) and parent not in places and seen < len(by_id):
            places.add(parent)
            parent, seen = by_id[parent].post.reply_to_id, seen + 1
    out = []
    for r in rows:
        if r.post.id in places:
            # nothing of it reaches the output: its place, time and reply link only
            out.append(PostRow(replace(r.post, text="", html=None, spoiler_text=None, url=None, author_handle=None,
                                       author_name=None, like_count=None, repost_count=None, reply_count=None,
                                       quote_count=None, quote_of_id=None), None))
        elif not pub.reason(r.post.id):
            out.append(r)
    return out, places


def flatten_tree(roots: Iterable[str], children: dict[str, list[str]], start_depth: int = 0) -> list[tuple[int, str]]:
    """Depth-first order of reply trees as (depth, id); iterative (a 10,000
    deep chain is fine) and cycle-safe."""
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    stack = [(start_depth, r) for r in reversed(list(roots))]
    while stack:
        depth, pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append((depth, pid))
        for child in reversed(children.get(pid, ())):
            if child not in seen:
                stack.append((depth + 1, child))
    return out


def _conversations(db: Connection, sid: int, posts: list[SessionPost],
                   by_id: dict[str, SessionPost]) -> list[ConversationView]:
    """Reply trees with at least two posts, in the order they started."""
    members: dict[str, list[str]] = defaultdict(list)
    known: dict[str, str] = {}
    for p in posts:
        members[p.post.conversation_id or _reply_root(p.post.id, by_id, known)].append(p.post.id)
    info = {c.id: c for c in queries.session_conversations(db, sid)}
    out = []
    for cid, ids in members.items():
        if len(ids) < 2:
            continue
        idset = set(ids)
        # a reply cycle (stored data can hold one) has no root: start at its earliest post
        roots = [i for i in ids if by_id[i].post.reply_to_id not in idset] or [
            min(ids, key=lambda i: time_key(by_id[i].post.created_at))]
        sub = {i: [c for c in by_id[i].children if c in idset] for i in ids}
        items = [(d, by_id[i]) for d, i in flatten_tree(roots, sub)]
        row = info.get(cid)
        out.append(ConversationView(
            id=cid, size=len(ids),
            depth=row.depth if row is not None and row.depth is not None else max(d for d, _ in items),
            participants=len({by_id[i].post.author_id for i in ids}),
            started=min((by_id[i].post.created_at or "" for i in ids), key=lambda t: (not t, t)), items=items))
    out.sort(key=lambda c: time_key(c.started))
    return out


def _reply_root(pid: str, by_id: dict[str, SessionPost], known: dict[str, str]) -> str:
    """The earliest ancestor of ``pid`` among the session's posts (for posts
    the analysis left without a conversation); memoized in ``known`` so a
    long chain costs linear time, and cycle-safe."""
    path: list[str] = []
    on_path: set[str] = set()
    while pid not in known:
        path.append(pid)
        on_path.add(pid)
        parent = by_id[pid].post.reply_to_id
        if not parent or parent not in by_id or parent in on_path:
            known[pid] = pid
            break
        pid = parent
    root = known[pid]
    for p in path:
        known[p] = root
    return root


def _participants(session: Session, stats: dict[str, Any], posts: list[SessionPost],
                  by_id: dict[str, SessionPost]) -> list[Participant]:
    """Everyone who posted in the session (every post of it counts, as in
    ``stats.session_stats``, so the People list is its "participants"):
    posts, replies received from others, answers, host and first-timer flags.

    First-timers come from the statistics: unknown (None) when they are
    (the first archived session of a hashtag, or no statistics loaded), and
    never a host of the session."""
    listed = stats.get("first_timers")
    known = bool(stats) and listed is not None
    first = {h.lower() for h in listed or [] if isinstance(h, str)}
    flags = {t.get("author_id"): t.get("first_timer") for t in stats.get("top_participants") or []
             if isinstance(t, dict)}
    hosts = [h for h in (*session.hosts, *session.configured_hosts) if isinstance(h, str) and h]
    people: dict[str, Participant] = {}
    for p in posts:
        key = p.post.author_id or p.handle
        if key not in people:
            handle = (p.handle or "").lower()
            a = p.author
            # a host on any platform (cmgrhost, cmgrhost@mastodon.social), as the analysis matches them
            host = any(handle_matches(p.handle, h) for h in hosts)
            first_timer: bool | None = None
            if known and not host:
                flag = flags.get(p.post.author_id) if p.post.author_id in flags else handle in first
                first_timer = None if flag is None else bool(flag)
            elif known:
                first_timer = False
            people[key] = Participant(
                author_id=p.post.author_id, handle=p.handle, name=p.name,
                avatar_url=a.avatar_url if a is not None else None, url=a.url if a is not None else None,
                platform=p.post.platform, first_timer=first_timer, host=host)
    for p in posts:
        sp = p.post
        person = people[sp.author_id or p.handle]
        person.posts += 1
        if sp.answer_to_id is not None:
            person.answers += 1
        parent = by_id.get(sp.reply_to_id) if sp.reply_to_id else None
        if parent is not None and parent.post.author_id != sp.author_id:
            people[parent.post.author_id or parent.handle].replies_received += 1
    out = list(people.values())
    out.sort(key=lambda v: (not v.host, -v.posts, -v.replies_received, (v.handle or "").lower()))
    return out


# --------------------------------------------------------------------------
# Where links point, per output


class LinkTargets(Protocol):
    """Where the links of a post point in one output (the recap: other pages
    of the site; Datasette: its tables, queries and pages).  Everything else
    about a post's HTML is the same everywhere."""

    def mention(self, handle: str) -> str | None:
        """An @mention in post text (None: shown as text)."""

    def tag(self, tag: str) -> str | None:
        """A #hashtag in post text (None: text; "": the page's own hashtag, shown muted)."""

    def person(self, person: Person) -> str | None:
        """The author's name."""

    def post(self, post_id: str) -> str:
        """Where a post of this page's session is shown (the time of a post in a thread, replies, quotes)."""

    def row(self, post_id: str) -> str | None:
        """The post's record in the archive, where the output has one."""

    def image(self, url: str | None) -> str | None:
        """Where a picture (avatar, media, preview) loads from; None: not shown."""

    def media_link(self, url: str | None) -> str | None:
        """Where a click on a picture goes (the full image or video)."""


# --------------------------------------------------------------------------
# A post ready to render


archive_time = archive_datetime  # the name older code imports


_VIDEO = frozenset(("video", "animated_gif", "gifv", "audio"))


def post_view(p: SessionPost, person: Person, targets: LinkTargets, zone: tzinfo = timezone.utc, *,
              with_date: bool = False) -> PostView:
    """The view of one post from a page whose links ``targets`` decides;
    times in ``zone``, with the date too when ``with_date`` (pages that mix
    days).  Replies and quotes are left to :func:`session_post_views`, which
    knows which posts are on the page."""
    sp = p.post
    deleted = p.deleted
    text = "" if deleted else sp.text or ""
    links: list[str] = []
    media = []
    if deleted:  # a tombstone: whatever a row still holds is not shown
        body, is_html = Markup(""), False
    elif sp.html and sp.platform == "mastodon":
        body = sanitize_html(clean(sp.html))
        is_html = True
    else:
        body = linkify(text, targets.mention, targets.tag)
        is_html = False
    if not deleted:
        for u in p.links:
            href = link_href(u)
            if href and u not in text and href not in links:
                links.append(href)
        for m in p.media:
            video = (m.type or "photo").lower() in _VIDEO
            media.append(MediaView(src=targets.image(m.preview_url if video or not m.url else m.url),
                                   href=targets.media_link(safe_url(m.url)), alt=clean(m.alt or ""), video=video))
    dt = local_datetime(sp.created_at, zone)
    replies = max(sp.reply_count or 0, len(p.children))
    person_href = targets.person(person)
    av, av_s, who = person_markup(person, person_href)
    if dt is None:
        shown = TIME_UNKNOWN
    else:
        stamp = f"{dt.hour:02d}:{dt.minute:02d}"
        shown = f"{dt:%Y-%m-%d} {stamp}" if with_date else stamp
    return PostView(
        id=sp.id, anchor=anchor_for(sp.id), href=targets.post(sp.id), url=None if deleted else safe_url(sp.url),
        platform=sp.platform or "", person=person, person_href=person_href, av=av, av_s=av_s, who=who,
        handle=person.handle, time=shown, dt=dt, iso=(sp.created_at or "") if dt is not None else "",
        body=body, is_html=is_html, cw="" if deleted else clean(sp.spoiler_text or ""), links=links, media=media,
        likes=f"{sp.like_count:,}" if sp.like_count and not deleted else "",
        reposts=f"{sp.repost_count:,}" if sp.repost_count and not deleted else "",
        replies=f"{replies:,}" if replies and not deleted else "",
        engagement=p.engagement or engagement(sp, len(p.children)),
        repost=bool(sp.is_repost), context=not sp.matched, q=p.q_number, a=p.a_number, edited=bool(sp.edited_at),
        row=targets.row(sp.id), deleted=deleted, placeholder=p.placeholder or "",
    )


def session_post_views(view: SessionView, people: People, targets: LinkTargets, *,
                       with_date: bool = False) -> dict[str, PostView]:
    """The views of every post of a session page, by id, with their HTML:
    replies and quotes link to the post they refer to when it is on the page,
    and the platform is named when the session spans more than one."""
    views = {p.post.id: post_view(p, people.of(p), targets, view.zone, with_date=with_date) for p in view.posts}
    if len({p.post.platform for p in view.posts}) > 1:
        for v in views.values():
            v.on = PLATFORM_NAMES.get(v.platform, v.platform)
    by_id = view.by_id
    for p in view.posts:
        sp = p.post
        v = views[sp.id]
        if sp.reply_to_id:
            parent = by_id.get(sp.reply_to_id)
            v.reply_to = (Ref(targets.post(parent.post.id), parent.handle) if parent is not None
                          else Ref(None, clean(sp.reply_to_author or "")))
        if sp.quote_of_id:
            quoted = by_id.get(sp.quote_of_id)
            if quoted is not None:
                v.quote = Ref(targets.post(quoted.post.id), quoted.handle)
        v.html = post_html(v)
    return views


# --------------------------------------------------------------------------
# The transcript grouped by question (Datasette's session page)


@dataclass(slots=True)
class QuestionGroup:
    question: SessionQuestion | None  # None: the posts before the chat, before the first question, of unknown time
    anchor: str
    title: str
    summary: str  # the question's text without its "Q1:" marker
    text: Markup  # the question's text, linked (shown when its post is not in the session)
    post: PostView | None  # the post that asks it
    posts: list[PostView] = field(default_factory=list)  # time order
    answers: int = 0
    time: str = ""
    posts_html: Markup = field(default_factory=Markup)  # the posts as list items (present.html.post_list_html)

    # The names an older chatarchive_session.html override uses.
    @property
    def post_html(self) -> Markup:
        return self.post.html if self.post is not None else Markup("")

    @property
    def html(self) -> Markup:
        return self.text


# "Q1:", "@host Q 1 -", "Question 1." at the start of a question's text.
_QUESTION_MARKER = re.compile(r"^\s*(?:@\S+\s+)*(?:q|question)\s*\d+\s*[:.)\-–—]?\s*", re.IGNORECASE)


def question_groups(view: SessionView, views: dict[str, PostView], targets: LinkTargets) -> list[QuestionGroup]:
    """The session's posts grouped under its questions: a post goes under the
    question it asks or answers (so a late answer keeps its number); any
    other post of the lead-in under "Before the chat", else under the last
    question asked before it, or under "Before the first question", and a
    post of unknown time under "Time unknown" at the end (groups left out
    when empty)."""
    lead = QuestionGroup(question=None, anchor="before-chat", title="Before the chat", summary="",
                         text=Markup(""), post=None)
    before = QuestionGroup(question=None, anchor="before", title="Before the first question", summary="",
                           text=Markup(""), post=None)
    unknown = QuestionGroup(question=None, anchor="time-unknown", title="Time unknown", summary="",
                            text=Markup(""), post=None)
    lead_ids = {p.post.id for p in view.lead_in}
    groups = [lead, before]
    group_of: dict[int, QuestionGroup] = {}
    for q in view.questions:
        asked_in = view.by_id.get(q.post_id) if q.post_id else None
        words = "" if asked_in is not None and asked_in.deleted else q.text or ""  # a deleted question says nothing
        g = QuestionGroup(
            question=q, anchor=f"q{q.number}" if q.number is not None else f"question-{q.id}",
            title=f"Q{q.number}" if q.number is not None else "Question",
            summary=_QUESTION_MARKER.sub("", words, count=1).strip() if words else "(deleted)" if q.text else "",
            text=linkify(words, targets.mention, targets.tag), post=None,
            time=(view.by_id[q.post_id].post.created_at or "") if q.post_id in view.by_id else "")
        group_of[q.id] = g
        groups.append(g)
    # Questions in the order they were asked (by their post's time, else number).
    asked = sorted((g for g in groups[2:] if g.time),
                   key=lambda g: (g.time, g.question.number if g.question and g.question.number else 0))
    for p in view.posts:
        sp = p.post
        v = views[sp.id]
        qid, aid = sp.question_id, sp.answer_to_id
        asks = group_of.get(qid) if qid is not None else None
        if asks is not None and asks.question is not None and asks.question.post_id == sp.id:
            asks.post = v
            continue
        target = None
        if aid in group_of:
            target = group_of[aid]
            target.answers += 1
        elif qid in group_of:
            target = group_of[qid]
        elif sp.id in lead_ids:
            target = lead
        elif not v.iso:
            target = unknown
        else:
            t = v.iso
            for g in asked:
                if g.time <= t:
                    target = g
                else:
                    break
        (target or before).posts.append(v)
    groups.append(unknown)
    for g in groups:
        g.posts.sort(key=lambda v: (*time_key(v.iso), v.id))
        g.posts_html = post_list_html(g.posts)
    return [g for g in groups if g.question is not None or g.posts]
