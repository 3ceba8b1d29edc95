"""`chatarchive show` and `sessions show`: the terminal recap and its JSON;
and the other terminal views of present/terminal.py."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "analysis"))
from builders import ChatBuilder

from chatarchive.analysis import stats
from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.api import Archive
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.models import Session
from chatarchive.present.terminal import ImportProgressBar, local_time, print_sessions

START = "2026-11-19T01:00:00Z"
HOSTILE = "Q2: <script>alert('x')</script> [bold red]boom[/bold red] javascript:alert(1) ok? #showchat"


def flat(text: str) -> str:
    """The output without box drawing and line wrapping, for phrase checks."""
    return " ".join(re.sub(r"[│╭╮╰╯─┃━┏┓┗┛┡┩╇┳┻┯┷└┘┌┐├┤┼╈]", " ", text).split())


def build(path):
    db = open_db(path, create=True)
    b = ChatBuilder(START)
    b.add("showhost", "Welcome to #showchat!", 0)
    q1 = b.add("showhost", "Q1: What keeps your members coming back? #showchat", 2, likes=12)
    for i in range(6):
        b.add(f"member{i}", f"A1: reason {i} #showchat", 3 + i * 0.25, likes=i)
    b.add("member0", "unprefixed reply", 5, reply_to=q1.id)
    b.add("showhost", HOSTILE, 10)
    for i in range(3):
        b.add(f"member{i}", f"A2: answer {i} [link](javascript:alert(1)) #showchat", 11 + i,
              links=["https://example.org/guide"])
    b.save(db)
    analyse_archive(db, tz="America/New_York")
    return db


def test_show_prints_the_recap(runner, db_path):
    build(db_path)
    r = runner.invoke(cli, ["show", str(db_path), "showchat-2026-11-18"])
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "#showchat" in out and "showchat-2026-11-18" in out
    assert "America/New_York" in out and "Wed 2026-11-18 20:00" in out
    assert "Hosts: @showhost" in out
    assert "13 posts (13 matched, 0 context)" in out
    # the hashtag's first archived session: who is new cannot be known, so nothing is said (C6)
    assert "7 participants · 1 reply · 2 questions, 10 answers" in out
    assert "first" not in out.lower().replace("first answer", "") and "returning" not in out and "★" not in out
    q_lines = [line for line in r.output.splitlines() if "Q1" in line and "What keeps" in line]
    assert q_lines and q_lines[0].rstrip(" │").split("│")[3].strip() == "7"  # answers column
    assert "@member0" in out and "Top participants" in out and "Busiest minutes" in out
    assert "https://example.org/guide" in out
    # user text is printed, never interpreted as markup
    # (rich would swallow "[bold red]" if it parsed it; the cell may wrap)
    assert "<script>alert('x')</script> [bold" in out and "red]boom[/bold red]" in out


def test_show_names_first_timers_of_a_later_session_never_the_host(runner, db_path):
    db = build(db_path)
    b = ChatBuilder("2026-11-26T01:00:00Z")  # a week later: member0..2 return, two newcomers
    b.add("showhost", "Welcome back to #showchat!", 0)
    b.add("showhost", "Q1: What did you try this week? #showchat", 2)
    for i, who in enumerate(["member0", "member1", "member2", "newbie_a", "newbie_b"] * 2):
        b.add(who, f"A1: tried thing {i} #showchat", 3 + i * 0.5)
    b.save(db)
    analyse_archive(db, tz="America/New_York")
    st = stats.session_stats(db, "showchat-2026-11-25")
    assert st["first_timers"] is not None and "showhost" not in st["first_timers"]
    r = runner.invoke(cli, ["show", str(db_path), "showchat-2026-11-25"])
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    new, back = len(st["first_timers"]), len(st["returning"])
    assert (new, back) == (2, 4)  # member0-2 and the host came before; newbie_a and newbie_b did not
    assert f"6 participants ({new} first time in this archive, {back} returning)" in out
    table = r.output[r.output.index("Top participants"):]
    host_row = next(ln for ln in table.splitlines() if "@showhost" in ln)
    newbie_row = next(ln for ln in table.splitlines() if "@newbie_a" in ln)
    assert "★" in newbie_row and "★" not in host_row


def test_show_and_sessions_list_strip_terminal_escapes(runner, db_path):
    db = build(db_path)
    evil = "Q3: \x1b]0;pwned title\x07clear \x1b[2J\x1b[31mred\x9b31m csi\x08\r over #showchat"
    db.execute("UPDATE posts SET text = ? WHERE text LIKE 'Q2:%'", [evil])
    db.execute("UPDATE questions SET text = ? WHERE number = 2", [evil])
    db.execute("UPDATE sessions SET title = 'Title \x1b[5mblink', hosts = '[\"show\x1bhost\"]'")
    for args in (["show", str(db_path), "showchat-2026-11-18"], ["sessions", "list", str(db_path)]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 0, r.output
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", r.output), (args, repr(r.output))
    r = runner.invoke(cli, ["show", str(db_path), "showchat-2026-11-18"])
    assert "pwned title" in r.output and "Title" in r.output
    # on a terminal too (rich lets ESC through unless we take it out)
    out = io.StringIO()
    from chatarchive.present.terminal import print_session_stats
    print_session_stats(Console(file=out, force_terminal=True, width=150), stats.session_stats(db, "showchat-2026-11-18"))
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # rich's own colours
    assert "\x1b" not in plain and "\x07" not in plain and "\x9b" not in plain and "pwned title" in plain


def test_show_json_is_session_stats(runner, db_path):
    db = build(db_path)
    r = runner.invoke(cli, ["show", str(db_path), "showchat-2026-11-18", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == json.loads(json.dumps(stats.session_stats(db, "showchat-2026-11-18")))
    # the alias under `sessions`, and lookup by id
    sid = json.loads(r.output)["session"]["id"]
    r2 = runner.invoke(cli, ["sessions", "show", str(db_path), str(sid), "--json"])
    assert r2.exit_code == 0 and json.loads(r2.output) == json.loads(r.output)


def test_show_with_top_and_an_empty_session(runner, db_path):
    build(db_path)
    r = runner.invoke(cli, ["show", str(db_path), "showchat-2026-11-18", "--top", "2", "--json"])
    assert len(json.loads(r.output)["top_participants"]) == 2
    r = runner.invoke(cli, ["sessions", "add", str(db_path), "--hashtag", "showchat", "--start", "2027-01-06T20:00",
                            "--end", "2027-01-06T21:00", "--tz", "America/New_York"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["show", str(db_path), "showchat-2027-01-06"])
    assert r.exit_code == 0, r.output
    assert "0 posts" in r.output and "none detected" in r.output


def test_show_unknown_session_and_bad_database(runner, db_path, tmp_path):
    build(db_path)
    r = runner.invoke(cli, ["show", str(db_path), "nothing-here"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == ["Error: No session 'nothing-here' (see: chatarchive sessions list DB)"]
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00garbage" * 1000)
    r = runner.invoke(cli, ["show", str(junk), "x"])
    assert r.exit_code == 1 and "cannot open" in r.output


CHAT = Path(__file__).parent / "fixtures" / "twarc2" / "chat.jsonl"


def test_the_import_progress_bar_on_a_terminal(tmp_path):
    # a file name and a problem carrying an escape sequence reach the terminal as plain text
    name = tmp_path / "chat\x1b[31m.jsonl"
    name.write_text(CHAT.read_text("utf-8") + "{broken\n", "utf-8")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    archive = Archive(tmp_path / "p.db", create=True)
    with ImportProgressBar(console) as bar:
        result = archive.import_files([name], progress=bar, analyse=False)
    [f] = result.files
    assert f.added > 0 and f.skipped == 1
    text = out.getvalue()
    assert "\x1b[31m" not in text
    assert "chat [31m.jsonl:4:" in text  # the problem line, FILE:LINE: reason, printable


def test_sessions_table_and_local_times():
    out = io.StringIO()
    s = build_session_row()
    print_sessions(Console(file=out, width=120), [s])
    text = flat(out.getvalue())
    assert "showchat-2026-11-18" in text and "Wed 2026-11-18 20:00" in text and "@showhost" in text
    assert local_time("2026-11-19T01:00:00.000Z", "America/New_York", zone=True) == "Wed 2026-11-18 20:00 America/New_York"
    assert local_time("2026-11-19T01:00:00.000Z", "Not/AZone") == "Thu 2026-11-19 01:00 UTC"
    assert local_time(None, None) == ""


def build_session_row() -> Session:
    return Session(id=1, slug="showchat-2026-11-18", hashtag="showchat", start="2026-11-19T01:00:00.000Z",
                   end="2026-11-19T02:00:00.000Z", hosts=["showhost"], source="detected",
                   timezone="America/New_York", platforms=["x"], posts=13, participants=7, questions=2)
