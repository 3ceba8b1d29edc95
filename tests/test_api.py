"""The Python API (``chatarchive.Archive``): the README's example, run for
real on a small chat of our own, and the methods the commands stand on."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from chatarchive import Archive
from chatarchive.api import ImportResult
from chatarchive.cli import cli
from chatarchive.errors import ChatArchiveError, NotFoundError, ParseError, SearchError

README = Path(__file__).resolve().parent.parent / "README.md"
START = datetime(2026, 11, 18, 20, 0, tzinfo=timezone.utc)
MEMBERS = [f"member{i}" for i in range(6)]


def readme_example() -> str:
    """The first Python block of the README's "Using chatarchive from Python"."""
    section = README.read_text("utf-8").split("\n## Using chatarchive from Python\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md: no python example in 'Using chatarchive from Python'"
    return match.group(1)


def tweet(n: int, author: str, text: str, minute: float, **extra) -> dict:
    start = text.index("#cmgrchat")
    return {
        "id": str(5000 + n), "author_id": author, "conversation_id": extra.pop("conversation_id", str(5000 + n)),
        "created_at": (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "text": text,
        "entities": {"hashtags": [{"start": start, "end": start + 9, "tag": "cmgrchat"}]},
        "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": n % 3, "quote_count": 0},
        **extra,
    }


def write_chat(path: Path) -> None:
    """A one-hour #cmgrchat on X as `twarc2 search` writes it: a host, six
    members, a welcome, two questions, answers (three about onboarding)."""
    users = [{"id": "1", "username": "cmgrhost", "name": "The Host"}] + [
        {"id": str(10 + i), "username": m, "name": m.title()} for i, m in enumerate(MEMBERS)]
    posts = [
        tweet(0, "1", "Welcome to #cmgrchat! Tonight: the first week of a member", 0),
        tweet(1, "1", "Q1: What does a new member see first? #cmgrchat", 2),
        tweet(2, "10", "A1: A pinned onboarding thread and a welcome #cmgrchat", 4),
        tweet(3, "11", "A1: a DM from a human, never a bot #cmgrchat", 5),
        tweet(4, "12", "A1 our onboarding checklist, then the intro channel #cmgrchat", 6),
        tweet(5, "13", "A1: the rules, sadly #cmgrchat", 7),
        tweet(6, "1", "Q2: How do you know it worked? #cmgrchat", 15),
        tweet(7, "14", "A2: they post twice in the first week #cmgrchat", 17),
        tweet(8, "15", "A2: retention after 30 days. Onboarding is step one #cmgrchat", 18),
        tweet(9, "10", "A2: they answer someone else's question #cmgrchat", 19),
        tweet(10, "11", "A2 when they come back next week #cmgrchat", 21),
        tweet(11, "1", "Thanks all, see you next week #cmgrchat", 40),
    ]
    pages = [{"data": list(reversed(posts)), "includes": {"users": users},
              "meta": {"result_count": len(posts)},
              "__twarc": {"url": "https://api.twitter.com/2/tweets/search/recent?query=%23cmgrchat",
                          "version": "2.14.1", "retrieved_at": "2026-11-18T21:05:00+00:00"}}]
    path.write_text("".join(json.dumps(p) + "\n" for p in pages), "utf-8")


@pytest.fixture
def chat_dir(tmp_path, monkeypatch):
    """A folder with cmgrchat.jsonl, made the current directory (the README's paths are relative)."""
    write_chat(tmp_path / "cmgrchat.jsonl")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_example_runs(chat_dir, capsys):
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "readme_example"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cmgrchat-2026-11-18 2026-11-18T20:00:00.000Z 12"
    hits = [line.split(" ", 1) for line in lines[1:]]
    assert len(hits) == 3
    assert sorted(handle for handle, _ in hits) == ["member0", "member2", "member5"]
    assert all(re.search(r"\*\*onboarding\*\*", snippet, re.I) for _, snippet in hits), hits
    assert (chat_dir / "chats.db").is_file()
    assert (chat_dir / "site" / "index.html").is_file()
    assert (chat_dir / "site" / "sessions" / "cmgrchat-2026-11-18.html").is_file()


def test_import_returns_the_per_file_summary(chat_dir):
    with Archive("chats.db", create=True) as archive:
        result = archive.import_files(["cmgrchat.jsonl"])
        assert isinstance(result, ImportResult) and len(result) == 1 and result.posts == 12
        [f] = result
        assert (f.path, f.format, f.added, f.updated, f.unchanged, f.skipped, f.error) == \
            ("cmgrchat.jsonl", "twarc2", 12, 0, 0, 0, None)
        assert result.analysis["sessions"] == 1 and result.analysis["summary"].startswith("Analysis: 1 session")
        assert result.as_dict()["files"][0]["added"] == 12
        again = archive.import_files([Path("cmgrchat.jsonl")], analyse=False)
        assert (again.files[0].added, again.files[0].unchanged, again.analysis) == (0, 12, {})
        assert again.totals() == {"added": 0, "updated": 0, "unchanged": 12, "skipped": 0}


def test_a_missing_archive_is_an_error_and_nothing_is_created(tmp_path):
    missing = tmp_path / "nothing.db"
    with pytest.raises(NotFoundError, match=re.escape(f"no such archive: {missing}")):
        Archive(missing)
    assert not missing.exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(ChatArchiveError, match="cannot open as a chatarchive database"):
        Archive(junk)


def test_sessions_session_and_stats(chat_dir):
    archive = Archive("chats.db", create=True)
    archive.import_files(["cmgrchat.jsonl"])
    [s] = archive.sessions(hashtag="#CMGRCHAT")
    assert (s.slug, s.hashtag, s.posts, s.participants, s.questions, s.hosts) == \
        ("cmgrchat-2026-11-18", "cmgrchat", 12, 7, 2, ["cmgrhost"])
    assert archive.session(s.slug) == archive.session(s.id) == archive.session(str(s.id))
    stats = archive.session_stats(s.slug, top=2)
    assert [q["answers"] for q in stats["questions"]] == [4, 4]
    assert len(stats["top_participants"]) == 2
    with pytest.raises(NotFoundError, match="No session 'nope'"):
        archive.session("nope")
    assert archive.sessions("otherchat") == []


def test_sessions_by_hand(chat_dir):
    archive = Archive("chats.db", create=True)
    archive.import_files(["cmgrchat.jsonl"], analyse=False)
    result = archive.detect_sessions(["cmgrchat", "cmgrchta"], gap="45m", tz="America/New_York")
    assert [s.slug for s in result.sessions] == ["cmgrchat-2026-11-18"]
    assert result.unknown_hashtags == ["cmgrchta"]
    added = archive.add_session("cmgrchat", "2026-11-25T20:00", duration="1h", tz="America/New_York",
                                hosts=["cmgrhost"], title="Metrics")
    assert (added.slug, added.start, added.end, added.title, added.source) == \
        ("cmgrchat-2026-11-25", "2026-11-26T01:00:00.000Z", "2026-11-26T02:00:00.000Z", "Metrics", "manual")
    same = archive.add_session("cmgrchat", datetime(2026, 11, 25, 20, 0), datetime(2026, 11, 25, 21, 0),
                               tz="America/New_York")
    assert same.id == added.id
    with pytest.raises(ChatArchiveError, match="exactly one of end and duration"):
        archive.add_session("cmgrchat", "2026-11-25T20:00")
    assert archive.remove_session(added.slug).id == added.id
    scheduled = archive.schedule("cmgrchat", "wed 15:00", "America/New_York", timedelta(hours=1),
                                 after="30m")
    assert scheduled.hashtag == "cmgrchat"
    assert [(s.slug, s.source) for s in scheduled.sessions] == [("cmgrchat-2026-11-18", "scheduled")]


def test_search(chat_dir):
    archive = Archive("chats.db", create=True)
    archive.import_files(["cmgrchat.jsonl"])
    hits = archive.search("onboarding", order="newest")
    assert [h.post.id for h in hits] == ["5008", "5004", "5002"]
    assert hits[0].rank is None and hits[0].post.created_at == "2026-11-18T20:18:00.000Z"
    assert "**Onboarding**" in hits[0].snippet
    marked = archive.search("onboarding", limit=1, highlight=("<b>", "</b>"))
    assert len(marked) == 1 and "<b>" in marked[0].snippet and marked[0].rank is not None
    assert archive.search("onboarding", author="member0")[0].post.author_handle == "member0"
    assert archive.search("onboarding", since="2026-11-18T20:05Z", until=START + timedelta(minutes=10))[0].post.id \
        == "5004"
    assert archive.search("onboarding", session="cmgrchat-2026-11-18", hashtag="cmgrchat", limit=10) != []
    loose = archive.search("A1: onboarding")
    assert loose.query == '"A1" "onboarding"' and "not FTS5 syntax" in loose.note
    with pytest.raises(SearchError, match="Invalid search query"):
        archive.search('"(')


def test_recap_and_export(chat_dir):
    archive = Archive("chats.db", create=True)
    archive.import_files(["cmgrchat.jsonl"])
    site = archive.recap("site", "cmgrchat-2026-11-18", search=False)
    assert site.sessions == 1 and site.index.resolve() == chat_dir / "site" / "index.html" and site.index.is_file()
    text = archive.export("cmgrchat-2026-11-18", "md")
    assert "What does a new member see first?" in text
    stream = io.StringIO()
    assert archive.export("cmgrchat-2026-11-18", "jsonl", stream) is None
    assert len(stream.getvalue().splitlines()) == 12
    archive.export("cmgrchat-2026-11-18", "csv", chat_dir / "posts.csv")
    assert (chat_dir / "posts.csv").read_text("utf-8").startswith("session,id,platform")
    assert not list(chat_dir.glob("posts.csv.tmp*"))
    with pytest.raises(ChatArchiveError, match="cannot write"):
        archive.export("cmgrchat-2026-11-18", "csv", chat_dir / "no-such-folder" / "posts.csv")
    assert not list((chat_dir).glob("**/*.tmp*"))


def test_a_failed_first_import_leaves_nothing(chat_dir):
    bad = chat_dir / "bad.jsonl"
    bad.write_text((chat_dir / "cmgrchat.jsonl").read_text("utf-8") + "{not json\n", "utf-8")
    archive = Archive("new.db", create=True)
    assert archive.created
    with pytest.raises(ParseError):
        archive.import_files([bad], strict=True)
    assert archive.discard_if_empty() is True
    assert not (chat_dir / "new.db").exists()
    # an archive that existed before is never deleted, even when empty
    Archive("kept.db", create=True).close()
    again = Archive("kept.db")
    assert not again.created and again.discard_if_empty() is False and (chat_dir / "kept.db").exists()


def test_the_cli_and_the_api_agree(chat_dir, runner):
    """The commands are a layer over the same methods: same sessions, same hits."""
    assert runner.invoke(cli, ["import", "chats.db", "cmgrchat.jsonl", "--json"]).exit_code == 0
    archive = Archive("chats.db")
    listed = json.loads(runner.invoke(cli, ["sessions", "list", "chats.db", "--json"]).output)
    assert listed == [s.as_dict() for s in archive.sessions()]
    found = json.loads(runner.invoke(cli, ["search", "chats.db", "onboarding", "--json"]).output)
    assert found == [h.as_dict() for h in archive.search("onboarding")]


def test_commands_other_than_import_capture_demo_never_create_an_archive(runner, tmp_path):
    missing = tmp_path / "missing.db"
    for args in (["search", str(missing), "x"], ["sessions", "list", str(missing)], ["show", str(missing), "1"],
                 ["sessions", "detect", str(missing)], ["export", str(missing), "1"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.strip().splitlines() == [
            f"Error: no such archive: {missing} (create one with: chatarchive import {missing} FILE...)"]
        assert not missing.exists()


def loaded_modules(code: str) -> set[str]:
    """The chatarchive modules (and a few heavy libraries) a fresh interpreter has after ``code``."""
    probe = (f"import sys\n{code}\n"
             "print('MODULES', *(m for m in sys.modules if m.split('.')[0] in "
             "('chatarchive', 'jinja2', 'datasette', 'httpx')), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stderr.splitlines()[-1].split()[1:])


def test_importing_chatarchive_is_light():
    assert loaded_modules("import chatarchive") == {"chatarchive"}
    # Archive loads the archive and the analysis, not the importers or the outputs
    modules = loaded_modules("from chatarchive import Archive")
    assert "chatarchive.api" in modules
    assert not modules & {"chatarchive.recap.site", "chatarchive.export", "chatarchive.sources", "jinja2", "httpx"}


def test_a_command_loads_only_what_it_uses(tmp_path):
    run = "from chatarchive.cli import cli\ntry:\n    cli({args!r})\nexcept SystemExit:\n    pass"
    top = loaded_modules(run.format(args=["--help"]))
    assert top <= {"chatarchive", "chatarchive.cli", "chatarchive.errors"}, top
    search = loaded_modules(run.format(args=["search", str(tmp_path / "none.db"), "x"]))
    assert "chatarchive.cli.search" in search
    assert not search & {"chatarchive.cli.capture", "chatarchive.cli.serve", "jinja2", "datasette", "httpx"}, search
