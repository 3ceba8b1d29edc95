"""stats.session_stats and stats.hashtag_stats: the contract shapes and every number on a hand-made chat."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "analysis"))
from builders import ChatBuilder, at

from chatarchive.analysis import stats
from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.cli import cli
from chatarchive.errors import NotFoundError

W1 = "2026-11-12T01:00:00Z"
W2 = "2026-11-19T01:00:00Z"
SESSION_KEYS = {"session", "posts", "matched_posts", "context_posts", "participants", "first_timers", "returning",
                "replies", "questions", "links", "top_posts", "top_participants", "per_minute", "busiest_minutes"}


def build(db):
    """Week 1: host, ann, bob (+ filler). Week 2: host, ann (returning), cat, dan (new)."""
    b = ChatBuilder(W1)
    q1 = b.add("host", "Q1: first question? #statchat", 0, likes=10, reposts=2)
    b.add("ann", "A1: yes #statchat", 1, likes=3, links=["https://example.org/a"])
    b.add("bob", "A1: no #statchat", 2, links=["https://example.org/a", "https://example.org/b"])
    for i in range(8):
        b.add("host", f"filler {i} #statchat", 3 + i)
    b.save(db)
    b = ChatBuilder(W2)
    q = b.add("host", "Q1: week two? #statchat", 0, likes=1)
    a1 = b.add("ann", "A1: again #statchat", 1.5, likes=7, reposts=1,
               links=["https://example.org/a", "javascript:alert(1)", "https://x.com/ann/status/123"])
    b.add("cat", "A1: first time here #statchat", 1.75)
    ctx = b.add("dan", "untagged reply to ann", 2.2, reply_to=a1.id, matched=False, likes=0)
    b.add("ann", "@dan thanks", 2.4, reply_to=ctx.id, matched=False)
    b.add("cat", "RT @ann: A1: again #statchat", 3, repost=True, links=["https://example.org/a"])
    b.add("host", "Q2: second? #statchat", 5)
    b.add("cat", "A2: sure #statchat", 9)
    b.add("ann", "self reply to my own answer", 9.5, reply_to=a1.id)
    for i in range(5):
        b.add("host", f"filler {i} #statchat", 10 + i)
    b.save(db)
    analyse_archive(db)
    return q1, q, a1


def test_session_stats_numbers(db):
    _q1, q, a1 = build(db)
    st = stats.session_stats(db, "statchat-2026-11-19")
    assert set(st) == SESSION_KEYS
    s = st["session"]
    assert set(s) == {"id", "slug", "hashtag", "title", "start", "end", "timezone", "hosts", "source", "platforms"}
    assert (s["slug"], s["hosts"], s["platforms"], s["source"]) == ("statchat-2026-11-19", ["host"], ["x"], "detected")
    assert (st["posts"], st["matched_posts"], st["context_posts"]) == (14, 12, 2)
    assert st["participants"] == 4
    assert st["first_timers"] == ["cat", "dan"] and st["returning"] == ["ann", "host"]
    assert st["replies"] == 3
    assert [(x["number"], x["answers"], x["first_answer_seconds"], x["author_handle"]) for x in st["questions"]] == [
        (1, 2, 90.0, "host"), (2, 1, 240.0, "host")]
    assert set(st["questions"][0]) == {"id", "number", "post_id", "text", "created_at", "author_handle", "answers",
                                       "first_answer_seconds"}
    assert st["questions"][0]["post_id"] == q.id
    # the repost's link is not counted; javascript: and post permalinks are not "links"
    assert st["links"] == [{"url": "https://example.org/a", "count": 1}]
    assert [(p["id"], p["engagement"]) for p in st["top_posts"][:2]] == [(a1.id, 8), (q.id, 1)]
    assert set(st["top_posts"][0]) == {"id", "author_handle", "text", "url", "created_at", "engagement"}
    ann = next(p for p in st["top_participants"] if p["handle"] == "ann")
    assert (ann["posts"], ann["replies_received"], ann["first_timer"]) == (3, 1, False)  # own reply not counted
    assert set(ann) == {"author_id", "handle", "name", "avatar_url", "posts", "replies_received", "first_timer"}
    assert st["top_participants"][0]["handle"] == "host"
    minutes = st["per_minute"]
    assert minutes[0] == {"minute": "2026-11-19T01:00", "posts": 1}
    assert minutes[-1]["minute"] == "2026-11-19T01:14" and len(minutes) == 15  # empty minutes filled
    assert sum(m["posts"] for m in minutes) == 14
    assert [m["minute"][-5:] for m in st["busiest_minutes"]] == ["01:01", "01:02", "01:09", "01:00", "01:03"]
    assert all(m["posts"] > 0 for m in st["busiest_minutes"])
    # by id too, and unknown sessions are an error
    assert stats.session_stats(db, s["id"])["session"]["slug"] == s["slug"]
    with pytest.raises(NotFoundError):
        stats.session_stats(db, "statchat-1999-01-01")


def test_the_first_archived_session_knows_no_first_timers(db):
    build(db)
    st = stats.session_stats(db, "statchat-2026-11-12")
    # who came before the archive began is unknown: neither list, nor any badge
    assert st["returning"] is None and st["first_timers"] is None
    assert [p["first_timer"] for p in st["top_participants"]] == [None, None, None]
    assert st["links"] == [{"url": "https://example.org/a", "count": 2}, {"url": "https://example.org/b", "count": 1}]
    assert st["questions"][0]["first_answer_seconds"] == 60.0


def test_hashtag_stats(db):
    build(db)
    hs = stats.hashtag_stats(db, "#STATCHAT")
    assert hs["hashtag"] == "statchat"
    assert [(s["slug"], s["start"], s["posts"], s["participants"], s["first_timers"]) for s in hs["sessions"]] == [
        ("statchat-2026-11-12", at(W1), 11, 3, None),
        ("statchat-2026-11-19", at(W2), 14, 4, 2),
    ]
    assert hs["regulars"] == [{"handle": "ann", "sessions": 2}, {"handle": "host", "sessions": 2}]
    assert stats.hashtag_stats(db, "nochat") == {"hashtag": "nochat", "sessions": [], "regulars": []}


def test_hosts_are_never_first_timers_and_unknowns_are_null_in_show_json(db, db_path, runner):
    build(db)
    # week 3: a guest host who never posted before, a returning participant, a newcomer
    b = ChatBuilder("2026-11-26T01:00:00Z")
    b.add("guesthost", "Q1: guest question? #statchat", 0)
    b.add("ann", "A1: back again #statchat", 1)
    b.add("eve", "A1: new here #statchat", 2)
    for i in range(8):
        b.add("guesthost", f"filler {i} #statchat", 3 + i)
    b.save(db)
    analyse_archive(db)
    st = stats.session_stats(db, "statchat-2026-11-26")
    assert st["session"]["hosts"] == ["guesthost"]
    assert st["first_timers"] == ["eve"] and st["returning"] == ["ann"]  # the guest host is neither
    flags = {p["handle"]: p["first_timer"] for p in st["top_participants"]}
    assert flags == {"guesthost": False, "ann": False, "eve": True}
    hs = stats.hashtag_stats(db, "statchat")
    assert [s["first_timers"] for s in hs["sessions"]] == [None, 2, 1]
    # show --json: null for the first session, lists after
    r = runner.invoke(cli, ["show", str(db_path), "statchat-2026-11-12", "--json"])
    assert r.exit_code == 0, r.output
    first = json.loads(r.output)
    assert first["first_timers"] is None and first["returning"] is None
    assert {p["first_timer"] for p in first["top_participants"]} == {None}
    r = runner.invoke(cli, ["show", str(db_path), "statchat-2026-11-26", "--json"])
    assert json.loads(r.output)["first_timers"] == ["eve"]


def test_odd_counts_are_added_up_as_numbers():
    assert [stats.count(v) for v in (3, 10**20, -5, "lots", 1e300, float("inf"), None, 3.9, True)] == [
        3, 10**20, 0, 0, int(1e300), 0, 0, 3, 0]
