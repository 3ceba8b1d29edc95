"""`chatarchive capture` as a user runs it: options, config files, secrets,
the live panel, context for a session, and a follow killed with SIGKILL."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

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
