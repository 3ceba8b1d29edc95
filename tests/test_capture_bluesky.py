"""Live Bluesky capture against a local fake PDS (tests/fake_servers.py)."""

from __future__ import annotations

import json
import math
import os
import stat
import time
from datetime import datetime, timezone

import pytest
from fake_servers import FakeBluesky, at_uri, make_chat, max_in_window

from chatarchive.archive.schema import open_db
from chatarchive.capture.base import Window
from chatarchive.capture.bluesky import BlueskyCapture
from chatarchive.capture.config import Config, Secret, SessionStore
from chatarchive.capture.http import ManualClock
from chatarchive.capture.runner import QuietUI, run_capture
from chatarchive.cli import cli

HANDLE, PASSWORD = "tester.bsky.social", "abcd-efgh-ijkl-mnop"
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
CREATE = "/xrpc/com.atproto.server.createSession"
REFRESH = "/xrpc/com.atproto.server.refreshSession"
LOGIN = Config(bluesky_handle=HANDLE, bluesky_app_password=Secret(PASSWORD))


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("X_BEARER_TOKEN", "CHATARCHIVE_CONFIG", "MASTODON_TOKEN", "BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"):
        monkeypatch.delenv(var, raising=False)


def dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def iso(t: float) -> str:
    return dt(t).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def chat():
    start = float(int(time.time()) - 3 * 3600)
    return start, make_chat(260, start)


def tagged(posts, start, end):
    return [p for p in posts if p.tags and start <= p.t < end]


def matched_ids(db):
    return {r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")}


def client(srv, clock=None, sessions=None, config=LOGIN):
    return BlueskyCapture("#edchat", config=config, service=srv.url, clock=clock, sessions=sessions or SessionStore(None))


def capture_cli(runner, db_path, srv, *args, login=True):
    env = {"BLUESKY_HANDLE": HANDLE, "BLUESKY_APP_PASSWORD": PASSWORD} if login else {}
    return runner.invoke(cli, ["capture", str(db_path), "bluesky", "#edchat", "--service", srv.url, "--no-analyse", *args],
                         env=env)


def test_search_with_tag_and_window_and_a_reused_session(runner, db_path, tmp_path, chat):
    start, posts = chat
    args = ("--since", iso(start), "--until", iso(start + 3600))
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD) as srv:
        res = capture_cli(runner, db_path, srv, *args)
        assert res.exit_code == 0, res.output
        want = tagged(posts, start, start + 3600)
        db = open_db(db_path, create=True)
        assert matched_ids(db) == {at_uri(p) for p in want}
        searches = srv.requests_to(SEARCH)
        assert len(srv.requests_to(CREATE)) == 1
        first = searches[0]
        assert first.params["tag"] == ["edchat"] and first.param("q") == "#edchat"
        assert first.param("sort") == "latest" and first.param("limit") == "100"
        assert first.param("since") == f"{iso(start)[:-1]}.000Z" and first.param("until") == f"{iso(start + 3600)[:-1]}.000Z"
        assert first.auth.startswith("Bearer ") and first.auth[7:] in srv.issued
        assert len(searches) <= math.ceil(len(want) / 100) + 1
        for r in searches[1:]:
            assert r.param("cursor")
            assert {k: v for k, v in r.params.items() if k != "cursor"} == first.params
        # the session lives beside the config, private, and never in the archive
        session_file = tmp_path / "config" / "chatarchive" / "bluesky-sessions.json"
        assert stat.S_IMODE(os.stat(session_file).st_mode) == 0o600
        assert srv.issued[0] in session_file.read_text()
        # a second run reuses it: no new login
        again = capture_cli(runner, db_path, srv, *args, "--json")
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout)["resumed"] is True
        assert len(srv.requests_to(CREATE)) == 1
    # reply links and context parents
    by_n = {p.n: p for p in posts}
    for p in want:
        if p.reply_to is not None:
            got = db.execute("SELECT reply_to_id FROM posts WHERE id = ?", [at_uri(p)]).fetchone()[0]
            assert got == at_uri(by_n[p.reply_to])


def test_an_expired_access_token_is_refreshed_not_relogged(db, chat):
    start, posts = chat
    sessions = SessionStore(None)
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD) as srv:
        run_capture(db, client(srv, sessions=sessions), Window(dt(start)))
        srv.expire_access_tokens()
        more = make_chat(20, start + 4000, duration=600, seed=2, first_n=9000)
        srv.add(more)
        result = run_capture(db, client(srv, sessions=sessions), Window(dt(start)))
        paths = [(r.path, r.status) for r in srv.log]
    assert result.status == "ok" and result.added == len([p for p in more if p.tags]) > 10
    i = paths.index((REFRESH, 200))
    assert paths[i - 1] == (SEARCH, 400)  # 400 ExpiredToken
    assert paths[i + 1] == (SEARCH, 200)  # the same request again, new token
    assert [p for p in paths if p[0] == CREATE] == [(CREATE, 200)]


def test_a_dead_refresh_token_falls_back_to_a_new_login(db, chat):
    start, posts = chat
    sessions = SessionStore(None)
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD) as srv:
        run_capture(db, client(srv, sessions=sessions), Window(dt(start)))
        srv.expire_access_tokens()
        srv.refresh.clear()
        result = run_capture(db, client(srv, sessions=sessions), Window(dt(start)))
        paths = [(r.path, r.status) for r in srv.log]
    assert result.status == "ok"
    assert (REFRESH, 400) in paths
    assert [p for p in paths if p[0] == CREATE] == [(CREATE, 200), (CREATE, 200)]


def test_expired_token_answer_from_the_server_is_handled_once(db, chat):
    start, posts = chat
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD) as srv:
        srv.fail("expired", path=SEARCH)
        result = run_capture(db, client(srv), Window(dt(start)))
        paths = [r.path for r in srv.log]
    assert result.status == "ok" and paths[:4] == [CREATE, SEARCH, REFRESH, SEARCH]


def test_without_a_login_the_message_names_both_variables(runner, db_path, chat):
    _, posts = chat
    with FakeBluesky(posts) as srv:
        res = capture_cli(runner, db_path, srv, login=False)
    assert res.exit_code == 1
    assert "BLUESKY_HANDLE" in res.output and "BLUESKY_APP_PASSWORD" in res.output and "401" in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output


def test_an_html_403_from_a_public_host_is_one_plain_line(runner, db_path, chat):
    _, posts = chat
    with FakeBluesky(posts, public_html_403=True) as srv:
        res = capture_cli(runner, db_path, srv, login=False)
    assert res.exit_code == 1
    assert "403" in res.output and "Forbidden" in res.output and "BLUESKY_APP_PASSWORD" in res.output
    assert "<html" not in res.output and "<title>" not in res.output


def test_a_wrong_app_password_is_refused_without_echoing_it(runner, db_path, chat):
    _, posts = chat
    with FakeBluesky(posts, handle=HANDLE, password="the-real-one") as srv:
        res = capture_cli(runner, db_path, srv)
        assert len(srv.requests_to(CREATE)) == 1 and not srv.requests_to(SEARCH)
    assert res.exit_code == 1
    assert "refused the login" in res.output and HANDLE in res.output and "BLUESKY_APP_PASSWORD" in res.output
    assert PASSWORD not in res.output


def test_429_waits_for_ratelimit_reset(db, chat):
    start, posts = chat
    clock = ManualClock(time.time())
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD, clock=clock) as srv:
        srv.fail("429", path=SEARCH, reset_in=150)
        result = run_capture(db, client(srv, clock), Window(dt(start)))
    assert result.status == "ok"
    waited = [s for s in clock.sleeps if s > 50]
    assert len(waited) == 1 and 149 <= waited[0] <= 152


def test_an_interrupted_poll_continues_from_its_cursor(db, chat):
    start, posts = chat

    class StopAfterFirstPage(QuietUI):
        def page(self, run, page, stats):
            raise KeyboardInterrupt

    sessions = SessionStore(None)
    window = Window(dt(start), dt(start + 3600))
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD) as srv:
        first = run_capture(db, client(srv, sessions=sessions), window, ui=StopAfterFirstPage())
        state = json.loads(db.execute("SELECT state FROM captures").fetchone()[0])
        assert first.status == "interrupted" and state["poll"]["cursor"]
        second = run_capture(db, client(srv, sessions=sessions), window)
        searches = srv.requests_to(SEARCH)
    assert second.resumed and searches[1].param("cursor") == state["poll"]["cursor"]
    want = tagged(posts, start, start + 3600)
    # the rest of the walk, then one catch-up poll from the newest post seen
    assert len(searches) == math.ceil(len(want) / 100) + 1
    assert searches[-1].param("cursor") is None and searches[-1].param("since") > searches[0].param("since")
    assert matched_ids(db) == {at_uri(p) for p in want}


def test_following_a_1000_post_hour_at_10s_stays_within_the_rate_limits(db):
    t0 = datetime(2026, 11, 18, 20, 0, tzinfo=timezone.utc).timestamp()
    posts = make_chat(1000, t0)
    clock = ManualClock(t0 - 30)
    # access tokens live 15 minutes here: the follow must refresh, not re-login
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD, clock=clock, access_ttl=900) as srv:
        result = run_capture(db, client(srv, clock), Window(dt(t0), dt(t0 + 3600)), follow=True, interval=10)
        searches = srv.requests_to(SEARCH)
        statuses = [r.status for r in srv.log]
        logins, refreshes = len(srv.requests_to(CREATE)), len(srv.requests_to(REFRESH))
    assert result.status == "ok" and 429 not in statuses
    assert max_in_window([r.t for r in srv.log], 300) <= 3000  # 3,000 / 5 min per IP
    assert len(searches) <= 3600 / 10 + 20
    assert logins == 1 and 3 <= refreshes <= 5  # createSession: 30 / 5 min, 100 / day
    assert matched_ids(db) == {at_uri(p) for p in tagged(posts, t0, t0 + 3600)}
    # later polls overlap by a minute only: since moves with the newest post
    assert all(r.param("since") > f"{iso(t0)[:-1]}" for r in searches[-10:])


def test_context_fetches_each_thread_once_with_get_post_thread(db, chat):
    start, posts = chat
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD) as srv:
        result = run_capture(db, client(srv), Window(dt(start)), context=True)
        threads = srv.requests_to("/xrpc/app.bsky.feed.getPostThread")
    untagged = [p for p in posts if not p.tags]
    rows = dict(db.execute("SELECT id, matched FROM posts").fetchall())
    assert all(rows.get(at_uri(p)) == 0 for p in untagged)
    roots = {r.param("uri") for r in threads}
    assert len(roots) == len(threads)  # one call per thread root
    assert result.context["added"] == len(untagged)


def test_raw_pages_import_back_as_the_same_posts(runner, tmp_path, chat):
    start, posts = chat
    raw, captured, imported = tmp_path / "b.jsonl", tmp_path / "c.db", tmp_path / "i.db"
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD) as srv:
        res = capture_cli(runner, captured, srv, "--since", iso(start), "--raw", str(raw))
        assert res.exit_code == 0, res.output
    assert all("posts" in json.loads(line) for line in raw.read_text().splitlines())
    res = runner.invoke(cli, ["import", str(imported), str(raw), "--no-analyse"])
    assert res.exit_code == 0, res.output
    cols = "id, url, author_id, author_handle, text, created_at, reply_to_id, root_id, matched, like_count"
    a = open_db(captured, create=True).execute(f"SELECT {cols} FROM posts ORDER BY id").fetchall()
    b = open_db(imported, create=True).execute(f"SELECT {cols} FROM posts ORDER BY id").fetchall()
    assert a == b and len(a) == len(tagged(posts, start, start + 3600))
