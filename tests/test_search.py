"""`chatarchive search` and archive.search: FTS5 with porter stemming over post
text and author handle/name, filters, orders, typed hits, JSON, errors, hostile text."""

from __future__ import annotations

import json
import re

import pytest
from conftest import FIXTURES

from chatarchive.archive import search as search_module
from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.archive.search import HIGHLIGHT_END, HIGHLIGHT_START, search
from chatarchive.archive.writer import save_posts
from chatarchive.cli import cli
from chatarchive.errors import NotFoundError, SearchError
from chatarchive.models import Author, Post, SearchHit, StoredPost

CHAT = FIXTURES / "twarc2" / "chat.jsonl"


@pytest.fixture
def archive(db_path):
    db = open_db(db_path, create=True)
    import_files(db, [str(CHAT)])
    return db


def ids(hits) -> list[str]:
    return [h.post.id for h in hits]


ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours only (rich's own)


def cli_search(runner, db_path, *args, env=None):
    return runner.invoke(cli, ["search", str(db_path), *args], env=env)


# --------------------------------------------------------------------------
# the library


def test_stemming_finds_other_forms(archive):
    assert set(ids(search(archive, "metric"))) == {"2001", "1980"}  # "metrics"
    assert set(ids(search(archive, "measuring"))) == {"2002", "2006", "2005"}  # "measure", "Measuring"


def test_author_handle_and_name_are_searchable(archive):
    # the handle is in the author column of 2004, and in the text of 2005 (@ana_chats)
    assert set(ids(search(archive, "ana_chats"))) == {"2004", "2005"}
    assert ids(search(archive, "author_handle:ana_chats")) == ["2004"]
    assert ids(search(archive, "Okafor")) == ["2005"]
    assert ids(search(archive, "muller")) == ["2004"]  # Müller, diacritics folded
    assert ids(search(archive, "author_handle:outsider")) == ["1980"]


def test_best_and_newest_orders(archive):
    assert ids(search(archive, "retention")) == ["2004", "2005"]  # the short post ranks first
    assert ids(search(archive, "retention", order="newest")) == ["2005", "2004"]
    hits = search(archive, "testchat", order="newest")
    assert [h.post.created_at for h in hits] == sorted((h.post.created_at for h in hits), reverse=True)
    assert all(h.rank is None for h in hits)
    ranks = [h.rank for h in search(archive, "testchat")]
    assert ranks == sorted(ranks)


def test_filters(archive):
    assert ids(search(archive, "retention", hashtag="CMGR")) == ["2004"]
    assert ids(search(archive, "retention", hashtag="#cmgr")) == ["2004"]
    assert ids(search(archive, "retention", author="ben")) == ["2005"]
    assert ids(search(archive, "retention", author="@BEN")) == ["2005"]
    assert ids(search(archive, "retention", author="102")) == ["2005"]  # the author id works too
    late = search(archive, "testchat", since="2026-11-18T20:05:00.000Z", order="newest")
    assert ids(late) == ["2006", "2003", "2005"]
    early = search(archive, "testchat", until="2026-11-18T20:01:00.000Z", order="newest")
    assert ids(early) == ["2002", "1990"]
    assert len(search(archive, "testchat", limit=2)) == 2
    assert search(archive, "retention", hashtag="nosuchtag") == []


def test_both_newest_plans_agree(archive, monkeypatch):
    sorted_plan = search(archive, "testchat", order="newest", limit=4)
    monkeypatch.setattr(search_module, "NEWEST_SCAN_THRESHOLD", 0)  # walk the time index instead
    scan_plan = search(archive, "testchat", order="newest", limit=4)
    assert ids(scan_plan) == ids(sorted_plan) == ["2006", "2003", "2005", "2004"]
    assert ids(search(archive, "testchat", order="newest", author="chathost")) == ["2003", "2002"]


def test_result_hits(archive):
    hit = search(archive, "dashboard OR retention", author="ana_chats")[0]
    assert isinstance(hit, SearchHit) and isinstance(hit.post, StoredPost)
    post = hit.post
    assert post.id == "2004" and post.url == "https://x.com/ana_chats/status/2004"
    assert post.author_handle == "ana_chats" and post.author_name == "Ana Müller"
    assert post.matched == 1 and post.like_count == 5
    # the whole stored row, as every other read returns it
    stored = archive.execute("SELECT * FROM posts WHERE id = '2004'").fetchone()
    names = [d[0] for d in archive.execute("SELECT * FROM posts LIMIT 0").description]
    assert post.as_dict() == dict(zip(names, stored))
    assert f"{HIGHLIGHT_START}retention{HIGHLIGHT_END}" in hit.snippet
    assert isinstance(hit.rank, float)
    # the --json shape
    shown = hit.as_dict()
    assert list(shown) == ["id", "platform", "url", "author_handle", "author_name", "created_at", "text",
                           "matched", "like_count", "repost_count", "snippet", "rank"]
    assert "**retention**" in shown["snippet"] and shown["rank"] == hit.rank


def test_text_that_is_not_fts5_syntax_is_searched_for_its_words(archive):
    # What hosts type: markers, handles, hashtags, URLs, half-written operators.
    for typed, words in [('"unbalanced', '"unbalanced"'), ("community AND", '"community" "AND"'),
                         ("(metrics", '"metrics"'), ("NEAR(a b", '"NEAR" "a" "b"'), ("A1:", '"A1"'),
                         ("Q3: metrics", '"Q3" "metrics"'), ("@ana_chats welcome", '"ana_chats" "welcome"'),
                         ("https://example.com/guide", '"https" "example" "com" "guide"')]:
        hits = search(archive, typed)
        assert hits.query == words and typed in hits.note and words in hits.note, typed
        assert ids(hits) == ids(search(archive, words)), typed
    valid = search(archive, "community AND metrics")
    assert valid.note is None and valid.query == "community AND metrics"


def test_a_query_without_words_is_an_error(archive):
    for bad in ['"', "(", "***", ":"]:
        with pytest.raises(SearchError, match="Invalid search query"):
            search(archive, bad)


def test_words_with_punctuation_are_searched_as_words(archive):
    assert set(ids(search(archive, "#testchat"))) == set(ids(search(archive, "testchat")))
    assert ids(search(archive, "members'")) == ids(search(archive, "members"))


def test_large_limits_and_many_results(db):
    author = Author(id="1", platform="x", handle="bulk")
    save_posts(db, [Post(id=str(i), platform="x", source="twarc2", author=author, text=f"metrics number {i}",
                         created_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z") for i in range(1200)])
    hits = search(db, "metric", limit=1100, order="newest")
    assert len(hits) == 1100 and hits[0].post.id == "1199"
    assert len(search(db, "metric", limit=1100)) == 1100


# --------------------------------------------------------------------------
# the command


def test_cli_plain_output_is_one_line_per_post(runner, archive, db_path):
    result = cli_search(runner, db_path, "retention")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    when, handle, snippet, url = lines[0].split("\t")
    assert (when, handle, url) == ("2026-11-18T20:03:10.000Z", "@ana_chats", "https://x.com/ana_chats/status/2004")
    assert "retention" in snippet and HIGHLIGHT_START not in snippet


def test_cli_json(runner, archive, db_path):
    result = cli_search(runner, db_path, "retention", "--json", "--order", "newest")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == ["2005", "2004"]
    assert "**retention**" in rows[1]["snippet"]


def test_cli_options(runner, archive, db_path):
    args = ["testchat", "--json", "--order", "newest", "--since", "2026-11-18T20:05", "--limit", "2"]
    rows = json.loads(cli_search(runner, db_path, *args).stdout)
    assert [r["id"] for r in rows] == ["2006", "2003"]
    rows = json.loads(cli_search(runner, db_path, "testchat", "--json", "--until", "2026-11-18", "--order", "newest").stdout)
    assert [r["id"] for r in rows] == ["1990"]
    rows = json.loads(cli_search(runner, db_path, "retention", "--json", "--hashtag", "CMGR", "--author", "ana_chats").stdout)
    assert [r["id"] for r in rows] == ["2004"]
    rows = json.loads(cli_search(runner, db_path, "testchat", "--json", "--since", "2026-11-18T21:05+01:00").stdout)
    assert {r["id"] for r in rows} == {"2006", "2003", "2005"}  # an offset is honoured


def test_cli_invalid_query_is_one_line(runner, archive, db_path):
    result = cli_search(runner, db_path, '"(')
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Invalid search query: '\"('")
    assert "Traceback" not in result.output


def test_cli_searches_the_words_of_what_hosts_type_and_says_so(runner, archive, db_path):
    result = cli_search(runner, db_path, "A1:", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(cli_search(runner, db_path, '"A1"', "--json").stdout)
    assert result.stderr.startswith("Note: 'A1:' is not FTS5 syntax") and '"A1"' in result.stderr


def test_cli_invalid_time(runner, archive, db_path):
    result = cli_search(runner, db_path, "metrics", "--since", "yesterday")
    assert result.exit_code == 1 and "Invalid time: 'yesterday'" in result.output


def test_cli_no_matches(runner, archive, db_path):
    result = cli_search(runner, db_path, "zebra")
    assert result.exit_code == 0 and result.stdout == "" and "No matches." in result.stderr


def test_cli_hostile_text_plain(runner, archive, db_path):
    result = cli_search(runner, db_path, "markup")
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout  # the post's escape sequence is not passed on
    assert "<script>alert(1)</script>" in result.stdout  # shown as text
    assert result.stdout.count("\n") == 1 and result.stdout.count("\t") == 3


def test_cli_hostile_text_on_a_terminal(runner, archive, db_path):
    result = cli_search(runner, db_path, "markup", env={"FORCE_COLOR": "1", "COLUMNS": "200"})
    assert result.exit_code == 0
    assert "\x1b[2J" not in result.stdout
    text = ANSI.sub("", result.stdout)
    assert "\x1b" not in text  # nothing but colours
    assert "[bold red]not markup[/bold red]" in text  # not taken as rich markup
    assert "@cy_hostile" in text and "1 result(s), best match first" in text


def test_cli_rich_table_highlights(runner, archive, db_path):
    result = cli_search(runner, db_path, "retention", env={"FORCE_COLOR": "1", "COLUMNS": "200"})
    assert result.exit_code == 0
    assert "\x1b[1;33mretention" in result.stdout  # bold yellow match
    assert "2 result(s), best match first" in ANSI.sub("", result.stdout)


def test_cli_missing_database_is_an_error(runner, db_path):
    # DESIGN's CLI contract: only import, capture and demo create an archive
    result = cli_search(runner, db_path, "metrics")
    assert result.exit_code == 1 and "no such archive" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not db_path.exists()


def test_session_filter(archive):
    archive.execute("INSERT INTO sessions (id, slug, hashtag) VALUES (7, 'testchat-2026-11-18', 'testchat')")
    archive.execute("INSERT INTO session_posts (session_id, post_id) VALUES (7, '2004'), (7, '2002')")
    assert ids(search(archive, "testchat", session="testchat-2026-11-18", order="newest")) == ["2004", "2002"]
    assert ids(search(archive, "testchat", session="7", order="newest")) == ["2004", "2002"]
    with pytest.raises(NotFoundError, match="No session 'no-such-session'"):
        search(archive, "testchat", session="no-such-session")


def test_cli_unknown_session_is_an_error(runner, archive, db_path):
    result = cli_search(runner, db_path, "testchat", "--session", "no-such-session")
    assert result.exit_code == 1 and "No session 'no-such-session'" in result.output


def test_unknown_filter_values_still_check_the_query(archive):
    with pytest.raises(SearchError):
        search(archive, '"(', hashtag="nosuchtag")
