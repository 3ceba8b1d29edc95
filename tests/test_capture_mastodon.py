"""Live Mastodon capture against local fake Mastodon servers (tests/fake_servers.py)."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone

import pytest
from fake_servers import FakeMastodon, make_chat, max_in_window

from chatarchive.archive.schema import open_db
from chatarchive.capture.base import Window
from chatarchive.capture.config import Config, Secret
from chatarchive.capture.http import ManualClock
from chatarchive.capture.mastodon import MastodonCapture, snowflake_upper
from chatarchive.capture.runner import QuietUI, run_capture
from chatarchive.cli import cli

TAG_PATH = "/api/v1/timelines/tag/edchat"


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("X_BEARER_TOKEN", "CHATARCHIVE_CONFIG", "MASTODON_TOKEN", "BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"):
        monkeypatch.delenv(var, raising=False)


def dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def iso(t: float) -> str:
    return dt(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def home(author: str) -> str:
    # people a–l live on mastodon.example, the others on other.example
    return "mastodon.example" if author < "m" else "other.example"


@pytest.fixture
def chat():
    start = float(int(time.time()) - 3 * 3600)
    return start, make_chat(240, start)


def servers(posts, **kw):
    """mastodon.example sees every post; other.example every second one,
    with its own local ids (same uris)."""
    a = FakeMastodon(posts, domain="mastodon.example", home=home, **kw)
    b = FakeMastodon(posts[::2], domain="other.example", home=home, salt=5, **kw)
    return a, b


def tagged(posts, start=None, end=None):
    return [p for p in posts if p.tags and (start is None or start <= p.t < end)]


def matched_ids(db):
    return {r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")}


def test_two_servers_are_merged_by_uri(runner, db_path, chat):
    start, posts = chat
    a, b = servers(posts)
    with a, b:
        res = runner.invoke(cli, ["capture", str(db_path), "mastodon", "#edchat", "--instance", a.url,
                                  "--instance", b.url, "--since", iso(start), "--until", iso(start + 3600),
                                  "--no-analyse", "--json"])
        assert res.exit_code == 0, res.output
        want = tagged(posts, start, start + 3600)
        db = open_db(db_path, create=True)
        assert matched_ids(db) == {a.uri(p) for p in want}
        # one row per status although half of them were read from both servers
        assert db.execute("SELECT count(*) FROM posts WHERE matched = 1").fetchone()[0] == len(want)
        # each row knows a server it was read from and its id there
        for uri, local, inst in db.execute("SELECT id, local_id, instance FROM posts WHERE matched = 1"):
            p = next(q for q in posts if a.uri(q) == uri)
            server = a if inst == f"127.0.0.1:{a.port}" else b
            assert inst in (f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}")
            assert local == server.local_id(p)
        # replies to stored statuses are linked to the parent's uri
        by_n = {p.n: p for p in posts}
        for p in want:
            if p.reply_to is not None and by_n[p.reply_to].tags and start <= by_n[p.reply_to].t:
                got = db.execute("SELECT reply_to_id FROM posts WHERE id = ?", [a.uri(p)]).fetchone()[0]
                assert got == a.uri(by_n[p.reply_to])
        # handles are global: local accounts get the serving host
        handles = {r[0] for r in db.execute("SELECT handle FROM authors")}
        assert all("@" in h for h in handles)
        for srv, expected in ((a, want), (b, tagged(posts[::2], start, start + 3600))):
            reqs = srv.requests_to(TAG_PATH)
            assert len(reqs) <= math.ceil(len(expected) / 40) + 1
            assert all(r.param("limit") == "40" for r in reqs)
        out = json.loads(res.stdout)
        assert out["added"] == len(want) and out["platform"] == "mastodon"


def test_pages_follow_the_link_header_and_start_below_until(db, chat):
    start, posts = chat
    # posts after the window must not cost requests: the first request
    # starts just above --until with a snowflake max_id
    later = make_chat(400, start + 3700, seed=11, first_n=5000)
    with FakeMastodon(posts + later, domain="mastodon.example") as srv:
        result = run_capture(db, MastodonCapture("#edchat", instances=[srv.url]), Window(dt(start), dt(start + 3600)))
        reqs = srv.requests_to(TAG_PATH)
    want = tagged(posts, start, start + 3600)
    assert matched_ids(db) == {srv.uri(p) for p in want}
    assert reqs[0].param("max_id") == snowflake_upper(dt(start + 3600))
    assert len(reqs) <= math.ceil(len(want) / 40) + 1
    # each next page asks for ids below the last one of the previous page
    ordered = sorted((srv.local_id(p) for p in want), key=lambda s: (len(s), s), reverse=True)
    for i, r in enumerate(reqs[1:], 1):
        assert r.param("max_id") == ordered[min(40 * i, len(ordered)) - 1]
    state = json.loads(db.execute("SELECT state FROM captures").fetchone()[0])
    st = state["instances"][f"127.0.0.1:{srv.port}"]
    assert st["backfilled"] is True and st["newest_id"] == ordered[0]
    assert result.status == "ok"


def test_token_goes_to_the_first_server_only(runner, db_path, chat):
    start, posts = chat
    a, b = servers(posts, token=None)
    a.token = "masto-secret-A1"
    with a, b:
        res = runner.invoke(cli, ["capture", str(db_path), "mastodon", "#edchat", "--instance", a.url,
                                  "--instance", b.url, "--since", iso(start), "--no-analyse"],
                            env={"MASTODON_TOKEN": "masto-secret-A1"})
        assert res.exit_code == 0, res.output
        assert all(r.auth == "Bearer masto-secret-A1" for r in a.log)
        assert all(r.auth is None for r in b.log)
    assert "masto-secret-A1" not in res.output


def test_per_server_tokens_from_the_config_file(db, chat):
    start, posts = chat
    a, b = servers(posts)
    a.token, b.token = "tok-a", "tok-b"
    with a, b:
        config = Config(mastodon_tokens={f"127.0.0.1:{a.port}": Secret("tok-a"), f"127.0.0.1:{b.port}": Secret("tok-b")})
        run_capture(db, MastodonCapture("#edchat", instances=[a.url, b.url], config=config), Window(dt(start)))
        assert {r.auth for r in a.log} == {"Bearer tok-a"} and {r.auth for r in b.log} == {"Bearer tok-b"}
        assert {r.status for r in a.log + b.log} == {200}


def test_a_server_that_wants_a_token_names_the_variable(runner, db_path, chat):
    _, posts = chat
    with FakeMastodon(posts, token="needed") as srv:
        res = runner.invoke(cli, ["capture", str(db_path), "mastodon", "#edchat", "--instance", srv.url, "--no-analyse"])
    assert res.exit_code == 1
    assert "MASTODON_TOKEN" in res.output and "401" in res.output and f"127.0.0.1:{srv.port}" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("mode", ["empty", "404"])
def test_an_unknown_tag_is_an_empty_timeline(db, mode):
    with FakeMastodon(make_chat(30, time.time() - 7200), unknown_tag=mode) as srv:
        result = run_capture(db, MastodonCapture("#nosuchtag", instances=[srv.url]), Window())
    assert result.status == "ok" and result.added == 0
    assert (len(result.problems) == 1) == (mode == "404")


def test_429_waits_for_the_iso_reset_time(db, chat):
    start, posts = chat
    clock = ManualClock(time.time())
    with FakeMastodon(posts, clock=clock) as srv:
        srv.fail("429", reset_in=200)  # X-RateLimit-Reset: ISO-8601 with 6 digits
        result = run_capture(db, MastodonCapture("#edchat", instances=[srv.url], clock=clock), Window(dt(start)))
    assert result.status == "ok" and srv.log[0].status == 429
    waited = [s for s in clock.sleeps if s > 50]
    assert len(waited) == 1 and 199 <= waited[0] <= 202


def test_an_interrupted_backfill_continues_from_max_id(db, chat):
    start, posts = chat

    class StopAfterSecondPage(QuietUI):
        def page(self, run, page, stats):
            if run.result.pages == 2:
                raise KeyboardInterrupt

    with FakeMastodon(posts) as srv:
        first = run_capture(db, MastodonCapture("#edchat", instances=[srv.url]), Window(dt(start)), ui=StopAfterSecondPage())
        assert first.status == "interrupted"
        st = json.loads(db.execute("SELECT state FROM captures").fetchone()[0])["instances"][f"127.0.0.1:{srv.port}"]
        assert st["backfilled"] is False and st["max_id"]
        n = len(srv.log)
        second = run_capture(db, MastodonCapture("#edchat", instances=[srv.url]), Window(dt(start)))
        assert second.resumed and srv.log[n].param("max_id") == st["max_id"]
    assert matched_ids(db) == {srv.uri(p) for p in tagged(posts, start, start + 3600)}
    assert first.added + second.added == len(tagged(posts, start, start + 3600)) + 0


def test_following_a_1000_post_hour_at_10s_stays_within_the_rate_limits(db):
    t0 = datetime(2026, 11, 18, 20, 0, tzinfo=timezone.utc).timestamp()
    posts = make_chat(1000, t0)
    clock = ManualClock(t0 - 30)
    with FakeMastodon(posts, clock=clock) as srv:
        client = MastodonCapture("#edchat", instances=[srv.url], clock=clock)
        result = run_capture(db, client, Window(dt(t0), dt(t0 + 3600)), follow=True, interval=10)
        reqs = srv.requests_to(TAG_PATH)
    assert result.status == "ok" and {r.status for r in srv.log} == {200}
    times = [r.t for r in reqs]
    assert max_in_window(times, 300) <= 300  # 300 requests / 5 min
    paging = [r.t for r in reqs if r.param("min_id") or r.param("max_id")]
    assert max_in_window(paging, 900) <= 300  # 300 paging requests / 15 min
    assert len(reqs) <= 3600 / 10 + 10
    assert matched_ids(db) == {srv.uri(p) for p in tagged(posts, t0, t0 + 3600)}
    assert all(r.param("min_id") for r in reqs[5:])  # forward with min_id once something was seen


def test_context_fetches_threads_and_links_replies(db, chat):
    start, posts = chat
    with FakeMastodon(posts, domain="mastodon.example") as srv:
        result = run_capture(db, MastodonCapture("#edchat", instances=[srv.url]), Window(dt(start)), context=True)
        calls = [r for r in srv.log if r.path.endswith("/context")]
    untagged = [p for p in posts if not p.tags and p.reply_to is not None]
    rows = {r[0]: r[1:] for r in db.execute("SELECT id, matched, reply_to_id FROM posts")}
    by_n = {p.n: p for p in posts}
    found = [p for p in untagged if srv.uri(p) in rows]
    assert len(found) >= len(untagged) * 0.6  # the server shows at most 60 descendants per thread
    for p in found:
        matched, reply_to = rows[srv.uri(p)]
        assert matched == 0 and reply_to == srv.uri(by_n[p.reply_to])
    assert rows[srv.uri(posts[0])][0] == 0  # the pre-chat parent, as context
    assert calls and len(calls) <= len({p.n for p in posts if p.tags}) and result.context["added"] == len(found) + 1


def test_raw_pages_import_back_as_the_same_posts(runner, tmp_path, chat):
    start, posts = chat
    raw, captured, imported = tmp_path / "m.jsonl", tmp_path / "c.db", tmp_path / "i.db"
    with FakeMastodon(posts, domain="mastodon.example", home=home) as srv:
        res = runner.invoke(cli, ["capture", str(captured), "mastodon", "#edchat", "--instance", srv.url,
                                  "--since", iso(start), "--raw", str(raw), "--no-analyse"])
        assert res.exit_code == 0, res.output
    assert all(isinstance(json.loads(line), list) for line in raw.read_text().splitlines())
    res = runner.invoke(cli, ["import", str(imported), str(raw), "--no-analyse"])
    assert res.exit_code == 0, res.output
    cols = "id, url, author_id, author_handle, text, html, created_at, matched, like_count, reply_count"
    a = open_db(captured, create=True).execute(f"SELECT {cols} FROM posts ORDER BY id").fetchall()
    b = open_db(imported, create=True).execute(f"SELECT {cols} FROM posts ORDER BY id").fetchall()
    assert a == b and len(a) == len(tagged(posts, start, start + 3600))


def test_context_command_for_a_session_reads_each_server(runner, db_path, chat):
    start, posts = chat
    with FakeMastodon(posts, domain="mastodon.example", home=home) as srv:
        res = runner.invoke(cli, ["capture", str(db_path), "mastodon", "#edchat", "--instance", srv.url,
                                  "--since", iso(start)])
        assert res.exit_code == 0, res.output
        slug = open_db(db_path, create=True).execute("SELECT slug FROM sessions").fetchone()[0]
        n = len(srv.log)
        # --instance tells which scheme the server speaks (the archive keeps hosts)
        res = runner.invoke(cli, ["capture", str(db_path), "context", slug, "--instance", srv.url, "--json",
                                  "--no-analyse"])
        assert res.exit_code == 0, res.output
        calls = srv.log[n:]
    out = json.loads(res.stdout)
    assert [r["platform"] for r in out] == ["mastodon"] and out[0]["context"]["added"] > 0
    assert calls and all(r.path.endswith("/context") for r in calls)
    untagged = [p for p in posts if not p.tags and p.reply_to is not None]
    rows = dict(open_db(db_path, create=True).execute("SELECT id, matched FROM posts").fetchall())
    assert sum(1 for p in untagged if rows.get(srv.uri(p)) == 0) >= len(untagged) * 0.6


# --------------------------------------------------------------------------
# The stream (fake_streams.FakeMastodonStreaming: SSE with heartbeats)

import threading  # noqa: E402

from fake_streams import FakeMastodonStreaming  # noqa: E402

from chatarchive.capture.live import capture_live  # noqa: E402
from chatarchive.capture.runner import CaptureOptions  # noqa: E402
from chatarchive.capture.stream import StreamPolicy  # noqa: E402

STREAM_TOKEN = "masto-stream-Tq9"
FAST = StreamPolicy(backoff_base=0.05, backoff_max=0.5, idle_timeout=3.0, commit_interval=0.1, poll_interval=0.3)


def live(db, instances, *, until, since=None, token=STREAM_TOKEN, tokens=None, policy=FAST):
    opts = CaptureOptions(since=dt(since) if since else None, until=dt(until), instances=tuple(instances),
                          analyse=False)
    config = Config(mastodon_token=Secret(token) if token else None,
                    mastodon_tokens={k: Secret(v) for k, v in (tokens or {}).items()})
    return capture_live(db, ["mastodon"], "#edchat", opts, config, policy=policy)


def later(seconds, fn):
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()
    return t


def test_stream_with_edits_deletes_a_reconnect_and_gap_fills(db):
    now = time.time()
    before = make_chat(20, now - 900, duration=300, questions=1, seed=11)  # before the command ran
    posts = make_chat(80, now + 0.2, duration=3.0, questions=3, seed=12, first_n=1000)  # at +1.2 … +2.2 s
    early = sorted((p for p in posts if p.tags and p.t < now + 1.5), key=lambda p: p.t)
    edited, gone = early[0], early[1]
    with FakeMastodonStreaming(before + posts, stream_token=STREAM_TOKEN) as srv:
        later(1.7, lambda: srv.edit(edited, "edited text of the post #edchat", time.time()))
        later(1.8, lambda: srv.delete(gone))
        later(1.9, srv.drop_streams)  # posts until the reconnect come from the timeline
        result = live(db, [srv.url], since=now - 1000, until=now + 3.3).results[0]
        streams = list(srv.stream_log)
        timeline = [r for r in srv.log if r.path == TAG_PATH]
    assert result.status == "ok" and result.reconnects >= 1 and result.gap_fills >= 2
    assert [s["auth"] for s in streams] == [f"Bearer {STREAM_TOKEN}"] * len(streams) and len(streams) >= 2
    assert all(s["params"]["tag"] == ["edchat"] for s in streams)
    # every reconnect filled the gap from the timeline with since_id
    assert sum(1 for r in timeline if r.param("since_id")) >= 1
    want = {srv.uri(p) for p in before + posts if p.tags} - {srv.uri(gone)}
    got = {r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1 AND deleted_at IS NULL")}
    assert got == want
    assert db.execute("SELECT text FROM posts WHERE id = ?", [srv.uri(edited)]).fetchone()[0] == \
        "edited text of the post #edchat"
    row = db.execute("SELECT text, deleted_at FROM posts WHERE id = ?", [srv.uri(gone)]).fetchone()
    assert row[0] == "" and row[1] is not None and result.deleted == 1


def test_two_servers_merge_by_uri_and_a_server_without_a_token_is_polled(db):
    now = time.time()
    posts = make_chat(50, now + 0.3, duration=1.6, questions=2, seed=13)
    with FakeMastodonStreaming(posts, domain="mastodon.example", home=home, stream_token=STREAM_TOKEN) as a, \
            FakeMastodonStreaming(posts, domain="other.example", home=home, salt=7, stream_token="other") as b:
        run = live(db, [a.url, b.url], until=now + 2.6)
        a_streams, b_streams = list(a.stream_log), list(b.stream_log)
        b_polls = [r for r in b.log if r.path == TAG_PATH]
    first, second = run.results
    assert first.status == second.status == "ok"
    assert a_streams and not b_streams  # MASTODON_TOKEN goes to the first server only
    assert len(b_polls) >= 3  # polled instead, every poll_interval
    assert "polling its tag timeline" in run.engine.sources[1].status and "MASTODON_TOKEN" in run.engine.sources[1].status
    uris = {a.uri(p) for p in posts if p.tags}
    assert {r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")} == uris
    # one row per post, both servers' ids kept
    assert db.execute("SELECT count(*) FROM local_ids").fetchone()[0] >= 2 * len(uris)


def test_a_refused_token_is_one_line_naming_the_variable(runner, db_path):
    now = time.time()
    with FakeMastodonStreaming(make_chat(10, now, duration=5), stream_token="the-right-one") as srv:
        res = runner.invoke(cli, ["capture", str(db_path), "mastodon", "#edchat", "--instance", srv.url, "--stream",
                                  "--duration", "5s", "--no-analyse"], env={"MASTODON_TOKEN": "wrong-token-123"})
    assert res.exit_code == 1, res.output
    assert "MASTODON_TOKEN" in res.output and "401" in res.output and "wrong-token-123" not in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
