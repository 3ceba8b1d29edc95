"""archive.deletion: a tombstone keeps the thread, and no byte of the content remains."""

from __future__ import annotations

import json

import pytest

from chatarchive.archive.deletion import delete_posts, purge, tombstoned
from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import save_posts
from chatarchive.models import Author, Media, Post

SECRET = "Zygomorphic quindecagon marmalade"
WORDS = (b"Zygomorphic", b"zygomorph", b"quindecagon", b"marmalad", b"only-this-post.example", b"alt of the victim")


def post(i: int, **kw) -> Post:
    base = {"id": f"p{i}", "platform": "x", "source": "twarc2", "created_at": f"2026-03-04T20:{i % 60:02d}:00.000Z",
                "author": Author(id=f"u{i % 7}", platform="x", handle=f"user{i % 7}"),
                "text": f"post number {i} about community #edchat", "hashtags": ["edchat"],
                "links": ["https://shared.example/page"], "raw": {"id": f"p{i}", "text": f"post number {i}"}}
    base.update(kw)
    return Post(**base)


def archive(path, journal="delete"):
    db = open_db(path, create=True)
    if journal == "wal":
        db.execute("PRAGMA journal_mode=WAL")
    posts = [post(i) for i in range(1500)]
    posts[700] = post(700, text=f"{SECRET} #edchat #secretcircle", hashtags=["edchat", "secretcircle"],
                      links=["https://only-this-post.example/x", "https://shared.example/page"],
                      media=[Media(url="https://cdn.example/victim.jpg", alt="alt of the victim")],
                      raw={"id": "p700", "text": SECRET})
    posts[701] = post(701, reply_to_id="p700", text="a reply to the victim #edchat")
    # written in many small transactions, then sighted again (updates): the
    # ways old copies end up in freed space
    for k in range(0, len(posts), 50):
        save_posts(db, posts[k : k + 50])
    for p in posts[650:750]:
        p.like_count = 3
    save_posts(db, posts[650:750])
    db.execute("INSERT INTO capture_pages (capture_id, platform, kind, url, retrieved_at, posts, json) "
               "VALUES (1, 'x', 'search', 'u', 't', 2, ?)",
               [json.dumps({"data": [{"id": "p700", "text": SECRET}, {"id": "p1", "text": "keep me",
                            "referenced_tweets": [{"type": "replied_to", "id": "p700"}]}]})])
    db.execute("INSERT INTO questions (session_id, number, post_id, text) VALUES (1, 1, 'p700', ?)", [SECRET])
    return db


def grep(tmp_path) -> list[tuple[str, bytes]]:
    hits = []
    for f in tmp_path.iterdir():
        data = f.read_bytes()
        hits += [(f.name, w) for w in WORDS if w in data]
    return hits


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_no_byte_of_a_deleted_post_remains(tmp_path, journal):
    db = archive(tmp_path / "a.db", journal)
    assert grep(tmp_path)  # the test can fail: the words are there before
    assert delete_posts(db, ["p700", "no-such-post"], when="2026-03-05T00:00:00.000Z") == 1
    row = db.execute("SELECT text, html, spoiler_text, deleted_at, author_id, created_at FROM posts WHERE id = 'p700'").fetchone()
    assert row == ("", None, None, "2026-03-05T00:00:00.000Z", "u0", "2026-03-04T20:40:00.000Z")
    assert db.execute("SELECT reply_to_id FROM posts WHERE id = 'p701'").fetchone() == ("p700",)  # the thread stays
    assert not db.execute("SELECT 1 FROM raw WHERE post_id = 'p700'").fetchone()
    assert db.execute("SELECT text FROM questions WHERE post_id = 'p700'").fetchone() == (None,)
    # a shared link stays (other posts use it), one only this post had goes; media too
    assert db.execute("SELECT count(*) FROM post_links WHERE post_id = 'p700'").fetchone() == (0,)
    assert db.execute("SELECT 1 FROM links WHERE url = 'https://shared.example/page'").fetchone()
    assert not db.execute("SELECT 1 FROM links WHERE url LIKE '%only-this-post%'").fetchone()
    assert not db.execute("SELECT 1 FROM media WHERE url LIKE '%victim%'").fetchone()
    assert not db.execute("SELECT 1 FROM hashtags WHERE tag = 'secretcircle'").fetchone()
    assert db.execute("SELECT 1 FROM hashtags WHERE tag = 'edchat'").fetchone()
    page = json.loads(db.execute("SELECT json FROM capture_pages").fetchone()[0])
    assert page["data"][0] == {"id": "p700", "deleted": True} and page["data"][1]["text"] == "keep me"
    assert page["data"][1]["referenced_tweets"] == [{"type": "replied_to", "id": "p700"}]  # a reference is not a copy
    assert not db.execute("SELECT 1 FROM posts_fts WHERE posts_fts MATCH 'marmalade'").fetchone()
    assert tombstoned(db, ["p700", "p701", "nope"]) == {"p700"}
    assert delete_posts(db, ["p700"]) == 0  # idempotent
    db.conn.close()
    assert grep(tmp_path) == []


def test_without_the_purge_the_index_still_holds_the_words(tmp_path):
    db = archive(tmp_path / "a.db")
    delete_posts(db, ["p700"], purge=False)  # what a live capture does between purges
    db.conn.close()
    assert grep(tmp_path)  # FTS5 keeps deleted entries in older segments…
    db = open_db(tmp_path / "a.db")
    purge(db)  # …until the purge merges them away
    db.conn.close()
    assert grep(tmp_path) == []


def test_inside_a_transaction_the_deletion_is_part_of_it(tmp_path):
    db = archive(tmp_path / "a.db")
    db.execute("BEGIN")
    delete_posts(db, ["p700"])
    db.execute("ROLLBACK")
    assert db.execute("SELECT deleted_at, text FROM posts WHERE id = 'p700'").fetchone() == (None, f"{SECRET} #edchat #secretcircle")
