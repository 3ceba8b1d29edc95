"""Hostile posts through every output: the recap site, the Markdown and JSON
exports and the Datasette pages, all made from one view model and one post
renderer (chatarchive/present/).

The archive is the recap fixtures (tests/fixtures/recap/: <script> in text,
onerror=, javascript:/data: links and media, hostile display names, handles,
alt text and avatars) plus posts added here: links hidden from naive filters
(upper case, a tab or a newline inside the scheme, leading spaces and control
characters, HTML entities, vbscript:, data:...;base64), a hostile content
warning and reply-to handle, and a Mastodon post whose stored HTML was never
sanitized (script, event handlers, entity-obfuscated javascript: links,
svg/math/iframe/style, mXSS shapes).

Checked structurally with BeautifulSoup in every output (no script elements
but the recap search page's own, no event handler attributes, no href/src/
action/... outside http(s), relative and fragment URLs, no CSS url() outside
quoted http(s) or site paths, no iframe/object/embed/base/form), the Markdown
as a blog renders it (markdown-it, raw HTML allowed), the JSON as data, and
the two HTML outputs in headless Chromium (Debian's): every event fired on
every element, every fold opened, with and without the recap's CSP; no
dialog, no page error, no console error, nothing written to the trap the
payloads aim at (window.__pwned)."""

from __future__ import annotations

import csv
import html as html_lib
import io
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from recap_helpers import CHAT, HOSTILE, HOSTILE_SLUG, ZONE
from test_serve import make_client, start_server, stop_server

from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import save_posts
from chatarchive.datasette import server as ds_server
from chatarchive.export import export_session
from chatarchive.models import Author, Media, Post
from chatarchive.present.text import anchor_for, clean
from chatarchive.recap.site import build_site
from chatarchive.recap.templates import SEARCH_JS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Links a filter that only looks for "javascript:" would let through.
SNEAKY_URLS = [
    "JAVASCRIPT:window.__pwned=11", "java\tscript:window.__pwned=12", "java\nscript:window.__pwned=13",
    "  \x01javascript:window.__pwned=14", "&#106;avascript:window.__pwned=15", "javascript&colon;window.__pwned=16",
    "vbscript:msgbox(17)", "data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD0xODwvc2NyaXB0Pg==",
    "DATA:text/html,<script>window.__pwned=19</script>", "//evil.example/x", "https:javascript:window.__pwned=20",
]
MASTODON_HTML = (
    '<p>Hi <script>window.__pwned=21</script><a href="javascript:window.__pwned=22">a</a>'
    '<a href="jav&#x09;ascript:window.__pwned=23">b</a><a href="&#106;avascript:window.__pwned=24">c</a>'
    '<a href=" JaVaScRiPt:window.__pwned=25">d</a><a href="data:text/html,<script>window.__pwned=26</script>">e</a>'
    '<a href="vbscript:msgbox(27)">f</a><img src=x onerror="window.__pwned=28">'
    '<svg onload="window.__pwned=29"><script>window.__pwned=30</script></svg>'
    '<iframe src="javascript:window.__pwned=31"></iframe><style>body{display:none}</style>'
    '<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned=32"></style></mglyph></table></mtext></math>'
    '<noscript><p title="</noscript><img src=x onerror=window.__pwned=33>"></noscript>'
    '<a href="https://ok.example/" onclick="window.__pwned=34" style="color:red">ok</a>'
    '<form action="javascript:window.__pwned=35"><button>go</button></form><b>unclosed</p>'
)
MASTODON_ID = "https://masto.example/users/eve/statuses/666"
SNEAKY_ID = "1870000000000000900"
ESCAPES_ID = "1870000000000000901"
# Terminal escapes (issue 14): a title change, clear screen, colours, an 8-bit CSI, bell, backspace, CR
ESCAPES = "\x1b]0;pwned title\x07 \x1b[2J\x1b[H\x1b[31mred\x1b[0m \x9b6n \x08\x08 over\rwrite \x00nul \x7fdel"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def hostile_extras() -> list[Post]:
    """Posts in the hostile session (2026-12-02 01:00Z, #RecapChat) that the fixtures lack."""
    eve = Author(id="https://masto.example/users/eve", platform="mastodon", handle="eve@masto.example",
                 name='"><svg/onload=window.__pwned=40>Eve', avatar_url="JaVaScRiPt:window.__pwned=41",
                 url="javascript:window.__pwned=42")
    sneak = Author(id="668", platform="x", handle="sneaky", name="</style><script>window.__pwned=43</script>",
                   avatar_url="https://x.example/a.png' onerror='window.__pwned=44", url="https://x.com/sneaky")
    esc = Author(id="669", platform="x", handle="esc\x1b[5mape", name=f"Esc {ESCAPES}",
                 url="https://x.com/escape")
    return [
        Post(id=ESCAPES_ID, platform="x", source="test", created_at="2026-12-02T01:09:00.000Z", author=esc,
             text=f"A1: escapes {ESCAPES}\nsecond line\tafter a tab #RecapChat", url="https://x.com/escape/status/901",
             hashtags=["RecapChat"], links=["https://example.org/\x1b[31mred"],
             media=[Media(url="https://pbs.twimg.com/media/esc.jpg", type="photo", alt=f"alt {ESCAPES}")],
             spoiler_text=f"cw {ESCAPES}", like_count=1),
        Post(id=SNEAKY_ID, platform="x", source="test", created_at="2026-12-02T01:07:00.000Z", author=sneak,
             text="A1: links " + " ".join(SNEAKY_URLS) + " #RecapChat", url="javascript:window.__pwned=45",
             hashtags=["RecapChat"], links=SNEAKY_URLS,
             media=[Media(url="JAVASCRIPT:window.__pwned=46", type="photo", alt="<img src=x onerror=window.__pwned=47>"),
                    Media(url="https://pbs.twimg.com/media/v.mp4", type="video", alt="</figcaption><script>x</script>",
                          preview_url="data:image/svg+xml,<svg onload=window.__pwned=48>")],
             spoiler_text="<img src=x onerror=window.__pwned=49>", reply_to_id="1870000000000000001",
             reply_to_author="<script>window.__pwned=50</script>", like_count=3),
        Post(id=MASTODON_ID, platform="mastodon", source="mastodon", created_at="2026-12-02T01:08:00.000Z",
             author=eve, text="Hi a b c d e f ok unclosed #RecapChat", html=MASTODON_HTML,
             url="https://masto.example/@eve/666", hashtags=["RecapChat"], local_id="666", instance="masto.example"),
    ]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hostile-outputs") / "hostile.db"
    db = open_db(path, create=True)
    assert all(r.error is None for r in import_files(db, [str(CHAT), str(HOSTILE)]))
    save_posts(db, hostile_extras())
    # The stored HTML as an archive from anywhere might hold it: never sanitized.
    db.execute("UPDATE posts SET html = ? WHERE id = ?", [MASTODON_HTML, MASTODON_ID])
    analyse_archive(db, hashtags=["RecapChat"], tz=ZONE, hosts=["chathost"])
    in_session = {r[0] for r in db.execute(
        "SELECT sp.post_id FROM session_posts sp JOIN sessions s ON s.id = sp.session_id WHERE s.slug = ?",
        [HOSTILE_SLUG])}
    assert {SNEAKY_ID, MASTODON_ID} <= in_session and len(in_session) > 12
    db.conn.close()
    return path


# --------------------------------------------------------------------------
# What "nothing is live" means in an HTML document

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "srcset", "data", "background",
                  "cite", "longdesc", "ping", "manifest", "icon", "codebase"}
FORBIDDEN_ELEMENTS = ["iframe", "object", "embed", "base", "frame", "frameset", "applet", "template", "noscript",
                      "math"]
# Elements a page may have of its own (search boxes, Datasette's filters and SQL editor), never in a post.
FORM_ELEMENTS = ["form", "input", "button", "select", "textarea"]
POST_PARTS = ".post, .mini, .rp, .tx, .ca-text, figure, .qt"


def no_scripts(script) -> bool:
    return False


def datasette_script(script) -> bool:
    """Datasette's own scripts: its static files, and inline code of its templates (no payload in it)."""
    text = script.get_text()
    return (script.get("src") or "").startswith("/-/static/") or (
        not script.has_attr("src") and "__pwned" not in text and "alert(" not in text)


def url_is_safe(value: str) -> bool:
    """What a browser would do with the attribute: entities are decoded by
    the parser (BeautifulSoup too), then leading spaces/controls and any tab
    or newline are ignored before the scheme is read."""
    v = re.sub(r"[\t\n\r]", "", html_lib.unescape(value)).lstrip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e"
                                                                  "\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19"
                                                                  "\x1a\x1b\x1c\x1d\x1e\x1f ")
    scheme = re.match(r"([a-zA-Z][a-zA-Z0-9+.\-]*):", v)
    if scheme:
        return scheme.group(1).lower() in ("http", "https") and v[scheme.end():].startswith("//")
    return not v.startswith("//")  # relative path, query or fragment: stays on the site


def datasette_style(css: str) -> bool:
    """Datasette's own style elements (its templates'), as opposed to the avatar styles pages add (--h:)."""
    return "--h:" not in css


def assert_nothing_live(doc: BeautifulSoup, where: str, *, own_script=no_scripts, own_style=lambda css: False,
                        forms: bool = True) -> None:
    """``own_script``, ``own_style``: which script and style elements are the
    host page's own (Datasette's); ``forms``: whether the page may have form
    elements of its own (outside posts)."""
    assert all(own_script(s) for s in doc.find_all("script")), (where, doc.find_all("script")[:2])
    for tag in doc.find_all(True):
        for attr, value in tag.attrs.items():
            assert not attr.lower().startswith("on"), (where, tag.name, attr)
            if attr.lower() in URL_ATTRIBUTES:
                for v in value if isinstance(value, list) else [value]:
                    assert url_is_safe(v), (where, tag.name, attr, v)
            if attr.lower() == "style":
                assert "url(" not in value and "expression" not in value, (where, tag.name, value)
            if attr.lower() == "http-equiv":
                assert value.lower() != "refresh", where
    assert not doc.find_all(FORBIDDEN_ELEMENTS), (where, doc.find_all(FORBIDDEN_ELEMENTS)[:2])
    in_posts = [el for part in doc.select(POST_PARTS) for el in part.find_all(FORM_ELEMENTS)]
    assert not in_posts and (forms or not doc.find_all(FORM_ELEMENTS)), (where, in_posts[:2])
    for svg in doc.find_all("svg"):
        assert not svg.find(["script", "foreignobject", "use", "animate", "set"]), where
    for style in doc.find_all("style"):
        css = style.get_text()
        if own_style(css):
            continue
        assert "@import" not in css and "expression(" not in css and "</" not in css, where
        for m in re.finditer(r"url\(", css):
            assert re.match(r'url\("(https?://|\.\./media/|media/)[^"\\\s]*"\)', css[m.start():]), (
                where, css[m.start():m.start() + 80])


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


# --------------------------------------------------------------------------
# The recap site


@pytest.fixture(scope="module")
def site(archive, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hostile-site") / "site"
    build_site(open_db(archive, create=True), out, search=False)
    return out


def recap_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_recap_site_is_inert(site):
    pages = recap_pages(site)
    assert len(pages) > 10
    for page in pages:
        # search.html's one script is Pagefind's starter (the same text as ours, nothing else)
        assert_nothing_live(soup(page.read_text("utf-8")), str(page.relative_to(site)),
                            own_script=lambda s, search=page.name == "search.html": search and s.get_text() == SEARCH_JS)
    doc = soup((site / "sessions" / f"{HOSTILE_SLUG}.html").read_text("utf-8"))
    text = doc.get_text()
    # What the posts said is on the page as text…
    assert "<script>window.__pwned=1</script> What do you <b>think</b>?" in text
    assert "</style><script>window.__pwned=43</script>" in text  # a display name
    assert "CW: <img src=x onerror=window.__pwned=49>" in text  # a content warning
    assert "<img src=x onerror=window.__pwned=47>" in text  # alt text
    # …and none of the sneaky links became a link (they stay text); of its media only the video's
    # http(s) file is linked (its data: preview is not shown), the javascript: photo is a label
    sneaky = doc.find(id=anchor_for(SNEAKY_ID))
    assert not [a["href"] for a in sneaky.select(".tx a, .lk a")]
    assert [(el.name, el.get("href"), el.get_text()) for el in sneaky.select(".md .nomedia")] == [
        ("span", None, "Image: <img src=x onerror=window.__pwned=47>"),
        ("a", "https://pbs.twimg.com/media/v.mp4", "Video: </figcaption><script>x</script>")]
    assert sneaky.find("a", class_="t") is None  # its javascript: permalink is not a link
    # The Mastodon HTML, sanitized again: its one harmless link and its text, nothing else
    masto = doc.find(id=anchor_for(MASTODON_ID)).select_one(".tx.h")
    assert [a.get("href") for a in masto.find_all("a")] == [None] * 6 + ["https://ok.example/"]
    assert {t.name for t in masto.find_all(True)} <= {"p", "a", "span", "br"}


# --------------------------------------------------------------------------
# The exports


def export(archive: Path, fmt: str) -> str:
    buf = io.StringIO()
    export_session(open_db(archive, create=True), HOSTILE_SLUG, fmt, buf)
    return buf.getvalue()


def test_markdown_export_renders_inert(archive):
    md = export(archive, "md")
    # As a blog renders it: CommonMark, and markdown-it's default (tables, strikethrough), raw HTML allowed
    for preset in ("commonmark", "default"):
        doc = soup(MarkdownIt(preset, {"html": True}).render(md))
        assert_nothing_live(doc, f"markdown ({preset})", forms=False)
        assert not doc.find_all(["img", "svg", "style", "b", "div", "span", "details"])
        for a in doc.find_all("a"):
            assert a["href"].startswith(("https://", "http://")), a
    text = soup(MarkdownIt("commonmark", {"html": True}).render(md)).get_text()
    assert "<script>window.__pwned=1</script> What do you <b>think</b>?" in text
    assert "CW: <img src=x onerror=window.__pwned=49>" in text
    assert "</style><script>window.__pwned=43</script>" in text


def test_json_export_is_data(archive):
    data = json.loads(export(archive, "json"))
    conn = sqlite3.connect(archive)
    stored = dict(conn.execute("SELECT id, text FROM posts"))
    # every post's text comes back as archived (the payloads are data, not altered or lost), only
    # without control characters (no escape sequence reaches whoever prints the JSON)
    assert data["posts"] and all(p["text"] == clean(stored[p["id"]]) for p in data["posts"])
    assert any("<script>" in p["text"] for p in data["posts"])
    # the links it offers are web links only (the archive never stored another kind)
    for p in data["posts"]:
        assert all(url_is_safe(u) and u.startswith("http") for u in p["links"]), p["links"]
    by_id = {p["id"]: p for p in data["posts"]}
    assert by_id[SNEAKY_ID]["links"] == []
    lines = [json.loads(line) for line in export(archive, "jsonl").splitlines()]
    assert [p["id"] for p in lines] == [p["id"] for p in data["posts"]]


# --------------------------------------------------------------------------
# Datasette, in process


DATASETTE_PAGES = [
    f"/hostile/-/session/{HOSTILE_SLUG}",
    "/hostile/-/search?q=pwned",
    "/hostile/-/search?q=onerror&order=newest",
    "/hostile/-/search?q=sneaky",
    "/hostile/posts?_search=pwned",
    f"/hostile/posts/{SNEAKY_ID}",
    "/hostile/authors",
    "/hostile/media",
    f"/hostile/session_transcript?session={HOSTILE_SLUG}",
    "/hostile/search_posts?q=pwned",
    "/hostile/participant_history?handle=sneaky",
]


@pytest.fixture(scope="module")
def datasette_get(archive):
    client = make_client(ds_server.make_datasette(archive))
    yield client
    client.loop.close()


@pytest.mark.parametrize("path", DATASETTE_PAGES)
def test_datasette_pages_are_inert(datasette_get, path):
    r = datasette_get(path)
    assert r.status_code == 200, r.text[:300]
    assert_nothing_live(soup(r.text), path, own_script=datasette_script, own_style=datasette_style)


def test_same_post_same_markup_in_recap_and_datasette(site, datasette_get):
    """One renderer: each post of the hostile session has the same anchor,
    classes, text, badges and media in the recap and on the Datasette page;
    only where links point (and the time's date) differ."""
    recap = soup((site / "sessions" / f"{HOSTILE_SLUG}.html").read_text("utf-8"))
    ds = soup(datasette_get(f"/hostile/-/session/{HOSTILE_SLUG}").text)
    ids = [li["id"] for li in recap.select("#transcript ol.stream > li[id]")]
    assert ids and sorted(ids) == sorted(el["id"] for el in ds.select("[id^=p-]"))
    for pid in ids:
        a, b = recap.find(id=pid).find(["article", "div"]), ds.find(id=pid).find(["article", "div"])
        assert a["class"] == b["class"], pid
        for part in (".tx", ".hd", ".re", ".md", ".b", ".pf"):
            assert [x.get_text() for x in a.select(part)] == [x.get_text() for x in b.select(part)], (pid, part)
        assert [str(x) for x in a.select(".md img, .tx.h")] == [str(x) for x in b.select(".md img, .tx.h")], pid


# --------------------------------------------------------------------------
# In Chromium


# Every payload writes to window.__pwned: make that a trap that records it.
PWN_HOOK = """
window.__hits = [];
Object.defineProperty(window, '__pwned', {configurable: false,
  set(v) { window.__hits.push(String(v)); }, get() { return undefined; }});
"""
# Fire every event a payload could hang on, on every element, and open every fold.
POKE = """() => {
  const events = ['mouseover', 'mouseenter', 'mousemove', 'mousedown', 'mouseup', 'click', 'focus', 'focusin', 'blur',
                  'pointerover', 'pointerdown', 'load', 'error', 'animationstart', 'transitionend', 'toggle', 'input'];
  for (const d of document.querySelectorAll('details')) d.open = true;
  for (const el of document.querySelectorAll('*')) {
    for (const type of events) el.dispatchEvent(new Event(type, {bubbles: true, cancelable: true}));
  }
}"""
# Links are clicked by the POKE above; keep them from navigating away.
NO_NAVIGATION = "document.addEventListener('click', e => e.preventDefault(), true);"
DOM_CHECK = """() => ({
  // the page's own scripts are Datasette's, from its static folder; the recap's pages visited have none
  scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('__pwned') ||
      (s.src && !(location.protocol.startsWith('http') && s.src.startsWith(location.origin + '/-/static/')))).length,
  handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length,
  urls: [...document.querySelectorAll('[href],[src],[action],[formaction]')].map(e =>
      e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action') || e.getAttribute('formaction'))
    .filter(u => { try { const p = new URL(u, location.href).protocol; return !['http:', 'https:', 'file:'].includes(p); }
                   catch (e) { return false; } }),
  frames: document.querySelectorAll('iframe, object, embed, frame').length,
})"""



def visit(browser, urls: list[str], allow: tuple[str, ...]) -> None:
    """Open each page with the trap set, poke everything, and check that nothing ran."""
    context = browser.new_context()
    context.add_init_script(PWN_HOOK)
    context.add_init_script(NO_NAVIGATION)
    blocked: list[str] = []
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(allow)
                  else (blocked.append(r.request.url), r.abort()))
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    console: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    try:
        for url in urls:
            page.goto(url, wait_until="load")
            page.evaluate(POKE)
            for el in page.locator(".post a, .post img, .av, .tx a").all()[:60]:
                if el.is_visible():
                    el.hover(timeout=2000)
            page.wait_for_timeout(150)
            assert page.evaluate("window.__hits") == [], url
            assert page.evaluate(DOM_CHECK) == {"scripts": 0, "handlers": 0, "urls": [], "frames": 0}, url
        assert dialogs == [] and errors == []
        # Hotlinked pictures that the test blocks are the only console errors a page may log
        # (a CSP refusing an injected script or handler would show up here too).
        assert [m for m in console if "Failed to load resource" not in m] == []
        assert all(u.startswith(("http://", "https://")) for u in blocked), blocked
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.parametrize("csp", [True, False], ids=["with-csp", "escaping-alone"])
def test_recap_runs_nothing_in_chromium(browser, site, tmp_path, csp):
    out = site
    if not csp:
        out = tmp_path / "site"
        shutil.copytree(site, out)
        for page in out.rglob("*.html"):
            text = page.read_text("utf-8")
            page.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text), "utf-8")
    people = [p for p in (out / "people").glob("*.html")
              if p.name.startswith(("evil", "javascript", "sneaky", "eve"))]
    assert len(people) == 4
    pages = [out / "sessions" / f"{HOSTILE_SLUG}.html", out / "index.html", out / "hashtags" / "recapchat.html",
             *people]
    visit(browser, [p.as_uri() for p in pages], allow=("file://",))


@pytest.mark.browser
def test_datasette_runs_nothing_in_chromium(browser, archive):
    proc, base = start_server(archive, "--quiet")
    try:
        visit(browser, [base + path for path in DATASETTE_PAGES], allow=("http://127.0.0.1",))
    finally:
        code, output = stop_server(proc)
    assert code == 0, output


# --------------------------------------------------------------------------
# Terminal escapes (issue 14): no control character but newline and tab in any text output


def test_terminal_escapes_reach_no_text_output(archive, tmp_path, runner):
    from chatarchive.cli import cli

    outputs: dict[str, str] = {}
    for fmt in ("md", "json", "jsonl", "csv"):
        r = runner.invoke(cli, ["export", str(archive), HOSTILE_SLUG, "--format", fmt])
        assert r.exit_code == 0, r.output
        outputs[f"export {fmt} to stdout"] = r.output
        target = tmp_path / f"out.{fmt}"
        r = runner.invoke(cli, ["export", str(archive), HOSTILE_SLUG, "--format", fmt, "-o", str(target)])
        assert r.exit_code == 0, r.output
        outputs[f"export {fmt} to a file"] = target.read_text("utf-8")
        assert outputs[f"export {fmt} to a file"] == outputs[f"export {fmt} to stdout"]
    for args in (["show", HOSTILE_SLUG], ["show", HOSTILE_SLUG, "--json"], ["sessions", "list"],
                 ["sessions", "list", "--json"], ["search", "escapes"], ["search", "escapes", "--json"],
                 ["search", "pwned"]):
        command = args[:2] if args[0] == "sessions" else args[:1]
        r = runner.invoke(cli, [*command, str(archive), *args[len(command):]])
        assert r.exit_code == 0, (args, r.output)
        outputs[" ".join(args)] = r.output
    site = tmp_path / "site"
    r = runner.invoke(cli, ["recap", str(archive), "--out", str(site), "--no-search"])
    assert r.exit_code == 0, r.output
    outputs["recap"] = r.output
    for page in site.rglob("*.html"):
        outputs[str(page.relative_to(site))] = page.read_text("utf-8")
    found = {name: repr(CONTROL.findall(text)[:5]) for name, text in outputs.items() if CONTROL.search(text)}
    assert found == {}
    # what the post said is still there, on its lines, minus the control characters
    md = outputs["export md to stdout"]
    assert "pwned title" in md and "second line" in md and "after a tab" in md
    data = json.loads(outputs["export json to stdout"])
    post = next(p for p in data["posts"] if p["id"] == ESCAPES_ID)
    assert post["text"].startswith("A1: escapes ]0;pwned title [2J[H[31mred[0m 6n  overwrite nul del")
    assert "\n" in post["text"] and "\t" in post["text"]
    row = next(r for r in csv.DictReader(io.StringIO(outputs["export csv to stdout"])) if r["id"] == ESCAPES_ID)
    assert "\n" in row["text"] and not CONTROL.search(row["author_name"])
