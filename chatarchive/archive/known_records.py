"""Records already imported, byte for byte: the re-import fast path.

Importing a file again (a twarc2 search re-run into the same archive, a
folder imported twice) used to parse, map, check and merge every post once
more only to find nothing new: about twice the time of a bare JSON pass.
A record (one JSONL line) that gave whole pages of posts is remembered by a
digest of its bytes and of how it was read (format, options, the
chatarchive version); a later record with the same digest gave the same
posts, so it is counted as unchanged without being parsed.

Only clean records are remembered: one with a skipped item, a warning or a
refused post goes through the normal path every time, so its problems are
reported again.  Only big records are (pages of posts, ``MIN_BYTES``):
their digests are few enough to be held in memory for the whole file.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlite_utils

# Below this size a record is one post or a few: remembering it would cost
# more than parsing it again.
MIN_BYTES = 16_384
# Bumped when a change of mapping means a record gives other posts than it
# did (then files are read again, not skipped).
MAPPING_VERSION = "1"
SAVE_EVERY = 200  # records remembered before they are written (bounds memory)


class KnownRecords:
    """The digests of one file's already imported records, and the new ones
    to remember.  Uses the connection only when the caller's writer is idle
    (:meth:`load` before it starts, :meth:`skip` after a flush); new ones
    are written by the writer (``PostWriter.also_write`` with SAVE_SQL and
    :meth:`take`), after the batch holding their posts."""

    def __init__(self, db: sqlite_utils.Database, fmt: str, options: tuple[Any, ...]):
        from .. import __version__

        self.db = db
        self._salt = repr((fmt, options, __version__, MAPPING_VERSION)).encode()
        self.known: set[bytes] = set()
        self.pending: list[tuple[bytes, str]] = []
        self._counted: set[str] = set()
        self.unchanged = 0  # distinct posts of the skipped records

    def load(self) -> None:
        self.known = {r[0] for r in self.db.conn.execute("SELECT hash FROM imported_records")}

    def key(self, record: Any) -> bytes | None:
        """The digest of a record that may be remembered, else None."""
        if type(record) is not bytes or len(record) < MIN_BYTES:
            return None
        h = hashlib.sha256(self._salt)
        h.update(record)
        return h.digest()[:16]

    def skip(self, key: bytes) -> int:
        """Count a known record's posts as unchanged; returns how many it gave."""
        row = self.db.conn.execute("SELECT post_ids FROM imported_records WHERE hash = ?", (key,)).fetchone()
        ids = row[0].split("\n") if row and row[0] else []
        for pid in ids:
            if pid not in self._counted:
                self._counted.add(pid)
                self.unchanged += 1
        return len(ids)

    def remember(self, key: bytes, post_ids: list[str]) -> None:
        if key not in self.known:
            self.known.add(key)
            self.pending.append((key, "\n".join(post_ids)))

    def take(self) -> list[tuple[bytes, str]]:
        """The records remembered since the last take, as rows for SAVE_SQL."""
        rows, self.pending = self.pending, []
        return rows


SAVE_SQL = "INSERT OR IGNORE INTO imported_records (hash, post_ids) VALUES (?, ?)"
