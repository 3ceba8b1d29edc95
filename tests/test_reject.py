"""Files that hold no posts are refused: one clear line saying what the file
looks like, exit code 1, no traceback, and the archive untouched."""

from __future__ import annotations

import gzip
import json

import pytest
from conftest import FIXTURES, SHARED_FIXTURES, needs_shared_fixtures

from chatarchive.archive.schema import open_db
from chatarchive.cli import cli

CHAT = FIXTURES / "twarc2" / "chat.jsonl"

# What each real file of ../shared/fixtures/reject/ must be called.
SHARED_REJECTS = {
    "counts.jsonl": "counts output",
    "empty.json": "the file is empty",
    "lists.jsonl": "lists output",
    "tweets_compliance.jsonl": "compliance output",
    "users.jsonl": "user profiles",
    "users_compliance.jsonl": "compliance output",
}


def refuse(runner, db_path, path):
    result = runner.invoke(cli, ["import", str(db_path), str(path)])
    assert result.exit_code == 1, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: {path}: ")
    return lines[0]


@needs_shared_fixtures()
def test_every_shared_reject_file_is_known():
    assert sorted(p.name for p in (SHARED_FIXTURES / "reject").iterdir()) == sorted(SHARED_REJECTS)


@needs_shared_fixtures()
@pytest.mark.parametrize("name", sorted(SHARED_REJECTS))
def test_shared_reject_file_is_refused(runner, db_path, name):
    line = refuse(runner, db_path, SHARED_FIXTURES / "reject" / name)
    assert SHARED_REJECTS[name] in line
    assert not db_path.exists()  # no empty archive left behind


@needs_shared_fixtures()
@pytest.mark.parametrize("name", sorted(SHARED_REJECTS))
def test_shared_reject_file_leaves_an_archive_untouched(runner, db_path, name):
    assert runner.invoke(cli, ["import", str(db_path), str(CHAT), "--no-analyse"]).exit_code == 0
    before = db_path.read_bytes()
    refuse(runner, db_path, SHARED_FIXTURES / "reject" / name)
    assert db_path.read_bytes() == before


OWN_REJECTS = {
    # name: (content, what the message must say)
    "blank.jsonl": (b"\n\n  \n", "the file is empty"),
    "counts.jsonl": (json.dumps({"data": [{"end": "2026-11-18T21:00:00.000Z", "start": "2026-11-18T20:00:00.000Z",
                                           "tweet_count": 812}], "meta": {"total_tweet_count": 812}}).encode(),
                     "counts output"),
    "users.jsonl": (json.dumps({"data": [{"id": "101", "username": "ana_chats", "name": "Ana"}]}).encode(),
                    "user profiles"),
    "no-results.json": (json.dumps({"meta": {"result_count": 0}, "data": []}).encode(), "API response with no posts"),
    "errors.json": (json.dumps({"errors": [{"title": "Unauthorized", "detail": "Unauthorized", "status": 401}]}).encode(),
                    "only errors (Unauthorized)"),
    "config.json": (json.dumps({"name": "my-app", "version": "1.0", "scripts": {}}).encode(),
                    "keys (name, scripts, version) that match no known post format"),
    "numbers.json": (b"[1, 2, 3]", "JSON that holds no posts"),
    "broken.json": (b'{"data": [{"id": "1", "text": "cut', "cannot be parsed"),
    "people.csv": (b"name,email,city\nAna,ana@example.org,Lagos\n", "CSV file whose columns (name, email, city"),
    "notes.txt": (b"Agenda for the chat\nQ1 intro\n", "not a recognised chat file"),
    "picture.png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "binary data"),
    "empty.jsonl.gz": (gzip.compress(b""), "the file is empty"),
}


@pytest.mark.parametrize("name", sorted(OWN_REJECTS))
def test_own_reject_files(runner, db_path, tmp_path, name):
    content, said = OWN_REJECTS[name]
    path = tmp_path / name
    path.write_bytes(content)
    line = refuse(runner, db_path, path)
    assert said in line


def test_hostile_keys_are_shown_safely(runner, db_path, tmp_path):
    path = tmp_path / "evil.json"
    path.write_text(json.dumps({"\x1b]0;owned\x07title": 1, "[bold]x[/bold]": 2}))
    line = refuse(runner, db_path, path)
    assert "\x1b" not in line and "\x07" not in line
    assert "[bold]x[/bold]" in line  # shown as text, not styled


def test_refusal_is_recorded_nowhere(runner, db_path, tmp_path):
    assert runner.invoke(cli, ["import", str(db_path), str(CHAT), "--no-analyse"]).exit_code == 0
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    refuse(runner, db_path, path)
    assert open_db(db_path, create=True).execute("SELECT count(*) FROM imports").fetchone()[0] == 1


def test_json_output_names_the_refusal(runner, db_path, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    result = runner.invoke(cli, ["import", str(db_path), str(path), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["files"][0]["error"].startswith(f"{path}: not a recognised chat file")
    assert data["files"][0]["added"] == 0
