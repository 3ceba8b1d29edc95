"""A poisoned archive cannot happen (issue 14, item 3, for the analysis): whatever a stored row holds
(NULL or impossible times, text where a count should be, hand-edited settings), the full and the
incremental analysis and the statistics run, and the good posts are analysed as before."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "analysis"))
from builders import ChatBuilder, standard_chat

from chatarchive.analysis import stats, threads
from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.archive import queries
from chatarchive.cli import cli

START = "2026-11-12T01:00:00Z"
ODD_TIMES = [None, "0000-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z", "1-01-01T00:00:00.000Z",
             "9999-12-31T23:59:59.999Z", "yesterday", "", "2026-02-31T10:00:00.000Z", "2026-11-12T25:00:00.000Z",
             "2026-11-12 01:30:00", 12345, "２０２６-11-12T01:30:00.000Z"]
ODD_COUNTS = [1e20, "99999999999999999999", -5, "lots", 1e300, float("inf"), None, 3.5]


def store_odd_posts(db, replies_to: str, question_of: str) -> list[str]:
    """Rows written with SQL, as an older version, another tool or a hand
    edit may have left them: every odd time, tagged and untagged, some
    replying into the chat's thread; every odd count."""
    conn = db.conn
    tag_id = conn.execute("SELECT id FROM hashtags WHERE tag = 'cmgrchat'").fetchone()[0]
    ids = []
    for i, t in enumerate(ODD_TIMES):
        for tagged in (True, False):
            pid = f"odd{i}{'t' if tagged else 'u'}"
            count = ODD_COUNTS[i % len(ODD_COUNTS)]
            conn.execute(
                """INSERT INTO posts (id, platform, author_id, author_handle, text, created_at, reply_to_id, matched,
                                      like_count, repost_count, reply_count, quote_count)
                   VALUES (?, 'x', ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)""",
                [pid, f"x:odd{i}", None if i % 3 == 0 else f"odd{i}", f"A1: odd time {i} #cmgrchat" if tagged else
                 f"reply with an odd time {i}", t, replies_to if i % 2 else question_of, count, count, count, count])
            if tagged:
                conn.execute("INSERT INTO post_hashtags (post_id, hashtag_id) VALUES (?, ?)", [pid, tag_id])
            ids.append(pid)
    # a question by the host at an unknown time, answered
    conn.execute("""INSERT INTO posts (id, platform, author_id, author_handle, text, created_at, matched)
                    VALUES ('oddq', 'x', 'x:cmgrhost', 'cmgrhost', 'Q7: asked when? #cmgrchat', 'soon', 1)""")
    conn.execute("INSERT INTO post_hashtags (post_id, hashtag_id) VALUES ('oddq', ?)", [tag_id])
    conn.execute("""INSERT INTO posts (id, platform, author_id, author_handle, text, created_at, reply_to_id, matched)
                    VALUES ('odda', 'x', 'x:ann', 'ann', 'A7: whenever', NULL, 'oddq', 0)""")
    return ids


def poison_settings_and_sessions(db):
    conn = db.conn
    conn.execute("""INSERT INTO chats (hashtag, explicit, timezone, hosts, gap_seconds, min_posts, question_pattern,
                                       answer_pattern, schedules, lead_seconds, tail_seconds)
                    VALUES ('oddchat', 1, 'Mars/Olympus', 'not json', 'abc', -3, NULL, NULL,
                            '[{"every": "funday 9"}, 7, {"every": "wed 20:00", "timezone": "Nowhere/City", "duration": 3600}]',
                            'six hours', 99999999999999999999)""")
    conn.execute("""INSERT INTO sessions (slug, hashtag, start, "end", source, window_start, window_end, hosts, platforms)
                    VALUES ('oddchat-9999-12-31', 'oddchat', '9999-12-31T23:00:00.000Z', '9999-12-31T23:59:59.999Z',
                            'detected', '0000-01-01T00:00:00.000Z', 'never', '{"a": 1}', '7')""")
    # manual sessions of the chat itself, as a hand edit may leave them
    for i, (start, end) in enumerate([(None, None), ("garbage", ""), ("0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z")]):
        conn.execute("""INSERT INTO sessions (slug, hashtag, start, "end", source, window_start, window_end, hosts,
                                              configured_hosts, timezone, post_count)
                        VALUES (?, 'cmgrchat', ?, ?, 'manual', ?, ?, '[1, 2', ?, 'Not/AZone', ?)""",
                     [f"odd-manual-{i}", start, end, start, end, ["{", "[7]", '["ann"]'][i], [-1, 2**62, None][i]])


def good_chat(db):
    b = ChatBuilder(START)
    named = standard_chat(b)
    b.save(db)
    return named


def test_odd_stored_values_never_stop_the_analysis(db, monkeypatch):
    named = good_chat(db)
    analyse_archive(db)
    (clean,) = queries.list_sessions(db)
    ids = store_odd_posts(db, named["a1.1"].id, named["q1"].id)
    poison_settings_and_sessions(db)
    # incremental: only what is new is analysed
    monkeypatch.setattr(threads, "FULL_RATIO", 100.0)
    result = analyse_archive(db)
    assert not result["full"]
    # a full run, and a re-detection with options, over the same rows
    analyse_archive(db, full=True)
    analyse_archive(db, hashtags=["cmgrchat"], tz="America/New_York")
    got = {s.slug: s for s in queries.list_sessions(db)}
    assert {"odd-manual-0", "odd-manual-1", "odd-manual-2"} <= set(got)  # manual rows are the user's: kept
    s = got["cmgrchat-2026-11-11"]
    # the chat is the same sitting: posts without a usable time join it only through its threads
    assert (s.start, s.end) == (clean.start, clean.end)
    members = {r[0] for r in db.execute("SELECT post_id FROM session_posts WHERE session_id = ?", [s.id])}
    assert members >= {named["q1"].id, named["a3.5"].id}
    assert {p for p in ids if p.endswith("u")} <= members  # untagged replies into its threads
    tagged_odd = {p for p in ids if p.endswith("t")}
    # tagged posts are members through the reply threads too, never by time
    by_time = {r[0] for r in db.execute("SELECT post_id FROM session_posts WHERE session_id = ? AND via = 'tag'", [s.id])}
    assert not tagged_odd & by_time
    # every post is in a conversation, and the threads hold together
    assert db.execute("SELECT count(*) FROM posts WHERE conversation_id IS NULL").fetchone()[0] == 0
    assert db.execute("SELECT conversation_id FROM posts WHERE id = 'odda'").fetchone()[0] == "oddq"
    # the odd session row was replaced (the hashtag has no post: it is gone)
    assert "oddchat-9999-12-31" not in got
    # statistics of every session, and of the hashtag
    for slug in got:
        st = stats.session_stats(db, slug)
        assert st["posts"] == got[slug].posts
        json.dumps(st, allow_nan=False)  # (no NaN or Infinity reaches JSON)
        assert all(isinstance(p["engagement"], int) for p in st["top_posts"])
    stats.hashtag_stats(db, "cmgrchat")


def test_odd_values_through_the_commands(db, db_path, runner):
    named = good_chat(db)
    store_odd_posts(db, named["a1.1"].id, named["q1"].id)
    poison_settings_and_sessions(db)
    for args in (["sessions", "detect", "{db}"], ["sessions", "detect", "{db}", "--hashtag", "cmgrchat"],
                 ["sessions", "list", "{db}"], ["sessions", "list", "{db}", "--json"],
                 ["show", "{db}", "cmgrchat-2026-11-12"], ["show", "{db}", "cmgrchat-2026-11-12", "--json"],
                 ["sessions", "schedule", "{db}", "--hashtag", "cmgrchat", "--every", "wed 20:00", "--tz",
                  "Pacific/Kiritimati", "--duration", "1h"],
                 ["sessions", "add", "{db}", "--hashtag", "cmgrchat", "--start", "2026-11-13T10:00", "--duration", "1h",
                  "--tz", "Etc/GMT+12"]):
        r = runner.invoke(cli, [a.replace("{db}", str(db_path)) for a in args], catch_exceptions=False)
        assert r.exit_code == 0, (args, r.output)


@pytest.mark.parametrize("start", ["9999-12-31T23:00", "0001-01-01T00:00", "1999-12-31T23:00"])
def test_a_session_cannot_be_added_outside_the_archive_s_times(db, db_path, runner, start):
    good_chat(db)
    r = runner.invoke(cli, ["sessions", "add", str(db_path), "--hashtag", "cmgrchat", "--start", start,
                            "--duration", "1h", "--tz", "Pacific/Kiritimati"])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "outside" in r.output or "Invalid time" in r.output
