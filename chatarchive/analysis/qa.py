"""Questions and answers of a chat session.

Hosts post numbered questions; participants answer with the number:

* a question starts, after any leading @mentions (and hashtags or emoji),
  with ``Q1:``, ``Q1.``, ``Q 1 -``, ``Q1)``, ``Q1`` or ``Question 1:``;
* a teaser is not a question: a marker followed by a teaser phrase
  ("Q5 coming up in 1 minute! Who's still with us?", "Q2 is next", "Q3 in
  5 minutes", "Q4: get ready") announces the question whatever follows, and
  replies to it are not answers;
* the same number asked again (on another platform, or repeated) is the
  same question, not a second one; when some of its posts write the marker
  with a delimiter (``Q5)``, ``Q5:``) and others without (``Q5 Who's still
  here?``), the delimited ones are the question and the others are not;
* hosts are the accounts that post those markers first (or the ones given
  with ``--host``); only their posts are questions;
* an answer starts with ``A1:``, ``A 1``, ``a1)``, ``A1a``/``A1b``… (or says
  ``… A1: …`` early on), or is an unprefixed reply to / quote of a question
  post by someone other than its asker.  A late answer keeps its number; a
  repost is never a question or an answer.

``--question-pattern``/``--answer-pattern`` replace the markers with a
regular expression whose named group ``n`` is the number (``T(?P<n>\\d+):``
for T1/T2 chats, ``(?P<n>\\d)\\ufe0f\\u20e3`` for keycap emoji).

:func:`analyse_posts` is pure (tested on plain lists); :class:`QAWriter`
runs it on each session's members and writes ``questions``,
``posts.question_id`` and ``posts.answer_to_id`` (nothing else: the
session's counts and hosts are the pipeline's session summary).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

import sqlite_utils

from ..archive.queries import chunks, marks
from ..errors import ChatArchiveError
from ..models import handle_matches
from .rewrite import PostRewrite
from .settings import Chat, json_list, settings_for

DEFAULT_QUESTION = r"(?:Q|Question)\s*(?P<n>\d{1,3})(?=\s*[:.)\-–—]|\s|$)[\s:.)\-–—]*"
DEFAULT_ANSWER = r"A\s?(?P<n>\d{1,3})[a-z]?(?=$|[\s:.)\-–—,;!/])"
# "Late to Q1 but A1: …": an answer marker with a colon a few words in.
EMBEDDED_ANSWER = re.compile(r"(?:^|[\s(])A(?P<n>\d{1,3})[a-z]?:")
EMBEDDED_WITHIN = 60
# A teaser phrase right after the marker (after punctuation, emoji and a
# verb such as "is"/"will be"): the post announces the question.
_UNIT = r"(?:min|mins|minute|minutes|sec|secs|second|seconds|moment|moments|jiffy|bit)\b"
TEASER = re.compile(
    r"^[\W_]*(?:(?:is|are|will be|comes|drops|'s|’s)\s+)?(?:up\s+(?=in\b))?"
    r"(?:coming\s+(?:up|next|soon|right up|shortly|in\b)|up next|next up|next(?![\w\-])|"
    r"in\s+(?:\d+\s*(?:" + _UNIT + r")?|(?:a|an|one|a few|a couple(?: of)?|two|three|five|ten|fifteen|just a)\s+"
    + _UNIT + r")|get ready|getting ready|stay tuned|heads up|shortly|starts? soon|on (?:its|it's|it’s|the) way)",
    re.I,
)
# A marker written with a delimiter after its number (Q5: Q5) Q5. Q5 -).
_DELIMITED = re.compile(r"\s*[:.)\-–—]")
HOST_SHARE = 0.25  # a co-host asks at least this share of the top host's questions

# Leading @mentions (".@x", "@x@server", "@x.bsky.social"), hashtags and
# symbols (emoji, bullets) before a marker.  Each token's first character
# differs, so trying every length costs little.
_LEAD = r"(?:\s*(?:\.?@[\w.\-]+(?:@[\w.\-]+)?[:,]?|#\w+[:,]?|[^\w@#\s]))*\s*"


def compile_pattern(pattern: str | None, kind: str) -> re.Pattern | None:
    """A user's --question-pattern/--answer-pattern, checked for a group ``n``."""
    if not pattern:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ChatArchiveError(f"Invalid --{kind}-pattern {pattern!r}: {e}") from e
    if "n" not in rx.groupindex:
        raise ChatArchiveError(
            f"--{kind}-pattern {pattern!r} needs a named group n for the number, e.g. T(?P<n>\\d+):"
        )
    return rx


class Marker:
    """A marker pattern anchored after the leading mentions/hashtags/symbols:
    one regex call per post."""

    def __init__(self, pattern: re.Pattern):
        self.pattern = pattern
        try:
            self.rx: re.Pattern | None = re.compile(_LEAD + "(?:" + pattern.pattern + ")", pattern.flags)
        except re.error:  # e.g. global flags such as (?i) not at the start
            self.rx = None
            self.lead = re.compile(_LEAD)

    def match(self, text: str) -> tuple[int, str] | None:
        """(number, rest of the text) when the text starts with the marker."""
        found = self.find(text)
        return (found[0], found[1]) if found else None

    def find(self, text: str) -> tuple[int, str, bool] | None:
        """(number, rest of the text, whether a delimiter follows the number)
        when the text starts with the marker."""
        if self.rx is not None:
            m = self.rx.match(text)
        else:
            m = None
            for stop in _lead_stops(text, self.lead):
                m = self.pattern.match(text, stop)
                if m:
                    break
        if m:
            n = to_number(m.group("n"))
            if n is not None:
                return n, text[m.end():], _DELIMITED.match(text, m.end("n")) is not None
        return None


def _lead_stops(text: str, lead: re.Pattern) -> list[int]:
    stops = [len(text) - len(text.lstrip())]
    m = lead.match(text)
    end = m.end() if m else stops[0]
    return stops if end == stops[0] else stops + [end]


_DEFAULT_Q = Marker(re.compile(DEFAULT_QUESTION, re.I))
_DEFAULT_A = Marker(re.compile(DEFAULT_ANSWER, re.I))


def to_number(value: str | None) -> int | None:
    """'12' -> 12, '1️⃣' -> 1, '①' -> 1, '🔟' -> 10."""
    if not value:
        return None
    if value.isascii():
        return int(value) if value.isdigit() else None
    if "\U0001f51f" in value:
        return 10
    digits = [unicodedata.digit(c, None) for c in value]
    digits = [d for d in digits if d is not None]
    if not digits:
        return None
    return int("".join(str(d) for d in digits))


def match_marker(text: str, rx: re.Pattern | Marker) -> tuple[int, str] | None:
    """(number, rest of text) when the text starts, after leading mentions,
    hashtags and symbols, with the marker."""
    marker = rx if isinstance(rx, Marker) else Marker(rx)
    return marker.match(text or "")


def is_teaser(rest: str) -> bool:
    """Whether the text after a question marker starts with a teaser phrase
    ("coming up", "in 1 minute", "next", "get ready", …): then the post
    announces the question, whatever follows (even a question mark: "Q5
    coming up in 1 minute! Who's still with us?")."""
    return TEASER.match(rest[:80]) is not None


def looks_like_question(text: str | None) -> bool:
    """Whether a text asks a numbered question by the default marker (and is
    no teaser), as :func:`analyse_posts` would take it from a host; for
    showing questions as they arrive, before any session exists."""
    found = _DEFAULT_Q.match(text or "")
    return found is not None and not is_teaser(found[1])


class QAPost(NamedTuple):
    """What Q&A needs of a post.  :func:`analyse_posts` reads these fields by
    position, so database rows in this column order work as they are."""

    id: str
    author_id: str | None
    handle: str | None
    text: str
    created_at: str
    reply_to_id: str | None = None
    quote_of_id: str | None = None
    is_repost: bool = False


@dataclass
class Question:
    number: int
    post_id: str
    text: str
    created_at: str
    author_id: str | None
    handle: str | None
    post_ids: list[str] = field(default_factory=list)  # the question post and its re-asks


@dataclass
class QAResult:
    hosts: list[str]
    questions: dict[int, Question]
    question_of: dict[str, int]  # post id -> number (question posts, re-asks included)
    answer_of: dict[str, int]  # post id -> number


def analyse_posts(
    posts: Sequence[tuple[Any, ...]],
    *,
    hosts: Iterable[str] | None = None,
    question_pattern: str | re.Pattern | Marker | None = None,
    answer_pattern: str | re.Pattern | Marker | None = None,
    presorted: bool = False,
) -> QAResult:
    """Find hosts, questions and answers among one session's posts (any
    order; ``presorted`` says they already come by time, then id)."""
    q_marker = _marker(question_pattern, "question") or _DEFAULT_Q
    a_marker = _marker(answer_pattern, "answer")
    embedded = a_marker is None
    a_marker = a_marker or _DEFAULT_A
    host_list = [h for h in (hosts or []) if h]
    if not presorted:
        posts = sorted(posts, key=lambda p: (p[4] or "", p[0]))
    # Fields by position (see QAPost): 0 id, 1 author_id, 2 handle, 3 text,
    # 4 created_at, 5 reply_to_id, 6 quote_of_id, 7 is_repost.
    candidates: list[tuple[Any, int, bool]] = []  # (post, number, delimited)
    q_rx = q_marker.rx.match if q_marker.rx is not None else None
    q_find = q_marker.find
    delimited = _DELIMITED.match
    q_first = "Qq" if q_marker is _DEFAULT_Q else None
    for p in posts:
        if p[7] or not p[3]:
            continue
        if q_first is not None and p[3][0].isalnum() and p[3][0] not in q_first:
            continue  # no leading mention/hashtag/symbol, and no "Q" either
        if q_rx is not None:  # Marker.match inlined: one regex call per post
            qm = q_rx(p[3])
            if qm is None:
                continue
            n = to_number(qm.group("n"))
            if n is not None and not is_teaser(p[3][qm.end():]):
                candidates.append((p, n, delimited(p[3], qm.end("n")) is not None))
            continue
        found = q_find(p[3])
        if found and not is_teaser(found[1]):
            candidates.append((p, found[0], found[2]))

    def key(p: tuple[Any, ...]) -> str:
        return p[1] or p[2] or ""

    if host_list:
        candidates = [c for c in candidates if any(handle_matches(c[0][2], h) for h in host_list)]
        shown_hosts = host_list
    else:
        # Hosts ask many of the numbers (on every platform they post to);
        # a participant who once types "Q2: …" asks few and owns none.
        owners: dict[int, str] = {}
        numbers: dict[str, set[int]] = {}
        handle_of: dict[str, str] = {}
        for p, n, _ in candidates:
            k = key(p)
            owners.setdefault(n, k)
            numbers.setdefault(k, set()).add(n)
            handle_of[k] = p[2] or k
        owned = set(owners.values())
        top = max((len(v) for v in numbers.values()), default=0)
        need = max(1, math.ceil(HOST_SHARE * top))
        keep = {k for k, v in numbers.items() if len(v) >= need and (k in owned or len(v) >= 2)}
        # the host's mirror account on another platform (same name)
        keep |= {k for k in numbers if any(handle_matches(handle_of[k], handle_of[o]) for o in keep)}
        candidates = [c for c in candidates if key(c[0]) in keep]
        shown_hosts = [handle_of[k] for k in sorted(keep, key=lambda k: (-len(numbers[k]), handle_of[k]))]

    # A number asked with a delimiter somewhere ("Q5) …"): its posts without
    # one ("Q5 Who's still with us?") are not the question.
    firm = {n for _, n, d in candidates if d}
    questions: dict[int, Question] = {}
    question_of: dict[str, int] = {}
    for p, n, d in candidates:
        if not d and n in firm:
            continue
        q = questions.get(n)
        if q is None:
            q = questions[n] = Question(n, p[0], p[3], p[4], p[1], p[2])
        q.post_ids.append(p[0])
        question_of[p[0]] = n

    answer_of: dict[str, int] = {}
    if not questions:
        return QAResult(shown_hosts, questions, question_of, answer_of)
    a_rx = a_marker.rx.match if a_marker.rx is not None else None
    a_first = "Aa" if a_marker is _DEFAULT_A else None
    a_match = a_marker.match
    asker = {p[0]: p[1] for p, _, _ in candidates}  # each question post's own author
    for p in posts:
        pid = p[0]
        if p[7] or pid in question_of:
            continue
        number: int | None = None  # the question it answers
        marked: int | None = None  # the number of its answer marker
        text = p[3]
        if not text or (a_first is not None and text[0].isalnum() and text[0] not in a_first):
            pass  # the default marker starts with "A" (after any leading mentions/symbols)
        elif a_rx is not None:
            am = a_rx(text)
            if am is not None:
                marked = to_number(am.group("n"))
        else:
            got = a_match(text)
            if got:
                marked = got[0]
        if marked is not None and marked in questions:
            number = marked
        elif embedded and text:
            head = text[:EMBEDDED_WITHIN + 8]
            if ":" in head:
                e = EMBEDDED_ANSWER.search(head)
                if e and e.start() <= EMBEDDED_WITHIN and to_number(e.group("n")) in questions:
                    number = to_number(e.group("n"))
        if number is None:
            for target in (p[5], p[6]):
                # a reply to / quote of a question, by someone other than its asker
                if target and target in question_of and (p[1] is None or p[1] != asker[target]):
                    number = question_of[target]
                    break
        if number is not None:
            answer_of[pid] = number
    return QAResult(shown_hosts, questions, question_of, answer_of)


def _marker(pattern: str | re.Pattern | Marker | None, kind: str) -> Marker | None:
    if pattern is None or isinstance(pattern, Marker):
        return pattern
    if isinstance(pattern, re.Pattern):
        return Marker(pattern)
    rx = compile_pattern(pattern, kind)
    return Marker(rx) if rx is not None else None


# --------------------------------------------------------------------------
# Applying to sessions

# a member row's post id and rowid (sessions.member_rows: the rowid follows the QAPost fields)
_post_id, _rowid = itemgetter(0), itemgetter(len(QAPost._fields))
_FLUSH_AT = 50000  # answers held before they are written (memory stays flat)


@dataclass
class QATotals:
    """Questions and answers found in the sessions analysed."""

    questions: int = 0
    answers: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"questions": self.questions, "answers": self.answers}


class QAWriter:
    """Recompute the questions and answers of sessions, one session's members
    at a time (the rows of ``sessions.member_rows``, which the pipeline
    reads once for Q&A and the session summary alike).

    Writes ``questions`` and the posts' ``question_id``/``answer_to_id``,
    nothing else.  Question ids stay stable across re-runs: a question is
    identified by (session, number).

    ``session_ids`` None means every session: the posts' two columns are then
    put into ``rewrite`` (:class:`.rewrite.PostRewrite`), whose owner writes
    every post once with the other analysis columns; a post it holds no answer
    for loses its old one.  For some sessions the columns of their posts are
    cleared first and written directly."""

    def __init__(self, db: sqlite_utils.Database, session_ids: Iterable[int] | None, *,
                 rewrite: PostRewrite | None = None):
        conn = self.conn = db.conn
        self.db = db
        if session_ids is None:
            if rewrite is None:
                raise ValueError("Q&A of every session writes through a PostRewrite")
            self.session_ids = [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY id")]
            rows = conn.execute("SELECT id, session_id, number FROM questions").fetchall()
        else:
            self.session_ids = ids = sorted(session_ids)
            rows = []
            for chunk in chunks(ids):
                m = marks(len(chunk))
                conn.execute(f"""UPDATE posts SET question_id = NULL WHERE question_id IN
                                 (SELECT id FROM questions WHERE session_id IN ({m}))""", chunk)
                conn.execute(f"""UPDATE posts SET answer_to_id = NULL WHERE answer_to_id IN
                                 (SELECT id FROM questions WHERE session_id IN ({m}))""", chunk)
                rows += conn.execute(f"SELECT id, session_id, number FROM questions WHERE session_id IN ({m})",
                                     chunk).fetchall()
        self.rewrite = rewrite if session_ids is None else None
        self.existing: dict[int, dict[int, int]] = {}  # session -> number -> question id
        for qid, sid, n in rows:
            self.existing.setdefault(sid, {})[n] = qid
        self.info: dict[int, tuple[str | None, str | None]] = {
            r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, hashtag, configured_hosts FROM sessions")}
        self.markers: dict[str | None, tuple[Chat | None, Marker | None, Marker | None]] = {}
        self.q_updates: list[tuple[int, int]] = []  # (question id, post rowid)
        self.a_updates: list[tuple[int, int]] = []
        self.totals = QATotals()

    def _settings(self, tag: str | None) -> tuple[Chat | None, Marker | None, Marker | None]:
        if tag not in self.markers:
            chat = settings_for(self.db, tag) if tag else None
            self.markers[tag] = (
                chat,
                _marker(chat.question_pattern, "question") if chat else None,
                _marker(chat.answer_pattern, "answer") if chat else None,
            )
        return self.markers[tag]

    def add(self, session_id: int, rows: list[tuple]) -> list[str]:
        """One session's members (by time, then id); returns its hosts."""
        conn = self.conn
        tag, configured = self.info.get(session_id, (None, None))
        chat, q_marker, a_marker = self._settings(tag)
        given = [h for h in json_list(configured) if isinstance(h, str) and h]
        hosts = given or (chat.hosts if chat and chat.hosts else None)
        rowid_of = dict(zip(map(_post_id, rows), map(_rowid, rows)))
        res = analyse_posts(rows, hosts=hosts, question_pattern=q_marker, answer_pattern=a_marker, presorted=True)
        old = self.existing.get(session_id, {})
        qid_of: dict[int, int] = {}
        for n, q in sorted(res.questions.items()):
            if n in old:
                qid = old.pop(n)
                conn.execute("UPDATE questions SET post_id = ?, text = ? WHERE id = ?", [q.post_id, q.text, qid])
            else:
                new_id = conn.execute(
                    "INSERT INTO questions (session_id, number, post_id, text) VALUES (?, ?, ?, ?)",
                    [session_id, n, q.post_id, q.text],
                ).lastrowid
                assert new_id is not None  # (set by every INSERT)
                qid = new_id
            qid_of[n] = qid
        if old:
            gone = list(old.values())
            conn.execute(f"DELETE FROM questions WHERE id IN ({marks(len(gone))})", gone)
        self.q_updates.extend((qid_of[n], rowid_of[pid]) for pid, n in res.question_of.items())
        self.a_updates.extend((qid_of[n], rowid_of[pid]) for pid, n in res.answer_of.items())
        self.totals.questions += len(res.questions)
        self.totals.answers += len(res.answer_of)
        if len(self.a_updates) > _FLUSH_AT:
            self._flush()
        return res.hosts

    def finish(self) -> QATotals:
        """Write what is held back; returns the totals.  (Questions of sessions
        that no longer exist were deleted with them.)"""
        self._flush()
        return self.totals

    def _flush(self) -> None:
        if self.rewrite is not None:
            self.rewrite.add_answers(self.q_updates, self.a_updates)
        else:
            self.conn.executemany("UPDATE posts SET question_id = ? WHERE rowid = ?", self.q_updates)
            self.conn.executemany("UPDATE posts SET answer_to_id = ? WHERE rowid = ?", self.a_updates)
        self.q_updates.clear()
        self.a_updates.clear()
