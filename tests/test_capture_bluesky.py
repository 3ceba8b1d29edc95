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


def test_without_a_login_search_fails_at_once_naming_both_variables(runner, db_path, chat):
    _, posts = chat
    with FakeBluesky(posts) as srv:
        res = capture_cli(runner, db_path, srv, login=False)
        assert srv.log == []  # not one request: searchPosts needs a login anyway
    assert res.exit_code == 1
    assert "BLUESKY_HANDLE" in res.output and "BLUESKY_APP_PASSWORD" in res.output and "--stream" in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not db_path.exists()  # a first capture that stored nothing leaves no archive


def test_an_html_403_from_a_public_host_is_one_plain_line(runner, db_path, chat):
    _, posts = chat
    with FakeBluesky(posts, handle=HANDLE, password=PASSWORD) as srv:
        srv.fail("html403", path=SEARCH, times=50)
        res = capture_cli(runner, db_path, srv)
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


# --------------------------------------------------------------------------
# The stream: Jetstream, no login (fake_streams.FakeJetstream, FakeAppView)

from fake_servers import did_of  # noqa: E402
from fake_streams import (  # noqa: E402
    FakeAppView,
    FakeJetstream,
    account_event,
    delete_event,
    identity_event,
    like_event,
    post_events,
)

from chatarchive.capture.config import Config as _Config  # noqa: E402
from chatarchive.capture.live import capture_live  # noqa: E402
from chatarchive.capture.runner import CaptureOptions  # noqa: E402
from chatarchive.capture.stream import StreamPolicy  # noqa: E402
from chatarchive.sources import bluesky as bluesky_source  # noqa: E402

FAST = StreamPolicy(backoff_base=0.05, backoff_max=0.5, idle_timeout=5.0, commit_interval=0.1, grace=0.2)


def stream(db, js, av, *, until, since=None, policy=FAST, jetstream=None):
    opts = CaptureOptions(since=dt(since) if since else None, until=dt(until), jetstream=jetstream or js.url,
                          appview=av.url, analyse=False)
    return capture_live(db, ["bluesky"], "#edchat", opts, _Config(), policy=policy)


def live_chat(n=60, lead=0.4, duration=2.0, seed=7):
    now = time.time()
    return now, make_chat(n, now + lead, duration=duration, questions=3, seed=seed)


def rows(db):
    return {r[0]: r[1:] for r in db.execute("SELECT id, matched, author_handle, text, deleted_at FROM posts")}


def test_stream_keeps_tagged_posts_and_untagged_replies_without_a_login(db, tmp_path):
    now, posts = live_chat()
    events = post_events(posts)
    lonely = next(p for p in posts if not p.tags and p.reply_to is None) if any(
        not p.tags and p.reply_to is None for p in posts[1:]) else None
    # a post tagged only in record.tags, in another case; a post of another chat
    t0 = now + 1.0
    extra_tagged = {"kind": "commit", "did": did_of("zoe"), "rev": "3x", "operation": "create",
                    "collection": "app.bsky.feed.post", "rkey": "3tagsonly2aa2",
                    "record": {"$type": "app.bsky.feed.post", "text": "only tags field", "createdAt": "2026-01-01T00:00:00.000Z",
                               "tags": ["EdChat"]}, "cid": "bafyx"}
    other = {"kind": "commit", "did": did_of("zoe"), "rev": "3y", "operation": "create",
             "collection": "app.bsky.feed.post", "rkey": "3otherchat2aa",
             "record": {"$type": "app.bsky.feed.post", "text": "#mathchat today", "createdAt": "2026-01-01T00:00:00.000Z",
                        "facets": [{"index": {"byteStart": 0, "byteEnd": 9},
                                    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "mathchat"}]}]},
             "cid": "bafyy"}
    noise = [(t0, extra_tagged), (t0, other), (t0, like_event(posts[2])), (t0, identity_event("alice")),
             (t0, account_event("bob"))]
    with FakeJetstream() as js, FakeAppView() as av:
        js.schedule(events + noise)
        result = stream(db, js, av, until=now + 3.2).results[0]
        profile_calls = [r.params["actors"] for r in av.log]
        assert js.connections[0]["params"]["wantedCollections"] == ["app.bsky.feed.post"]
    got = rows(db)
    by_n = {p.n: p for p in posts}
    chat = {p.n for p in posts if p.tags}
    # untagged replies whose parent or root is the chat's (at any depth below it)
    changed = True
    while changed:
        changed = False
        for p in posts:
            if p.n not in chat and p.reply_to in chat:
                chat.add(p.n)
                changed = True
    want_matched = {at_uri(p) for p in posts if p.tags} | {"at://did:plc:zoefake3/app.bsky.feed.post/3tagsonly2aa2"}
    want_context = {at_uri(by_n[n]) for n in chat if not by_n[n].tags}
    assert {k for k, v in got.items() if v[0] == 1} == want_matched
    assert {k for k, v in got.items() if v[0] == 0} == want_context and want_context
    assert result.status == "ok" and result.added == len(got)
    if lonely is not None:
        assert at_uri(lonely) not in got  # untagged and not a reply into the chat
    # no like, no other chat, no identity change stored
    assert db.execute("SELECT count(*) FROM posts WHERE text LIKE '#mathchat%'").fetchone()[0] == 0
    assert not db.execute("SELECT 1 FROM authors WHERE handle LIKE '%renamed%'").fetchone()
    # handles from getProfiles: batched (25 at most), every DID asked once, never one request per post
    asked = [d for call in profile_calls for d in call]
    assert all(len(call) <= 25 for call in profile_calls) and len(asked) == len(set(asked))
    assert len(profile_calls) < len(got) / 4
    host = next(p for p in posts if p.author == "host")
    assert got[at_uri(host)][1] == "host.bsky.social"
    # the same row the search/file path makes of the same post (one normalize)
    view = FakeBluesky(posts)._view(host)
    ref = next(iter(bluesky_source.normalize(view, bluesky_source.FORMAT.context("x"))))
    row = db.execute("SELECT text, created_at, url, root_id, reply_to_id, author_id, author_name FROM posts WHERE id = ?",
                     [ref.id]).fetchone()
    assert row == (ref.text, ref.created_at, ref.url, ref.root_id, ref.reply_to_id, ref.author.id, ref.author.name)
    tags = {r[0] for r in db.execute("SELECT h.tag FROM post_hashtags ph JOIN hashtags h ON h.id = ph.hashtag_id "
                                     "WHERE ph.post_id = ?", [ref.id])}
    assert {t.lower() for t in tags} == {t.lower() for t in ref.hashtags}


def test_stream_replays_from_its_cursor_reconnects_a_few_seconds_back_and_merges_duplicates(db):
    now = time.time()
    past = make_chat(40, now - 120, duration=60, questions=2, seed=3)  # in the stream's buffer already
    live = make_chat(40, now + 0.3, duration=1.5, questions=2, seed=4, first_n=500)
    with FakeJetstream() as js, FakeAppView() as av:
        js.schedule(post_events(past) + post_events(live))
        js.drop_after = [15]  # the first connection dies after 15 events
        js.duplicate_seqs = {js.log[3]["seq"], js.log[20]["seq"]}
        result = stream(db, js, av, since=now - 130, until=now + 2.6).results[0]
        conns = list(js.connections)
        first_sent = js.last_sent[0]
    assert abs(conns[0]["cursor"] - int((now - 130) * 1e6)) < 1000  # replay from the window start (ms)
    # the reconnect asks for the last event it read, 5 seconds back
    assert conns[1]["cursor"] == first_sent - 5_000_000
    assert result.reconnects >= 1
    want = {at_uri(p) for p in past + live if p.tags}
    got = [r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")]
    assert sorted(got) == sorted(want)  # nothing lost, nothing twice
    assert result.added == db.execute("SELECT count(*) FROM posts").fetchone()[0]
    assert result.updated == 0 or result.unchanged >= 0


def test_a_deleted_post_leaves_a_tombstone_and_no_byte_of_its_text(db_path, tmp_path):
    db = open_db(db_path, create=True)
    now, posts = live_chat(40)
    victim = next(p for p in posts if p.tags and p.reply_to is None and p.n > 10)
    victim.text = "Flibbertigibbet marmalade xylograph https://secret.example/only-here #edchat"
    replies = [p for p in posts if p.reply_to == victim.n]
    with FakeJetstream() as js, FakeAppView() as av:
        events = post_events(posts)
        # the victim carries an image with alt text only it has
        for _, ev in events:
            if ev["rkey"] == at_uri(victim).rsplit("/", 1)[1]:
                ev["record"]["embed"] = {"$type": "app.bsky.embed.images", "images": [
                    {"alt": "quixotic alt words", "image": {"$type": "blob", "ref": {"$link": "bafkreivictimimage"},
                                                            "mimeType": "image/jpeg", "size": 10}}]}
                ev["record"].setdefault("facets", []).append(
                    {"index": {"byteStart": 35, "byteEnd": 66},
                     "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://secret.example/only-here"}]})
        js.schedule(events + [(now + 2.6, delete_event(victim)),
                              (now + 2.6, {**delete_event(victim), "rkey": "3neverseen2aa"})])
        result = stream(db, js, av, until=now + 3.4).results[0]
    assert result.deleted == 1
    row = db.execute("SELECT text, html, deleted_at, reply_to_id, author_id FROM posts WHERE id = ?",
                     [at_uri(victim)]).fetchone()
    assert row[0] == "" and row[1] is None and row[2] is not None and row[4] == did_of(victim.author)
    assert not db.execute("SELECT 1 FROM raw WHERE post_id = ?", [at_uri(victim)]).fetchone()
    assert not db.execute("SELECT 1 FROM post_links pl JOIN links l ON l.id = pl.link_id "
                          "WHERE l.url LIKE '%secret.example%'").fetchone()
    assert not db.execute("SELECT 1 FROM media WHERE alt LIKE '%quixotic%'").fetchone()
    assert not db.execute("SELECT 1 FROM posts_fts WHERE posts_fts MATCH 'marmalade'").fetchone()
    # the thread stays whole: replies still point at the tombstone
    for r in replies:
        assert db.execute("SELECT reply_to_id FROM posts WHERE id = ?", [at_uri(r)]).fetchone()[0] == at_uri(victim)
    assert db.execute("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL").fetchone()[0] == 1
    db.conn.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith(db_path.name)]
    assert files
    for f in files:  # the archive, and any -wal or -journal
        data = f.read_bytes()
        for word in (b"Flibbertigibbet", b"flibbertigibbet", b"marmalade", b"marmalad", b"xylograph",
                     b"secret.example", b"quixotic"):
            assert word not in data, (f.name, word)


def test_the_2026_protocol_with_sequence_cursors_and_cursor_too_old(db):
    now, posts = live_chat(30, duration=1.2)
    with FakeJetstream(protocols={"v2"}) as js, FakeAppView() as av:
        js.schedule(post_events(posts))
        first = stream(db, js, av, until=now + 2.0).results[0]
        c0 = js.connections[0]
        assert c0["protocol"] == "v2" and c0["subprotocol"] == "xrpc.v1.json"
        assert c0["params"]["kinds"] == ["commit"] and c0["params"]["collections"] == ["app.bsky.feed.post"]
        state = json.loads(db.execute("SELECT state FROM captures ORDER BY id DESC").fetchone()[0])
        assert state["protocol"] == "v2" and isinstance(state["seq"], int)
        # a run that did not end cleanly is resumed from the same host's sequence number
        db.execute("UPDATE captures SET status = 'running'")
        more = make_chat(10, time.time() + 0.2, duration=0.5, questions=1, seed=9, first_n=800)
        js.schedule(post_events(more))
        second = stream(db, js, av, until=time.time() + 1.4).results[0]
        assert second.resumed and js.connections[1]["cursor"] == state["seq"]
        # sequences below what the server keeps: CursorTooOld, read from a time cursor instead
        db.execute("UPDATE captures SET status = 'running'")
        js.floor_seq = 10**9
        third = stream(db, js, av, until=time.time() + 1.0).results[0]
        assert third.status == "ok" and js.connections[-1]["cursor"] >= 10**15
    want = {at_uri(p) for p in posts + more if p.tags}
    assert {r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")} == want
    assert first.added + second.added + third.added == db.execute("SELECT count(*) FROM posts").fetchone()[0]


def test_replies_to_an_archived_post_are_caught_after_a_restart(db):
    now, posts = live_chat(30, duration=1.0)
    host_q = next(p for p in posts if p.author == "host")
    with FakeJetstream() as js, FakeAppView() as av:
        js.schedule(post_events(posts))
        stream(db, js, av, until=now + 1.5)
        # a new run: untagged replies to the question it stored
        t2 = time.time()
        later = make_chat(6, t2 + 0.5, duration=0.3, questions=0, seed=5, first_n=700)[1:]  # not its pre-chat post
        for i, p in enumerate(later):
            p.tags, p.text, p.reply_to, p.t = [], f"untagged reply {p.n}", host_q.n, t2 + 0.4 + 0.1 * i
        js.schedule(post_events(posts + later)[-len(later):])
        stream(db, js, av, until=t2 + 1.4)
    for p in later:
        assert db.execute("SELECT matched FROM posts WHERE id = ?", [at_uri(p)]).fetchone() == (0,)


def test_the_raw_file_of_a_stream_imports_as_the_same_posts(db, tmp_path):
    from chatarchive.api import Archive

    now, posts = live_chat(30, duration=1.2)
    raw = tmp_path / "stream.jsonl"
    with FakeJetstream() as js, FakeAppView() as av:
        js.schedule(post_events(posts))
        opts = CaptureOptions(until=dt(now + 2.0), jetstream=js.url, appview=av.url, analyse=False, raw_path=str(raw))
        capture_live(db, ["bluesky"], "#edchat", opts, _Config(), policy=FAST)
    again = Archive(tmp_path / "again.db", create=True)
    again.import_files([str(raw)], analyse=False)
    captured = {r[0]: r[1:] for r in db.execute("SELECT id, text, author_handle, created_at FROM posts")}
    imported = {r[0]: r[1:] for r in again.db.execute("SELECT id, text, author_handle, created_at FROM posts")}
    assert imported == captured and len(captured) >= 30
