"""Every output says the same true thing (issue 10's view items): one post
count (C4), the lead-in as "Before the chat" (C5), honest first-timers (C6),
expanded links instead of t.co (C3), and nothing fails on odd stored values
(C1, C2, C7) — checked across the recap site, `show`, `sessions list`, the
Markdown/JSON/JSONL/CSV exports and the Datasette pages.

The archive is tests/fixtures/recap/viewschat*.jsonl (made by
make_views_fixtures.py there): real twarc2 and v1.1 shapes with t.co links
in the text, untagged context posts, announcements hours before the chat and
a straggler after it, a newcomer month after a first month."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from test_serve import make_client

from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.analysis.stats import session_stats
from chatarchive.api import Archive
from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.datasette import server as ds_server
from chatarchive.export import export_session
from chatarchive.recap.site import build_site

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FIXTURES = Path(__file__).parent / "fixtures" / "recap"
FILES = [FIXTURES / "viewschat.jsonl", FIXTURES / "viewschat-v1.jsonl"]
ZONE = "America/New_York"
OCT, NOV = "viewschat-2026-10-14", "viewschat-2026-11-11"
LONG_URL = ("https://www.example.org/community/handbook/2026/chapter-7-measuring-what-matters"
            "?utm_source=twitter&utm_medium=social&utm_campaign=viewschat")
UNWOUND_URL = "https://handbook.example.org/chapter-7-measuring-what-matters"


def make_archive(path: Path) -> Path:
    db = open_db(path, create=True)
    results = import_files(db, [str(f) for f in FILES])
    assert all(r.error is None and r.added for r in results), results
    analyse_archive(db, hashtags=["ViewsChat"], tz=ZONE, hosts=["viewshost"])
    db.conn.close()
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("views")
    path = make_archive(tmp / "views.db")
    site = tmp / "site"
    build_site(open_db(path), site)
    return SimpleNamespace(path=path, site=site, tmp=tmp)


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text("utf-8"), "html.parser")


def export(path: Path, slug: str, fmt: str) -> str:
    buf = io.StringIO()
    export_session(open_db(path), slug, fmt, buf)
    return buf.getvalue()


def member_counts(path: Path, slug: str) -> tuple[int, int]:
    """(posts, matched posts) of a session as session_posts holds them."""
    db = open_db(path)
    return db.execute(
        """SELECT count(*), sum(p.matched) FROM session_posts sp JOIN posts p ON p.id = sp.post_id
           JOIN sessions s ON s.id = sp.session_id WHERE s.slug = ?""", [slug]).fetchone()


@pytest.fixture(scope="module")
def datasette(archive):
    client = make_client(ds_server.make_datasette(archive.path))
    yield client
    client.loop.close()


# --------------------------------------------------------------------------
# C4: one count


def test_one_post_count_everywhere(archive, runner, datasette):
    counts = {slug: member_counts(archive.path, slug) for slug in (OCT, NOV)}
    # the fixture has context posts: "all posts" and "tagged posts" differ
    assert any(matched < n for n, matched in counts.values()), counts
    listed = {s["slug"]: s for s in json.loads(runner.invoke(cli, ["sessions", "list", str(archive.path), "--json"]).output)}
    index = soup(archive.site / "index.html")
    tag_page = soup(archive.site / "hashtags" / "viewschat.html")
    for slug, (n, matched) in counts.items():
        assert Archive(archive.path).session(slug).posts == n == listed[slug]["posts"]
        assert session_stats(open_db(archive.path), slug)["posts"] == n
        shown = runner.invoke(cli, ["show", str(archive.path), slug]).output
        assert f"{n} posts ({matched} matched, {n - matched} context)" in " ".join(shown.split())
        # the recap: description, stat card, tab, transcript, footer
        page = soup(archive.site / "sessions" / f"{slug}.html")
        assert f": {n} posts by " in page.find("meta", attrs={"name": "description"})["content"]
        cards = {d.dt.get_text(): d.dd.get_text(strip=True) for d in page.select("dl.stats > div")}
        assert cards["Posts"] == str(n)
        # and the people: the card, the People list, `sessions list` and the statistics agree too
        people = session_stats(open_db(archive.path), slug)["participants"]
        assert cards["People"] == str(people) == str(len(page.select("#people ul.people > li")))
        assert listed[slug]["participants"] == people
        tab = page.select_one('.toc a[href="#transcript"] small').get_text()
        assert tab == str(n) and len(page.select("#transcript ol.stream > li[id]")) == n
        assert page.select_one("#transcript .sh p").get_text().startswith(f"{n} posts")
        footer = page.select_one("footer").get_text(" ", strip=True)
        assert f"{n} posts: {matched} tagged #ViewsChat" in footer
        # the index and the hashtag page
        for doc in (index, tag_page):
            row = next(li for li in doc.select("ol.sessions > li") if slug in li.select_one(".si a")["href"])
            assert f"{n} posts" in row.select_one(".chips").get_text(" ", strip=True)
        # the exports
        md = export(archive.path, slug, "md")
        assert re.search(rf"^{n} posts · ", md, re.M), md[:400]
        data = json.loads(export(archive.path, slug, "json"))
        assert data["stats"]["posts"] == n == len(data["posts"])
        assert len(export(archive.path, slug, "jsonl").splitlines()) == n
        assert len(list(csv.DictReader(io.StringIO(export(archive.path, slug, "csv"))))) == n
        # Datasette: the session page and the search page's recent sessions
        ds_page = BeautifulSoup(datasette(f"/views/-/session/{slug}").text, "html.parser")
        assert ds_page.select_one(".ca-summary strong").get_text() == str(n)
        recent = datasette("/views/-/search").text
        assert re.search(rf"{slug}</a>.*?, {n} posts", recent, re.S)
    total = sum(n for n, _ in counts.values())
    stat = {d.dt.get_text(): d.dd.get_text(strip=True) for d in tag_page.select("dl.stats > div")}
    assert stat["Posts"] == str(total)
    assert {d.dt.get_text(): d.dd.get_text(strip=True) for d in index.select("dl.stats > div")}["Posts"] == str(total)


# --------------------------------------------------------------------------
# C5: the lead-in


def lead_in_ids(path: Path, slug: str) -> list[str]:
    db = open_db(path)
    return [r[0] for r in db.execute(
        """SELECT p.id FROM session_posts sp JOIN posts p ON p.id = sp.post_id JOIN sessions s ON s.id = sp.session_id
           WHERE s.slug = ? AND p.created_at < s.start ORDER BY p.created_at, p.id""", [slug])]


def test_before_the_chat_in_every_output(archive, tmp_path, datasette):
    """The view contract on its own: members posted before the core
    (``sessions.start``) are "Before the chat", apart from the Q&A; the
    transcript still holds every post.  The core is set here to the welcome
    post, so the test does not depend on how the analysis bounds it."""
    path = tmp_path / "lead.db"
    shutil.copy(archive.path, path)
    db = open_db(path)
    welcome = db.execute("SELECT created_at FROM posts WHERE text LIKE 'Welcome! Introduce%'").fetchone()[0]
    db.execute("UPDATE sessions SET start = ? WHERE slug = ?", [welcome, OCT])
    early = lead_in_ids(path, OCT)
    texts = dict(db.execute("SELECT id, text FROM posts"))
    assert len(early) >= 3 and any(texts[i].startswith("Starts in 25 minutes") for i in early)
    out = tmp_path / "site"
    build_site(db, out, [OCT], search=False)
    page = soup(out / "sessions" / f"{OCT}.html")
    section = page.select_one("section#before-chat")
    assert section is not None and section.h2.get_text() == "Before the chat"
    shown = [a["href"].rsplit("/", 1)[-1] for a in section.select("article.post a.t")]
    assert shown == early
    assert page.select_one('.toc a[href="#before-chat"] small').get_text() == str(len(early))
    # apart from the Q&A, which comes after it; every post is still in the transcript
    assert section.find_next("section")["id"] == "qa"
    qa_posts = {a["href"].rsplit("/", 1)[-1] for a in page.select("#qa article.post a.t")}
    assert not qa_posts & set(early)
    transcript = [li["id"] for li in page.select("#transcript ol.stream > li[id]")]
    assert len(transcript) == member_counts(path, OCT)[0] and all(f"p-{i}" in transcript for i in early)
    # the Markdown export and the Datasette page group them the same way
    md = MarkdownIt("commonmark").render(export(path, OCT, "md"))
    doc = BeautifulSoup(md, "html.parser")
    heads = [h.get_text() for h in doc.find_all("h2")]
    assert heads[0] == "Before the chat" and heads[1].startswith("Q1")
    listed = doc.find_all("h2")[0].find_next("ul").get_text()
    assert all(texts[i].split(" https://")[0].split(" #")[0][:20] in listed for i in early)
    client = make_client(ds_server.make_datasette(path))
    try:
        ds = BeautifulSoup(client(f"/lead/-/session/{OCT}").text, "html.parser")
        group = ds.select_one("section#before-chat")
        assert group is not None and group.h2.get_text() == "Before the chat"
        assert [li["id"] for li in group.select("ol.stream > li")] == [f"p-{i}" for i in early]
    finally:
        client.loop.close()


def test_the_analysis_lead_in_reaches_the_morning_announcement(archive):
    """End to end: the host's announcement four hours before the 1 PM chat is
    "Before the chat" on the page (C5: the analysis' lead-in), the straggler
    an hour after the chat is in its transcript, and the time the page gives
    the session is the core's."""
    page = soup(archive.site / "sessions" / f"{OCT}.html")
    before = page.select_one("section#before-chat").get_text(" ", strip=True)
    assert "Join us today at 1 PM Eastern" in before
    assert "Late A2: the support inbox" in page.select_one("#transcript").get_text(" ", strip=True)
    db = open_db(archive.path)
    start = db.execute("SELECT start FROM sessions WHERE slug = ?", [OCT]).fetchone()[0]
    assert page.select_one(".when time")["datetime"] == start
    assert len(page.select("#before-chat article.post")) == len(lead_in_ids(archive.path, OCT))


# --------------------------------------------------------------------------
# C6: first-timers


def test_first_timers_only_when_known_and_never_the_host(archive, runner):
    first = soup(archive.site / "sessions" / f"{OCT}.html")
    second = soup(archive.site / "sessions" / f"{NOV}.html")
    st_first, st_second = (session_stats(open_db(archive.path), s) for s in (OCT, NOV))
    assert st_first["first_timers"] is None and st_first["returning"] is None
    # the hashtag's first archived session: no card, no badge, no count anywhere
    assert "First time" not in first.select_one("dl.stats").get_text()
    assert not first.select("#people .bn")
    assert "first time" not in export(archive.path, OCT, "md").lower()
    assert "first time" not in runner.invoke(cli, ["show", str(archive.path), OCT]).output.lower()
    # a month later the newcomers are known, in this archive's words; the host never
    assert sorted(st_second["first_timers"]) == ["eve_new", "fay_new"]
    cards = {d.dt.get_text(): d.dd.get_text(strip=True) for d in second.select("dl.stats > div")}
    assert cards["First time in this archive"] == "2"
    badged = {li.select_one("small").get_text().split(" ·")[0].lstrip("@")
              for li in second.select("#people li") if li.select_one(".bn")}
    assert badged == {"eve_new", "fay_new"}
    assert all(li.select_one(".bn").get_text() == "first time in this archive"
               for li in second.select("#people li") if li.select_one(".bn"))
    host = next(li for li in second.select("#people li") if "@viewshost" in li.get_text())
    assert host.select_one(".bh") and not host.select_one(".bn")
    md = export(archive.path, NOV, "md")
    assert re.search(r"@eve\\_new\]\([^)]*\) \(first time in this archive\)", md), md[-600:]
    assert re.search(r"@viewshost\]\([^)]*\) \(host\)", md) and not re.search(r"@viewshost\][^,]*first", md)
    assert "(2 here for the first time in this archive)" in md
    rows = {li.select_one(".si a")["href"].rsplit("/", 1)[-1]: li.select_one(".chips").get_text(" ", strip=True)
            for li in soup(archive.site / "index.html").select("ol.sessions > li")}
    assert "2 first time in this archive" in rows[f"{NOV}.html"] and "first time" not in rows[f"{OCT}.html"]
    bars = soup(archive.site / "hashtags" / "viewschat.html").select("figure.growth a")
    assert "first time" not in bars[0].title.get_text() and not bars[0].select("rect.new")
    assert "2 here for the first time in this archive" in bars[1].title.get_text()
    assert json.loads(export(archive.path, OCT, "json"))["stats"]["first_timers"] is None


# --------------------------------------------------------------------------
# C3: expanded links


def every_output(path: Path, site: Path, runner) -> dict[str, str]:
    """Every text a user sees or publishes of the archive."""
    out = {p.relative_to(site).as_posix(): p.read_text("utf-8") for p in site.rglob("*.html")
           if "pagefind" not in p.parts}
    for slug in (OCT, NOV):
        for fmt in ("md", "json", "jsonl", "csv"):
            out[f"export {slug}.{fmt}"] = export(path, slug, fmt)
        out[f"show {slug}"] = runner.invoke(cli, ["show", str(path), slug]).output
    out["search"] = runner.invoke(cli, ["search", str(path), "handbook"]).output
    out["search --json"] = runner.invoke(cli, ["search", str(path), "handbook", "--json"]).output
    client = make_client(ds_server.make_datasette(path))
    try:
        db = open_db(path)
        ids = [r[0] for r in db.execute("SELECT post_id FROM post_links")]
        pages = [f"/views/-/session/{OCT}", f"/views/-/session/{NOV}", "/views/-/search?q=handbook",
                 "/views/posts", "/views/posts?_search=handbook", "/views/posts.json?_shape=array&_size=max",
                 f"/views/session_transcript?session={OCT}", f"/views/session_transcript?session={NOV}",
                 "/views/posts_in_sessions", "/views/links", *[f"/views/posts/{i}" for i in ids]]
        for page in pages:
            r = client(page)
            assert r.status_code == 200, (page, r.status_code)
            out[f"datasette {page}"] = r.text
    finally:
        client.loop.close()
    return out


def test_no_t_co_in_any_output(archive, runner):
    """The file held every t.co link's expansion: no output shows t.co, in
    an href or as text (C3: stored expanded at import; shown as stored)."""
    outputs = every_output(archive.path, archive.site, runner)
    assert len(outputs) > 20
    leaks = {name: re.findall(r"t\.co/\w+", text)[:3] for name, text in outputs.items() if "t.co/" in text}
    assert leaks == {}
    # the long expanded URL is linked whole and shown shortened
    page = soup(archive.site / "sessions" / f"{OCT}.html")
    links = [a for a in page.select("#transcript .tx a") if a["href"] in (LONG_URL, UNWOUND_URL)]
    assert links, [a["href"] for a in page.select("#transcript .tx a")]
    for a in links:
        assert len(a.get_text()) <= 48 and a["href"].split("://")[1].startswith(a.get_text().rstrip("…"))
    md = BeautifulSoup(MarkdownIt("commonmark").render(export(archive.path, OCT, "md")), "html.parser")
    md_links = [a for a in md.find_all("a") if a["href"] in (LONG_URL, UNWOUND_URL)]
    assert md_links and all(len(a.get_text()) <= 48 for a in md_links)


# --------------------------------------------------------------------------
# C1, C2, C7: odd stored values


@pytest.fixture
def odd_archive(archive, tmp_path) -> Path:
    """The archive after everything the fuzzer found could be stored: times
    NULL, at year 1 and 9999 and not in the fixed form; counts as text;
    handles as numbers; bytes in a text column; a deleted post (its text
    left in the row, as a partial deletion would); odd session rows."""
    path = tmp_path / "odd.db"
    shutil.copy(archive.path, path)
    db = open_db(path)
    ids = [r[0] for r in db.execute(
        """SELECT p.id FROM session_posts sp JOIN posts p ON p.id = sp.post_id JOIN sessions s
           ON s.id = sp.session_id WHERE s.slug = ? ORDER BY p.created_at""", [NOV])]
    db.execute("UPDATE posts SET created_at = NULL, text = 'NULL TIME POST' WHERE id = ?", [ids[3]])
    db.execute("UPDATE posts SET created_at = '0001-01-01T00:00:00.000Z' WHERE id = ?", [ids[4]])
    db.execute("UPDATE posts SET created_at = '9999-12-31T23:59:59.999Z' WHERE id = ?", [ids[5]])
    db.execute("UPDATE posts SET created_at = '1-01-01T00:00:00Z' WHERE id = ?", [ids[6]])
    db.execute("UPDATE posts SET like_count = 'lots', repost_count = 1e30, reply_count = -5 WHERE id = ?", [ids[7]])
    db.execute("UPDATE posts SET author_handle = 12345, author_name = 6.5 WHERE id = ?", [ids[8]])
    db.execute("UPDATE posts SET text = CAST(X'41ff3a20e282ac' AS BLOB) WHERE id = ?", [ids[9]])
    db.execute("UPDATE posts SET deleted_at = '2026-11-20T00:00:00.000Z', text = 'SECRET DELETED WORDS' "
               "WHERE id = ?", [ids[10]])
    db.execute("UPDATE sessions SET timezone = 'Pacific/Kiritimati', title = 'Odd \x1b[2J title', "
               "hosts = 'not json', platforms = '[1, null]' WHERE slug = ?", [NOV])
    db.execute("UPDATE sessions SET timezone = 'No/Such_Zone' WHERE slug = ?", [OCT])
    # a session at the edges of the calendar (stored before times were checked)
    db.execute("UPDATE sessions SET start = '9999-12-31T23:00:00.000Z', \"end\" = '9999-12-31T23:59:59.999Z' "
               "WHERE slug = ?", [NOV])
    db.execute("UPDATE sessions SET start = '0001-01-01T00:00:00.000Z', window_start = NULL WHERE slug = ?", [OCT])
    db.conn.close()
    return path


def test_odd_stored_values_never_break_an_output(odd_archive, runner, tmp_path):
    out = tmp_path / "site"
    result = build_site(open_db(odd_archive), out, search=False)
    assert result.sessions == 2
    page = soup(out / "sessions" / f"{NOV}.html")
    # the post whose time is unknown is last, and says so
    assert page.select("#transcript li.tick h3")[-1].get_text() == "Time unknown"
    last = page.select("#transcript ol.stream > li[id]")[-1]
    assert "NULL TIME POST" in last.get_text() and "time unknown" in last.get_text()
    # a tombstone: shown as deleted, nothing of what it said, anywhere
    deleted = page.select("article.del")
    assert deleted and all("This post was deleted." in a.get_text() for a in deleted)
    for name, text in [("recap", (out / "sessions" / f"{NOV}.html").read_text()),
                       *[(fmt, export(odd_archive, NOV, fmt)) for fmt in ("md", "json", "jsonl", "csv")]]:
        assert "SECRET DELETED WORDS" not in text, name
        assert "\x1b" not in text, name
    for args in (["show", str(odd_archive), NOV], ["show", str(odd_archive), OCT, "--json"],
                 ["sessions", "list", str(odd_archive)], ["sessions", "list", str(odd_archive), "--json"],
                 ["export", str(odd_archive), NOV, "--format", "md"], ["search", str(odd_archive), "chat"]):
        r = runner.invoke(cli, args, catch_exceptions=False)
        assert r.exit_code == 0, (args, r.output)
    client = make_client(ds_server.make_datasette(odd_archive))
    try:
        for path in (f"/odd/-/session/{NOV}", f"/odd/-/session/{OCT}", "/odd/-/search?q=chat", "/odd/posts",
                     f"/odd/session_transcript?session={NOV}", "/odd/-/search"):
            r = client(path)
            assert r.status_code == 200, (path, r.text[:300])
        session = client(f"/odd/-/session/{NOV}").text
        assert "SECRET DELETED WORDS" not in session and "This post was deleted." in session
        assert "time unknown" in session
    finally:
        client.loop.close()


def test_deleted_posts_are_tombstones_in_every_output(archive, tmp_path, runner):
    """C7 with the archive's own deletion (archive.deletion.delete_posts): a
    deleted question and a deleted answer with replies keep their places (the
    thread stays whole) and show "deleted", with nothing of what they said."""
    from chatarchive.archive.deletion import delete_posts

    path = tmp_path / "deleted.db"
    shutil.copy(archive.path, path)
    db = open_db(path)
    q1 = db.execute("SELECT id FROM posts WHERE text LIKE 'Q1: What is the one number%'").fetchone()[0]
    lurkers = db.execute("SELECT id FROM posts WHERE text LIKE 'Anyone tried tracking lurkers%'").fetchone()[0]
    replies = [r[0] for r in db.execute("SELECT id FROM posts WHERE reply_to_id = ?", [lurkers])]
    assert replies
    delete_posts(db, [q1, lurkers])
    db.conn.close()
    out = tmp_path / "site"
    build_site(open_db(path), out, search=False)
    gone = ("What is the one number", "tracking lurkers")
    texts = {"recap": (out / "sessions" / f"{OCT}.html").read_text("utf-8"),
             **{fmt: export(path, OCT, fmt) for fmt in ("md", "json", "jsonl", "csv")},
             "show": runner.invoke(cli, ["show", str(path), OCT]).output}
    client = make_client(ds_server.make_datasette(path))
    try:
        texts["datasette"] = client(f"/deleted/-/session/{OCT}").text
    finally:
        client.loop.close()
    for name, text in texts.items():
        assert not any(g in text for g in gone), name
    page = soup(out / "sessions" / f"{OCT}.html")
    assert "This post was deleted." in page.select_one("#q1").get_text()
    tomb = page.select_one(f"#transcript li#p-{lurkers}")
    assert tomb.select_one("article.del") and "deleted" in tomb.get_text()
    # the replies to it are still in its thread, below it
    conv = next(c for c in page.select("#conversations .conv") if "This post was deleted." in c.get_text())
    assert [li["class"][0] for li in conv.select("ol.tree > li")][:len(replies) + 1] == ["d0"] + ["d1"] * len(replies)
    records = [json.loads(line) for line in export(path, OCT, "jsonl").splitlines()]
    dead = next(r for r in records if r["id"] == lurkers)
    assert dead["deleted_at"] and dead["text"] == "" and dead["author_handle"] is None
