"""The static recap site (chatarchive/recap/, templates/): structure checked
with BeautifulSoup, safety of everything that comes from posts, re-runs that
rewrite only what changed, template overrides, --download-media against a
local server, and the site without Pagefind.  The browser checks are in
test_recap_browser.py; the same hostile posts through every output are in
test_hostile_outputs.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from recap_helpers import (
    CHAT,
    FIRST,
    HOSTILE,
    HOSTILE_SLUG,
    SECOND,
    MediaServer,
    point_media_at,
    recap_archive,
)

from chatarchive.analysis.stats import hashtag_stats, session_stats
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.present.text import linkify
from chatarchive.present.views import flatten_tree, load_session
from chatarchive.recap import media, search_index
from chatarchive.recap.site import build_site
from chatarchive.recap.sitemap import slugify
from chatarchive.safety import sanitize_html
from chatarchive.urls import safe_url

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("recap") / "chats.db"
    recap_archive(path)
    return path


@pytest.fixture(scope="module")
def site(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    result = build_site(open_db(archive, create=True), out)
    return out, result


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text("utf-8"), "html.parser")


def copy_archive(archive: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy.db"
    shutil.copy(archive, dest)
    return dest


def pages(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.html") if "pagefind" not in p.parts)


# --------------------------------------------------------------------------
# Which pages


def test_site_has_every_page(site, archive):
    out, result = site
    db = open_db(archive, create=True)
    handles = {r[0] for r in db.execute(
        "SELECT DISTINCT p.author_handle FROM session_posts sp JOIN posts p ON p.id = sp.post_id")}
    assert (out / "index.html").is_file() and (out / "search.html").is_file() and (out / "about.html").is_file()
    assert sorted(p.name for p in (out / "sessions").iterdir()) == [f"{FIRST}.html", f"{SECOND}.html"]
    assert [p.name for p in (out / "hashtags").iterdir()] == ["recapchat.html"]
    assert sorted(p.stem for p in (out / "people").iterdir()) == sorted(handles)
    assert [p.name for p in (out / "community").iterdir()] == ["recapchat.html"]
    assert result.pages == len(pages(out)) == 2 + 2 + 1 + 1 + 1 + len(handles)  # ... about.html, people
    assert result.sessions == 2 and result.search_ok, result.search
    assert (out / "pagefind" / "pagefind-ui.js").is_file()


def test_index_lists_sessions_newest_first_with_numbers(site, archive):
    out, _ = site
    doc = soup(out / "index.html")
    rows = doc.select("ol.sessions > li")
    links = [li.select_one(".si a")["href"] for li in rows]
    assert links == [f"sessions/{SECOND}.html", f"sessions/{FIRST}.html"]
    db = open_db(archive, create=True)
    for li, slug in zip(rows, (SECOND, FIRST)):
        st = session_stats(db, slug)
        chips = li.select_one(".chips").get_text(" ", strip=True)
        assert f"{st['posts']} posts" in chips
        assert f"{st['participants']} people" in chips
        assert f"{len(st['questions'])} questions" in chips
    assert doc.title.get_text() == "#RecapChat archive"


# --------------------------------------------------------------------------
# The session page


@pytest.fixture(scope="module")
def session_doc(site):
    out, _ = site
    return soup(out / "sessions" / f"{SECOND}.html")


def test_session_header_and_summary(session_doc, archive):
    st = session_stats(open_db(archive, create=True), SECOND)
    h1 = session_doc.find_all("h1")
    assert len(h1) == 1 and h1[0].get_text() == "#RecapChat · 18 November 2026"
    when = session_doc.select_one(".when").get_text(" ", strip=True)
    # 01:00–01:56Z on the 19th is 20:00–20:56 in New York (EST) on the 18th
    assert "Wednesday, 18 November 2026" in when and "20:00–20:56 EST" in when and "56 min" in when
    assert [a.get_text(strip=True) for a in session_doc.select(".hosts a")] == ["RC@chathost"]
    summary = {div.dt.get_text(): div.dd.get_text(strip=True) for div in session_doc.select("dl.stats > div")}
    expected = {"Posts": str(st["posts"]), "People": str(st["participants"]),
                "Questions": str(len(st["questions"])), "Links": str(len(st["links"]))}
    # the second session of the hashtag: first-timers are known (hosts never among them)
    assert st["first_timers"] is not None
    expected["First time in this archive"] = str(len(set(st["first_timers"]) - {"chathost"}))
    assert summary == expected
    assert summary["Questions"] == "3" and summary["Links"] == "2"


def test_landmarks_and_accessibility(site):
    out, _ = site
    for page in pages(out):
        doc = soup(page)
        assert doc.html["lang"] == "en"
        assert doc.find("meta", attrs={"name": "viewport"})
        assert len(doc.find_all("main")) == 1 and doc.find("header") and doc.find("footer")
        assert doc.find("form", attrs={"role": "search"}) is not None, page
        assert doc.find("label", attrs={"for": "site-q"}) is not None
        assert len(doc.find_all("h1")) == 1, page
        for img in doc.find_all("img"):
            assert img.has_attr("alt"), (page, img)
        for svg in doc.find_all("svg"):
            assert svg.get("role") == "img" or svg.get("aria-hidden") == "true", (page, svg)
        ids = [t["id"] for t in doc.find_all(id=True)]
        assert len(ids) == len(set(ids)), page


def test_qa_view(session_doc, archive):
    db = open_db(archive, create=True)
    cards = session_doc.select("article.qa")
    assert [c["id"] for c in cards] == ["q1", "q2", "q3"]
    q1 = cards[0]
    assert "How do you measure whether your community is healthy?" in q1.select_one("h3.qt").get_text()
    assert "5 answers" in q1.select_one(".qmeta").get_text()
    # Answers, most engaged first (engagement from the archive, not from the page)
    data = load_session(db, SECOND)
    expected = [a.post.id for a in data.questions[0].answers]
    shown = [a["href"].rsplit("/", 1)[-1] for a in q1.select("ol.ans > li > article .ph a.t")]
    assert shown == [f"{pid}" for pid in expected]
    eng = [data.by_id[pid].engagement for pid in expected]
    assert eng == sorted(eng, reverse=True) and len(expected) == 5
    # Alice's answer (21 likes) leads; its 3 replies are folded under it as a tree
    first = q1.select_one("ol.ans > li")
    assert "Returning members beat new sign-ups" in first.article.get_text()
    thread = first.select_one("details.thr")
    assert thread is not None and thread.summary.get_text(strip=True) == "3 replies"
    depths = [li["class"][0] for li in thread.select("ol.tree > li")]
    assert depths == ["d0", "d1", "d2"]
    # The repost of Q1 is not an answer; the quote of Q2 is one
    assert all("reposted" not in li.get_text() for li in session_doc.select("ol.ans > li"))
    assert "This thread is gold" in cards[1].get_text()


def test_conversations_are_indented_trees(session_doc):
    convs = session_doc.select("#conversations .conv")
    texts = [c.get_text(" ", strip=True) for c in convs]
    side = next(c for c, t in zip(convs, texts) if "does anyone archive their chats" in t)
    assert [li["class"][0] for li in side.select("ol.tree > li")] == ["d0", "d1", "d1"]
    assert "3 posts · 3 people" in side.p.get_text()
    # Threads that start at a question are in the Q&A, not repeated here
    assert not any("How do you measure whether" in t.split("\n")[0][:200] for t in texts)
    for c in convs:
        assert "Q1:" not in c.select_one("ol.tree > li.d0").get_text()


def test_transcript_in_time_order_with_permalinks(session_doc, archive):
    db = open_db(archive, create=True)
    rows = db.execute(
        """SELECT p.id, p.url FROM session_posts sp JOIN posts p ON p.id = sp.post_id
           JOIN sessions s ON s.id = sp.session_id WHERE s.slug = ? ORDER BY p.created_at, p.id""",
        [SECOND]).fetchall()
    items = session_doc.select("#transcript ol.stream > li[id]")
    assert [el["id"] for el in items] == [f"p-{pid}" for pid, _ in rows]
    times = [el.find("time")["datetime"] for el in items]
    assert times == sorted(times)
    for el, (_, url) in zip(items, rows):
        assert el.find("a", class_="t")["href"] == url
    ticks = [t.get_text(strip=True) for t in session_doc.select("#transcript li.tick h3")]
    assert ticks[0] == "20:00" and ticks == sorted(ticks)


def test_timeline_svg_marks_questions(session_doc, archive):
    fig = session_doc.select_one("figure.timeline")
    svg = fig.find("svg")
    st = session_stats(open_db(archive, create=True), SECOND)
    assert svg["viewbox"] == f"0 0 {len(st['per_minute'])} 100"
    bars = re.findall(r"M[\d.]+ 100v-([\d.]+)", svg.path["d"])
    assert len(bars) == sum(1 for m in st["per_minute"] if m["posts"])
    marks = fig.select(".qm a")
    assert [a["href"] for a in marks] == ["#q1", "#q2", "#q3"]
    lefts = [float(re.search(r"left:([\d.]+)%", a.parent["style"]).group(1)) for a in marks]
    assert lefts == sorted(lefts) and 0 < lefts[0] < lefts[-1] < 100


def test_people_links_media_top_posts(session_doc, archive):
    st = session_stats(open_db(archive, create=True), SECOND)
    people = session_doc.select("#people ul.people > li")
    assert len(people) == st["participants"]
    firsts = {li.select_one("small").get_text().split(" ·")[0].lstrip("@")
              for li in people if li.select_one(".bn")}
    assert firsts == set(st["first_timers"]) - {"chathost"}
    host = next(li for li in people if li.select_one(".bh"))
    assert "@chathost" in host.get_text()
    links = [(a["href"], li.select_one(".c").get_text() if li.select_one(".c") else "")
             for li in session_doc.select("#links li") for a in [li.a]]
    assert links == [("https://example.org/guide", "×2"), ("https://blog.example.com/metrics-2026", "")]
    img = session_doc.select_one("#media img")
    assert img["alt"].startswith("Bar chart: weekly active members")
    assert img["src"] == "https://pbs.twimg.com/media/RecapChart1.jpg"
    top = session_doc.select("#top ol.top > li")
    assert 1 <= len(top) <= 5 and "Returning members beat new sign-ups" in top[0].get_text()


def test_hashtag_and_participant_pages(site, archive):
    out, _ = site
    db = open_db(archive, create=True)
    doc = soup(out / "hashtags" / "recapchat.html")
    hs = hashtag_stats(db, "RecapChat")
    assert [a["href"] for a in doc.select("ol.sessions .si a")] == [f"../sessions/{SECOND}.html", f"../sessions/{FIRST}.html"]
    regulars = [li.small.get_text().split(" ·")[0].lstrip("@") for li in doc.select("ul.regulars > li")]
    assert regulars == [r["handle"] for r in hs["regulars"]]
    bars = doc.select("figure.growth a")
    first, second = (session_stats(db, slug) for slug in (FIRST, SECOND))
    assert len(bars) == 2 and bars[0].title.get_text().startswith(f"11 Nov 2026: {first['participants']} participants")
    # the hashtag's first archived session: nobody can be known to be new (C6)
    if first["first_timers"] is None:
        assert "first time" not in bars[0].title.get_text() and not bars[0].select(".new")
    new = len(set(second["first_timers"]) - {"chathost"})
    assert f"{second['participants']} participants, {new} here for the first time in this archive" in \
        bars[1].title.get_text()
    alice = soup(out / "people" / "alice_cm.html")
    assert alice.h1.get_text() == "Alice Moreau"
    sections = alice.select("main section")
    assert [s.h2.a["href"] for s in sections] == [f"../sessions/{SECOND}.html", f"../sessions/{FIRST}.html"]
    n = db.execute("SELECT count(*) FROM posts WHERE author_handle = 'alice_cm' AND is_repost = 0").fetchone()[0]
    assert len(alice.select("main article.post")) == n
    # every post links back to the session page's anchor
    q = alice.select_one("main article.post")
    assert q.find("a", class_="t")["href"].startswith("https://x.com/alice_cm/status/")


def test_self_contained_pages(site):
    out, _ = site
    for page in pages(out):
        html = page.read_text("utf-8")
        doc = BeautifulSoup(html, "html.parser")
        rels = [ln["rel"] for ln in doc.find_all("link")]
        assert rels[0] == ["icon"] and all(r == ["alternate"] for r in rels[1:]), page
        for feed in doc.find_all("link", rel="alternate"):  # the Atom feeds of the site, nothing loaded
            assert feed["type"] == "application/atom+xml" and "://" not in feed["href"], page
        scripts = doc.find_all("script")
        if page.name == "search.html":
            assert len(scripts) == 1 and not scripts[0].has_attr("src")
        else:
            assert scripts == [], page
        style = "".join(s.get_text() for s in doc.find_all("style"))
        assert "@import" not in style and "@font-face" not in style
        for url in re.findall(r"url\(([^)]*)\)", style):
            assert url.startswith(('"https://pbs.twimg.com/', '"../media/')), url
        csp = doc.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]
        assert "default-src 'none'" in csp
        if page.name != "search.html":
            assert "script-src 'none'" in csp
    assert "prefers-color-scheme:dark" in (out / "index.html").read_text() and "@media print" in (out / "index.html").read_text()


# --------------------------------------------------------------------------
# Hostile posts


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    db = recap_archive(tmp / "hostile.db", (CHAT, HOSTILE))
    # A Mastodon post whose stored HTML was never sanitized (an archive from anywhere)
    pid = db.execute("SELECT p.id FROM posts p WHERE p.text LIKE 'A1: filler answer 0%'").fetchone()[0]
    db.execute(
        "UPDATE posts SET platform = 'mastodon', html = ? WHERE id = ?",
        [('<p>Hi <script>window.__pwned=1</script><a href="javascript:window.__pwned=1">x</a>'
          '<a href="jav&#x09;ascript:alert(1)">y</a><a href="data:text/html,<script>alert(1)</script>">z</a>'
          '<img src=x onerror="window.__pwned=1"><iframe src="javascript:alert(1)"></iframe>'
          '<a href="https://ok.example/" onclick="window.__pwned=1" style="color:red">ok</a>'
          '<style>body{display:none}</style><svg><script>alert(1)</script></svg><b>unclosed'), pid])
    out = tmp / "site"
    build_site(db, out)
    return out, pid


DANGEROUS_URL = re.compile(r"^\s*(javascript|data|vbscript|file):", re.IGNORECASE)


def test_hostile_posts_are_inert_in_html(hostile_site):
    out, pid = hostile_site
    page = out / "sessions" / f"{HOSTILE_SLUG}.html"
    assert page.is_file()
    for p in pages(out):
        doc = soup(p)
        for tag in doc.find_all(True):
            for attr, value in tag.attrs.items():
                assert not attr.lower().startswith("on"), (p, tag.name, attr)
                if attr in ("href", "src", "action", "formaction", "xlink:href", "poster", "srcset"):
                    assert not DANGEROUS_URL.match(value), (p, tag.name, attr, value)
        assert not doc.find_all(["iframe", "object", "embed", "textarea", "template"]), p
        if p.name != "search.html":
            assert doc.find("script") is None, p
        svgs = doc.find_all("svg")
        assert all(not s.find("script") and not s.find("foreignobject") for s in svgs)
        # CSS: every url() is a quoted http(s) or site-relative URL with nothing after it
        style = "".join(s.get_text() for s in doc.find_all("style"))
        for m in re.finditer(r"url\(", style):
            assert re.match(r'url\("(https?://|\.\./media/|media/)[^"\\\s]*"\)', style[m.start():]), style[m.start():m.start() + 80]
    doc = soup(page)
    text = doc.get_text()
    # what the hostile posts said is shown as text
    assert "<script>window.__pwned=1</script> What do you <b>think</b>?" in text
    assert '<img src=x onerror="window.__pwned=1;alert(1)"> hello' in text
    assert "{{ 7*7 }} {% raw %}" in text and "49" not in text
    assert '"><img src=x onerror=window.__pwned=1>' in text  # the media's alt text, as text
    # the names and handles too
    assert '<img src=x onerror="window.__pwned=1">Mallory' in text
    # javascript:/data: links from entities were dropped, good ones kept (encoded)
    hrefs = [a.get("href") for a in doc.find_all("a")]
    assert "https://example.com/%22onmouseover=%22window.__pwned=1" in hrefs
    assert "https://example.com/ok?a=1&b=%3C2%3E" in hrefs
    # the re-sanitized Mastodon HTML keeps only the harmless link
    mastodon = doc.find(id=f"p-{pid}")
    body = mastodon.select_one(".tx")
    assert [a.get("href") for a in body.find_all("a")] == [None, None, None, "https://ok.example/"]
    assert not body.find_all(["img", "style", "svg", "script"]) and "style" not in str(body.find_all("a")[-1])


@pytest.mark.parametrize("url,expected", [
    ("https://example.org/a?b=1#c", "https://example.org/a?b=1#c"),
    ("HTTP://Example.org/", "http://Example.org/"),
    ("  https://x.example/ ", "https://x.example/"),
    ('https://x.example/"><script>', "https://x.example/%22%3E%3Cscript%3E"),
    ("https://x.example/a b(c)", "https://x.example/a%20b%28c%29"),
    ("https://x.example/é", "https://x.example/%C3%A9"),
    ("javascript:alert(1)", None),
    ("JaVaScRiPt:alert(1)", None),
    (" \x01javascript:alert(1)", None),
    ("java\tscript:alert(1)", None),
    ("jav\nascript:alert(1)", None),
    ("data:text/html,<script>alert(1)</script>", None),
    ("vbscript:msgbox(1)", None),
    ("//evil.example/x", None),
    ("/relative/path", None),
    ("https:javascript:alert(1)", None),
    ("https:///evil", None),
    ("file:///etc/passwd", None),
    ("", None),
    (None, None),
])
def test_safe_url(url, expected):
    assert safe_url(url) == expected


def test_linkify_escapes_and_links():
    out = str(linkify('a <b>&amp; "q" https://ex.example/path?x=1&y=2). javascript:alert(1) www.x.com'))
    assert out == ('a &lt;b&gt;&amp;amp; &#34;q&#34; <a href="https://ex.example/path?x=1&amp;y=2" '
                   'rel="nofollow ugc">ex.example/path?x=1&amp;y=2</a>). javascript:alert(1) www.x.com')
    linked = str(linkify("hi @alice and #Chat (https://en.wikipedia.org/wiki/Foo_(bar))",
                         lambda h: f"people/{h}.html" if h == "alice" else None,
                         lambda t: "hashtags/chat.html"))
    assert '<a class="mention" href="people/alice.html">@alice</a>' in linked
    assert '<a class="tag" href="hashtags/chat.html">#Chat</a>' in linked
    assert 'href="https://en.wikipedia.org/wiki/Foo_%28bar%29"' in linked and linked.endswith("</a>)")
    muted = str(linkify("x #Own #other #own2", None, lambda t: "" if t.lower() == "own" else None))
    assert muted == 'x <i class="g">#Own</i> #other #own2'


def test_sanitize_html_keeps_only_safe_markup():
    html = str(sanitize_html('<p>x<a href="https://s.example/tags/a" class="evil">#<span>a</span></a>'
                             '<span class="invisible">https://</span><a href="https://s.example/@b">@b</a>'
                             '<script>bad()</script><a href="javascript:x">j</a><a href="/rel">r</a></p>'))
    assert html == ('<p>x<a class="hashtag" href="https://s.example/tags/a" rel="nofollow noopener noreferrer ugc">'
                    '#<span>a</span></a><span class="invisible">https://</span><a class="mention" '
                    'href="https://s.example/@b" rel="nofollow noopener noreferrer ugc">@b</a>'
                    '<a rel="nofollow noopener noreferrer ugc">j</a><a rel="nofollow noopener noreferrer ugc">r</a></p>')


def test_flatten_tree_is_iterative_and_cycle_safe():
    chain = {str(i): [str(i + 1)] for i in range(10_000)}
    flat = flatten_tree(["0"], chain)
    assert len(flat) == 10_001 and flat[-1] == (10_000, "10000")
    cyc = {"a": ["b"], "b": ["c"], "c": ["a", "d"]}
    assert flatten_tree(["a"], cyc) == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]


def test_slugify_never_escapes_the_folder():
    for raw in ("../../etc/passwd", "..", "/abs", "a/b\\c", "", "..."):
        s = slugify(raw)
        assert "/" not in s and "\\" not in s and s not in ("", ".", "..") and not s.startswith(".")


# --------------------------------------------------------------------------
# Re-running


def test_rerun_rewrites_only_what_changed(archive, tmp_path):
    db = open_db(copy_archive(archive, tmp_path), create=True)
    out = tmp_path / "site"
    first = build_site(db, out)
    assert first.written > 0 and first.unchanged == 0
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = build_site(db, out)
    assert again.written == 0 and again.removed == 0 and again.search == "search index unchanged"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
    # One post of the second session changes: its session page and its author's page change
    db.execute("UPDATE posts SET like_count = 99 WHERE text LIKE 'A2: NPS.%'")
    third = build_site(db, out)
    changed = {p.relative_to(out).as_posix() for p in out.rglob("*.html")
               if p.stat().st_mtime_ns != mtimes.get(p) and "pagefind" not in p.parts}
    assert changed == {f"sessions/{SECOND}.html", "people/alice_cm.html"}
    assert third.search_ok and third.search.startswith("search index built")
    assert f"sessions/{FIRST}.html" not in changed


# --------------------------------------------------------------------------
# Templates


def test_templates_override_one_file(archive, tmp_path):
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "_session_row.html").write_text(
        '<li class="mine"><a href="{{ root }}{{ s.page }}">{{ s.title|upper }}</a> — {{ s.posts }}</li>\n')
    out = tmp_path / "site"
    build_site(open_db(archive, create=True), out, templates=tdir, search=False)
    rows = soup(out / "index.html").select("ol.sessions > li.mine")
    assert [li.get_text() for li in rows] == ["#RECAPCHAT · 18 NOVEMBER 2026 — 32", "#RECAPCHAT · 11 NOVEMBER 2026 — 11"]
    # everything else still comes from our templates
    assert soup(out / "sessions" / f"{SECOND}.html").select("article.qa")


def test_template_errors_are_one_line(archive, tmp_path, runner):
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "index.html").write_text("{% extends 'base.html' %}{% block content %}{{ no_such_thing }}{% endblock %}")
    res = runner.invoke(cli, ["recap", str(archive), "--out", str(tmp_path / "s"), "--templates", str(tdir)])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == (
        "Error: Template index.html: 'no_such_thing' is undefined (a template uses a variable the page does not have)")
    (tdir / "index.html").write_text("{% if %}")
    res = runner.invoke(cli, ["recap", str(archive), "--out", str(tmp_path / "s"), "--templates", str(tdir)])
    assert res.exit_code == 1 and "Template" in res.output and "index.html:1" in res.output


def test_autoescape_applies_to_user_templates(archive, tmp_path):
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "_session_row.html").write_text("<li>{{ '<b>x</b>' }}</li>")
    out = tmp_path / "site"
    build_site(open_db(archive, create=True), out, templates=tdir, search=False)
    assert "<li>&lt;b&gt;x&lt;/b&gt;</li>" in (out / "index.html").read_text()


# --------------------------------------------------------------------------
# --download-media


def test_download_media_copies_into_the_site(archive, tmp_path):
    db = open_db(copy_archive(archive, tmp_path), create=True)
    out = tmp_path / "site"
    with MediaServer() as server:
        point_media_at(db, server.base, broken_handles={"bob_builds"}, html_handles={"carol_c"})
        result = build_site(db, out, download_media=True)
        n_requests = len(server.requests)
        assert n_requests > 0
        again = build_site(db, out, download_media=True)
        # copies are reused; only the two that failed are tried again
        assert sorted(server.requests[n_requests:]) == sorted(
            r for r in server.requests[:n_requests] if r.startswith(("/missing/", "/html/")))
        assert len(server.requests) == n_requests + 2
    assert again.written == 0
    files = sorted(p.name for p in (out / "media").glob("*") if p.name != "index.json")
    assert files and all(f.endswith(".png") for f in files)
    assert result.media_failed == 2 and result.media_downloaded == len(files)
    for page in pages(out):
        html = page.read_text("utf-8")
        assert server.base not in html, page  # nothing hotlinked
    doc = soup(out / "sessions" / f"{SECOND}.html")
    style = doc.style.get_text()
    local = re.findall(r'url\("(\.\./media/[0-9a-f]+\.png)"\)', style)
    assert local and all((out / "sessions" / u).resolve().is_file() for u in local)
    img = doc.select_one("#media img")
    assert img["src"].startswith("../media/") and (out / "sessions" / img["src"]).resolve().is_file()
    # Bob's avatar was missing and Carol's was HTML: their initials stay, without a picture
    people = {li.select_one("small").get_text().split(" ·")[0]: li for li in doc.select("#people li")}
    bob_cls = people["@bob_builds"].select_one(".av")["class"][1]
    assert re.search(rf"\.{bob_cls}{{--h:\d+}}", style) and people["@bob_builds"].select_one(".av").get_text() == "BO"
    carol_cls = people["@carol_c"].select_one(".av")["class"][1]
    assert re.search(rf"\.{carol_cls}{{--h:\d+}}", style)
    assert any("not an image" in m for m in result.messages)


def test_sniff_media_refuses_what_is_not_an_image():
    assert media.sniff_media(b"\x89PNG\r\n\x1a\n....") == "png"
    assert media.sniff_media(b"\xff\xd8\xff\xe0") == "jpg"
    assert media.sniff_media(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert media.sniff_media(b"<svg onload=alert(1)>") is None
    assert media.sniff_media(b"<!doctype html>") is None


# --------------------------------------------------------------------------
# Without Pagefind


def test_site_works_without_pagefind(archive, tmp_path, monkeypatch, runner):
    monkeypatch.setattr(search_index, "pagefind_executable", lambda: None)
    out = tmp_path / "site"
    res = runner.invoke(cli, ["recap", str(archive), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Note: search disabled: Pagefind is not installed (pip install 'pagefind[bin]')" in res.output
    search = soup(out / "search.html")
    assert search.find("script") is None
    assert "Pagefind is not installed" in search.select_one(".notice").get_text()
    assert not (out / "pagefind").exists()
    assert (out / "sessions" / f"{SECOND}.html").is_file()


def test_pagefind_failure_is_reported(archive, tmp_path, monkeypatch):
    fake = tmp_path / "pagefind"
    fake.write_text("#!/bin/sh\necho 'boom: cannot index' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(search_index, "pagefind_executable", lambda: str(fake))
    result = build_site(open_db(archive, create=True), tmp_path / "site")
    assert not result.search_ok and result.search == "search disabled: Pagefind failed (boom: cannot index)"


# --------------------------------------------------------------------------
# CLI


def test_cli_recap(archive, tmp_path, runner):
    out = tmp_path / "site"
    res = runner.invoke(cli, ["recap", str(archive), SECOND, "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith(f"Wrote {out}: ") and "(1 session page(s) rendered, 2 session(s) listed)" in lines[0]
    assert lines[-1] == f"Open {(out / 'index.html').resolve().as_uri()}"
    assert [p.name for p in (out / "sessions").iterdir()] == [f"{SECOND}.html"]
    res = runner.invoke(cli, ["recap", str(archive), "--out", str(out), "-q"])
    assert res.exit_code == 0 and res.output == ""


def test_cli_recap_errors(archive, tmp_path, runner):
    res = runner.invoke(cli, ["recap", str(tmp_path / "missing.db"), "--out", str(tmp_path / "s")])
    assert res.exit_code == 1 and "no such archive: " in res.output and "missing.db" in res.output
    assert not (tmp_path / "missing.db").exists()
    res = runner.invoke(cli, ["recap", str(archive), "no-such-session", "--out", str(tmp_path / "s")])
    assert res.exit_code == 1 and "no-such-session" in res.output and "Traceback" not in res.output
    (tmp_path / "file").write_text("x")
    res = runner.invoke(cli, ["recap", str(archive), "--out", str(tmp_path / "file")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    empty = tmp_path / "empty.db"
    open_db(empty, create=True)
    res = runner.invoke(cli, ["recap", str(empty), "--out", str(tmp_path / "s2")])
    assert res.exit_code == 1 and "No sessions in this archive yet" in res.output


def test_demo_writes_the_recap_site(tmp_path):
    from chatarchive.demo import run_demo, step_analyse, step_import, step_recap

    lines: list[str] = []
    run = run_demo(tmp_path / "demo", echo=lines.append, steps=[step_import, step_analyse, step_recap])
    index = run.outputs["recap"]
    assert index == tmp_path / "demo" / "recap" / "index.html" and index.is_file()
    assert f"  Open {index.resolve().as_uri()}" in lines
    sessions = list((index.parent / "sessions").glob("*.html"))
    assert len(sessions) == run.db.execute("SELECT count(*) FROM sessions").fetchone()[0] >= 1


def test_post_html_is_written_once(archive, tmp_path):
    """Every post of the fixtures (the hostile ones, a content warning and
    Mastodon HTML included) has one HTML: the page shows present.html's, and
    templates importing the old _post.html macros get exactly the same."""
    from chatarchive.present.html import mini_html, post_html
    from chatarchive.recap.pages import session_context
    from chatarchive.recap.sitemap import SiteMap
    from chatarchive.recap.templates import make_env

    db = recap_archive(tmp_path / "all.db", (CHAT, HOSTILE))
    db.execute("UPDATE posts SET spoiler_text = 'spoilers <b>', edited_at = created_at WHERE text LIKE 'A2:%'")
    pid = db.execute("SELECT id FROM posts WHERE text LIKE 'A1: filler answer 1%'").fetchone()[0]
    db.execute("UPDATE posts SET platform = 'mastodon', html = '<p>hi <a href=\"https://x.example/\">#tag</a></p>' "
               "WHERE id = ?", [pid])
    db.execute("UPDATE posts SET matched = 0 WHERE text LIKE 'A1: filler answer 2%'")  # a context post
    sessions = [r[0] for r in db.execute("SELECT id FROM sessions")]
    site = SiteMap()
    site.plan(db, sessions)
    macros = make_env().from_string(
        '{% import "_post.html" as pp %}{{ pp.post(p) }}|{{ pp.mini(p) }}|{{ pp.avatar(p.person, "s") }}|'
        '{{ pp.who(p.person, p.person_href) }}')
    n, kinds = 0, set()
    for sid in sessions:
        ctx = session_context(site, load_session(db, sid))
        page = build_site(db, tmp_path / "site", [sid], search=False)
        html = (page.out / site.session_pages[sid]).read_text("utf-8")
        for v in ctx["posts"]:
            assert str(v.html) == str(post_html(v)) and f'<li id="{v.anchor}">{v.html}</li>' in html, v.id
            assert macros.render(p=v) == "|".join(map(str, (post_html(v), mini_html(v), v.av_s, v.who))), v.id
            n += 1
            kinds.update(k for k, on in (("cw", v.cw), ("html", v.is_html), ("repost", v.repost), ("media", v.media),
                                         ("reply", v.reply_to), ("quote", v.quote), ("context", v.context)) if on)
    assert n == db.execute("SELECT count(*) FROM session_posts").fetchone()[0] > 50
    assert kinds == {"cw", "html", "repost", "media", "reply", "quote", "context"}


def test_deep_reply_chain_renders_flat_and_capped(tmp_path):
    """A 1,500-deep reply chain: no recursion anywhere, indentation capped."""
    from chatarchive.analysis.pipeline import analyse_archive
    from chatarchive.archive.writer import save_posts
    from chatarchive.models import Author, Post

    a, b = (Author(id=str(i), platform="x", handle=h, name=h.title()) for i, h in ((1, "ping"), (2, "pong")))
    posts = [Post(id=str(10**6 + i), platform="x", source="test", author=(a, b)[i % 2],
                  created_at=f"2026-03-04T{20 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                  text=f"reply {i} #deepchat", hashtags=["deepchat"],
                  reply_to_id=str(10**6 + i - 1) if i else None) for i in range(1500)]
    db = open_db(tmp_path / "deep.db", create=True)
    save_posts(db, posts)
    analyse_archive(db, hashtags=["deepchat"])
    out = tmp_path / "site"
    build_site(db, out, search=False)
    doc = soup(next((out / "sessions").glob("*.html")))
    items = doc.select("#conversations ol.tree > li")
    assert len(items) == 1500
    assert [li["class"][0] for li in items[:9]] == ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d7"]
    assert items[-1].select_one(".deep").get_text() == "1499 replies deep"


def test_threads_without_conversation_ids_are_rebuilt_from_replies(archive, tmp_path):
    db = open_db(copy_archive(archive, tmp_path), create=True)
    db.execute("UPDATE posts SET conversation_id = NULL")
    data = load_session(db, SECOND)
    side = next(c for c in data.conversations if c.items[0][1].post.text.startswith("Side question"))
    assert [(d, p.handle) for d, p in side.items] == [(0, "dan_writes"), (1, "alice_cm"), (1, "mod_maria")]
    alice = next(c for c in data.conversations if c.items[0][1].post.text.startswith("A1: Returning"))
    assert [d for d, _ in alice.items] == [0, 1, 2, 3]
