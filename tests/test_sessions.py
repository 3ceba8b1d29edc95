"""Sessions: detection by gaps, explicit windows, weekly schedules (DST), membership, idempotence."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "analysis"))
from builders import ChatBuilder, at, post, standard_chat
from conftest import SHARED_FIXTURES, needs_shared_fixtures

from chatarchive.analysis import sessions, threads
from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.archive import queries
from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import save_posts, transaction
from chatarchive.cli import cli
from chatarchive.errors import ChatArchiveError, NotFoundError

WEEK1 = "2026-11-12T01:00:00Z"  # Wed 2026-11-11 20:00 in New York
WEEK2 = "2026-11-19T01:00:00Z"


def rows(db, where="", params=()):
    return db.execute(f'SELECT id, slug, hashtag, start, "end", source, post_count FROM sessions {where} ORDER BY start',
                      params).fetchall()


def members(db, slug, via=None):
    sql = "SELECT sp.post_id FROM session_posts sp JOIN sessions s ON s.id = sp.session_id WHERE s.slug = ?"
    params = [slug]
    if via:
        sql += " AND sp.via = ?"
        params.append(via)
    return {r[0] for r in db.execute(sql, params)}


def two_weeks(db, strays=True):
    b = ChatBuilder(WEEK1)
    w1 = standard_chat(b)  # 1 + 3 * 7 = 22 posts
    if strays:
        b.add("someone", "a stray #cmgrchat post mid-week", 60 * 24 * 3)
        b.add("someone", "and another #cmgrchat", 60 * 24 * 3 + 5)
    b.save(db)
    b2 = ChatBuilder(WEEK2)
    w2 = standard_chat(b2)
    b2.save(db)
    return w1, w2


# --------------------------------------------------------------------------
# Detection


def test_detect_splits_at_gaps_and_leaves_strays_out(db):
    w1, _w2 = two_weeks(db)
    analyse_archive(db)
    got = rows(db)
    assert [(r[1], r[2], r[5], r[6]) for r in got] == [
        ("cmgrchat-2026-11-12", "cmgrchat", "detected", 22),
        ("cmgrchat-2026-11-19", "cmgrchat", "detected", 22),
    ]
    assert got[0][3] == w1["welcome"].created_at and got[0][4] == w1["a3.5"].created_at
    everything = set().union(*(members(db, r[1]) for r in got))
    strays = {r[0] for r in db.execute("SELECT id FROM posts WHERE text LIKE '%stray%' OR text LIKE '%another%'")}
    assert len(strays) == 2 and not strays & everything


def test_gap_and_min_posts_are_options(db):
    b = ChatBuilder(WEEK1)
    for i in range(12):
        b.add(f"p{i}", f"early {i} #tchat", i)
    for i in range(12):
        b.add(f"p{i}", f"late {i} #tchat", 70 + i)  # 59 minutes of silence in between
    b.save(db)
    analyse_archive(db)
    assert [r[6] for r in rows(db)] == [12, 12]
    analyse_archive(db, hashtags=["tchat"], gap=timedelta(hours=1))
    assert [r[6] for r in rows(db)] == [24]
    analyse_archive(db, hashtags=["tchat"], min_posts=25)
    assert rows(db) == []
    with pytest.raises(ChatArchiveError):
        analyse_archive(db, gap=timedelta(0))


@pytest.mark.parametrize("silence, sessions_expected", [(45, 1), (45 + 1 / 60000, 2)])
def test_gap_boundary_is_exact_in_full_and_incremental(tmp_path, monkeypatch, silence, sessions_expected):
    first = [post(f"p{i}", f"one #bchat {i}", at(WEEK1, i / 10)) for i in range(10)]
    second = [post(f"p{i}", f"two #bchat {i}", at(WEEK1, 0.9 + silence + i / 10)) for i in range(10)]
    full = open_db(tmp_path / "full.db", create=True)
    save_posts(full, first + second)
    analyse_archive(full)
    monkeypatch.setattr(threads, "FULL_RATIO", 100.0)
    inc = open_db(tmp_path / "inc.db", create=True)
    for batch in (first, second):
        save_posts(inc, batch)
        analyse_archive(inc)
    assert [r[6] for r in rows(full)] == [r[6] for r in rows(inc)] == [20 // sessions_expected] * sessions_expected


def test_one_chat_on_three_platforms_with_any_case_is_one_session(db):
    b = ChatBuilder(WEEK1)
    for i in range(5):
        b.add(f"x{i}", f"hello #CmgrChat {i}", i, platform="x")
        b.add(f"m{i}", f"hello #cmgrchat {i}", i + 0.2, platform="mastodon")
        b.add(f"b{i}", f"hello #CMGRCHAT {i}", i + 0.4, platform="bluesky")
    b.save(db)
    analyse_archive(db)
    assert len(rows(db)) == 1
    s = queries.list_sessions(db)[0]
    assert s.platforms == ["bluesky", "mastodon", "x"] and s.posts == 15
    assert s.hashtag.lower() == "cmgrchat"


def test_untagged_replies_and_parents_belong_to_the_session(db):
    b = ChatBuilder(WEEK1)
    named = standard_chat(b)
    early = b.add("host2", "Before the chat: read this first", -5, matched=False)
    old = b.add("host2", "An old post from days before", -60 * 72, matched=False)
    r1 = b.add("zoe", "@person1 so true", 50, reply_to=named["a1.1"].id, matched=False)
    r2 = b.add("person1", "@zoe thanks!", 52, reply_to=r1.id, matched=False)
    late = b.add("yan", "@person1 catching up the next day", 60 * 20, reply_to=r1.id, matched=False)
    tagged_parent = b.add("person2", "A1: replying to the early post #cmgrchat", 4, reply_to=early.id)
    b.add("person3", "A1: and to an old one #cmgrchat", 4.5, reply_to=old.id)
    stray = b.add("someone", "stray #cmgrchat", 60 * 24 * 3)
    stray_reply = b.add("zoe", "reply to the stray", 60 * 24 * 3 + 1, reply_to=stray.id, matched=False)
    b.save(db)
    analyse_archive(db)
    (slug,) = [r[1] for r in rows(db)]
    assert members(db, slug, "thread") == {r1.id, r2.id, late.id, early.id}
    assert tagged_parent.id in members(db, slug, "tag")
    assert old.id not in members(db, slug) and stray_reply.id not in members(db, slug)


def threaded_chat(db):
    """A chat with tagged and untagged replies at several depths."""
    b = ChatBuilder(WEEK1)
    named = standard_chat(b)
    early = b.add("host2", "Before the chat: read this first", -5, matched=False)
    r1 = b.add("zoe", "@person1 so true", 50, reply_to=named["a1.1"].id, matched=False)
    b.add("person1", "@zoe thanks!", 52, reply_to=r1.id, matched=False)
    b.add("yan", "@person1 catching up the next day", 60 * 20, reply_to=r1.id, matched=False)
    b.add("person2", "A1: replying to the early post #cmgrchat", 4, reply_to=early.id)
    b.add("person3", "@zoe A2: and a tagged reply deeper down #cmgrchat", 53, reply_to=r1.id)
    b.save(db)


def table(db, name):
    return db.execute(f"SELECT * FROM {name} ORDER BY 1, 2").fetchall()


def test_the_threads_step_hands_its_pending_conversations_to_membership(db):
    threaded_chat(db)
    analyse_archive(db)
    expected_members = table(db, "session_posts")
    expected_convs = dict(db.execute("SELECT id, conversation_id FROM posts").fetchall())
    (sid,) = [r[0] for r in rows(db)]
    # A deferred full run writes no post; what it found travels in ThreadUpdate.pending.
    db.execute("UPDATE posts SET conversation_id = NULL")
    th = threads.update_threads(db, full=True, defer=True)
    assert th.full and th.pending is not None and th.pending.conversations
    assert db.execute("SELECT count(*) FROM posts WHERE conversation_id IS NOT NULL").fetchone()[0] == 0
    # membership seeded from it finds exactly what the walk over written threads found
    db.execute("DELETE FROM session_posts")
    assert sessions.refresh_membership(db, None, threads=th.pending) == {sid}
    assert table(db, "session_posts") == expected_members
    # and the members' conversations are read from it
    ((got_sid, got_rows),) = sessions.member_rows(db, [sid], threads=th.pending)
    assert got_sid == sid
    assert {r[0]: r[sessions.MEMBER_CONVERSATION] for r in got_rows} == {
        r[0]: expected_convs[r[0]] for r in got_rows}
    th.pending.write(answers=False)
    assert dict(db.execute("SELECT id, conversation_id FROM posts").fetchall()) == expected_convs
    assert db.execute("SELECT name FROM sqlite_temp_master").fetchall() == []


@pytest.mark.parametrize("options", [{}, {"full": True}, {"redetect": True}, {"hashtags": ["cmgrchat"]}])
def test_no_step_leaves_a_temp_table_behind(db, options):
    threaded_chat(db)
    analyse_archive(db, **options)
    b = ChatBuilder(WEEK1)
    b.add("late", "A3: one more #cmgrchat", 55)
    b.save(db)
    analyse_archive(db, **options)
    assert db.execute("SELECT name FROM sqlite_temp_master").fetchall() == []


def test_a_mistyped_option_is_an_error(db):
    with pytest.raises(TypeError):
        analyse_archive(db, hashtag=["cmgrchat"])  # (the option is hashtags=)


def test_the_session_summary_is_a_step_of_its_own(db):
    b = ChatBuilder(WEEK1)
    standard_chat(b)
    b.add("m1", "hello #cmgrchat from the fediverse", 10, platform="mastodon")
    b.save(db)
    analyse_archive(db)
    (sid,) = [r[0] for r in rows(db)]
    summary = db.execute("SELECT post_count, platforms, hosts FROM sessions").fetchone()
    assert summary == (23, '["mastodon", "x"]', '["cmgrhost"]')
    ((_, members_),) = sessions.member_rows(db, [sid])
    got = sessions.summarise(members_, ["cmgrhost"])
    assert got == sessions.SessionSummary(posts=23, platforms=["mastodon", "x"], hosts=["cmgrhost"])
    db.execute("UPDATE sessions SET post_count = 0, platforms = NULL, hosts = NULL")
    sessions.write_summaries(db, {sid: got})
    assert db.execute("SELECT post_count, platforms, hosts FROM sessions").fetchone() == summary


def test_a_tagged_reply_from_a_later_session_stays_with_it(db):
    w1, _w2 = two_weeks(db, strays=False)
    b = ChatBuilder(WEEK2)
    back = b.add("person4", "Re last week's Q1 #cmgrchat", 20, reply_to=w1["q1"].id)
    under = b.add("person5", "untagged reply to that", 21, reply_to=back.id, matched=False)
    b.save(db)
    analyse_archive(db)
    s1, s2 = [r[1] for r in rows(db)]
    assert back.id in members(db, s2, "tag") and under.id in members(db, s2, "thread")
    assert back.id not in members(db, s1) and under.id not in members(db, s1)


def test_slug_date_is_local_when_the_zone_is_known_and_unique(db):
    b = ChatBuilder(WEEK1)
    for i in range(10):
        b.add(f"p{i}", f"first #lchat {i}", i)
    for i in range(10):
        b.add(f"p{i}", f"second sitting #lchat {i}", 180 + i)
    b.save(db)
    analyse_archive(db)
    assert [r[1] for r in rows(db)] == ["lchat-2026-11-12", "lchat-2026-11-12-2"]
    analyse_archive(db, hashtags=["lchat"], tz="America/New_York")
    got = rows(db)
    assert [r[1] for r in got] == ["lchat-2026-11-11", "lchat-2026-11-11-2"]
    assert [s.timezone for s in queries.list_sessions(db)] == ["America/New_York"] * 2
    with pytest.raises(ChatArchiveError):
        analyse_archive(db, tz="Mars/Olympus")


def test_rerunning_changes_nothing(db):
    two_weeks(db)
    analyse_archive(db)
    before = (rows(db), db.execute("SELECT * FROM session_posts ORDER BY 1, 2").fetchall(),
              db.execute("SELECT * FROM questions ORDER BY id").fetchall())
    again = analyse_archive(db)
    assert again["sessions_created"] == again["sessions_updated"] == again["sessions_deleted"] == 0
    analyse_archive(db, hashtags=["cmgrchat"])  # an explicit re-detection too
    after = (rows(db), db.execute("SELECT * FROM session_posts ORDER BY 1, 2").fetchall(),
             db.execute("SELECT * FROM questions ORDER BY id").fetchall())
    assert after == before


def test_importing_more_posts_updates_sessions_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "FULL_RATIO", 100.0)  # stay incremental however much arrives
    b = ChatBuilder(WEEK1)
    w1 = standard_chat(b, questions=4)
    everything = list(b.posts)
    first = [p for p in b.posts if p.created_at < at(WEEK1, 25)]
    b2 = ChatBuilder(WEEK2)
    standard_chat(b2)
    everything += b2.posts
    rest = [p for p in everything if p not in first]
    db = open_db(tmp_path / "inc.db", create=True)
    save_posts(db, first)
    analyse_archive(db)
    (sid, slug, *_rest), = rows(db)
    save_posts(db, rest)
    result = analyse_archive(db)
    assert not result["full"] and result["sessions_created"] == 1
    got = rows(db)
    assert got[0][:2] == (sid, slug) and got[0][4] == w1["a4.5"].created_at
    assert len(got) == 2
    full = open_db(tmp_path / "full.db", create=True)
    save_posts(full, everything)
    analyse_archive(full)
    assert [r[1:] for r in rows(full)] == [r[1:] for r in got]
    for r in got:
        assert members(db, r[1]) == members(full, r[1])
    q = "SELECT s.slug, q.number, q.post_id FROM questions q JOIN sessions s ON s.id = q.session_id ORDER BY 1, 2"
    assert db.execute(q).fetchall() == full.execute(q).fetchall()
    a = "SELECT id, answer_to_id IS NOT NULL FROM posts ORDER BY id"
    assert db.execute(a).fetchall() == full.execute(a).fetchall()


def test_incremental_membership_equals_full_on_a_random_chat(tmp_path, monkeypatch):
    import random

    rng = random.Random(11)
    posts = []
    for s, start in enumerate((WEEK1, WEEK2, "2026-11-26T01:00:00Z")):
        for i in range(60):
            minute = rng.uniform(-30, 80) if i % 10 else rng.uniform(-600, 3000)
            tags = rng.choice([" #rchat", " #rchat", " #rchat #other", ""])
            parent = rng.choice(posts).id if posts and rng.random() < 0.55 else None
            posts.append(post(f"u{rng.randint(0, 15)}", f"Q{i % 4 + 1}: x{tags}" if i % 15 == 0 else f"A{i % 4 + 1}: y{tags}",
                              at(start, minute), id=f"s{s}p{i}", reply_to=parent, matched=bool(tags) or rng.random() < 0.3))
    full = open_db(tmp_path / "full.db", create=True)
    save_posts(full, posts)
    assert analyse_archive(full)["full"]
    monkeypatch.setattr(threads, "FULL_RATIO", 100.0)
    inc = open_db(tmp_path / "inc.db", create=True)
    order = posts[:]
    rng.shuffle(order)
    for i in range(0, len(order), 25):
        save_posts(inc, order[i : i + 25])
        assert not analyse_archive(inc)["full"]
    q = """SELECT s.slug, sp.post_id, sp.via FROM session_posts sp JOIN sessions s ON s.id = sp.session_id
           ORDER BY 1, 2"""
    assert inc.execute(q).fetchall() == full.execute(q).fetchall()
    assert len({r[0] for r in full.execute(q)}) >= 2
    assert any(r[2] == "thread" for r in full.execute(q))
    c = """SELECT c.id, s.slug, c.size, c.depth, c.participants FROM conversations c
           LEFT JOIN sessions s ON s.id = c.session_id ORDER BY c.id"""
    assert inc.execute(c).fetchall() == full.execute(c).fetchall()
    a = "SELECT id, conversation_id, question_id IS NOT NULL, answer_to_id IS NOT NULL FROM posts ORDER BY id"
    assert inc.execute(a).fetchall() == full.execute(a).fetchall()


def test_posts_bridging_a_gap_merge_two_sessions_keeping_the_older_id(db, monkeypatch):
    monkeypatch.setattr(threads, "FULL_RATIO", 100.0)
    b = ChatBuilder(WEEK1)
    for i in range(10):
        b.add(f"p{i}", f"part one #mchat {i}", i)
    for i in range(10):
        b.add(f"p{i}", f"part two #mchat {i}", 60 + i)
    b.save(db)
    analyse_archive(db)
    first, second = rows(db)
    for m in (20, 30, 40, 50):
        b.add("bridge", f"still here #mchat {m}", m)
    b.save(db)
    result = analyse_archive(db)
    (merged,) = rows(db)
    assert merged[0] == first[0] and merged[6] == 24
    assert result["sessions_deleted"] == 1
    assert db.execute("SELECT count(*) FROM session_posts WHERE session_id = ?", [second[0]]).fetchone()[0] == 0


# --------------------------------------------------------------------------
# Explicit windows


def add(db, **kw):
    with transaction(db):
        sid = sessions.add_session(db, **kw)
        analyse_archive(db, refresh_sessions=[sid])
    return sid


def test_manual_session_takes_over_and_survives_detection(db):
    w1, _ = two_weeks(db)
    analyse_archive(db)
    detected_id = rows(db)[0][0]
    sid = add(db, hashtag="#cmgrchat", start=at(WEEK1, 2), end=at(WEEK1, 20), hosts=["cmgrhost"], title="Onboarding")
    assert sid == detected_id
    s = queries.get_session(db, sid)
    assert (s.source, s.title, s.hosts) == ("manual", "Onboarding", ["cmgrhost"])
    assert w1["welcome"].id not in members(db, s.slug)  # outside the explicit window
    assert w1["q2"].id in members(db, s.slug) and w1["q3"].id not in members(db, s.slug)
    analyse_archive(db, hashtags=["cmgrchat"])
    assert queries.get_session(db, sid).source == "manual"
    assert len(rows(db)) == 2
    # the same command again is idempotent
    add(db, hashtag="cmgrchat", start=at(WEEK1, 2), end=at(WEEK1, 20), hosts=["cmgrhost"], title="Onboarding")
    assert len(rows(db)) == 2
    with pytest.raises(ChatArchiveError):
        sessions.add_session(db, hashtag="cmgrchat", start=at(WEEK1, 20), end=at(WEEK1, 2))
    with pytest.raises(ChatArchiveError):
        sessions.add_session(db, hashtag="not a tag!", start=at(WEEK1, 2), end=at(WEEK1, 20))


def test_get_session_by_id_or_slug(db):
    two_weeks(db)
    analyse_archive(db)
    s = rows(db)[1]
    assert queries.get_session(db, s[1]).id == s[0]
    assert queries.get_session(db, str(s[0])).slug == s[1]
    assert queries.get_session(db, s[0]).slug == s[1]
    with pytest.raises(NotFoundError):
        queries.get_session(db, "nope-2020-01-01")


# --------------------------------------------------------------------------
# Schedules and daylight saving


def test_occurrences_follow_wall_clock_across_both_dst_changes():
    fall = sessions.occurrences("wed 20:00", "America/New_York", timedelta(hours=1),
                                "2026-10-28T12:00:00Z", "2026-11-04T12:00:00Z")
    assert [(str(d), s) for d, s, _ in fall] == [
        ("2026-10-28", "2026-10-29T00:00:00.000Z"),  # EDT, UTC-4
        ("2026-11-04", "2026-11-05T01:00:00.000Z"),  # EST, UTC-5 (DST ended Nov 1)
    ]
    spring = sessions.occurrences("Wednesday 8pm", "America/New_York", timedelta(minutes=90),
                                  "2026-03-04T12:00:00Z", "2026-03-11T12:00:00Z")
    assert [(s, e) for _, s, e in spring] == [
        ("2026-03-05T01:00:00.000Z", "2026-03-05T02:30:00.000Z"),
        ("2026-03-12T00:00:00.000Z", "2026-03-12T01:30:00.000Z"),  # DST began Mar 8
    ]
    for bad in ("someday 20:00", "wed 25:00", "wed", "wed 13pm"):
        with pytest.raises(ChatArchiveError):
            sessions.parse_every(bad)


def dst_weeks(db):
    """A weekly chat at 20:00 New York time on four Wednesdays around the
    end of DST (Nov 1 2026): 00:00Z before, 01:00Z after."""
    posts = {}
    for day, utc in (("2026-10-22", "00"), ("2026-10-29", "00"), ("2026-11-05", "01"), ("2026-11-12", "01")):
        start = f"{day}T{utc}:00:00Z"
        b = ChatBuilder(start)
        posts[day] = [b.add(f"p{i}", f"A{i}: answer #dstchat", 5 + i * 4) for i in range(12)]
        posts[day].append(b.add("early", "getting ready #dstchat", -10))  # inside --before 15m
        posts[day].append(b.add("late", "still talking #dstchat", 60 + 40))  # past --after 30m
        b.save(db)
    return posts


def test_schedule_makes_one_session_per_occurrence_across_dst(db, runner, db_path):
    posts = dst_weeks(db)
    r = runner.invoke(cli, ["sessions", "schedule", str(db_path), "--hashtag", "dstchat", "--every", "wed 20:00",
                            "--tz", "America/New_York", "--duration", "1h", "--before", "15m", "--after", "30m",
                            "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    got = [(s["slug"], s["start"], s["posts"], s["source"]) for s in out["sessions"]]
    assert got == [
        ("dstchat-2026-10-21", "2026-10-22T00:00:00.000Z", 13, "scheduled"),
        ("dstchat-2026-10-28", "2026-10-29T00:00:00.000Z", 13, "scheduled"),
        ("dstchat-2026-11-04", "2026-11-05T01:00:00.000Z", 13, "scheduled"),
        ("dstchat-2026-11-11", "2026-11-12T01:00:00.000Z", 13, "scheduled"),
    ]
    db2 = open_db(db_path, create=True)
    for day, slug in zip(posts, [g[0] for g in got]):
        m = members(db2, slug)
        assert posts[day][-2].id in m and posts[day][-1].id not in m
    # a schedule with no posts at all makes nothing; re-running changes nothing
    r = runner.invoke(cli, ["sessions", "schedule", str(db_path), "--hashtag", "dstchat", "--every", "wed 20:00",
                            "--tz", "America/New_York", "--duration", "1h", "--before", "15m", "--after", "30m"])
    assert r.exit_code == 0, r.output
    assert len(rows(open_db(db_path, create=True))) == 4


def test_schedule_is_applied_to_later_imports(db):
    dst_weeks(db)
    with transaction(db):
        sessions.set_schedule(db, "dstchat", "wed 20:00", "America/New_York", timedelta(hours=1),
                              timedelta(minutes=15), timedelta(minutes=30))
        analyse_archive(db, hashtags=["dstchat"])
    assert len(rows(db)) == 4
    b = ChatBuilder("2026-11-19T01:00:00Z")
    for i in range(3):  # fewer than --min-posts: a schedule needs only one post
        b.add(f"p{i}", f"A1: next week #dstchat {i}", 10 + i)
    b.save(db)
    result = analyse_archive(db)
    assert not result["full"]
    last = rows(db)[-1]
    assert (last[1], last[5], last[6]) == ("dstchat-2026-11-18", "scheduled", 3)


# --------------------------------------------------------------------------
# Which hashtags are chats


def test_incidental_and_twin_hashtags_get_no_sessions_of_their_own(db):
    b = ChatBuilder(WEEK1)
    for i in range(40):
        extra = " #edtech" if i % 2 else ""
        b.add(f"p{i % 9}", f"A1: thoughts {i} #edchat #teachers{extra}", i)
    b.save(db)
    analyse_archive(db)
    # a side topic of the same hour, on its own posts: too small a share
    for i in range(10):  # 10 posts among the 37 of #edchat in minutes 0-36: 21%
        b.add(f"q{i}", f"unrelated {i} #sidetopic", i * 4)
    b.save(db)
    analyse_archive(db)
    # #teachers is on every post (a twin): the alphabetically first tag stays
    assert [r[2] for r in rows(db)] == ["edchat"]
    # naming a hashtag makes it a chat, and stops the guessing
    analyse_archive(db, hashtags=["edtech"])
    assert sorted(r[2] for r in rows(db)) == ["edchat", "edtech"]
    b2 = ChatBuilder(WEEK2)
    for i in range(20):
        b2.add(f"p{i}", f"another chat #newchat {i}", i)
    b2.save(db)
    analyse_archive(db)
    assert "newchat" not in {r[2] for r in rows(db)}


# --------------------------------------------------------------------------
# CLI


def test_cli_detect_list_add_remove(db, runner, db_path):
    two_weeks(db)
    r = runner.invoke(cli, ["sessions", "detect", str(db_path), "--hashtag", "cmgrchat", "--tz", "America/New_York",
                            "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert [s["slug"] for s in out["sessions"]] == ["cmgrchat-2026-11-11", "cmgrchat-2026-11-18"]
    assert out["analysis"]["summary"].startswith("Analysis:")
    r = runner.invoke(cli, ["sessions", "list", str(db_path)])
    assert r.exit_code == 0
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[:4] == ["cmgrchat-2026-11-11", at(WEEK1), "#cmgrchat", "22"]
    r = runner.invoke(cli, ["sessions", "add", str(db_path), "--hashtag", "cmgrchat", "--start", "2026-11-25T20:00",
                            "--duration", "1h", "--tz", "America/New_York", "--host", "guest", "--json"])
    assert r.exit_code == 0, r.output
    added = json.loads(r.output)
    assert (added["slug"], added["start"], added["end"], added["hosts"]) == (
        "cmgrchat-2026-11-25", "2026-11-26T01:00:00.000Z", "2026-11-26T02:00:00.000Z", ["guest"])
    r = runner.invoke(cli, ["sessions", "detect", str(db_path), "--hashtag", "cmgrchatt"])
    assert r.exit_code == 0 and "Warning: no post carries #cmgrchatt" in r.output
    r = runner.invoke(cli, ["sessions", "remove", str(db_path), "cmgrchat-2026-11-25"])
    assert r.exit_code == 0 and "Removed session cmgrchat-2026-11-25" in r.output
    r = runner.invoke(cli, ["sessions", "list", str(db_path), "--hashtag", "cmgrchat", "--json"])
    assert [s["slug"] for s in json.loads(r.output)] == ["cmgrchat-2026-11-11", "cmgrchat-2026-11-18"]


@pytest.mark.parametrize("args, code, message", [
    (["sessions", "detect", "{db}", "--gap", "soon"], 2, "Invalid duration"),
    (["sessions", "detect", "{db}", "--tz", "Nowhere/City"], 1, "Unknown time zone"),
    (["sessions", "detect", "{db}", "--question-pattern", "Q(\\d+)"], 1, "named group n"),
    (["sessions", "detect", "{db}", "--question-pattern", "Q(?P<n>"], 1, "Invalid --question-pattern"),
    (["sessions", "add", "{db}", "--hashtag", "x", "--start", "2026-01-01T20:00"], 2, "exactly one of"),
    (["sessions", "add", "{db}", "--hashtag", "x", "--start", "tomorrow", "--duration", "1h"], 1, "Invalid time"),
    (["sessions", "schedule", "{db}", "--hashtag", "x", "--every", "funday 9", "--tz", "UTC", "--duration", "1h"],
     1, "Invalid --every"),
    (["sessions", "remove", "{db}", "no-such-session"], 1, "No session"),
    (["show", "{db}", "no-such-session"], 1, "No session"),
])
def test_cli_errors_are_one_line(runner, db_path, args, code, message):
    open_db(db_path, create=True)
    r = runner.invoke(cli, [a.replace("{db}", str(db_path)) for a in args])
    assert r.exit_code == code, r.output
    assert message in r.output
    assert "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.startswith("Error")]) == 1


def test_cli_refuses_a_file_that_is_not_a_database(runner, tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("this is not sqlite\n" * 100)
    r = runner.invoke(cli, ["sessions", "list", str(bad)])
    assert r.exit_code == 1 and "cannot open" in r.output


# --------------------------------------------------------------------------
# Real files and the bundled sample


@needs_shared_fixtures()
def test_dlfteach_real_chat_file(db):
    path = SHARED_FIXTURES / "twitter-v1" / "dlfteach.jsonl"
    results = import_files(db, [str(path)])
    assert results[0].error is None and results[0].posts == 4
    # read independently: posts tagged #dlfteach, by time
    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert len(raw) == 4
    analyse_archive(db)
    assert rows(db) == []  # four posts over a week: no sitting of 10
    analyse_archive(db, hashtags=["DLFteach"], min_posts=2)
    (s,) = rows(db)
    # the core: 2018-04-03 18:09:17 and the retweet at 18:10:57; the next post
    # comes 61 min later, past the gap but within the 2-hour tail
    assert (s[3], s[4], s[6]) == ("2018-04-03T18:09:17.000Z", "2018-04-03T18:10:57.000Z", 3)
    assert db.execute("SELECT window_end FROM sessions").fetchone()[0] == "2018-04-03T19:11:32.000Z"
    analyse_archive(db, hashtags=["dlfteach"], gap=timedelta(minutes=90), min_posts=3)
    (s,) = rows(db)
    assert (s[4], s[6]) == ("2018-04-03T19:11:32.000Z", 3)
    assert db.execute("SELECT count(*) FROM questions").fetchone()[0] == 0  # no Q1/A1 in this chat


@needs_shared_fixtures()
def test_brexit_search_file_guesses_one_hashtag(db):
    path = SHARED_FIXTURES / "twarc2" / "brexit.jsonl"
    import_files(db, [str(path)])
    # read independently: the search results (data, not includes) tagged #brexit
    times = []
    for line in path.read_text().splitlines():
        page = json.loads(line)
        for t in page.get("data", []):
            tags = {h["tag"].lower() for h in (t.get("entities") or {}).get("hashtags", [])}
            if "brexit" in tags:
                times.append(t["created_at"])
    assert len(times) > 40
    analyse_archive(db)
    got = rows(db)
    # #BorisJohnson & co. ride along on a minority of posts: no sessions of their own
    assert [(r[2], r[3], r[4]) for r in got] == [("Brexit", min(times), max(times))]


def test_bundled_sample_chat(db):
    from chatarchive.demo import sample_files

    files = sample_files()
    if len(files) < 3:
        pytest.skip("the bundled sample is not complete in this tree")
    import_files(db, [str(f) for f in files])
    analyse_archive(db, tz="America/New_York")
    got = queries.list_sessions(db)
    assert [s.slug for s in got] == ["samplechat-2026-11-11", "samplechat-2026-11-18"]
    for s in got:
        assert s.platforms == ["bluesky", "mastodon", "x"] and s.questions == 5
        assert len(s.hosts) == 3  # the host's account on each platform


# --------------------------------------------------------------------------
# sessions add again, forget, plurals (issue 10, item 11)


def test_add_again_without_host_keeps_the_hosts_and_prints_local_time(db, runner, db_path):
    two_weeks(db)
    base = ["sessions", "add", str(db_path), "--hashtag", "cmgrchat", "--start", "2026-11-11T20:00",
            "--duration", "1h", "--tz", "America/New_York"]
    r = runner.invoke(cli, base + ["--host", "cmgrhost", "--host", "@cohost"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == ("Session cmgrchat-2026-11-11 (#cmgrchat, manual): Wed 2026-11-11 20:00–21:00 "
                                "America/New_York, 22 posts, hosts @cmgrhost, @cohost")
    r = runner.invoke(cli, base + ["--title", "Onboarding", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got["configured_hosts"] == ["cmgrhost", "cohost"] and got["title"] == "Onboarding"
    r = runner.invoke(cli, base + ["--host", "guest", "--json"])
    assert json.loads(r.output)["configured_hosts"] == ["guest"]  # --host replaces them
    assert json.loads(r.output)["title"] == "Onboarding"
    # without --tz the chat's zone (remembered by the first add) is used
    r = runner.invoke(cli, ["sessions", "add", str(db_path), "--hashtag", "cmgrchat", "--start", "2026-11-19T01:00Z",
                            "--duration", "90m"])
    assert r.exit_code == 0, r.output
    assert "Wed 2026-11-18 20:00–21:30 America/New_York" in r.output
    # and with no zone at all, UTC says so
    r = runner.invoke(cli, ["sessions", "add", str(db_path), "--hashtag", "otherchat", "--start", "2026-11-30T23:30",
                            "--duration", "1h"])
    assert r.exit_code == 0, r.output
    assert "Mon 2026-11-30 23:30–Tue 2026-12-01 00:30 UTC, 0 posts" in r.output


def test_forget_undoes_a_mistyped_hashtag(db, runner, db_path):
    two_weeks(db)
    r = runner.invoke(cli, ["sessions", "detect", str(db_path), "--hashtag", "cmgrchatt"])
    assert r.exit_code == 0 and "no post carries #cmgrchatt" in r.output
    # while it is the only named chat, nothing else is analysed
    assert rows(open_db(db_path)) == []
    r = runner.invoke(cli, ["sessions", "forget", str(db_path), "--hashtag", "#CMGRCHATT", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["hashtag"], out["removed"], out["kept"], out["guessing"]) == ("cmgrchatt", [], [], True)
    db2 = open_db(db_path)
    assert db2.execute("SELECT count(*) FROM chats WHERE hashtag = 'cmgrchatt'").fetchone()[0] == 0
    # back to guessing: the real chat's sessions are found again
    assert [r[1] for r in rows(db2)] == ["cmgrchat-2026-11-12", "cmgrchat-2026-11-19"]
    r = runner.invoke(cli, ["sessions", "forget", str(db_path), "--hashtag", "cmgrchatt"])
    assert r.exit_code == 1 and "#cmgrchatt is not a remembered chat hashtag (remembered: none)" in r.output


def test_forget_a_chat_removes_its_detected_sessions_and_keeps_manual_ones(db, runner, db_path):
    two_weeks(db)
    b = ChatBuilder("2026-11-13T15:00:00Z")
    for i in range(12):
        b.add(f"p{i}", f"another chat #otherchat {i}", i)
    b.save(db)
    runner.invoke(cli, ["sessions", "detect", str(db_path), "--hashtag", "cmgrchat", "--hashtag", "otherchat",
                        "--tz", "America/New_York"])
    r = runner.invoke(cli, ["sessions", "add", str(db_path), "--hashtag", "cmgrchat", "--start", "2026-11-25T20:00",
                            "--duration", "1h"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["sessions", "forget", str(db_path), "--hashtag", "cmgrchat"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "Forgot #cmgrchat: its remembered options and schedule are gone."
    assert lines[1] == "Removed 2 detected sessions (cmgrchat-2026-11-11, cmgrchat-2026-11-18)."
    assert lines[2].startswith("Kept 1 manual session (cmgrchat-2026-11-25): remove with:")
    assert lines[3].startswith("Analysis: 2 sessions;")
    # #otherchat is still named, so #cmgrchat is not guessed back
    assert sorted(r[1] for r in rows(open_db(db_path))) == ["cmgrchat-2026-11-25", "otherchat-2026-11-13"]


def test_messages_say_1_thread_and_1_session(db, runner, db_path):
    b = ChatBuilder(WEEK1)
    for i in range(10):
        b.add(f"p{i}", f"hello #onechat {i}", i)
    b.add("zed", "a reply", 11, reply_to=b.posts[0].id, matched=False)
    b.save(db)
    r = runner.invoke(cli, ["sessions", "detect", str(db_path)])
    assert r.exit_code == 0, r.output
    assert "Analysis: 1 session (1 new); 1 thread; 0 questions, 0 answers" in r.output
    r = runner.invoke(cli, ["sessions", "schedule", str(db_path), "--hashtag", "onechat", "--every", "wed 20:00",
                            "--tz", "America/New_York", "--duration", "1h"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("1 scheduled session of #onechat.")


def test_a_very_long_hashtag_keeps_the_date_in_its_slug(db):
    tag = "a" * 90 + "chat"
    b = ChatBuilder(WEEK1)
    for i in range(10):
        b.add(f"p{i}", f"long #{tag} {i}", i)
    for i in range(10):
        b.add(f"p{i}", f"again #{tag} {i}", 180 + i)
    b.save(db)
    analyse_archive(db)
    slugs = [r[1] for r in rows(db)]
    assert slugs == ["a" * 60 + "-2026-11-12", "a" * 60 + "-2026-11-12-2"]
    assert all(len(s) <= 80 for s in slugs)
