"""The recap site in a real headless Chromium (Debian's, through Playwright's
executable_path; never a downloaded browser): pages load from file:// with no
console errors and no request leaving file://, Q&A anchors and folded threads
work, search finds a known post over a local http server, hostile posts run
nothing (with and without the CSP), and screenshots at 1280 and 375 px."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import LONG_HANDLE, LONG_NAME, LONG_TAG, LONG_URL, STICKS_OUT, needs_chromium
from recap_helpers import (
    CHAT,
    HOSTILE,
    HOSTILE_SLUG,
    SECOND,
    MediaServer,
    StaticServer,
    point_media_at,
    recap_archive,
)

from chatarchive.recap.site import build_site

pytestmark = needs_chromium



@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The fixture chat with avatars and media copied in (--download-media
    from a local server), so every page is complete offline."""
    tmp = tmp_path_factory.mktemp("browser")
    db = recap_archive(tmp / "chats.db")
    with MediaServer() as server:
        point_media_at(db, server.base)
        result = build_site(db, tmp / "site", download_media=True)
    assert result.media_failed == 0 and result.search_ok
    return tmp / "site"



class Tab:
    """A page with everything it does recorded: console, errors, dialogs, requests.
    Requests outside ``allow`` (file:// by default) are recorded and aborted."""

    def __init__(self, browser, *, width=1280, scheme="light", allow=("file://",), init_script=None):
        self.context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))

        def route(r):
            if r.request.url.startswith(allow):
                r.continue_()
            else:
                self.blocked.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)

    def goto(self, url: str):
        self.page.goto(url, wait_until="load")
        self.page.wait_for_timeout(100)
        return self.page

    def problems(self):
        return [m for m in self.console if m[0] in ("error", "warning")] + [("pageerror", e) for e in self.errors]

    def close(self):
        self.context.close()


def site_pages(site: Path) -> list[Path]:
    return ([site / "index.html", site / "search.html", site / "hashtags" / "recapchat.html"]
            + sorted((site / "sessions").glob("*.html")) + sorted((site / "people").glob("*.html"))[:3])


def test_pages_load_offline_without_errors(browser, site):
    tab = Tab(browser)
    try:
        for page in site_pages(site):
            tab.goto(page.as_uri())
            assert tab.problems() == [], (page, tab.problems())
        assert tab.blocked == [] and tab.requests and all(u.startswith("file://") for u in tab.requests)
        # the copies of avatars and media were really used
        assert any("/media/" in u and u.endswith(".png") for u in tab.requests)
    finally:
        tab.close()


def test_qa_anchors_timeline_and_folded_threads(browser, site):
    tab = Tab(browser)
    try:
        url = (site / "sessions" / f"{SECOND}.html").as_uri()
        page = tab.goto(url + "#q2")
        top = page.evaluate("document.getElementById('q2').getBoundingClientRect().top")
        assert 0 <= top < 120  # scrolled to, below the sticky section bar
        assert "Which metric did you stop tracking" in page.locator("#q2 h3").inner_text()
        page.click(".timeline .qm a[href='#q3']")
        page.wait_for_function("location.hash === '#q3'")
        top = page.evaluate("document.getElementById('q3').getBoundingClientRect().top")
        assert 0 <= top < 120
        # Alice's answer to Q1: its replies are folded, then shown
        thread = page.locator("#q1 details.thr").first
        assert thread.locator("summary").inner_text().strip() == "3 replies"
        assert not thread.locator("ol.tree").is_visible()
        thread.locator("summary").click()
        assert thread.locator("ol.tree").is_visible()
        assert "Do you track that per cohort?" in thread.locator("ol.tree").inner_text()
        # a post's time links to its original permalink; an in-page reply link to the transcript
        first = page.locator("#transcript article.post").first
        assert first.locator("a.t").get_attribute("href").startswith("https://x.com/chathost/status/")
        page.locator("#transcript .re a[href^='#p-']").first.click()
        assert page.evaluate("location.hash").startswith("#p-")
        assert tab.problems() == [] and tab.blocked == []
    finally:
        tab.close()


def test_screenshots_and_narrow_layout(browser, site, shots):
    for width, scheme in ((1280, "light"), (375, "light"), (1280, "dark"), (375, "dark")):
        tab = Tab(browser, width=width, scheme=scheme)
        try:
            names = (("session", "index", "person") if scheme == "light" else ("session",))
            for name in names:
                path = {"session": site / "sessions" / f"{SECOND}.html", "index": site / "index.html",
                        "person": site / "people" / "alice_cm.html"}[name]
                page = tab.goto(path.as_uri())
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, (name, width, overflow)
                target = shots / f"{name}-{width}-{scheme}.png"
                page.screenshot(path=str(target), full_page=(name == "session" and width == 375 and scheme == "light"))
                assert target.stat().st_size > 10_000
            bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert (bg == "rgb(17, 17, 22)") == (scheme == "dark"), bg  # prefers-color-scheme is followed
            assert tab.problems() == []
        finally:
            tab.close()
    # printing hides the chrome (search box, section bar) and keeps the posts
    tab = Tab(browser)
    try:
        page = tab.goto((site / "sessions" / f"{SECOND}.html").as_uri())
        page.emulate_media(media="print")
        assert not page.locator("nav.toc").is_visible() and not page.locator("form.search").is_visible()
        assert page.locator("#transcript article.post").first.is_visible()
        page.pdf(path=str(shots / "session-print.pdf"))
    finally:
        tab.close()


def test_search_finds_a_known_post_over_http(browser, site):
    with StaticServer(site) as server:
        tab = Tab(browser, allow=(server.base,))
        try:
            page = tab.goto(f"{server.base}/sessions/{SECOND}.html")
            page.fill("#site-q", "cohort")
            page.press("#site-q", "Enter")
            page.wait_for_selector(".pagefind-ui__result", timeout=15_000)
            result = page.locator(".pagefind-ui__result").first
            # a result per question block (search_records.py): it goes straight to the question
            assert result.locator("a").first.evaluate("a => a.href") == f"{server.base}/sessions/{SECOND}.html#q1"
            assert "cohort" in result.inner_text()
            result.locator("a").first.click()
            page.wait_for_url(re.compile(rf"/sessions/{SECOND}\.html#q1"))
            assert tab.problems() == [], tab.problems()
            assert tab.blocked == [] and all(u.startswith(server.base) for u in tab.requests)
        finally:
            tab.close()


def test_search_page_from_file_says_what_to_do(browser, site):
    tab = Tab(browser)
    try:
        page = tab.goto((site / "search.html").as_uri() + "?q=cohort")
        notice = page.locator("#search-file")
        assert notice.is_visible() and "python3 -m http.server" in notice.inner_text()
        assert page.input_value("#site-q") == "cohort"
        assert tab.problems() == [] and all(u.startswith("file://") for u in tab.requests)
    finally:
        tab.close()


def test_hotlinked_avatars_fall_back_to_initials(browser, tmp_path):
    db = recap_archive(tmp_path / "chats.db")
    out = tmp_path / "site"
    build_site(db, out, search=False)
    avatars = {r[0] for r in db.execute("SELECT avatar_url FROM authors")} | {
        r[0] for r in db.execute("SELECT url FROM media")}
    tab = Tab(browser)
    try:
        page = tab.goto((out / "sessions" / f"{SECOND}.html").as_uri())
        assert tab.blocked and set(tab.blocked) <= avatars  # only the hotlinked pictures try to leave
        av = page.locator("#people .av").first
        assert av.inner_text() == "RC" and av.is_visible()
        after = page.evaluate("getComputedStyle(document.querySelector('#people .av'), '::after').backgroundImage")
        assert after.startswith('url("https://pbs.twimg.com/profile_images/')
        assert tab.errors == []
    finally:
        tab.close()


PWN_HOOK = """
window.__hits = [];
Object.defineProperty(window, '__pwned', {configurable: false,
  set(v) { window.__hits.push(String(v)); }, get() { return undefined; }});
"""


def strip_csp(site: Path) -> None:
    for page in site.rglob("*.html"):
        html = page.read_text("utf-8")
        page.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html), "utf-8")


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    db = recap_archive(tmp / "hostile.db", (CHAT, HOSTILE))
    pid = db.execute("SELECT id FROM posts WHERE text LIKE 'A1: filler answer 0%'").fetchone()[0]
    db.execute("UPDATE posts SET platform = 'mastodon', html = ? WHERE id = ?", [
        ('<p><img src=x onerror="window.__pwned=1"><a href="javascript:window.__pwned=2">click</a>'
         '<script>window.__pwned=3</script><svg onload="window.__pwned=4"></svg>'
         '<a href="https://ok.example/" onmouseover="window.__pwned=5">ok</a><b>broken'), pid])
    build_site(db, tmp / "site", search=False)
    return tmp / "site"


# Fire every event a payload could hang on, on every element, and open every fold.
POKE = """() => {
  const events = ['mouseover', 'mouseenter', 'mousemove', 'focus', 'focusin', 'pointerover', 'load', 'error',
                  'animationstart', 'transitionend', 'toggle'];
  for (const d of document.querySelectorAll('details')) d.open = true;
  for (const el of document.querySelectorAll('*')) {
    for (const type of events) el.dispatchEvent(new Event(type, {bubbles: true}));
  }
}"""


@pytest.mark.parametrize("csp", [True, False], ids=["with-csp", "escaping-alone"])
def test_hostile_posts_execute_nothing(browser, hostile_site, tmp_path, csp):
    out = hostile_site
    if not csp:
        out = tmp_path / "site"
        shutil.copytree(hostile_site, out)
        strip_csp(out)
        assert "Content-Security-Policy" not in (out / "sessions" / f"{HOSTILE_SLUG}.html").read_text()
    tab = Tab(browser, init_script=PWN_HOOK)
    try:
        people = [p for p in (out / "people").glob("*.html") if p.name.startswith(("evil", "javascript"))]
        assert len(people) == 2
        for path in [out / "sessions" / f"{HOSTILE_SLUG}.html", out / "index.html", *people]:
            page = tab.goto(path.as_uri())
            page.evaluate(POKE)
            for el in page.locator("#q1 ol.ans a, #media img, #people .av").all()[:40]:
                el.hover(timeout=2000)
            page.wait_for_timeout(100)
            assert page.evaluate("window.__hits") == [], path
            assert page.evaluate("document.querySelectorAll('script, iframe, object, embed').length") == 0
            assert page.evaluate("""[...document.querySelectorAll('*')].filter(
                e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length""") == 0
            assert page.evaluate("""[...document.querySelectorAll('[href],[src]')].filter(e => /^\\s*(javascript|data|vbscript):/i
                .test(e.getAttribute('href') || e.getAttribute('src'))).length""") == 0
        assert tab.dialogs == [] and tab.errors == []
        # what the posts said is on the page, as text
        page = tab.goto((out / "sessions" / f"{HOSTILE_SLUG}.html").as_uri())
        assert "<script>window.__pwned=1</script> What do you <b>think</b>?" in page.locator("#q1 h3").inner_text()
        # only hotlinked pictures try to leave file://, none to javascript: or data:
        assert all(u.startswith(("https://", "http://")) for u in tab.blocked)
    finally:
        tab.close()


# --------------------------------------------------------------------------
# Long unbroken names, handles, URLs and hashtags on a phone (issue 14)



@pytest.fixture(scope="module")
def long_site(tmp_path_factory):
    from chatarchive.analysis.pipeline import analyse_archive
    from chatarchive.archive.writer import save_posts
    from chatarchive.models import Author, Post

    tmp = tmp_path_factory.mktemp("long")
    db = recap_archive(tmp / "chats.db")
    start = db.execute("SELECT start FROM sessions WHERE slug = ?", [SECOND]).fetchone()[0]
    who = Author(id="4242", platform="x", handle=LONG_HANDLE, name=LONG_NAME,
                 avatar_url=None, url=f"https://x.com/{LONG_HANDLE}")
    save_posts(db, [Post(id="1862000000000004242", platform="x", source="test", author=who,
                         created_at=start[:14] + "12:30.000Z", url=f"https://x.com/{LONG_HANDLE}/status/1",
                         text=f"A1: read {LONG_URL} and #{LONG_TAG} @{LONG_HANDLE} #RecapChat",
                         hashtags=["RecapChat", LONG_TAG], links=[LONG_URL])])
    analyse_archive(db)
    build_site(db, tmp / "site", search=False)
    return tmp / "site"


def test_long_unbroken_names_wrap_on_a_phone(browser, long_site, shots):
    people = [p for p in (long_site / "people").glob("*.html") if p.name.startswith("averyvery")]
    assert len(people) == 1
    tab = Tab(browser, width=375)
    try:
        for name, path in [("session", long_site / "sessions" / f"{SECOND}.html"), ("person", people[0]),
                           ("index", long_site / "index.html"), ("hashtag", long_site / "hashtags" / "recapchat.html")]:
            page = tab.goto(path.as_uri())
            page.evaluate("for (const d of document.querySelectorAll('details')) d.open = true")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (name, overflow)
            # nothing sticks out of its box either (a clipped overflow would hide the text)
            wide = page.evaluate(STICKS_OUT % "main *")
            assert wide == [], (name, wide)
            page.screenshot(path=str(shots / f"long-names-{name}-375.png"), full_page=True)
        page = tab.goto((long_site / "sessions" / f"{SECOND}.html").as_uri())
        assert LONG_NAME in page.inner_text("#transcript")
    finally:
        tab.close()
