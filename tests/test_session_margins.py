"""Sessions with a lead-in and a tail: the core (the busy stretch, the session's time), the same day's
announcements, reminders and greetings before it, late answers and wrap-ups after it (issue 10, item 1)."""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "analysis"))
from builders import ChatBuilder, at, post

from chatarchive.analysis import margins, sessions, threads
from chatarchive.analysis.margins import Margins, Walls
from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.analysis.stats import session_stats
from chatarchive.archive import queries
from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import save_posts, transaction
from chatarchive.cli import cli

HERE = Path(__file__).parent / "fixtures" / "analysis"
NY = "America/New_York"
MIN = 60_000


def session_rows(db):
    return db.execute('SELECT slug, start, "end", window_start, window_end, post_count, source FROM sessions '
                      "ORDER BY start").fetchall()


def member_ids(db, slug):
    return {r[0] for r in db.execute(
        "SELECT sp.post_id FROM session_posts sp JOIN sessions s ON s.id = sp.session_id WHERE s.slug = ?", [slug])}


# --------------------------------------------------------------------------
# A monthly chat at 1 PM New York time (twarc2 pages of our own making)


def monthly(db, tz=NY):
    results = import_files(db, [str(HERE / "monthly-1pm.jsonl")])
    assert results[0].error is None and results[0].added == 53
    analyse_archive(db, hashtags=["ptchat"], tz=tz)


def test_monthly_chat_keeps_its_morning_announcements_reminder_and_stragglers(db):
    monthly(db)
    ((slug, start, end, w0, w1, count, source),) = session_rows(db)
    # the core is the busy stretch: from the first greetings (12:52 New York
    # time) to the last answer; the 12:35 reminder is before it
    assert (slug, start, end, source) == ("ptchat-2026-11-18", "2026-11-18T17:52:00.000Z",
                                          "2026-11-18T18:54:36.000Z", "detected")
    # the window: the 8:05 AM announcement to the 3:05 PM wrap-up
    assert (w0, w1) == ("2026-11-18T13:05:00.000Z", "2026-11-18T20:05:00.000Z")
    texts = dict(db.execute("SELECT text, id FROM posts"))
    members = member_ids(db, slug)
    for text in ("We're chatting today at 1 PM Eastern: onboarding new volunteers. Join us! #ptchat",
                 "Top of the hour at 1 PM ET, bring a friend #ptchat", "25 minutes to go! #ptchat",
                 "Late to the party! A4: we send a handbook #ptchat",
                 "Thanks all for a great chat! Transcript tomorrow #ptchat"):
        assert texts[text] in members, text
    # the evening before and the next day are not this sitting
    assert texts["See you tomorrow at 1 PM Eastern for #ptchat!"] not in members
    assert texts["Loved yesterday's #ptchat"] not in members
    assert count == len(members) == 51 == session_stats(db, slug)["posts"]
    # "Before the chat": the members before the core's start
    before = {r[0] for r in db.execute(
        """SELECT p.text FROM session_posts sp JOIN sessions s ON s.id = sp.session_id JOIN posts p ON p.id = sp.post_id
           WHERE s.slug = ? AND p.created_at < s.start""", [slug])}
    assert len(before) == 5 and "25 minutes to go! #ptchat" in before
    # the late answer keeps its number; the teaser is no question
    late = texts["Late to the party! A4: we send a handbook #ptchat"]
    assert db.execute("SELECT q.number FROM posts p JOIN questions q ON q.id = p.answer_to_id WHERE p.id = ?",
                      [late]).fetchone() == (4,)
    assert [r[0] for r in db.execute("SELECT number FROM questions ORDER BY number")] == [1, 2, 3, 4]


def test_lead_and_tail_are_options_remembered_per_chat(db, db_path, runner):
    monthly(db)
    r = runner.invoke(cli, ["sessions", "detect", str(db_path), "--hashtag", "ptchat", "--lead", "3h", "--tail", "30m",
                            "--json"])
    assert r.exit_code == 0, r.output
    (s,) = json.loads(r.output)["sessions"]
    # 3 h before 12:52: the 10:00 announcement and the 10:20 retweet, not 8:05 or 9:10;
    # 30 min after the last answer: none of the stragglers
    assert (s["window_start"], s["window_end"], s["posts"]) == (
        "2026-11-18T15:00:00.000Z", "2026-11-18T18:54:36.000Z", 51 - 2 - 3)
    db2 = open_db(db_path)
    assert db2.execute("SELECT lead_seconds, tail_seconds FROM chats WHERE hashtag = 'ptchat'").fetchone() == (10800, 1800)
    # remembered: a later import is analysed the same way
    save_posts(db2, [post("late", "one more A1 #ptchat", "2026-11-18T18:30:00.000Z")])
    assert not analyse_archive(db2)["full"]
    assert session_rows(db2)[0][3:6] == ("2026-11-18T15:00:00.000Z", "2026-11-18T18:54:36.000Z", 47)
    # 0 turns the lead-in and tail off: the session is its gap group (the reminder is in it)
    analyse_archive(db2, hashtags=["ptchat"], lead=timedelta(0), tail=timedelta(0))
    ((_, start, end, w0, w1, count, _),) = session_rows(db2)
    assert (start, w0, w1, count) == ("2026-11-18T17:52:00.000Z", "2026-11-18T17:35:00.000Z", end, 47 - 2)
    r = runner.invoke(cli, ["sessions", "detect", str(db_path), "--lead", "25h"])
    assert r.exit_code == 1 and "--lead must be between 0 and 24h" in r.output


def test_the_lead_in_never_reaches_into_the_previous_local_day(db):
    # a 4:30 AM chat (New York): a 6-hour lead-in would reach 10:30 PM the day before
    b = ChatBuilder("2026-11-18T09:30:00Z")  # 04:30 EST
    for i in range(12):
        b.add(f"p{i}", f"early birds #dawnchat {i}", i * 4)
    evening = b.add("host", "Tomorrow at dawn! #dawnchat", -60 * 5)  # 23:30 the day before, local
    night = b.add("host", "Couldn't sleep, see you at 4:30 #dawnchat", -60 * 3)  # 01:30 the same day, local
    b.save(db)
    analyse_archive(db, hashtags=["dawnchat"], tz=NY)
    (slug,) = [r[0] for r in session_rows(db)]
    assert night.id in member_ids(db, slug) and evening.id not in member_ids(db, slug)
    # without a zone there is no local day: the lead-in's length alone bounds it
    analyse_archive(db, hashtags=["dawnchat"], tz="")
    (slug,) = [r[0] for r in session_rows(db)]
    assert {night.id, evening.id} <= member_ids(db, slug)


# --------------------------------------------------------------------------
# A weekly free-form chat on Mastodon, no Q/A markers


def test_free_form_chat_greetings_burst_and_stragglers_join_the_session(db):
    results = import_files(db, [str(HERE / "weekly-freeform.json")])
    assert results[0].error is None and results[0].added == 148
    analyse_archive(db)  # guessing which hashtags are chats, no options
    got = session_rows(db)
    # a plain gap splitter makes four sessions (the 12 greetings an hour early
    # are a group of their own) and leaves the stragglers out
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in got] == [
        ("fedichat-2026-11-19", "2026-11-19T19:00:00.000Z", "2026-11-19T17:40:00.000Z", "2026-11-19T21:39:00.000Z", 74),
        ("fedichat-2026-11-26", "2026-11-26T19:00:00.000Z", "2026-11-26T17:40:00.000Z", "2026-11-26T21:39:00.000Z", 74),
    ]
    assert db.execute("SELECT count(*) FROM questions").fetchone()[0] == 0


def test_two_sittings_of_a_similar_size_the_same_day_stay_two_and_split_between_them(db):
    b = ChatBuilder("2026-11-18T14:00:00Z")
    for i in range(30):
        b.add(f"a{i}", f"morning sitting #twochat {i}", i)
    mid_early = b.add("x", "still thinking about this morning #twochat", 29 + 40 + 10)  # nearer the first
    mid_late = b.add("y", "who's here for the afternoon? #twochat", 240 - 50)  # nearer the second
    for i in range(20):
        b.add(f"b{i}", f"afternoon sitting #twochat {i}", 240 + i)
    b.save(db)
    analyse_archive(db)
    (_, _, _, w11, n1), (_, _, w02, _, n2) = [(r[1], r[2], r[3], r[4], r[5]) for r in session_rows(db)]
    assert (n1, n2) == (31, 21)
    assert w11 == mid_early.created_at and w02 == mid_late.created_at and w11 < w02
    slugs = [r[0] for r in session_rows(db)]
    assert mid_early.id in member_ids(db, slugs[0]) and mid_late.id in member_ids(db, slugs[1])


def test_detection_keeps_out_of_manual_sessions(db):
    b = ChatBuilder("2026-11-18T18:00:00Z")
    for i in range(20):
        b.add(f"p{i}", f"the chat #wallchat {i}", i * 2)
    inside = b.add("host", "a guest session before #wallchat", -90)
    outside = b.add("host", "and a reminder #wallchat", -30)
    b.save(db)
    with transaction(db):
        sid = sessions.add_session(db, "wallchat", at("2026-11-18T18:00:00Z", -120), at("2026-11-18T18:00:00Z", -60))
        analyse_archive(db, refresh_sessions=[sid])
    got = {r[6]: r for r in session_rows(db)}
    assert set(got) == {"manual", "detected"}
    detected = got["detected"][0]
    assert outside.id in member_ids(db, detected) and inside.id not in member_ids(db, detected)
    assert inside.id in member_ids(db, got["manual"][0])
    assert got["detected"][3] == outside.created_at  # the window stops at the manual session's


# --------------------------------------------------------------------------
# The shaping itself (margins.shape, pure)


def shaped(minutes, groups, **kw):
    times = [round(m * MIN) for m in minutes]
    m = Margins(min_posts=kw.pop("min_posts", 3), lead=kw.pop("lead", 360 * MIN), tail=kw.pop("tail", 120 * MIN),
                zone=kw.pop("zone", None))
    return [(s.start / MIN, s.end / MIN, s.window_start / MIN, s.window_end / MIN)
            for s in margins.shape(times, groups, m, **kw)]


def test_peeling_keeps_the_busy_stretch_and_at_least_half_the_group():
    # a reminder 25 minutes early and a straggler 40 minutes late, around a busy 20-post hour
    busy = [i * 3 for i in range(20)]
    minutes = [-25, *busy, 57 + 40]
    assert shaped(minutes, [(0, 21)]) == [(0, 57, -25, 97)]
    # a slow chat (a post every 20 minutes) is not peeled: its spacing is its pace
    slow = [i * 20 for i in range(6)]
    assert shaped(slow, [(0, 5)]) == [(0, 100, 0, 100)]
    # stragglers close to each other (a late answer, then the wrap-up 3 minutes
    # later) are still not the busy stretch
    assert shaped([*busy, 97, 119, 122], [(0, 22)]) == [(0, 57, 0, 122)]
    # a lull inside the chat does not cut it: both halves are busy
    halves = list(range(20)) + [32 + i for i in range(15)]
    assert shaped(halves, [(0, 34)]) == [(0, 46, 0, 46)]
    # never below min_posts (nor half the group): then the core is the whole group
    assert shaped(minutes, [(0, 21)], min_posts=21) == [(-25, 97, -25, 97)]


def test_satellites_join_only_a_much_bigger_neighbour_within_reach():
    big = [100 + i for i in range(40)]
    small = [10 + i for i in range(9)]  # 9 < 40 / 4, 90 minutes early
    assert shaped(small + big, [(0, 8), (9, 48)]) == [(100, 139, 10, 139)]
    # the same group 7 hours early is out of the lead-in's reach: a session of its own
    far = [-320 + i for i in range(9)]
    assert len(shaped(far + big, [(0, 8), (9, 48)])) == 2
    # a group of 12 beside 40 is not a satellite
    twelve = [10 + i for i in range(12)]
    assert len(shaped(twelve + big, [(0, 11), (12, 51)])) == 2


def test_walls_bound_windows_and_drop_groups_that_overlap_them():
    minutes = [0, *[60 + i for i in range(20)], 150]
    walls = Walls([(10 * MIN, 30 * MIN)])
    assert shaped(minutes, [(1, 20)], walls=walls) == [(60, 79, 60, 150)]  # the 0-minute post is behind the wall
    assert shaped(minutes, [(1, 20)], walls=Walls([(70 * MIN, 75 * MIN)])) == []
    w = Walls([(0, 5), (10, 20), (15, 40)])
    assert (w.hit(21, 30), w.hit(41, 50), w.before(45), w.after(9), w.after(41)) == (True, False, 40, 10, None)


def test_the_local_midnight_follows_daylight_saving():
    m = Margins(min_posts=1, lead=0, tail=0, zone=ZoneInfo(NY))
    # 2026-11-01 is the day DST ends in New York: its midnight is 04:00Z, the next day's 05:00Z
    ms = round(datetime(2026, 11, 1, 15, 0, tzinfo=timezone.utc).timestamp() * 1000)
    assert m.midnight(ms) == round(datetime(2026, 11, 1, 4, 0, tzinfo=timezone.utc).timestamp() * 1000)
    ms = round(datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc).timestamp() * 1000)
    assert m.midnight(ms) == round(datetime(2026, 11, 2, 5, 0, tzinfo=timezone.utc).timestamp() * 1000)


# --------------------------------------------------------------------------
# Full and incremental analysis agree, with margins


def test_incremental_detection_with_margins_equals_full(tmp_path, monkeypatch):
    rng = random.Random(5)
    posts = []
    for week, day in enumerate(("2026-11-04", "2026-11-11", "2026-11-18", "2026-11-25")):
        start = f"{day}T18:00:00Z"
        for i in range(rng.randint(25, 60)):
            posts.append(post(f"u{rng.randint(0, 20)}", f"chat {i} #incchat", at(start, rng.uniform(0, 60)),
                              id=f"w{week}c{i}"))
        for i in range(rng.randint(0, 12)):  # announcements, greetings, stragglers, strays
            posts.append(post(f"u{rng.randint(0, 20)}", f"around {i} #incchat", at(start, rng.uniform(-500, 400)),
                              id=f"w{week}m{i}"))
        for i in range(rng.choice([0, 11])):  # sometimes a greetings burst an hour early
            posts.append(post(f"g{i}", f"hello {i} #incchat", at(start, -70 + i / 2), id=f"w{week}g{i}"))
    full = open_db(tmp_path / "full.db", create=True)
    save_posts(full, posts)
    analyse_archive(full, hashtags=["incchat"], tz=NY)
    monkeypatch.setattr(threads, "FULL_RATIO", 100.0)
    inc = open_db(tmp_path / "inc.db", create=True)
    with transaction(inc):
        analyse_archive(inc, hashtags=["incchat"], tz=NY)
    order = posts[:]
    rng.shuffle(order)
    for i in range(0, len(order), 17):
        save_posts(inc, order[i:i + 17])
        assert not analyse_archive(inc)["full"] or i == 0
    q = "SELECT s.slug, s.start, s.\"end\", s.window_start, s.window_end, s.post_count FROM sessions s ORDER BY 2"
    assert inc.execute(q).fetchall() == full.execute(q).fetchall()
    assert len(full.execute(q).fetchall()) == 4
    m = "SELECT s.slug, sp.post_id FROM session_posts sp JOIN sessions s ON s.id = sp.session_id ORDER BY 1, 2"
    assert inc.execute(m).fetchall() == full.execute(m).fetchall()
    # some sessions did gain a lead-in or a tail
    assert any(r[3] < r[1] or r[4] > r[2] for r in full.execute(q))


@pytest.mark.parametrize("tz", [NY, None])
def test_list_show_and_stats_agree_on_the_count(db, tz):
    monthly(db, tz=tz)
    (s,) = queries.list_sessions(db)
    assert s.posts == session_stats(db, s.slug)["posts"] == len(member_ids(db, s.slug))
