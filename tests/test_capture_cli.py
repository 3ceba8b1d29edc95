"""`chatarchive capture` as a user runs it: options, config files, secrets,
the live panel, context for a session, and a follow killed with SIGKILL."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fake_servers import FakeBluesky, FakeMastodon, FakeX, at_uri, make_chat, x_id
from rich.console import Console

from chatarchive.analysis.qa import looks_like_question as is_question
from chatarchive.archive.schema import open_db
from chatarchive.capture.config import ConfigError, Secret, load_config
from chatarchive.capture.ui import LiveUI
from chatarchive.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"
X_TOKEN = "AAAAxSecretBearer0000Kq7"
M_TOKEN = "mastoSecretToken9Zt"
B_HANDLE, B_PASSWORD = "tester.bsky.social", "sk3t-pa55-w0rd-q9q9"


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("X_BEARER_TOKEN", "CHATARCHIVE_CONFIG", "MASTODON_TOKEN", "BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"):
        monkeypatch.delenv(var, raising=False)


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.fixture
def recent_chat():
    start = float(int(time.time()) - 3 * 3600)
    return start, make_chat(150, start)


def test_capture_is_documented_in_help_and_readme(runner):
    res = runner.invoke(cli, ["capture", "--help"])
    assert res.exit_code == 0
    for word in ("--follow", "--interval", "--instance", "--api-base", "--archive", "--raw", "--context",
                 "X_BEARER_TOKEN", "BLUESKY_APP_PASSWORD", "context SESSION"):
        assert word in res.output
    readme = README.read_text()
    assert "chatarchive capture chats.db x" in readme and "chatarchive capture chats.db mastodon" in readme
    assert "chatarchive capture chats.db bluesky" in readme and "chatarchive capture chats.db context" in readme


@pytest.mark.parametrize("args,message", [
    (["x", "#a", "--until", "2026-01-01", "--duration", "1h"], "not both"),
    (["mastodon", "#a"], "--instance"),
    (["x", "#a", "--instance", "https://mastodon.social"], "--instance is for Mastodon"),
    (["bluesky", "#a", "--archive"], "--archive"),
    (["x", "#a", "--since", "yesterday"], "Invalid time"),
    (["x", "#a", "--since", "2026-01-01", "--duration", "soon"], "Invalid duration"),
])
def test_bad_options_are_one_clear_line(runner, db_path, args, message):
    res = runner.invoke(cli, ["capture", str(db_path), *args])
    assert res.exit_code in (1, 2) and message in res.output and "Traceback" not in res.output


def test_config_file_readable_by_others_is_refused(runner, db_path, tmp_path):
    cfg = write_config(tmp_path / "c.toml", f'[x]\nbearer_token = "{X_TOKEN}"\n', 0o644)
    res = runner.invoke(cli, ["capture", str(db_path), "x", "#edchat", "--config", str(cfg)])
    assert res.exit_code == 1 and "chmod 600" in res.output and X_TOKEN not in res.output
    with pytest.raises(ConfigError):
        load_config(cfg)
    os.chmod(cfg, 0o600)
    assert load_config(cfg).x_bearer_token == Secret(X_TOKEN)


def test_tokens_come_from_the_config_file_and_env_wins(tmp_path, monkeypatch):
    cfg = write_config(tmp_path / "config" / "chatarchive" / "config.toml", f"""
[x]
bearer_token = "{X_TOKEN}"
[bluesky]
handle = "{B_HANDLE}"
app_password = "{B_PASSWORD}"
service = "https://pds.example"
[mastodon]
token = "{M_TOKEN}"
[mastodon.tokens]
"https://Fosstodon.org/" = "other"
""")
    c = load_config()  # the default path under XDG_CONFIG_HOME
    assert c.path == cfg and c.bluesky_handle == B_HANDLE and c.bluesky_service == "https://pds.example"
    assert c.mastodon_tokens["fosstodon.org"] == Secret("other")
    assert X_TOKEN not in repr(c) and B_PASSWORD not in repr(c)  # secrets do not print
    monkeypatch.setenv("X_BEARER_TOKEN", "from-env")
    assert load_config().x_bearer_token == Secret("from-env")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = write_config(tmp_path / "bad.toml", "[x\n")
    with pytest.raises(ConfigError, match="TOML"):
        load_config(bad)


def test_capture_with_a_config_file(runner, db_path, tmp_path, recent_chat):
    _, posts = recent_chat
    cfg = write_config(tmp_path / "private.toml", f'[x]\nbearer_token = "{X_TOKEN}"\n')
    with FakeX(posts, token=X_TOKEN) as srv:
        res = runner.invoke(cli, ["capture", str(db_path), "x", "#edchat", "--config", str(cfg), "--api-base", srv.url,
                                  "--no-analyse"])
    assert res.exit_code == 0, res.output
    assert "posts added" in res.output and "capture #1" in res.output
    assert {r.auth for r in srv.log} == {f"Bearer {X_TOKEN}"}


def test_secrets_never_reach_the_database_raw_pages_output_or_logs(runner, db_path, tmp_path, recent_chat, caplog):
    _, posts = recent_chat
    caplog.set_level(logging.DEBUG)  # httpx/httpcore debug logging included
    raw = {p: tmp_path / f"{p}.jsonl" for p in ("x", "mastodon", "bluesky")}
    env = {"X_BEARER_TOKEN": X_TOKEN, "MASTODON_TOKEN": M_TOKEN,
           "BLUESKY_HANDLE": B_HANDLE, "BLUESKY_APP_PASSWORD": B_PASSWORD}
    outputs = []
    with FakeX(posts, token=X_TOKEN) as x, FakeMastodon(posts, token=M_TOKEN) as m, \
            FakeBluesky(posts, handle=B_HANDLE, password=B_PASSWORD) as b:
        b.fail("expired", path="/xrpc/app.bsky.feed.searchPosts")  # a refresh too
        for platform, extra in (("x", ["--api-base", x.url]), ("mastodon", ["--instance", m.url]),
                                ("bluesky", ["--service", b.url])):
            res = runner.invoke(cli, ["capture", str(db_path), platform, "#edchat", *extra, "--raw", str(raw[platform]),
                                      "--context", "--json"], env=env)
            assert res.exit_code == 0, res.output
            outputs.append(res.output)
        # the error paths print server answers: they must not echo secrets either
        res = runner.invoke(cli, ["capture", str(db_path), "x", "#edchat", "--api-base", x.url],
                            env={"X_BEARER_TOKEN": "wrong-" + X_TOKEN})
        outputs.append(res.output)
        x.fail("echo")
        res = runner.invoke(cli, ["capture", str(db_path), "x", "#edchat", "--api-base", x.url], env=env)
        assert res.exit_code == 1 and "bad header: Bearer ***" in res.output
        outputs.append(res.output)
        issued = list(b.issued)
    assert len(issued) >= 4  # access + refresh, twice
    db = open_db(db_path, create=True)
    assert db.execute("SELECT count(DISTINCT platform) FROM posts").fetchone()[0] == 3
    db.conn.close()
    blobs = [p.read_bytes() for p in tmp_path.glob("chats.db*")]  # the file, -wal, -shm
    blobs += [p.read_bytes() for p in raw.values()]
    blobs += [o.encode() for o in outputs] + [caplog.text.encode()]
    assert len(caplog.records) > 0
    for secret in [X_TOKEN, M_TOKEN, B_PASSWORD, *issued]:
        for blob in blobs:
            assert secret.encode() not in blob


def test_live_panel_shows_posts_people_question_and_rate_limit(db, recent_chat):
    from chatarchive.capture.base import Window
    from chatarchive.capture.runner import run_capture
    from chatarchive.capture.x import XCapture

    _, posts = recent_chat
    console = Console(record=True, force_terminal=True, width=110, color_system=None)
    with FakeX(posts, token=X_TOKEN) as srv:
        run_capture(db, XCapture("#edchat", token=X_TOKEN, api_base=srv.url), Window(), ui=LiveUI(console))
    text = console.export_text()
    last_q = max((p for p in posts if p.text.startswith("Q")), key=lambda p: p.t)
    newest = max((p for p in posts if p.tags), key=lambda p: p.t)
    assert "chatarchive capture · x · #edchat" in text
    assert f"@host: {last_q.text}" in text  # the current question
    assert f"@{newest.author}" in text  # among the latest posts
    people = len({p.author for p in posts if p.tags})
    lines = [line.strip("│ ") for line in text.splitlines()]
    assert f"Participants  {people}" in lines
    assert f"Posts         {len([p for p in posts if p.tags])} matching this run" in text
    assert any(re.match(r"Rate limit    44\d/450 left, resets in (\d+m\d\ds|\d+s)$", line) for line in lines), text
    assert any(line.startswith("Status        ok") for line in lines)
    assert is_question("@alice Q3: why?") and not is_question("Q3 coming up next")


def test_context_for_a_detected_session(runner, db_path, recent_chat):
    _, posts = recent_chat
    env = {"X_BEARER_TOKEN": X_TOKEN}
    with FakeX(posts, token=X_TOKEN) as srv:
        res = runner.invoke(cli, ["capture", str(db_path), "x", "#edchat", "--api-base", srv.url], env=env)
        assert res.exit_code == 0, res.output
        db = open_db(db_path, create=True)
        slug = db.execute("SELECT slug FROM sessions WHERE hashtag = 'edchat' COLLATE NOCASE").fetchone()[0]
        untagged = [p for p in posts if not p.tags and p.reply_to is not None]
        assert not any(db.execute("SELECT 1 FROM posts WHERE id = ?", [x_id(p)]).fetchone() for p in untagged)
        res = runner.invoke(cli, ["capture", str(db_path), "context", slug, "--api-base", srv.url, "--json"], env=env)
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out[0]["platform"] == "x" and out[0]["context"]["added"] >= len(untagged)
        rows = dict(open_db(db_path, create=True).execute("SELECT id, matched FROM posts").fetchall())
        assert all(rows[x_id(p)] == 0 for p in untagged)
        missing = runner.invoke(cli, ["capture", str(db_path), "context", "no-such-session"], env=env)
        assert missing.exit_code == 1 and "no-such-session" in missing.output
        no_token = runner.invoke(cli, ["capture", str(db_path), "context", slug, "--api-base", srv.url])
        assert no_token.exit_code == 1 and "X_BEARER_TOKEN" in no_token.output


# --------------------------------------------------------------------------
# kill -9 in the middle of a follow


def _cli_process(args: list[str], env: dict) -> subprocess.Popen:
    code = "import sys; from chatarchive.cli import cli; sys.exit(cli())"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _count(db_path: Path) -> int:
    try:
        con = sqlite3.connect(db_path, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM posts WHERE matched = 1").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize("platform", ["x", "mastodon", "bluesky"])
def test_kill_9_mid_follow_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path, platform):
    db_path = tmp_path / "chats.db"
    now = time.time()
    # 100 posts arriving over 2.5 seconds while the follow runs
    posts = make_chat(100, now + 0.5, duration=2.5, questions=3)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "X_BEARER_TOKEN": X_TOKEN,
           "BLUESKY_HANDLE": B_HANDLE, "BLUESKY_APP_PASSWORD": B_PASSWORD}
    env.pop("MASTODON_TOKEN", None)
    if platform == "x":
        srv = FakeX(posts, token=X_TOKEN)
        key = x_id
    elif platform == "mastodon":
        srv = FakeMastodon(posts)
        key = srv.uri
    else:
        srv = FakeBluesky(posts, handle=B_HANDLE, password=B_PASSWORD)
        key = at_uri
    with srv:
        target = ["--api-base", srv.url] if platform != "mastodon" else ["--instance", srv.url]
        args = ["capture", str(db_path), platform, "#edchat", *target, "--no-analyse"]
        proc = _cli_process(args + ["--follow", "--interval", "0.2"], env)
        try:
            deadline = time.time() + 30
            while _count(db_path) < 12 and time.time() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert proc.poll() is None, proc.stderr.read().decode()
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        killed_at = _count(db_path)
        assert 12 <= killed_at < len([p for p in posts if p.tags]), proc.stderr.read().decode()[-3000:]
        while time.time() < now + 3.5:  # let the rest of the chat arrive
            time.sleep(0.1)
        rerun = _cli_process(args + ["--json"], env)
        out, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err.decode()
        summary = json.loads(out)
    assert summary["resumed"] is True and summary["status"] == "ok"
    db = open_db(db_path, create=True)
    want = {key(p) for p in posts if p.tags}
    got = [r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")]
    lost = want - set(got)
    assert not lost, f"lost {len(lost)} posts; killed at {killed_at}; states: " + repr(
        db.execute("SELECT id, status, state FROM captures").fetchall())
    assert sorted(got) == sorted(want)  # nothing lost, nothing twice
    rows = db.execute("SELECT status, added FROM captures ORDER BY id").fetchall()
    assert rows[0][0] == "running"  # the killed run never got to say goodbye
    assert rows[0][1] + rows[1][1] == len(want) + db.execute("SELECT count(*) FROM posts WHERE matched = 0").fetchone()[0]
    # the rerun read only what was new: it did not page the whole chat again
    assert summary["added"] == len(want) + db.execute(
        "SELECT count(*) FROM posts WHERE matched = 0").fetchone()[0] - rows[0][1]


def test_ctrl_c_stops_a_follow_cleanly(tmp_path):
    db_path = tmp_path / "chats.db"
    posts = make_chat(60, time.time() - 600, duration=300)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "X_BEARER_TOKEN": X_TOKEN}
    with FakeX(posts, token=X_TOKEN) as srv:
        proc = _cli_process(["capture", str(db_path), "x", "#edchat", "--api-base", srv.url, "--no-analyse",
                             "--follow", "--interval", "0.2"], env)
        deadline = time.time() + 30
        while len(srv.log) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert "(stopped)" in out.decode() and "Traceback" not in err.decode()
    db = open_db(db_path, create=True)
    assert db.execute("SELECT status FROM captures").fetchone() == ("interrupted",)
    assert db.execute("SELECT count(*) FROM posts WHERE matched = 1").fetchone()[0] == len([p for p in posts if p.tags])
    # the archive is back in rollback-journal mode, everything in the main file
    assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert not (tmp_path / "chats.db-wal").exists()


# --------------------------------------------------------------------------
# Streams: kill -9 mid-stream, every platform at once, set and forget

from datetime import datetime, timedelta, timezone  # noqa: E402

from fake_streams import FakeAppView, FakeJetstream, FakeMastodonStreaming, FakeXStream, post_events  # noqa: E402

from chatarchive.capture.http import ManualClock  # noqa: E402
from chatarchive.capture.schedule import Plan, next_occurrence, plan_at, run_schedule, stored_plans  # noqa: E402
from chatarchive.capture.ui import StreamPanel  # noqa: E402

STREAM_TOKEN = "masto-stream-Tq9"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.mark.parametrize("platform", ["bluesky", "mastodon", "x"])
def test_kill_9_mid_stream_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path, platform):
    db_path = tmp_path / "chats.db"
    now = time.time()
    posts = make_chat(100, now + 0.6, duration=3.4, questions=3)  # posts at +1.6 … +3.0 s
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "X_BEARER_TOKEN": X_TOKEN,
           "MASTODON_TOKEN": STREAM_TOKEN}
    av = FakeAppView().start()
    if platform == "bluesky":
        srv: Any = FakeJetstream().start()
        srv.schedule(post_events(posts))
        target = ["--jetstream", srv.url, "--appview", av.url]
        key = at_uri
    elif platform == "mastodon":
        srv = FakeMastodonStreaming(posts, stream_token=STREAM_TOKEN).start()
        target = ["--instance", srv.url]
        key = srv.uri
    else:
        srv = FakeXStream(posts, token=X_TOKEN, keepalive=0.3).start()
        target = ["--api-base", srv.url]
        key = x_id
    try:
        args = ["capture", str(db_path), platform, "#edchat", "--stream", *target, "--no-analyse"]
        proc = _cli_process(args + ["--until", _iso(now + 8)], env)
        try:
            deadline = time.time() + 30
            while _count(db_path) < 12 and time.time() < deadline and proc.poll() is None:
                time.sleep(0.02)
            assert proc.poll() is None, proc.stderr.read().decode()
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        killed_at = _count(db_path)
        tagged = [p for p in posts if p.tags]
        assert 12 <= killed_at < len(tagged), killed_at
        while time.time() < now + 3.3:  # the rest of the chat happens while nothing listens
            time.sleep(0.05)
        rerun = _cli_process(args + ["--until", _iso(time.time() + 2.0), "--json"], env)
        out, err_ = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err_.decode()
        summary = json.loads(out)
    finally:
        srv.stop()
        av.stop()
    assert summary["resumed"] is True and summary["status"] == "ok" and summary["mode"] == "stream"
    db = open_db(db_path, create=True)
    want = {key(p) for p in posts if p.tags}
    got = [r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")]
    lost = want - set(got)
    assert not lost, f"lost {len(lost)} posts; killed at {killed_at}; states: " + repr(
        db.execute("SELECT id, status, state FROM captures").fetchall())
    assert sorted(got) == sorted(want)  # nothing lost, nothing twice
    rows = db.execute("SELECT status, added FROM captures ORDER BY id").fetchall()
    assert rows[0][0] == "running"  # the killed run never got to say goodbye
    total = db.execute("SELECT count(*) FROM posts").fetchone()[0]
    assert rows[0][1] + rows[1][1] == total  # every row counted once, by the run that added it
    if platform == "bluesky":
        state = json.loads(db.execute("SELECT state FROM captures WHERE id = 1").fetchone()[0])
        assert srv.connections[-1]["cursor"] <= state["time_us"] - 5_000_000 + 1
    if platform == "x":  # the rule the killed run left behind was reused, then removed at the end
        assert srv.rules == {}


def test_all_platforms_at_once_into_one_session(runner, db_path, tmp_path):
    now = time.time()
    posts = make_chat(90, now + 0.3, duration=3.0, questions=3)
    env = {"X_BEARER_TOKEN": X_TOKEN, "MASTODON_TOKEN": STREAM_TOKEN}
    with FakeJetstream() as js, FakeAppView() as av, FakeMastodonStreaming(posts, stream_token=STREAM_TOKEN) as m, \
            FakeXStream(posts, token=X_TOKEN, keepalive=0.3) as x:
        js.schedule(post_events(posts))
        res = runner.invoke(cli, ["capture", str(db_path), "all", "#edchat", "--instance", m.url, "--api-base", x.url,
                                  "--jetstream", js.url, "--appview", av.url, "--until", _iso(now + 3.6)], env=env)
    assert res.exit_code == 0, res.output
    for name in ("bluesky '#edchat' stream", "x '#edchat' stream", f"{m.url[7:]} '#edchat' stream"):
        assert name in res.output
    db = open_db(db_path, create=True)
    per = dict(db.execute("SELECT platform, count(*) FROM posts WHERE matched = 1 GROUP BY platform").fetchall())
    n = len([p for p in posts if p.tags])
    assert per == {"bluesky": n, "mastodon": n, "x": n}
    sessions = db.execute("SELECT platforms FROM sessions").fetchall()
    assert len(sessions) == 1 and sorted(json.loads(sessions[0][0])) == ["bluesky", "mastodon", "x"]


def test_all_skips_what_it_lacks_with_one_line_each(runner, db_path):
    now = time.time()
    posts = make_chat(30, now + 0.2, duration=2.2, questions=1)
    with FakeJetstream() as js, FakeAppView() as av:
        js.schedule(post_events(posts))
        res = runner.invoke(cli, ["capture", str(db_path), "all", "#edchat", "--jetstream", js.url, "--appview", av.url,
                                  "--until", _iso(now + 2.0), "--no-analyse"])
    assert res.exit_code == 0, res.output
    assert "x: skipped: set X_BEARER_TOKEN" in res.output
    assert "mastodon: skipped: give --instance URL" in res.output
    assert "bluesky '#edchat' stream" in res.output
    db = open_db(db_path, create=True)
    assert db.execute("SELECT count(*) FROM posts WHERE matched = 1").fetchone()[0] == len([p for p in posts if p.tags])


def test_at_a_time_waits_then_captures_that_window(runner, db_path):
    now = time.time()
    start = now + 1.2
    before = make_chat(10, now - 30, duration=20, questions=0, seed=3)  # before the window: not in it
    posts = make_chat(30, start - 1.0, duration=2.6, questions=1, seed=4, first_n=300)  # at +1.2 … +1.8
    with FakeJetstream() as js, FakeAppView() as av:
        js.schedule(post_events(before) + post_events(posts))
        res = runner.invoke(cli, ["capture", str(db_path), "bluesky", "#edchat", "--at", _iso(start), "--duration", "1s",
                                  "--jetstream", js.url, "--appview", av.url, "--no-analyse", "--json"])
        first_connect = js.connections[0]["at"]
    assert res.exit_code == 0, res.output
    assert first_connect >= start - 0.2  # it waited for the window
    out = json.loads(res.stdout)
    assert out["status"] == "ok" and out["mode"] == "stream"
    db = open_db(db_path, create=True)
    got = {r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")}
    want = {at_uri(p) for p in posts if p.tags and start <= p.t + 0.05 < start + 1}
    assert want and got == want


def test_weekly_occurrences_keep_local_time_across_dst_and_the_wait_is_on_the_clock():
    plan = plan_at("wed 20:00", "America/New_York", timedelta(hours=1, minutes=15), before=timedelta(minutes=15))
    # Tuesday 2026-03-03 12:00 UTC (winter, UTC-5): next is Wed 20:00 EST = Thu 01:00 UTC
    now = datetime(2026, 3, 3, 12, 0, tzinfo=timezone.utc)
    occ = next_occurrence([plan], now)
    assert occ is not None and occ.start == datetime(2026, 3, 5, 1, 0, tzinfo=timezone.utc)
    assert occ.capture_from == occ.start - timedelta(minutes=15) and occ.capture_until == occ.start + timedelta(hours=1, minutes=15)
    # after the DST change (2026-03-08) 20:00 EDT is 00:00 UTC
    occ2 = next_occurrence([plan], occ.capture_until + timedelta(seconds=1))
    assert occ2 is not None and occ2.start == datetime(2026, 3, 12, 0, 0, tzinfo=timezone.utc)
    # in the middle of a chat, that chat is the one to capture (from its start)
    mid = next_occurrence([plan], occ.start + timedelta(minutes=30))
    assert mid == occ
    clock = ManualClock(now.timestamp())
    windows: list[tuple[datetime, datetime, float]] = []
    run_schedule([plan], lambda o: windows.append((o.capture_from, o.capture_until, clock.time())), clock=clock,
                 max_occurrences=2)
    assert [(w[0], w[1]) for w in windows] == [(occ.capture_from, occ.capture_until),
                                                (occ2.capture_from, occ2.capture_until)]
    assert [w[2] for w in windows] == [occ.capture_from.timestamp(), occ2.capture_from.timestamp()]
    once = run_schedule([plan], lambda o: o, clock=ManualClock(now.timestamp()), once=True)
    assert len(once) == 1


def test_scheduled_uses_the_stored_schedule(runner, db_path):
    res = runner.invoke(cli, ["sessions", "schedule", str(db_path), "--hashtag", "edchat", "--every", "thu 12:30",
                              "--tz", "Europe/Berlin", "--duration", "45m", "--before", "10m"])
    if res.exit_code != 0:  # no archive yet: make one
        open_db(db_path, create=True).conn.close()
        res = runner.invoke(cli, ["sessions", "schedule", str(db_path), "--hashtag", "edchat", "--every", "thu 12:30",
                                  "--tz", "Europe/Berlin", "--duration", "45m", "--before", "10m"])
    assert res.exit_code == 0, res.output
    plans = stored_plans(open_db(db_path, create=True), "#edchat")
    assert plans == [Plan(timedelta(minutes=45), "Europe/Berlin", every="thu 12:30", before=timedelta(minutes=10))]
    with pytest.raises(Exception, match="no stored schedule"):
        stored_plans(open_db(db_path, create=True), "#otherchat")


@pytest.mark.parametrize("args,message", [
    (["all", "#a", "--follow", "--duration", "2s"], "not both"),
    (["bluesky", "#a", "--at", "wed 20:00"], "--duration"),
    (["bluesky", "#a", "--at", "someday", "--duration", "1h"], "Invalid --at"),
    (["bluesky", "#a", "--at", "wed 20:00", "--duration", "1h", "--since", "2026-01-01"], "drop --since"),
    (["x", "#a", "--jetstream", "wss://j.example", "--duration", "2s"], "--jetstream"),
    (["context", "x-1", "--stream"], "context"),
    (["bluesky", "#a", "--stream", "--jetstream", "ftp://nope", "--duration", "2s"], "WebSocket URL"),
    (["bluesky", "#a b", "--stream", "--duration", "2s"], "one hashtag"),
])
def test_bad_stream_options_are_one_clear_line(runner, db_path, args, message):
    res = runner.invoke(cli, ["capture", str(db_path), *args])
    assert res.exit_code in (1, 2) and message in res.output and "Traceback" not in res.output, res.output
    assert not db_path.exists()


def test_stream_panel_shows_every_platform_rate_question_and_newest_posts(db):
    from chatarchive.capture.live import capture_live
    from chatarchive.capture.runner import CaptureOptions
    from chatarchive.capture.stream import StreamPolicy

    now = time.time()
    posts = make_chat(40, now + 0.2, duration=2.2, questions=2)
    console = Console(record=True, force_terminal=True, width=130, color_system=None)
    with FakeJetstream() as js, FakeAppView() as av, FakeXStream(posts, token=X_TOKEN, keepalive=0.3) as x:
        js.schedule(post_events(posts))
        opts = CaptureOptions(until=datetime.fromtimestamp(now + 2.2, timezone.utc), api_base=x.url, jetstream=js.url,
                              appview=av.url, analyse=False)
        from chatarchive.capture.config import Config as C
        capture_live(db, ["bluesky", "x"], "#edchat", opts, C(x_bearer_token=Secret(X_TOKEN)),
                     ui=StreamPanel(console), policy=StreamPolicy(commit_interval=0.1, grace=0.2))
    text = console.export_text()
    n = len([p for p in posts if p.tags])
    assert "chatarchive capture · bluesky + x · #edchat · live" in text
    assert re.search(rf"bluesky\s+live.*\s{n}\s+{n}\s+0", text), text
    assert re.search(rf"\bx\s+live.*\s{n}\s+{n}\s+0", text), text
    last_q = max((p for p in posts if p.text.startswith("Q")), key=lambda p: p.t)
    assert re.search(rf"Question  (bluesky|x) @host(\.bsky\.social)?: {re.escape(last_q.text)}", text), text
    newest = max((p for p in posts if p.tags), key=lambda p: p.t)
    assert f"@{newest.author}" in text


# --------------------------------------------------------------------------
# The config folder and URLs with credentials (issue 14)


def test_a_world_writable_config_folder_and_a_planted_tmp_symlink_are_refused(tmp_path, runner, db_path):
    from chatarchive.capture.config import SessionStore

    folder = tmp_path / "cfg" / "chatarchive"
    folder.mkdir(parents=True)
    write_config(folder / "config.toml", f'[x]\nbearer_token = "{X_TOKEN}"\n')
    os.chmod(folder, 0o777)
    with pytest.raises(ConfigError, match="every user can write"):
        load_config(folder / "config.toml")
    res = runner.invoke(cli, ["capture", str(db_path), "x", "#edchat", "--config", str(folder / "config.toml")])
    assert res.exit_code == 1 and "chmod 700" in res.output and "Traceback" not in res.output
    os.chmod(folder, 0o700)
    assert load_config(folder / "config.toml").x_bearer_token == Secret(X_TOKEN)
    # a symlink where the session cache is written: never written through
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (folder / "bluesky-sessions.json.tmp").symlink_to(victim)
    store = SessionStore(folder)
    with pytest.raises(ConfigError, match="symlink"):
        store.put("k", {"accessJwt": "secret-jwt"})
    assert victim.read_text() == "precious"
    (folder / "bluesky-sessions.json.tmp").unlink()
    store.put("k", {"accessJwt": "secret-jwt"})
    assert stat.S_IMODE(os.stat(folder / "bluesky-sessions.json").st_mode) == 0o600


def test_a_password_in_a_url_is_never_shown_nor_stored(runner, db_path):
    import socket as _socket

    from chatarchive.capture.base import Window
    from chatarchive.capture.http import NetworkError, RetryPolicy
    from chatarchive.capture.x import XCapture

    s = _socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: "cannot connect"
    client = XCapture("#edchat", token=X_TOKEN, api_base=f"http://admin:hunter2-Secret@127.0.0.1:{port}",
                      policy=RetryPolicy(max_retries=0))
    with pytest.raises(NetworkError) as e:
        list(client.poll({}, Window()))
    assert "cannot connect" in str(e.value) and "hunter2-Secret" not in str(e.value) and "admin" not in str(e.value)
    assert "hunter2-Secret" not in client.endpoint and "hunter2-Secret" not in repr([r.url for r in client.http.log])
    # and the command line's last line of defence, for any message
    res = runner.invoke(cli, ["capture", str(db_path), "bluesky", "#edchat", "--stream",
                              "--jetstream", "gopher://admin:hunter2-Secret@j.example", "--duration", "1s"])
    assert res.exit_code == 1 and "hunter2-Secret" not in res.output and "***@" in res.output, res.output
    with FakeMastodon(make_chat(20, time.time() - 3600)) as srv:  # a server behind a password
        url = srv.url.replace("http://", "http://admin:hunter2-Secret@")
        ok = runner.invoke(cli, ["capture", str(db_path), "mastodon", "#edchat", "--instance", url, "--no-analyse"])
        assert {r.auth for r in srv.log} == {"Basic YWRtaW46aHVudGVyMi1TZWNyZXQ="}  # used, as given
    assert ok.exit_code == 0, ok.output
    assert open_db(db_path, create=True).execute("SELECT count(*) FROM posts").fetchone()[0] > 0
    assert "hunter2-Secret" not in ok.output
    for p in db_path.parent.glob("chats.db*"):
        assert b"hunter2-Secret" not in p.read_bytes()
