"""Import files into an archive: open, detect, normalize, save — in one transaction.

Every file gets a SAVEPOINT: a refused file (unknown format, no posts) is
rolled back alone; with ``strict=True`` the first problem rolls back the
whole command, so the database is exactly as it was before.  What happens
is reported through a :class:`Progress` (the CLI draws a bar with it).

What is reported, each as one ``FILE:LINE: reason`` line (URLs in it with
their credentials redacted):

* *skipped*: a record, or one item of a record (a post of a 100-post API
  page), that could not be read; whatever the error, it costs that record
  or item only;
* *warnings*: a value mended on the way in (a time outside the archive's
  range stored as NULL, a count larger than 2^63): the post is stored;
* *conflicts*: a sighting that contradicts the stored post's author or
  time, not applied (``archive.writer``).

The write lock is taken when the import starts (``BEGIN IMMEDIATE``): a
second import or a capture waits up to the busy timeout, then gets one
line (``errors.BusyError``), never "database is locked".
"""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import sqlite_utils

from .. import sources
from ..errors import BusyError, ChatArchiveError, InputError, ParseError, redact
from ..gc_pause import gc_paused
from ..sources import Format, InputFile, Skip
from ..sources.reading import describe_error
from .known_records import SAVE_EVERY, SAVE_SQL, KnownRecords
from .schema import is_busy, now_iso
from .writer import PostWriter, merge_placeholder_authors, resolve_local_replies

MAX_REPORTED_PROBLEMS = 20  # shown while importing (all are counted)
MAX_KEPT_PROBLEMS = 1000  # kept in FileResult.problems (--json)


@dataclass
class FileResult:
    """What importing one file did (the ``--json`` summary's per-file entry)."""

    path: str
    format: str | None = None
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    warnings: int = 0  # values mended on the way in (the posts are stored)
    conflicts: int = 0  # sightings that contradicted a stored post's author or time (not applied)
    problems: list[str] = field(default_factory=list)  # skips, warnings and conflicts, as FILE:LINE: reason
    error: str | None = None  # set when the whole file was refused

    @property
    def posts(self) -> int:
        return self.added + self.updated + self.unchanged


class Progress(Protocol):
    """What an import reports while it runs (the CLI draws a progress bar)."""

    def start_file(self, path: str, total_bytes: int | None) -> None:
        """A file is opened; ``total_bytes`` is its size as stored (None for stdin)."""

    def advance(self, bytes_read: int, posts: int) -> None:
        """So far in this file: bytes of it read (as stored) and posts normalized."""

    def problem(self, message: str) -> None:
        """A malformed record was skipped (``FILE:LINE: reason``; the first few only)."""

    def end_file(self, result: FileResult) -> None:
        """The file is done (or refused: ``result.error``)."""


class NoProgress:
    """A :class:`Progress` that shows nothing: for library use."""

    def start_file(self, path: str, total_bytes: int | None) -> None:
        pass

    def advance(self, bytes_read: int, posts: int) -> None:
        pass

    def problem(self, message: str) -> None:
        pass

    def end_file(self, result: FileResult) -> None:
        pass


def import_files(
    db: sqlite_utils.Database,
    paths: list[str],
    *,
    format: str | None = None,
    tz: str | None = None,
    instance: str | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    batch_size: int = 2000,
) -> list[FileResult]:
    """Import ``paths`` ("-" is stdin) into ``db`` in one transaction and
    return one FileResult per path.

    ``format`` skips detection (a name in ``sources.FORMATS``; an unknown
    name raises ChatArchiveError); ``tz`` is the zone of local times
    (Twitter Archiver sheets); ``instance`` is the Mastodon server that
    served the files (a host or URL), for files carrying no evidence of it.
    A file that holds no posts, or cannot be read, is rolled back alone and
    gets ``error``; its malformed records are skipped and counted, or with
    ``strict`` raise ParseError and roll back everything.  Any other
    exception rolls back everything too."""
    fmt = sources.get_format(format) if format else None
    progress = progress or NoProgress()
    results: list[FileResult] = []
    conn = db.conn
    with _bulk_settings(conn):
        try:
            # the write lock now, before reading a byte: a concurrent import
            # waits here (busy timeout), not half-way through its files
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if is_busy(e):
                raise BusyError(_db_path(db)) from None
            raise
        try:
            for path in paths:
                conn.execute("SAVEPOINT import_file")
                result = FileResult(path="<stdin>" if path == "-" else path)
                try:
                    with gc_paused():  # young generations are still collected now and then (below)
                        _import_one(db, path, result, fmt, tz, instance, strict, progress, batch_size)
                except ParseError:
                    raise  # strict mode: abandon the whole command
                except InputError as e:
                    conn.execute("ROLLBACK TO import_file")
                    result.error = redact(str(e))
                    result.added = result.updated = result.unchanged = result.conflicts = 0
                conn.execute("RELEASE import_file")
                results.append(result)
                progress.end_file(result)
            if any(r.posts for r in results):
                resolve_local_replies(db)
                merge_placeholder_authors(db)
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:  # SQLite may have rolled back already (disk full)
                conn.execute("ROLLBACK")
            if is_busy(e):  # COMMIT waits for readers; one held on past the timeout
                raise BusyError(_db_path(db), "another program kept the archive busy; nothing was imported") from None
            raise
        return results


def _db_path(db: sqlite_utils.Database) -> str:
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return (row[2] if row else "") or "the archive"


IMPORT_CACHE_KIB = 65536  # page cache while importing (open_db's default is 32 MB)


@contextmanager
def _bulk_settings(conn: sqlite3.Connection) -> Iterator[None]:
    """Connection settings for the length of an import, put back afterwards.

    * A larger page cache: each new post adds an entry at a random place of
      ``idx_posts_author_id`` (authors post in any order); once that index
      outgrows the cache every insert reads a page back and writes one
      out, and the cost per post grew with the archive (1M posts: +50% per
      post against 100k).  64 MB holds it past a million posts.
    * Statement journals in memory: each multi-row INSERT keeps one (the
      pages it changes, as they were) so it can be undone alone; in a
      temporary file it was written and thrown away for every statement,
      more bytes than the archive itself.  Only switched while the
      connection has no temporary tables (changing temp_store drops them).
    """
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    store = conn.execute("PRAGMA temp_store").fetchone()[0]
    switch_store = store != 2 and not conn.in_transaction and \
        not conn.execute("SELECT 1 FROM temp.sqlite_master LIMIT 1").fetchone()
    if switch_store:
        conn.execute("PRAGMA temp_store = MEMORY")
    if -IMPORT_CACHE_KIB < cache < 0:
        conn.execute(f"PRAGMA cache_size = {-IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")
        if switch_store and not conn.in_transaction:
            conn.execute(f"PRAGMA temp_store = {int(store)}")


def _can_share(db: sqlite_utils.Database) -> bool:
    """Whether the connection may be used from the writer thread (open_db's
    may; a plain sqlite3.connect() one may not)."""
    if os.environ.get("CHATARCHIVE_NO_WRITER_THREAD"):
        return False
    ok: list[bool] = []

    def probe() -> None:
        try:
            db.conn.execute("SELECT 1").fetchone()
            ok.append(True)
        except sqlite3.ProgrammingError:
            pass

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return bool(ok)


def _import_one(db: sqlite_utils.Database, path: str, result: FileResult, fmt: Format | None, tz: str | None,
                instance: str | None, strict: bool, progress: Progress, batch_size: int) -> None:
    f = InputFile(path)
    writer: PostWriter | None = None
    try:
        if fmt is None:
            fmt = sources.detect(f)
        result.format = fmt.name
        ctx = fmt.context(f.display, tz=tz, instance=instance)
        writer = PostWriter(db, batch_size=batch_size, background=_can_share(db), defer_fts=True)
        progress.start_file(f.display, f.size)
        started = now_iso()
        seen = 0

        def report(loc: str, reason: str, kind: str = "skip") -> None:
            msg = redact(f"{f.display}:{loc}: {reason}")
            if kind == "skip":
                result.skipped += 1
                if strict:
                    # the line (when the location starts with one) travels with
                    # the error; the message is the same FILE:LINE: reason line
                    # as without --strict
                    lead = loc.split(" ", 1)[0]
                    err = ParseError(f.display, int(lead) if lead.isdigit() else None, redact(reason))
                    err.args = (msg,)
                    raise err
            else:
                result.warnings += 1
            reported = result.skipped + result.warnings
            if reported <= MAX_REPORTED_PROBLEMS:
                progress.problem(msg)
            if len(result.problems) < MAX_KEPT_PROBLEMS:
                result.problems.append(msg)

        problems = ctx.problems
        known = KnownRecords(db, fmt.name, (tz, instance))
        writer.flush()  # idle: the known records are read with the connection
        known.load()
        try:
            for n, (loc, record) in enumerate(sources.open_records(f, fmt, ctx), 1):
                if n % 256 == 0:
                    gc.collect(1)
                if isinstance(record, Skip):
                    report(loc, str(record))
                    continue
                key = known.key(record)
                if key is not None and key in known.known:
                    writer.flush()
                    seen += known.skip(key)
                    continue
                skipped_before = result.skipped
                try:
                    posts = list(fmt.normalize(record, ctx))
                except ChatArchiveError:
                    raise
                except MemoryError:
                    raise
                except Exception as e:  # Skip, or anything a malformed record provokes
                    for p in problems:
                        report(loc, p)
                    problems.clear()
                    report(loc, describe_error(e))
                    continue
                if problems:  # items of the record dropped, the rest kept
                    for p in problems:
                        report(loc, p)
                    problems.clear()
                refused = writer.add(posts, where=f"{f.display}:{loc}")
                for reason in refused:
                    report(loc, reason)
                for post in posts:
                    if post.warnings:
                        for w in post.warnings:
                            report(loc, w, "warning")
                seen += len(posts) - len(refused)
                if key is not None and posts and not refused and not any(p.warnings for p in posts) \
                        and result.skipped == skipped_before:
                    known.remember(key, [p.id for p in posts])
                    if len(known.pending) >= SAVE_EVERY:
                        writer.also_write(SAVE_SQL, known.take())
                if seen % 500 < len(posts) or seen < 500:
                    progress.advance(f.bytes_read, seen)
        except (EOFError, OSError) as e:
            # truncated gzip, I/O error mid-file: what was read is kept
            report("end", f"file ends early or cannot be read ({e})")
        except UnicodeDecodeError as e:
            report("?", f"not UTF-8 text ({e.reason})")
        except (ChatArchiveError, MemoryError, sqlite3.Error):
            raise
        except Exception as e:  # the reader itself gave up mid-file: keep what was read
            report("end", f"the rest of the file cannot be read ({describe_error(e)})")
        writer.also_write(SAVE_SQL, known.take())
        writer.flush()
        progress.advance(f.bytes_read, seen)
        stats = writer.stats
        result.added, result.updated = stats.added, stats.updated
        result.unchanged = stats.unchanged + known.unchanged
        result.conflicts = stats.conflicts
        for i, msg in enumerate(writer.conflicts):
            msg = redact(msg)
            if i < MAX_REPORTED_PROBLEMS:
                progress.problem(msg)
            if len(result.problems) < MAX_KEPT_PROBLEMS:
                result.problems.append(msg)
        if seen == 0:
            why = f"{result.skipped} malformed record(s) and " if result.skipped else ""
            raise InputError(f"{f.display}: read as {fmt.description}, but found {why}no posts")
        db.conn.execute(
            """INSERT INTO imports (path, format, started, finished, added, updated, unchanged, skipped, status,
                                    conflicts, warnings)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (f.display, fmt.name, started, now_iso(), result.added, result.updated,
             result.unchanged, result.skipped, "partial" if result.skipped else "ok",
             result.conflicts, result.warnings),
        )
    finally:
        if writer is not None:
            writer.close()  # the writer thread must be idle before any ROLLBACK
        f.close()

