"""A busy archive: ``serve --live`` while an import or capture writes to it.

SQLite lets readers of a rollback-journal file wait while a writer holds its
lock; a long import holds it for long.  Every query of a mutable archive
first takes the read lock, waiting for the writer (half of
``CHATARCHIVE_BUSY_TIMEOUT``, 5 s by default: ``archive.schema.busy_timeout``), tries
once more, and then raises :class:`ArchiveBusy`, which the plugin answers
with a 503 page ("busy, try again", ``Retry-After``) instead of Datasette's
500, its traceback and its log line per failed query.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from datasette import Response
from datasette.views.base import DatasetteError

from ..archive.schema import busy_timeout, is_busy

BUSY_TRIES = 2  # the wait (CHATARCHIVE_BUSY_TIMEOUT, 5 s by default) is spread over this many tries
RETRY_AFTER = 5  # seconds a browser or client is told to wait


class ArchiveBusy(DatasetteError):
    """The archive stayed locked by a writer for longer than a query waits."""

    def __init__(self, database: str):
        super().__init__(f"The archive {database} is busy: an import or capture is writing to it. "
                         "This page will load once it is done; try again in a few seconds.",
                         title="Archive busy", status=503)


__all__ = ["RETRY_AFTER", "ArchiveBusy", "busy_response", "is_busy", "wait_for_writers"]


def wait_for_writers(db: Any) -> None:
    """Make every query of ``db`` (a mutable archive) wait for a writer's lock,
    try again once, and raise :class:`ArchiveBusy` when the lock outlasts
    that.  ``Database.execute_fn`` is the one path every Datasette query of a
    database takes (``execute`` runs through it), so wrapping this object's
    method covers Datasette's views and ours."""
    if not db.is_mutable or getattr(db, "_chatarchive_waits", False):
        return
    inner = db.execute_fn
    per_try_ms = int(busy_timeout() * 1000 / BUSY_TRIES)

    async def execute_fn(fn):
        def with_timeout(conn):
            # Take the read lock first (waiting up to the busy timeout), and hold
            # it while fn runs: fn's queries then never meet the writer's lock,
            # so Datasette logs no failed query, and a lock that outlasts the
            # wait fails here, before any of them.
            conn.execute(f"PRAGMA busy_timeout = {per_try_ms}")
            began = not conn.in_transaction
            if began:
                conn.execute("BEGIN")
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return fn(conn)
            finally:
                if began and conn.in_transaction:
                    conn.execute("ROLLBACK")

        for attempt in range(BUSY_TRIES):
            try:
                return await inner(with_timeout)
            except sqlite3.OperationalError as e:
                if not is_busy(e):
                    raise
            if attempt + 1 < BUSY_TRIES:
                await asyncio.sleep(0.25)
        raise ArchiveBusy(db.name)

    db.execute_fn = execute_fn
    db._chatarchive_waits = True


def busy_response(datasette: Any, request: Any, exception: BaseException) -> Any:
    """The 503 page (or JSON) for a busy archive."""

    async def inner():
        error = exception if isinstance(exception, ArchiveBusy) else ArchiveBusy("")
        headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
        info = {"ok": False, "error": error.message, "status": 503, "title": error.title}
        if request.path.split("?")[0].endswith(".json"):
            return Response.json(info, status=503, headers=headers)
        html = await datasette.render_template("error.html", info, request=request)
        return Response.html(html, status=503, headers=headers)

    return inner
