"""twarc2 / X API v2: raw pages with includes, stream lines, flattened posts,
plain API pages, errors-only pages, the 2.167 field names (sources.md §1, §2).

Unit tests call the pure normalize functions on our own fixtures
(tests/fixtures/twarc2/, written by make_fixtures.py); the last group imports
every real twarc2 file of ../shared/fixtures and checks the number of
matched posts and reply links against counts computed straight from the
files by a small independent reader (`expected_from_file`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES, SHARED_FIXTURES, needs_shared_fixtures

from chatarchive import sources
from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.sources import Context, InputFile, Skip, twarc2

TW = FIXTURES / "twarc2"
CTX = Context(path="test")


def lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (TW / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def by_id(posts) -> dict:
    return {p.id: p for p in posts}


# --------------------------------------------------------------------------
# normalize: raw pages


def test_page_data_posts_are_matched_and_includes_are_context():
    posts = list(twarc2.normalize_page(lines("chat.jsonl")[1], CTX))
    got = {p.id: p.matched for p in posts}
    # data: 2004, 2001, 2002; includes.tweets: 1980 (the parent of 2001)
    assert got == {"2004": True, "2001": True, "2002": True, "1980": False}


def test_includes_copy_of_a_data_post_is_not_yielded_twice():
    page = lines("chat.jsonl")[1]
    page["includes"]["tweets"].append(dict(page["data"][0]))  # 2004 also in includes
    ids = [p.id for p in twarc2.normalize_page(page, CTX)]
    assert ids.count("2004") == 1


def test_reply_quote_and_repost_links():
    posts = by_id(twarc2.normalize_page(lines("chat.jsonl")[0], CTX))
    assert posts["2005"].reply_to_id == "2004"
    assert posts["2005"].reply_to_author == "ana_chats"  # resolved through includes.users
    assert posts["2003"].quote_of_id == "1990" and posts["2003"].reply_to_id is None
    assert posts["2006"].is_repost and not posts["2005"].is_repost
    assert posts["2005"].root_id == "2002"


def test_reply_author_falls_back_to_the_user_id_when_not_in_includes():
    page = lines("chat.jsonl")[1]
    page["includes"]["users"] = [u for u in page["includes"]["users"] if u["id"] != "105"]
    post = by_id(twarc2.normalize_page(page, CTX))["2001"]
    assert post.reply_to_id == "1980"
    assert post.reply_to_author == "105"


def test_author_fields_and_permalink():
    post = by_id(twarc2.normalize_page(lines("chat.jsonl")[1], CTX))["2004"]
    assert (post.author.id, post.author.handle, post.author.name) == ("101", "ana_chats", "Ana Müller")
    assert post.author.url == "https://x.com/ana_chats"
    assert post.url == "https://x.com/ana_chats/status/2004"
    assert post.platform == "x" and post.source == "twarc2"


def test_permalink_without_a_known_author():
    page = lines("chat.jsonl")[1]
    page["includes"]["users"] = []
    post = by_id(twarc2.normalize_page(page, CTX))["2004"]
    assert post.url == "https://x.com/i/web/status/2004"
    assert post.author.id == "101" and post.author.handle is None


def test_entities_links_are_expanded_and_media_has_alt_text():
    post = by_id(twarc2.normalize_page(lines("chat.jsonl")[1], CTX))["2004"]
    assert post.hashtags == ["testchat", "CMGR"]
    assert post.mentions == ["chathost"]
    # the photo's self-link (it has a media_key) is not a link; t.co never kept
    assert post.links == ["https://example.org/health"]
    assert [(m.url, m.type, m.alt) for m in post.media] == [
        ("https://pbs.twimg.com/media/health.jpg", "photo", "A dashboard of weekly active members")]


def test_text_is_unescaped_exactly_once():
    post = by_id(twarc2.normalize_page(lines("chat.jsonl")[1], CTX))["2004"]
    assert "active members & retention" in post.text
    assert twarc2.unescape_x("a &amp;lt; b") == "a &lt; b"  # a literal "&lt;" typed by the author


def test_long_post_text_comes_from_note_tweet():
    post = by_id(twarc2.normalize_page(lines("chat.jsonl")[0], CTX))["2005"]
    assert len(post.text) > 280 and post.text.endswith("#testchat") and "…" not in post.text
    assert post.mentions == ["ana_chats"]  # entities of the note, not of the cut text


def test_repost_text_is_the_full_original():
    page = lines("chat.jsonl")[0]
    page["data"][0]["text"] = "RT @chathost: Q1: How do you measure comm…"
    post = by_id(twarc2.normalize_page(page, CTX))["2006"]
    assert post.text == "RT @chathost: Q1: How do you measure community health? #testchat"


def test_counts_are_none_when_the_source_has_none_and_zero_when_zero():
    posts = by_id(twarc2.normalize_page(lines("chat.jsonl")[1], CTX))
    assert posts["2001"].like_count is None and posts["2001"].repost_count is None
    assert posts["1980"].like_count == 0 and posts["1980"].repost_count == 0
    assert (posts["2002"].like_count, posts["2002"].repost_count, posts["2002"].reply_count) == (12, 3, 2)


def test_times_are_archive_utc_strings():
    page = lines("chat.jsonl")[1]
    page["data"][0]["created_at"] = "2026-11-18T21:03:10+01:00"  # an offset: converted
    page["data"][1]["created_at"] = "2026-11-18T20:01:00Z"  # no fraction
    posts = by_id(twarc2.normalize_page(page, CTX))
    assert posts["2004"].created_at == "2026-11-18T20:03:10.000Z"
    assert posts["2001"].created_at == "2026-11-18T20:01:00.000Z"
    assert posts["2002"].created_at == "2026-11-18T20:00:30.000Z"


def test_raw_is_the_post_object_itself():
    page = lines("chat.jsonl")[1]
    post = by_id(twarc2.normalize_page(page, CTX))["2004"]
    assert post.raw == page["data"][0]


def test_data_as_object_stream_line():
    stream = lines("stream.jsonl")
    assert isinstance(stream[0]["data"], dict)
    posts = list(twarc2.normalize(stream[0], CTX))
    assert [(p.id, p.matched, p.reply_to_id) for p in posts] == [("2004", True, "2002")]
    assert posts[0].media[0].alt == "A dashboard of weekly active members"


def test_flattened_post_with_inlined_author_and_references():
    flat = lines("flat.jsonl")
    assert "data" not in flat[0] and "author" in flat[0]
    posts = list(twarc2.normalize(flat[0], CTX))
    assert [(p.id, p.matched) for p in posts] == [("2005", True), ("2004", False)]
    assert posts[0].author.handle == "ben" and posts[0].reply_to_author == "ana_chats"
    assert posts[1].author.handle == "ana_chats"  # the referenced post's own author
    media_post = next(iter(twarc2.normalize(flat[1], CTX)))
    assert [m.url for m in media_post.media] == ["https://pbs.twimg.com/media/health.jpg"]


def test_renamed_fields_of_openapi_2_167():
    page = lines("renamed-2167.jsonl")[0]
    assert "referenced_posts" in page["data"][0] and "note_post" in page["data"][0]
    posts = by_id(twarc2.normalize(page, CTX))
    assert posts["2005"].reply_to_id == "2004"
    assert len(posts["2005"].text) > 280  # note_post
    assert posts["2006"].is_repost and posts["2006"].repost_count == 3  # repost_count
    assert posts["2002"].matched is False and posts["2002"].repost_count == 3


def test_includes_posts_spelling():
    page = lines("chat.jsonl")[1]
    page["includes"]["posts"] = page["includes"].pop("tweets")
    assert "1980" in by_id(twarc2.normalize_page(page, CTX))


def test_page_with_only_errors_yields_nothing():
    errors_line = lines("chat.jsonl")[2]
    assert "data" not in errors_line and errors_line["errors"]
    assert list(twarc2.normalize(errors_line, CTX)) == []


def test_a_malformed_post_costs_itself_only_with_a_reason():
    ctx = Context(path="test")
    page = {"data": [{"id": "abc", "text": "x", "created_at": "2026-01-01T00:00:00Z"},
                     {"id": "7", "text": "fine", "created_at": "2026-01-01T00:00:00Z"}]}
    assert [p.id for p in twarc2.normalize(page, ctx)] == ["7"]
    assert ctx.problems == ["post 1 (id abc): post id 'abc' is not a number"]
    with pytest.raises(Skip):
        list(twarc2.normalize({"something": "else"}, ctx))


def test_a_post_without_a_readable_time_is_kept_with_a_warning():
    ctx = Context(path="test")
    (post,) = twarc2.normalize({"data": [{"id": "1", "text": "no time"}]}, ctx)
    assert post.created_at is None and post.warnings == ["no time given; stored without a time"]
    # a snowflake id carries its time: used when created_at is broken
    (post,) = twarc2.normalize({"data": [{"id": "1790000000000000031", "text": "x",
                                          "created_at": "0000-01-01T00:00:00.000Z"}]}, ctx)
    assert post.created_at == "2024-05-13T12:43:51.248Z"
    assert post.warnings == ["created_at: unreadable time '0000-01-01T00:00:00.000Z'; "
                             "the time was taken from the post id"]


# --------------------------------------------------------------------------
# detection


@pytest.mark.parametrize("name", ["chat.jsonl", "stream.jsonl", "flat.jsonl", "api-page.json", "renamed-2167.jsonl"])
def test_detected_as_twarc2(name):
    f = InputFile(str(TW / name))
    try:
        assert sources.detect(f).name == "twarc2"
    finally:
        f.close()


def test_detection_reads_a_long_first_line_whole_but_not_the_file(tmp_path):
    # One twarc2 page is one line of ~350 KB, far beyond the 64 KB head.
    page = lines("chat.jsonl")[1]
    page["data"][0]["context_annotations"] = [{"domain": {"description": "x" * 1000}}] * 400
    line = json.dumps(page).encode()
    assert len(line) > 3 * sources.HEAD_BYTES
    path = tmp_path / "big.jsonl"
    path.write_bytes((line + b"\n") * 40)
    f = InputFile(str(path))
    try:
        assert sources.detect(f).name == "twarc2"
        assert len(f.head) < 3 * len(line)  # not the whole 40-line file
        assert b"".join(f.chunks()) == path.read_bytes()  # nothing lost by peeking
    finally:
        f.close()


# --------------------------------------------------------------------------
# whole files, through the importer


def import_one(tmp_path, path, **kw):
    db = open_db(tmp_path / "t.db", create=True)
    result = import_files(db, [str(path)], **kw)[0]
    return db, result


def test_chat_file_rows(tmp_path):
    db, result = import_one(tmp_path, TW / "chat.jsonl")
    assert result.error is None and result.skipped == 0
    rows = {r[0]: r[1:] for r in db.execute("SELECT id, matched, reply_to_id, like_count FROM posts")}
    assert rows == {
        "2006": (1, None, 0), "2005": (1, "2004", 2), "2003": (1, None, 1),
        "2004": (1, "2002", 5), "2002": (1, None, 12),  # the matched copy's 12, not the context 11
        "2001": (1, "1980", None),
        "1990": (0, None, 7), "1980": (0, None, 0),
    }
    assert db.execute("SELECT count(*) FROM authors").fetchone()[0] == 6


def test_api_page_pretty_printed(tmp_path):
    db, result = import_one(tmp_path, TW / "api-page.json")
    assert result.format == "twarc2" and result.added == 4
    assert sorted(db.execute("SELECT id, matched FROM posts")) == [
        ("1980", 0), ("2001", 1), ("2002", 1), ("2004", 1)]


def test_errors_only_response_is_refused(runner, tmp_path):
    result = runner.invoke(cli, ["import", str(tmp_path / "t.db"), str(TW / "errors-only.json")])
    assert result.exit_code == 1
    assert "errors-only.json" in result.output
    assert "only errors (Could not find tweet with ids: [1].)" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------
# the real files


def expected_from_file(path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """(matched post ids, {(post id, parent id)}) read straight from a twarc2
    file: raw pages (data list or object, plus includes.tweets) or
    flattened posts; lines that are not JSON are ignored."""
    text = path.read_text(encoding="utf-8")
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        docs = []
        for line in text.splitlines():
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    matched: set[str] = set()
    everything: dict[str, dict] = {}
    for doc in docs:
        if "data" in doc:
            data = doc["data"] if isinstance(doc["data"], list) else [doc["data"]]
            context = (doc.get("includes") or {}).get("tweets") or []
        else:  # flattened: the post, with its referenced posts inlined
            data = [doc]
            context = [r for r in doc.get("referenced_tweets") or [] if "created_at" in r]
        for t in data:
            matched.add(t["id"])
            everything[t["id"]] = t
        for t in context:
            everything.setdefault(t["id"], t)
    replies = set()
    for tid, t in everything.items():
        for ref in t.get("referenced_tweets") or []:
            if ref["type"] == "replied_to":
                replies.add((tid, ref["id"]))
    return matched, replies


SHARED_TWARC2 = sorted((SHARED_FIXTURES / "twarc2").glob("*.jsonl")) + sorted(
    (SHARED_FIXTURES / "twarc2").glob("api-page*.json"))


@needs_shared_fixtures()
@pytest.mark.parametrize("path", SHARED_TWARC2, ids=lambda p: p.name)
def test_shared_twarc2_file_imports_every_post_and_reply(tmp_path, path):
    matched, replies = expected_from_file(path)
    assert matched  # the helper read something
    db, result = import_one(tmp_path, path)
    assert result.error is None and result.format == "twarc2"
    got_matched = {r[0] for r in db.execute("SELECT id FROM posts WHERE matched = 1")}
    got_replies = set(db.execute("SELECT id, reply_to_id FROM posts WHERE reply_to_id IS NOT NULL"))
    assert got_matched == matched
    assert got_replies == replies
    # every stored post keeps its raw object
    assert db.execute("SELECT count(*) FROM posts WHERE id NOT IN (SELECT post_id FROM raw)").fetchone()[0] == 0


@needs_shared_fixtures()
def test_shared_known_numbers():
    # Numbers stated in ../shared/fixtures/README.md, as a check on the helper.
    matched, replies = expected_from_file(SHARED_FIXTURES / "twarc2" / "brexit.jsonl")
    assert len(matched) == 100 and len({r for r in replies if r[0] in matched}) == 10
    matched, replies = expected_from_file(SHARED_FIXTURES / "twarc2" / "naacpimageawards.jsonl")
    assert len(matched) == 300 and len({r for r in replies if r[0] in matched}) == 36


@needs_shared_fixtures()
def test_shared_stream_with_broken_line_reports_it(tmp_path):
    path = SHARED_FIXTURES / "twarc2" / "streaming_output_with_error.jsonl"
    _, result = import_one(tmp_path, path)
    assert result.skipped == 1
    assert len(result.problems) == 1
    assert result.problems[0].startswith(f"{path}:8: invalid JSON")


@needs_shared_fixtures()
def test_shared_flat_and_raw_are_the_same_posts(tmp_path):
    db = open_db(tmp_path / "t.db", create=True)
    first = import_files(db, [str(SHARED_FIXTURES / "twarc2" / "noflat.jsonl")])[0]
    second = import_files(db, [str(SHARED_FIXTURES / "twarc2" / "flat.jsonl")])[0]
    assert first.added > 100
    assert (second.added, second.updated) == (0, 0)
    assert db.execute("SELECT count(*) FROM posts WHERE matched = 1").fetchone()[0] == 100


# --------------------------------------------------------------------------
# the fast path (msgspec structs, JSONL lines) equals the dict path


def comparable(post):
    out = dict(vars(post))
    raw = out.pop("raw")
    out["raw"] = json.loads(raw) if isinstance(raw, str) else raw
    out["author"] = vars(post.author) if post.author else None
    out["media"] = [vars(m) for m in post.media]
    return out


def both_paths(line: bytes):
    fast = twarc2._fast_page(line, CTX)
    slow = list(twarc2.normalize(json.loads(line), CTX))
    return fast, slow


def jsonl_lines(path: Path) -> list[bytes]:
    out = []
    for line in path.read_bytes().splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and value.get("data") is not None:
            out.append(line)
    return out


def test_fast_path_equals_dict_path_on_our_fixtures():
    lines = jsonl_lines(TW / "chat.jsonl") + jsonl_lines(TW / "stream.jsonl") + jsonl_lines(TW / "renamed-2167.jsonl")
    assert len(lines) == 5
    for line in lines:
        fast, slow = both_paths(line)
        assert [comparable(p) for p in fast] == [comparable(p) for p in slow]
        assert all(isinstance(p.raw, str) for p in fast)


@needs_shared_fixtures()
@pytest.mark.parametrize("path", [p for p in SHARED_TWARC2 if p.suffix == ".jsonl"], ids=lambda p: p.name)
def test_fast_path_equals_dict_path_on_real_files(path):
    for line in jsonl_lines(path):
        fast, slow = both_paths(line)
        assert [comparable(p) for p in fast] == [comparable(p) for p in slow]


def test_lines_that_do_not_fit_the_structs_use_the_dict_path(tmp_path):
    page = lines("chat.jsonl")[1]
    page["data"][1]["in_reply_to_user_id"] = 105.5  # a float: the structs refuse it, the dict path copes
    page["data"][2]["id"] = 2002  # an int id works in both
    line = json.dumps(page).encode()
    with pytest.raises(twarc2._NotFast):
        twarc2._fast_page(line, CTX)
    posts = by_id(twarc2.normalize(line, CTX))
    assert set(posts) == {"2004", "2001", "2002", "1980"}
    # a float is not a user id: no reply author, the reply itself is kept
    assert posts["2001"].reply_to_author is None and posts["2001"].reply_to_id == "1980"


def test_invalid_json_line_is_a_skip():
    with pytest.raises(Skip, match="invalid JSON"):
        list(twarc2.normalize(b'{"data": [{"id": "1", "text": "cut', CTX))
