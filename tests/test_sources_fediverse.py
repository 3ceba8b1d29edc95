"""Mastodon and Bluesky importers: pure normalizers, CLI import, real files."""

from __future__ import annotations

import copy
import gzip
import json
import re
import sqlite3

import pytest
from bs4 import BeautifulSoup
from conftest import FIXTURES, SHARED_FIXTURES, needs_shared_fixtures

from chatarchive.archive.writer import save_posts
from chatarchive.cli import cli
from chatarchive.models import local_placeholder
from chatarchive.safety import sanitize_html
from chatarchive.sources import Context, Skip, bluesky, loads_deep, mastodon

M = FIXTURES / "mastodon"
BS = FIXTURES / "bluesky"

PAGE_A = M / "tag-edchat-mastodon-example.json"  # the chat as mastodon.example served it
PAGE_B = M / "tag-edchat-example-social.json"  # ... and as example.social served it
CONTEXT = M / "context-a1.json"  # GET /api/v1/statuses/<A1>/context on mastodon.example
JSONL = M / "boost-quote.jsonl"  # reply, quote, boost, shallow quote (mastodon.example)
SEARCH = BS / "searchPosts-edchat.json"
THREAD = BS / "getPostThread-edchat.json"
FEED = BS / "feed-edchat.json"

Q1_URI = "https://mastodon.example/users/alice/statuses/115600000000000001"
A1_URI = "https://example.social/users/bob/statuses/115600000200000022"
CAROL_URI = "https://mastodon.example/users/carol/statuses/115600000400000044"
MALLORY_URI = "https://evil.example/users/mallory/statuses/9001"

BQ1 = "at://did:plc:hostedchat0000000000001/app.bsky.feed.post/3mq1aaaaaaa2a"
BA1 = "at://did:plc:bobanswers00000000000002/app.bsky.feed.post/3mq1bbbbbbb2b"
BQUOTE = "at://did:plc:carolquotes0000000000003/app.bsky.feed.post/3mq1ccccccc2c"
BR1 = "at://did:plc:carolquotes0000000000003/app.bsky.feed.post/3mq1ggggggg2g"
BR2 = "at://did:plc:hostedchat0000000000001/app.bsky.feed.post/3mq1hhhhhhh2h"


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def mctx(instance=None) -> Context:
    """A Mastodon file's Context (its state: the serving server, local ids seen)."""
    return mastodon.FORMAT.context("test", instance=instance)


def bctx() -> Context:
    """A Bluesky file's Context (its state: the handles seen)."""
    return bluesky.FORMAT.context("test")


def by_id(posts):
    out = {}
    for p in posts:
        assert p.id not in out, f"{p.id} yielded twice"
        out[p.id] = p
    return out


def run_import(runner, db_path, *args, input=None):
    result = runner.invoke(cli, ["import", str(db_path), *map(str, args), "--json", "--no-analyse"],
                           input=input, catch_exceptions=False)
    return result, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else None)


def rows(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def scalar(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


# ==========================================================================
# Mastodon: mapping


def test_mastodon_status_maps_every_field():
    posts = by_id(mastodon.normalize(load(PAGE_A), mctx()))
    q1 = posts[Q1_URI]
    assert q1.platform == "mastodon" and q1.source == "mastodon"
    assert (q1.local_id, q1.instance) == ("115600000000000001", "mastodon.example")
    assert q1.matched is True and q1.is_repost is False
    assert q1.author.id == "https://mastodon.example/users/alice"  # account uri: global
    assert q1.author.handle == "alice@mastodon.example"  # local acct made global
    assert q1.author.name == "Alice (host)"
    assert q1.url == "https://mastodon.example/@alice/115600000000000001"
    assert q1.created_at == "2026-11-18T20:00:00.000Z"
    assert q1.text == "Q1: How do you spark curiosity in a classroom? #EdChat"
    assert q1.hashtags == ["EdChat"]  # tags[].name is "edchat"; the text's case is kept
    assert (q1.reply_count, q1.repost_count, q1.like_count, q1.quote_count) == (3, 1, 5, 1)
    assert q1.root_id == Q1_URI and q1.reply_to_local_id is None
    assert q1.lang == "en" and q1.spoiler_text is None and q1.edited_at is None
    assert q1.raw["id"] == "115600000000000001"

    a1 = posts[A1_URI]
    assert a1.local_id == "115600000300000033"  # mastodon.example's id, not bob's home id
    assert a1.quote_count is None  # no quotes_count (before 4.5): unknown, not 0
    assert a1.mentions == ["alice@mastodon.example"]
    assert a1.links == ["https://example.org/inquiry"]  # not the mention or hashtag hrefs
    assert a1.reply_to_local_id == "115600000000000001"
    assert a1.reply_to_id == Q1_URI  # parent in the same page: linked at once
    assert a1.reply_to_author == "alice@mastodon.example"
    assert a1.root_id is None  # a reply whose thread root the page does not say


def test_mastodon_text_from_html():
    a1 = by_id(mastodon.normalize(load(PAGE_A), mctx()))[A1_URI]
    # </p><p> is a blank line, <br> a newline, entities unescaped, the
    # invisible/ellipsis spans of a link give the whole URL
    assert a1.text == (
        "@alice A1: start with questions & wonder <3 #edchat https://example.org/inquiry\n\n"
        "Kids' own questions\nbeat ours."
    )
    soup = BeautifulSoup(a1.html, "html.parser")
    assert [p.get_text() for p in soup.find_all("p")][1] == "Kids' own questionsbeat ours."
    assert len(soup.find_all("br")) == 1
    assert {a["href"] for a in soup.find_all("a")} == {
        "https://mastodon.example/@alice", "https://example.social/tags/edchat", "https://example.org/inquiry"}


def test_mastodon_hostile_html_is_sanitized():
    mallory = by_id(mastodon.normalize(load(PAGE_A), mctx()))[MALLORY_URI]
    html = mallory.html
    lowered = html.lower()
    for bad in ("<script", "alert", "<img", "onerror", "onclick", "onmouseover", "javascript:", "data:",
                "<iframe", "style=", "<b>"):
        assert bad not in lowered, bad
    soup = BeautifulSoup(html, "html.parser")
    assert {t.name for t in soup.find_all(True)} <= {"p", "br", "a", "span"}
    assert all(not t.attrs for t in soup.find_all(["p", "br", "span"]))
    for a in soup.find_all("a"):
        # the one sanitizer's allowlist (safety.sanitize_html): href, rel and
        # the class that marks hashtag and mention links, nothing else
        assert set(a.attrs) <= {"href", "rel", "class"}
        assert set(a.get("class", [])) <= {"hashtag", "mention"}
        assert {"nofollow", "noopener", "noreferrer", "ugc"} <= set(a["rel"])
        if a.has_attr("href"):
            assert a["href"].startswith("https://")
    # stored as every output shows it: re-sanitizing changes nothing
    assert str(sanitize_html(html)) == html
    # the words stay; the script's code and the iframe's fallback do not
    assert mallory.text == "Hello friends of the chat and more tricks\n\nstyled bold safe link #EdChat"
    assert mallory.links == ["https://good.example/page"]
    assert mallory.author.name == "<b>Mallory</b>"  # stored as text; renderers escape it


@pytest.mark.parametrize("href", [
    "javascript:alert(1)", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "data:text/html,x",
    "vbscript:msgbox(1)", "/relative/path", "//evil.example/x", "",
])
def test_mastodon_unsafe_hrefs_are_dropped(href):
    c = mastodon.parse_content(f'<p><a href="{href}">words</a></p>')
    assert c.links == []
    assert "href" not in c.html and c.text == "words"


def test_mastodon_links_follow_the_one_url_rule():
    # mailto: is not a web link (urls.safe_url): the address stays as text
    c = mastodon.parse_content('<p>write <a href="mailto:host@chat.example">host@chat.example</a></p>')
    assert c.links == [] and "<a" not in c.html and c.text == "write host@chat.example"
    # read as a browser reads it: a tab inside the scheme does not hide javascript:
    c = mastodon.parse_content('<p><a href="java&#9;script:alert(1)">x</a> <a href=" HTTPS://ok.example/a b">y</a></p>')
    assert c.links == ["https://ok.example/a%20b"]
    assert [a.get("href") for a in BeautifulSoup(c.html, "html.parser").find_all("a")] == ["https://ok.example/a%20b"]


def test_mastodon_html_edge_cases():
    c = mastodon.parse_content("<p>a</p><p></p><p>b<br><br>c</p><ul><li>one</li><li>two</li></ul>"
                               "<p>x &amp;amp; y &#8212; z</p><p>unclosed <span>span")
    assert c.text == "a\n\nb\n\nc\n\none\ntwo\n\nx &amp; y \u2014 z\n\nunclosed span"
    assert "<ul>" not in c.html and "<li>" not in c.html
    assert mastodon.parse_content("").text == "" and mastodon.parse_content(None).html == ""
    # pretty-printed HTML: source newlines after a break are not text
    assert mastodon.parse_content("<p>one<br>\ntwo</p>\n<p>three</p>").text == "one\ntwo\n\nthree"


def test_mastodon_media_card_spoiler_and_edits():
    carol = by_id(mastodon.normalize(load(PAGE_A), mctx()))[CAROL_URI]
    assert [(m.url, m.type, m.alt, m.preview_url) for m in carol.media] == [(
        "https://files.mastodon.example/media_attachments/files/wall.png", "image",
        "A wall of sticky notes with questions",
        "https://files.mastodon.example/media_attachments/files/small/wall.png")]
    assert carol.links == ["https://blog.example/wonder-wall"]  # card.url
    assert carol.spoiler_text == "classroom photo"
    assert carol.edited_at == "2026-11-18T20:06:01.500Z"  # one fraction digit
    assert carol.author.name == "carol"  # empty display_name falls back to username
    assert carol.quote_count == 0  # present: 0 stays 0


def test_mastodon_same_status_from_two_servers_is_one_row(db_path, runner):
    a, b = load(PAGE_A), load(PAGE_B)
    ids_a = {s["uri"]: s["id"] for s in a}
    ids_b = {s["uri"]: s["id"] for s in b}
    shared = set(ids_a) & set(ids_b)
    assert shared == {Q1_URI, A1_URI} and all(ids_a[u] != ids_b[u] for u in shared)
    _, out = run_import(runner, db_path, PAGE_A, PAGE_B)
    assert [f["added"] for f in out["files"]] == [4, 1]
    assert scalar(db_path, "select count(*) from posts") == len(set(ids_a) | set(ids_b)) == 5
    dave = rows(db_path, "select * from posts where id like '%/dave/%'")[0]
    # dave's reply names Q1 by example.social's id; resolved to Q1's uri after import
    assert (dave["instance"], dave["reply_to_local_id"]) == ("example.social", "115600000100000011")
    assert dave["reply_to_id"] == Q1_URI
    assert dave["created_at"] == "2026-11-18T20:07:00.500Z"


def test_mastodon_instance_rules():
    page = load(PAGE_A)
    posts = list(mastodon.normalize(page, mctx()))
    assert {p.instance for p in posts} == {"mastodon.example"}  # from tags[].url
    # an explicit instance (live capture, --instance) wins over evidence
    posts = list(mastodon.normalize(page, mctx(instance="https://Other.Example/")))
    assert {p.instance for p in posts} == {"other.example"}
    # evidence: a local account, else a local mention, else nothing
    s = copy.deepcopy(page[3])  # Q1 by alice, local on mastodon.example
    s["tags"] = []
    assert mastodon.instance_evidence(s) == "mastodon.example"
    s = copy.deepcopy(load(M / "context-a1.json")["descendants"][1])  # eve (remote) mentions local carol
    assert s["tags"] == [] and "@" in s["account"]["acct"]
    assert mastodon.instance_evidence(s) == "mastodon.example"
    s["mentions"] = []
    assert mastodon.instance_evidence(s) is None
    assert mastodon.status_to_post(s, instance=None, matched=True).instance is None
    assert mastodon.host_of("localhost:3000") == "localhost:3000"


def test_mastodon_jsonl_instance_found_by_reading_ahead(db_path, runner):
    first = json.loads(JSONL.read_text().splitlines()[0])
    assert mastodon.instance_evidence(first) is None  # line 1 alone cannot tell
    run_import(runner, db_path, PAGE_A)
    _, out = run_import(runner, db_path, JSONL)
    assert out["files"][0]["format"] == "mastodon"
    frank = rows(db_path, "select * from posts where id like '%/frank/%'")[0]
    assert frank["instance"] == "mastodon.example"  # guessed from line 2's tags
    assert frank["reply_to_id"] == Q1_URI  # and so its reply resolves


def test_mastodon_context_file_is_context():
    posts = by_id(mastodon.normalize(load(CONTEXT), mctx()))
    assert set(posts) == {Q1_URI, CAROL_URI, "https://other.example/users/eve/statuses/77"}
    assert not any(p.matched for p in posts.values())
    # ancestors[0] has no parent: it is the thread root for every status
    assert {p.root_id for p in posts.values()} == {Q1_URI}
    eve = posts["https://other.example/users/eve/statuses/77"]
    assert eve.reply_to_id == CAROL_URI and eve.reply_to_author == "carol@mastodon.example"
    carol = posts[CAROL_URI]
    # A1 (the anchor) is not in a context response: carol replies to a
    # stand-in for it, which her siblings share
    assert carol.reply_to_id == local_placeholder("mastodon.example", "115600000300000033")
    assert carol.reply_to_local_id == "115600000300000033"


def test_mastodon_context_links_to_anchor_after_import(db, tmp_path):
    save_posts(db, mastodon.normalize(load(CONTEXT), mctx()))
    assert db.execute("select reply_to_id from posts where id = ?", [CAROL_URI]).fetchone()[0] == (
        "local:mastodon.example/115600000300000033")
    save_posts(db, mastodon.normalize(load(PAGE_A), mctx()))  # brings A1, runs resolve_local_replies
    row = db.execute("select reply_to_id, matched from posts where id = ?", [CAROL_URI]).fetchone()
    assert row == (A1_URI, 1)  # and the tag page upgraded it to matched


def test_mastodon_reply_by_first_servers_local_id_after_second_server(db):
    save_posts(db, mastodon.normalize(load(PAGE_A), mctx()))
    save_posts(db, mastodon.normalize(load(PAGE_B), mctx()))  # A1 seen again, from example.social
    late = copy.deepcopy(load(CONTEXT)["descendants"][1])  # a reply read later from mastodon.example
    late["in_reply_to_id"] = "115600000300000033"  # A1's id on mastodon.example
    save_posts(db, mastodon.normalize(late, mctx()))
    assert db.execute("select reply_to_id from posts where id = ?", [late["uri"]]).fetchone()[0] == A1_URI


def test_mastodon_boost_and_quotes():
    posts = by_id(mastodon.normalize([json.loads(line) for line in JSONL.read_text().splitlines()], mctx()))
    boost = posts["https://mastodon.example/users/ivan/statuses/115600001000000010/activity"]
    assert boost.is_repost and boost.matched
    assert boost.author.handle == "ivan@mastodon.example"
    assert boost.created_at == "2026-11-18T20:11:00.000Z"
    assert boost.text.startswith("@alice A1: start with questions")  # the original's content
    assert boost.reply_to_local_id is None and boost.reply_to_id is None and boost.quote_of_id is None
    assert (boost.like_count, boost.repost_count) == (None, None)
    original = posts[A1_URI]
    assert original.matched is False and original.is_repost is False
    assert original.author.handle == "bob@example.social"

    hana = posts["https://example.net/users/hana/statuses/91"]
    assert hana.quote_of_id == Q1_URI
    assert hana.text == "This question! #edchat"  # the quote-inline "RE: …" fallback is dropped
    assert "RE:" not in hana.html and hana.links == []
    assert posts[Q1_URI].matched is False  # the quoted status is context
    jo = posts["https://example.net/users/jo/statuses/11"]
    assert jo.quote_of_id == hana.id  # ShallowQuote: local id resolved within the file
    unknown = dict(json.loads(JSONL.read_text().splitlines()[3]), quote={"state": "accepted", "quoted_status_id": "1"})
    assert mastodon.status_to_post(unknown, instance="mastodon.example", matched=True).quote_of_id is None


def test_mastodon_reply_author_rules():
    page = load(PAGE_A)
    a1 = copy.deepcopy(page[2])
    a1["in_reply_to_id"] = "404"  # parent unknown: the mention with in_reply_to_account_id
    assert mastodon.status_to_post(a1, instance="mastodon.example", matched=True).reply_to_author == "alice@mastodon.example"
    a1["in_reply_to_account_id"] = a1["account"]["id"]  # a self-reply
    assert mastodon.status_to_post(a1, instance="mastodon.example", matched=True).reply_to_author == "bob@example.social"
    a1["in_reply_to_account_id"] = "999"  # nobody we know: no guess
    assert mastodon.status_to_post(a1, instance="mastodon.example", matched=True).reply_to_author is None
    # the parent's author wins over in_reply_to_account_id (it may name the thread's first author)
    known = {("mastodon.example", "404"): ("https://x.example/s/1", "zed@x.example")}
    post = mastodon.status_to_post(a1, instance="mastodon.example", matched=True, known=known)
    assert (post.reply_to_id, post.reply_to_author) == ("https://x.example/s/1", "zed@x.example")


@pytest.mark.parametrize("value, reason", [
    ({"id": "1", "content": "<p>hi</p>"}, "not a Mastodon status"),
    ([{"acct": "a", "username": "a"}], "not a Mastodon status"),
    ({"ancestors": "x", "descendants": []}, "not lists"),
])
def test_mastodon_bad_records_are_skipped(value, reason):
    with pytest.raises(Skip, match=reason):
        list(mastodon.normalize(value, mctx()))


def test_per_file_state_is_made_by_the_format():
    # the state is the format's own typed object, not a key in a dict
    ctx = mastodon.FORMAT.context("f.json", instance="https://Social.Example/")
    assert isinstance(ctx.state, mastodon.MastodonFile) and ctx.state.explicit == "social.example"
    assert isinstance(bluesky.FORMAT.context("f.json").state, bluesky.BlueskyFile)
    # a Context made by hand carries no state: a clear error, not a silent guess
    with pytest.raises(TypeError, match="carries no MastodonFile"):
        list(mastodon.normalize(load(PAGE_A), Context(path="f.json")))
    with pytest.raises(TypeError, match="carries no BlueskyFile"):
        list(bluesky.normalize(load(SEARCH), Context(path="f.json")))


def test_mastodon_bad_time_is_stored_without_a_time_and_said():
    s = copy.deepcopy(load(PAGE_A)[3])
    s["created_at"] = "yesterday"
    post = mastodon.status_to_post(s, instance=None, matched=True)
    assert post.created_at is None
    assert post.warnings == ["created_at: unreadable time 'yesterday'; stored without a time"]
    s["created_at"] = "0001-01-01T00:00:00Z"  # readable, but no post was written then
    post = mastodon.status_to_post(s, instance=None, matched=True)
    assert post.created_at is None and "before 2006" in post.warnings[0]


# ==========================================================================
# Bluesky: mapping


def test_bluesky_facets_use_utf8_byte_offsets():
    posts = by_id(bluesky.normalize(load(SEARCH), bctx()))
    a1 = posts[BA1]
    text = a1.text
    mention = load(SEARCH)["posts"][4]["record"]["facets"][0]
    # the emoji before the mention make byte and character offsets differ
    assert text.index("@host") != mention["index"]["byteStart"]
    assert a1.mentions == ["host.bsky.example"]  # the slice, without "@"
    assert a1.links == ["https://example.org/inquiry?utm=chat"]  # full uri, not the shown "example.org/inqu…"
    assert a1.hashtags == ["EdChat", "EdChatAnswers"]  # tag facet + record.tags
    assert a1.reply_to_id == BQ1 and a1.root_id == BQ1
    assert a1.reply_to_author == "host.bsky.example"  # parent author from the mention/file
    assert a1.created_at == "2026-11-18T20:02:03.123Z"  # 6 fraction digits, +00:00
    assert a1.url == "https://bsky.app/profile/bob.bsky.example/post/3mq1bbbbbbb2b"
    assert a1.author.id == "did:plc:bobanswers00000000000002" and a1.author.handle == "bob.bsky.example"
    assert a1.lang == "en" and a1.html is None
    assert (a1.reply_count, a1.repost_count, a1.like_count, a1.quote_count) == (1, 0, 3, None)
    assert [(m.type, m.alt) for m in a1.media] == [("image", "A wall of sticky notes")]


def test_bluesky_facet_slices_are_checked():
    text = "héllo 🌱"
    b = text.encode()
    assert bluesky.facet_slice(b, {"byteStart": 7, "byteEnd": 11}) == "🌱"
    assert bluesky.facet_slice(b, {"byteStart": 0, "byteEnd": 6}) == "héllo"
    assert bluesky.facet_slice(b, {"byteStart": 8, "byteEnd": 9}) is None  # inside the emoji
    assert bluesky.facet_slice(b, {"byteStart": 5, "byteEnd": 99}) is None
    assert bluesky.facet_slice(b, {"byteStart": "0", "byteEnd": 2}) is None


def test_bluesky_embeds_quotes_and_media():
    posts = by_id(bluesky.normalize(load(SEARCH), bctx()))
    assert sum(p.matched for p in posts.values()) == 6
    quote = posts[BQUOTE]  # recordWithMedia: a quote and an image
    assert quote.quote_of_id == BQ1
    assert [m.url.rsplit("/", 1)[-1] for m in quote.media] == ["bafkreiq@jpeg"]
    assert quote.created_at == "2026-11-18T20:05:00.000Z"
    assert posts[BQ1].matched is True  # also a hit itself; the quoted copy did not demote it
    feedgen = posts["at://did:plc:erinreposts0000000000005/app.bsky.feed.post/3mq1eeeeeee2e"]
    assert feedgen.quote_of_id is None  # embedding a feed generator is not a quote
    assert [(m.type, m.url, m.alt) for m in feedgen.media] == [
        ("video", "https://video.bsky.app/watch/erin/playlist.m3u8", "A teacher explains feeds")]
    deleted = posts["at://did:plc:gusoutside00000000000006/app.bsky.feed.post/3mq1fffffff2f"]
    assert deleted.quote_of_id == "at://did:plc:hostedchat0000000000001/app.bsky.feed.post/3mgonegonegone"
    assert deleted.quote_of_id not in posts  # viewNotFound: nothing to store
    dan = posts["at://did:plc:danreposts00000000000004/app.bsky.feed.post/3mq1ddddddd2d"]
    assert dan.links == ["https://blog.example/curiosity"]  # external embed
    assert dan.reply_to_author == "gus.bsky.example"  # parent not in file: handle via the mention
    assert dan.created_at == "2026-11-18T20:06:30.500Z"


def test_bluesky_quoted_view_record_becomes_context():
    view = load(SEARCH)["posts"][3]  # the quote post
    solo = bluesky.postview_to_posts(view, matched=True)
    assert [p.id for p in solo] == [BQUOTE, BQ1]
    quoted = solo[1]
    assert quoted.matched is False and quoted.text.startswith("Q1: How do you spark")
    assert quoted.hashtags == ["EdChat"] and quoted.like_count == 7 and quoted.quote_count is None
    assert bluesky.postview_to_post(view, matched=True).id == BQUOTE


def test_bluesky_thread_walk():
    posts = by_id(bluesky.normalize(load(THREAD), bctx()))
    assert set(posts) == {BA1, BQ1, BR1, BR2}  # notFoundPost and blockedPost skipped
    assert [p.id for p in posts.values() if p.matched] == [BA1]  # the anchor only
    assert posts[BR1].reply_to_id == BA1 and posts[BR1].reply_to_author == "bob.bsky.example"
    assert posts[BR2].reply_to_id == BR1 and posts[BR2].reply_to_author == "carol.bsky.example"
    assert posts[BR2].root_id == BQ1


def test_bluesky_thread_v2_flat_list():
    # app.bsky.unspecced.getPostThreadV2: {thread: [{uri, depth, value}]}; depth 0 is the anchor
    search = {p["uri"]: p for p in load(SEARCH)["posts"]}
    items = [
        {"uri": BQ1, "depth": -1, "value": {"$type": "app.bsky.unspecced.defs#threadItemPost", "post": search[BQ1]}},
        {"uri": BA1, "depth": 0, "value": {"$type": "app.bsky.unspecced.defs#threadItemPost", "post": search[BA1]}},
        {"uri": "at://did:plc:x/app.bsky.feed.post/gone", "depth": 1,
         "value": {"$type": "app.bsky.unspecced.defs#threadItemNotFound"}},
    ]
    posts = by_id(bluesky.normalize({"thread": items}, bctx()))
    assert {pid: p.matched for pid, p in posts.items()} == {BQ1: False, BA1: True}


def test_bluesky_gallery_and_record_with_external():
    view = copy.deepcopy(load(SEARCH)["posts"][5])  # Q1, no embed
    view["embed"] = {"$type": "app.bsky.embed.gallery#view", "items": [
        {"thumbnail": "https://cdn.example/t1", "fullsize": "https://cdn.example/f1", "alt": "first"},
        {"thumbnail": "https://cdn.example/t2", "fullsize": "https://cdn.example/f2", "alt": ""}]}
    post = bluesky.postview_to_post(view, matched=True)
    assert [(m.url, m.alt, m.preview_url) for m in post.media] == [
        ("https://cdn.example/f1", "first", "https://cdn.example/t1"), ("https://cdn.example/f2", None, "https://cdn.example/t2")]
    view["embed"] = {"$type": "app.bsky.embed.recordWithMedia#view",
                     "record": {"$type": "app.bsky.embed.record#view", "record": {
                         "$type": "app.bsky.embed.record#viewBlocked", "uri": BA1, "blocked": True, "author": {"did": "did:x"}}},
                     "media": {"$type": "app.bsky.embed.external#view", "external": {"uri": "https://site.example/a"}}}
    post = bluesky.postview_to_post(view, matched=True)
    assert post.quote_of_id == BA1 and post.links == ["https://site.example/a"] and post.media == []
    # no hydrated view (a raw record only): the quote is still read from record.embed
    del view["embed"]
    view["record"]["embed"] = {"$type": "app.bsky.embed.record", "record": {"uri": BR1, "cid": "c"}}
    assert bluesky.postview_to_post(view, matched=True).quote_of_id == BR1
    view["record"]["embed"]["record"]["uri"] = "at://did:plc:x/app.bsky.graph.list/abc"
    assert bluesky.postview_to_post(view, matched=True).quote_of_id is None


def _pv(i, parent=None):
    did = f"did:plc:user{i % 7}"
    rec = {"$type": "app.bsky.feed.post", "text": f"post {i}", "createdAt": "2026-11-18T20:00:00Z"}
    if parent is not None:
        p = {"uri": f"at://did:plc:user{parent % 7}/app.bsky.feed.post/r{parent}", "cid": "c"}
        rec["reply"] = {"root": p, "parent": p}
    return {"uri": f"at://{did}/app.bsky.feed.post/r{i}", "cid": f"c{i}",
            "author": {"did": did, "handle": f"user{i % 7}.bsky.example"}, "record": rec}


def test_bluesky_10000_deep_thread_has_no_recursion_limit():
    depth = 10_000
    anchor = {"$type": "app.bsky.feed.defs#threadViewPost", "post": _pv(0), "replies": []}
    node = anchor
    for i in range(1, depth + 1):  # a reply chain 10,000 deep
        child = {"$type": "app.bsky.feed.defs#threadViewPost", "post": _pv(i, i - 1), "replies": []}
        node["replies"] = [child]
        node = child
    node = anchor
    for i in range(1, depth + 1):  # and 10,000 parents above the anchor
        parent = {"$type": "app.bsky.feed.defs#threadViewPost", "post": _pv(-i)}
        node["parent"] = parent
        node = parent
    posts = list(bluesky.normalize({"thread": anchor}, bctx()))
    assert len(posts) == 2 * depth + 1
    assert sum(p.matched for p in posts) == 1
    deepest = by_id(posts)[f"at://did:plc:user{depth % 7}/app.bsky.feed.post/r{depth}"]
    assert deepest.reply_to_id.endswith(f"/r{depth - 1}")


def _deep_thread_json(depth):
    # built as text: json.dumps itself would recurse too deep
    parts = ['{"thread":']
    for i in range(depth):
        parent = i - 1 if i else None
        parts.append('{"$type":"app.bsky.feed.defs#threadViewPost","post":' + json.dumps(_pv(i, parent)) + ',"replies":[')
    parts.append("]}" * depth + "}")
    return "".join(parts)


def test_bluesky_deep_json_beyond_orjson_limit(runner, db_path, tmp_path):
    text = _deep_thread_json(1500)  # ~3,000 levels: orjson stops at 1,024
    value = loads_deep(text)
    assert value["thread"]["post"]["uri"].endswith("/r0")
    path = tmp_path / "deep-thread.json"
    path.write_text(text)
    _, out = run_import(runner, db_path, path, "--format", "bluesky")
    assert out["files"][0]["added"] == 1500
    assert scalar(db_path, "select count(*) from posts where reply_to_id in (select id from posts)") == 1499


@pytest.mark.parametrize("doc", [
    '{"a": [1, -2.5e3, 0.25, true, false, null, "x\\u00e9\\n\\"q\\"", {}, [], [[]]], "b": {"c": "🌱"}}',
    "[]", "  3 ", '"s"', '[{"k": [1, {"k2": null}]}, 2]',
])
def test_loads_deep_matches_json(doc):
    assert loads_deep(doc) == json.loads(doc)


@pytest.mark.parametrize("doc", ['{"a": 1', '[1, 2', '{"a" 1}', '[1,]', '{"a": 1} x', 'nul', '{1: 2}'])
def test_loads_deep_rejects_bad_json(doc):
    with pytest.raises(ValueError):
        loads_deep(doc)


def test_bluesky_feed_items_and_reposts():
    posts = by_id(bluesky.normalize(load(FEED), bctx()))
    dan_repost = posts["at://did:plc:danreposts00000000000004/app.bsky.feed.repost/3mqrepost1"]
    assert dan_repost.is_repost and dan_repost.matched
    assert dan_repost.author.handle == "dan.bsky.example"
    assert dan_repost.created_at == "2026-11-18T20:09:00.000Z"
    assert dan_repost.text == posts[BA1].text and dan_repost.reply_to_id is None
    erin_repost = posts[f"{BQUOTE}#repost-by-did:plc:erinreposts0000000000005"]  # no reason.uri
    assert erin_repost.is_repost and erin_repost.author.id == "did:plc:erinreposts0000000000005"
    # the reposted originals and the reply context are context; the plain items matched
    assert {pid for pid, p in posts.items() if p.matched} == {
        BQ1, BR2, dan_repost.id, erin_repost.id}
    assert posts[BA1].matched is False and posts[BQUOTE].matched is False
    assert posts[BR1].matched is False  # reply.parent of the R2 item
    assert posts[BR2].reply_to_author == "carol.bsky.example"
    # the same item as a bare list element, or alone on a JSONL line
    item = load(FEED)["feed"][2]
    assert next(iter(bluesky.normalize(item, bctx()))).id == dan_repost.id
    assert [p.id for p in bluesky.normalize([load(SEARCH)["posts"][5]], bctx())] == [BQ1]


@pytest.mark.parametrize("value, reason", [
    ({"uri": "https://x.example/1", "author": {}, "record": {}}, "not a Bluesky"),
    ({"thread": {"$type": "app.bsky.feed.defs#notFoundPost", "uri": "at://x/y/z", "notFound": True}}, "not found"),
])
def test_bluesky_bad_records_are_skipped(value, reason):
    with pytest.raises(Skip, match=reason):
        list(bluesky.normalize(value, bctx()))


def test_bluesky_a_bad_post_costs_itself_only():
    good = load(SEARCH)["posts"][0]
    ctx = bctx()
    value = {"posts": [{"uri": "at://did:plc:x/app.bsky.feed.post/1", "author": {"handle": "x"},
                        "record": {"text": ""}}, good]}
    assert [p.id for p in bluesky.normalize(value, ctx)] == [good["uri"]]
    assert ctx.problems == ["post 1 (at://did:plc:x/app.bsky.feed.post/1): post author has no DID"]


def test_bluesky_time_from_the_record_key_else_none_with_a_warning():
    view = copy.deepcopy(load(SEARCH)["posts"][0])
    view["record"]["createdAt"] = "0000-01-01T00:00:00.000Z"
    view["indexedAt"] = "0000-01-01T00:00:00.000Z"
    view["uri"] = view["uri"].rsplit("/", 1)[0] + "/3lpk2u6qo222m"  # a TID
    [post] = bluesky.normalize(view, bctx())
    assert post.created_at == "2025-05-19T17:10:09.700Z"  # the key's microseconds since 1970
    assert post.warnings == ["createdAt: unreadable time '0000-01-01T00:00:00.000Z'; "
                             "the time was taken from the record key"]
    view["uri"] = view["uri"].rsplit("/", 1)[0] + "/not-a-tid"
    [post] = bluesky.normalize(view, bctx())
    assert post.created_at is None
    assert post.warnings == ["createdAt: unreadable time '0000-01-01T00:00:00.000Z'; stored without a time"]


def test_bluesky_created_at_falls_back_to_indexed_at():
    view = copy.deepcopy(load(SEARCH)["posts"][5])
    del view["record"]["createdAt"]
    assert bluesky.postview_to_post(view, matched=True).created_at == view["indexedAt"]


# ==========================================================================
# CLI import


@pytest.mark.parametrize("path, fmt", [
    (PAGE_A, "mastodon"), (CONTEXT, "mastodon"), (JSONL, "mastodon"),
    (SEARCH, "bluesky"), (THREAD, "bluesky"), (FEED, "bluesky"),
])
def test_cli_detects_and_is_idempotent(runner, db_path, path, fmt):
    result, out = run_import(runner, db_path, path)
    assert result.exit_code == 0, result.output
    first = out["files"][0]
    assert first["format"] == fmt and first["added"] > 0 and first["skipped"] == 0
    tables = ("posts", "authors", "post_hashtags", "mentions", "post_links", "post_media", "raw")
    before = {t: scalar(db_path, f"select count(*) from {t}") for t in tables}
    assert before["raw"] == before["posts"]  # the raw object of every post is kept
    _, again = run_import(runner, db_path, path)
    assert (again["files"][0]["added"], again["files"][0]["updated"]) == (0, 0)
    assert {t: scalar(db_path, f"select count(*) from {t}") for t in tables} == before
    assert scalar(db_path, "select count(*) from imports where format = ?", [fmt]) == 2


def test_cli_whole_chat_links_replies(runner, db_path):
    result, out = run_import(runner, db_path, CONTEXT, JSONL, PAGE_B, PAGE_A, SEARCH, THREAD, FEED)
    assert result.exit_code == 0 and not any(f["error"] for f in out["files"])
    linked = {r["id"]: r["reply_to_id"] for r in rows(db_path, "select id, reply_to_id from posts where reply_to_id is not null")}
    assert linked[CAROL_URI] == A1_URI  # context file read before the page holding A1
    assert linked[A1_URI] == Q1_URI
    assert linked[BR2] == BR1 and linked[BA1] == BQ1
    unresolved = rows(db_path, "select id from posts where reply_to_local_id is not null and reply_to_id is null")
    assert unresolved == []
    # Mastodon + Bluesky posts of the chat side by side, one row each
    assert scalar(db_path, "select count(*) from posts where platform = 'mastodon'") == 10
    # 6 search hits + 2 thread replies + 2 reposts from the feed
    assert scalar(db_path, "select count(*) from posts where platform = 'bluesky'") == 10
    assert scalar(db_path, "select count(*) from posts where is_repost = 1") == 3


def test_cli_stdin_and_gzip(runner, db_path, tmp_path):
    gz = tmp_path / "page.json.gz"
    gz.write_bytes(gzip.compress(PAGE_A.read_bytes()))
    _, out = run_import(runner, db_path, gz)
    assert out["files"][0]["format"] == "mastodon" and out["files"][0]["added"] == 4
    _, out = run_import(runner, db_path, "-", input=SEARCH.read_bytes())
    assert out["files"][0]["path"] == "<stdin>"
    assert out["files"][0]["format"] == "bluesky" and out["files"][0]["added"] == 6
    _, out = run_import(runner, db_path, "-", input=gzip.compress(JSONL.read_bytes()))
    assert out["files"][0]["format"] == "mastodon" and out["files"][0]["added"] == 4


def test_cli_bad_lines_reported_and_strict(runner, db_path, tmp_path):
    lines = JSONL.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], lines[1][:200], '{"uri": "x", "content": "<p>no account</p>"}', lines[2]]) + "\n")
    result, out = run_import(runner, db_path, bad)
    f = out["files"][0]
    assert f["skipped"] == 2 and f["added"] == 3  # frank, the boost and its original
    assert f["problems"][0].startswith(f"{bad}:2: invalid JSON")
    assert f["problems"][1].startswith(f"{bad}:3: ")
    strict_db = tmp_path / "strict.db"
    result = runner.invoke(cli, ["import", str(strict_db), str(PAGE_A), str(bad), "--strict", "--no-analyse"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bad.jsonl" in result.output and "2: invalid JSON" in result.output
    assert not strict_db.exists()  # a new archive is not left behind (the good first file rolled back too)


@pytest.mark.parametrize("content, message", [
    ('[{"id": "1", "username": "alice", "acct": "alice", "display_name": "A"}]', "Mastodon accounts"),
    ('[{"did": "did:plc:x", "handle": "x.bsky.social"}]', "Bluesky profiles"),
    ('{"posts": [], "cursor": "0"}', "no posts"),
    ('{"ancestors": [], "descendants": []}', "no posts"),
    ('{"thread": {"$type": "app.bsky.feed.defs#notFoundPost", "uri": "at://did:plc:x/app.bsky.feed.post/1", "notFound": true}}',
     "no posts"),
])
def test_cli_refuses_files_without_posts(runner, db_path, tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    result = runner.invoke(cli, ["import", str(db_path), str(path), "--no-analyse"])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_cli_truncated_document(runner, db_path, tmp_path):
    # An object cut short cannot be read at all: refused in one line.
    path = tmp_path / "b.json"
    path.write_bytes(SEARCH.read_bytes()[:3000])
    result = runner.invoke(cli, ["import", str(db_path), str(path), "--no-analyse"])
    assert result.exit_code == 1 and "b.json" in result.output and "Traceback" not in result.output


def test_cli_truncated_list_keeps_the_statuses_before_the_cut(runner, db_path, tmp_path):
    # A list is read element by element: the statuses before the cut are
    # kept (like a cut gzip or tweets.js), the cut is reported and counted.
    whole = json.loads(PAGE_A.read_text(encoding="utf-8"))
    second = json.dumps(whole[1], indent=2)
    path = tmp_path / "m.json"
    path.write_text("[\n" + json.dumps(whole[0], indent=2) + ",\n" + second[: len(second) // 2], encoding="utf-8")
    result = runner.invoke(cli, ["import", str(db_path), str(path), "--no-analyse", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["files"][0]
    assert (summary["added"], summary["skipped"]) == (1, 1)
    assert "cut off" in summary["problems"][0] and summary["problems"][0].startswith(f"{path}:")
    db = sqlite3.connect(db_path)
    assert [r[0] for r in db.execute("SELECT id FROM posts")] == [whole[0]["uri"]]


# ==========================================================================
# The real files in ../shared/fixtures (never copied into the repo).  The
# expected numbers were worked out with jq over the files, e.g.
#   jq 'length' F; jq '[.[]|select(.in_reply_to_id!=null)]|length' F
#   jq '[.posts[]|select(.record.reply)]|length' F
#   jq '[.posts[].uri] as $u | [.posts[]|select(.record.reply.parent.uri as $p
#       | $p != null and ($u|index($p)))]|length' F


MASTODON_REAL = {
    # file: (rows, matched, rows naming a parent, parents linked, quotes, instance)
    "tag-rstats-fosstodon.json": (5, 5, 0, 0, 0, "fosstodon.org"),
    "tag-rstats-mastodon-social.json": (5, 5, 0, 0, 0, "mastodon.social"),
    "tag-timeline-paginated.json": (30, 30, 0, 0, 0, "localhost:3000"),
    "status-reply.json": (2, 2, 1, 1, 0, "localhost:3000"),
    # a bridged reply quoting a bridged reply: neither names the server, both
    # name parents that are not in the file; the quoted one is context
    "status-quote.json": (2, 1, 2, 0, 1, None),
    "status-edited.json": (2, 2, 0, 0, 0, "mastodon.social"),
    "status-docs-example.json": (1, 1, 0, 0, 0, "mastodon.social"),
}

BLUESKY_REAL = {
    # file: (rows, matched, replies, replies whose parent is stored, quotes)
    # rows = posts + quoted viewRecords that are not hits themselves
    "searchPosts-txlege.json": (26, 25, 12, 3, 2),
    "searchPosts-sfpol.json": (24, 23, 6, 0, 3),
    "getPostThread.json": (1, 1, 0, 0, 0),
    "thread-view-embed-media.json": (2, 1, 0, 0, 1),
}


@needs_shared_fixtures()
@pytest.mark.parametrize("name", sorted(MASTODON_REAL))
def test_real_mastodon_files(runner, db_path, name):
    n_rows, n_matched, n_replies, n_linked, n_quotes, instance = MASTODON_REAL[name]
    result, out = run_import(runner, db_path, SHARED_FIXTURES / "mastodon" / name)
    assert result.exit_code == 0, result.output
    assert out["files"][0]["format"] == "mastodon" and out["files"][0]["skipped"] == 0
    assert scalar(db_path, "select count(*) from posts") == n_rows
    assert scalar(db_path, "select count(*) from posts where matched = 1") == n_matched
    assert scalar(db_path, "select count(*) from posts where reply_to_local_id is not null") == n_replies
    assert scalar(db_path, "select count(*) from posts where reply_to_id in (select id from posts)") == n_linked
    assert scalar(db_path, "select count(*) from posts where quote_of_id is not null") == n_quotes
    assert {r["instance"] for r in rows(db_path, "select distinct instance from posts")} == {instance}
    assert scalar(db_path, "select count(*) from posts where id not like 'http%'") == 0  # ids are uris
    assert scalar(db_path, "select count(*) from posts where html like '%<script%'") == 0
    # the server's classes are gone; the only classes are the sanitizer's own
    # marks of hashtag and mention links, and what is stored is what outputs show
    for r in rows(db_path, "select html from posts where html is not null"):
        assert set(re.findall(r'class="([^"]*)"', r["html"])) <= {"hashtag", "mention"}
        assert r["html"].count("class=") == len(re.findall(r'<a class="(?:hashtag|mention)" ', r["html"]))
        assert str(sanitize_html(r["html"])) == r["html"]


@needs_shared_fixtures()
def test_real_rstats_pages_union_by_uri(runner, db_path):
    files = [SHARED_FIXTURES / "mastodon" / n for n in ("tag-rstats-fosstodon.json", "tag-rstats-mastodon-social.json")]
    docs = [load(f) for f in files]
    pairs = {(inst, s["id"]) for inst, doc in zip(("fosstodon.org", "mastodon.social"), docs) for s in doc}
    _, out = run_import(runner, db_path, *files)
    assert [(f["added"], f["updated"] + f["unchanged"]) for f in out["files"]] == [(5, 0), (0, 5)]
    stored = rows(db_path, "select id, instance, local_id, matched, author_id from posts")
    assert {r["id"] for r in stored} == {s["uri"] for d in docs for s in d}
    assert len(stored) == 5
    assert all((r["instance"], r["local_id"]) in pairs and r["matched"] == 1 for r in stored)
    assert scalar(db_path, "select count(*) from authors") == 5  # authors by account uri, not local id
    assert "rstats" in {r["tag"].lower() for r in rows(db_path, "select tag from hashtags")}


@needs_shared_fixtures()
def test_real_mastodon_mentions_and_links(runner, db_path):
    run_import(runner, db_path, SHARED_FIXTURES / "mastodon" / "tag-rstats-fosstodon.json")
    assert {r["handle"] for r in rows(db_path, "select handle from mentions")} == {
        "snystrom@genomic.social", "schochastics@fosstodon.org"}  # local acct made global
    links = {r["url"] for r in rows(db_path, "select url from links")}
    assert "https://github.com/cloudyr/aws.s3/pull/438" in links  # link and card
    assert not any("/tags/" in u or "bsky.app/search" in u for u in links)  # hashtag hrefs are not links


@needs_shared_fixtures()
@pytest.mark.parametrize("name", sorted(BLUESKY_REAL))
def test_real_bluesky_files(runner, db_path, name):
    n_rows, n_matched, n_replies, n_linked, n_quotes = BLUESKY_REAL[name]
    result, out = run_import(runner, db_path, SHARED_FIXTURES / "bluesky" / name)
    assert result.exit_code == 0, result.output
    assert out["files"][0]["format"] == "bluesky" and out["files"][0]["skipped"] == 0
    assert scalar(db_path, "select count(*) from posts") == n_rows
    assert scalar(db_path, "select count(*) from posts where matched = 1") == n_matched
    assert scalar(db_path, "select count(*) from posts where reply_to_id is not null") == n_replies
    assert scalar(db_path, "select count(*) from posts where reply_to_id in (select id from posts)") == n_linked
    assert scalar(db_path, "select count(*) from posts where quote_of_id is not null") == n_quotes
    assert scalar(db_path, "select count(*) from posts where created_at not like '____-__-__T__:__:__.___Z'") == 0


@needs_shared_fixtures()
def test_real_bluesky_facets(runner, db_path):
    run_import(runner, db_path, SHARED_FIXTURES / "bluesky" / "searchPosts-sfpol.json")
    # the text slices of the two mention facets and the four tag facets
    assert {r["handle"] for r in rows(db_path, "select handle from mentions")} == {
        "demfromct.bsky.social", "yeargain.bsky.social"}
    assert {r["tag"] for r in rows(db_path, "select tag from hashtags")} == {
        "KITM", "SanFranciscoPolitics", "SFPol", "SanFrancisco"}
