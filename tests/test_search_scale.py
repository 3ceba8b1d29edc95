"""Filtered best-match search (#15) on an archive with thousands of
matches: each way ``search`` takes (rank a window then filter, rank only the
posts a selective filter leaves, the filters inside the statement) gives
the posts the one plain statement gives, in its order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.archive.search import BM25_WEIGHTS, search

GEN = Path(__file__).resolve().parent.parent / "bench" / "gen_twarc2.py"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    src = tmp / "posts.jsonl"
    subprocess.run([sys.executable, str(GEN), "4000", "-o", str(src)], check=True)
    db = open_db(tmp / "chats.db", create=True)
    import_files(db, [str(src)])
    conn = db.conn
    # a session of 150 posts (a selective filter), written as the analysis would
    conn.execute("INSERT INTO sessions (id, slug, hashtag) VALUES (1, 'one', 'edchat')")
    conn.execute("INSERT INTO session_posts (session_id, post_id, via) "
                 "SELECT 1, id, 'tag' FROM posts ORDER BY created_at LIMIT 150 OFFSET 1000")
    yield db
    conn.close()


def reference(db, query: str, where: str = "", params: dict | None = None, limit: int = 20) -> list[str]:
    sql = (f"SELECT p.id, bm25(posts_fts, {BM25_WEIGHTS}) AS r FROM posts_fts JOIN posts p ON p.rowid = posts_fts.rowid "
           f"WHERE posts_fts MATCH :q {where} ORDER BY r, p.rowid LIMIT :limit")
    return [r[0] for r in db.conn.execute(sql, {"q": query, "limit": limit, **(params or {})})]


def times(db) -> tuple[str, str]:
    """A time a few weeks into the archive's span, and its middle."""
    lo, hi = db.conn.execute("SELECT min(created_at), max(created_at) FROM posts").fetchone()
    mid = db.conn.execute("SELECT created_at FROM posts ORDER BY created_at LIMIT 1 OFFSET 2000").fetchone()[0]
    late = db.conn.execute("SELECT created_at FROM posts ORDER BY created_at DESC LIMIT 1 OFFSET 60").fetchone()[0]
    assert lo < mid < late < hi
    return late, mid


TAG = "EXISTS (SELECT 1 FROM post_hashtags ph JOIN hashtags h ON h.id = ph.hashtag_id " \
      "WHERE ph.post_id = p.id AND h.tag = :tag)"
SESSION = "EXISTS (SELECT 1 FROM session_posts sp WHERE sp.session_id = 1 AND sp.post_id = p.id)"


@pytest.mark.parametrize("word", ["the", "to", "community"])
def test_filtered_best_matches_the_plain_statement(db, word):
    late, mid = times(db)
    matches = db.conn.execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH ?", (word,)).fetchone()[0]
    assert word == "community" or matches > 500  # past the window: not the few-matches path
    cases = [
        ({"hashtag": "edchat"}, f"AND {TAG}", {"tag": "edchat"}),  # a tenth of the posts: window then filter
        ({"since": mid}, "AND p.created_at >= :t", {"t": mid}),  # half
        ({"since": late}, "AND p.created_at >= :t", {"t": late}),  # the last 60 posts: rank only those
        ({"until": mid}, "AND p.created_at < :t", {"t": mid}),
        ({"session": "one"}, f"AND {SESSION}", {}),  # 150 posts
        ({"session": "one", "hashtag": "edchat"}, f"AND {SESSION} AND {TAG}", {"tag": "edchat"}),
        ({"hashtag": "nosuchtag"}, "AND 0", {}),
    ]
    for opts, where, params in cases:
        got = [h.post.id for h in search(db, word, **opts)]
        want = reference(db, word, where, params)
        assert got == want, (word, opts)


def test_a_larger_limit_is_filtered_alike(db):
    got = [h.post.id for h in search(db, "the", hashtag="edchat", limit=300)]
    assert got == reference(db, "the", f"AND {TAG}", {"tag": "edchat"}, limit=300)
    assert len(got) == 300 or len(got) == db.conn.execute(
        "SELECT count(*) FROM posts_fts JOIN posts p ON p.rowid = posts_fts.rowid "
        f"WHERE posts_fts MATCH 'the' AND {TAG}", {"tag": "edchat"}).fetchone()[0]
