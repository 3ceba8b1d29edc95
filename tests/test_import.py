"""`chatarchive import`: idempotence, gzip and stdin, --format, malformed
lines, --strict, refusals, atomicity, progress and summaries."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES

from chatarchive import sources
from chatarchive.archive import importer
from chatarchive.archive.importer import NoProgress, Progress, import_files
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.errors import ChatArchiveError

TW = FIXTURES / "twarc2"
CHAT = TW / "chat.jsonl"
CHAT_POSTS = 8  # 6 matched + 2 context posts (see make_fixtures.py)
TABLES = ["posts", "authors", "hashtags", "post_hashtags", "mentions", "links", "post_links", "media",
          "post_media", "raw", "posts_fts", "imports"]


def run(runner, *args, input=None, env=None):
    return runner.invoke(cli, ["import", *map(str, args)], input=input, env=env)


def counts(db_path) -> dict[str, int]:
    db = open_db(db_path, create=True)
    out = {t: db.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0] for t in TABLES}
    db.conn.close()
    return out


def snapshot(db_path) -> dict[str, list]:
    """Every row of every table (and the schema), to compare before/after."""
    conn = __import__("sqlite3").connect(db_path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    out = {"__schema__": sorted(conn.execute("SELECT type, name, sql FROM sqlite_master"))}
    for t in tables:
        out[t] = sorted(map(repr, conn.execute(f"SELECT * FROM [{t}]")))
    conn.close()
    return out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def truncated_copy(tmp_path) -> Path:
    """chat.jsonl with its second line cut in the middle (a download that died)."""
    lines = CHAT.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "cut.jsonl"
    path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2] + "\n" + lines[0] + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# idempotence and bookkeeping


def test_import_twice_changes_nothing(runner, db_path):
    first = run(runner, db_path, CHAT, TW / "api-page.json", "--no-analyse")
    assert first.exit_code == 0, first.output
    before = counts(db_path)
    before_rows = snapshot(db_path)
    second = run(runner, db_path, CHAT, TW / "api-page.json", "--no-analyse")
    assert second.exit_code == 0, second.output
    after = counts(db_path)
    assert before["posts"] == CHAT_POSTS and before["posts_fts"] == CHAT_POSTS
    assert {k: v for k, v in after.items() if k != "imports"} == {k: v for k, v in before.items() if k != "imports"}
    assert after["imports"] == before["imports"] + 2
    unchanged_tables = {k: v for k, v in snapshot(db_path).items() if k not in ("imports",)}
    assert unchanged_tables == {k: v for k, v in before_rows.items() if k not in ("imports",)}
    assert f"{CHAT} (twarc2): 0 added, 0 updated, {CHAT_POSTS} unchanged" in second.output


def test_imports_rows_record_each_file(runner, db_path, tmp_path):
    cut = truncated_copy(tmp_path)
    assert run(runner, db_path, CHAT, "--no-analyse").exit_code == 0
    assert run(runner, db_path, cut, "--no-analyse").exit_code == 0
    db = open_db(db_path, create=True)
    rows = db.execute(
        "SELECT path, format, added, updated, unchanged, skipped, status, started <= finished FROM imports ORDER BY id"
    ).fetchall()
    assert rows == [
        (str(CHAT), "twarc2", CHAT_POSTS, 0, 0, 0, "ok", 1),
        # line 1 twice: 6 posts; the context copy of 2002 brings other counts
        (str(cut), "twarc2", 0, 1, 5, 1, "partial", 1),
    ]


def test_json_summary(runner, db_path):
    result = run(runner, db_path, CHAT, "--no-analyse", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["files"] == [{"path": str(CHAT), "format": "twarc2", "added": CHAT_POSTS, "updated": 0,
                              "unchanged": 0, "skipped": 0, "problems": [], "error": None}]


def test_summary_lines_and_total(runner, db_path):
    result = run(runner, db_path, CHAT, TW / "flat.jsonl", "--no-analyse")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"{CHAT} (twarc2): {CHAT_POSTS} added, 0 updated, 0 unchanged"
    assert lines[1] == f"{TW / 'flat.jsonl'} (twarc2): 0 added, 0 updated, 3 unchanged"
    assert lines[2].startswith("Total (2 files, ") and lines[2].endswith(
        f"{CHAT_POSTS} added, 0 updated, 3 unchanged, 0 skipped")


# --------------------------------------------------------------------------
# inputs


def test_gzip_input(runner, db_path, tmp_path):
    gz = tmp_path / "chat.jsonl.gz"
    gz.write_bytes(gzip.compress(CHAT.read_bytes()))
    result = run(runner, db_path, gz, "--no-analyse")
    assert result.exit_code == 0, result.output
    assert counts(db_path)["posts"] == CHAT_POSTS


def test_truncated_gzip_keeps_what_was_read(runner, db_path, tmp_path):
    # two gzip members (as `cat a.gz b.gz` makes), the second one cut short
    second = gzip.compress((TW / "stream.jsonl").read_bytes())
    gz = tmp_path / "cut.jsonl.gz"
    gz.write_bytes(gzip.compress(CHAT.read_bytes()) + second[: len(second) // 2])
    result = run(runner, db_path, gz, "--no-analyse")
    assert result.exit_code == 0, result.output
    assert "file ends early" in result.stderr and "skipped" in result.stdout
    assert counts(db_path)["posts"] == CHAT_POSTS


def test_stdin(runner, db_path):
    result = run(runner, db_path, "-", "--no-analyse", input=CHAT.read_bytes())
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"<stdin> (twarc2): {CHAT_POSTS} added")
    assert open_db(db_path, create=True).execute("SELECT path FROM imports").fetchone()[0] == "<stdin>"


def test_stdin_gzip(runner, db_path):
    result = run(runner, db_path, "-", "--no-analyse", input=gzip.compress(CHAT.read_bytes()))
    assert result.exit_code == 0, result.output
    assert counts(db_path)["posts"] == CHAT_POSTS


def test_format_option_overrides_detection(runner, db_path, tmp_path):
    # The first line is an errors-only page: detection sees no posts and refuses...
    lines = CHAT.read_text(encoding="utf-8").splitlines()
    odd = tmp_path / "errors-first.jsonl"
    odd.write_text("\n".join([lines[2], lines[0], lines[1]]) + "\n", encoding="utf-8")
    refused = run(runner, db_path, odd, "--no-analyse")
    assert refused.exit_code == 1 and "only errors" in refused.output
    # ... while --format twarc2 reads it, skipping the empty page.
    result = run(runner, db_path, odd, "--format", "twarc2", "--no-analyse")
    assert result.exit_code == 0, result.output
    assert counts(db_path)["posts"] == CHAT_POSTS


def test_wrong_format_option_is_refused_with_reasons(runner, db_path):
    result = run(runner, db_path, CHAT, "--format", "mastodon", "--no-analyse")
    assert result.exit_code == 1
    assert "but found" in result.output and "no posts" in result.output
    assert "Traceback" not in result.output


def test_unknown_format_name(runner, db_path):
    result = run(runner, db_path, CHAT, "--format", "nope")
    assert result.exit_code == 2 and "Invalid value for '--format'" in result.output


# --------------------------------------------------------------------------
# malformed input


def test_malformed_line_is_reported_skipped_and_counted(runner, db_path, tmp_path):
    cut = truncated_copy(tmp_path)
    result = run(runner, db_path, cut, "--no-analyse")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0].startswith(f"{cut}:2: invalid JSON")
    assert f"{cut} (twarc2): 6 added, 0 updated, 0 unchanged, 1 skipped" in result.stdout


def test_strict_leaves_the_database_exactly_as_it_was(runner, db_path, tmp_path):
    assert run(runner, db_path, TW / "api-page.json", "--no-analyse").exit_code == 0
    before_rows, before_bytes = snapshot(db_path), digest(db_path)
    cut = truncated_copy(tmp_path)
    # a good file first, then the bad one: the good one must not stay either
    result = run(runner, db_path, CHAT, cut, "--strict", "--no-analyse")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {cut}:2: invalid JSON (line is cut off) (--strict: nothing was imported)")
    assert "Traceback" not in result.output
    assert snapshot(db_path) == before_rows
    assert digest(db_path) == before_bytes
    assert not Path(str(db_path) + "-journal").exists()


def test_strict_on_a_new_archive_leaves_no_file(runner, db_path, tmp_path):
    result = run(runner, db_path, truncated_copy(tmp_path), "--strict")
    assert result.exit_code == 1
    assert not db_path.exists()


def test_refused_and_good_files_in_one_command(runner, db_path, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("just some notes\nnothing to see\n")
    result = run(runner, db_path, junk, CHAT, "--no-analyse")
    assert result.exit_code == 1
    assert f"Error: {junk}: not a recognised chat file" in result.stderr
    assert counts(db_path)["posts"] == CHAT_POSTS
    assert open_db(db_path, create=True).execute("SELECT count(*) FROM imports").fetchone()[0] == 1


def test_everything_refused_leaves_no_new_archive(runner, db_path, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    result = run(runner, db_path, empty)
    assert result.exit_code == 1 and "the file is empty" in result.output
    assert not db_path.exists()


def test_missing_file(runner, db_path, tmp_path):
    result = run(runner, db_path, tmp_path / "nope.jsonl")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'nope.jsonl'}: cannot open (No such file or directory)"
    assert not db_path.exists()


def test_problem_lines_are_made_printable(runner, db_path, tmp_path):
    path = tmp_path / "hostile.jsonl"
    lines = CHAT.read_text(encoding="utf-8").splitlines()
    bad = json.dumps({"data": [{"id": "\x1b[2Jevil", "text": "x", "created_at": "2026-11-18T20:00:00.000Z"}]})
    path.write_text(lines[0] + "\n" + bad + "\n", encoding="utf-8")
    result = run(runner, db_path, path, "--no-analyse")
    assert result.exit_code == 0
    assert "\x1b" not in result.stderr and "is not a number" in result.stderr


# --------------------------------------------------------------------------
# atomicity


def _generated(tmp_path, n: int) -> Path:
    sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
    try:
        import gen_twarc2
    finally:
        sys.path.pop(0)
    out = tmp_path / f"gen-{n}.jsonl"
    assert gen_twarc2.main([str(n), "-o", str(out), "--per-page", "100"]) == 0
    return out


def test_failure_mid_import_leaves_nothing_half_written(db_path, tmp_path):
    # A real failure half-way: the file may not grow past a few more pages
    # (SQLite's max_page_count, as a full disk), so a later batch cannot be
    # written after earlier ones were.  The whole command rolls back.
    big = _generated(tmp_path, 600)
    db = open_db(db_path, create=True)
    import_files(db, [str(TW / "api-page.json")])
    before = snapshot(db_path)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 20}")
    with pytest.raises(sqlite3.OperationalError, match="full"):
        import_files(db, [str(CHAT), str(big)], batch_size=50)  # the first batches fit, a later one does not
    assert snapshot(db_path) == before
    db.execute("PRAGMA max_page_count = 1073741823")
    assert import_files(db, [str(CHAT)])[0].added == CHAT_POSTS - 4  # and the archive still works


def test_interrupt_mid_import_via_cli(runner, db_path, monkeypatch):
    assert run(runner, db_path, TW / "api-page.json", "--no-analyse").exit_code == 0
    before = snapshot(db_path)
    fmt = sources.FORMATS["twarc2"]
    real = fmt.normalize

    def interrupted(value, ctx):
        posts = list(real(value, ctx))
        if any(p.id == "2004" for p in posts) and len(posts) > 1:
            raise KeyboardInterrupt
        return posts

    monkeypatch.setattr(fmt, "normalize", interrupted)
    result = run(runner, db_path, CHAT, "--no-analyse")
    assert result.exit_code == 130 and "Interrupted." in result.output
    assert snapshot(db_path) == before


def test_killed_process_leaves_the_archive_as_before(db_path, tmp_path):
    """A real crash (SIGKILL while a batch is being written): SQLite's
    journal restores the last committed state on the next open."""
    db = open_db(db_path, create=True)
    import_files(db, [str(TW / "api-page.json")])
    db.conn.close()
    before = snapshot(db_path)
    big = tmp_path / "big.jsonl"
    line = CHAT.read_text(encoding="utf-8").splitlines()[1]
    page = json.loads(line)
    with open(big, "w") as f:
        for i in range(300):
            for t in page["data"]:
                t["id"] = str(10_000 + i * 10 + page["data"].index(t))
            f.write(json.dumps(page) + "\n")
    code = (
        "import os, sys\n"
        "from chatarchive.archive import schema, writer\n"
        "from chatarchive.archive.importer import import_files\n"
        "real = writer.PostWriter._write_batch\n"
        "n = [0]\n"
        "def write(self, *a):\n"
        "    real(self, *a); n[0] += 1\n"
        "    if n[0] == 3: os.kill(os.getpid(), 9)\n"
        "writer.PostWriter._write_batch = write\n"
        "import_files(schema.open_db(sys.argv[1], create=True), [sys.argv[2]], batch_size=50)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(db_path), str(big)], capture_output=True)
    assert proc.returncode == -9
    assert Path(str(db_path) + "-journal").exists() or snapshot(db_path) == before
    open_db(db_path, create=True).conn.close()  # recovery happens on open
    assert snapshot(db_path) == before


# --------------------------------------------------------------------------
# progress


def test_no_progress_bar_without_a_terminal(runner, db_path):
    result = run(runner, db_path, CHAT, "--no-analyse")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert "posts/s" not in result.output


def test_progress_bar_on_a_terminal(runner, db_path):
    result = run(runner, db_path, CHAT, "--no-analyse", env={"FORCE_COLOR": "1", "COLUMNS": "120"})
    assert result.exit_code == 0
    assert "posts/s" in result.stderr
    assert f"{CHAT} (twarc2): {CHAT_POSTS} added" in result.stdout


@pytest.mark.parametrize("flag", ["--quiet", "--json"])
def test_quiet_and_json_show_no_bar(runner, db_path, flag):
    result = run(runner, db_path, CHAT, "--no-analyse", flag, env={"FORCE_COLOR": "1"})
    assert result.exit_code == 0
    assert "posts/s" not in result.stderr
    if flag == "--quiet":
        assert result.stdout == ""


def test_progress_callbacks(db_path):
    events = []

    class Recorder(NoProgress):
        def start_file(self, path, total_bytes):
            events.append(("start", path, total_bytes))

        def advance(self, bytes_read, posts):
            events.append(("advance", bytes_read, posts))

        def end_file(self, result):
            events.append(("end", result.added))

    recorder: Progress = Recorder()  # the Protocol the CLI's progress bar implements too
    import_files(open_db(db_path, create=True), [str(CHAT)], progress=recorder)
    assert events[0] == ("start", str(CHAT), CHAT.stat().st_size)
    assert events[-2] == ("advance", CHAT.stat().st_size, 10)  # 10 sightings of 8 posts
    assert events[-1] == ("end", CHAT_POSTS)


def test_problem_report_is_capped(db_path, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "MAX_KEPT_PROBLEMS", 5)
    good = CHAT.read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "many.jsonl"
    path.write_text(good + "\n" + "{broken\n" * 30, encoding="utf-8")
    result = import_files(open_db(db_path, create=True), [str(path)])[0]
    assert result.skipped == 30 and len(result.problems) == 5


# --------------------------------------------------------------------------
# the benchmark generator makes files the importer reads in full


def test_bench_generator_output_imports(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
    try:
        import gen_twarc2
    finally:
        sys.path.pop(0)
    out = tmp_path / "gen.jsonl"
    assert gen_twarc2.main(["250", "-o", str(out), "--per-page", "100"]) == 0
    pages = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(p["data"]) for p in pages] == [100, 100, 50]
    assert 3000 < out.stat().st_size / 250 < 4500  # realistic size per post
    db = open_db(tmp_path / "gen.db", create=True)
    result = import_files(db, [str(out)])[0]
    assert result.skipped == 0
    assert db.execute("SELECT count(*) FROM posts WHERE matched = 1").fetchone()[0] == 250
    again = tmp_path / "again.jsonl"
    gen_twarc2.main(["250", "-o", str(again)])
    assert again.read_bytes() == out.read_bytes()  # deterministic


BUSY = "another import or capture is writing to this archive; try again when it ends"


def test_locked_archive_is_one_line(runner, db_path, monkeypatch):
    # Another connection holds the write lock; the import waits the busy
    # timeout (a real setting, CHATARCHIVE_BUSY_TIMEOUT) and says so in one line.
    assert run(runner, db_path, TW / "api-page.json", "--no-analyse").exit_code == 0
    before = snapshot(db_path)
    monkeypatch.setenv("CHATARCHIVE_BUSY_TIMEOUT", "0.2")
    other = sqlite3.connect(db_path, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        result = run(runner, db_path, CHAT, "--no-analyse")
    finally:
        other.rollback()
        other.close()
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {db_path}: {BUSY}"
    assert snapshot(db_path) == before


def test_busy_timeout_setting_is_checked(runner, db_path, monkeypatch):
    monkeypatch.setenv("CHATARCHIVE_BUSY_TIMEOUT", "soon")
    result = run(runner, db_path, CHAT, "--no-analyse")
    assert result.exit_code == 1 and "CHATARCHIVE_BUSY_TIMEOUT='soon' is not a number" in result.output


def test_concurrent_imports_second_gets_one_line_first_completes(runner, db_path, tmp_path):
    # Two real `chatarchive import` processes.  The first reads its file
    # from a pipe we keep open, so it holds the write lock as long as we
    # like; the second gives up after the busy timeout with one line.
    assert run(runner, db_path, TW / "api-page.json", "--no-analyse").exit_code == 0
    exe = str(Path(sys.executable).parent / "chatarchive")
    env = {**os.environ, "CHATARCHIVE_BUSY_TIMEOUT": "0.3"}
    first = subprocess.Popen([exe, "import", str(db_path), "-", "--no-analyse"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        lines = CHAT.read_bytes().splitlines(keepends=True)
        first.stdin.write(lines[0])
        first.stdin.flush()
        deadline = time.monotonic() + 30
        while True:  # wait until the first import holds the lock
            probe = sqlite3.connect(db_path, timeout=0)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.rollback()
            except sqlite3.OperationalError:
                break
            finally:
                probe.close()
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = subprocess.run([exe, "import", str(db_path), str(CHAT), "--no-analyse"],
                                capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 1
        assert second.stderr.strip() == f"Error: {db_path}: {BUSY}"
        assert "Traceback" not in second.stderr + second.stdout
        first.stdin.write(b"".join(lines[1:]))
        first.stdin.close()
        assert first.wait(timeout=60) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    reference = open_db(tmp_path / "reference.db", create=True)
    import_files(reference, [str(TW / "api-page.json"), str(CHAT)])
    count = "SELECT count(*) FROM posts"
    assert sqlite3.connect(db_path).execute(count).fetchone() == reference.execute(count).fetchone()


# --------------------------------------------------------------------------
# follow-up fixes: strict message, --instance, deep JSON, cross-format counts

X = FIXTURES / "x"
MASTO = FIXTURES / "mastodon"


def _json_import(runner, db_path, *args):
    result = runner.invoke(cli, ["import", str(db_path), *map(str, args), "--json", "--no-analyse"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["files"]


def test_strict_message_has_the_same_file_line_form_as_normal_mode(runner, db_path, tmp_path):
    bad = tmp_path / "statuses.json"
    bad.write_text('[{"id_str": "1", "text": "no user"}, {"foo": 1}]', encoding="utf-8")
    normal = run(runner, db_path, bad, "--format", "twitter_v1", "--no-analyse")
    first = normal.stderr.splitlines()[0]
    assert first.startswith(f"{bad}:1 item 1: ")
    strict = run(runner, db_path, bad, "--format", "twitter_v1", "--no-analyse", "--strict")
    assert strict.exit_code == 1
    assert strict.output.strip().splitlines()[-1] == f"Error: {first} (--strict: nothing was imported)"


def test_strict_parse_error_carries_the_line(db_path, tmp_path):
    from chatarchive.errors import ParseError

    cut = truncated_copy(tmp_path)
    db = open_db(db_path, create=True)
    with pytest.raises(ParseError) as info:
        import_files(db, [str(cut)], strict=True)
    assert (info.value.line, str(info.value)) == (2, f"{cut}:2: invalid JSON (line is cut off)")
    db.conn.close()


def test_instance_option_names_the_mastodon_server(runner, db_path, tmp_path):
    lone = tmp_path / "frank.jsonl"  # a remote account, no tags, no mentions: no evidence of the server
    lone.write_text((MASTO / "boost-quote.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    uri = "https://remote.example/users/frank/statuses/88"
    _json_import(runner, db_path, lone)
    db = open_db(db_path, create=True)
    assert db.execute("SELECT instance FROM posts WHERE id = ?", (uri,)).fetchone()[0] is None
    db.conn.close()
    db_path.unlink()
    files = _json_import(runner, db_path, lone, "--instance", "https://Social.Example/")
    assert files[0]["added"] == 1
    db = open_db(db_path, create=True)
    assert db.execute("SELECT instance, local_id FROM posts WHERE id = ?", (uri,)).fetchone() == (
        "social.example", "115600000800000088")
    assert db.execute("SELECT post_id FROM local_ids WHERE instance = 'social.example'").fetchone()[0] == uri
    db.conn.close()
    bad = run(runner, db_path, lone, "--instance", "https://not a host/")
    assert bad.exit_code == 2 and "--instance" in bad.output and "Traceback" not in bad.output
    assert "--instance" in run(runner, "--help").output


def test_import_files_instance_and_format_parameters(tmp_path):
    """The library's own spelling of --instance and --format."""
    lone = tmp_path / "frank.jsonl"
    lone.write_text((MASTO / "boost-quote.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    db = open_db(tmp_path / "lib.db", create=True)
    [result] = import_files(db, [str(lone)], format="mastodon", instance="https://Social.Example/")
    assert (result.format, result.added) == ("mastodon", 1)
    assert db.execute("SELECT DISTINCT instance FROM posts").fetchall() == [("social.example",)]
    with pytest.raises(ChatArchiveError, match="Unknown format 'nope'; choose from bluesky, twarc2"):
        import_files(db, [str(lone)], format="nope")
    assert db.execute("SELECT count(*) FROM imports").fetchone()[0] == 1  # nothing more was written
    db.conn.close()


def test_per_file_state_does_not_leak_between_files(tmp_path):
    """Each file gets its own Context (and format state): the server guessed
    for one Mastodon file is not the server of the next."""
    lone = tmp_path / "frank.jsonl"  # no evidence of its server
    lone.write_text((MASTO / "boost-quote.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    db = open_db(tmp_path / "two.db", create=True)
    import_files(db, [str(MASTO / "tag-edchat-mastodon-example.json"), str(lone)])
    uri = "https://remote.example/users/frank/statuses/88"
    assert db.execute("SELECT instance FROM posts WHERE id = ?", (uri,)).fetchone() == (None,)
    assert db.execute("SELECT count(*) FROM posts WHERE instance = 'mastodon.example'").fetchone()[0] == 4
    db.conn.close()


def test_registry_order_is_detection_order():
    assert tuple(sources.FORMATS) == sources.ORDER  # also the order --format lists them in
    with pytest.raises(ValueError, match=r"not in sources\.registry\.ORDER"):
        sources.register(sources.Format(name="new_format", description="", kind="json",
                                        sniff=lambda v: False, normalize=lambda v, ctx: iter(())))
    assert "new_format" not in sources.FORMATS


def _deep_thread(levels: int, *, pretty: bool) -> str:
    """A getPostThread response whose anchor has ``levels`` parents (each one
    a nesting level or two deeper), built as text: no recursion anywhere."""
    def view(i: int) -> str:
        return json.dumps({
            "uri": f"at://did:plc:deep/app.bsky.feed.post/{i}", "cid": f"c{i}",
            "author": {"did": "did:plc:deep", "handle": "deep.bsky.example"},
            "record": {"$type": "app.bsky.feed.post", "text": f"post {i} #deepchat",
                       "createdAt": f"2026-11-18T20:{i // 60 % 60:02d}:{i % 60:02d}.000Z"},
            "indexedAt": "2026-11-18T21:00:00.000Z"})
    sep = "\n" if pretty else ""
    # innermost is the oldest parent; wrap it outward up to the anchor (post 0)
    text = f'{{"$type": "app.bsky.feed.defs#threadViewPost", "post": {view(levels)}}}'
    for i in range(levels - 1, -1, -1):
        text = f'{{"$type": "app.bsky.feed.defs#threadViewPost", "post": {view(i)},{sep} "parent": ' + text + "}"
    head = '{"thread": ' + sep
    return head + text + sep + "}"


@pytest.mark.parametrize("pretty", [False, True])
def test_deep_json_is_detected_without_format(runner, db_path, tmp_path, pretty):
    import orjson

    deep = tmp_path / "deep-thread.json"
    deep.write_text(_deep_thread(1100, pretty=pretty), encoding="utf-8")
    with pytest.raises(orjson.JSONDecodeError, match="depth"):
        orjson.loads(deep.read_bytes())  # the case at hand: orjson refuses it
    files = _json_import(runner, db_path, deep)
    assert files[0]["format"] == "bluesky" and files[0]["added"] == 1101 and files[0]["skipped"] == 0


def test_deep_json_in_the_shared_json_reader(tmp_path):
    """json_records (used by every JSON format) reads deep documents too."""
    deep = tmp_path / "deep.json"
    deep.write_text(_deep_thread(1100, pretty=True), encoding="utf-8")
    f = sources.InputFile(str(deep))
    records = list(sources.json_records(f, sources.Context(path=str(deep))))
    f.close()
    assert len(records) == 1 and not isinstance(records[0][1], sources.Skip)
    assert records[0][1]["thread"]["post"]["uri"].endswith("/0")
    broken = tmp_path / "broken.json"
    broken.write_text(_deep_thread(1100, pretty=True)[:-3], encoding="utf-8")  # deep and cut off
    f = sources.InputFile(str(broken))
    records = list(sources.json_records(f, sources.Context(path=str(broken))))
    f.close()
    assert len(records) == 1 and isinstance(records[0][1], sources.Skip)


def test_same_posts_through_another_format_are_not_updates(runner, db_path):
    _json_import(runner, db_path, X / "v1.jsonl")
    files = _json_import(runner, db_path, X / "tags.csv")
    assert files[0]["updated"] == 0 and files[0]["unchanged"] >= 4
    db = open_db(db_path, create=True)
    overlap = db.execute("SELECT count(*) FROM raw r1 JOIN raw r2 ON r1.post_id = r2.post_id "
                         "AND r1.format < r2.format").fetchone()[0]
    assert overlap == files[0]["unchanged"]  # both formats' objects are kept
    assert db.execute("SELECT count(*) FROM posts WHERE source = 'tags_csv'").fetchone()[0] == files[0]["added"]
    db.conn.close()
    assert _json_import(runner, db_path, X / "v1.jsonl")[0]["updated"] == 0


def test_mastodon_pages_from_two_servers_alternately_change_nothing(runner, db_path):
    a, b = MASTO / "tag-edchat-mastodon-example.json", MASTO / "tag-edchat-example-social.json"
    _json_import(runner, db_path, a, b)
    for path in (a, b, a, b):
        assert _json_import(runner, db_path, path)[0]["updated"] == 0


def test_archiver_authors_join_the_numeric_author(runner, db_path, tmp_path):
    _json_import(runner, db_path, X / "v1.jsonl")
    db = open_db(db_path, create=True)
    numeric = dict(db.execute("SELECT lower(handle), id FROM authors"))
    db.conn.close()
    files = _json_import(runner, db_path, X / "archiver.csv", "--tz", "UTC")
    assert files[0]["added"] > 0
    db = open_db(db_path, create=True)
    assert db.execute("SELECT count(*) FROM authors WHERE id LIKE 'x:@%'").fetchone()[0] == 0
    rows = db.execute("SELECT lower(author_handle), author_id FROM posts WHERE source = 'twitter_archiver'").fetchall()
    assert rows and all(numeric[h] == aid for h, aid in rows)
    db.conn.close()
