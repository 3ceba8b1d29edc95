"""The host's editorial control and the participants' consent (#11): hide,
pin, note, forget, consent, settings, and the one published filter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chatarchive import Archive
from chatarchive.cli import cli

SAMPLE = Path(__file__).resolve().parent.parent / "chatarchive" / "sample"
X_FILE = SAMPLE / "samplechat-x.jsonl"
SESSION = "samplechat-2026-11-11"


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("sample")
    result = CliRunner().invoke(cli, ["demo", str(folder)])
    assert result.exit_code == 0, result.output
    return folder / "demo.db"


@pytest.fixture
def db_copy(sample_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "chats.db"
    shutil.copy(sample_db, path)
    return path


def _post(db: Path, handle: str, *, with_reply: bool) -> tuple[str, str]:
    """(id, text) of a post by ``handle`` in SESSION that has (or has not) a reply in it."""
    with Archive(db) as a:
        row = a.conn.execute(
            f"""SELECT p.id, p.text FROM posts p JOIN session_posts sp ON sp.post_id = p.id
                JOIN sessions s ON s.id = sp.session_id WHERE s.slug = ? AND p.author_handle = ?
                AND p.is_repost = 0 AND length(p.text) > 30 AND {'' if with_reply else 'NOT'} EXISTS
                (SELECT 1 FROM posts r WHERE r.reply_to_id = p.id) ORDER BY p.id LIMIT 1""",
            [SESSION, handle]).fetchone()
    assert row, handle
    return row[0], row[1]


def _bytes(path: Path) -> bytes:
    return b"".join(Path(str(path) + s).read_bytes() for s in ("", "-wal", "-journal")
                    if Path(str(path) + s).exists())


# --------------------------------------------------------------------------
# Errors: one line, exit 1, the archive byte for byte as it was


@pytest.mark.parametrize("args", [
    ["hide", "{db}", "@nobody_here"],
    ["hide", "{db}", "@dana_builds", "https://x.com/nobody/status/1"],  # one bad target: nothing hidden
    ["unhide", "{db}", "999999"],
    ["pin", "{db}", "@dana_builds"],  # an account, not a post
    ["unpin", "{db}", "nope"],
    ["note", "{db}", "no-such-session", "hello"],
    ["note", "{db}", SESSION, "--question", "99", "hello"],
    ["forget", "{db}", "@nobody_here", "--yes"],
    ["consent", "{db}", "did:plc:nobody", "--allow"],
    ["settings", "{db}", "--owner", "x", "--contact", "y", "--purpose", "z", "--removal", ""],
])
def test_errors_leave_the_archive_unchanged(runner, db_copy, args):
    before = db_copy.read_bytes()
    result = runner.invoke(cli, [a.replace("{db}", str(db_copy)) for a in args])
    if args[0] == "settings":  # a valid call, here to prove the others' check can fail
        assert result.exit_code == 0
        assert db_copy.read_bytes() != before
        return
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert db_copy.read_bytes() == before


def test_the_error_names_the_target(runner, db_copy):
    result = runner.invoke(cli, ["hide", str(db_copy), "@dana_builds", "@no_such_person"])
    assert result.exit_code == 1 and "@no_such_person" in result.output


# --------------------------------------------------------------------------
# Hide: gone from exports; replies keep the place


def test_hide_a_post_with_replies_keeps_a_placeholder(runner, db_copy):
    pid, text = _post(db_copy, "priya_cm", with_reply=True)
    assert text in runner.invoke(cli, ["export", str(db_copy), SESSION]).output
    result = runner.invoke(cli, ["hide", str(db_copy), pid, "--reason", "spam"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(cli, ["hide", str(db_copy), pid])  # idempotent; keeps the reason
    assert again.exit_code == 0
    for fmt in ("md", "json", "jsonl", "csv"):
        out = runner.invoke(cli, ["export", str(db_copy), SESSION, "-f", fmt]).output
        assert text not in out, fmt
    md = runner.invoke(cli, ["export", str(db_copy), SESSION]).output
    assert "hidden by the host" in md
    listed = json.loads(runner.invoke(cli, ["hidden", str(db_copy), "--json"]).output)
    assert [(h["id"], h["reason"]) for h in listed] == [(pid, "spam")]
    # the archive keeps it, and search (the host's own tool) finds it
    with Archive(db_copy) as a:
        assert a.conn.execute("SELECT text FROM posts WHERE id = ?", [pid]).fetchone()[0] == text
    runner.invoke(cli, ["unhide", str(db_copy), pid])
    assert text in runner.invoke(cli, ["export", str(db_copy), SESSION]).output


def test_hide_an_account_removes_its_posts_and_counts(runner, db_copy):
    before = json.loads(runner.invoke(cli, ["export", str(db_copy), SESSION, "-f", "json"]).output)
    theirs = [p for p in before["posts"] if p["author_handle"] == "dana_builds"]
    assert theirs
    assert runner.invoke(cli, ["hide", str(db_copy), "@dana_builds"]).exit_code == 0
    after = json.loads(runner.invoke(cli, ["export", str(db_copy), SESSION, "-f", "json"]).output)
    assert not [p for p in after["posts"] if p["author_handle"] == "dana_builds"]
    assert after["stats"]["posts"] <= before["stats"]["posts"] - len(theirs)
    assert after["stats"]["participants"] == before["stats"]["participants"] - 1
    assert "dana_builds" not in {t["handle"] for t in after["stats"]["top_participants"]}


def test_unlisted_accounts_are_left_out_unless_allowed(runner, db_copy):
    with Archive(db_copy) as a:
        a.conn.execute("UPDATE authors SET unlisted = 1 WHERE handle = 'priya_cm'")
    out = runner.invoke(cli, ["export", str(db_copy), SESSION, "-f", "jsonl"]).output
    assert '"priya_cm"' not in out
    assert runner.invoke(cli, ["consent", str(db_copy), "@priya_cm", "--allow"]).exit_code == 0
    assert '"priya_cm"' in runner.invoke(cli, ["export", str(db_copy), SESSION, "-f", "jsonl"]).output
    assert runner.invoke(cli, ["consent", str(db_copy), "@priya_cm", "--revoke"]).exit_code == 0
    assert '"priya_cm"' not in runner.invoke(cli, ["export", str(db_copy), SESSION, "-f", "jsonl"]).output


def test_platform_signals_are_read():
    from chatarchive.sources.bluesky import author_of
    from chatarchive.sources.mastodon import account_to_author
    from chatarchive.sources.twarc2 import user_to_author

    assert account_to_author({"uri": "https://m.example/u/a", "acct": "a", "noindex": True}, "m.example").unlisted
    assert account_to_author({"uri": "https://m.example/u/a", "acct": "a", "indexable": False}, "m.example").unlisted
    assert account_to_author({"uri": "https://m.example/u/a", "acct": "a"}, "m.example").unlisted is None
    labelled = {"did": "did:plc:a", "handle": "a.example", "labels": [{"val": "!no-unauthenticated"}]}
    assert author_of(labelled).unlisted is True
    assert author_of({**labelled, "labels": []}).unlisted is False
    assert user_to_author({"id": "1", "username": "a", "protected": True}, "1").unlisted is True


# --------------------------------------------------------------------------
# Pins and notes


def test_pin_comes_first_and_note_is_sanitized(runner, db_copy):
    with Archive(db_copy) as a:
        qid, last = a.conn.execute(
            """SELECT q.id, (SELECT p.id FROM posts p WHERE p.answer_to_id = q.id
                             ORDER BY coalesce(p.like_count, 0) LIMIT 1)
               FROM questions q JOIN sessions s ON s.id = q.session_id WHERE s.slug = ? AND q.number = 1""",
            [SESSION]).fetchone()
    assert runner.invoke(cli, ["pin", str(db_copy), last]).exit_code == 0
    assert runner.invoke(cli, ["note", str(db_copy), SESSION, "**Thanks** <script>alert('note')</script>"]).exit_code == 0
    from chatarchive.present.views import load_session

    with Archive(db_copy) as a:
        view = load_session(a.db, SESSION)
    q1 = next(q for q in view.questions if q.id == qid)
    assert q1.answers[0].post.id == last
    assert [p.id for p in view.highlights] == [last]
    assert "Thanks" in view.notes[None] and "<script" not in view.notes[None]
    md = runner.invoke(cli, ["export", str(db_copy), SESSION]).output
    assert "Host's note" in md and "<script>alert('note')" not in md
    assert runner.invoke(cli, ["note", str(db_copy), SESSION, ""]).exit_code == 0
    assert "Host's note" not in runner.invoke(cli, ["export", str(db_copy), SESSION]).output


def test_settings(runner, db_copy):
    assert json.loads(runner.invoke(cli, ["settings", str(db_copy), "--json"]).output) == {}
    runner.invoke(cli, ["settings", str(db_copy), "--owner", "CMGR team", "--contact", "chat@example.org"])
    assert json.loads(runner.invoke(cli, ["settings", str(db_copy), "--json"]).output) == {
        "owner": "CMGR team", "contact": "chat@example.org"}


# --------------------------------------------------------------------------
# Forget: no byte left, also after re-importing


def test_forget_leaves_no_byte_of_their_text(runner, db_copy):
    _, text = _post(db_copy, "dana_builds", with_reply=False)
    needle = text.split("#")[0].strip()[:40].encode()
    assert needle in _bytes(db_copy)
    result = runner.invoke(cli, ["forget", str(db_copy), "@dana_builds", "--yes"])
    assert result.exit_code == 0, result.output
    assert needle not in _bytes(db_copy)
    assert b"Dana Kowalski" not in _bytes(db_copy)
    with Archive(db_copy) as a:
        a.import_files([X_FILE])  # the same file again: redacted on arrival
        n = a.conn.execute("SELECT count(*) FROM posts WHERE author_handle = 'dana_builds' AND deleted_at IS NULL"
                           ).fetchone()[0]
    assert n == 0
    assert needle not in _bytes(db_copy)
    md = runner.invoke(cli, ["export", str(db_copy), SESSION]).output
    assert "removed at the author's request" in md and "Dana Kowalski" not in md
    assert runner.invoke(cli, ["forget", str(db_copy), "@dana_builds", "--yes"]).exit_code == 0  # idempotent


def test_a_forgotten_person_is_redacted_on_first_arrival(tmp_path):
    path = tmp_path / "new.db"
    with Archive(path, create=True) as a:
        uid = "1443780499185623773"  # dana_builds in the sample
        a.conn.execute("INSERT INTO forgotten_accounts (author_id) VALUES (?)", [uid])
        a.import_files([X_FILE])
        assert a.conn.execute("SELECT count(*) FROM posts WHERE author_id = ? AND deleted_at IS NULL",
                              [uid]).fetchone()[0] == 0
        assert a.conn.execute("SELECT count(*) FROM posts WHERE author_id = ?", [uid]).fetchone()[0] > 0
    assert b"pinned 'who to ask'" not in _bytes(path)
