"""`chatarchive serve` in a real headless Chromium: the search page shows a
hit, the pages look right (screenshots at 1280 and 375 px, kept where
CHATARCHIVE_SCREENSHOTS=DIR says) and hostile post text never runs (Debian
chromium, never a download)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import LONG_HANDLE, LONG_NAME, LONG_TAG, LONG_URL, STICKS_OUT, needs_chromium
from test_serve import HOSTILE_ID, build_archive, start_server, stop_server

pytestmark = needs_chromium




def add_long_names(path: Path) -> None:
    """A post whose author name, handle, link and hashtag have no break opportunity."""
    from chatarchive.analysis.pipeline import analyse_archive
    from chatarchive.archive.schema import open_db
    from chatarchive.archive.writer import save_posts
    from chatarchive.models import Author, Post

    db = open_db(path)
    start = db.execute("SELECT start FROM sessions WHERE slug = 'growthchat-2026-10-14'").fetchone()[0]
    who = Author(id="4242", platform="x", handle=LONG_HANDLE, name=LONG_NAME, url=f"https://x.com/{LONG_HANDLE}")
    save_posts(db, [Post(id="1850000000000004242", platform="x", source="test", author=who,
                         created_at=start[:14] + "12:30.000Z", url=f"https://x.com/{LONG_HANDLE}/status/1",
                         text=f"A1: retention, see {LONG_URL} #{LONG_TAG} @{LONG_HANDLE} #growthchat",
                         hashtags=["growthchat", LONG_TAG], links=[LONG_URL])])
    analyse_archive(db)
    db.conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = build_archive(tmp_path_factory.mktemp("browser") / "chats.db")
    add_long_names(path)
    proc, base = start_server(path, "--quiet")
    yield base
    # SIGTERM (systemd, docker stop) stops it as cleanly as Ctrl-C
    code, output = stop_server(proc, signal.SIGTERM)
    assert code == 0 and "Stopped." in output, output



def watch(page) -> dict[str, list]:
    """Record everything that would betray executed post text."""
    seen: dict[str, list] = {"dialogs": [], "errors": [], "requests": []}

    def on_dialog(d):
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    # Avatars are hotlinked; everything else must stay on the server.  Block
    # outside requests so the test never touches the network.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        "http://127.0.0.1") else (seen["requests"].append(route.request.url), route.abort()))
    return seen


def test_search_page_shows_a_hit(browser, server):
    page = browser.new_page()
    watch(page)
    page.goto(f"{server}/chats/-/search")
    page.fill("#ca-q", "spreadsheet")
    page.press("#ca-q", "Enter")
    page.wait_for_selector("article.post")
    hits = page.locator("article.post")
    assert hits.count() == 1
    assert hits.first.locator("mark").inner_text() == "spreadsheet"
    assert "A2: a spreadsheet and patience" in hits.first.inner_text()
    # the hit links to its session page, which opens at the right question
    hits.first.locator("p.in a").click()
    page.wait_for_selector("section#q2")
    assert page.locator("section#q2 article.is-a").count() == 2
    page.close()



@pytest.mark.parametrize("width", [1280, 375])
def test_pages_look_right(browser, server, shots, width):
    """The posts on the plugin's pages are the recap's cards, laid out inside
    Datasette's page: no horizontal overflow, Datasette's link colours and
    paragraph margins kept out of the posts, avatars as round initials."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    seen = watch(page)
    for name, path in [("search", "/chats/-/search?q=retention"),
                       ("session", "/chats/-/session/growthchat-2026-10-14"),
                       ("session2", "/chats/-/session/growthchat-2026-10-21")]:
        page.goto(server + path)
        page.wait_for_load_state("load")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (name, width, overflow)
        post = page.locator("article.post").first
        style = post.evaluate("""e => { const s = getComputedStyle(e), who = getComputedStyle(e.querySelector('.who')),
            t = getComputedStyle(e.querySelector('.t')), av = getComputedStyle(e.querySelector('.av')),
            re = e.querySelector('p') && getComputedStyle(e.querySelector('p'));
            return {display: s.display, radius: s.borderTopLeftRadius, whoColor: who.color, whoLine: who.textDecorationLine,
                    tLine: t.textDecorationLine, avRadius: av.borderTopLeftRadius, pMargin: re ? re.marginBottom : '0px'}; }""")
        assert style["display"] == "flex" and style["radius"] == "10px", style
        assert style["whoColor"] == "rgb(17, 26, 53)" and style["whoLine"] == "none" and style["tLine"] == "none", style
        assert style["avRadius"] == "50%" and style["pMargin"] == "0px", style
        target = shots / f"datasette-{name}-{width}.png"
        page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 10_000
    assert seen["errors"] == [] and seen["dialogs"] == []
    page.close()


@pytest.mark.parametrize("path", [
    "/chats/-/search?q=onerror",
    "/chats/-/session/growthchat-2026-10-14",
    "/chats/-/session/growthchat-2026-10-21",  # the Mastodon post whose stored HTML carries script
    "/chats/posts?_search=alert",
    f"/chats/posts/{HOSTILE_ID}",
    "/chats/authors",
    "/chats/session_transcript?session=growthchat-2026-10-14",
])
def test_hostile_text_does_not_execute(browser, server, path):
    page = browser.new_page()
    seen = watch(page)
    page.goto(server + path)
    page.wait_for_load_state("load")
    body = page.inner_text("body")
    # The payloads are visible as text…
    assert "alert" in body or "Mallory" in body or "first replies" in body
    # …and nothing ran: no dialog, no script error, no injected element.
    page.wait_for_timeout(200)
    assert seen["dialogs"] == [] and seen["errors"] == []
    assert page.evaluate("() => window.__html_ran") is None
    assert page.locator("img[src='x'], svg[onload], img[onerror]").count() == 0
    assert all(not u.startswith(("javascript:", "data:")) for u in seen["requests"])
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")]
    page.close()


# --------------------------------------------------------------------------
# Content-Security-Policy (issue 14): Datasette's own scripts still run

CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' + e.lineNumber));
"""


@pytest.mark.parametrize("name,path", [
    ("table", "/chats/posts"),
    ("row", f"/chats/posts/{HOSTILE_ID}"),
    ("query", "/chats?sql=select+id%2C+text+from+posts+limit+3"),
    ("database", "/chats"),
    ("search", "/chats/-/search?q=retention"),
    ("session", "/chats/-/session/growthchat-2026-10-14"),
    ("canned", "/chats/session_transcript?session=growthchat-2026-10-14"),
])
def test_no_csp_violations_and_datasette_scripts_run(browser, server, name, path):
    context = browser.new_context()
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    seen = watch(page)
    response = page.goto(server + path)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    if name == "query":  # the SQL editor: CodeMirror from /-/static and its inline set-up
        assert page.locator(".CodeMirror").count() == 1
    if name == "table":  # table.js and the inline facet flag
        assert page.evaluate("window.DATASETTE_ALLOW_FACET") is True
        assert page.locator("th .dropdown-menu-icon").count() > 0
    assert page.evaluate("window.__csp") == [], name
    assert [m for m in console if "Content Security Policy" in m] == []
    assert seen["errors"] == []
    context.close()


@pytest.mark.parametrize("path", ["/chats/-/session/growthchat-2026-10-14", f"/chats/-/search?q={LONG_TAG}",
                                  "/chats/-/search?q=retention"])
def test_long_unbroken_names_wrap_on_a_phone(browser, server, shots, path):
    page = browser.new_page(viewport={"width": 375, "height": 800})
    watch(page)
    page.goto(server + path)
    page.wait_for_load_state("load")
    assert LONG_NAME in page.inner_text("body") or "retention" in path
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, (path, overflow)
    wide = page.evaluate(STICKS_OUT % "main *, .ca-posts *, .ca-people *")
    assert wide == [], (path, wide)
    page.screenshot(path=str(shots / f"datasette-long-{path.split('/')[-1][:20]}-375.png"), full_page=True)
    page.close()
