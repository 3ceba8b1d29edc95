"""X/Twitter file importers other than twarc2: v1.1 statuses, the account
archive (tweets.js), TAGS, "Twitter Archiver" and twarc-csv CSV.

Unit tests read the hand-made fixtures in tests/fixtures/x/ (same shapes as
the real files; see sources.md §2.3, §3, §4, §5) straight through each
format's normalize; CLI tests go through `chatarchive import`; the last
group runs over the real files in ../shared/fixtures, with expected numbers
worked out from the files with jq (commands in the comments).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, SHARED_FIXTURES, needs_shared_fixtures

from chatarchive import sources
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.errors import InputError
from chatarchive.sources import Context, Skip, csv_sheets, tweets_js, twitter_v1

X = FIXTURES / "x"
Q1_FULL = (
    "Q1: How do you spark curiosity in a classroom where everyone is tired, distracted and "
    "counting the minutes until the bell? Tell us what works for you, and what never does. #edchat"
)
TABLES = ["posts", "authors", "hashtags", "post_hashtags", "mentions", "links", "post_links",
          "media", "post_media", "raw"]


def v1_lines() -> list[dict]:
    return [json.loads(line) for line in (X / "v1.jsonl").read_text().splitlines() if line.strip()]


def v1_status(id_suffix: str) -> dict:
    return next(s for s in v1_lines() if s.get("id_str", "").endswith(id_suffix))


def ctx(**kw) -> Context:
    return Context(path="test", **kw)


def csv_rows(path: Path, header_row: int = 0) -> list[dict]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header = rows[header_row]
    return [dict(zip(header, r)) for r in rows[header_row + 1:]]


def run_import(runner, db_path, *args):
    return runner.invoke(cli, ["import", str(db_path), *map(str, args), "--no-analyse", "--json"])


def import_json(runner, db_path, *args) -> dict:
    result = run_import(runner, db_path, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def counts(db_path) -> dict[str, int]:
    db = open_db(db_path, create=True)
    return {t: db[t].count for t in TABLES}


def posts_without_source(db_path) -> list[tuple]:
    db = open_db(db_path, create=True)
    cols = [c for c in db["posts"].columns_dict if c != "source"]
    return rows(db_path, f"SELECT {', '.join(cols)} FROM posts ORDER BY id")


def rows(db_path, sql: str, params=()) -> list[tuple]:
    return list(open_db(db_path, create=True).execute(sql, params).fetchall())


# --------------------------------------------------------------------------
# v1.1 statuses: normalize


def test_v1_reply_maps_every_field():
    [post] = list(twitter_v1.normalize(v1_status("0002"), ctx()))
    assert post.id == "1790000000000000002"
    assert (post.platform, post.source, post.matched) == ("x", "twitter_v1", True)
    assert post.author.id == "2244994945"
    assert (post.author.handle, post.author.name) == ("bob_teaches", "Bob T")
    assert post.author.avatar_url == "https://pbs.twimg.com/profile_images/2244994945/bob_teaches_normal.jpg"
    assert post.url == "https://x.com/bob_teaches/status/1790000000000000002"
    assert post.created_at == "2024-05-13T19:05:12.000Z"
    # t.co replaced by the URL the entities hold (what every output then shows)
    assert post.text == "@alice A1: Start with questions, not answers #edchat https://example.org/inquiry"
    assert (post.reply_to_id, post.reply_to_author) == ("1790000000000000001", "alice")
    assert post.root_id is None  # a reply: analysis walks the chain
    assert post.quote_of_id is None and post.is_repost is False
    assert post.hashtags == ["edchat"] and post.mentions == ["alice"]
    assert post.links == ["https://example.org/inquiry"]
    assert (post.like_count, post.repost_count) == (4, 1)
    assert post.reply_count is None and post.quote_count is None  # not in standard v1.1
    assert post.lang == "en" and post.html is None
    assert post.raw["id_str"] == post.id


def test_v1_extended_tweet_uses_full_text_and_its_entities():
    [post] = list(twitter_v1.normalize(v1_status("0001"), ctx()))
    assert post.text == Q1_FULL  # not the truncated top-level "text"
    assert post.hashtags == ["edchat"]  # from extended_tweet.entities
    assert post.links == []  # the "…" self-link of the truncated text is not a shared link
    assert post.root_id == post.id  # not a reply: its own root
    assert (post.reply_count, post.quote_count) == (2, 1)  # present (Enterprise): kept


def test_v1_retweet_is_a_repost_with_the_full_original_as_context():
    posts = {p.id: p for p in twitter_v1.normalize(v1_status("0003"), ctx())}
    assert set(posts) == {"1790000000000000003", "1790000000000000001"}
    rt, original = posts["1790000000000000003"], posts["1790000000000000001"]
    assert rt.is_repost and rt.matched
    assert rt.text == "RT @alice: " + Q1_FULL  # the top-level text is truncated with "…"
    assert rt.author.handle == "carol"
    assert "edchat" in rt.hashtags and "alice" in rt.mentions
    assert not original.matched and not original.is_repost
    assert original.author.handle == "alice" and original.text == Q1_FULL


def test_v1_quote_links_the_quoted_post_stored_as_context():
    posts = {p.id: p for p in twitter_v1.normalize(v1_status("0004"), ctx())}
    quote, quoted = posts["1790000000000000004"], posts["1789999999999999999"]
    assert quote.quote_of_id == "1789999999999999999" and not quote.is_repost
    assert quote.matched and not quoted.matched
    assert quoted.text == "Curiosity is a muscle > talent. Thread on what I learned this year #teaching"
    assert quoted.created_at == "2024-05-12T10:00:00.000Z"


def test_v1_media_and_hostile_text_stay_plain():
    [post] = list(twitter_v1.normalize(v1_status("0005"), ctx()))
    assert post.text.startswith("@alice <script>alert('x')</script> & also this #EdChat")
    assert post.html is None
    assert post.links == []  # the javascript: "link" is not kept
    photo, video = post.media
    assert (photo.url, photo.type, photo.alt) == (
        "https://pbs.twimg.com/media/whiteboard.jpg", "photo", "A whiteboard full of questions")
    assert video.type == "video" and video.preview_url == video.url
    assert video.url.startswith("https://pbs.twimg.com/ext_tw_video_thumb/")


def test_v1_stream_messages_are_not_posts_and_junk_is_skipped():
    assert list(twitter_v1.normalize({"limit": {"track": 3}}, ctx())) == []
    assert list(twitter_v1.normalize({"delete": {"status": {"id_str": "1"}}}, ctx())) == []
    with pytest.raises(Skip):
        list(twitter_v1.normalize({"foo": 1}, ctx()))
    bad = dict(v1_status("0002"), id_str="12x", id=None)
    with pytest.raises(Skip, match="not a number"):
        list(twitter_v1.normalize(bad, ctx()))
    # an unreadable time is never a reason to drop a post: the id's time stands in
    [post] = twitter_v1.normalize(dict(v1_status("0002"), created_at="yesterday"), ctx())
    assert post.created_at == "2024-05-13T12:43:51.248Z"
    assert post.warnings == ["created_at: unreadable time 'yesterday'; the time was taken from the post id"]


def test_v1_search_response_and_array_documents():
    search = json.loads((X / "v1-search.json").read_text())
    assert [p.id for p in twitter_v1.normalize(search, ctx())] == [
        "1790000000000000008", "1790000000000000002"]
    [q2_answer] = list(twitter_v1.normalize(search["statuses"][0], ctx()))
    assert q2_answer.text == 'A2: "Why?" and then "why not?" #edchat'  # a "text" (not full_text) status
    array = json.loads((X / "v1-array.json").read_text())
    assert [p.reply_to_id for p in twitter_v1.normalize(array, ctx())] == ["1790000000000000001", None]


SAMPLE_V2_POST = {  # sources.md §1.12, shortened
    "id": "1790000000000000002", "text": "@alice A1 #edchat", "author_id": "2244994945",
    "conversation_id": "1790000000000000001", "created_at": "2024-05-13T19:05:12.000Z",
    "edit_history_tweet_ids": ["1790000000000000002"],
}
SAMPLE_MASTODON = {"id": "1", "uri": "https://a.example/users/x/statuses/1", "created_at": "2024-05-13T19:05:12.000Z",
                   "content": "<p>hi</p>", "account": {"id": "1", "acct": "x"}}
SAMPLE_BLUESKY = {"uri": "at://did:plc:x/app.bsky.feed.post/1", "cid": "b", "author": {"did": "did:plc:x"},
                  "record": {"text": "hi", "createdAt": "2024-05-13T19:05:12.000Z"}}


def test_v1_and_twarc2_sniffs_do_not_cross_match():
    v1_sniff = sources.FORMATS["twitter_v1"].sniff
    v2_sniff = sources.FORMATS["twarc2"].sniff
    status = v1_status("0002")
    assert v1_sniff(status) and v1_sniff([status]) and v1_sniff(json.loads((X / "v1-search.json").read_text()))
    assert not v2_sniff(status)
    for other in (SAMPLE_V2_POST, {"data": [SAMPLE_V2_POST]}, SAMPLE_MASTODON, [SAMPLE_MASTODON],
                  SAMPLE_BLUESKY, {"posts": [SAMPLE_BLUESKY]},
                  {"id_str": "1", "screen_name": "u", "created_at": "Mon May 13 19:05:12 +0000 2024"}):
        assert not v1_sniff(other), other
    assert v2_sniff(SAMPLE_V2_POST)


# --------------------------------------------------------------------------
# tweets.js


def archive_elements(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    return json.loads(text[text.index("=") + 1:].strip().rstrip(";"))


@pytest.mark.parametrize("size", [1, 7, 100, 1 << 20])
def test_tweets_js_is_read_element_by_element_whatever_the_chunks(size):
    text = (X / "archive" / "data" / "tweets.js").read_text(encoding="utf-8")
    chunks = (text[i:i + size] for i in range(0, len(text), size))
    got = list(tweets_js.iter_elements(chunks, "tweets.js"))
    assert [v for _, v in got] == archive_elements(X / "archive" / "data" / "tweets.js")
    lines = [line for line, _ in got]
    assert lines[0] == 2 and lines == sorted(lines)  # where each element starts
    assert text.splitlines()[lines[1] - 1].strip() == "{"


def test_tweets_js_bare_array_without_prefix():
    text = (X / "archive" / "data" / "tweets.js").read_text(encoding="utf-8")
    bare = text[text.index("=") + 1:]
    got = [v for _, v in tweets_js.iter_elements(iter([bare]), "t.json")]
    assert got == archive_elements(X / "archive" / "data" / "tweets.js")


def test_tweets_js_never_executes_and_survives_a_cut():
    text = (X / "archive" / "data" / "tweets.js").read_text(encoding="utf-8")
    cut = text[: text.index('"1790000000000000011"') + 5]  # inside the third element
    got = list(tweets_js.iter_elements(iter([cut]), "t.js"))
    assert [v["tweet"]["id_str"] for _, v in got[:2]] == ["1790000000000000001", "1790000000000000007"]
    assert isinstance(got[2][1], Skip) and "cut off" in str(got[2][1])
    assert len(got) == 3
    with pytest.raises(InputError, match="expected a JSON array"):
        list(tweets_js.iter_elements(iter(["window.YTD.tweets.part0 = alert(1)"]), "evil.js"))


def test_tweets_js_owner_from_account_js_and_archive_quirks(tmp_path):
    folder = X / "archive" / "data"
    owner = tweets_js.owner_from_account(str(folder))
    assert (owner.id, owner.handle, owner.name) == ("783214", "alice", "Alice")
    assert owner.avatar_url == "https://pbs.twimg.com/profile_images/783214/alice.jpg"  # profile.js
    c = Context(path="test", state=tweets_js.ArchiveOwner(owner))  # as records() leaves it
    posts = {p.id: p for item in archive_elements(folder / "tweets.js") for p in tweets_js.normalize(item, c)}
    q1 = posts["1790000000000000001"]
    assert q1.text == Q1_FULL and q1.author is owner and q1.source == "tweets_js"
    assert (q1.like_count, q1.repost_count, q1.reply_count, q1.quote_count) == (7, 3, None, None)
    assert q1.url == "https://x.com/alice/status/1790000000000000001"
    reply = posts["1790000000000000011"]
    assert reply.text == "@alice Thanks all, see you next week! <3 #edchat"
    assert (reply.reply_to_id, reply.reply_to_author, reply.root_id) == ("1790000000000000007", "alice", None)
    assert posts["1790000000000000012"].is_repost  # "RT @" prefix, no retweeted_status in archives
    assert posts["1790000000000000013"].quote_of_id == "1790000000000000002"  # permalink heuristic
    assert posts["1790000000000000013"].links == ["https://twitter.com/bob_teaches/status/1790000000000000002"]
    assert posts["1790000000000000007"].media[0].url == "https://pbs.twimg.com/media/q2card.jpg"
    assert posts["1790000000000000007"].quote_of_id is None  # a photo self-link is no quote
    assert tweets_js.owner_from_account(str(tmp_path)) is None


def test_tweets_js_owner_inferred_without_account_js(tmp_path):
    # archive-old/tweet.js: no account.js; its media self-link names the
    # handle and a reply to the owner's own post names the id.
    elements = ((1, e) for e in archive_elements(X / "archive-old" / "tweet.js"))
    owner = tweets_js.infer_owner(elements)
    assert (owner.id, owner.handle) == ("783214", "alice")
    # Without any hint: a clear placeholder, never a made-up handle.
    hintless = [e for e in archive_elements(X / "archive-old" / "tweet.js") if "media" not in e["entities"]]
    owner = tweets_js.infer_owner((1, e) for e in hintless)
    assert (owner.id, owner.handle) == (tweets_js.UNKNOWN_OWNER_ID, None)


def test_tweets_js_sniff():
    sniff = sources.FORMATS["tweets_js"].sniff
    assert sniff(b"window.YTD.tweets.part0 = [ {")
    assert sniff(b'[ {\n  "tweet" : {')
    assert not sniff(b'{"id_str": "1"}') and not sniff(b"[") and not sniff(b"id_str,from_user")


# --------------------------------------------------------------------------
# TAGS


def test_tags_row_with_na_cells_and_entities():
    tags = {r["id_str"]: r for r in csv_rows(X / "tags.csv")}
    [post] = list(csv_sheets.normalize_tags(tags["1790000000000000010"], ctx()))
    assert post.source == "tags_csv" and post.matched
    assert post.created_at == "2024-05-13T19:25:00.000Z"  # created_at, not the local "time" (20:25)
    assert post.reply_to_id is None and post.reply_to_author is None  # 'NA'
    assert post.author.id == "2222" and post.author.handle == "dave" and post.author.avatar_url is None
    assert post.url == "https://x.com/dave/status/1790000000000000010"
    assert post.links == ["https://example.org/notes?chat=edchat&year=2024"]
    assert (post.hashtags, post.mentions) == (["edchat"], ["alice"])
    assert post.like_count is None and post.repost_count is None and post.lang is None
    [reply] = list(csv_sheets.normalize_tags(tags["1790000000000000005"], ctx()))
    assert (reply.reply_to_id, reply.reply_to_author) == ("1790000000000000001", "alice")
    assert reply.text.startswith("@alice <script>")  # unescaped once, kept as plain text
    assert reply.author.avatar_url.startswith("https://pbs.twimg.com/")  # http:// upgraded
    assert [m.url for m in reply.media] == ["https://pbs.twimg.com/media/whiteboard.jpg"]
    assert reply.links == []  # javascript: dropped
    [rt] = list(csv_sheets.normalize_tags(tags["1790000000000000003"], ctx()))
    assert rt.is_repost and rt.text == "RT @alice: " + Q1_FULL and rt.quote_of_id is None


def test_tags_id_recovered_from_status_url_and_time_fallback_needs_tz():
    row = csv_rows(X / "tags.csv")[0]
    mangled = dict(row, id_str="1.79E+18")
    [post] = list(csv_sheets.normalize_tags(mangled, ctx()))
    assert post.id == "1790000000000000010"  # from status_url, which agrees with 1.79E+18
    with pytest.raises(Skip, match=r"Excel-mangled id 1\.79E\+18"):
        list(csv_sheets.normalize_tags(dict(mangled, status_url="NA"), ctx()))
    no_created = dict(row, created_at="NA", time="2024-05-13 20:25:00")
    [post] = list(csv_sheets.normalize_tags(no_created, ctx()))  # no --tz: the id's time, and a hint
    assert post.created_at == "2024-05-13T12:43:51.248Z"  # (id >> 22) ms after 2010-11-04T01:42:54.657Z
    assert post.warnings == ["no UTC time, and the local time column needs the sheet's time zone (--tz); "
                             "the time was taken from the post id"]
    [post] = list(csv_sheets.normalize_tags(no_created, ctx(tz="Europe/London")))
    assert post.created_at == "2024-05-13T19:25:00.000Z"  # BST is UTC+1


# --------------------------------------------------------------------------
# Twitter Archiver


def archiver_rows() -> dict[str, dict]:
    return {r["Tweet ID"]: r for r in csv_rows(X / "archiver.csv", header_row=1)}


def test_archiver_row_local_time_handles_links_and_media():
    rows_ = archiver_rows()
    c = ctx(tz="America/New_York")
    [post] = list(csv_sheets.normalize_archiver(rows_["1790000000000000020"], c))
    assert post.created_at == "2024-05-13T19:11:00.000Z"  # 15:11 EDT
    assert post.author.id == "x:@bob_teaches" and post.author.handle == "bob_teaches"
    assert post.author.name == "Bob T" and post.author.avatar_url is None  # "View" is no URL
    assert post.url == "https://x.com/bob_teaches/status/1790000000000000020"
    assert post.hashtags == ["edchat"] and post.root_id is None and post.reply_to_id is None
    assert [m.url for m in post.media] == ["https://pbs.twimg.com/media/why.jpg"]
    assert (post.like_count, post.repost_count) == (5, 0)
    [quote] = list(csv_sheets.normalize_archiver(rows_["1790000000000000021"], c))
    assert quote.quote_of_id == "1790000000000000002"
    [q2] = list(csv_sheets.normalize_archiver(rows_["1790000000000000007"], c))
    assert q2.media == [] and q2.links == []  # "pic.twitter.com/…" is neither
    assert q2.created_at == "2024-05-13T19:15:00.000Z"
    winter = dict(rows_["1790000000000000020"], Date="1/7/2020 14:33")
    assert next(iter(csv_sheets.normalize_archiver(winter, c))).created_at == "2020-01-07T19:33:00.000Z"  # EST


def test_archiver_mangled_ids_are_refused_row_by_row():
    rows_ = archiver_rows()
    c = ctx(tz="America/New_York")
    with pytest.raises(Skip) as e:
        list(csv_sheets.normalize_archiver(rows_["1.79E+18"], c))
    assert str(e.value) == ("Excel-mangled id 1.79E+18; re-export the sheet with the Tweet ID column "
                            "formatted as text")
    with pytest.raises(Skip, match="Excel-rounded id 1790000000000010000"):
        list(csv_sheets.normalize_archiver(rows_["1790000000000010000"], c))
    # a tweet URL column, when a sheet has one, gives the exact id back
    with_url = dict(rows_["1.79E+18"], **{"Tweet URL": "https://twitter.com/carol/status/1790000000000000019"})
    [post] = list(csv_sheets.normalize_archiver(with_url, c))
    assert post.id == "1790000000000000019"
    assert post.text == "@alice A2: curiosity & patience #EdChat"
    assert (post.hashtags, post.mentions) == (["EdChat"], ["alice"])
    # ...but not one naming a different post
    wrong = dict(with_url, **{"Tweet URL": "https://twitter.com/carol/status/1234567890123456789"})
    with pytest.raises(Skip, match="Excel-mangled"):
        list(csv_sheets.normalize_archiver(wrong, c))


def test_archiver_without_tz_is_refused():
    with pytest.raises(InputError, match="--tz"):
        list(csv_sheets.normalize_archiver(archiver_rows()["1790000000000000020"], ctx()))


@pytest.mark.parametrize("value, tz, expected", [
    ("2/7/2020 14:33", "America/New_York", "2020-02-07T19:33:00.000Z"),  # the add-on's form (EST)
    ("5/13/2024 15:11:00", "America/New_York", "2024-05-13T19:11:00.000Z"),  # EDT
    ("5/13/2024 3:11 PM", "America/New_York", "2024-05-13T19:11:00.000Z"),
    ("2/7/20 14:33", "America/New_York", "2020-02-07T19:33:00.000Z"),  # re-saved by Excel
    ("13/5/2024 15:11:00", "America/New_York", "2024-05-13T19:11:00.000Z"),  # day first: 13 is no month
    ("2020-04-19T20:22:23Z", "Europe/London", "2020-04-19T19:22:23.000Z"),  # R's fake "Z" (sources.md §5.2)
    ("2024-05-13 20:25:00", "Asia/Kolkata", "2024-05-13T14:55:00.000Z"),
])
def test_local_sheet_dates(value, tz, expected):
    assert csv_sheets.parse_local(value, tz) == expected


def test_local_sheet_dates_refuse_nonsense():
    with pytest.raises(Skip, match="unreadable date"):
        csv_sheets.parse_local("next Tuesday", "UTC")


def test_text_entities_for_exports_without_entities():
    tags, mentions = csv_sheets.text_entities(
        "Q1 #edchat #2024 #Ed_Chat2 mail me@ex.org &#39; @Alice_1 @bob: #edchat x#no")
    assert tags == ["edchat", "Ed_Chat2"]
    assert mentions == ["Alice_1", "bob"]


# --------------------------------------------------------------------------
# twarc-csv


def twarc_rows() -> dict[str, dict]:
    return {r["id"]: r for r in csv_rows(X / "twarc.csv")}


def test_twarc_csv_rows():
    rows_ = twarc_rows()
    [q3] = list(csv_sheets.normalize_twarc_csv(rows_["1790000000000000031"], ctx()))
    assert q3.text == "Q3: Last one!\nWhat will you try first? #edchat & #edtech"  # \n and &amp;
    assert q3.source == "twarc_csv" and q3.root_id == "1790000000000000031"
    assert (q3.like_count, q3.repost_count, q3.reply_count, q3.quote_count) == (6, 2, 1, 0)  # "6.0"
    assert q3.hashtags == ["edchat", "edtech"]
    assert q3.links == []  # the media's display_url is no link
    assert [(m.url, m.alt) for m in q3.media] == [("https://pbs.twimg.com/media/q3.jpg", "Q3 card")]
    assert (q3.author.id, q3.author.handle, q3.author.name) == ("783214", "alice", "Alice")
    [a3] = list(csv_sheets.normalize_twarc_csv(rows_["1790000000000000032"], ctx()))
    assert (a3.reply_to_id, a3.reply_to_author, a3.root_id) == (
        "1790000000000000031", "alice", "1790000000000000031")
    assert a3.mentions == ["alice"] and a3.links == ["https://example.org/exit-tickets"]
    [rt] = list(csv_sheets.normalize_twarc_csv(rows_["1790000000000000033"], ctx()))
    assert rt.is_repost and rt.text == "RT @alice: " + q3.text  # merged: the original's full text
    assert rt.like_count is None and rt.repost_count is None  # those were the original's counts
    [qt] = list(csv_sheets.normalize_twarc_csv(rows_["1790000000000000034"], ctx()))
    assert qt.quote_of_id == "1790000000000000032" and not qt.is_repost


def test_twarc_csv_older_json_encoded_text():
    row = dict(twarc_rows()["1790000000000000031"],
               text=json.dumps("Nobody: \n\nLiterally nobody: \u2019"))
    [post] = list(csv_sheets.normalize_twarc_csv(row, ctx()))
    assert post.text == "Nobody: \n\nLiterally nobody: \u2019"


def test_csv_sniffs_are_exclusive():
    def head(path, n=3):
        return list(csv.reader(path.read_text(encoding="utf-8").splitlines()[:n]))

    expect = {"tags.csv": "tags_csv", "archiver.csv": "twitter_archiver", "twarc.csv": "twarc_csv"}
    for name, fmt in expect.items():
        hits = [f.name for f in sources.FORMATS.values() if f.kind == "csv" and f.sniff(head(X / name))]
        assert hits == [fmt], name
    users = [["id", "created_at", "username", "name", "description"]]  # twarc2 csv of users: no posts
    assert not any(f.sniff(users) for f in sources.FORMATS.values() if f.kind == "csv")


# --------------------------------------------------------------------------
# Through `chatarchive import`

ALL_FILES = ["v1.jsonl", "v1-array.json", "v1-search.json", "archive/data/tweets.js",
             "archive-old/tweet.js", "tags.csv", "twarc.csv"]
FORMAT_OF = {"v1.jsonl": "twitter_v1", "v1-array.json": "twitter_v1", "v1-search.json": "twitter_v1",
             "archive/data/tweets.js": "tweets_js", "archive-old/tweet.js": "tweets_js",
             "tags.csv": "tags_csv", "twarc.csv": "twarc_csv"}


def test_cli_detects_each_format_and_is_idempotent(runner, db_path):
    files = [X / f for f in ALL_FILES]
    report = import_json(runner, db_path, *files)
    assert {Path(r["path"]).relative_to(X).as_posix(): r["format"] for r in report["files"]} == FORMAT_OF
    assert all(r["error"] is None and r["skipped"] == 0 for r in report["files"])
    first = counts(db_path)
    # the ids across all the files, by reading them independently
    ids = {s["id_str"] for s in v1_lines() if "id_str" in s} | {"1789999999999999999"}
    ids |= {s["id_str"] for s in json.loads((X / "v1-array.json").read_text())}
    ids |= {s["id_str"] for s in json.loads((X / "v1-search.json").read_text())["statuses"]}
    ids |= {e["tweet"]["id_str"] for e in archive_elements(X / "archive" / "data" / "tweets.js")}
    ids |= {r["id_str"] for r in csv_rows(X / "tags.csv")} | set(twarc_rows())
    assert {r[0] for r in rows(db_path, "SELECT id FROM posts")} == ids
    assert first["posts"] == len(ids)
    posts_before = posts_without_source(db_path)
    again = import_json(runner, db_path, *files)
    assert all(r["added"] == 0 and r["skipped"] == 0 for r in again["files"])
    assert counts(db_path) == first
    # Nothing changes but the name of the format that saw a post last.
    assert posts_without_source(db_path) == posts_before
    # One file twice: not even that.
    assert import_json(runner, db_path, X / "twarc.csv")["files"][0]["updated"] == 0
    assert rows(db_path, "SELECT count(*) FROM imports") == [(2 * len(files) + 1,)]


def test_cli_same_posts_through_two_formats_are_one_row_each(runner, db_path):
    import_json(runner, db_path, X / "v1.jsonl")
    after_v1 = counts(db_path)
    report = import_json(runner, db_path, X / "tags.csv")
    tags_ids = {r["id_str"] for r in csv_rows(X / "tags.csv")}
    new = tags_ids - {s["id_str"] for s in v1_lines() if "id_str" in s}
    assert new == {"1790000000000000010"}
    assert report["files"][0]["added"] == 1
    assert counts(db_path)["posts"] == after_v1["posts"] + 1
    assert rows(db_path, "SELECT count(*), count(DISTINCT id) FROM posts")[0] == (after_v1["posts"] + 1,) * 2
    # both sightings kept their raw object, one per format
    assert rows(db_path, "SELECT format FROM raw WHERE post_id = '1790000000000000002' ORDER BY 1") == [
        ("tags_csv",), ("twitter_v1",)]
    # the context sighting of Q1 (inside a retweet) did not stay unmatched
    assert rows(db_path, "SELECT matched FROM posts WHERE id = '1790000000000000001'") == [(1,)]


def test_cli_v1_relations_in_the_database(runner, db_path):
    import_json(runner, db_path, X / "v1.jsonl")
    got = {r[0]: r[1:] for r in rows(
        db_path, "SELECT id, matched, is_repost, reply_to_id, quote_of_id FROM posts")}
    assert got == {
        "1790000000000000001": (1, 0, None, None),
        "1790000000000000002": (1, 0, "1790000000000000001", None),
        "1790000000000000003": (1, 1, None, None),
        "1790000000000000004": (1, 0, None, "1789999999999999999"),
        "1789999999999999999": (0, 0, None, None),
        "1790000000000000005": (1, 0, "1790000000000000001", None),
    }
    assert rows(db_path, "SELECT url FROM links ORDER BY url") == [
        ("https://example.org/inquiry",), ("https://twitter.com/carol/status/1789999999999999999",)]
    assert rows(db_path, "SELECT count(*) FROM links WHERE url NOT LIKE 'http%' OR url LIKE '%t.co/%'") == [(0,)]


def test_cli_truncated_jsonl_line_is_reported_and_counted(runner, db_path, tmp_path):
    lines = (X / "v1.jsonl").read_text().splitlines()
    bad = tmp_path / "cut.jsonl"
    bad.write_text("\n".join(lines[:2] + [lines[2][:300]] + lines[3:]) + "\n")
    result = run_import(runner, db_path, bad)
    assert result.exit_code == 0, result.output
    [r] = json.loads(result.stdout)["files"]
    assert r["skipped"] == 1 and len(r["problems"]) == 1
    assert r["problems"][0].startswith(f"{bad}:3: invalid JSON")
    assert f"{bad}:3: invalid JSON" in result.stderr
    stored = {x[0] for x in rows(db_path, "SELECT id FROM posts")}
    assert "1790000000000000003" not in stored and "1790000000000000005" in stored
    assert rows(db_path, "SELECT skipped, status FROM imports") == [(1, "partial")]


def test_cli_strict_leaves_the_database_unchanged(runner, db_path, tmp_path):
    import_json(runner, db_path, X / "v1-array.json")
    before = list(open_db(db_path, create=True).conn.iterdump())
    lines = (X / "v1.jsonl").read_text().splitlines()
    bad = tmp_path / "cut.jsonl"
    bad.write_text("\n".join(lines[:4] + ["{\"id_str\": \"17900"]) + "\n")
    result = runner.invoke(cli, ["import", str(db_path), str(X / "tags.csv"), str(bad), "--strict", "--no-analyse"])
    assert result.exit_code == 1
    assert f"{bad}" in result.output and "nothing was imported" in result.output
    assert "Traceback" not in result.output
    assert list(open_db(db_path, create=True).conn.iterdump()) == before


def test_cli_hostile_text_is_stored_as_plain_text(runner, db_path):
    import_json(runner, db_path, X / "v1.jsonl", X / "tags.csv")
    [(text, html)] = rows(db_path, "SELECT text, html FROM posts WHERE id = '1790000000000000005'")
    assert "<script>alert('x')</script>" in text and html is None
    assert rows(db_path, "SELECT count(*) FROM links WHERE url LIKE '%javascript%'") == [(0,)]
    # FTS sees the words, not markup
    assert [r[0] for r in rows(db_path, "SELECT rowid FROM posts_fts WHERE posts_fts MATCH 'alert'")]


def test_cli_archive_with_account_js_and_refused_parts(runner, db_path, tmp_path):
    report = import_json(runner, db_path, X / "archive" / "data" / "tweets.js")
    assert report["files"][0]["added"] == 5
    assert rows(db_path, "SELECT DISTINCT author_id, author_handle, author_name FROM posts") == [
        ("783214", "alice", "Alice")]
    result = run_import(runner, db_path, X / "archive" / "data" / "account.js")
    assert result.exit_code == 1
    assert "'account' data" in json.loads(result.stdout)["files"][0]["error"]
    # stdin: no folder to find account.js in -> the placeholder owner
    data = (X / "archive-old" / "tweet.js").read_bytes()
    other = tmp_path / "other.db"
    result = runner.invoke(cli, ["import", str(other), "-", "--no-analyse"], input=data)
    assert result.exit_code == 0, result.output
    assert rows(other, "SELECT DISTINCT author_id FROM posts") == [(tweets_js.UNKNOWN_OWNER_ID,)]
    # a copy beside no account.js: the owner is inferred from the archive
    copy = tmp_path / "tweet.js"
    shutil.copy(X / "archive-old" / "tweet.js", copy)
    third = tmp_path / "third.db"
    import_json(runner, third, copy)
    assert rows(third, "SELECT DISTINCT author_id, author_handle FROM posts") == [("783214", "alice")]


def test_cli_archiver_needs_tz_and_reports_mangled_rows(runner, db_path):
    result = run_import(runner, db_path, X / "archiver.csv")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["files"][0]["error"]
    assert "archiver.csv" in error and "--tz" in error
    assert counts(db_path)["posts"] == 0
    report = import_json(runner, db_path, X / "archiver.csv", "--tz", "America/New_York")
    [r] = report["files"]
    assert (r["format"], r["added"], r["skipped"]) == ("twitter_archiver", 3, 2)
    assert r["problems"][0] == (f"{X / 'archiver.csv'}:5: Excel-mangled id 1.79E+18; re-export the "
                                "sheet with the Tweet ID column formatted as text")
    assert "Excel-rounded id 1790000000000010000" in r["problems"][1]
    stored = {x[0] for x in rows(db_path, "SELECT id FROM posts")}
    assert stored == {"1790000000000000007", "1790000000000000020", "1790000000000000021"}
    assert not any("E+" in s or s.endswith("0000") for s in stored)


def test_cli_format_override_on_a_wrong_file_is_refused(runner, db_path):
    result = run_import(runner, db_path, "--format", "twitter_v1", X / "twarc.csv")
    assert result.exit_code == 1
    assert "no posts" in json.loads(result.stdout)["files"][0]["error"]


# --------------------------------------------------------------------------
# The real files in ../shared/fixtures
#
# Expected numbers from the files themselves, e.g. for search-response.json:
#   jq -c '.statuses[]' F > st.jsonl
#   matched: jq -r .id_str st.jsonl | sort -u | wc -l                           -> 100
#   rows:    jq -c '., (.retweeted_status // empty), (.quoted_status // empty),
#                   (.retweeted_status.quoted_status // empty)' st.jsonl
#            | jq -r .id_str | sort -u | wc -l                                  -> 176
#   replies: the same stream, select(.in_reply_to_status_id_str), unique ids    -> 5
#   reposts: jq -r 'select(.retweeted_status) | .id_str' st.jsonl | sort -u     -> 74

V1_REAL = {
    # file: (rows, matched, reply links, reposts)
    "dlfteach.jsonl": (4, 4, 0, 2),
    "array.json": (5, 3, 1, 1),
    "search-response.json": (176, 100, 5, 74),
    "duplicates.jsonl": (10, 7, 0, 6),
}


@needs_shared_fixtures()
@pytest.mark.parametrize("name", sorted(V1_REAL))
def test_real_v1_files(runner, db_path, name):
    path = SHARED_FIXTURES / "twitter-v1" / name
    report = import_json(runner, db_path, path)
    [r] = report["files"]
    total, matched, replies, reposts = V1_REAL[name]
    assert (r["format"], r["added"], r["skipped"]) == ("twitter_v1", total, 0)
    assert rows(db_path, "SELECT count(*), sum(matched), count(reply_to_id), sum(is_repost) FROM posts") == [
        (total, matched, replies, reposts)]
    # every reply link points at a numeric id and no link is a t.co shortlink
    assert rows(db_path, "SELECT count(*) FROM posts WHERE reply_to_id GLOB '*[^0-9]*'") == [(0,)]
    assert rows(db_path, "SELECT count(*) FROM links WHERE url LIKE '%//t.co/%'") == [(0,)]
    assert import_json(runner, db_path, path)["files"][0]["added"] == 0


@needs_shared_fixtures()
def test_real_v1_duplicates_import_each_post_once(runner, db_path):
    path = SHARED_FIXTURES / "twitter-v1" / "duplicates.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    assert len(lines) == 14 and len({x["id_str"] for x in lines}) == 7
    [r] = import_json(runner, db_path, path)["files"]
    assert r["added"] == 10  # 7 posts + 3 retweeted originals, each once
    assert rows(db_path, "SELECT count(*) FROM raw WHERE format = 'twitter_v1'") == [(10,)]
    # the search response's quoted post 684878020075765760 arrives as context of a retweet
    # (checked in test_real_v1_files); here: retweets carry the full original text
    [(text,)] = rows(db_path, "SELECT text FROM posts WHERE id = '1219758386436165633'")
    original = next(x["retweeted_status"] for x in lines if x["id_str"] == "1219758386436165633")
    expected = f"RT @{original['user']['screen_name']}: {original['full_text']}".replace("&amp;", "&")
    entities = original["entities"]["urls"] + original.get("extended_entities", original["entities"]).get("media", [])
    for u in entities:  # t.co -> what the file says it stands for
        expected = expected.replace(u["url"], u["expanded_url"])
    assert "t.co/" in original["full_text"] and "t.co/" not in text
    assert text == expected


@needs_shared_fixtures()
def test_real_tags_files(runner, db_path):
    folder = SHARED_FIXTURES / "tags-csv"
    report = import_json(runner, db_path, folder / "sample-data.csv", folder / "sample-tweet.csv")
    assert [r["format"] for r in report["files"]] == ["tags_csv", "tags_csv"]
    real = list(csv.DictReader((folder / "sample-data.csv").open(encoding="utf-8")))
    assert report["files"][0]["added"] == len(real) == 10
    assert report["files"][1]["added"] == 0  # its one row is also in sample-data.csv
    assert rows(db_path, "SELECT count(*), sum(matched), count(reply_to_id), sum(is_repost) FROM posts") == [
        (10, 10, 0, sum(r["text"].startswith("RT @") for r in real))]
    # created_at (UTC) is the time, not the sheet-local "time" column one hour ahead
    assert rows(db_path, "SELECT created_at FROM posts WHERE id = '1251954312772812801'") == [
        ("2020-04-19T19:22:23.000Z",)]
    assert rows(db_path, "SELECT count(*) FROM posts WHERE reply_to_author = 'NA' OR lang = 'NA'") == [(0,)]
    assert ("https://pbs.twimg.com/media/EHrwskZU0AA2xdG.jpg",) in rows(db_path, "SELECT url FROM media")


@needs_shared_fixtures()
def test_real_v1_and_tags_overlap_gives_one_row_per_post(runner, db_path):
    import_json(runner, db_path, SHARED_FIXTURES / "twitter-v1" / "duplicates.jsonl",
                SHARED_FIXTURES / "tags-csv" / "sample-data.csv", SHARED_FIXTURES / "tags-csv" / "sample-tweet.csv")
    # union of ids: jq (posts + retweeted originals) and the CSVs' id_str -> 13, 7 shared
    assert rows(db_path, "SELECT count(*), count(DISTINCT id) FROM posts") == [(13, 13)]
    assert rows(db_path, "SELECT count(*) FROM (SELECT post_id FROM raw GROUP BY post_id HAVING count(*) = 2)") == [(7,)]


@needs_shared_fixtures()
def test_real_archiver_file_mangled_ids_are_reported_and_never_stored(runner, db_path):
    path = SHARED_FIXTURES / "twitter-archiver-csv" / "excel-mangled-ids.csv"
    result = run_import(runner, db_path, path)
    assert result.exit_code == 1 and "--tz" in json.loads(result.stdout)["files"][0]["error"]
    result = run_import(runner, db_path, path, "--tz", "America/New_York")
    assert result.exit_code == 1  # every row is mangled: nothing to import
    [r] = json.loads(result.stdout)["files"]
    data_rows = list(csv.reader(path.open(encoding="utf-8")))[2:]
    assert r["skipped"] == len(data_rows) == 99
    assert r["problems"][0] == (f"{path}:3: Excel-mangled id 1.22587E+18; re-export the sheet with the "
                                "Tweet ID column formatted as text")
    assert all("Excel-mangled id" in p for p in r["problems"])
    assert "99 malformed record(s) and no posts" in r["error"]
    assert counts(db_path)["posts"] == 0 and counts(db_path)["authors"] == 0


MY_JSON_FORMATS = ("twitter_v1",)


def first_value(path: Path):
    """What detection sniffs: the first JSONL record, or the whole document."""
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip():
            try:
                return json.loads(line)
            except ValueError:
                break
    return json.loads(text)


@needs_shared_fixtures()
def test_real_files_of_other_formats_are_not_claimed_and_vice_versa():
    others = [p for folder in ("twarc2", "mastodon", "bluesky")
              for p in sorted((SHARED_FIXTURES / folder).glob("*.json*"))]
    others += [p for p in sorted((SHARED_FIXTURES / "reject").glob("*")) if p.stat().st_size]
    assert len(others) > 20
    for path in others:
        head = path.read_bytes()[:65536]
        assert not sources.FORMATS["tweets_js"].sniff(head), path
        value = first_value(path)
        for name in MY_JSON_FORMATS:
            assert not sources.FORMATS[name].sniff(value), (name, path)
    for path in sorted((SHARED_FIXTURES / "twitter-v1").glob("*")):
        value = first_value(path)
        claimed = [f.name for f in sources.FORMATS.values() if f.kind == "json" and f.sniff(value)]
        assert claimed == ["twitter_v1"], path
