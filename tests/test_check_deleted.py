"""`chatarchive check-deleted` (#11): each platform is asked which archived
posts still exist, against the fake X, Mastodon and Bluesky servers of the
capture tests (real HTTP on 127.0.0.1).  The archives are built by
`chatarchive capture` from those servers; a post "deleted on its platform"
is one the fake server no longer has."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from fake_servers import PEOPLE, ChatPost, FakeBluesky, FakeMastodon, FakeX, Response, at_uri, x_id

from chatarchive import Archive
from chatarchive.capture.config import Config, Secret
from chatarchive.capture.http import ManualClock, RetryPolicy
from chatarchive.cli import cli

X_TOKEN = "x-check-deleted-Zq81"
B_HANDLE, B_PASSWORD = "tester.bsky.social", "abcd-efgh-ijkl-mnop"


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("X_BEARER_TOKEN", "CHATARCHIVE_CONFIG", "MASTODON_TOKEN", "BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"):
        monkeypatch.delenv(var, raising=False)


class Mastodon(FakeMastodon):
    """The fake server with ``GET /api/v1/statuses/:id`` (404 once a status is gone)."""

    def route(self, req: Any) -> Any:
        m = re.fullmatch(r"/api/v1/statuses/(\d+)", req.path)
        if m is None:
            return super().route(req)
        over, headers = self.rate(req)
        if over:
            return Response(429, {"error": "Too many requests"}, headers)
        p = self.by_local.get(m.group(1))
        if p is None:
            return Response(404, {"error": "Record not found"}, headers)
        return Response(200, self.rendered(p), headers)


class AppView(FakeBluesky):
    """The fake server with the public AppView's ``app.bsky.feed.getPosts``
    (no login; 1 to 25 uris; a post it does not have is left out)."""

    def route(self, req: Any) -> Any:
        if req.path != "/xrpc/app.bsky.feed.getPosts":
            return super().route(req)
        count, reset = self.count("all", self.WINDOW)
        headers = self.rate_headers(count, reset)
        uris = req.params.get("uris", [])
        if not 1 <= len(uris) <= 25:
            return Response(400, {"error": "InvalidRequest", "message": "uris must hold 1 to 25 items"}, headers)
        return Response(200, {"posts": [self.view(self.by_uri[u]) for u in uris if u in self.by_uri]}, headers)


def remove(server: Any, posts: list[ChatPost]) -> None:
    """The platform deletes these posts (the fake stops knowing them)."""
    gone = {p.n for p in posts}
    with server.lock:
        server.posts = [p for p in server.posts if p.n not in gone]
        server.add([])


def chat(n: int, start: float, first: int, word: str) -> list[ChatPost]:
    return [ChatPost(first + i, start + 10 * i, PEOPLE[i % len(PEOPLE)],
                     f"{word}{i}x answer number {i} #edchat", ["edchat"]) for i in range(n)]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Platforms:
    """One archive captured from the three fake servers (kept running)."""

    def __init__(self, tmp_path: Path, runner: Any, start: float):
        self.db = tmp_path / "chats.db"
        self.runner = runner
        self.x_posts = chat(250, start, 0, "xword")
        self.m_posts = chat(30, start + 5, 1000, "mword")
        self.b_posts = chat(60, start + 7, 2000, "bword")
        self.x = FakeX(self.x_posts, token=X_TOKEN)
        self.mastodon = Mastodon(self.m_posts, domain="mastodon.example")
        self.bluesky = AppView(self.b_posts, handle=B_HANDLE, password=B_PASSWORD)
        self.start = start

    def capture(self) -> None:
        window = ["--since", iso(self.start - 60), "--until", iso(self.start + 3000)]
        for args, env in ((["x", "#edchat", "--api-base", self.x.url], {"X_BEARER_TOKEN": X_TOKEN}),
                          (["mastodon", "#edchat", "--instance", self.mastodon.url], {}),
                          (["bluesky", "#edchat", "--service", self.bluesky.url],
                           {"BLUESKY_HANDLE": B_HANDLE, "BLUESKY_APP_PASSWORD": B_PASSWORD})):
            res = self.runner.invoke(cli, ["capture", str(self.db), *args, *window, "--quiet"], env=env)
            assert res.exit_code == 0, res.output
        with Archive(self.db) as a:
            counts = dict(a.conn.execute("SELECT platform, count(*) FROM posts GROUP BY platform"))
        assert counts == {"x": 250, "mastodon": 30, "bluesky": 60}
        for srv in (self.x, self.mastodon, self.bluesky):
            srv.log.clear()

    def check(self, *args: str, x_token: str | None = X_TOKEN, env: dict[str, str] | None = None) -> Any:
        return self.runner.invoke(
            cli, ["check-deleted", str(self.db), "--api-base", self.x.url, "--appview", self.bluesky.url,
                  "--instance", self.mastodon.url, *args],
            env={**({"X_BEARER_TOKEN": x_token} if x_token else {}), **(env or {})})


@contextmanager
def platforms(tmp_path: Path, runner: Any) -> Iterator[Platforms]:
    p = Platforms(tmp_path, runner, float(int(time.time()) - 3 * 3600))
    with p.x, p.mastodon, p.bluesky:
        p.capture()
        yield p


def posts_table(db: Path) -> dict[str, tuple]:
    with Archive(db) as a:
        return {r[0]: r[1:] for r in a.conn.execute("SELECT id, text, deleted_at FROM posts")}


def file_bytes(db: Path) -> bytes:
    return b"".join(Path(str(db) + s).read_bytes() for s in ("", "-wal", "-journal") if Path(str(db) + s).exists())


# --------------------------------------------------------------------------


def test_gone_posts_on_every_platform_become_tombstones_and_leave_the_exports(tmp_path, runner):
    with platforms(tmp_path, runner) as p:
        gone_x, gone_m, gone_b = p.x_posts[3:10], p.m_posts[::7], p.b_posts[40:44]
        remove(p.x, gone_x)
        remove(p.mastodon, gone_m)
        remove(p.bluesky, gone_b)
        res = p.check("--json")
        assert res.exit_code == 0, res.output
        lookups = p.x.requests_to("/2/tweets")
        statuses = p.mastodon.requests_to("/api/v1/statuses/")
        get_posts = p.bluesky.requests_to("/xrpc/app.bsky.feed.getPosts")
    out = json.loads(res.stdout)
    want = {x_id(q) for q in gone_x} | {p.mastodon.uri(q) for q in gone_m} | {at_uri(q) for q in gone_b}
    by = {r["platform"]: r for r in out["platforms"]}
    assert set(by["x"]["gone_ids"]) | set(by["mastodon"]["gone_ids"]) | set(by["bluesky"]["gone_ids"]) == want
    assert out["marked"] == len(want) and not out["dry_run"]
    assert (by["x"]["present"], by["mastodon"]["present"], by["bluesky"]["present"]) == (243, 30 - 5, 56)
    # 250 X ids: 3 requests of at most 100; 60 uris: 3 requests of at most 25; one request per status
    assert len(lookups) == 3 and sorted(len(r.param("ids").split(",")) for r in lookups) == [50, 100, 100]
    assert {i for r in lookups for i in r.param("ids").split(",")} == {x_id(q) for q in p.x_posts}
    assert all(r.auth == f"Bearer {X_TOKEN}" for r in lookups)
    assert len(get_posts) == 3 and max(len(r.params["uris"]) for r in get_posts) == 25
    assert all(r.auth is None for r in get_posts)  # the public AppView: no login
    assert len(statuses) == 30
    table = posts_table(p.db)
    for post_id in want:
        assert table[post_id][0] == "" and table[post_id][1] is not None
    assert sum(1 for t, d in table.values() if d is None and t) == 340 - len(want)
    raw = file_bytes(p.db)
    for q in gone_x + gone_m + gone_b:
        word = q.text.split()[0].encode()
        assert word not in raw, word  # no byte of a gone post's content left in the file
    assert p.x_posts[0].text.split()[0].encode() in raw  # (the search can find what is there)
    with Archive(p.db) as a:
        slugs = [s.slug for s in a.sessions()]
        exported = "".join(a.export(s, "json") for s in slugs)
    assert slugs and gone_x[0].text.split()[0] not in exported and p.x_posts[0].text.split()[0] in exported


def test_a_second_run_asks_only_about_live_posts_and_marks_nothing(tmp_path, runner):
    with platforms(tmp_path, runner) as p:
        remove(p.x, p.x_posts[:5])
        first = p.check(env={"FORCE_COLOR": "1"})  # as on a terminal: a progress bar per platform
        assert first.exit_code == 0
        assert "250/250" in first.stderr and "60/60" in first.stderr and "\x1b[" not in first.stdout
        p.x.log.clear()
        res = p.check("--json")
        assert res.exit_code == 0, res.output
        asked = {i for r in p.x.requests_to("/2/tweets") for i in r.param("ids").split(",")}
    assert json.loads(res.stdout)["marked"] == 0
    assert asked == {x_id(q) for q in p.x_posts[5:]}


def test_dry_run_lists_what_is_gone_and_writes_nothing(tmp_path, runner):
    with platforms(tmp_path, runner) as p:
        remove(p.x, p.x_posts[:2])
        remove(p.bluesky, p.b_posts[:1])
        before = file_bytes(p.db)
        wal = Path(str(p.db) + "-wal").exists()
        res = p.check("--dry-run")
        assert res.exit_code == 0, res.output
    assert file_bytes(p.db) == before and Path(str(p.db) + "-wal").exists() == wal
    assert res.stderr == ""  # not a terminal: no progress bar
    for q in p.x_posts[:2]:
        assert f"would remove: {x_id(q)}" in res.stdout
    assert f"would remove: {at_uri(p.b_posts[0])}" in res.stdout
    assert "3 post(s) would be marked deleted; nothing was written" in res.stdout


def test_a_platform_without_credentials_is_skipped_with_one_line(tmp_path, runner):
    with platforms(tmp_path, runner) as p:
        remove(p.x, p.x_posts[:3])
        remove(p.bluesky, p.b_posts[:2])
        res = p.check(x_token=None)
        assert res.exit_code == 0, res.output
        assert p.x.requests_to("/2/tweets") == []
    notes = res.stderr.strip().splitlines()
    assert len(notes) == 1 and "250 X post(s) not checked" in notes[0] and "X_BEARER_TOKEN" in notes[0]
    table = posts_table(p.db)
    assert all(table[x_id(q)][1] is None for q in p.x_posts)  # X untouched
    assert all(table[at_uri(q)][1] is not None for q in p.b_posts[:2])  # Bluesky checked all the same
    assert "bluesky: 60 checked, 58 still there, 2 gone" in res.stdout


def test_429_and_5xx_are_waited_out_and_retried(tmp_path, runner):
    with platforms(tmp_path, runner) as p:
        remove(p.x, p.x_posts[10:12])
        clock = ManualClock(time.time())
        p.x.clock = p.mastodon.clock = p.bluesky.clock = clock  # the servers' rate windows on the same clock
        p.x.fail("429", reset_in=120, path="/2/tweets")  # x-rate-limit-reset: now + 120
        p.mastodon.fail("503", times=2, path="/api/v1/statuses/")
        p.bluesky.fail("429", reset_in=30, path="/xrpc/app.bsky.feed.getPosts")
        with Archive(p.db) as a:
            got = a.check_deleted(config=Config(x_bearer_token=Secret(X_TOKEN)), api_base=p.x.url,
                                  appview=p.bluesky.url, instances=[p.mastodon.url], clock=clock,
                                  policy=RetryPolicy())
        x_status = [r.status for r in p.x.requests_to("/2/tweets")]
        m_status = [r.status for r in p.mastodon.requests_to("/api/v1/statuses/")]
        b_status = [r.status for r in p.bluesky.requests_to("/xrpc/app.bsky.feed.getPosts")]
    assert x_status == [429, 200, 200, 200]
    assert m_status[:3] == [503, 503, 200] and len(m_status) == 32
    assert b_status == [429, 200, 200, 200]
    assert any(120 <= s <= 123 for s in clock.sleeps) and any(30 <= s <= 33 for s in clock.sleeps)
    assert clock.sleeps.count(1.0) >= 1 and 2.0 in clock.sleeps  # the 5xx backoff
    assert set(got.gone) == {x_id(q) for q in p.x_posts[10:12]} and got.marked == 2


def test_an_unknown_session_is_one_line_and_no_request(tmp_path, runner):
    with platforms(tmp_path, runner) as p:
        before = file_bytes(p.db)
        res = p.check("no-such-session")
        requests = len(p.x.log) + len(p.mastodon.log) + len(p.bluesky.log)
    assert res.exit_code == 1 and "no-such-session" in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert requests == 0 and file_bytes(p.db) == before


def test_a_refused_token_is_one_line_without_the_token_and_writes_nothing(tmp_path, runner):
    with platforms(tmp_path, runner) as p:
        remove(p.bluesky, p.b_posts[:2])
        before = file_bytes(p.db)
        res = p.check(x_token="wrong-token-Kq7w")
    assert res.exit_code == 1 and "401" in res.output and "X_BEARER_TOKEN" in res.output
    assert "wrong-token-Kq7w" not in res.output and "Traceback" not in res.output
    assert file_bytes(p.db) == before  # Bluesky's answers are not written either: all or nothing
