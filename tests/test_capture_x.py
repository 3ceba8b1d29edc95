"""Live X capture against a local fake X API v2 (tests/fake_servers.py)."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from itertools import pairwise

import pytest
from fake_servers import FakeX, make_chat, max_in_window, x_id

from chatarchive.archive.schema import open_db
from chatarchive.capture.base import Window
from chatarchive.capture.http import ManualClock, NetworkError, RateLimitError, RetryPolicy
from chatarchive.capture.runner import QuietUI, run_capture
from chatarchive.capture.x import EXPANSIONS, MEDIA_FIELDS, TWEET_FIELDS, USER_FIELDS, XCapture, snowflake_below
from chatarchive.cli import cli

TOKEN = "x-test-bearer-Zq81"
SEARCH = "/2/tweets/search/recent"


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("X_BEARER_TOKEN", "CHATARCHIVE_CONFIG", "MASTODON_TOKEN", "BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"):
        monkeypatch.delenv(var, raising=False)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


@pytest.fixture
def past_chat():
    """A 300-post chat hour that ended two hours ago."""
    start = float(int(time.time()) - 3 * 3600)
    return start, make_chat(300, start)


def tagged_in(posts, start, end):
    return [p for p in posts if p.tags and start <= p.t < end]


def client(srv, clock=None, **kw):
    return XCapture("#edchat", token=TOKEN, api_base=srv.url, clock=clock, **kw)


def capture_cli(runner, db_path, srv, *args, token=TOKEN):
    return runner.invoke(cli, ["capture", str(db_path), "x", "#edchat", "--api-base", srv.url, "--no-analyse", *args],
                         env={"X_BEARER_TOKEN": token} if token else {})


def matched_ids(db):
    return {r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")}


def test_backfill_stores_every_post_with_users_and_parents(runner, db_path, past_chat):
    start, posts = past_chat
    end = start + 3600
    with FakeX(posts, token=TOKEN) as srv:
        result = capture_cli(runner, db_path, srv, "--since", iso(start), "--until", iso(end))
        assert result.exit_code == 0, result.output
        db = open_db(db_path, create=True)
        want = tagged_in(posts, start, end)
        assert matched_ids(db) == {x_id(p) for p in want}
        # the untagged post from before the chat that a tagged post answers
        # arrives through includes.tweets, as context
        pre = posts[0]
        assert db.execute("SELECT matched FROM posts WHERE id = ?", [x_id(pre)]).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM posts WHERE author_handle IS NULL").fetchone()[0] == 0
        replies = [p for p in want if p.reply_to is not None]
        linked = db.execute("SELECT count(*) FROM posts WHERE matched = 1 AND reply_to_id IS NOT NULL").fetchone()[0]
        assert linked == len(replies) > 0
        # hostile text is stored as text, unescaped from X's &amp;/&lt;
        assert db.execute("SELECT count(*) FROM posts WHERE text LIKE '<script>%'").fetchone()[0] == 1
        reqs = srv.requests_to(SEARCH)
        assert len(reqs) <= math.ceil(len(want) / 100) + 1
        first = reqs[0]
        assert first.auth == f"Bearer {TOKEN}"
        assert first.param("query") == "#edchat"
        assert first.param("max_results") == "100"
        assert first.param("start_time") == iso(start) and first.param("end_time") == iso(end)
        # the fields and expansions of sources.md §1.4
        assert set(first.param("tweet.fields").split(",")) >= {
            "author_id", "conversation_id", "created_at", "entities", "in_reply_to_user_id",
            "public_metrics", "referenced_tweets", "note_tweet", "attachments", "lang"}
        assert first.param("tweet.fields") == TWEET_FIELDS
        assert first.param("expansions") == EXPANSIONS
        assert first.param("user.fields") == USER_FIELDS and first.param("media.fields") == MEDIA_FIELDS
        # later pages repeat the identical request plus next_token
        for r in reqs[1:]:
            assert r.param("next_token")
            assert {k: v for k, v in r.params.items() if k != "next_token"} == first.params
        row = db.execute("SELECT platform, query, status, added, requests, pages, state FROM captures").fetchone()
        assert row[:5] == ("x", "#edchat", "ok", len(want) + 1, len(reqs))
        assert json.loads(row[6])["since_id"] == x_id(max(want, key=lambda p: int(x_id(p))))
        pages = db.execute("SELECT count(*), sum(posts) FROM capture_pages WHERE kind = 'search'").fetchone()
        assert pages[0] == len(reqs)


def test_rerun_resumes_with_since_id_and_adds_nothing(runner, db_path, past_chat):
    start, posts = past_chat
    with FakeX(posts, token=TOKEN) as srv:
        args = ("--since", iso(start), "--until", iso(start + 3600))
        assert capture_cli(runner, db_path, srv, *args).exit_code == 0
        n = len(srv.log)
        before = open_db(db_path, create=True).execute("SELECT count(*) FROM posts").fetchone()[0]
        again = capture_cli(runner, db_path, srv, *args, "--json")
        assert again.exit_code == 0, again.output
        out = json.loads(again.stdout)
        assert out["resumed"] is True and out["added"] == 0 and out["requests"] == 1
        req = srv.log[n]
        newest = max(tagged_in(posts, start, start + 3600), key=lambda p: int(x_id(p)))
        assert req.param("since_id") == x_id(newest) and req.param("start_time") is None
        assert open_db(db_path, create=True).execute("SELECT count(*) FROM posts").fetchone()[0] == before


def test_raw_file_is_twarc2_jsonl_that_import_reads_back(runner, tmp_path, past_chat):
    start, posts = past_chat
    raw = tmp_path / "edchat.jsonl"
    captured, imported = tmp_path / "captured.db", tmp_path / "imported.db"
    with FakeX(posts, token=TOKEN) as srv:
        res = capture_cli(runner, captured, srv, "--since", iso(start), "--until", iso(start + 3600), "--raw", str(raw))
        assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in raw.read_text().splitlines()]
    assert len(lines) == math.ceil(len(tagged_in(posts, start, start + 3600)) / 100)
    for line in lines:
        assert set(line) >= {"data", "includes", "meta", "__twarc"}
        assert line["__twarc"]["url"].startswith("http://127.0.0.1:")
        assert datetime.fromisoformat(line["__twarc"]["retrieved_at"]).tzinfo is not None
    res = runner.invoke(cli, ["import", str(imported), str(raw), "--no-analyse", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["files"][0]["format"] == "twarc2"
    cols = "id, platform, url, author_id, author_handle, text, created_at, reply_to_id, reply_to_author, root_id, " \
           "matched, like_count, reply_count, lang"
    a = open_db(captured, create=True).execute(f"SELECT {cols} FROM posts ORDER BY id").fetchall()
    b = open_db(imported, create=True).execute(f"SELECT {cols} FROM posts ORDER BY id").fetchall()
    assert a == b and len(a) > 200
    tags = "SELECT p.post_id, h.tag FROM post_hashtags p JOIN hashtags h ON h.id = p.hashtag_id ORDER BY 1, 2"
    assert open_db(captured, create=True).execute(tags).fetchall() == open_db(imported, create=True).execute(tags).fetchall()


def test_429_waits_until_the_reset_header_then_resumes(db, past_chat):
    start, posts = past_chat
    clock = ManualClock(time.time())
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        srv.fail("429", reset_in=300)  # x-rate-limit-reset: now + 300 (epoch seconds)
        result = run_capture(db, client(srv, clock), Window(dt(start), dt(start + 3600)))
    assert result.status == "ok"
    assert [r.status for r in srv.log[:2]] == [429, 200]
    waited = [s for s in clock.sleeps if s > 100]
    assert len(waited) == 1 and 299 <= waited[0] <= 302
    assert matched_ids(db) == {x_id(p) for p in tagged_in(posts, start, start + 3600)}


def test_429_with_requests_left_is_the_per_second_limit(db, past_chat):
    start, posts = past_chat
    clock = ManualClock(time.time())
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        srv.fail("429", remaining=200, reset_in=900)
        run_capture(db, client(srv, clock), Window(dt(start), dt(start + 3600)))
    assert srv.log[0].status == 429 and srv.log[1].status == 200
    assert clock.sleeps and max(clock.sleeps) < 5  # not the 15-minute window


def test_full_archive_search_paces_one_request_per_second(db):
    start = float(int(time.time()) - 40 * 86400)  # older than recent search reaches
    posts = make_chat(1200, start, seed=3)
    clock = ManualClock(time.time())
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        result = run_capture(db, client(srv, clock, archive=True), Window(dt(start - 3600), dt(start + 3600)))
        reqs = srv.requests_to("/2/tweets/search/all")
    assert result.status == "ok" and result.added > 1000
    assert all(r.status == 200 for r in srv.log) and len(reqs) == 3
    assert reqs[0].param("max_results") == "500"
    gaps = [b.t - a.t for a, b in pairwise(reqs)]
    assert gaps and min(gaps) >= 1.0


def test_recent_search_refuses_a_window_older_than_seven_days(runner, db_path):
    with FakeX([], token=TOKEN) as srv:
        res = capture_cli(runner, db_path, srv, "--since", "2020-01-01", "--duration", "1h")
    assert res.exit_code == 1
    assert "7 days" in res.output and "--archive" in res.output and "Traceback" not in res.output
    assert srv.log == []


def test_5xx_and_dropped_connections_are_retried_with_backoff(db, past_chat):
    start, posts = past_chat
    clock = ManualClock(time.time())
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        srv.fail("503", times=2)
        srv.fail("drop")
        result = run_capture(db, client(srv, clock), Window(dt(start), dt(start + 3600)))
    assert result.status == "ok"
    assert [r.status for r in srv.log[:4]] == [503, 503, None, 200]
    assert clock.sleeps[:3] == [1.0, 2.0, 4.0]
    assert matched_ids(db) == {x_id(p) for p in tagged_in(posts, start, start + 3600)}


def test_a_stalled_response_times_out_and_is_retried(db, past_chat):
    start, posts = past_chat
    with FakeX(posts, token=TOKEN, stall_seconds=1.5) as srv:
        srv.fail("stall")
        t = time.monotonic()
        c = client(srv, timeout=0.3, policy=RetryPolicy(backoff_base=0.01))
        result = run_capture(db, c, Window(dt(start), dt(start + 3600)))
        took = time.monotonic() - t
    assert result.status == "ok" and took < 1.4  # did not wait for the stalled answer
    assert len(matched_ids(db)) == len(tagged_in(posts, start, start + 3600))


@pytest.mark.parametrize("fault,error,attempts", [
    ("503", NetworkError, 7),  # max_retries = 6, then one clear error
    ("drop", NetworkError, 7),
    ("429", RateLimitError, 6),  # max_rate_waits = 5
])
def test_persistent_faults_end_with_one_error_not_a_loop(db, past_chat, fault, error, attempts):
    start, posts = past_chat
    clock = ManualClock(time.time())
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        srv.fail(fault, times=1000, reset_in=60)
        with pytest.raises(error):
            run_capture(db, client(srv, clock), Window(dt(start), dt(start + 3600)))
    assert len(srv.log) == attempts
    row = db.execute("SELECT status FROM captures").fetchone()
    assert row == ("failed",)


def test_a_reset_too_far_away_is_an_error_not_a_wait(db, past_chat):
    start, posts = past_chat
    clock = ManualClock(time.time())
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        srv.fail("429", reset_in=6 * 3600)  # a daily usage cap
        with pytest.raises(RateLimitError, match="try again later"):
            run_capture(db, client(srv, clock), Window(dt(start), dt(start + 3600)))
    assert clock.sleeps == [] and len(srv.log) == 1


def test_bad_token_gives_one_line_naming_the_variable(runner, db_path):
    with FakeX([], token=TOKEN) as srv:
        res = capture_cli(runner, db_path, srv, token="wrong-token-Kp3")
    assert res.exit_code == 1, res.output
    assert "X_BEARER_TOKEN" in res.output and "401" in res.output, res.output
    assert "wrong-token-Kp3" not in res.output and "Traceback" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


def test_missing_token_fails_before_any_request(runner, db_path):
    with FakeX([], token=TOKEN) as srv:
        res = capture_cli(runner, db_path, srv, token=None)
    assert res.exit_code == 1 and "X_BEARER_TOKEN" in res.output
    assert srv.log == []
    assert not db_path.exists()  # no empty archive left behind


def test_403_on_full_archive_explains_the_access_level(runner, db_path):
    with FakeX([], token=TOKEN, archive_forbidden=True) as srv:
        res = capture_cli(runner, db_path, srv, "--archive", "--since", "2020-01-01", "--duration", "1h")
    assert res.exit_code == 1
    assert "403" in res.output and "--archive" in res.output and "X_BEARER_TOKEN" in res.output


def test_an_interrupted_poll_is_finished_by_the_next_run(db, past_chat):
    """Killed after the first page of a three-page poll: the rerun continues
    with the stored next_token (same request), then moves since_id."""
    start, posts = past_chat
    window = Window(dt(start), dt(start + 3600))

    class StopAfterFirstPage(QuietUI):
        def page(self, run, page, stats):
            raise KeyboardInterrupt

    with FakeX(posts, token=TOKEN) as srv:
        first = run_capture(db, client(srv), window, ui=StopAfterFirstPage())
        assert first.status == "interrupted" and first.pages == 1
        state = json.loads(db.execute("SELECT state FROM captures").fetchone()[0])
        assert state["since_id"] is None and state["poll"]["next_token"]
        second = run_capture(db, client(srv), window)
        assert second.resumed and second.status == "ok"
        reqs = srv.requests_to(SEARCH)
        assert reqs[1].param("next_token") == state["poll"]["next_token"]
        assert {k: v for k, v in reqs[1].params.items() if k != "next_token"} == reqs[0].params
        # the rest of the walk, then one catch-up poll from the newest post seen
        assert len(reqs) == math.ceil(len(tagged_in(posts, start, start + 3600)) / 100) + 1
        assert reqs[-1].param("since_id") == state["poll"]["newest_id"]
    assert matched_ids(db) == {x_id(p) for p in tagged_in(posts, start, start + 3600)}
    final = json.loads(db.execute("SELECT state FROM captures ORDER BY id DESC").fetchone()[0])
    assert final["poll"] is None and final["since_id"] == state["poll"]["newest_id"]


def test_following_a_1000_post_hour_at_10s_stays_within_the_rate_limit(db):
    t0 = datetime(2026, 11, 18, 20, 0, tzinfo=timezone.utc).timestamp()
    posts = make_chat(1000, t0)
    clock = ManualClock(t0 - 30)
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        result = run_capture(db, client(srv, clock), Window(dt(t0), dt(t0 + 3600)), follow=True, interval=10)
        times = [r.t for r in srv.requests_to(SEARCH)]
        statuses = {r.status for r in srv.log}
    assert result.status == "ok" and statuses == {200}
    assert max_in_window(times, 900) <= 300  # the stricter per-user figure of 450/300 per 15 min
    assert len(times) <= 3600 / 10 + 10  # about one request per poll
    assert matched_ids(db) == {x_id(p) for p in tagged_in(posts, t0, t0 + 3600)}
    # the window starts in the future: X refuses such a start_time, so the
    # first polls say "ids above the window start" (ids are time snowflakes);
    # later polls send the newest id seen.  Never start_time with since_id.
    reqs = srv.requests_to(SEARCH)
    assert reqs[0].param("since_id") == snowflake_below(dt(t0)) and reqs[0].param("start_time") is None
    assert all(r.param("since_id") and not r.param("start_time") for r in reqs)
    state = json.loads(db.execute("SELECT state FROM captures").fetchone()[0])
    assert state["since_id"] == max((x_id(p) for p in tagged_in(posts, t0, t0 + 3600)), key=int)
    assert all(r.param("end_time") is None for r in reqs)  # --until still ahead: not sent


def test_context_fetches_whole_conversations_and_missing_parents(db):
    start = float(int(time.time()) - 3 * 3600)
    posts = make_chat(200, start)
    clock = ManualClock(time.time())
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        result = run_capture(db, client(srv, clock), Window(dt(start), dt(start + 3600)), context=True)
        conv = [r for r in srv.requests_to(SEARCH) if "conversation_id:" in (r.param("query") or "")]
    untagged = [p for p in posts if not p.tags and p.reply_to is not None]
    assert untagged
    stored = {r[0]: r[1] for r in db.execute("SELECT id, matched FROM posts")}
    for p in untagged:
        assert stored.get(x_id(p)) == 0  # context: matched = 0
    assert result.context and result.context["added"] >= len(untagged)
    # several conversations per query, each query within X's 512 characters
    assert conv and all(len(r.param("query")) <= 512 for r in conv)
    assert any(r.param("query").count(" OR ") >= 5 for r in conv)
    kinds = dict(db.execute("SELECT kind, count(*) FROM capture_pages GROUP BY kind").fetchall())
    assert kinds.get("context", 0) >= 1


def test_a_follow_outlives_an_outage_but_not_a_dead_server(db):
    t0 = datetime(2026, 11, 18, 20, 0, tzinfo=timezone.utc).timestamp()
    posts = make_chat(120, t0, duration=600)
    clock = ManualClock(t0 + 60)
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        srv.fail("503", times=7)  # one whole poll gives up after its 6 retries
        result = run_capture(db, client(srv, clock), Window(dt(t0), dt(t0 + 600)), follow=True, interval=10)
    assert result.status == "ok" and any("poll failed" in p for p in result.problems)
    assert matched_ids(db) == {x_id(p) for p in tagged_in(posts, t0, t0 + 600)}
    with FakeX(posts, token=TOKEN, clock=clock) as srv:
        srv.fail("503", times=10_000)
        with pytest.raises(NetworkError):
            run_capture(db, client(srv, clock), Window(dt(t0), None), follow=True, interval=10)
        assert len(srv.log) == 5 * 7  # five polls of seven attempts, then it stops


# --------------------------------------------------------------------------
# The filtered stream (fake_streams.FakeXStream: rules, keep-alives, one connection)

import threading  # noqa: E402

from fake_streams import FakeXStream  # noqa: E402

from chatarchive.capture.config import Config, Secret  # noqa: E402
from chatarchive.capture.live import capture_live  # noqa: E402
from chatarchive.capture.runner import CaptureOptions  # noqa: E402
from chatarchive.capture.stream import StreamPolicy  # noqa: E402

FAST = StreamPolicy(backoff_base=0.05, backoff_max=0.5, keepalive=1.0, commit_interval=0.1,
                    rate_backoff_base=0.2, http_backoff_base=0.1)
RULES = "/2/tweets/search/stream/rules"


def x_live(db, srv, *, until, since=None, policy=FAST, query="#edchat"):
    opts = CaptureOptions(since=dt(since) if since else None, until=dt(until), api_base=srv.url, analyse=False)
    return capture_live(db, ["x"], query, opts, Config(x_bearer_token=Secret(TOKEN)), policy=policy)


def test_filtered_stream_rules_keepalives_disconnects_and_gap_fills(db):
    now = time.time()
    posts = make_chat(90, now + 0.2, duration=3.0, questions=3, seed=21)  # posts at +1.2 … +2.2 s
    other = make_chat(10, now + 0.2, duration=3.0, questions=0, seed=22, tag="mathchat", first_n=5000)
    with FakeXStream(posts + other, token=TOKEN, keepalive=0.2) as srv:
        srv.rules["99"] = {"id": "99", "value": "#mathchat", "tag": "someone else's"}  # another app rule
        threading.Timer(1.5, srv.disconnect).start()
        threading.Timer(2.6, srv.operational_disconnect).start()
        result = x_live(db, srv, until=now + 3.4).results[0]
        streams = list(srv.stream_log)
        rule_calls = [(r.method, r.body) for r in srv.log if r.path == RULES]
        searches = [r for r in srv.log if r.path == SEARCH]
        left = dict(srv.rules)
    assert result.status == "ok" and result.reconnects >= 2
    # the rule was added with our tag, the stream read with the same fields as search, and the rule removed
    adds = [b for m, b in rule_calls if m == "POST" and b and "add" in b]
    assert adds == [{"add": [{"value": "#edchat", "tag": "chatarchive:#edchat"}]}]
    assert any(m == "POST" and b and "delete" in b for m, b in rule_calls)
    assert left == {"99": {"id": "99", "value": "#mathchat", "tag": "someone else's"}}
    params = streams[0]["params"]
    assert params["tweet.fields"] == [TWEET_FIELDS] and params["expansions"] == [EXPANSIONS]
    assert params["user.fields"] == [USER_FIELDS] and params["media.fields"] == [MEDIA_FIELDS]
    assert all(s["auth"] == f"Bearer {TOKEN}" for s in streams) and len(streams) >= 3
    # every connection the server accepted filled the gap with recent search since_id before the
    # next one (a refused one, 429 while X still held the old connection, reads nothing); the
    # last is covered by the final fill; none uses start_time with since_id
    accepted = [s["t"] for s in streams if s.get("status") == 200]
    assert len(accepted) >= 2  # the first and the one after the drop (after the operational
    # disconnect X may still hold the old connection for a moment: 429, then backoff)
    for began, ended in zip(accepted, [*accepted[1:], float("inf")]):
        assert any(began <= r.t <= ended for r in searches), (began, accepted, [r.t for r in searches])
    assert all(r.param("since_id") for r in searches[1:])
    want = {x_id(p) for p in posts if p.tags}
    got = {r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")}
    assert got == want  # nothing lost around the disconnects, no post of the other rule
    assert not db.execute("SELECT 1 FROM posts WHERE text LIKE '%#mathchat%'").fetchone()


def test_a_user_rule_with_the_same_value_is_reused_and_left_in_place(db):
    now = time.time()
    posts = make_chat(30, now + 0.1, duration=2.2, questions=1, seed=23)
    with FakeXStream(posts, token=TOKEN, keepalive=0.2) as srv:
        srv.rules["7"] = {"id": "7", "value": "#edchat", "tag": "mine"}
        x_live(db, srv, until=now + 2.0)
        assert srv.rules == {"7": {"id": "7", "value": "#edchat", "tag": "mine"}}
        assert not [r for r in srv.log if r.path == RULES and r.method == "POST"]
    assert db.execute("SELECT count(*) FROM posts WHERE matched = 1").fetchone()[0] == len([p for p in posts if p.tags])


def test_a_second_connection_waits_out_the_429(db):
    now = time.time()
    posts = make_chat(20, now + 0.1, duration=2.2, questions=1, seed=24)
    with FakeXStream(posts, token=TOKEN, keepalive=0.2) as srv:
        srv.refuse = 1
        result = x_live(db, srv, until=now + 2.0).results[0]
        codes = len(srv.stream_log)
    assert result.status == "ok" and codes >= 2 and result.reconnects >= 1
    assert db.execute("SELECT count(*) FROM posts WHERE matched = 1").fetchone()[0] == len([p for p in posts if p.tags])


def test_a_bad_token_for_the_stream_is_one_line(runner, db_path):
    with FakeXStream([], token=TOKEN) as srv:
        res = runner.invoke(cli, ["capture", str(db_path), "x", "#edchat", "--stream", "--api-base", srv.url,
                                  "--duration", "3s"], env={"X_BEARER_TOKEN": "not-the-token-Qz"})
    assert res.exit_code == 1 and "X_BEARER_TOKEN" in res.output and "not-the-token-Qz" not in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
