"""`chatarchive serve`: the Datasette configuration, the plugin's pages and
cells, canned queries (through Datasette(...).client), the CLI and one real
server over HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, quote, urlparse

import httpx
import pytest
from bs4 import BeautifulSoup
from conftest import FIXTURES

from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import save_posts
from chatarchive.cli import cli
from chatarchive.datasette import archives, metadata, pages, plugin, server
from chatarchive.models import Author, Post
from chatarchive.present.text import anchor_for, highlight, initials, linkify

CHAT = FIXTURES / "serve" / "growthchat.jsonl"
HOSTILE_ID = "1850000000000000008"  # mallory's <script>/onerror/javascript: post
LATE_ANSWER_ID = "1850000000000000011"  # "A1 (late)", posted after Q2
MASTODON_ID = "https://masto.example/users/zoe/statuses/109"


def mastodon_post() -> Post:
    # Mastodon keeps sanitized HTML next to the text; here it is deliberately
    # unsanitized.  Table cells show the text (the html column as text); post
    # cards show the HTML sanitized again, as the recap does (present.html).
    return Post(
        id=MASTODON_ID, platform="mastodon", source="mastodon",
        created_at="2026-10-21T20:15:00.000Z",
        author=Author(id="https://masto.example/users/zoe", platform="mastodon",
                      handle="zoe@masto.example", name="Zoë",
                      avatar_url="https://masto.example/avatars/zoe.png",
                      url="https://masto.example/@zoe"),
        text="A2: first replies, from the fediverse #growthchat @bob@masto.example",
        html='<p>A2: first replies <script>window.__html_ran = 1</script><img src=x onerror="window.__html_ran=2"></p>',
        url="https://masto.example/@zoe/109", hashtags=["growthchat"], local_id="109",
        instance="masto.example",
    )


def build_archive(path: Path) -> Path:
    from chatarchive.analysis.pipeline import analyse_archive
    from chatarchive.archive.importer import import_files

    db = open_db(path, create=True)
    results = import_files(db, [str(CHAT)])
    assert not results[0].error and results[0].added > 20
    save_posts(db, [mastodon_post()])
    analyse_archive(db)
    # The real analysis finds the two chats, their hosts and questions: when
    # it regresses, these tests fail here rather than serve a stand-in.
    assert [r[0] for r in db.execute("select hosts from sessions order by start")] == ['["hostann"]'] * 2
    assert db.execute("select count(*) from questions").fetchone()[0] == 4
    # What a host adds by hand (sessions add --title, a known time zone).
    db.execute("update sessions set title = 'Measuring community health', timezone = 'Europe/London' "
               "where id = (select id from sessions order by start limit 1)")
    db.conn.close()
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> SimpleNamespace:
    path = build_archive(tmp_path_factory.mktemp("serve") / "chats.db")
    conn = sqlite3.connect(path)
    slugs = [r[0] for r in conn.execute("select slug from sessions order by start")]
    conn.close()
    return SimpleNamespace(path=path, name="chats", slugs=slugs)


def make_client(ds):
    loop = asyncio.new_event_loop()

    def get(path: str):
        return loop.run_until_complete(ds.client.get(path))

    get.loop = loop
    get.ds = ds
    return get


@pytest.fixture(scope="module")
def get(archive):
    client = make_client(server.make_datasette(archive.path))
    yield client
    client.loop.close()


def rows_of(get, path: str) -> list[dict]:
    sep = "&" if "?" in path else "?"
    r = get(f"{path}{sep}_shape=array&_size=max" if ".json" in path else path)
    assert r.status_code == 200, r.text[:500]
    return r.json()


def soup(response) -> BeautifulSoup:
    assert response.status_code == 200, response.text[:500]
    return BeautifulSoup(response.text, "html.parser")


def assert_inert(page: BeautifulSoup) -> None:
    """No markup from post text: no script elements but Datasette's own, no
    event handler attributes, no javascript:/data: URLs in href or src."""
    for script in page.find_all("script"):
        assert "alert" not in script.text and "__html_ran" not in script.text
    for tag in page.find_all(True):
        for attr, value in tag.attrs.items():
            assert not attr.lower().startswith("on"), (tag.name, attr)
            if attr in ("href", "src"):
                assert not str(value).strip().lower().startswith(("javascript:", "data:")), value
    assert not page.find("svg", attrs={"onload": True})
    assert not page.find("img", src="x")


def avatar_picture(page: BeautifulSoup, av) -> str | None:
    """The picture the page's avatar styles give an avatar (.av), None when
    it shows initials only."""
    cls = next(c for c in av["class"] if c not in ("av", "s", "l"))
    style = "".join(s.get_text() for s in page.find_all("style"))
    m = re.search(rf"\.{cls}{{--h:\d+(?:;--img:url\(\"([^\"]*)\"\))?}}", style)
    assert m, (cls, style[:300])
    return m.group(1)


# --------------------------------------------------------------------------
# Configuration


def test_metadata_describes_hides_labels_sorts_and_facets(archive):
    meta = metadata.build_metadata(archive.path)
    json.dumps(meta)  # serializable as the --metadata-out file
    assert meta["title"] == "Chat archive: #growthchat"
    assert "26 posts by 9 people in 2 chat sessions from 2026-10-01 to 2026-10-21" in meta["description_html"]
    assert meta["license"] and meta["source"]
    db = meta["databases"]["chats"]
    tables = db["tables"]
    for hidden in ("raw", "_sqlite_migrations", "posts_fts", "posts_fts_data", "posts_fts_idx",
                   "posts_fts_docsize", "posts_fts_config", "imports"):
        assert tables[hidden]["hidden"] is True
    assert tables["authors"]["label_column"] == "handle"
    assert tables["sessions"]["label_column"] == "slug"
    assert tables["posts"]["sort_desc"] == "created_at"
    assert tables["sessions"]["sort_desc"] == "start"
    assert {"platform", "author_id", "answer_to_id"} <= set(tables["posts"]["facets"])
    assert {"session", "question", "author", "platform"} <= set(tables["posts_in_sessions"]["facets"])
    assert "hashtag" in tables["posts_by_hashtag"]["facets"]
    assert all(tables["posts"]["columns"].values())
    assert set(db["queries"]) >= {"session_transcript", "question_answers", "participant_history",
                                  "conversation_thread", "search_posts", "search_everything"}
    assert "allow_sql" not in meta
    assert metadata.build_metadata(archive.path, allow_sql=False, title="Our chats")["allow_sql"] is False
    assert metadata.build_metadata(archive.path, title="Our chats")["title"] == "Our chats"


# The public schema (DESIGN.md) must be described; tables other parts add
# later show up undescribed until serve.py learns about them.
PUBLIC_TABLES = ["posts", "authors", "hashtags", "post_hashtags", "mentions", "links", "post_links",
                 "media", "post_media", "sessions", "session_posts", "conversations", "questions",
                 "posts_in_sessions", "posts_by_hashtag"]
DESCRIBED_COLUMNS = {
    "posts": ["id", "platform", "url", "author_id", "text", "html", "created_at", "reply_to_id",
              "reply_to_author", "quote_of_id", "is_repost", "lang", "like_count", "repost_count",
              "reply_count", "quote_count", "conversation_id", "matched", "question_id", "answer_to_id"],
    "authors": ["id", "platform", "handle", "name", "avatar_url", "url"],
    "sessions": ["id", "slug", "hashtag", "title", "start", "end", "hosts", "source"],
    "conversations": ["id", "session_id", "size", "depth", "participants", "started", "ended"],
    "questions": ["id", "session_id", "number", "post_id", "text"],
}


def test_public_tables_and_columns_have_descriptions(archive):
    meta = metadata.build_metadata(archive.path)["databases"]["chats"]["tables"]
    conn = sqlite3.connect(archive.path)
    names = {r[0] for r in conn.execute("select name from sqlite_master where type in ('table', 'view')")}
    for name in PUBLIC_TABLES:
        assert name in names and meta[name]["description"], name
        assert not meta[name].get("hidden"), name
    for table, columns in DESCRIBED_COLUMNS.items():
        missing = [c for c in columns if not meta[table]["columns"].get(c)]
        assert not missing, f"{table}: undescribed columns {missing}"


def test_datasette_is_immutable_and_uses_the_tuned_settings(get):
    dbs = get("/-/databases.json").json()
    assert [d["is_mutable"] for d in dbs] == [False]
    settings = get("/-/settings.json").json()
    assert settings["suggest_facets"] is False
    assert settings["facet_time_limit_ms"] == metadata.SETTINGS["facet_time_limit_ms"]


def test_inspect_data_counts_within_a_budget_and_fingerprints(archive, tmp_path):
    info = server.inspect_archive(archive.path)
    assert info["tables"]["posts"]["count"] == 26
    assert info["tables"]["sessions"]["count"] == len(archive.slugs)
    assert info["size"] == archive.path.stat().st_size
    assert server.inspect_archive(archive.path)["hash"] == info["hash"]
    big = tmp_path / "big.db"
    conn = sqlite3.connect(big)
    conn.execute("create table t (x)")
    conn.executemany("insert into t values (?)", ((i,) for i in range(300_000)))
    conn.commit()
    conn.close()
    first = server.inspect_archive(big, budget_ms=0)
    assert first["tables"]["t"]["count"] is None  # gave up: shown as "many rows"
    assert server.inspect_archive(big)["tables"]["t"]["count"] == 300_000
    conn = sqlite3.connect(big)
    conn.execute("insert into t values (1)")
    conn.commit()
    conn.close()
    assert server.inspect_archive(big)["hash"] != first["hash"]


def test_index_and_database_pages_hide_internal_tables(get, archive):
    page = soup(get("/"))
    assert "Chat archive: #growthchat" in page.title.text
    search = page.find("a", string="Search sessions, people and posts")
    assert get("/" + search["href"].lstrip("/")).status_code == 200
    info = get("/chats.json").json()
    hidden = {t["name"] for t in info["tables"] if t["hidden"]}
    visible = {t["name"] for t in info["tables"] if not t["hidden"]}
    assert {"raw", "_sqlite_migrations", "posts_fts", "posts_fts_data", "imports"} <= hidden
    assert {"posts", "authors", "sessions", "questions", "session_posts"} <= visible
    assert {"posts_in_sessions", "posts_by_hashtag"} <= {v["name"] for v in info["views"]}
    links = {a["href"] for a in soup(get("/chats")).find_all("a")}
    assert "/chats/posts" in links and "/chats/raw" not in links


def test_menu_links_to_the_search_page(get):
    menu = soup(get("/chats/posts")).find("details", class_="nav-menu")
    assert menu.find("a", href="/chats/-/search")


# --------------------------------------------------------------------------
# Tables: sort, facets, labels, full-text search, rendered cells


def test_posts_newest_first_with_facets(get):
    data = get("/chats/posts.json?_shape=objects&_size=max").json()
    times = [r["created_at"] for r in data["rows"]]
    assert times == sorted(times, reverse=True) and len(times) == 26
    facets = data["facet_results"]
    assert {"platform", "author_id", "answer_to_id"} <= set(facets)
    platforms = {f["value"]: f["count"] for f in facets["platform"]["results"]}
    assert platforms == {"x": 25, "mastodon": 1}
    authors = {f["label"]: f["count"] for f in facets["author_id"]["results"]}
    assert authors["hostann"] == 7 and authors["bob"] == 6  # labels are handles
    questions = {f["label"]: f["count"] for f in facets["answer_to_id"]["results"]}
    q1 = next(k for k in questions if k.startswith("Q1: Which metrics"))
    assert questions[q1] == 4  # bob, carla, mallory and dave's late answer


def test_sessions_facet_views(get, archive):
    first = archive.slugs[0]
    data = get(f"/chats/posts_in_sessions.json?session={first}&_shape=objects&_size=max").json()
    assert {r["session"] for r in data["rows"]} == {first}
    roles = {r["post_id"]: r["role"] for r in data["rows"]}
    assert roles["1850000000000000004"] == "question" and roles[LATE_ANSWER_ID] == "answer"
    question = {f["value"]: f["count"] for f in data["facet_results"]["question"]["results"]}
    assert question[1] == 5 and question[2] == 3  # Q1 + 4 answers; Q2 + 2 answers
    tags = get("/chats/posts_by_hashtag.json?hashtag=datasette&_shape=array").json()
    assert [r["post_id"] for r in tags] == ["1850000000000000012"]


def test_label_columns_show_names_for_foreign_keys(get):
    page = soup(get("/chats/posts?id=1850000000000000005"))
    author = page.find("td", class_="col-author_id")
    assert author.find("a").text == "bob"
    answer = page.find("td", class_="col-answer_to_id").find("a")
    assert answer.text.startswith("Q1: Which metrics")
    sp = soup(get("/chats/session_posts"))
    assert any(a.text.startswith("growthchat-") for a in sp.select("td.col-session_id a"))


def test_posts_table_full_text_search(get):
    rows = get("/chats/posts.json?_search=spreadsheet&_shape=array").json()
    assert [r["id"] for r in rows] == ["1850000000000000010"]
    rows = get("/chats/posts.json?_search=retention&_shape=array").json()
    assert {r["id"] for r in rows} == {"1850000000000000005", "1852000000000000004"}
    # Handles and names are indexed too; the default search mode escapes syntax.
    assert get("/chats/posts.json?_search=Leeds&_shape=array").json()
    assert get('/chats/posts.json?_search=%22unbalanced&_shape=array').status_code == 200


def test_post_text_is_rendered_as_safe_linked_html(get):
    page = soup(get("/chats/posts?_size=max"))
    assert_inert(page)
    cells = {td.find_parent("tr").find("td", class_="col-id").text.strip(): td
             for td in page.select("td.col-text")}
    hostile = cells[HOSTILE_ID]
    assert "<script>alert('xss')</script>" in hostile.text
    assert "javascript:alert(2)" in hostile.text
    # post text goes through the recap's linkify: URLs (http/https only) link out, rel="nofollow ugc"
    assert [a["href"] for a in hostile.select("a[rel~=ugc]")] == ["https://evil.example/"]
    linked = cells["1850000000000000005"]
    assert linked.select_one("a[rel~=ugc]")["href"] == "https://example.com/retention-guide"
    tag = linked.find("a", class_="tag")
    assert tag.text == "#growthchat" and tag["href"] == "/chats/posts_by_hashtag?hashtag=growthchat"
    mention = cells["1850000000000000007"].find("a", class_="mention")
    assert mention.text == "@carla" and mention["href"] == "/chats/participant_history?handle=carla"
    masto = cells[MASTODON_ID]
    assert masto.find("a", class_="mention")["href"].endswith("handle=bob%40masto.example")
    # The stored source HTML is shown as text, never as markup.
    html_cell = next(td for td in page.select("td.col-html") if "__html_ran" in td.text)
    assert not html_cell.find(["p", "script", "img"])


def test_permalinks_and_avatars(get):
    page = soup(get("/chats/posts/1850000000000000005"))
    permalink = page.find("a", class_="ca-permalink")
    assert permalink["href"] == "https://x.com/bob/status/1850000000000000005"
    authors = soup(get("/chats/authors?_size=max"))
    assert_inert(authors)
    srcs = [img["src"] for img in authors.select("td.col-avatar_url img")]
    assert "https://pbs.example.com/bob.jpg" in srcs
    assert not any("alert" in s for s in srcs)
    # mallory's javascript: avatar became an initials badge (present.text.initials: two letters of one word)
    assert authors.find("span", class_="ca-initials", string="Ma")


def test_session_slugs_link_to_session_pages(get, archive):
    page = soup(get("/chats/sessions"))
    hrefs = [a["href"] for a in page.select("td.col-slug a.ca-session")]
    assert hrefs == [f"/chats/-/session/{s}" for s in reversed(archive.slugs)]  # newest first
    for href in hrefs:
        assert get(href).status_code == 200


# --------------------------------------------------------------------------
# Canned queries


def test_canned_queries_have_parameter_forms(get):
    for name, params in [("session_transcript", ["session"]), ("question_answers", ["session", "number"]),
                         ("participant_history", ["handle"]), ("conversation_thread", ["post"]),
                         ("search_posts", ["q"]), ("search_everything", ["q"])]:
        form = soup(get(f"/chats/{name}")).find("form", class_="sql")
        assert form is not None, name
        assert sorted(i["name"] for i in form.find_all("input", type="text")) == sorted(params), name


def test_session_transcript_query(get, archive):
    first = archive.slugs[0]
    rows = rows_of(get, f"/chats/session_transcript.json?session={first}")
    assert len(rows) == 13
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)
    by_id = {r["post_id"]: r for r in rows}
    assert by_id["1850000000000000004"]["role"] == "question"
    assert by_id[LATE_ANSWER_ID]["question"] == 1 and by_id[LATE_ANSWER_ID]["role"] == "answer"
    # by numeric id as well as by slug
    sid = get(f"/chats/sessions.json?slug={first}&_shape=array").json()[0]["id"]
    assert rows_of(get, f"/chats/session_transcript.json?session={sid}") == rows
    assert rows_of(get, "/chats/session_transcript.json?session=no-such-session") == []
    html = soup(get(f"/chats/session_transcript?session={first}"))
    assert_inert(html)
    texts = [td.text for td in html.select("td.col-text")]
    assert any("<script>alert('xss')</script>" in t for t in texts)
    assert len([td for td in html.select("td.col-text") if td.find("a", class_="tag")]) == 13
    assert html.select("td.col-avatar_url img.ca-avatar[data-initials]")  # initials when the picture breaks


def test_question_answers_query_includes_late_answers(get, archive):
    rows = rows_of(get, f"/chats/question_answers.json?session={archive.slugs[0]}&number=1")
    assert [r["post_id"] for r in rows] == [
        "1850000000000000005", "1850000000000000006", HOSTILE_ID, LATE_ANSWER_ID]
    assert all(r["question"].startswith("Q1: Which metrics") for r in rows)
    two = rows_of(get, f"/chats/question_answers.json?session={archive.slugs[1]}&number=2")
    assert {r["author_handle"] for r in two} >= {"frank", "bob"}
    assert rows_of(get, f"/chats/question_answers.json?session={archive.slugs[0]}&number=9") == []


def test_participant_history_across_sessions(get, archive):
    rows = rows_of(get, "/chats/participant_history.json?handle=%40BOB")
    assert len(rows) == 6
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    assert {r["session"] for r in rows} == set(archive.slugs)
    sessions = rows_of(get, "/chats/participant_sessions.json?handle=bob")
    assert [(r["session"], r["posts"]) for r in sessions] == [(archive.slugs[1], 3), (archive.slugs[0], 3)]
    page = soup(get("/chats/participant_history?handle=bob"))
    assert [a["href"] for a in page.select("td.col-session a.ca-session")][:1] == [
        f"/chats/-/session/{archive.slugs[1]}"]


def test_conversation_thread_in_order(get):
    # From the reply: the thread root (carla's answer) and the reply, in order.
    rows = rows_of(get, "/chats/conversation_thread.json?post=1850000000000000007")
    assert [r["post_id"] for r in rows] == ["1850000000000000006", "1850000000000000007"]
    # From the root as well; a context parent (not tagged) starts its thread.
    assert [r["post_id"] for r in rows_of(get, "/chats/conversation_thread.json?post=1850000000000000006")] == [
        "1850000000000000006", "1850000000000000007"]
    rows = rows_of(get, "/chats/conversation_thread.json?post=1852000000000000007")
    assert [r["post_id"] for r in rows] == ["1849000000000000001", "1852000000000000007"]


def test_conversation_thread_survives_reply_cycles(tmp_path):
    path = tmp_path / "cycle.db"
    db = open_db(path, create=True)
    author = Author(id="1", platform="x", handle="a")
    save_posts(db, [
        Post(id="1", platform="x", source="t", created_at="2026-01-01T00:00:00.000Z", author=author,
             text="one", reply_to_id="2"),
        Post(id="2", platform="x", source="t", created_at="2026-01-01T00:01:00.000Z", author=author,
             text="two", reply_to_id="1"),
    ])
    db.conn.close()
    client = make_client(server.make_datasette(path))
    try:
        rows = rows_of(client, "/cycle/conversation_thread.json?post=2")
        assert [r["post_id"] for r in rows] == ["1", "2"]
    finally:
        client.loop.close()


def test_search_posts_query_returns_snippets_and_sessions(get, archive):
    rows = rows_of(get, "/chats/search_posts.json?q=retention")
    assert {r["post_id"] for r in rows} == {"1850000000000000005", "1852000000000000004"}
    assert all("\x02retention\x03" in r["snippet"] for r in rows)
    assert {r["session"] for r in rows} == set(archive.slugs)
    page = soup(get("/chats/search_posts?q=retention"))
    assert [m.text for m in page.select("td.col-snippet mark")] == ["retention"] * 3
    # FTS5 syntax is available…
    assert len(rows_of(get, "/chats/search_posts.json?q=retention%20NOT%20signups")) == 1
    # …and a syntax error is a clear 400, not a crash.
    bad = get("/chats/search_posts.json?q=%22retention")
    assert bad.status_code == 400 and bad.json()["error"]


def test_search_everything_query(get, archive):
    rows = rows_of(get, "/chats/search_everything.json?q=bob")
    kinds = [r["kind"] for r in rows]
    assert kinds == sorted(kinds, key=["session", "person", "post"].index)
    assert {r["handle"] for r in rows if r["kind"] == "person"} == {"bob"}
    # posts match on the author handle and on mentions of bob
    assert {r["post_id"] for r in rows if r["kind"] == "post"} >= {"1850000000000000005", MASTODON_ID}
    sessions = rows_of(get, "/chats/search_everything.json?q=%23growthchat")
    assert {r["session"] for r in sessions if r["kind"] == "session"} == set(archive.slugs)
    # Punctuation and quotes never break it.
    for q in ["what's  up?!", '"', "a AND (", "<script>"]:
        r = get("/chats/search_everything.json?_shape=array&q=" + quote(q, safe=""))
        assert r.status_code == 200, (q, r.text[:300])
    multi = rows_of(get, "/chats/search_everything.json?q=spreadsheet%20%20patience")
    assert [r["post_id"] for r in multi if r["kind"] == "post"] == ["1850000000000000010"]


# --------------------------------------------------------------------------
# Plugin pages


def test_search_page_finds_sessions_people_and_posts(get, archive):
    page = soup(get("/chats/-/search?q=retention"))
    assert_inert(page)
    posts = page.select("ol.ca-posts > li > article.post")
    assert len(posts) == 2
    assert [m.text for m in page.select("article.post .tx mark")] == ["retention"] * 3
    # each hit says which session it belongs to, and links to its row
    assert {a["href"] for a in page.select("article.post p.in a")} == {
        f"/chats/-/session/{s}" for s in archive.slugs}
    assert {a["href"] for a in page.select("article.post a.rw")} == {
        "/chats/posts/1850000000000000005", "/chats/posts/1852000000000000004"}
    # the same anchors as the recap gives these posts
    assert [li["id"] for li in page.select("ol.ca-posts > li")] == [
        anchor_for("1850000000000000005"), anchor_for("1852000000000000004")]
    assert "2 posts match" in page.find("p", class_="ca-count").text
    people = soup(get("/chats/-/search?q=bob"))
    assert [a.text for a in people.select("ul.ca-people a.ca-handle")] == ["@bob"]
    assert avatar_picture(people, people.select_one("ul.ca-people .av")) == "https://pbs.example.com/bob.jpg"
    sessions = soup(get("/chats/-/search?q=%23growthchat"))
    assert [a.text for a in sessions.select("section ul.ca-list a.ca-session")] == list(reversed(archive.slugs))


def test_people_search_in_memory_and_in_sql_agree(get, archive):
    # immutable: people from memory (casefold); --live: SQL LIKE
    live = make_client(server.make_datasette(archive.path, immutable=False))
    try:
        for q in ["bob", "BO", "masto", "Leeds", "ann", "nobody-at-all"]:
            mine = [a.text for a in soup(get(f"/chats/-/search?q={q}")).select("ul.ca-people a.ca-handle")]
            sql = [a.text for a in soup(live(f"/chats/-/search?q={q}")).select("ul.ca-people a.ca-handle")]
            assert mine == sql, q
        assert [a.text for a in soup(get("/chats/-/search?q=bo")).select("ul.ca-people a.ca-handle")] == ["@bob"]
    finally:
        live.loop.close()
    # beyond ASCII, only the in-memory search ignores case
    assert [a.text for a in soup(get("/chats/-/search?q=ZO%C3%8B")).select("ul.ca-people a.ca-handle")] == [
        "@zoe@masto.example"]
    index = [(f"{h}\n{n}", (h, "x", h, n, None, None))
             for h, n in (("bob", "bob"), ("bobby", "b"), ("abob", "x"), ("carl", "bob smith"))]
    assert [a.handle for a in pages.search_people(index, "Bob", 3)] == ["bob", "abob", "carl"]


def test_search_page_orders_and_pages(get, monkeypatch):
    newest = soup(get("/chats/-/search?q=retention&order=newest"))
    times = [t["datetime"] for t in newest.select("article.post time")]
    assert times == sorted(times, reverse=True)
    monkeypatch.setattr(pages, "SEARCH_PAGE_SIZE", 1)
    first = soup(get("/chats/-/search?q=retention&order=newest"))
    assert len(first.select("article.post")) == 1
    nxt = first.find("a", rel="next")["href"]
    assert parse_qs(urlparse(nxt).query) == {"q": ["retention"], "order": ["newest"], "page": ["2"]}
    second = soup(get(nxt))
    assert second.select("article.post time")[0]["datetime"] == times[1]
    assert second.find("a", rel="prev") and not second.find("a", rel="next")


def test_newest_first_plans_agree(get, monkeypatch):
    # Walking the time index and sorting all matches must give one order.
    decide = pages.newest_by_index
    orders = []
    for choice in (True, False):
        monkeypatch.setattr(pages, "newest_by_index", lambda *a, choice=choice: choice)
        page = soup(get("/chats/-/search?q=growthchat&order=newest"))
        orders.append([li["id"] for li in page.select("ol.ca-posts > li")])
    assert orders[0] == orders[1] and len(orders[0]) == 25  # all but the context post
    assert decide(50_000, 51, 1_000_000) is True  # common word: walk the index
    assert decide(300, 51, 1_000_000) is False  # rare word: sort the few matches
    assert decide(0, 51, 1_000_000) is False


def test_search_page_bad_syntax_and_hostile_queries(get):
    page = soup(get("/chats/-/search?q=%22retention"))
    assert "not valid FTS5 syntax" in page.find("p", class_="message-warning").text
    assert len(page.select("article.post")) == 2
    page = soup(get("/chats/-/search?q=%3Cscript%3Ealert(1)%3C/script%3E"))
    assert_inert(page)
    assert page.find("input", id="ca-q")["value"] == "<script>alert(1)</script>"
    hostile = soup(get("/chats/-/search?q=onerror"))
    assert_inert(hostile)
    assert "<img src=x onerror=alert(1)>" in hostile.find("article", class_="post").text
    none = soup(get("/chats/-/search?q=zebra"))
    assert "No posts match" in none.find("p", class_="ca-none").text
    empty = soup(get("/chats/-/search"))
    assert [a.text for a in empty.select("a.ca-session")] == sorted(
        [a.text for a in empty.select("a.ca-session")], reverse=True)
    assert get("/chats/-/search?q=x&page=abc").status_code == 200


def test_session_page_groups_the_transcript_by_question(get, archive):
    page = soup(get(f"/chats/-/session/{archive.slugs[0]}"))
    assert_inert(page)
    assert page.h1.text == "Measuring community health"
    # shown in the chat's own zone (the session says Europe/London)
    assert page.find("p", class_="ca-session-when").time.text.endswith(" BST")
    assert "2026-10-14 21:0" in page.find("p", class_="ca-session-when").time.text
    toc = [(a["href"], a.text) for a in page.select("nav.ca-toc a.ca-toc-link")]
    assert toc == [("#q1", "Q1 Which metrics tell you a community is healthy? #growthchat"),
                   ("#q2", "Q2 What tools do you use to measure it? #growthchat")]
    q1 = page.find("section", id="q1")
    question = q1.find("div", class_="ca-question")
    assert question["id"] == anchor_for("1850000000000000004")
    assert question.find("article", class_="is-q").find("div", class_="tx").text.startswith("Q1: Which metrics")
    answers = [a.parent["id"] for a in q1.select("article.is-a")]
    assert answers == [anchor_for(i) for i in
                       ["1850000000000000005", "1850000000000000006", HOSTILE_ID, LATE_ANSWER_ID]]
    assert all(a.select_one(".ph .ba").text == "A1" for a in q1.select("article.is-a"))
    # a reply to an answer stays with that question (posted before Q2), and links to it on the page
    reply = q1.find(id=anchor_for("1850000000000000007"))
    assert reply.select_one("p.re a")["href"] == "#" + anchor_for("1850000000000000006")
    q2 = page.find("section", id="q2")
    assert [a.parent["id"] for a in q2.select("article.is-a")] == [
        anchor_for("1850000000000000010"), anchor_for("1850000000000000012")]
    assert "4 answers" in q1.h2.text and "2 answers" in q2.h2.text
    before = page.find("section", id="before")
    assert len(before.select("article.post")) == 3
    hostile = page.find(id=anchor_for(HOSTILE_ID)).article
    assert "<script>alert('xss')</script>" in hostile.find("div", class_="tx").text
    assert hostile.find(class_="who").text.startswith("<b>Mallory</b>")
    assert avatar_picture(page, hostile.select_one(".av")) is None  # javascript: avatar refused: initials only
    bob = page.find(id=anchor_for("1850000000000000005")).article
    assert bob.find("a", class_="t")["href"] == "https://x.com/bob/status/1850000000000000005"
    assert avatar_picture(page, bob.select_one(".av")) == "https://pbs.example.com/bob.jpg"
    assert bob.find("a", class_="who")["href"] == "/chats/participant_history?handle=bob"
    assert bob.select_one(".tx a[rel~=ugc]")["href"] == "https://example.com/retention-guide"
    participants = [a.text for a in page.select("section.ca-participants a.ca-handle")]
    # most posts first, then by handle
    assert participants == ["@bob", "@carla", "@hostann", "@dave", "@eve", "@mallory"]


def test_session_page_by_id_and_missing_sessions(get, archive):
    sid = get(f"/chats/sessions.json?slug={archive.slugs[1]}&_shape=array").json()[0]["id"]
    page = soup(get(f"/chats/-/session/{sid}"))
    assert archive.slugs[1] in page.title.text
    masto = page.find(id=anchor_for(MASTODON_ID)).article
    assert masto.select_one("div.tx.h").decode_contents() == "<p>A2: first replies </p>"  # script and img dropped
    assert get("/chats/-/session/no-such-session").status_code == 404
    assert get("/nodb/-/session/1").status_code == 404


def test_internal_links_on_plugin_pages_resolve(get, archive):
    seen = set()
    for start in (f"/chats/-/session/{archive.slugs[0]}", "/chats/-/search?q=growthchat", "/"):
        for a in soup(get(start)).find_all("a", href=True):
            href = a["href"]
            if href.startswith(("http", "#")) or href in seen:
                continue
            seen.add(href)
            target = href if href.startswith("/") else "/" + href
            assert get(target).status_code == 200, (start, href)
    assert len(seen) > 15


def test_css_is_served_and_linked(get):
    css = get(plugin.CSS_PATH)
    assert css.headers["content-type"].startswith("text/css")
    # the plugin's page styles, then the recap's post styles (one stylesheet for the one post markup)
    from chatarchive.present.html import post_css

    assert css.text.endswith(post_css()) and ".ca-text { white-space: pre-line;" in css.text
    page = soup(get("/chats/posts"))
    assert any(link["href"].startswith(plugin.CSS_PATH) for link in page.find_all("link", rel="stylesheet"))


# --------------------------------------------------------------------------
# Safety and other databases


def test_live_mode_is_read_only_but_not_immutable(archive):
    client = make_client(server.make_datasette(archive.path, immutable=False))
    try:
        assert [d["is_mutable"] for d in client("/-/databases.json").json()] == [True]
        assert client(f"/chats/-/session/{archive.slugs[0]}").status_code == 200
        # Datasette refuses anything but SELECT and reads mutable files with mode=ro
        assert client("/chats.json?sql=insert+into+hashtags+(tag)+values+('x')").status_code == 400
    finally:
        client.loop.close()


def test_dotted_file_names_get_working_links(archive, tmp_path):
    import shutil

    path = tmp_path / "club.chats.db"
    shutil.copy(archive.path, path)
    client = make_client(server.make_datasette(path))
    try:
        index = soup(client("/"))
        link = index.find("a", string="Search sessions, people and posts")["href"]
        assert link == "club~2Echats/-/search"
        assert soup(client("/" + link + "?q=retention")).select("article.post")
        sessions = soup(client("/club~2Echats/sessions"))
        href = sessions.select("td.col-slug a.ca-session")[0]["href"]
        assert href.startswith("/club~2Echats/-/session/") and client(href).status_code == 200
    finally:
        client.loop.close()


def test_no_sql_turns_off_arbitrary_sql_only(archive):
    client = make_client(server.make_datasette(archive.path, allow_sql=False))
    try:
        assert client("/chats.json?sql=select+1").status_code == 403
        assert client("/chats/posts?_where=1%3D1").status_code == 403
        assert client("/chats/posts.json?_search=retention").status_code == 200
        assert client("/chats/search_posts.json?q=retention").status_code == 200
        assert client("/chats/-/search?q=retention").status_code == 200
        assert client(f"/chats/-/session/{archive.slugs[0]}").status_code == 200
    finally:
        client.loop.close()
    client = make_client(server.make_datasette(archive.path))
    try:
        assert client("/chats.json?sql=select+1").status_code == 200
    finally:
        client.loop.close()


def test_plugin_leaves_other_databases_alone(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("create table posts (id integer primary key, text text, session text)")
    conn.execute("insert into posts (text, session) values ('hi @bob #tag https://example.com', 'x')")
    conn.commit()
    conn.close()
    from datasette.app import Datasette

    server.ensure_plugin_registered()
    client = make_client(Datasette([str(path)]))
    try:
        page = soup(client("/other/posts"))
        assert not page.select("a.mention, a.tag, a.ca-session, a[rel~=ugc]")
        assert page.find("td", class_="col-text").text.strip() == "hi @bob #tag https://example.com"
        assert client("/other/-/search").status_code == 404
        assert not soup(client("/")).find("a", href="/other/-/search")
    finally:
        client.loop.close()


def test_recap_templates_never_replace_datasette_templates(tmp_path):
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader

    recap = tmp_path / "templates"
    recap.mkdir()
    (recap / "base.html").write_text("recap base")
    env = Environment(loader=ChoiceLoader([FileSystemLoader([str(recap), str(archives.TEMPLATES_DIR)])]))
    assert env.get_template("base.html").render() == "recap base"
    plugin.fix_template_loader(env, recap)
    assert env.loader.loaders[0].searchpath == [str(archives.TEMPLATES_DIR)]


# --------------------------------------------------------------------------
# Rendering helpers


@pytest.mark.parametrize("text, html", [
    # Cells get present.text.linkify, the recap's (one copy): URLs through urls.safe_url
    # (percent-encoded), rel="nofollow ugc", line breaks left to CSS (white-space: pre-line).
    ("see https://example.com/a.", 'see <a href="https://example.com/a" rel="nofollow ugc">example.com/a</a>.'),
    ("(https://en.wikipedia.org/wiki/Foo_(bar))", '(<a href="https://en.wikipedia.org/wiki/Foo_%28bar%29" rel="nofollow ugc">en.wikipedia.org/wiki/Foo_(bar)</a>)'),
    ("mail bob@example.com", "mail bob@example.com"),
    ("#1 and #2024 are not tags", "#1 and #2024 are not tags"),
    ("javascript:alert(1)", "javascript:alert(1)"),
    ("a\nb & <c>", "a\nb &amp; &lt;c&gt;"),
    ('https://x.example/"onmouseover="alert(1)', '<a href="https://x.example/" rel="nofollow ugc">x.example/</a>&#34;onmouseover=&#34;alert(1)'),
])
def test_linkify_plain(text, html):
    assert str(linkify(text)) == html


def test_linkify_mentions_and_tags():
    html = str(linkify(
        "hi @alice, @bob@masto.example and @carol. #Café #growth_chat @jules.example.org.",
        lambda h: f"/p?h={h}", lambda t: f"/t?t={t}"))
    assert html == (
        'hi <a class="mention" href="/p?h=alice">@alice</a>, '
        '<a class="mention" href="/p?h=bob@masto.example">@bob@masto.example</a> and '
        '<a class="mention" href="/p?h=carol">@carol</a>. '
        '<a class="tag" href="/t?t=Café">#Café</a> <a class="tag" href="/t?t=growth_chat">#growth_chat</a> '
        '<a class="mention" href="/p?h=jules.example.org">@jules.example.org</a>.'
    )
    long = linkify("https://example.com/" + "x" * 100)
    assert "…" in long and long.count("x") > 100  # shown shortened, href complete


def test_highlight_avatar_and_initials():
    assert str(highlight("a \x02<b>\x03 c")) == "a <mark>&lt;b&gt;</mark> c"
    assert "img" in plugin.avatar_cell("https://e.example/a.png", "bob")
    assert "img" not in plugin.avatar_cell("javascript:alert(1)", "bob")
    assert 'src="https://e.example/a.png%22%20onerror=%22x"' in plugin.avatar_cell('https://e.example/a.png" onerror="x', "bob")
    assert initials("<b>Mallory Q</b>", "bob") == "BB"  # the name's first and last words
    assert initials(None, "zoe@masto.example") == "ZE"
    assert initials(None, "!!") == "?"


# --------------------------------------------------------------------------
# CLI


def test_cli_metadata_out_matches_what_serve_uses(runner, archive, tmp_path):
    out = tmp_path / "metadata.json"
    result = runner.invoke(cli, ["serve", str(archive.path), "--no-sql", "--metadata-out", str(out),
                                 "--setting", "default_page_size", "20"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written == metadata.build_metadata(archive.path, allow_sql=False)
    assert f"datasette serve -i {archive.path} -m {out}" in result.output
    assert "--setting default_page_size 20" in result.output
    assert "--setting suggest_facets off" in result.output
    stdout = runner.invoke(cli, ["serve", str(archive.path), "--metadata-out", "-"])
    assert json.loads(stdout.stdout) == metadata.build_metadata(archive.path)


def test_datasette_itself_serves_the_same_site_from_the_metadata_file(runner, archive, tmp_path):
    # `datasette serve -i DB -m FILE` with the plugin from the entry point.
    from datasette.cli import cli as datasette_cli

    out = tmp_path / "metadata.json"
    runner.invoke(cli, ["serve", str(archive.path), "--metadata-out", str(out)], catch_exceptions=False)
    result = runner.invoke(datasette_cli, ["serve", "-i", str(archive.path), "-m", str(out),
                                           "--get", "/chats/-/search?q=retention"])
    assert result.exit_code == 0, result.output
    assert "<mark>retention</mark>" in result.output
    result = runner.invoke(datasette_cli, ["serve", "-i", str(archive.path), "-m", str(out),
                                           "--get", f"/chats/question_answers.json?session={archive.slugs[0]}&number=2&_shape=array"])
    assert [r["post_id"] for r in json.loads(result.output)] == ["1850000000000000010", "1850000000000000012"]


@pytest.mark.parametrize("setup, args, message", [
    ("missing", [], "no such archive"),
    ("text", [], "not an SQLite database"),
    ("foreign", [], "not a chatarchive archive"),
    ("archive", ["--setting", "no_such_setting", "1"], "Unknown Datasette setting"),
    ("archive", ["--setting", "default_page_size", "many"], "takes a number"),
])
def test_cli_serve_errors_are_one_line(runner, archive, tmp_path, setup, args, message):
    path = tmp_path / "x.db"
    if setup == "text":
        path.write_text("not a database")
    elif setup == "foreign":
        sqlite3.connect(path).execute("create table t (x)").connection.commit()
    elif setup == "archive":
        path = archive.path
    result = runner.invoke(cli, ["serve", str(path), "--port", "0"] + args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    if setup == "foreign":  # never migrated into a chatarchive
        names = {r[0] for r in sqlite3.connect(path).execute("select name from sqlite_master")}
        assert names == {"t"}


def test_cli_serve_port_in_use(runner, archive):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(cli, ["serve", str(archive.path), "--port", str(port)])
    assert result.exit_code == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.output


def test_serve_help_has_an_example(runner):
    result = runner.invoke(cli, ["serve", "--help"])
    assert "chatarchive serve chats.db" in result.output and "--no-sql" in result.output


# --------------------------------------------------------------------------
# The real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """`chatarchive serve` in a subprocess on a free loopback port; returns
    once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from chatarchive.cli import cli; cli()", "serve", str(db_path),
         "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read()}")
        try:
            if httpx.get(f"{base}/-/versions.json", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("server did not start")
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        output, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, output


def test_real_server_over_http_and_ctrl_c(archive):
    proc, base = start_server(archive.path, "--no-sql")
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            search = http.get("/chats/-/search", params={"q": "retention"})
            assert search.status_code == 200
            assert BeautifulSoup(search.text, "html.parser").select("article.post mark")
            session = http.get(f"/chats/-/session/{archive.slugs[0]}")
            assert session.status_code == 200 and 'id="q1"' in session.text
            assert http.get("/chats.json", params={"sql": "select 1"}).status_code == 403
            # a 404 is one log line, never a traceback with the request's headers
            assert http.get("/robots.txt", headers={"cookie": "secret=hunter2"}).status_code == 404
    finally:
        code, output = stop_server(proc)
    assert code == 0, output
    assert "Serving" in output and f"{base}/" in output and "Stopped." in output
    assert "Traceback" not in output and "hunter2" not in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(base, timeout=1)


# --------------------------------------------------------------------------
# Security headers (issue 14: CSP and nosniff without breaking Datasette)


@pytest.mark.parametrize("path", [
    "/", "/chats", "/chats/posts", f"/chats/posts/{HOSTILE_ID}", "/chats?sql=select+1",
    "/chats/session_transcript?session=growthchat-2026-10-14", "/chats/-/search?q=retention",
    "/chats/-/session/growthchat-2026-10-14", "/chats/posts.json", "/-/chatarchive/chatarchive.css",
    "/-/static/app.css", "/robots.txt",
])
def test_every_response_says_nosniff_and_pages_carry_a_csp(get, path):
    r = get(path)
    assert r.headers["x-content-type-options"] == "nosniff", path
    if r.headers.get("content-type", "").startswith("text/html"):
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "object-src 'none'" in csp and "'unsafe-inline'" not in csp.split(
            "script-src")[1].split(";")[0], csp
        # every inline script Datasette wrote into the page is allowed by its hash, and nothing else
        allowed = set(re.findall(r"'(sha256-[^']+)'", csp))
        for body in re.findall(r"<script>(.*?)</script>", r.text, re.S):
            digest = "sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            assert digest in allowed, (path, body[:80])
    else:
        assert "content-security-policy" not in r.headers, path


def test_other_datasettes_get_no_headers_from_the_plugin(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("create table t (x)")
    conn.commit()
    conn.close()
    from datasette.app import Datasette

    server.ensure_plugin_registered()
    client = make_client(Datasette(files=[str(other)]))
    try:
        r = client("/other/t")
        assert r.status_code == 200 and "content-security-policy" not in r.headers
    finally:
        client.loop.close()
