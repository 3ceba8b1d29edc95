"""Only import, capture and demo create an archive; every other command on a
missing path, an empty file or an SQLite file that is not an archive exits 1
with one line and leaves the disk exactly as it was (DESIGN's CLI contract)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from chatarchive import Archive
from chatarchive.archive.schema import archive_state, open_db
from chatarchive.cli import cli
from chatarchive.errors import ChatArchiveError, NotFoundError

# Every command that must not create an archive, with the arguments after DB.
COMMANDS = {
    "search": ["search", "{db}", "welcome"],
    "show": ["show", "{db}", "chat-2026-11-18"],
    "sessions list": ["sessions", "list", "{db}"],
    "sessions detect": ["sessions", "detect", "{db}", "--hashtag", "chat"],
    "sessions add": ["sessions", "add", "{db}", "--hashtag", "chat", "--start", "2026-11-18T20:00", "--duration", "1h"],
    "sessions schedule": ["sessions", "schedule", "{db}", "--hashtag", "chat", "--every", "wed 20:00",
                          "--tz", "America/New_York", "--duration", "1h"],
    "sessions remove": ["sessions", "remove", "{db}", "chat-2026-11-18"],
    "export": ["export", "{db}", "chat-2026-11-18", "--format", "md"],
    "recap": ["recap", "{db}", "--out", "{out}"],
    "serve": ["serve", "{db}", "--port", "0"],
}


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def invoke(runner, name: str, db: Path, out: Path):
    args = [a.format(db=db, out=out) for a in COMMANDS[name]]
    return runner.invoke(cli, args)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_missing_archive_is_an_error_and_nothing_is_created(runner, tmp_path, name):
    db, out = tmp_path / "typo.db", tmp_path / "site"
    result = invoke(runner, name, db, out)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: no such archive: {db} (create one with: chatarchive import {db} FILE...)"]
    assert list(tmp_path.iterdir()) == []  # no DB, no journal, no --out folder


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_foreign_sqlite_file_is_refused_byte_for_byte(runner, tmp_path, name):
    db, out = tmp_path / "notes.db", tmp_path / "site"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = snapshot(tmp_path)
    result = invoke(runner, name, db, out)
    assert result.exit_code == 1, result.output
    assert "not a chatarchive archive" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before
    assert archive_state(db) == "other"


def test_import_refuses_a_foreign_sqlite_file_too(runner, tmp_path):
    db = tmp_path / "notes.db"
    sqlite3.connect(db).execute("CREATE TABLE notes (x)").connection.commit()
    before = snapshot(tmp_path)
    sample = Path(__file__).parent / "fixtures" / "twarc2" / "api-page.json"
    result = runner.invoke(cli, ["import", str(db), str(sample)])
    assert result.exit_code == 1 and "not a chatarchive archive" in result.output
    assert snapshot(tmp_path) == before


def test_an_empty_file_becomes_an_archive_only_when_creating(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(ChatArchiveError, match="an empty file"):
        Archive(empty)
    assert empty.read_bytes() == b""
    with Archive(empty, create=True) as archive:
        assert archive.sessions() == []
    assert archive_state(empty) == "archive"


def test_open_db_states(tmp_path):
    with pytest.raises(NotFoundError, match="no such archive"):
        open_db(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    db = open_db(tmp_path / "new.db", create=True)
    db.conn.close()
    assert archive_state(tmp_path / "new.db") == "archive"
    open_db(tmp_path / "new.db").conn.close()  # an existing archive needs no create
    (tmp_path / "text.db").write_text("not a database at all " * 100)
    assert archive_state(tmp_path / "text.db") == "not-sqlite"
    with pytest.raises(ChatArchiveError, match="not an SQLite database"):
        open_db(tmp_path / "text.db", create=True)
