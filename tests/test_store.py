"""The archive itself: schema, FTS triggers, and PostWriter's merge rules
(the one writer every importer and capture goes through)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import PostWriter, merge_rows, post_row, save_posts, transaction
from chatarchive.models import Author, Media, Post

ANA = Author(id="101", platform="x", handle="ana", name="Ana")


def make(pid="1", *, matched=True, text="hello community", author=ANA, **kw) -> Post:
    kw.setdefault("created_at", "2026-11-18T20:00:00.000Z")
    return Post(id=pid, platform="x", source=kw.pop("source", "twarc2"), author=author, text=text,
                matched=matched, **kw)


def row(db, pid="1") -> dict:
    cur = db.execute("SELECT * FROM posts WHERE id = ?", (pid,))
    values = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], values)) if values else None


def fts_ids(db, query) -> set[str]:
    return {r[0] for r in db.execute(
        "SELECT posts.id FROM posts_fts JOIN posts ON posts.rowid = posts_fts.rowid WHERE posts_fts MATCH ?",
        (query,))}


def save(db, *posts, background=False, batch_size=2000):
    writer = PostWriter(db, batch_size=batch_size, background=background)
    try:
        with transaction(db):
            writer.add(posts)
            writer.flush()
    finally:
        writer.close()
    return writer.stats


# --------------------------------------------------------------------------
# schema


def test_schema_tables_and_fts(db):
    tables = set(db.table_names())
    assert {"posts", "authors", "hashtags", "post_hashtags", "mentions", "links", "post_links", "media",
            "post_media", "sessions", "session_posts", "conversations", "questions", "raw", "imports",
            "captures", "posts_fts"} <= tables
    assert db["posts"].pks == ["id"] and db["authors"].pks == ["id"]
    assert db["posts"].detect_fts() == "posts_fts"
    fts_sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'posts_fts'").fetchone()[0]
    assert "porter" in fts_sql and "unicode61" in fts_sql
    triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"posts_ai", "posts_ad", "posts_au"} <= triggers


def test_new_archives_use_16k_pages_and_raw_is_a_rowid_table(db):
    assert db.execute("PRAGMA page_size").fetchone()[0] == 16384
    raw_sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'raw'").fetchone()[0]
    assert "WITHOUT ROWID" not in raw_sql.upper()
    assert db["raw"].pks == ["post_id", "format"]


def test_open_db_is_idempotent(db_path):
    open_db(db_path, create=True)
    db = open_db(db_path, create=True)
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == 0


def test_fts_follows_insert_update_delete(db):
    save(db, make("1", text="weekly metrics review"), make("2", text="nothing here"))
    assert fts_ids(db, "metrics") == {"1"}
    db.execute("UPDATE posts SET text = 'onboarding checklist' WHERE id = '1'")
    assert fts_ids(db, "metrics") == set()
    assert fts_ids(db, "onboarding") == {"1"}
    db.execute("UPDATE posts SET like_count = 5, conversation_id = '1' WHERE id = '1'")
    assert fts_ids(db, "onboarding") == {"1"}  # a non-indexed change keeps the entry
    db.execute("DELETE FROM posts WHERE id = '1'")
    assert fts_ids(db, "onboarding") == set()
    assert db.execute("INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')") is not None


def test_fts_indexes_author_handle_and_name(db):
    save(db, make("1", text="hi", author=Author(id="9", platform="x", handle="cmgr_queen", name="Zoë Example")))
    assert fts_ids(db, "cmgr_queen") == {"1"}
    assert fts_ids(db, "zoe") == {"1"}  # diacritics removed
    assert fts_ids(db, "author_name:example") == {"1"}


def test_writer_update_of_text_reindexes(db):
    save(db, make("1", text="old words", matched=False))
    save(db, make("1", text="fresh words", matched=True))
    assert fts_ids(db, "fresh") == {"1"} and fts_ids(db, "old") == set()
    db.execute("INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')")


# --------------------------------------------------------------------------
# merge rules


def test_context_then_matched_upgrades(db):
    save(db, make("1", matched=False, text="short", like_count=1, lang=None))
    stats = save(db, make("1", matched=True, text="the full text", like_count=4, lang="en"))
    assert (stats.added, stats.updated, stats.unchanged) == (0, 1, 0)
    r = row(db)
    assert (r["matched"], r["text"], r["like_count"], r["lang"]) == (1, "the full text", 4, "en")


def test_matched_then_context_never_downgrades(db):
    save(db, make("1", matched=True, text="the full text", lang="en", url="https://x.com/ana/status/1"))
    save(db, make("1", matched=False, text="a different copy", lang=None, url=None, like_count=9))
    r = row(db)
    assert r["matched"] == 1
    assert r["text"] == "the full text"  # the matched sighting wins
    assert r["lang"] == "en" and r["url"] == "https://x.com/ana/status/1"  # never replaced by NULL
    assert r["like_count"] == 9  # counts: the latest known value


def test_counts_null_means_unknown_zero_is_a_value(db):
    save(db, make("1", like_count=7, reply_count=3, repost_count=None))
    assert (row(db)["like_count"], row(db)["repost_count"]) == (7, None)
    save(db, make("1", like_count=None, reply_count=0, repost_count=2))
    r = row(db)
    assert r["like_count"] == 7  # NULL does not erase a known count
    assert r["reply_count"] == 0  # 0 does replace it
    assert r["repost_count"] == 2


def test_is_repost_only_goes_up(db):
    save(db, make("1", is_repost=True))
    save(db, make("1", is_repost=False))
    assert row(db)["is_repost"] == 1


def test_entities_are_a_union_of_sightings(db):
    save(db, make("1", hashtags=["TestChat"], mentions=["ben"], links=["https://a.example/"],
                  media=[Media(url="https://m.example/1.jpg", type="photo")]))
    save(db, make("1", matched=False, hashtags=["testchat", "CMGR"], mentions=["cy"], links=["https://b.example/"],
                  media=[Media(url="https://m.example/1.jpg", alt="a chart"), Media(url="https://m.example/2.jpg")]))
    tags = {r[0] for r in db.execute(
        "SELECT tag FROM hashtags JOIN post_hashtags ON hashtags.id = hashtag_id WHERE post_id = '1'")}
    assert tags == {"TestChat", "CMGR"}  # hashtags match case-insensitively, first spelling kept
    assert db.execute("SELECT count(*) FROM hashtags").fetchone()[0] == 2
    assert {r[0] for r in db.execute("SELECT handle FROM mentions")} == {"ben", "cy"}
    assert {r[0] for r in db.execute(
        "SELECT url FROM links JOIN post_links ON links.id = link_id")} == {"https://a.example/", "https://b.example/"}
    media = sorted(db.execute("SELECT url, type, alt FROM media JOIN post_media ON media.id = media_id"))
    assert media == [("https://m.example/1.jpg", "photo", "a chart"), ("https://m.example/2.jpg", None, None)]


def test_same_id_twice_in_one_batch(db):
    context = make("1", matched=False, text="cut…", like_count=1, hashtags=["a"], raw={"copy": "context"})
    real = make("1", matched=True, text="the whole text", like_count=None, hashtags=["b"], raw={"copy": "real"})
    stats = save(db, context, real)
    assert (stats.added, stats.updated, stats.unchanged) == (1, 0, 0)
    r = row(db)
    assert (r["matched"], r["text"], r["like_count"]) == (1, "the whole text", 1)
    assert db.execute("SELECT count(*) FROM post_hashtags").fetchone()[0] == 2
    assert db.execute("SELECT json FROM raw").fetchone()[0] == '{"copy":"real"}'
    # and the other way round: the context copy comes second
    stats = save(db, make("2", matched=True, text="whole", raw={"c": 1}), make("2", matched=False, text="cut",
                                                                                raw={"c": 2}))
    r = row(db, "2")
    assert (r["matched"], r["text"]) == (1, "whole")
    assert db.execute("SELECT json FROM raw WHERE post_id = '2'").fetchone()[0] == '{"c":1}'


def test_resighting_counts_unchanged_and_keeps_raw(db):
    save(db, make("1", raw={"v": 1}), make("2"))
    stats = save(db, make("1", raw={"v": 1}), make("2"))
    assert (stats.added, stats.updated, stats.unchanged) == (0, 0, 2)
    save(db, make("1", matched=False, like_count=3, raw={"v": "context"}))
    assert db.execute("SELECT json FROM raw WHERE post_id = '1'").fetchone()[0] == '{"v":1}'


def test_raw_of_another_format_is_added(db):
    save(db, make("1", raw={"v": 2}, source="twarc2"))
    save(db, make("1", raw={"id_str": "1"}, source="twitter_v1"))
    assert sorted(r[0] for r in db.execute("SELECT format FROM raw")) == ["twarc2", "twitter_v1"]


def test_authors_fill_gaps_and_update(db):
    save(db, make("1", author=Author(id="9", platform="x", handle="old_handle", name=None)))
    save(db, make("2", author=Author(id="9", platform="x", handle="new_handle", name="Nine",
                                     avatar_url="https://a/9.jpg")))
    save(db, make("3", author=Author(id="9", platform="x", handle=None, name=None)))
    assert db.execute("SELECT handle, name, avatar_url FROM authors WHERE id = '9'").fetchone() == (
        "new_handle", "Nine", "https://a/9.jpg")


def test_merge_rows_directly():
    old = post_row(make("1", matched=True, text="kept", lang="en", like_count=2))
    new = post_row(make("1", matched=False, text="other", lang="fr", like_count=None, reply_count=0))
    merged = merge_rows(old, new)
    assert (merged["text"], merged["lang"], merged["like_count"], merged["reply_count"], merged["matched"]) == (
        "kept", "en", 2, 0, 1)
    assert merge_rows(old, old) == old


def test_batches_across_flushes(db):
    posts = [make(str(i), text=f"post {i}") for i in range(25)]
    stats = save(db, *posts, make("3", matched=False), batch_size=7)
    assert stats.added == 25
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == 25
    assert db.execute("SELECT count(*) FROM posts_fts").fetchone()[0] == 25


# --------------------------------------------------------------------------
# the background writer thread


def dump(db) -> dict:
    out = {}
    for table in ("posts", "authors", "raw", "post_hashtags", "mentions", "links", "post_links",
                  "media", "post_media", "hashtags"):
        out[table] = sorted(map(repr, db.execute(f"SELECT * FROM {table}")))
    return out


def test_background_writer_writes_the_same(tmp_path):
    posts = [make(str(i % 40), matched=bool(i % 3), text=f"post {i}", like_count=i, hashtags=[f"t{i % 5}"],
                  links=[f"https://l.example/{i % 7}"], raw={"i": i}) for i in range(200)]
    a, b = open_db(tmp_path / "a.db", create=True), open_db(tmp_path / "b.db", create=True)
    sa = save(a, *posts, batch_size=16)
    sb = save(b, *posts, batch_size=16, background=True)
    assert (sa.added, sa.updated, sa.unchanged) == (sb.added, sb.updated, sb.unchanged)
    assert dump(a) == dump(b)


def test_background_writer_error_reaches_the_caller(db):
    db.execute("CREATE TRIGGER no_bad BEFORE INSERT ON posts WHEN new.text = 'bad' "
               "BEGIN SELECT RAISE(ABORT, 'refused by test'); END")
    writer = PostWriter(db, batch_size=2, background=True)
    db.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError, match="refused by test"):
        writer.add([make("1"), make("2", text="bad"), make("3"), make("4"), make("5"), make("6")])
        writer.flush()
    writer.close()
    db.execute("ROLLBACK")
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == 0
    assert not any(t.name == "chatarchive-writer" for t in threading.enumerate())


def test_save_posts_convenience(db):
    stats = save_posts(db, [make("1"), make("2")])
    assert stats.added == 2 and db.execute("SELECT count(*) FROM posts").fetchone()[0] == 2


def test_mastodon_local_replies_resolved(db):
    parent = Post(id="https://a.social/users/x/statuses/1", platform="mastodon", source="mastodon",
                  created_at="2026-11-18T20:00:00.000Z", author=None, local_id="11", instance="a.social")
    child = Post(id="https://a.social/users/y/statuses/2", platform="mastodon", source="mastodon",
                 created_at="2026-11-18T20:01:00.000Z", author=None, local_id="12", instance="a.social",
                 reply_to_local_id="11")
    save_posts(db, [child, parent])
    assert row(db, child.id)["reply_to_id"] == parent.id


# --------------------------------------------------------------------------
# Follow-up fixes: author placeholders, first source, local ids, link schemes


def _ids_of(db, sql, params=()):
    return [r[0] for r in db.execute(sql, params).fetchall()]


def test_real_x_author_id_beats_placeholder_in_either_order(db):
    placeholder = Author(id="x:@Ana", platform="x", handle="Ana", name="Ana B.")
    save_posts(db, [make("1")])
    stats = save_posts(db, [make("1", author=placeholder, source="twitter_archiver")])
    assert row(db, "1")["author_id"] == "101"
    assert (stats.updated, stats.unchanged) == (0, 1)
    save_posts(db, [make("2", author=placeholder, source="twitter_archiver")])
    save_posts(db, [make("2")])  # the numeric id arrives later: it wins
    assert row(db, "2")["author_id"] == "101"
    # within one batch too
    writer = PostWriter(db)
    with transaction(db):
        writer.add([make("3"), make("3", author=placeholder, source="twitter_archiver")])
        writer.flush()
    assert row(db, "3")["author_id"] == "101"


def test_placeholder_authors_are_merged_into_the_one_numeric_author(db):
    save_posts(db, [make("1")])  # ana = 101
    lone = Author(id="x:@zed", platform="x", handle="zed")
    save_posts(db, [make("2", author=Author(id="x:@ANA", platform="x", handle="ANA")),
                    make("3", author=lone)])
    assert row(db, "2")["author_id"] == "101"  # handle matched case-insensitively
    assert row(db, "3")["author_id"] == "x:@zed"  # no numeric author: kept
    assert _ids_of(db, "SELECT id FROM authors ORDER BY id") == ["101", "x:@zed"]
    # two numeric authors share the handle (renamed accounts): ambiguous, left alone
    save_posts(db, [make("4", author=Author(id="202", platform="x", handle="zed")),
                    make("5", author=Author(id="303", platform="x", handle="Zed"))])
    assert row(db, "3")["author_id"] == "x:@zed"
    assert "x:@zed" in _ids_of(db, "SELECT id FROM authors")


def test_first_source_is_kept_and_a_source_only_difference_is_no_update(db):
    save_posts(db, [make("1", source="twitter_v1", raw={"id_str": "1"})])
    stats = save_posts(db, [make("1", source="tags_csv", raw={"id_str": "1", "from_user": "ana"})])
    assert row(db, "1")["source"] == "twitter_v1"
    assert (stats.added, stats.updated, stats.unchanged) == (0, 0, 1)
    # the second format's raw object is still kept beside the first
    assert sorted(_ids_of(db, "SELECT format FROM raw WHERE post_id = '1'")) == ["tags_csv", "twitter_v1"]
    stats = save_posts(db, [make("1", source="tags_csv", text="hello community, edited")])
    assert stats.updated == 1 and row(db, "1")["source"] == "twitter_v1"


def test_only_http_links_are_stored(db):
    save_posts(db, [make("1", links=["javascript:alert(1)", "https://ok.example/a", "data:text/html,<script>",
                                     "HTTP://Upper.example/", "ftp://files.example/x", "vbscript:x"])])
    save_posts(db, [make("1", links=["JavaScript:alert(2)"])])  # a later sighting cannot add one either
    assert _ids_of(db, "SELECT url FROM links ORDER BY id") == ["https://ok.example/a", "HTTP://Upper.example/"]
    assert db.execute("SELECT count(*) FROM post_links").fetchone()[0] == 2


def _masto(pid, instance, local_id, *, reply_to_local_id=None, matched=True, like_count=None):
    return Post(id=pid, platform="mastodon", source="mastodon", text="t " + pid, matched=matched,
                created_at="2026-11-18T20:00:00.000Z", instance=instance, local_id=local_id,
                reply_to_local_id=reply_to_local_id, like_count=like_count,
                author=Author(id="https://a.example/users/a", platform="mastodon", handle="a@a.example"))


def test_every_servers_local_id_resolves_replies(db):
    save_posts(db, [_masto("uri:1", "one.example", "11")])
    stats = save_posts(db, [_masto("uri:1", "two.example", "22")])
    assert stats.updated == 0  # the first server's ids stay on the post
    assert (row(db, "uri:1")["instance"], row(db, "uri:1")["local_id"]) == ("one.example", "11")
    assert db.execute("SELECT instance, local_id, post_id FROM local_ids ORDER BY instance").fetchall() == [
        ("one.example", "11", "uri:1"), ("two.example", "22", "uri:1")]
    save_posts(db, [_masto("uri:2", "two.example", "23", reply_to_local_id="22"),
                    _masto("uri:3", "one.example", "12", reply_to_local_id="11"),
                    _masto("uri:4", "one.example", "13", reply_to_local_id="99")])
    assert row(db, "uri:2")["reply_to_id"] == "uri:1"
    assert row(db, "uri:3")["reply_to_id"] == "uri:1"
    assert row(db, "uri:4")["reply_to_id"] is None  # parent not stored: waits
    # alternating sightings change nothing
    for instance, local in [("one.example", "11"), ("two.example", "22"), ("one.example", "11")]:
        assert save_posts(db, [_masto("uri:1", instance, local)]).updated == 0


def test_resolve_local_replies_touches_only_unresolved_replies(db):
    from chatarchive.archive.writer import resolve_local_replies

    save_posts(db, [_masto("uri:1", "one.example", "11"), _masto("uri:5", "one.example", "15")])
    reply = _masto("uri:2", "one.example", "12", reply_to_local_id="11")
    reply.reply_to_id = "uri:5"  # already linked by its source: left alone
    save_posts(db, [reply])
    statements = []
    db.conn.set_trace_callback(statements.append)
    try:
        assert resolve_local_replies(db) == 0
    finally:
        db.conn.set_trace_callback(None)
    assert row(db, "uri:2")["reply_to_id"] == "uri:5"
    sql = " ".join(statements)
    assert "local_ids" in sql and "idx_posts_waiting_replies" in sql


def _migration_names(store):
    return [(fn.__name__, fn) for fn in _migration_functions(store.migrations)]


def _migration_functions(migrations):
    for attr in ("_migrations", "migrations"):
        found = getattr(migrations, attr, None)
        if found:
            return [getattr(m, "fn", m) for m in found]
    raise AssertionError("cannot list migrations")


def test_m003_local_ids_backfills_existing_posts(tmp_path):
    from chatarchive.archive import schema as store

    path = tmp_path / "old.db"
    db = open_db(path, create=True)
    save_posts(db, [_masto("uri:1", "one.example", "11"), _masto("uri:x", None, "5"), make("9")])
    db.execute("DROP TABLE local_ids")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_local_ids'")
    db.conn.close()
    db = open_db(path, create=True)  # the migration runs again on the "old" archive
    assert db.execute("SELECT instance, local_id, post_id FROM local_ids").fetchall() == [
        ("one.example", "11", "uri:1")]
    assert "m003_local_ids" in _ids_of(db, "SELECT name FROM _sqlite_migrations")
    # Migrations run in the order they are declared.  m003 was added after
    # m301 (the first version's order); every later one is numbered in the
    # order it runs, so the names after m003 sort as they run.
    names = [name for name, _ in _migration_names(store)]
    later = names[names.index("m003_local_ids") + 1:]
    assert later == sorted(later) and all(n > "m003" and n < "m101" for n in later)
