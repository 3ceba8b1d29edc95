"""Import files into an archive: open, detect, normalize, save — in one transaction.

Every file gets a SAVEPOINT: a refused file (unknown format, no posts) is
rolled back alone; with ``strict=True`` the first problem rolls back the
whole command, so the database is exactly as it was before.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlite_utils

from .. import sources
from ..errors import ChatArchiveError, InputError, ParseError
from ..sources import Context, InputFile, Skip
from .schema import now_iso
from .writer import PostWriter, merge_placeholder_authors, resolve_local_replies

MAX_REPORTED_PROBLEMS = 20  # shown while importing (all are counted)
MAX_KEPT_PROBLEMS = 1000  # kept in FileResult.problems (--json)


@dataclass
class FileResult:
    path: str
    format: str | None = None
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    error: str | None = None  # set when the whole file was refused

    @property
    def posts(self) -> int:
        return self.added + self.updated + self.unchanged


class Progress:
    """Callbacks the CLI implements with a rich progress bar; no-ops here."""

    def start_file(self, path: str, total_bytes: int | None) -> None: ...

    def advance(self, bytes_read: int, posts: int) -> None: ...

    def problem(self, message: str) -> None: ...

    def end_file(self, result: FileResult) -> None: ...


def import_files(
    db: sqlite_utils.Database,
    paths: list[str],
    *,
    format: str | None = None,
    tz: str | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    batch_size: int = 2000,
    options: dict | None = None,
) -> list[FileResult]:
    """Import ``paths`` ("-" is stdin) into ``db`` in one transaction and
    return one FileResult per path.  A file that holds no posts, or cannot
    be read, is rolled back alone and gets ``error``; its malformed records
    are skipped and counted, or with ``strict`` raise ParseError and roll
    back everything.  Any other exception rolls back everything too.
    ``options`` reach the sources' Context (e.g. ``{"instance": host}``:
    the Mastodon server that served files carrying no evidence of it)."""
    progress = progress or Progress()
    results: list[FileResult] = []
    conn = db.conn
    conn.execute("BEGIN")
    try:
        for path in paths:
            conn.execute("SAVEPOINT import_file")
            result = FileResult(path="<stdin>" if path == "-" else path)
            try:
                with _gc_paused():
                    _import_one(db, path, result, format, tz, strict, progress, batch_size, options)
            except ParseError:
                raise  # strict mode: abandon the whole command
            except InputError as e:
                conn.execute("ROLLBACK TO import_file")
                result.error = str(e)
                result.added = result.updated = result.unchanged = 0
            conn.execute("RELEASE import_file")
            results.append(result)
            progress.end_file(result)
        if any(r.posts for r in results):
            resolve_local_replies(db)
            merge_placeholder_authors(db)
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (disk full)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return results


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsed JSON pages are hundreds of thousands of small acyclic objects
    each; the cyclic GC would scan them again and again for nothing (about
    15% of an import).  Young generations are still collected now and then."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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


def _import_one(db, path, result, format_name, tz, strict, progress, batch_size, options=None) -> None:
    f = InputFile(path)
    writer: PostWriter | None = None
    try:
        if format_name:
            sources._load_all()
            fmt = sources.FORMATS.get(format_name)
            if fmt is None:
                raise ChatArchiveError(f"Unknown format {format_name!r}; choose from {', '.join(sources.FORMATS)}")
        else:
            fmt = sources.detect(f)
        result.format = fmt.name
        ctx = Context(path=f.display, tz=tz, options=dict(options or {}))
        writer = PostWriter(db, batch_size=batch_size, background=_can_share(db))
        progress.start_file(f.display, f.size)
        started = now_iso()
        seen = 0

        def report(loc: str, reason: str) -> None:
            result.skipped += 1
            msg = f"{f.display}:{loc}: {reason}"
            if strict:
                # the line (when the location starts with one) travels with
                # the error; the message is the same FILE:LINE: reason line
                # as without --strict
                lead = loc.split(" ", 1)[0]
                err = ParseError(f.display, int(lead) if lead.isdigit() else None, reason)
                err.args = (msg,)
                raise err
            if result.skipped <= MAX_REPORTED_PROBLEMS:
                progress.problem(msg)
            if result.skipped <= MAX_KEPT_PROBLEMS:
                result.problems.append(msg)

        try:
            for n, (loc, record) in enumerate(sources.open_records(f, fmt, ctx), 1):
                if n % 256 == 0:
                    gc.collect(1)
                if isinstance(record, Skip):
                    report(loc, str(record))
                    continue
                try:
                    posts = list(fmt.normalize(record, ctx))
                except Skip as e:
                    report(loc, str(e))
                    continue
                except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
                    report(loc, _describe(e))
                    continue
                writer.add(posts)
                seen += len(posts)
                if seen % 500 < len(posts) or seen < 500:
                    progress.advance(f.bytes_read, seen)
        except (EOFError, OSError) as e:
            # truncated gzip, I/O error mid-file: what was read is kept
            report("end", f"file ends early or cannot be read ({e})")
        except UnicodeDecodeError as e:
            report("?", f"not UTF-8 text ({e.reason})")
        writer.flush()
        progress.advance(f.bytes_read, seen)
        stats = writer.stats
        result.added, result.updated, result.unchanged = stats.added, stats.updated, stats.unchanged
        if seen == 0:
            why = f"{result.skipped} malformed record(s) and " if result.skipped else ""
            raise InputError(f"{f.display}: read as {fmt.description}, but found {why}no posts")
        db.conn.execute(
            """INSERT INTO imports (path, format, started, finished, added, updated, unchanged, skipped, status)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (f.display, fmt.name, started, now_iso(), result.added, result.updated,
             result.unchanged, result.skipped, "partial" if result.skipped else "ok"),
        )
    finally:
        if writer is not None:
            writer.close()  # the writer thread must be idle before any ROLLBACK
        f.close()


def _describe(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"missing field {e.args[0]!r}"
    return f"{type(e).__name__}: {e}"
