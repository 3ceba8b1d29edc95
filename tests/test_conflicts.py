"""Conflicting sightings (issue 14): a later sighting never changes a post's
author or time — it is counted and reported instead (``imports.conflicts``,
the import summary) — and text changes only by an edit with a newer
``edited_at``, by the matched copy of a context copy, or by the whole of a
truncated text.  Tombstones stay empty; reply placeholders give way to real
parents and never the reverse."""

from __future__ import annotations

import json

from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import PostWriter, transaction
from chatarchive.cli import cli
from chatarchive.models import Author, Post

ANA = Author(id="101", platform="x", handle="ana", name="Ana")
BOB = Author(id="202", platform="x", handle="bob", name="Bob")
T0 = "2026-11-18T20:00:00.000Z"


def make(pid="1", *, author=ANA, created_at=T0, text="Q1: what works?", **kw) -> Post:
    return Post(id=pid, platform="x", source=kw.pop("source", "twarc2"), created_at=created_at, author=author,
                text=text, **kw)


def save(db, *posts, where=None):
    writer = PostWriter(db)
    try:
        with transaction(db):
            writer.add(posts, where=where)
            writer.flush()
    finally:
        writer.close()
    return writer


def row(db, pid="1"):
    cur = db.execute("SELECT * FROM posts WHERE id = ?", (pid,))
    return dict(zip([d[0] for d in cur.description], cur.fetchone()))


def test_another_author_is_not_applied_and_is_counted(db):
    save(db, make())
    w = save(db, make(author=BOB, text="something else entirely"), where="b.jsonl:3")
    assert (w.stats.added, w.stats.updated, w.stats.unchanged, w.stats.conflicts) == (0, 0, 0, 1)
    assert w.conflicts == ["b.jsonl:3: post 1 was already stored with another author (@bob; kept @ana); "
                           "this sighting was not applied"]
    r = row(db)
    assert (r["author_id"], r["author_handle"], r["text"]) == ("101", "ana", "Q1: what works?")


def test_another_time_is_not_applied_and_is_counted(db):
    save(db, make())
    w = save(db, make(created_at="2027-01-01T00:00:00.000Z", like_count=5))
    assert w.stats.conflicts == 1 and "another time (2027-01-01T00:00:00.000Z; kept 2026-11-18T20:00:00.000Z)" in (
        w.conflicts[0])
    assert (row(db)["created_at"], row(db)["like_count"]) == (T0, None)  # nothing of it


def test_a_time_only_fills_in_what_was_unknown(db):
    save(db, make(created_at=None))
    w = save(db, make())
    assert (w.stats.updated, w.stats.conflicts) == (1, 0) and row(db)["created_at"] == T0
    # the same second at another precision is the same time
    w = save(db, make(created_at="2026-11-18T20:00:00.456Z"))
    assert w.stats.conflicts == 0


def test_conflicts_in_one_batch_are_counted_too(db):
    w = save(db, make(), make(author=BOB))
    assert (w.stats.added, w.stats.conflicts) == (1, 1) and row(db)["author_id"] == "101"


def test_an_edit_with_a_newer_edited_at_updates_the_text(db):
    save(db, make(text="Q1: waht works?", edited_at=None))
    w = save(db, make(text="Q1: what works?", edited_at="2026-11-18T20:05:00.000Z"))
    assert w.stats.updated == 1 and row(db)["text"] == "Q1: what works?"
    # an older copy seen afterwards does not undo the edit
    save(db, make(text="Q1: waht works?", edited_at=None))
    assert (row(db)["text"], row(db)["edited_at"]) == ("Q1: what works?", "2026-11-18T20:05:00.000Z")
    save(db, make(text="Q1: first draft", edited_at="2026-11-18T20:01:00.000Z"))
    assert row(db)["text"] == "Q1: what works?"


def test_text_is_kept_without_an_edit_but_a_truncated_copy_is_completed(db):
    save(db, make(text="Q1: what works for you?"))
    save(db, make(text="Q1: what works for you in class?"))  # another copy, no edit: the first stays
    assert row(db)["text"] == "Q1: what works for you?"
    save(db, make("2", text="RT @ana: How do you spark curiosity in a classroom where everyone is… https://t.co/x"))
    save(db, make("2", text="RT @ana: How do you spark curiosity in a classroom where everyone is tired? #edchat"))
    assert row(db, "2")["text"].endswith("tired? #edchat")


def test_a_context_copy_is_completed_by_the_matched_one(db):
    save(db, make(text="short", matched=False))
    save(db, make(text="the full text", matched=True))
    assert (row(db)["text"], row(db)["matched"]) == ("the full text", 1)


def test_a_tombstone_is_never_filled_again(db):
    save(db, make(like_count=3))
    db.execute("UPDATE posts SET text = '', deleted_at = '2026-11-19T00:00:00.000Z' WHERE id = '1'")
    db.execute("DELETE FROM raw")
    w = save(db, make(like_count=9, raw={"id": "1"}))
    assert (w.stats.updated, w.stats.unchanged) == (0, 1)
    r = row(db)
    assert (r["text"], r["like_count"]) == ("", 3)
    assert db.execute("SELECT count(*) FROM raw").fetchone()[0] == 0


def test_a_placeholder_parent_gives_way_to_the_real_one_never_the_reverse(db):
    mast = {"source": "mastodon", "instance": "one.example", "reply_to_local_id": "11"}

    def masto(reply_to):
        return Post(id="uri:2", platform="mastodon", created_at=T0, author=Author(id="acct", platform="mastodon"),
                    text="a reply", reply_to_id=reply_to, **mast)

    save(db, masto("local:one.example/11"))
    save(db, masto("uri:1"))
    assert row(db, "uri:2")["reply_to_id"] == "uri:1"
    save(db, masto("local:one.example/11"))
    assert row(db, "uri:2")["reply_to_id"] == "uri:1"


def test_import_reports_and_records_conflicts(runner, tmp_path):
    page = {"data": [{"id": "1790000000000000031", "text": "Q1: hello", "author_id": "101",
                      "created_at": "2026-11-18T20:00:00.000Z"}],
            "includes": {"users": [{"id": "101", "username": "ana"}]}}
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(json.dumps(page) + "\n", encoding="utf-8")
    page["data"][0].update(author_id="202", created_at="2027-01-01T00:00:00.000Z", text="hijacked")
    page["includes"]["users"] = [{"id": "202", "username": "mallory"}]
    second.write_text(json.dumps(page) + "\n", encoding="utf-8")
    db_path = tmp_path / "chats.db"
    assert runner.invoke(cli, ["import", str(db_path), str(first), "--no-analyse"]).exit_code == 0
    result = runner.invoke(cli, ["import", str(db_path), str(second), "--no-analyse", "--json"])
    assert result.exit_code == 0, result.output
    [summary] = json.loads(result.stdout)["files"]
    assert (summary["added"], summary["updated"]) == (0, 0)
    assert summary["problems"] == [f"{second}:1: post 1790000000000000031 was already stored with another time "
                                   "(2027-01-01T00:00:00.000Z; kept 2026-11-18T20:00:00.000Z); "
                                   "this sighting was not applied"]
    db = open_db(db_path)
    assert db.execute("SELECT conflicts FROM imports ORDER BY id DESC").fetchone()[0] == 1
    assert db.execute("SELECT author_id, text FROM posts").fetchone() == ("101", "Q1: hello")
    [again] = import_files(db, [str(second)])
    assert again.conflicts == 1
