"""Every value validated at the source boundary (issue 14): wrong types,
out-of-range counts and times, one bad record among good ones, messages in
plain words with URL credentials redacted, and the gate before SQL."""

from __future__ import annotations

import copy
import json
import sqlite3

import pytest
from conftest import FIXTURES

from chatarchive.archive.check import BadPost, check_post, dumps_deep, raw_json
from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.errors import redact
from chatarchive.models import Author, Media, Post
from chatarchive.sources import fields

TW = FIXTURES / "twarc2"


def page_of(n: int) -> dict:
    """A twarc2 page of ``n`` posts made from one real-shaped post."""
    line = json.loads((TW / "chat.jsonl").read_text(encoding="utf-8").splitlines()[0])
    template = line["data"][0]
    data = []
    for i in range(n):
        t = copy.deepcopy(template)
        t["id"] = str(1790000000000100000 + i)
        t.pop("referenced_tweets", None)
        data.append(t)
    return {"data": data, "includes": {"users": line.get("includes", {}).get("users", [])}}


def import_json(runner, db_path, path, *args):
    result = runner.invoke(cli, ["import", str(db_path), str(path), "--no-analyse", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["files"][0]


def test_one_bad_post_of_a_page_costs_that_post_only(runner, db_path, tmp_path):
    page = page_of(100)
    page["data"][41]["created_at"] = 17  # a wrong type
    page["data"][42]["id"] = {"id": 1}  # no usable id
    page["data"][43]["public_metrics"] = "lots"
    path = tmp_path / "page.jsonl"
    path.write_text(json.dumps(page) + "\n", encoding="utf-8")
    summary = import_json(runner, db_path, path)
    assert (summary["added"], summary["skipped"]) == (99, 1)
    assert summary["problems"] == [
        f"{path}:1: post 43: post id \"{{'id': 1}}\" is not a number",
        f"{path}:1: created_at: time 17 is not text; the time was taken from the post id",
    ]
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT like_count FROM posts WHERE id = ?", (page["data"][43]["id"],)).fetchone() == (None,)


def test_the_same_bad_post_in_the_dict_path_and_in_a_document(runner, db_path, tmp_path):
    page = page_of(10)
    page["data"][3]["id"] = "abc"
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page, indent=2), encoding="utf-8")  # a document: the dict path
    summary = import_json(runner, db_path, path)
    assert (summary["added"], summary["skipped"]) == (9, 1)
    assert summary["problems"] == [f"{path}:1: post 4 (id abc): post id 'abc' is not a number"]


@pytest.mark.parametrize("value, expected, warned", [
    (5, 5, False), (0, 0, False), (None, None, False), (True, None, False), (3.0, 3, False), ("7", 7, False),
    (2**63 - 1, 2**63 - 1, False), (2**63, None, True), (1e20, None, True), (-1, None, True),
    (float("inf"), None, True), (float("nan"), None, True), ("1e20", None, False), ([], None, False),
])
def test_counts_are_integers_in_range_or_unknown(value, expected, warned):
    warnings: list[str] = []
    assert fields.count(value, "like_count", warnings) == expected
    assert bool(warnings) == warned


def test_a_count_above_2_63_is_stored_as_unknown_with_a_warning(runner, db_path, tmp_path):
    page = page_of(2)
    page["data"][0]["public_metrics"] = {"like_count": 10**20, "retweet_count": 3}
    path = tmp_path / "page.jsonl"
    path.write_text(json.dumps(page) + "\n", encoding="utf-8")
    summary = import_json(runner, db_path, path)
    assert (summary["added"], summary["skipped"]) == (2, 0)
    assert summary["problems"] == [f"{path}:1: like_count 100000000000000000000 is not a count "
                                   "(negative, or larger than 2^63); stored as unknown"]
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT like_count, repost_count FROM posts WHERE id = ?",
                      (page["data"][0]["id"],)).fetchone() == (None, 3)
    assert db.execute("SELECT warnings, skipped, status FROM imports").fetchone() == (1, 0, "ok")


def test_impossible_times_are_stored_as_null_with_a_warning_never_dropped(runner, db_path, tmp_path):
    statuses = json.loads((FIXTURES / "mastodon" / "tag-edchat-mastodon-example.json").read_text(encoding="utf-8"))
    for s, t in zip(statuses, ["0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.000Z", "0001-01-01T00:00:00Z"]):
        s["created_at"] = t
    path = tmp_path / "page.json"
    path.write_text(json.dumps(statuses), encoding="utf-8")
    summary = import_json(runner, db_path, path)
    assert summary["added"] == len(statuses) and summary["skipped"] == 0
    assert len(summary["problems"]) == 3 and all("stored without a time" in p for p in summary["problems"])
    db = sqlite3.connect(db_path)
    times = [r[0] for r in db.execute("SELECT created_at FROM posts")]
    assert times.count(None) == 3
    assert all(t is None or (len(t) == 24 and t[:4] >= "2006") for t in times)


def test_credentials_in_urls_are_redacted_in_import_messages(runner, db_path, tmp_path):
    page = page_of(1)
    page["data"][0]["id"] = "https://ana:hunter2@example.org/p"
    path = tmp_path / "page.jsonl"
    path.write_text(json.dumps(page) + "\n" + json.dumps({"data": "https://bob:pw@h.example/x"}) + "\n",
                    encoding="utf-8")
    result = runner.invoke(cli, ["import", str(db_path), str(path), "--no-analyse"])
    assert "hunter2" not in result.output and "pw@" not in result.output
    assert "https://***@example.org/p" in result.output


def test_redact():
    assert redact("see https://ana:s3cret@example.org/x and http://bob@h.example") == (
        "see https://***@example.org/x and http://***@h.example")
    assert redact("https://mastodon.social/@ana stays") == "https://mastodon.social/@ana stays"
    assert redact("mail ana@example.org") == "mail ana@example.org"


# --------------------------------------------------------------------------
# The gate before SQL


def test_the_gate_holds_every_field_to_its_type():
    post = Post(id=17, platform="x", source="twarc2", created_at="0000-01-01T00:00:00.000Z",
                author=Author(id=5, platform="x", handle=["h"], name=3), text=None, url={"u": 1},
                reply_to_id=12, lang=7.5, like_count=2**64, repost_count=True, reply_count=-3,
                hashtags=["ok", 5, None, "", "caf\ud800"], links="https://x", media=[Media(url=None), 5],
                raw={1: {2, 3}})
    post = check_post(post)
    assert (post.id, post.author.id, post.author.handle, post.author.name) == ("17", "5", None, "3")
    assert (post.text, post.url, post.reply_to_id, post.lang) == ("", None, "12", None)
    assert (post.like_count, post.repost_count, post.reply_count) == (None, None, None)
    assert post.hashtags == ["ok", "caf\ufffd"] and post.links == [] and post.media == []
    assert post.created_at is None
    assert json.loads(post.raw) == {"1": repr({2, 3})}
    assert len(post.warnings) == 3  # the time and the two out-of-range counts


@pytest.mark.parametrize("post, reason", [
    (Post(id="", platform="x", source="t", created_at=None, author=None), "not usable"),
    (Post(id="1", platform="myspace", source="t", created_at=None, author=None), "unknown platform"),
    ("not a post", "not a post"),
])
def test_the_gate_refuses_what_cannot_be_stored(post, reason):
    with pytest.raises(BadPost, match=reason):
        check_post(post)


def test_raw_objects_of_any_depth_and_any_integer_are_kept():
    deep: object = "leaf"
    for _ in range(5000):
        deep = [deep]
    text = raw_json({"thread": deep, "big": 2**70})
    assert text.startswith('{"thread":[[[[') and text.endswith(']]]],"big":1180591620717411303424}')
    assert dumps_deep({"a": [1, "x", None, 1.5, float("nan")]}) == '{"a":[1,"x",null,1.5,null]}'


def test_the_writer_refuses_bad_posts_and_keeps_the_rest(tmp_path):
    db = open_db(tmp_path / "chats.db", create=True)
    from chatarchive.archive.writer import PostWriter, transaction

    writer = PostWriter(db)
    with transaction(db):
        refused = writer.add([Post(id="", platform="x", source="t", created_at=None, author=None),
                              Post(id="9", platform="x", source="t", created_at=None, author=None, text="fine")])
        writer.flush()
    writer.close()
    assert refused == ["post id '' is not usable"] and writer.stats.added == 1


def test_the_import_of_every_fixture_stores_only_contract_values(tmp_path):
    db = open_db(tmp_path / "chats.db", create=True)
    files = [p for p in FIXTURES.glob("*/*") if p.suffix in (".json", ".jsonl", ".csv")
             and p.parent.name in ("twarc2", "x", "mastodon", "bluesky")]
    import_files(db, [str(p) for p in files], tz="America/New_York")
    bad = db.execute("SELECT id, created_at FROM posts WHERE created_at IS NOT NULL AND (length(created_at) <> 24 "
                     "OR created_at < '2006')").fetchall()
    assert bad == []
