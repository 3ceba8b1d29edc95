"""Chat settings: which hashtags are chats, and how each one is analysed.

Table ``chats`` holds one row per chat hashtag the user named (``sessions
detect --hashtag``, ``add``, ``schedule``) with the options given there
(gap, minimum posts, lead-in and tail, time zone, hosts, question/answer
patterns, weekly schedules), plus a defaults row (``DEFAULTS_ROW``) for
options given without a hashtag.  Every later analysis applies them again,
so an import next week is analysed the way the user asked this week.
``forget`` deletes a hashtag's row (``sessions forget``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlite_utils

from ..errors import ChatArchiveError

DEFAULT_GAP = timedelta(minutes=45)
DEFAULT_MIN_POSTS = 10
# How far before a session's core its lead-in reaches (announcements the
# same morning, reminders, greetings), and how far after it its tail
# (late answers, wrap-ups, stragglers).
DEFAULT_LEAD = timedelta(hours=6)
DEFAULT_TAIL = timedelta(hours=2)
MAX_MARGIN = timedelta(hours=24)
DEFAULTS_ROW = "*"  # chats row holding defaults for every hashtag (no hashtag can be "*")


@dataclass
class Chat:
    """One row of ``chats``; None (or empty) leaves an option to the defaults."""

    hashtag: str
    explicit: bool = False  # named by the user: always analysed, never guessed
    timezone: str | None = None
    hosts: list[str] = field(default_factory=list)
    gap_seconds: int | None = None
    min_posts: int | None = None
    question_pattern: str | None = None
    answer_pattern: str | None = None
    schedules: list[dict[str, Any]] = field(default_factory=list)
    lead_seconds: int | None = None
    tail_seconds: int | None = None

    @property
    def gap(self) -> float:
        """The silence (seconds) that splits two sessions."""
        return float(self.gap_seconds) if self.gap_seconds else DEFAULT_GAP.total_seconds()

    @property
    def min_count(self) -> int:
        """The fewest posts a detected session has (fewer are strays)."""
        return self.min_posts if self.min_posts else DEFAULT_MIN_POSTS

    @property
    def lead(self) -> float:
        """How far (seconds) before the core the lead-in reaches (0: none)."""
        return float(self.lead_seconds) if self.lead_seconds is not None else DEFAULT_LEAD.total_seconds()

    @property
    def tail(self) -> float:
        """How far (seconds) after the core the tail reaches (0: none)."""
        return float(self.tail_seconds) if self.tail_seconds is not None else DEFAULT_TAIL.total_seconds()


def clean_tag(tag: str) -> str:
    """A hashtag as the user typed it, without '#'; raises ChatArchiveError when it cannot be one."""
    tag = (tag or "").strip().lstrip("#")
    if not tag or not re.fullmatch(r"\w+", tag):
        raise ChatArchiveError(f"Invalid hashtag: {tag!r} (letters, digits and _ only, e.g. cmgrchat)")
    return tag


def get_chat(db: sqlite_utils.Database, hashtag: str) -> Chat:
    """The stored settings of one hashtag (or of ``DEFAULTS_ROW``), empty when none are stored."""
    row = db.execute(
        """SELECT hashtag, explicit, timezone, hosts, gap_seconds, min_posts, question_pattern,
                  answer_pattern, schedules, lead_seconds, tail_seconds FROM chats WHERE hashtag = ?""",
        [hashtag],
    ).fetchone()
    if row is None:
        return Chat(hashtag=hashtag)
    return Chat(
        hashtag=row[0], explicit=bool(row[1]), timezone=_text(row[2]),
        hosts=[h for h in json_list(row[3]) if isinstance(h, str) and h],
        gap_seconds=_int(row[4]), min_posts=_int(row[5]), question_pattern=_text(row[6]),
        answer_pattern=_text(row[7]), schedules=[s for s in json_list(row[8]) if isinstance(s, dict)],
        lead_seconds=_int(row[9]), tail_seconds=_int(row[10]),
    )


# The chats table is edited by hand at times (it is documented, and
# Datasette shows it): a value of the wrong type is read as "not set"
# rather than failing every later analysis.
def json_list(value: Any) -> list[Any]:
    """A JSON array column as a list; [] for NULL or anything else."""
    try:
        got = json.loads(value) if isinstance(value, str) else []
    except ValueError:
        return []
    return got if isinstance(got, list) else []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**40 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def save_chat(db: sqlite_utils.Database, chat: Chat) -> None:
    db.execute(
        """INSERT INTO chats (hashtag, explicit, timezone, hosts, gap_seconds, min_posts,
                              question_pattern, answer_pattern, schedules, lead_seconds, tail_seconds)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(hashtag) DO UPDATE SET explicit = excluded.explicit,
             timezone = excluded.timezone, hosts = excluded.hosts,
             gap_seconds = excluded.gap_seconds, min_posts = excluded.min_posts,
             question_pattern = excluded.question_pattern, answer_pattern = excluded.answer_pattern,
             schedules = excluded.schedules, lead_seconds = excluded.lead_seconds,
             tail_seconds = excluded.tail_seconds""",
        [chat.hashtag, int(chat.explicit), chat.timezone, json.dumps(chat.hosts), chat.gap_seconds,
         chat.min_posts, chat.question_pattern, chat.answer_pattern, json.dumps(chat.schedules),
         chat.lead_seconds, chat.tail_seconds],
    )


def settings_for(db: sqlite_utils.Database, tag: str) -> Chat:
    """A chat's settings, with the defaults row filling what it leaves open."""
    chat = get_chat(db, tag)
    base = get_chat(db, DEFAULTS_ROW)
    for attr in ("timezone", "gap_seconds", "min_posts", "question_pattern", "answer_pattern",
                 "lead_seconds", "tail_seconds"):
        if getattr(chat, attr) is None:
            setattr(chat, attr, getattr(base, attr))
    if not chat.hosts:
        chat.hosts = base.hosts
    return chat


def explicit_chats(db: sqlite_utils.Database) -> list[str]:
    """The hashtags the user named as chats (when there are any, only they are analysed)."""
    return [r[0] for r in db.execute("SELECT hashtag FROM chats WHERE explicit = 1 ORDER BY hashtag")]


def hashtag_id(db: sqlite_utils.Database, tag: str) -> int | None:
    """The ``hashtags`` row of a tag (exact spelling), None when no post carries it."""
    row = db.execute("SELECT id FROM hashtags WHERE tag = ?", [tag]).fetchone()
    return row[0] if row else None


def display_tag(db: sqlite_utils.Database, tag: str) -> str:
    """The hashtag as users write it: the chat's own spelling, else the first seen."""
    row = db.execute("SELECT hashtag FROM chats WHERE hashtag = ?", [tag]).fetchone()
    if row:
        return row[0]
    row = db.execute("SELECT tag FROM hashtags WHERE tag = ?", [tag]).fetchone()
    return row[0] if row else tag


def remember(
    db: sqlite_utils.Database,
    tags: list[str] | None,
    *,
    gap: timedelta | None,
    min_posts: int | None,
    tz: str | None,
    hosts: Iterable[str] | None,
    question_pattern: str | None,
    answer_pattern: str | None,
    lead: timedelta | None = None,
    tail: timedelta | None = None,
) -> list[str]:
    """Store the options the user gave, per hashtag (or, without hashtags, as
    defaults); name the hashtags as chats.  Returns the hashtags as stored
    (their display spelling), [] when none were given.  An empty pattern
    clears a stored one."""
    names = [clean_tag(t) for t in tags] if tags else [DEFAULTS_ROW]
    out = []
    for name in names:
        chat = get_chat(db, name)
        if name != DEFAULTS_ROW:
            chat.hashtag = display_tag(db, chat.hashtag)
            chat.explicit = True
        if gap is not None:
            chat.gap_seconds = int(gap.total_seconds())
        if min_posts is not None:
            chat.min_posts = min_posts
        if lead is not None:
            chat.lead_seconds = int(lead.total_seconds())
        if tail is not None:
            chat.tail_seconds = int(tail.total_seconds())
        if tz is not None:
            chat.timezone = tz
        if hosts:
            chat.hosts = [h.lstrip("@") for h in hosts]
        if question_pattern is not None:
            chat.question_pattern = question_pattern or None
        if answer_pattern is not None:
            chat.answer_pattern = answer_pattern or None
        save_chat(db, chat)
        out.append(chat.hashtag)
    return out if tags else []


def forget(db: sqlite_utils.Database, hashtag: str) -> Chat:
    """Delete a hashtag's stored settings (its ``chats`` row), as if it had
    never been named; returns what was stored.  Raises ChatArchiveError when
    the hashtag is not remembered."""
    tag = clean_tag(hashtag)
    row = db.execute("SELECT hashtag FROM chats WHERE hashtag = ? AND hashtag != ?", [tag, DEFAULTS_ROW]).fetchone()
    if row is None:
        known = [r[0] for r in db.execute("SELECT hashtag FROM chats WHERE hashtag != ? ORDER BY hashtag",
                                          [DEFAULTS_ROW])]
        listed = ", ".join("#" + k for k in known) if known else "none"
        raise ChatArchiveError(f"#{tag} is not a remembered chat hashtag (remembered: {listed})")
    chat = get_chat(db, row[0])
    db.execute("DELETE FROM chats WHERE hashtag = ?", [row[0]])
    return chat
