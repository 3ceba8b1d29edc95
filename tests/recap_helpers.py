"""Test archives for the recap/export tests (tests/fixtures/recap/, made by
make_fixtures.py there): imported, then analysed by the real analysis with the
chat's settings (hashtag, zone, host) as a host would give them."""

from __future__ import annotations

from pathlib import Path

from chatarchive.analyse import analyse_archive
from chatarchive.importer import import_files
from chatarchive.store import open_db

RECAP_FIXTURES = Path(__file__).parent / "fixtures" / "recap"
CHAT = RECAP_FIXTURES / "recapchat.jsonl"
HOSTILE = RECAP_FIXTURES / "hostile.jsonl"
ZONE = "America/New_York"
# Session slugs of recapchat.jsonl (dates in the chat's zone).
FIRST, SECOND = "recapchat-2026-11-11", "recapchat-2026-11-18"
HOSTILE_SLUG = "recapchat-2026-12-01"


def recap_archive(path: Path, files=(CHAT,), *, hosts=("chathost",)):
    """A fresh analysed archive at ``path`` built from our fixtures."""
    db = open_db(path)
    results = import_files(db, [str(f) for f in files])
    assert all(r.error is None for r in results), results
    analyse_archive(db, hashtags=["RecapChat"], tz=ZONE, hosts=list(hosts))
    return db
