"""Import at scale (#15): the batch full-text indexing keeps the index and
the trigger as they were, and a re-import skips pages already imported
byte for byte while reporting the counts of a full merge."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.archive.search import search
from chatarchive.errors import ParseError

HERE = Path(__file__).resolve().parent
GEN = HERE.parent / "bench" / "gen_twarc2.py"
SKIP = ("imports", "_sqlite_migrations", "imported_records")  # times and bookkeeping


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """Three synthetic twarc2 search pages of 100 posts (~350 KB lines)."""
    path = tmp_path_factory.mktemp("gen") / "pages.jsonl"
    subprocess.run([sys.executable, str(GEN), "300", "-o", str(path)], check=True)
    return path


def rows(db_path: Path, skip: tuple[str, ...] = ("imports", "_sqlite_migrations")) -> dict[str, list[str]]:
    """Every row of every ordinary table, and the full-text index's words."""
    conn = sqlite3.connect(db_path)
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'posts_fts%'")]
    out = {t: sorted(map(repr, conn.execute(f"SELECT * FROM [{t}]"))) for t in names if t not in skip}
    conn.execute("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, posts_fts, instance)")
    out["fts words"] = sorted(map(repr, conn.execute("SELECT * FROM temp.words")))
    conn.close()
    return out


def fresh_import(db_path: Path, *paths: Path, **kw):
    db = open_db(db_path, create=True)
    try:
        return import_files(db, [str(p) for p in paths], **kw)
    finally:
        db.conn.close()


def test_batch_indexing_matches_the_trigger(pages, tmp_path):
    """The same file imported with the trigger indexing row by row (a
    writer that may not drop it: the trigger SQL differs) and with the batch
    statement gives the same rows and the same full-text index."""
    by_batch, by_trigger = tmp_path / "batch.db", tmp_path / "trigger.db"
    fresh_import(by_batch, pages)
    db = open_db(by_trigger, create=True)
    sql = db.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'posts_ai'").fetchone()[0]
    db.conn.executescript(f"DROP TRIGGER posts_ai; {sql.replace(' BEGIN', '  BEGIN', 1)};")
    import_files(db, [str(pages)])
    db.conn.close()
    assert rows(by_batch, SKIP) == rows(by_trigger, SKIP)
    conn = sqlite3.connect(by_batch)
    assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'posts_ai'").fetchone()[0] == sql
    conn.execute("INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)")
    conn.close()
    db = open_db(by_batch)
    assert len(search(db, "the")) == 20  # the generator's commonest word


def test_a_failed_import_keeps_the_trigger(pages, tmp_path):
    db_path = tmp_path / "chats.db"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(pages.read_bytes() + b"{not json\n")
    with pytest.raises(ParseError):
        fresh_import(db_path, bad, strict=True)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 0
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'posts_ai'").fetchone()
    conn.close()
    # and the next import indexes its posts
    fresh_import(db_path, pages)
    db = open_db(db_path)
    assert len(search(db, "the")) == 20


def test_reimport_skips_known_pages_with_the_same_counts(pages, tmp_path):
    db_path = tmp_path / "chats.db"
    [first] = fresh_import(db_path, pages)
    before = rows(db_path)
    [again] = fresh_import(db_path, pages)
    assert rows(db_path) == before
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM imported_records").fetchone()[0] == 3  # one per page
    conn.execute("DELETE FROM imported_records")  # forget them: the full merge path
    conn.commit()
    conn.close()
    [full] = fresh_import(db_path, pages)
    assert (again.added, again.updated, again.conflicts) == (0, 0, 0)
    assert (full.added, full.updated, full.conflicts) == (0, 0, 0)
    assert again.unchanged == full.unchanged == first.added


def test_a_changed_page_is_read_again(pages, tmp_path):
    db_path = tmp_path / "chats.db"
    fresh_import(db_path, pages)
    lines = pages.read_bytes().splitlines()
    page = json.loads(lines[1])
    tweet = page["data"][0]
    tweet["public_metrics"]["like_count"] = 12345
    lines[1] = json.dumps(page).encode()
    changed = tmp_path / "changed.jsonl"
    changed.write_bytes(b"\n".join(lines) + b"\n")
    [result] = fresh_import(db_path, changed)
    assert result.added == 0 and result.updated >= 1
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT like_count FROM posts WHERE id = ?", (tweet["id"],)).fetchone()[0] == 12345
    conn.close()
