"""The Python API: one archive file and the whole pipeline as methods, as
``sqlite_utils.Database`` is for a SQLite file::

    from chatarchive import Archive

    archive = Archive("chats.db", create=True)   # without create=True a missing file is an error
    archive.import_files(["cmgrchat.jsonl"])      # returns the per-file summary
    for s in archive.sessions(hashtag="cmgrchat"):
        print(s.slug, s.start, s.posts)
    for hit in archive.search("onboarding", limit=5):
        print(hit.post.author_handle, hit.snippet)
    archive.recap("site/")

The command line is a thin layer over these methods, so a script and
``chatarchive`` do exactly the same thing.  Every error a user can fix is a
:class:`~chatarchive.errors.ChatArchiveError` whose message is one line fit
to show; ``Archive.db`` is the ``sqlite_utils.Database`` for anything else.
"""

from __future__ import annotations

import io
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO, overload

import sqlite_utils

from .analysis.pipeline import analyse_archive
from .analysis.sessions import add_session, delete_sessions, remove_session, set_schedule
from .analysis.settings import Chat, explicit_chats, hashtag_id
from .analysis.settings import forget as forget_chat
from .analysis.stats import session_stats
from .analysis.times import TIME_MAX, TIME_MIN
from .archive import editorial
from .archive.editorial import Target
from .archive.queries import get_session, list_sessions
from .archive.schema import open_db
from .archive.search import SearchResults
from .archive.search import search as search_posts
from .archive.writer import transaction
from .errors import ChatArchiveError
from .models import HIGHLIGHT_END, HIGHLIGHT_START, Session
from .timeutil import get_zone, iso_utc, parse_duration, parse_time

if TYPE_CHECKING:
    from .archive.importer import FileResult, Progress
    from .capture.config import Config
    from .capture.deleted import CheckProgress, DeletedCheck
    from .capture.http import Clock, RetryPolicy
    from .recap.site import RecapResult

# The archive layer and the analysis load with this module.  The importers
# (every format module) and the outputs (Jinja2 and the view layer) are each
# as heavy as all the rest: they are imported by the methods that use them,
# so that `chatarchive search` or `sessions list` start without them.

__all__ = ["Archive", "ForgetResult", "ImportResult", "SessionsResult"]

Duration = timedelta | str  # a timedelta, or text such as "45m", "1h30m"
Time = datetime | str  # a datetime, or ISO-8601 text (UTC unless an offset or tz is given)


@dataclass
class ImportResult:
    """What :meth:`Archive.import_files` did: one ``FileResult`` per file (in
    the order given; iterating the result iterates them), and the analysis
    that followed (empty when there was none)."""

    files: list[FileResult]
    analysis: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # the import itself, without the analysis

    def __iter__(self) -> Iterator[FileResult]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def posts(self) -> int:
        """Posts read from all files (added, updated or unchanged)."""
        return sum(f.posts for f in self.files)

    @property
    def imported(self) -> list[FileResult]:
        """The files that were imported (not refused)."""
        return [f for f in self.files if not f.error]

    def totals(self) -> dict[str, int]:
        """Added, updated, unchanged and skipped posts over the imported files."""
        return {k: sum(getattr(f, k) for f in self.imported) for k in ("added", "updated", "unchanged", "skipped")}

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``chatarchive import --json``."""
        return {
            "files": [
                {"path": f.path, "format": f.format, "added": f.added, "updated": f.updated,
                 "unchanged": f.unchanged, "skipped": f.skipped, "problems": f.problems, "error": f.error}
                for f in self.files
            ],
            "analysis": self.analysis,
        }


@dataclass
class SessionsResult:
    """What a change to the sessions did: the analysis that followed and the
    sessions concerned (those of the hashtags named, or the scheduled ones)."""

    analysis: dict[str, Any]
    sessions: list[Session]
    hashtag: str | None = None  # the chat's hashtag as the archive spells it (schedule)
    unknown_hashtags: list[str] = field(default_factory=list)  # named, but no post carries them

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``chatarchive sessions detect/schedule --json``."""
        return {"analysis": self.analysis, "sessions": [s.as_dict() for s in self.sessions]}


@dataclass
class ForgetResult:
    """What :meth:`Archive.forget` did: the hashtag (as it was remembered),
    the options it had, the detected sessions removed, the manual and
    scheduled sessions kept, the detected sessions it has after the new
    analysis (only by guessing, when no hashtag is named any more:
    ``guessing``) and that analysis."""

    hashtag: str
    options: dict[str, Any]
    removed: list[Session]
    kept: list[Session]
    detected_again: list[Session]
    guessing: bool
    analysis: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``chatarchive sessions forget --json``."""
        return {"hashtag": self.hashtag, "options": self.options,
                "removed": [s.slug for s in self.removed], "kept": [s.slug for s in self.kept],
                "detected_again": [s.slug for s in self.detected_again], "guessing": self.guessing,
                "analysis": self.analysis}


def chat_options(chat: Chat) -> dict[str, Any]:
    """A chat's remembered options, as ``sessions forget --json`` reports them."""
    return {"timezone": chat.timezone, "hosts": chat.hosts, "gap_seconds": chat.gap_seconds,
            "min_posts": chat.min_posts, "lead_seconds": chat.lead_seconds, "tail_seconds": chat.tail_seconds,
            "question_pattern": chat.question_pattern, "answer_pattern": chat.answer_pattern,
            "schedules": chat.schedules}


class Archive:
    """A chatarchive SQLite file.

    ``Archive(path)`` opens an existing archive (bringing its schema up to
    date); a missing file raises :class:`~chatarchive.errors.NotFoundError`
    and nothing is created.  ``Archive(path, create=True)`` creates it when
    missing.  ``":memory:"`` is a fresh in-memory archive.  Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = os.fspath(path)
        in_memory = self.path == ":memory:"
        #: True when this object created the file (see :meth:`discard_if_empty`)
        self.created = not in_memory and not os.path.exists(self.path)
        try:
            self.db: sqlite_utils.Database = open_db(self.path, create=create)
        except sqlite3.Error as e:  # not a database, locked, unreadable…
            raise ChatArchiveError(f"{self.path}: cannot open as a chatarchive database ({e})") from None

    def __repr__(self) -> str:
        return f"<Archive {self.path}>"

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.db.conn.close()

    def discard_if_empty(self) -> bool:
        """Close the archive; when this object created the file and no post
        was stored in it (a first import that failed or whose files were all
        refused, a first capture that stored nothing), delete the file and its
        journal, so a failed first run leaves nothing behind.  Returns whether
        it was deleted."""
        try:
            empty = self.created and not self.db["posts"].count
        except sqlite3.Error:
            empty = False  # cannot tell: keep the file
        self.close()
        if not empty:
            return False
        for name in (self.path, self.path + "-journal", self.path + "-wal", self.path + "-shm"):
            if os.path.exists(name):
                os.remove(name)
        return True

    # ----------------------------------------------------------------------
    # Import and analysis

    def import_files(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        format: str | None = None,
        tz: str | None = None,
        strict: bool = False,
        instance: str | None = None,
        analyse: bool = True,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Import chat files (a path or several; ``"-"`` is standard input) in one transaction,
        then analyse sessions, threads and Q&A when any post was read.

        Each file's format is detected unless ``format`` names it; ``tz`` is
        the time zone of local times (Twitter Archiver sheets); ``instance``
        the Mastodon server that served files carrying no evidence of it.  A
        file that cannot be read or holds no posts is rolled back alone and
        gets ``error``; malformed records are skipped and counted, or with
        ``strict`` raise :class:`~chatarchive.errors.ParseError` and nothing
        is imported.  ``progress`` receives ``start_file``/``advance``/
        ``problem``/``end_file`` calls."""
        from .archive.importer import import_files

        names = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
        started = time.monotonic()
        try:
            files = import_files(self.db, names, format=format, tz=tz, instance=instance, strict=strict,
                                 progress=progress)
        except sqlite3.OperationalError as e:  # locked by another writer, disk full, I/O error
            raise ChatArchiveError(f"{self.path}: {e}; nothing was imported") from None
        result = ImportResult(files, seconds=time.monotonic() - started)
        if analyse and result.posts:
            result.analysis = self.analyse()
        return result

    def analyse(
        self,
        hashtags: str | Iterable[str] | None = None,
        *,
        gap: Duration | None = None,
        min_posts: int | None = None,
        tz: str | None = None,
        hosts: Iterable[str] | None = None,
        question_pattern: str | None = None,
        answer_pattern: str | None = None,
        lead: Duration | None = None,
        tail: Duration | None = None,
        redetect: bool = False,
        full: bool = False,
    ) -> dict[str, Any]:
        """Analyse what is new: threads, sessions, their members and Q&A
        (every import does this already).  Naming ``hashtags`` marks them as
        chats and re-detects their sessions; the options (``gap`` between
        sessions, ``min_posts``, how far a session's ``lead``-in reaches
        before its core and its ``tail`` after it, the chat's ``tz``,
        ``hosts``, question and answer regexes with a group ``n``) are
        remembered for those hashtags, or for every hashtag when none is
        named.  Returns counts and a one-line ``summary``."""
        return analyse_archive(
            self.db, hashtags=_names(hashtags), gap=_duration(gap), min_posts=min_posts, tz=tz,
            hosts=list(hosts or []), question_pattern=question_pattern, answer_pattern=answer_pattern,
            lead=_duration(lead), tail=_duration(tail), redetect=redetect, full=full,
        )

    # ----------------------------------------------------------------------
    # Sessions

    def sessions(self, hashtag: str | None = None) -> list[Session]:
        """Sessions in time order (of one hashtag, with or without ``#``), with
        their posts, participants and questions counted."""
        return list_sessions(self.db, hashtag)

    def session(self, id_or_slug: str | int) -> Session:
        """One session by slug or id (raises NotFoundError)."""
        return get_session(self.db, id_or_slug)

    def session_stats(self, session: str | int, *, top: int = 10) -> dict[str, Any]:
        """The statistics of one session (``chatarchive show --json``): counts,
        first-timers, questions with their answers, links, top posts and
        participants, posts per minute."""
        return session_stats(self.db, session, top=top)

    def detect_sessions(
        self,
        hashtags: str | Iterable[str] | None = None,
        *,
        gap: Duration | None = None,
        min_posts: int | None = None,
        tz: str | None = None,
        hosts: Iterable[str] | None = None,
        question_pattern: str | None = None,
        answer_pattern: str | None = None,
        lead: Duration | None = None,
        tail: Duration | None = None,
    ) -> SessionsResult:
        """Re-detect the sessions of ``hashtags`` (every hashtag when none is
        named) with these options, remembered for later imports; manual and
        scheduled sessions are left alone.  ``lead``/``tail``: how far the
        same day's posts before and after a session's core still belong to
        it (default 6h and 2h; 0 for none).  Returns the analysis and the
        sessions of those hashtags."""
        tags = [t.lstrip("#") for t in _names(hashtags)]
        analysis = self.analyse(tags, gap=gap, min_posts=min_posts, tz=tz, hosts=hosts,
                                question_pattern=question_pattern, answer_pattern=answer_pattern,
                                lead=lead, tail=tail, redetect=True)
        wanted = {t.lower() for t in tags}
        found = [s for s in self.sessions() if not wanted or (s.hashtag or "").lower() in wanted]
        unknown = [t for t in tags if hashtag_id(self.db, t) is None]
        return SessionsResult(analysis, found, unknown_hashtags=unknown)

    def add_session(
        self,
        hashtag: str,
        start: Time,
        end: Time | None = None,
        *,
        duration: Duration | None = None,
        tz: str | None = None,
        hosts: Iterable[str] = (),
        title: str | None = None,
    ) -> Session:
        """Add a session with an explicit window, from ``start`` to ``end`` or
        for ``duration`` (taking over a session that overlaps it); ``tz`` is
        the zone of times without an offset and of the slug's date.  Without
        ``hosts`` the hosts given before for that session are kept; with them
        they are replaced.  Its members and Q&A are analysed at once."""
        if (end is None) == (duration is None):
            raise ChatArchiveError("Give exactly one of end and duration")
        if tz:
            get_zone(tz)
        t0 = _in_range(_utc(start, tz), "start")
        length = _required_duration(duration) if end is None else None
        if length is not None and length > timedelta(days=7):
            raise ChatArchiveError(f"--duration {length} is longer than a week; is that one session?")
        t1 = _in_range(_utc(end, tz) if end is not None else t0 + (length or timedelta(0)), "end")
        with transaction(self.db):
            sid = add_session(self.db, hashtag, iso_utc(t0), iso_utc(t1), hosts=hosts, title=title, tz=tz)
            analyse_archive(self.db, refresh_sessions=[sid])
        return self.session(sid)

    def schedule(
        self,
        hashtag: str,
        every: str,
        tz: str,
        duration: Duration,
        *,
        before: Duration = timedelta(0),
        after: Duration = timedelta(0),
        hosts: Iterable[str] = (),
        title: str | None = None,
    ) -> SessionsResult:
        """Give a chat a weekly schedule (``every="wed 20:00"`` in zone ``tz``,
        DST-safe): one session per occurrence with posts, including posts
        ``before`` and ``after`` it.  Remembered for later imports.  Returns
        the analysis and the chat's scheduled sessions."""
        with transaction(self.db):
            chat = set_schedule(self.db, hashtag, every, tz, _required_duration(duration),
                                _required_duration(before), _required_duration(after), hosts=hosts, title=title)
            analysis = analyse_archive(self.db, hashtags=[chat.hashtag])
        scheduled = [s for s in self.sessions(chat.hashtag) if s.source == "scheduled"]
        return SessionsResult(analysis, scheduled, hashtag=chat.hashtag)

    def remove_session(self, id_or_slug: str | int) -> Session:
        """Delete a session (its posts stay); returns what it was."""
        with transaction(self.db):
            return remove_session(self.db, str(id_or_slug))

    def forget(self, hashtag: str) -> ForgetResult:
        """Undo naming a chat hashtag: delete its remembered options and
        schedule (its ``chats`` row) and its detected sessions, then analyse
        again as if it had never been named.  Its manual and scheduled
        sessions are kept (remove them with :meth:`remove_session`).  When no
        hashtag is named any more, every hashtag is tried again, so the
        hashtag may get detected sessions back by guessing
        (``ForgetResult.detected_again``).  Raises ChatArchiveError when the
        hashtag is not remembered."""
        with transaction(self.db):
            chat = forget_chat(self.db, hashtag)
            mine = [s for s in self.sessions() if (s.hashtag or "").lower() == chat.hashtag.lower()]
            removed = [s for s in mine if s.source == "detected"]
            delete_sessions(self.db, [s.id for s in removed])
            analysis = analyse_archive(self.db, redetect=True)
        again = [s for s in self.sessions(chat.hashtag) if s.source == "detected"]
        return ForgetResult(chat.hashtag, chat_options(chat), removed, [s for s in mine if s.source != "detected"],
                            again, guessing=not explicit_chats(self.db), analysis=analysis)

    # ----------------------------------------------------------------------
    # Search and outputs

    def search(
        self,
        query: str,
        *,
        hashtag: str | None = None,
        author: str | None = None,
        session: str | int | None = None,
        since: Time | None = None,
        until: Time | None = None,
        limit: int = 20,
        order: str = "best",
        highlight: tuple[str, str] = ("**", "**"),
    ) -> SearchResults:
        """Full-text search (SQLite FTS5 syntax: words, "phrases", AND/OR/NOT,
        prefix*, NEAR) over post text and author handles and names.  Filters:
        ``hashtag``, ``author`` (handle or id), ``session`` (id or slug),
        ``since`` (inclusive) and ``until`` (exclusive).  ``order`` is
        ``"best"`` (bm25) or ``"newest"``.  Each hit has the ``post`` and a
        ``snippet`` with the matches between the two ``highlight`` strings.
        Text that is not FTS5 syntax (``A1:``, ``@handle``, a URL) is searched
        for its words, and the result's ``note`` says so; an unknown
        ``session`` raises :class:`~chatarchive.errors.NotFoundError`."""
        hits = search_posts(
            self.db, query, hashtag=hashtag, author=author, session=None if session is None else str(session),
            since=iso_utc(_utc(since)) if since is not None else None,
            until=iso_utc(_utc(until)) if until is not None else None, limit=limit, order=order,
        )
        if highlight == (HIGHLIGHT_START, HIGHLIGHT_END):
            return hits
        start, end = highlight
        return SearchResults([replace(h, snippet=h.snippet.replace(HIGHLIGHT_START, start).replace(HIGHLIGHT_END, end))
                              for h in hits], hits.query, hits.note)

    def recap(
        self,
        out: str | os.PathLike[str],
        sessions: str | int | Iterable[str | int] | None = None,
        *,
        templates: str | os.PathLike[str] | None = None,
        download_media: bool = False,
        search: bool = True,
        prune: bool = False,
        progress: Callable[[str], None] | None = None,
        include_unlisted: bool = False,
        base_url: str | None = None,
        anonymize: bool = False,
    ) -> RecapResult:
        """Write the static recap site of ``sessions`` (ids or slugs; all when
        none is given) into the folder ``out``: one page per session, the
        index and hashtag pages (listing every session of the archive), the
        pages of those sessions' people, and a Pagefind search index
        (``search``).  Every other page already in ``out`` is kept; ``prune``
        removes the pages of sessions no longer in the archive.  ``templates``
        is a folder of templates overriding ours; ``download_media`` copies
        avatars and media into the site.  Only files that changed are written.
        The site is published: hidden posts and accounts, and people who did
        not consent, are left out (``include_unlisted``: accounts unlisted on
        their platform are shown too).  ``base_url``: the address the site
        is published at, for absolute links in feeds, cards and ``og:url``.
        ``anonymize``: every non-host person as a stable pseudonym
        ("Participant 12"), for research sharing."""
        from .recap.site import build_site

        keys = [sessions] if isinstance(sessions, (str, int)) else (list(sessions) if sessions is not None else None)
        return build_site(self.db, Path(out), keys or None, templates=None if templates is None else Path(templates),
                          download_media=download_media, search=search, prune=prune, progress=progress,
                          include_unlisted=include_unlisted, base_url=base_url, anonymize=anonymize)

    @overload
    def export(self, session: str | int, fmt: str = ..., to: None = ..., *,
               include_unlisted: bool = ..., anonymize: bool = ...) -> str: ...

    @overload
    def export(self, session: str | int, fmt: str, to: str | os.PathLike[str] | TextIO, *,
               include_unlisted: bool = ..., anonymize: bool = ...) -> None: ...

    def export(self, session: str | int, fmt: str = "md", to: str | os.PathLike[str] | TextIO | None = None, *,
               include_unlisted: bool = False, anonymize: bool = False) -> str | None:
        """Export one session as ``md`` (a transcript for a blog post), ``json``,
        ``jsonl`` or ``csv``.  Returns the text, or writes it to ``to``: an
        open text stream, or a file path (written whole or not at all).
        Published like the recap (see :meth:`recap`)."""
        from .export import export_session

        if to is not None and not isinstance(to, (str, os.PathLike)):
            export_session(self.db, session, fmt, to, include_unlisted=include_unlisted, anonymize=anonymize)
            return None
        text = io.StringIO()
        export_session(self.db, session, fmt, text, include_unlisted=include_unlisted, anonymize=anonymize)
        if to is None:
            return text.getvalue()
        write_atomically(os.fspath(to), text.getvalue())
        return None


    # ----------------------------------------------------------------------
    # Editorial control and consent (archive/editorial.py; what published
    # outputs make of it: archive/published.py).  Every method resolves its
    # targets first and changes the archive in one transaction, or not at all.

    def hide(self, targets: str | Iterable[str], reason: str | None = None) -> list[Target]:
        """Keep posts or accounts (ids, URLs, @handles, DIDs) out of published outputs."""
        return editorial.hide(self.db, _names(targets), reason)

    def unhide(self, targets: str | Iterable[str]) -> list[Target]:
        return editorial.unhide(self.db, _names(targets))

    def hidden(self) -> list[dict[str, Any]]:
        """What is hidden, and why."""
        return editorial.hidden(self.db)

    def pin(self, post: str) -> Target:
        """Mark a post as a best answer (first under its question, in the session's Highlights)."""
        return editorial.pin(self.db, post)

    def unpin(self, post: str) -> Target:
        return editorial.unpin(self.db, post)

    def note(self, session: str | int, text: str, *, question: int | None = None) -> Session:
        """The host's note (Markdown) on a session or one of its questions; empty text removes it."""
        return get_session(self.db, editorial.set_note(self.db, session, text, question))

    def forget_account(self, account: str) -> tuple[Target, int]:
        """Remove a person's posts' content for good (tombstones stay) and
        redact their posts on every later import or capture; returns the
        account and how many posts became tombstones."""
        return editorial.forget_account(self.db, account)

    def consent(self, account: str, *, allow: bool) -> Target:
        """``allow``: publish an account its platform marks unlisted; else never publish it."""
        return editorial.set_consent(self.db, account, allow)

    def settings(self, **values: str | None) -> dict[str, str]:
        """The archive's settings (owner, contact, purpose, removal), after setting those given."""
        if any(v is not None for v in values.values()):
            return editorial.update_settings(self.db, values)
        return editorial.settings(self.db)

    def check_deleted(self, sessions: str | Iterable[str] | None = None, *, dry_run: bool = False,
                      config: Config | None = None, api_base: str | None = None, appview: str | None = None,
                      instances: Iterable[str] = (), timeout: float = 30.0, policy: RetryPolicy | None = None,
                      clock: Clock | None = None, progress: CheckProgress | None = None) -> DeletedCheck:
        """Ask X, Mastodon and Bluesky which of the archive's posts (or
        SESSIONs' posts) still exist; unless ``dry_run``, the gone ones
        become tombstones (content removed for good), in one transaction
        after every platform answered.  Credentials: ``config`` (default:
        the environment and config file, as ``capture``); a platform that
        needs them and has none is skipped (``PlatformCheck.skipped``)."""
        from .capture.config import load_config
        from .capture.deleted import CheckOptions, check_deleted

        opts = CheckOptions(sessions=tuple(_names(sessions)), dry_run=dry_run, api_base=api_base, appview=appview,
                            instances=tuple(instances), timeout=timeout, policy=policy)
        return check_deleted(self.db, opts, config if config is not None else load_config(),
                             clock=clock, progress=progress)


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder,
    so a failure never leaves a half-written file."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ChatArchiveError(f"{path}: cannot write ({e.strerror})") from None


# --------------------------------------------------------------------------
# Helpers


def _names(values: str | Iterable[str] | None) -> list[str]:
    if values is None:
        return []
    return [values] if isinstance(values, str) else list(values)


def _duration(value: Duration | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return parse_duration(value)


def _required_duration(value: Duration | None) -> timedelta:
    got = _duration(value)
    if got is None:
        raise ChatArchiveError("A duration is required (e.g. 1h, 45m)")
    return got


def _in_range(dt: datetime, what: str) -> datetime:
    """A session's time, refused outside the span the archive holds times in."""
    if not TIME_MIN <= iso_utc(dt) < TIME_MAX:
        raise ChatArchiveError(f"The session's {what} {iso_utc(dt)} is outside {TIME_MIN[:10]} .. {TIME_MAX[:10]}")
    return dt


def _utc(value: Time, tz: str | None = None) -> datetime:
    """A user's time as an aware UTC datetime; naive times are in ``tz`` (or UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None and tz:
            value = value.replace(tzinfo=get_zone(tz))
        return value
    return parse_time(value, tz)

