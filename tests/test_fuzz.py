"""The importer under fuzzing (issue 14): seeded mutations of our own
fixtures of every format, imported in process by ``bench/fuzz.py``'s
harness.  CI runs a bounded budget; ``python bench/fuzz.py`` runs 10,000+.

A case fails when anything but a one-line ChatArchiveError escapes the
importer, or when the archive afterwards breaks its contract (times in
the fixed-width format and range, counts integers in range, text ids).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chatarchive.archive.schema import open_db

BENCH = Path(__file__).parent.parent / "bench"
sys.path.insert(0, str(BENCH))
try:
    import fuzz
finally:
    sys.path.remove(str(BENCH))

CASES = 2500  # about 20 s on a busy 2-core machine


def test_fuzzed_imports_never_crash_and_keep_the_archive_contract():
    stats = fuzz.fuzz(CASES, seed=20261204)
    assert stats.cases == CASES
    assert stats.failures == 0, "\n\n".join(stats.first)
    # the cases were not all refused up front: the mutations reach the normalizers
    assert stats.imported > CASES // 2 and stats.refused > CASES // 20
    assert stats.unclear == 0, stats.unclear_examples


def test_every_fixture_of_the_corpus_imports_as_it_is(tmp_path):
    # The unmutated corpus is good input: every file imports, nothing skipped.
    from chatarchive.archive.importer import import_files

    db = open_db(tmp_path / "corpus.db", create=True)
    deliberate = {"x/archiver.csv": 2}  # its two Excel-mangled ids are refused row by row
    for rel, fmt, tz in fuzz.CORPUS:
        [r] = import_files(db, [str(fuzz.FIXTURES / rel)], format=fmt, tz=tz)
        assert not r.error and r.posts and r.skipped == deliberate.get(rel, 0), (rel, r)


@pytest.mark.parametrize("what, sql", fuzz.CONTRACT_SQL, ids=[w for w, _ in fuzz.CONTRACT_SQL])
def test_the_contract_checks_catch_what_they_describe(tmp_path, what, sql):
    # Each check of the harness finds a value stored behind the writer's back,
    # so a fuzz run that passes really did hold the archive to its contract.
    db = open_db(tmp_path / "poisoned.db", create=True)
    db.execute("INSERT INTO posts (id, platform, text, created_at) VALUES ('ok', 'x', '', '2026-11-18T20:00:00.000Z')")
    db.execute("INSERT INTO authors (id, platform) VALUES ('a', 'x')")
    db.execute("INSERT INTO raw (post_id, format, json) VALUES ('ok', 'twarc2', '{}')")
    poison = {
        "created_at outside the fixed-width format or range": "UPDATE posts SET created_at = '1-01-01T00:00:00Z'",
        "a count that is not an integer from 0 to 2^63-1": "UPDATE posts SET like_count = 1e20",
        "an id, author or text column that is not text": "UPDATE posts SET author_id = x'00'",
        "a platform that is not x, mastodon or bluesky": "UPDATE posts SET platform = 'myspace'",
        "an author row whose columns are not text": "UPDATE authors SET handle = x'00ff'",
        "a raw object that is not JSON": "UPDATE raw SET json = '{not json'",
        "an edit time outside the format": "UPDATE posts SET edited_at = '0000'",
    }[what]
    params = {"latest": "9999"} if ":latest" in sql else {}
    assert db.execute(sql, params).fetchall() == []
    db.execute(poison)
    assert db.execute(sql, params).fetchall() != []
