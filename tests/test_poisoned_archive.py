"""A poisoned archive (issue 14): every kind of odd value the fuzzer finds,
stored directly into an archive behind the writer's back — as an old
version, a hand edit or another tool might have left it — and then every
command is run on it.  None may fail: no traceback, no non-zero exit, and
the commands that only read leave the file as it was.

The odd values: years 0000, 0001 and 9999, NULL and unreadable times,
times in other formats and offsets, integer and real times; counts above
2^63, negative, real and text; NULL and empty text, control characters and
terminal escapes, very long text; reply cycles and self-replies, missing
parents and authors, reply placeholders; odd session rows (times, JSON
columns, zones) and chat settings.  Each command is its own test, so a
failure names the command and the others still run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli

SAMPLE = Path(__file__).parent.parent / "chatarchive" / "sample"  # the demo's chat: two sessions, three platforms
CLEAN = [SAMPLE / "samplechat-x.jsonl", SAMPLE / "samplechat-mastodon.json", SAMPLE / "samplechat-bluesky.json",
         FIXTURES / "twarc2" / "chat.jsonl", FIXTURES / "mastodon" / "tag-edchat-mastodon-example.json",
         FIXTURES / "bluesky" / "searchPosts-edchat.json", FIXTURES / "x" / "v1.jsonl"]
LATER = FIXTURES / "mastodon" / "tag-edchat-example-social.json"  # a clean file imported afterwards

ODD_TIMES = ["0000-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z",
             None, "1-01-01T00:00:00.000Z", "garbage", "", "2026-11-18", "2026-11-18T20:00:00+14:00",
             "2026-11-18T20:00:00-12:00", "2026-02-30T25:61:61.000Z", 12345, 1.5,
             "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
ODD_COUNTS = [2**63 - 1, -5, 1e20, "many", None, 0]
ODD_TEXTS = [None, "", "\x00\x1b]0;owned\x07\x1b[2J", "x" * 100_000, "\u202egnp.exe", "#edchat Q1: " * 500,
             "https://t.co/abc https://user:secret@example.org/p", "<script>alert(1)</script>"]


def _poison(path: Path, sessions: bool) -> list[str]:
    """Store the odd values (in posts, authors, links and media; with
    ``sessions`` in session, question and chat-settings rows too); returns
    the ids of the odd posts."""
    db = sqlite3.connect(path)
    tag_id = db.execute("SELECT id FROM hashtags WHERE tag = 'samplechat' COLLATE NOCASE").fetchone()[0]
    ids = []
    n = 0
    for t in ODD_TIMES:
        for count in ODD_COUNTS[:2]:
            n += 1
            ids.append(f"odd-{n}")
            db.execute(
                "INSERT INTO posts (id, platform, source, author_id, author_handle, text, created_at, like_count, "
                "repost_count, matched, reply_to_id, url) VALUES (?, 'x', 'twarc2', ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (f"odd-{n}", "101" if n % 3 else "no-such-author", "ana" if n % 2 else None,
                 ODD_TEXTS[n % len(ODD_TEXTS)], t, count, ODD_COUNTS[n % len(ODD_COUNTS)],
                 # self-replies, a cycle, a placeholder, a missing parent
                 [None, f"odd-{n}", f"odd-{n + 1}", f"odd-{n - 1}", "local:mastodon.example/999", "404"][n % 6],
                 ["https://x.com/i/web/status/1", None, "javascript:alert(1)", ""][n % 4]))
            db.execute("INSERT OR IGNORE INTO post_hashtags (post_id, hashtag_id) VALUES (?, ?)", (f"odd-{n}", tag_id))
    # odd values on real posts too (they are in sessions, threads and Q&A)
    real = [r[0] for r in db.execute(  # posts of the detected sessions, questions among them
        "SELECT post_id FROM session_posts JOIN posts ON posts.id = post_id "
        "ORDER BY question_id IS NULL, session_id, post_id LIMIT 12")]
    for i, pid in enumerate(real):
        db.execute("UPDATE posts SET created_at = ?, reply_count = ?, edited_at = ?, quote_count = ?, text = coalesce(?, text) "
                   "WHERE id = ?",
                   (ODD_TIMES[i % len(ODD_TIMES)], ODD_COUNTS[i % len(ODD_COUNTS)],
                    ["0000", "9999-12-31T23:59:59.999Z", None][i % 3], ODD_COUNTS[(i + 2) % len(ODD_COUNTS)],
                    [None, "\x1b]0;owned\x07 Q1: odd", None, ""][i % 4], pid))
    db.execute("UPDATE posts SET deleted_at = '0000-01-01' WHERE id = ?", (real[-1],))
    db.execute("INSERT INTO authors (id, platform, handle, name, avatar_url, url) VALUES "
               "('weird', 'x', '', ?, 'javascript:alert(1)', 'data:text/html,x')", ("\x1b[31mred\x1b[0m" * 50,))
    db.execute("INSERT INTO links (url) VALUES ('javascript:alert(1)'), ('')")
    db.execute("INSERT INTO media (url, type, alt) VALUES ('', NULL, ?)", ("\x07" * 10,))
    if not sessions:
        db.commit()
        db.close()
        return ids
    # odd sessions and chat settings (a hand edit, an old version)
    for i, (start, end) in enumerate([("0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"), (None, None),
                                      ("garbage", ""), ("9999-12-31T23:00:00.000Z", "9999-12-31T23:59:59.999Z"),
                                      ("0001-01-01T00:00:00.000Z", "0001-01-01T01:00:00.000Z")]):
        db.execute("INSERT INTO sessions (slug, hashtag, title, start, \"end\", hosts, source, timezone, platforms, "
                   "post_count, window_start, window_end, configured_hosts) VALUES (?, 'samplechat', ?, ?, ?, ?, 'manual', "
                   "?, ?, ?, ?, ?, ?)",
                   (f"odd-session-{i}", ["\x1b[2J", None, "x" * 3000, "", "ok"][i], start, end,
                    ["not json", None, "[1, 2", '{"a": 1}', "[]"][i], ["Not/AZone", None, "", "Pacific/Kiritimati",
                                                                       "Etc/GMT+12"][i],
                    ["[", None, '["x"]', "5", "[]"][i], [-1, None, 2**62, 0, 3][i], start, end,
                    ["{", None, "[]", "null", '["ana"]'][i]))
        sid = db.execute("SELECT id FROM sessions WHERE slug = ?", (f"odd-session-{i}",)).fetchone()[0]
        for pid in ids[i * 3: i * 3 + 3] + real[i: i + 2]:
            db.execute("INSERT OR IGNORE INTO session_posts (session_id, post_id, via) VALUES (?, ?, 'tag')",
                       (sid, pid))
        db.execute("INSERT INTO questions (session_id, number, post_id, text) VALUES (?, ?, ?, ?)",
                   (sid, [1, -1, 2**40, None, 0][i], ids[i], ["Q1: odd", None, "", "x" * 500, "\x1b[2J"][i]))
    db.execute("INSERT OR REPLACE INTO chats (hashtag, explicit, timezone, hosts, gap_seconds, min_posts) "
               "VALUES ('oddchat', 1, 'Mars/Olympus', '{bad json', 2700, 3)")
    db.commit()
    db.close()
    return ids


@pytest.fixture(scope="module", params=["posts", "sessions"], ids=["odd-posts", "odd-posts-and-sessions"])
def poisoned(request, tmp_path_factory) -> Path:
    """The clean archive (four files, analysed), then the poison: odd
    values in posts only, or in posts and in session rows."""
    path = tmp_path_factory.mktemp("poisoned") / "chats.db"
    db = open_db(path, create=True)
    results = import_files(db, [str(p) for p in CLEAN])
    assert all(not r.error for r in results)
    from chatarchive.analysis.pipeline import analyse_archive

    analyse_archive(db)
    db.conn.close()
    _poison(path, sessions=request.param == "sessions")
    return path


@pytest.fixture
def archive(poisoned, tmp_path) -> Path:
    """A copy of the poisoned archive for one test."""
    path = tmp_path / "chats.db"
    shutil.copy(poisoned, path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"chatarchive {' '.join(map(str, args))} raised:\n{tb}")
    assert result.exit_code == 0, f"chatarchive {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
    assert "Traceback" not in result.output
    return result.output


def slugs(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT slug FROM sessions ORDER BY id")]
    finally:
        db.close()


def test_the_poison_is_in_place(poisoned):
    db = sqlite3.connect(poisoned)
    times = {r[0] for r in db.execute("SELECT created_at FROM posts")}
    assert {"0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", None, "12345", "garbage", ""} <= times
    assert db.execute("SELECT count(*) FROM posts WHERE like_count = 9223372036854775807").fetchone()[0]
    assert db.execute("SELECT count(*) FROM sessions WHERE slug NOT LIKE 'odd-session-%'").fetchone()[0] >= 1


def test_import_of_a_clean_file_after_it(archive):
    out = run("import", archive, LATER)
    assert "added" in out


def test_import_of_a_clean_file_without_analysis_then_detect(archive):
    run("import", archive, LATER, "--no-analyse")
    run("sessions", "detect", archive)


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Etc/GMT+12", "America/New_York"])
def test_sessions_detect_in_every_zone(archive, tz):
    run("sessions", "detect", archive, "--hashtag", "samplechat", "--tz", tz)
    run("sessions", "detect", archive, "--json")


def test_sessions_list(archive):
    before = digest(archive)
    run("sessions", "list", archive)
    json.loads(run("sessions", "list", archive, "--json"))
    assert digest(archive) == before


def test_show_every_session(archive):
    before = digest(archive)
    for slug in slugs(archive):
        run("show", archive, slug)
        json.loads(run("show", archive, slug, "--json"))
    assert digest(archive) == before


def test_search(archive):
    before = digest(archive)
    run("search", archive, "Q1")
    json.loads(run("search", archive, "edchat", "--json", "--order", "newest"))
    run("search", archive, "odd", "--since", "2006-01-01", "--until", "2030-01-01")
    run("search", archive, "A1:", "--hashtag", "samplechat")
    for slug in slugs(archive)[:3]:
        run("search", archive, "Q1", "--session", slug)
    assert digest(archive) == before


def test_recap(archive, tmp_path):
    run("recap", archive, "--out", tmp_path / "site", "--no-search", "--quiet")
    assert (tmp_path / "site" / "index.html").exists()


@pytest.mark.parametrize("fmt", ["md", "json", "jsonl", "csv"])
def test_export_every_session(archive, tmp_path, fmt):
    before = digest(archive)
    for i, slug in enumerate(slugs(archive)):
        run("export", archive, slug, "--format", fmt)
        run("export", archive, slug, "--format", fmt, "-o", tmp_path / f"s{i}.{fmt}")
    assert digest(archive) == before


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_sessions_schedule(archive, tz):
    run("sessions", "schedule", archive, "--hashtag", "samplechat", "--every", "wed 20:00", "--tz", tz,
        "--duration", "1h", "--before", "15m", "--after", "30m")


def test_sessions_add_and_remove(archive):
    run("sessions", "add", archive, "--hashtag", "samplechat", "--start", "2026-11-18T19:00", "--duration", "1h",
        "--tz", "Pacific/Kiritimati")
    run("sessions", "remove", archive, slugs(archive)[-1])


def test_serve_pages_through_datasettes_client(archive):
    from chatarchive.datasette import server

    before = digest(archive)
    ds = server.make_datasette(archive)
    db = sqlite3.connect(archive)
    post_ids = [r[0] for r in db.execute("SELECT id FROM posts WHERE id LIKE 'odd-%' LIMIT 8")]
    session_slugs = [r[0] for r in db.execute("SELECT slug FROM sessions")]
    db.close()
    pages = ["/", "/chats", "/chats/posts", "/chats/posts?_sort_desc=created_at", "/chats/sessions",
             "/chats/authors", "/chats/posts_in_sessions", "/chats/-/search?q=Q1", "/chats/-/search?q=odd&order=newest",
             "/chats/search_posts?q=samplechat", "/chats/search_everything?q=ana", "/chats/participant_history?handle=ana",
             "/chats/conversation_thread?post=odd-3", "/chats/posts.json?_shape=array"]
    pages += [f"/chats/-/session/{slug}" for slug in session_slugs]
    pages += [f"/chats/session_transcript?session={slug}" for slug in session_slugs]
    pages += [f"/chats/posts/{pid}" for pid in post_ids]
    loop = asyncio.new_event_loop()
    failed = []
    try:
        for page in pages:
            r = loop.run_until_complete(ds.client.get(page))
            if r.status_code >= 500:
                failed.append(f"{page}: {r.status_code}")
    finally:
        loop.close()
    assert not failed, failed
    assert digest(archive) == before
